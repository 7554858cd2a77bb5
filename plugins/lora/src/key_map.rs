//! Which layer of the model a LoRA key names.
//!
//! A1111 names every module of the loaded model by its path with `.` replaced by `_`
//! (`diffusion_model_input_blocks_1_1_proj_in`, `transformer_text_model_encoder_layers_0_mlp_fc1`).
//! kohya's files name UNet layers the diffusers way (`lora_unet_down_blocks_0_attentions_0_proj_in`)
//! and A1111 converts those names with a fixed set of patterns (its
//! `convert_diffusers_name_to_compvis`, SD1 part), reproduced here. Names the patterns leave
//! alone get A1111's fallbacks: files already in LDM naming (`lora_unet_input_blocks_…`
//! → `diffusion_model_input_blocks_…`, `lora_te1_text_model_…` → `transformer_text_model_…`).
//! The patterns are matched by hand: each is a literal prefix, a few decimal numbers and a
//! tail, and `re.match` anchors only at the start.

/// Which multiplier applies: A1111 uses the text-encoder one for modules whose name has
/// `transformer` in its first 20 characters (the text encoder's), the UNet one otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    TextEncoder,
    Unet,
}

/// Whether an LDM tensor is a layer's weight or its bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Weight,
    Bias,
}

const UNET_LDM: &str = "model.diffusion_model.";
const CLIP_LDM: &str = "cond_stage_model.";

/// A1111's module name, target and part of an LDM key
/// (`model.diffusion_model.input_blocks.1.1.proj_in.weight` →
/// `diffusion_model_input_blocks_1_1_proj_in`, UNet, weight).
pub fn module_of_ldm_key(key: &str) -> Option<(String, Target, Part)> {
    let (path, part) = if let Some(p) = key.strip_suffix(".weight") {
        (p, Part::Weight)
    } else if let Some(p) = key.strip_suffix(".bias") {
        (p, Part::Bias)
    } else {
        return None;
    };
    if let Some(rest) = path.strip_prefix(UNET_LDM) {
        return Some((
            format!("diffusion_model_{}", rest.replace('.', "_")),
            Target::Unet,
            part,
        ));
    }
    // The text encoder is `cond_stage_model.transformer.text_model.…`; A1111 names its
    // modules from `transformer` on.
    let rest = path.strip_prefix(CLIP_LDM)?;
    rest.starts_with("transformer.")
        .then(|| (rest.replace('.', "_"), Target::TextEncoder, part))
}

/// The target of an A1111 module name (its `multiplier()` rule).
pub fn target_of_module(name: &str) -> Target {
    let head: String = name.chars().take(20).collect();
    if head.contains("transformer") {
        Target::TextEncoder
    } else {
        Target::Unet
    }
}

/// Strips `prefix`, then reads a run of ASCII digits; returns (number, rest).
fn number_after<'a>(s: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = s.strip_prefix(prefix)?;
    let n = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    if n == 0 {
        return None;
    }
    Some((rest[..n].parse().ok()?, &rest[n..]))
}

/// `(attentions|resnets)_(\d+)_(.+)` after a block number.
fn block_item(rest: &str) -> Option<(bool, usize, &str)> {
    let rest = rest.strip_prefix('_')?;
    let (is_attn, rest) = if let Some(r) = rest.strip_prefix("attentions") {
        (true, r)
    } else {
        (false, rest.strip_prefix("resnets")?)
    };
    let (j, rest) = number_after(rest, "_")?;
    let tail = rest.strip_prefix('_')?;
    (!tail.is_empty()).then_some((is_attn, j, tail))
}

/// kohya/diffusers resnet layer names to LDM's (attention layers keep theirs).
fn resnet_suffix(s: &str) -> &str {
    match s {
        "conv1" => "in_layers_2",
        "conv2" => "out_layers_3",
        "norm1" => "in_layers_0",
        "norm2" => "out_layers_0",
        "time_emb_proj" => "emb_layers_1",
        "conv_shortcut" => "skip_connection",
        other => other,
    }
}

/// A1111's `convert_diffusers_name_to_compvis` for an SD1 model: a kohya name to A1111's
/// module name, or the name unchanged when no pattern matches.
pub fn convert_diffusers_name(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("lora_unet_conv_in") {
        return format!("diffusion_model_input_blocks_0_0{rest}");
    }
    if let Some(rest) = key.strip_prefix("lora_unet_conv_out") {
        return format!("diffusion_model_out_2{rest}");
    }
    if let Some((n, rest)) = number_after(key, "lora_unet_time_embedding_linear_") {
        // Python would format a negative index for 0; keep the arithmetic as written.
        return format!("diffusion_model_time_embed_{}{rest}", n as i64 * 2 - 2);
    }
    if let Some((i, rest)) = number_after(key, "lora_unet_down_blocks_") {
        if let Some((attn, j, tail)) = block_item(rest) {
            let suffix = if attn { tail } else { resnet_suffix(tail) };
            return format!(
                "diffusion_model_input_blocks_{}_{}_{suffix}",
                1 + i * 3 + j,
                if attn { 1 } else { 0 }
            );
        }
    }
    if let Some(rest) = key.strip_prefix("lora_unet_mid_block") {
        if let Some((attn, j, tail)) = block_item(rest) {
            let suffix = if attn { tail } else { resnet_suffix(tail) };
            return format!(
                "diffusion_model_middle_block_{}_{suffix}",
                if attn { 1 } else { j * 2 }
            );
        }
    }
    if let Some((i, rest)) = number_after(key, "lora_unet_up_blocks_") {
        if let Some((attn, j, tail)) = block_item(rest) {
            let suffix = if attn { tail } else { resnet_suffix(tail) };
            return format!(
                "diffusion_model_output_blocks_{}_{}_{suffix}",
                i * 3 + j,
                if attn { 1 } else { 0 }
            );
        }
    }
    if let Some((i, rest)) = number_after(key, "lora_unet_down_blocks_") {
        if rest.starts_with("_downsamplers_0_conv") {
            return format!("diffusion_model_input_blocks_{}_0_op", 3 + i * 3);
        }
    }
    if let Some((i, rest)) = number_after(key, "lora_unet_up_blocks_") {
        if rest.starts_with("_upsamplers_0_conv") {
            return format!(
                "diffusion_model_output_blocks_{}_{}_conv",
                2 + i * 3,
                if i > 0 { 2 } else { 1 }
            );
        }
    }
    if let Some((n, rest)) = number_after(key, "lora_te_text_model_encoder_layers_") {
        if let Some(tail) = rest.strip_prefix('_').filter(|t| !t.is_empty()) {
            return format!("transformer_text_model_encoder_layers_{n}_{tail}");
        }
    }
    key.to_string()
}

/// The A1111 module name a network key (the part of a file's key before the first `.`)
/// refers to in an SD1 model: the converted name, else A1111's fallbacks for files that
/// already use LDM names. `None` when nothing could name an SD1 layer; the name may still
/// name no layer of this model (the loader reports those).
pub fn module_name(network_key: &str) -> Option<String> {
    let converted = convert_diffusers_name(network_key);
    if converted.starts_with("diffusion_model_") || converted.starts_with("transformer_") {
        return Some(converted);
    }
    if network_key.contains("lora_unet") {
        return Some(network_key.replace("lora_unet", "diffusion_model"));
    }
    if network_key.contains("lora_te1_text_model") {
        // A1111 tries SDXL's first text encoder (`0_transformer_…`) first; an SD1 model has
        // none, so the SD1 spelling is the one that can match.
        return Some(network_key.replace("lora_te1_text_model", "transformer_text_model"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kohya_names_convert_as_a1111() {
        let cases = [
            (
                "lora_unet_down_blocks_0_attentions_1_transformer_blocks_0_attn2_to_k",
                "diffusion_model_input_blocks_2_1_transformer_blocks_0_attn2_to_k",
            ),
            (
                "lora_unet_down_blocks_2_resnets_0_conv_shortcut",
                "diffusion_model_input_blocks_7_0_skip_connection",
            ),
            (
                "lora_unet_down_blocks_1_resnets_1_time_emb_proj",
                "diffusion_model_input_blocks_5_0_emb_layers_1",
            ),
            (
                "lora_unet_down_blocks_1_downsamplers_0_conv",
                "diffusion_model_input_blocks_6_0_op",
            ),
            (
                "lora_unet_mid_block_attentions_0_proj_out",
                "diffusion_model_middle_block_1_proj_out",
            ),
            (
                "lora_unet_mid_block_resnets_1_conv2",
                "diffusion_model_middle_block_2_out_layers_3",
            ),
            (
                "lora_unet_up_blocks_3_attentions_2_proj_in",
                "diffusion_model_output_blocks_11_1_proj_in",
            ),
            (
                "lora_unet_up_blocks_0_resnets_2_norm1",
                "diffusion_model_output_blocks_2_0_in_layers_0",
            ),
            (
                "lora_unet_up_blocks_0_upsamplers_0_conv",
                "diffusion_model_output_blocks_2_1_conv",
            ),
            (
                "lora_unet_up_blocks_2_upsamplers_0_conv",
                "diffusion_model_output_blocks_8_2_conv",
            ),
            ("lora_unet_conv_in", "diffusion_model_input_blocks_0_0"),
            ("lora_unet_conv_out", "diffusion_model_out_2"),
            (
                "lora_unet_time_embedding_linear_2",
                "diffusion_model_time_embed_2",
            ),
            (
                "lora_te_text_model_encoder_layers_11_self_attn_out_proj",
                "transformer_text_model_encoder_layers_11_self_attn_out_proj",
            ),
            (
                "lora_te_text_model_final_layer_norm",
                "lora_te_text_model_final_layer_norm",
            ),
        ];
        for (kohya, a1111) in cases {
            assert_eq!(convert_diffusers_name(kohya), a1111, "{kohya}");
        }
    }

    #[test]
    fn fallbacks_and_ldm_keys() {
        assert_eq!(
            module_name("lora_unet_input_blocks_1_1_proj_in").as_deref(),
            Some("diffusion_model_input_blocks_1_1_proj_in")
        );
        assert_eq!(
            module_name("lora_te1_text_model_encoder_layers_0_mlp_fc1").as_deref(),
            Some("transformer_text_model_encoder_layers_0_mlp_fc1")
        );
        assert_eq!(
            module_name("lora_te2_text_model_encoder_layers_0_mlp_fc1"),
            None
        );
        assert_eq!(
            module_of_ldm_key("model.diffusion_model.input_blocks.1.1.proj_in.weight"),
            Some((
                "diffusion_model_input_blocks_1_1_proj_in".into(),
                Target::Unet,
                Part::Weight
            ))
        );
        assert_eq!(
            module_of_ldm_key(
                "cond_stage_model.transformer.text_model.encoder.layers.0.layer_norm1.bias"
            ),
            Some((
                "transformer_text_model_encoder_layers_0_layer_norm1".into(),
                Target::TextEncoder,
                Part::Bias
            ))
        );
        assert_eq!(
            module_of_ldm_key("first_stage_model.decoder.conv_in.weight"),
            None
        );
        assert_eq!(
            target_of_module("transformer_text_model_encoder_layers_0_mlp_fc1"),
            Target::TextEncoder
        );
        assert_eq!(
            target_of_module("diffusion_model_middle_block_1_transformer_blocks_0_attn1_to_q"),
            Target::Unet
        );
    }
}

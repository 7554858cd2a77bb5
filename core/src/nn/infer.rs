//! Network sizes read from tensor shapes, for files without a sidecar LDM yaml (and for
//! the text encoder, which a yaml never describes). Each function takes weights scoped to
//! the network's prefix, like the matching `load`.

use crate::error::{Error, Result};
use crate::nn::config::{ClipConfig, UNetConfig, VaeConfig};
use crate::nn::loader::Weights;

/// Heads of every CLIP text encoder SD uses have width 64.
const CLIP_HEAD_WIDTH: usize = 64;

fn dim(w: &Weights, name: &str, axis: usize) -> Result<usize> {
    let shape = w.require_shape(name)?;
    shape.get(axis).copied().ok_or_else(|| Error::Shape {
        file: w.file().to_string(),
        key: w.key(name),
        got: shape.clone(),
        expected: vec![0; axis + 1],
    })
}

/// Counts `prefix{0,1,2,…}suffix` keys until the first missing one.
fn count(w: &Weights, prefix: &str, suffix: &str) -> usize {
    (0..)
        .take_while(|i| w.contains(&format!("{prefix}{i}{suffix}")))
        .count()
}

/// CLIP text sizes (weights scoped to `text_model`).
pub fn infer_clip_config(w: &Weights) -> Result<ClipConfig> {
    let vocab_size = dim(w, "embeddings.token_embedding.weight", 0)?;
    let hidden = dim(w, "embeddings.token_embedding.weight", 1)?;
    let max_positions = dim(w, "embeddings.position_embedding.weight", 0)?;
    let layers = count(w, "encoder.layers.", ".layer_norm1.weight");
    if layers == 0 {
        return Err(Error::MissingKey {
            file: w.file().to_string(),
            key: w.key("encoder.layers.0.layer_norm1.weight"),
        });
    }
    let intermediate = dim(w, "encoder.layers.0.mlp.fc1.weight", 0)?;
    Ok(ClipConfig {
        vocab_size,
        hidden,
        layers,
        heads: (hidden / CLIP_HEAD_WIDTH).max(1),
        intermediate,
        max_positions,
    })
}

/// UNet sizes (weights scoped to `model.diffusion_model`). Head count is SD1.x's 8, as in
/// the v1 inference config; a yaml overrides it.
pub fn infer_unet_config(w: &Weights) -> Result<UNetConfig> {
    let model_channels = dim(w, "input_blocks.0.0.weight", 0)?;
    let in_channels = dim(w, "input_blocks.0.0.weight", 1)?;
    let out_channels = dim(w, "out.2.weight", 0)?;
    let invalid = |m: String| Error::format(w.file(), format!("cannot infer the UNet layout: {m}"));
    if model_channels == 0 {
        return Err(invalid(format!(
            "`{}` has no output channels",
            w.key("input_blocks.0.0.weight")
        )));
    }

    // Walk the input blocks: runs of res blocks separated by downsample convs.
    let mut levels: Vec<(usize, usize, bool)> = Vec::new(); // (width, res blocks, attention)
    let mut current: Option<(usize, usize, bool)> = None;
    let mut i = 1;
    loop {
        let block = w.pp(format!("input_blocks.{i}"));
        if block.contains("0.op.weight") {
            levels.push(
                current.take().ok_or_else(|| {
                    invalid(format!("input_blocks.{i} downsamples an empty level"))
                })?,
            );
        } else if block.contains("0.in_layers.0.weight") {
            let width = dim(&block, "0.out_layers.3.weight", 0)?;
            let attn = block.contains("1.proj_in.weight");
            match &mut current {
                Some((wd, n, a)) => {
                    if *wd != width || *a != attn {
                        return Err(invalid(format!(
                            "input_blocks.{i} changes width or attention within a level"
                        )));
                    }
                    *n += 1;
                }
                None => current = Some((width, 1, attn)),
            }
        } else {
            break;
        }
        i += 1;
    }
    levels.extend(current);
    let Some(&(_, num_res_blocks, _)) = levels.first() else {
        return Err(Error::MissingKey {
            file: w.file().to_string(),
            key: w.key("input_blocks.1.0.in_layers.0.weight"),
        });
    };
    if levels.iter().any(|l| l.1 != num_res_blocks) {
        return Err(invalid(
            "levels have different numbers of res blocks".into(),
        ));
    }
    let mut channel_mult = Vec::new();
    let mut attention_resolutions = Vec::new();
    for (level, &(width, _, attn)) in levels.iter().enumerate() {
        if !width.is_multiple_of(model_channels) {
            return Err(invalid(format!(
                "width {width} is not a multiple of {model_channels}"
            )));
        }
        channel_mult.push(width / model_channels);
        if attn {
            attention_resolutions.push(1 << level);
        }
    }
    let attention = if let Some(level) = levels.iter().position(|l| l.2) {
        // First attention block: input_blocks index of that level's first res block.
        w.pp(format!(
            "input_blocks.{}.1",
            1 + level * (num_res_blocks + 1)
        ))
    } else {
        w.pp("middle_block.1")
    };
    let context_dim = dim(&attention, "transformer_blocks.0.attn2.to_k.weight", 1)?;
    let transformer_depth = count(&attention, "transformer_blocks.", ".norm1.weight").max(1);
    let use_linear_in_transformer = attention.require_shape("proj_in.weight")?.len() == 2;
    Ok(UNetConfig {
        in_channels,
        out_channels,
        model_channels,
        attention_resolutions,
        num_res_blocks,
        channel_mult,
        num_heads: 8,
        num_head_channels: None,
        transformer_depth,
        context_dim,
        use_linear_in_transformer,
    })
}

/// VAE sizes (weights scoped to `first_stage_model`, or unprefixed for a `.vae.pt`).
pub fn infer_vae_config(w: &Weights) -> Result<VaeConfig> {
    let ch = dim(w, "encoder.conv_in.weight", 0)?;
    let in_channels = dim(w, "encoder.conv_in.weight", 1)?;
    let levels = count(w, "encoder.down.", ".block.0.conv1.weight");
    let num_res_blocks = count(w, "encoder.down.0.block.", ".conv1.weight");
    if levels == 0 || num_res_blocks == 0 || ch == 0 {
        return Err(Error::MissingKey {
            file: w.file().to_string(),
            key: w.key("encoder.down.0.block.0.conv1.weight"),
        });
    }
    let ch_mult = (0..levels)
        .map(|i| Ok(dim(w, &format!("encoder.down.{i}.block.0.conv1.weight"), 0)? / ch))
        .collect::<Result<Vec<_>>>()?;
    Ok(VaeConfig {
        ch,
        ch_mult,
        num_res_blocks,
        in_channels,
        out_ch: dim(w, "decoder.conv_out.weight", 0)?,
        z_channels: dim(w, "decoder.conv_in.weight", 1)?,
        embed_dim: dim(w, "post_quant_conv.weight", 1)?,
    })
}

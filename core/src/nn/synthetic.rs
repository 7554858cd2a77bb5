//! Seeded random weights for any network size, for benchmarks of full-size SD1.5 without
//! a model file: a [`TensorStore`] listing every tensor a checkpoint of that size holds
//! (LDM key layout), backed by a procedural byte source, so nothing but the index is in
//! memory until a network is loaded.

use crate::error::Result;
use crate::formats::tensor_store::{DType, TensorInfo, TensorStore};
use crate::io::ByteSource;
use crate::nn::config::{ClipConfig, UNetConfig, VaeConfig};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Uniform values in ±`AMPLITUDE`: small enough that activations stay finite through a
/// full-size UNet, which is all a benchmark needs.
const AMPLITUDE: f32 = 0.03;

/// A file of `len` bytes whose f32 element `i` (at byte `4i`) is a hash of `i` and the
/// seed, mapped to ±[`AMPLITUDE`].
struct ProceduralSource {
    seed: u64,
    len: u64,
}

impl ProceduralSource {
    fn element(&self, index: u64) -> [u8; 4] {
        // SplitMix64 finaliser over (seed, index).
        let mut z = index
            .wrapping_add(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
        ((unit * 2.0 - 1.0) * AMPLITUDE).to_le_bytes()
    }
}

impl ByteSource for ProceduralSource {
    fn name(&self) -> &str {
        "<synthetic weights>"
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        // One hash per element, not per byte: a full-size checkpoint is ~4 GB of them.
        let mut pos = offset;
        let mut rest = buf;
        while !rest.is_empty() {
            let start = (pos % 4) as usize;
            let n = (4 - start).min(rest.len());
            let (head, tail) = rest.split_at_mut(n);
            head.copy_from_slice(&self.element(pos / 4)[start..start + n]);
            pos += n as u64;
            rest = tail;
        }
        Ok(())
    }
}

/// Key → shape list being built, in LDM names.
#[derive(Default)]
struct Shapes(Vec<(String, Vec<usize>)>);

impl Shapes {
    fn add(&mut self, key: String, shape: &[usize]) {
        self.0.push((key, shape.to_vec()));
    }
    fn linear(&mut self, p: &str, inp: usize, out: usize, bias: bool) {
        self.add(format!("{p}.weight"), &[out, inp]);
        if bias {
            self.add(format!("{p}.bias"), &[out]);
        }
    }
    fn conv(&mut self, p: &str, inp: usize, out: usize, k: usize) {
        self.add(format!("{p}.weight"), &[out, inp, k, k]);
        self.add(format!("{p}.bias"), &[out]);
    }
    fn norm(&mut self, p: &str, ch: usize) {
        self.add(format!("{p}.weight"), &[ch]);
        self.add(format!("{p}.bias"), &[ch]);
    }

    fn unet_res(&mut self, p: &str, inp: usize, out: usize, emb: usize) {
        self.norm(&format!("{p}.in_layers.0"), inp);
        self.conv(&format!("{p}.in_layers.2"), inp, out, 3);
        self.linear(&format!("{p}.emb_layers.1"), emb, out, true);
        self.norm(&format!("{p}.out_layers.0"), out);
        self.conv(&format!("{p}.out_layers.3"), out, out, 3);
        if inp != out {
            self.conv(&format!("{p}.skip_connection"), inp, out, 1);
        }
    }

    fn transformer(&mut self, p: &str, ch: usize, cfg: &UNetConfig) {
        self.norm(&format!("{p}.norm"), ch);
        for proj in ["proj_in", "proj_out"] {
            if cfg.use_linear_in_transformer {
                self.linear(&format!("{p}.{proj}"), ch, ch, true);
            } else {
                self.conv(&format!("{p}.{proj}"), ch, ch, 1);
            }
        }
        for i in 0..cfg.transformer_depth {
            let t = format!("{p}.transformer_blocks.{i}");
            for (attn, ctx) in [("attn1", ch), ("attn2", cfg.context_dim)] {
                self.linear(&format!("{t}.{attn}.to_q"), ch, ch, false);
                self.linear(&format!("{t}.{attn}.to_k"), ctx, ch, false);
                self.linear(&format!("{t}.{attn}.to_v"), ctx, ch, false);
                self.linear(&format!("{t}.{attn}.to_out.0"), ch, ch, true);
            }
            for n in ["norm1", "norm2", "norm3"] {
                self.norm(&format!("{t}.{n}"), ch);
            }
            self.linear(&format!("{t}.ff.net.0.proj"), ch, 8 * ch, true);
            self.linear(&format!("{t}.ff.net.2"), 4 * ch, ch, true);
        }
    }

    fn unet(&mut self, p: &str, cfg: &UNetConfig) {
        let mc = cfg.model_channels;
        let emb = 4 * mc;
        self.linear(&format!("{p}.time_embed.0"), mc, emb, true);
        self.linear(&format!("{p}.time_embed.2"), emb, emb, true);
        self.conv(&format!("{p}.input_blocks.0.0"), cfg.in_channels, mc, 3);
        let (mut ch, mut ds, mut block) = (mc, 1, 1);
        let mut skips = vec![mc];
        let levels = cfg.channel_mult.len();
        for (level, &mult) in cfg.channel_mult.iter().enumerate() {
            for _ in 0..cfg.num_res_blocks {
                self.unet_res(&format!("{p}.input_blocks.{block}.0"), ch, mult * mc, emb);
                ch = mult * mc;
                if cfg.attention_resolutions.contains(&ds) {
                    self.transformer(&format!("{p}.input_blocks.{block}.1"), ch, cfg);
                }
                skips.push(ch);
                block += 1;
            }
            if level + 1 != levels {
                self.conv(&format!("{p}.input_blocks.{block}.0.op"), ch, ch, 3);
                skips.push(ch);
                block += 1;
                ds *= 2;
            }
        }
        self.unet_res(&format!("{p}.middle_block.0"), ch, ch, emb);
        self.transformer(&format!("{p}.middle_block.1"), ch, cfg);
        self.unet_res(&format!("{p}.middle_block.2"), ch, ch, emb);
        let mut block = 0;
        for (level, &mult) in cfg.channel_mult.iter().enumerate().rev() {
            for i in 0..=cfg.num_res_blocks {
                let skip = skips.pop().unwrap_or(0);
                let bp = format!("{p}.output_blocks.{block}");
                self.unet_res(&format!("{bp}.0"), ch + skip, mult * mc, emb);
                ch = mult * mc;
                let mut idx = 1;
                if cfg.attention_resolutions.contains(&ds) {
                    self.transformer(&format!("{bp}.1"), ch, cfg);
                    idx = 2;
                }
                if level != 0 && i == cfg.num_res_blocks {
                    self.conv(&format!("{bp}.{idx}.conv"), ch, ch, 3);
                    ds /= 2;
                }
                block += 1;
            }
        }
        self.norm(&format!("{p}.out.0"), ch);
        self.conv(&format!("{p}.out.2"), ch, cfg.out_channels, 3);
    }

    fn vae_res(&mut self, p: &str, inp: usize, out: usize) {
        self.norm(&format!("{p}.norm1"), inp);
        self.conv(&format!("{p}.conv1"), inp, out, 3);
        self.norm(&format!("{p}.norm2"), out);
        self.conv(&format!("{p}.conv2"), out, out, 3);
        if inp != out {
            self.conv(&format!("{p}.nin_shortcut"), inp, out, 1);
        }
    }

    fn vae_mid(&mut self, p: &str, ch: usize) {
        self.vae_res(&format!("{p}.block_1"), ch, ch);
        self.norm(&format!("{p}.attn_1.norm"), ch);
        for q in ["q", "k", "v", "proj_out"] {
            self.conv(&format!("{p}.attn_1.{q}"), ch, ch, 1);
        }
        self.vae_res(&format!("{p}.block_2"), ch, ch);
    }

    fn vae(&mut self, p: &str, cfg: &VaeConfig) {
        let n = cfg.ch_mult.len();
        let mut ch = cfg.ch;
        self.conv(&format!("{p}.encoder.conv_in"), cfg.in_channels, ch, 3);
        for (i, &mult) in cfg.ch_mult.iter().enumerate() {
            for j in 0..cfg.num_res_blocks {
                self.vae_res(
                    &format!("{p}.encoder.down.{i}.block.{j}"),
                    ch,
                    cfg.ch * mult,
                );
                ch = cfg.ch * mult;
            }
            if i + 1 != n {
                self.conv(&format!("{p}.encoder.down.{i}.downsample.conv"), ch, ch, 3);
            }
        }
        self.vae_mid(&format!("{p}.encoder.mid"), ch);
        self.norm(&format!("{p}.encoder.norm_out"), ch);
        self.conv(&format!("{p}.encoder.conv_out"), ch, 2 * cfg.z_channels, 3);
        self.conv(
            &format!("{p}.quant_conv"),
            2 * cfg.z_channels,
            2 * cfg.embed_dim,
            1,
        );
        self.conv(
            &format!("{p}.post_quant_conv"),
            cfg.embed_dim,
            cfg.z_channels,
            1,
        );
        let mut ch = cfg.ch * cfg.ch_mult.last().copied().unwrap_or(1);
        self.conv(&format!("{p}.decoder.conv_in"), cfg.z_channels, ch, 3);
        self.vae_mid(&format!("{p}.decoder.mid"), ch);
        for (i, &mult) in cfg.ch_mult.iter().enumerate().rev() {
            for j in 0..=cfg.num_res_blocks {
                self.vae_res(&format!("{p}.decoder.up.{i}.block.{j}"), ch, cfg.ch * mult);
                ch = cfg.ch * mult;
            }
            if i != 0 {
                self.conv(&format!("{p}.decoder.up.{i}.upsample.conv"), ch, ch, 3);
            }
        }
        self.norm(&format!("{p}.decoder.norm_out"), ch);
        self.conv(&format!("{p}.decoder.conv_out"), ch, cfg.out_ch, 3);
    }

    fn clip(&mut self, p: &str, cfg: &ClipConfig) {
        let h = cfg.hidden;
        self.add(
            format!("{p}.embeddings.token_embedding.weight"),
            &[cfg.vocab_size, h],
        );
        self.add(
            format!("{p}.embeddings.position_embedding.weight"),
            &[cfg.max_positions, h],
        );
        for i in 0..cfg.layers {
            let l = format!("{p}.encoder.layers.{i}");
            for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                self.linear(&format!("{l}.self_attn.{proj}"), h, h, true);
            }
            self.norm(&format!("{l}.layer_norm1"), h);
            self.norm(&format!("{l}.layer_norm2"), h);
            self.linear(&format!("{l}.mlp.fc1"), h, cfg.intermediate, true);
            self.linear(&format!("{l}.mlp.fc2"), cfg.intermediate, h, true);
        }
        self.norm(&format!("{p}.final_layer_norm"), h);
    }
}

/// A checkpoint-shaped store of seeded random f32 weights with the LDM prefixes
/// (`model.diffusion_model.`, `first_stage_model.`, `cond_stage_model.transformer.text_model.`)
/// for the networks given. Values are a pure function of `seed` and position.
pub fn random_weights(
    unet: Option<&UNetConfig>,
    vae: Option<&VaeConfig>,
    clip: Option<&ClipConfig>,
    seed: u64,
) -> TensorStore {
    let mut shapes = Shapes::default();
    if let Some(cfg) = unet {
        shapes.unet("model.diffusion_model", cfg);
    }
    if let Some(cfg) = vae {
        shapes.vae("first_stage_model", cfg);
    }
    if let Some(cfg) = clip {
        shapes.clip("cond_stage_model.transformer.text_model", cfg);
    }
    let mut tensors = BTreeMap::new();
    let mut offset = 0u64;
    for (key, shape) in shapes.0 {
        let numel: usize = shape.iter().product();
        let bytes = (numel * DType::F32.size()) as u64;
        tensors.insert(
            key,
            TensorInfo {
                dtype: DType::F32,
                strides: TensorInfo::contiguous_strides(&shape),
                shape,
                offset,
                storage_start: offset,
                storage_len: bytes,
            },
        );
        offset += bytes;
    }
    let source = Arc::new(ProceduralSource { seed, len: offset });
    TensorStore::new(source, tensors, BTreeMap::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any byte range, aligned or not, reads the same bytes as the elements laid end to end.
    #[test]
    fn unaligned_reads_match_whole_elements() {
        let src = ProceduralSource { seed: 3, len: 64 };
        let whole: Vec<u8> = (0..16).flat_map(|i| src.element(i)).collect();
        for (offset, len) in [(0, 64), (1, 7), (5, 11), (6, 2), (63, 1), (13, 0)] {
            let mut buf = vec![0u8; len];
            src.read_at(offset as u64, &mut buf).unwrap();
            assert_eq!(
                buf,
                whole[offset..offset + len],
                "offset {offset}, len {len}"
            );
        }
        let first = f32::from_le_bytes(src.element(0));
        assert!(first.abs() <= AMPLITUDE && first != 0.0);
    }
}

//! LDM's `UNetModel` (SD1.x; SD2.x's linear projections load too): time embedding, input
//! blocks with skip connections, middle block, output blocks, and the output head. The
//! block layout and key numbering follow `openaimodel.py` (see REFERENCE.md §2).

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::nn::config::UNetConfig;
use crate::nn::hook::AttentionHook;
use crate::nn::layers::{Conv2d, GroupNorm, Linear, GROUP_NORM_GROUPS};
use crate::nn::loader::Weights;
use crate::nn::resnet::ResBlock;
use crate::nn::timestep::timestep_embedding;
use crate::nn::transformer::SpatialTransformer;

/// One element of an LDM `TimestepEmbedSequential`.
enum Layer<B: Backend> {
    Res(ResBlock<B>),
    Attention(SpatialTransformer<B>),
    /// A plain conv: the input conv (`input_blocks.0.0`) or a downsample (`op`, 3×3,
    /// stride 2, padding 1).
    Conv(Conv2d<B>),
    /// Nearest ×2 then 3×3 conv (`conv`).
    Upsample(Conv2d<B>),
}

/// The ordered layers of one `input_blocks.i` / `middle_block` / `output_blocks.i`.
struct Block<B: Backend> {
    layers: Vec<Layer<B>>,
}

impl<B: Backend> Block<B> {
    fn forward(
        &self,
        b: &B,
        x: &B::Tensor,
        emb_silu: &B::Tensor,
        context: &B::Tensor,
        hooks: &[&dyn AttentionHook<B>],
    ) -> Result<B::Tensor> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = match layer {
                Layer::Res(r) => r.forward(b, &h, Some(emb_silu))?,
                Layer::Attention(t) => t.forward(b, &h, context, hooks)?,
                Layer::Conv(c) => c.forward(b, &h)?,
                Layer::Upsample(c) => c.forward_nearest2x(b, h)?,
            };
        }
        Ok(h)
    }
}

/// The SD1.x noise-prediction UNet.
pub struct UNet<B: Backend> {
    cfg: UNetConfig,
    time_embed_in: Linear<B>,
    time_embed_out: Linear<B>,
    input_blocks: Vec<Block<B>>,
    middle_block: Block<B>,
    output_blocks: Vec<Block<B>>,
    out_norm: GroupNorm<B>,
    out_conv: Conv2d<B>,
}

impl<B: Backend> UNet<B> {
    /// Build from weights scoped to `model.diffusion_model` (or its EMA mapping).
    pub fn load(b: &B, w: &Weights, cfg: &UNetConfig) -> Result<Self> {
        validate(cfg)?;
        let mc = cfg.model_channels;
        let emb_dim = 4 * mc;
        let levels = cfg.channel_mult.len();
        let nrb = cfg.num_res_blocks;
        let attention_at = |ds: usize| cfg.attention_resolutions.contains(&ds);
        let transformer = |w: &Weights, ch: usize| {
            SpatialTransformer::load(
                b,
                w,
                ch,
                cfg.heads_for(ch),
                cfg.transformer_depth,
                cfg.context_dim,
            )
        };

        let mut input_blocks = vec![Block {
            layers: vec![Layer::Conv(Conv2d::load(
                b,
                &w.pp("input_blocks.0.0"),
                cfg.in_channels,
                mc,
                3,
            )?)],
        }];
        let mut skip_channels = vec![mc];
        let mut ch = mc;
        let mut ds = 1;
        for (level, &mult) in cfg.channel_mult.iter().enumerate() {
            for _ in 0..nrb {
                let bw = w.pp(format!("input_blocks.{}", input_blocks.len()));
                let out = mult * mc;
                let mut layers = vec![Layer::Res(ResBlock::load_unet(
                    b,
                    &bw.pp("0"),
                    ch,
                    out,
                    emb_dim,
                )?)];
                ch = out;
                if attention_at(ds) {
                    layers.push(Layer::Attention(transformer(&bw.pp("1"), ch)?));
                }
                input_blocks.push(Block { layers });
                skip_channels.push(ch);
            }
            if level + 1 != levels {
                let bw = w.pp(format!("input_blocks.{}.0.op", input_blocks.len()));
                input_blocks.push(Block {
                    layers: vec![Layer::Conv(Conv2d::load_with(b, &bw, ch, ch, 3, 2, 1)?)],
                });
                skip_channels.push(ch);
                ds *= 2;
            }
        }

        let mw = w.pp("middle_block");
        let middle_block = Block {
            layers: vec![
                Layer::Res(ResBlock::load_unet(b, &mw.pp("0"), ch, ch, emb_dim)?),
                Layer::Attention(transformer(&mw.pp("1"), ch)?),
                Layer::Res(ResBlock::load_unet(b, &mw.pp("2"), ch, ch, emb_dim)?),
            ],
        };

        let mut output_blocks = Vec::new();
        for (level, &mult) in cfg.channel_mult.iter().enumerate().rev() {
            for i in 0..=nrb {
                let bw = w.pp(format!("output_blocks.{}", output_blocks.len()));
                let skip = skip_channels.pop().ok_or_else(|| {
                    Error::Invalid("UNet config: more output blocks than skip connections".into())
                })?;
                let out = mult * mc;
                let mut layers = vec![Layer::Res(ResBlock::load_unet(
                    b,
                    &bw.pp("0"),
                    ch + skip,
                    out,
                    emb_dim,
                )?)];
                ch = out;
                if attention_at(ds) {
                    layers.push(Layer::Attention(transformer(&bw.pp("1"), ch)?));
                }
                if level != 0 && i == nrb {
                    let idx = layers.len();
                    layers.push(Layer::Upsample(Conv2d::load(
                        b,
                        &bw.pp(format!("{idx}.conv")),
                        ch,
                        ch,
                        3,
                    )?));
                    ds /= 2;
                }
                output_blocks.push(Block { layers });
            }
        }

        Ok(Self {
            cfg: cfg.clone(),
            time_embed_in: Linear::load(b, &w.pp("time_embed.0"), mc, emb_dim)?,
            time_embed_out: Linear::load(b, &w.pp("time_embed.2"), emb_dim, emb_dim)?,
            input_blocks,
            middle_block,
            output_blocks,
            out_norm: GroupNorm::load(b, &w.pp("out.0"), ch, 1e-5)?,
            out_conv: Conv2d::load(b, &w.pp("out.2"), ch, cfg.out_channels, 3)?,
        })
    }

    pub fn config(&self) -> &UNetConfig {
        &self.cfg
    }

    /// Predicted noise for latents `x: [N, in, h, w]` at (possibly fractional)
    /// `timesteps` (one per sample) under `context: [N, L, context_dim]`. `hooks` rewrite
    /// the key/value contexts of every attention layer, self-attention included.
    pub fn forward(
        &self,
        b: &B,
        x: &B::Tensor,
        timesteps: &[f32],
        context: &B::Tensor,
        hooks: &[&dyn AttentionHook<B>],
    ) -> Result<B::Tensor> {
        let xs = b.shape(x);
        let cs = b.shape(context);
        if xs.len() != 4 || xs[1] != self.cfg.in_channels {
            return Err(Error::Invalid(format!(
                "UNet input has shape {xs:?}, expected [N, {}, h, w]",
                self.cfg.in_channels
            )));
        }
        let n = xs[0];
        if timesteps.len() != n {
            return Err(Error::Invalid(format!(
                "UNet got {} timesteps for a batch of {n}",
                timesteps.len()
            )));
        }
        if cs.len() != 3 || cs[0] != n || cs[2] != self.cfg.context_dim {
            return Err(Error::Invalid(format!(
                "UNet context has shape {cs:?}, expected [{n}, L, {}]",
                self.cfg.context_dim
            )));
        }

        let mc = self.cfg.model_channels;
        let t_emb = b.upload(&timestep_embedding(timesteps, mc), &[n, mc])?;
        let emb = self.time_embed_in.forward(b, &t_emb)?;
        let emb = self.time_embed_out.forward(b, &b.silu(&emb)?)?;
        // Every ResBlock's `emb_layers` starts with SiLU: apply it once here.
        let emb_silu = b.silu(&emb)?;

        let mut skips = Vec::with_capacity(self.input_blocks.len());
        let mut h = x.clone();
        for block in &self.input_blocks {
            h = block.forward(b, &h, &emb_silu, context, hooks)?;
            skips.push(h.clone());
        }
        h = self
            .middle_block
            .forward(b, &h, &emb_silu, context, hooks)?;
        for block in &self.output_blocks {
            let skip = skips.pop().ok_or_else(|| {
                Error::Invalid("UNet: output blocks outnumber skip connections".into())
            })?;
            h = b.concat(&[&fit_to_skip(b, &h, &skip)?, &skip], 1)?;
            h = block.forward(b, &h, &emb_silu, context, hooks)?;
        }
        let h = self.out_norm.forward_silu(b, &h)?;
        self.out_conv.forward(b, &h)
    }
}

/// A1111 lets latent sides be any size, not only multiples of 8: a level whose input had
/// an odd side `2n - 1` downsamples to `n`, and the doubled `2n` comes back one too big.
/// Like A1111's patched UNet, the upsampled tensor is resized (nearest) to the skip's size
/// at the concatenation; from `2n` to `2n - 1` nearest resizing keeps indices `0..2n-1`,
/// i.e. it is a crop.
fn fit_to_skip<B: Backend>(b: &B, h: &B::Tensor, skip: &B::Tensor) -> Result<B::Tensor> {
    let (hs, ss) = (b.shape(h), b.shape(skip));
    let mut out = h.clone();
    for axis in [2, 3] {
        if hs[axis] == ss[axis] {
            continue;
        }
        if hs[axis] != ss[axis] + 1 {
            return Err(Error::Invalid(format!(
                "UNet: upsampled {hs:?} cannot meet skip connection {ss:?}"
            )));
        }
        out = b.narrow(&out, axis, 0, ss[axis])?;
    }
    Ok(out)
}

fn validate(cfg: &UNetConfig) -> Result<()> {
    let bad = |m: String| Err(Error::Invalid(format!("UNet config: {m}")));
    if cfg.channel_mult.is_empty() || cfg.model_channels == 0 || cfg.num_res_blocks == 0 {
        return bad(format!("{cfg:?} has no levels, channels or res blocks"));
    }
    for &m in &cfg.channel_mult {
        let ch = m * cfg.model_channels;
        if !ch.is_multiple_of(GROUP_NORM_GROUPS) {
            return bad(format!(
                "width {ch} is not a multiple of 32 (GroupNorm groups)"
            ));
        }
        let heads = cfg.heads_for(ch);
        if heads == 0 || !ch.is_multiple_of(heads) {
            return bad(format!("width {ch} does not split into {heads} heads"));
        }
    }
    Ok(())
}

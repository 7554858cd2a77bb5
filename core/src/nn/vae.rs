//! LDM's `AutoencoderKL` (KL-f8): encoder to the posterior mean, decoder back to RGB.
//! Key layout as `diffusionmodules/model.py`: `encoder.down.{i}`, `decoder.up.{i}` with the
//! decoder's levels numbered from the lowest resolution's end (built in reverse), mid
//! blocks with one single-head attention over all pixels.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::nn::config::VaeConfig;
use crate::nn::layers::{Conv2d, GroupNorm, Linear};
use crate::nn::loader::Weights;
use crate::nn::resnet::ResBlock;

const VAE_NORM_EPS: f32 = 1e-6;

/// The mid-block attention (`attn_1`): GroupNorm, 1×1-conv q/k/v (applied as linear maps
/// on `[N, H·W, C]`), one head of width C, `proj_out`, residual.
struct AttnBlock<B: Backend> {
    norm: GroupNorm<B>,
    q: Linear<B>,
    k: Linear<B>,
    v: Linear<B>,
    proj_out: Linear<B>,
}

impl<B: Backend> AttnBlock<B> {
    fn load(b: &B, w: &Weights, ch: usize) -> Result<Self> {
        Ok(Self {
            norm: GroupNorm::load(b, &w.pp("norm"), ch, VAE_NORM_EPS)?,
            q: Linear::load(b, &w.pp("q"), ch, ch)?,
            k: Linear::load(b, &w.pp("k"), ch, ch)?,
            v: Linear::load(b, &w.pp("v"), ch, ch)?,
            proj_out: Linear::load(b, &w.pp("proj_out"), ch, ch)?,
        })
    }

    fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let s = b.shape(x);
        let t = b.nchw_to_nlc(&self.norm.forward(b, x)?)?;
        let q = self.q.forward(b, &t)?;
        let k = self.k.forward(b, &t)?;
        let v = self.v.forward(b, &t)?;
        let a = b.attention(&q, &k, &v, 1, false)?;
        let o = self.proj_out.forward(b, &a)?;
        b.add(x, &b.nlc_to_nchw(&o, s[2], s[3])?)
    }
}

/// `block_1`, `attn_1`, `block_2` at the lowest resolution.
struct MidBlock<B: Backend> {
    block_1: ResBlock<B>,
    attn_1: AttnBlock<B>,
    block_2: ResBlock<B>,
}

impl<B: Backend> MidBlock<B> {
    fn load(b: &B, w: &Weights, ch: usize) -> Result<Self> {
        Ok(Self {
            block_1: ResBlock::load_vae(b, &w.pp("block_1"), ch, ch)?,
            attn_1: AttnBlock::load(b, &w.pp("attn_1"), ch)?,
            block_2: ResBlock::load_vae(b, &w.pp("block_2"), ch, ch)?,
        })
    }
    fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let h = self.block_1.forward(b, x, None)?;
        let h = self.attn_1.forward(b, &h)?;
        self.block_2.forward(b, &h, None)
    }
}

/// One resolution level: res blocks, then an optional resampling conv.
struct Level<B: Backend> {
    blocks: Vec<ResBlock<B>>,
    resample: Option<Conv2d<B>>,
}

/// Zero-pads the right column and bottom row (LDM's `Downsample` pads (0, 1, 0, 1) before
/// its unpadded stride-2 conv).
fn pad_right_bottom<B: Backend>(b: &B, x: &B::Tensor) -> Result<B::Tensor> {
    let s = b.shape(x);
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let col = b.upload(&vec![0.0; n * c * h], &[n, c, h, 1])?;
    let x = b.concat(&[x, &col], 3)?;
    let row = b.upload(&vec![0.0; n * c * (w + 1)], &[n, c, 1, w + 1])?;
    b.concat(&[&x, &row], 2)
}

pub struct AutoencoderKl<B: Backend> {
    cfg: VaeConfig,
    enc_conv_in: Conv2d<B>,
    enc_levels: Vec<Level<B>>,
    enc_mid: MidBlock<B>,
    enc_norm_out: GroupNorm<B>,
    enc_conv_out: Conv2d<B>,
    quant_conv: Conv2d<B>,
    post_quant_conv: Conv2d<B>,
    dec_conv_in: Conv2d<B>,
    dec_mid: MidBlock<B>,
    /// In execution order (lowest resolution first), i.e. `decoder.up.{n-1}` … `up.0`.
    dec_levels: Vec<Level<B>>,
    dec_norm_out: GroupNorm<B>,
    dec_conv_out: Conv2d<B>,
}

impl<B: Backend> AutoencoderKl<B> {
    /// Build from weights scoped to `first_stage_model` (or unprefixed, for a `.vae.pt`).
    pub fn load(b: &B, w: &Weights, cfg: &VaeConfig) -> Result<Self> {
        if cfg.ch_mult.is_empty() || cfg.ch == 0 {
            return Err(Error::Invalid(format!("VAE config {cfg:?} has no levels")));
        }
        let n = cfg.ch_mult.len();
        let nrb = cfg.num_res_blocks;

        let e = w.pp("encoder");
        let mut ch = cfg.ch;
        let enc_conv_in = Conv2d::load(b, &e.pp("conv_in"), cfg.in_channels, ch, 3)?;
        let mut enc_levels = Vec::with_capacity(n);
        for (i, &mult) in cfg.ch_mult.iter().enumerate() {
            let lw = e.pp(format!("down.{i}"));
            let out = cfg.ch * mult;
            let mut blocks = Vec::with_capacity(nrb);
            for j in 0..nrb {
                blocks.push(ResBlock::load_vae(
                    b,
                    &lw.pp(format!("block.{j}")),
                    ch,
                    out,
                )?);
                ch = out;
            }
            let resample = if i + 1 != n {
                Some(Conv2d::load_with(
                    b,
                    &lw.pp("downsample.conv"),
                    ch,
                    ch,
                    3,
                    2,
                    0,
                )?)
            } else {
                None
            };
            enc_levels.push(Level { blocks, resample });
        }
        let enc_mid = MidBlock::load(b, &e.pp("mid"), ch)?;
        let enc_norm_out = GroupNorm::load(b, &e.pp("norm_out"), ch, VAE_NORM_EPS)?;
        let enc_conv_out = Conv2d::load(b, &e.pp("conv_out"), ch, 2 * cfg.z_channels, 3)?;
        let quant_conv = Conv2d::load(
            b,
            &w.pp("quant_conv"),
            2 * cfg.z_channels,
            2 * cfg.embed_dim,
            1,
        )?;
        let post_quant_conv = Conv2d::load(
            b,
            &w.pp("post_quant_conv"),
            cfg.embed_dim,
            cfg.z_channels,
            1,
        )?;

        let d = w.pp("decoder");
        let mut ch = cfg.ch * cfg.ch_mult[n - 1];
        let dec_conv_in = Conv2d::load(b, &d.pp("conv_in"), cfg.z_channels, ch, 3)?;
        let dec_mid = MidBlock::load(b, &d.pp("mid"), ch)?;
        let mut dec_levels = Vec::with_capacity(n);
        for (i, &mult) in cfg.ch_mult.iter().enumerate().rev() {
            let lw = d.pp(format!("up.{i}"));
            let out = cfg.ch * mult;
            let mut blocks = Vec::with_capacity(nrb + 1);
            for j in 0..=nrb {
                blocks.push(ResBlock::load_vae(
                    b,
                    &lw.pp(format!("block.{j}")),
                    ch,
                    out,
                )?);
                ch = out;
            }
            let resample = if i != 0 {
                Some(Conv2d::load(b, &lw.pp("upsample.conv"), ch, ch, 3)?)
            } else {
                None
            };
            dec_levels.push(Level { blocks, resample });
        }
        let dec_norm_out = GroupNorm::load(b, &d.pp("norm_out"), ch, VAE_NORM_EPS)?;
        let dec_conv_out = Conv2d::load(b, &d.pp("conv_out"), ch, cfg.out_ch, 3)?;

        Ok(Self {
            cfg: cfg.clone(),
            enc_conv_in,
            enc_levels,
            enc_mid,
            enc_norm_out,
            enc_conv_out,
            quant_conv,
            post_quant_conv,
            dec_conv_in,
            dec_mid,
            dec_levels,
            dec_norm_out,
            dec_conv_out,
        })
    }

    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// Latents `z: [N, embed_dim, h, w]` (already divided by the scale factor) → RGB
    /// `[N, out_ch, 8h, 8w]`, roughly in [-1, 1].
    pub fn decode(&self, b: &B, z: &B::Tensor) -> Result<B::Tensor> {
        let s = b.shape(z);
        if s.len() != 4 || s[1] != self.cfg.embed_dim {
            return Err(Error::Invalid(format!(
                "VAE decode input has shape {s:?}, expected [N, {}, h, w]",
                self.cfg.embed_dim
            )));
        }
        let h = self.post_quant_conv.forward(b, z)?;
        let mut h = self.dec_conv_in.forward(b, &h)?;
        h = self.dec_mid.forward(b, &h)?;
        for level in &self.dec_levels {
            // Each level is four times the size of the last: from where the activations
            // are large, the backend may keep them in a compact form.
            h = b.compact(h)?;
            for block in &level.blocks {
                h = block.forward_owned(b, h, None)?;
            }
            if let Some(conv) = &level.resample {
                h = conv.forward_nearest2x(b, h)?;
            }
        }
        // Normalised in its own storage, then back to full precision for the last conv,
        // whose three channels are the image.
        let h = self.dec_norm_out.forward_silu_owned(b, h)?;
        self.dec_conv_out.forward(b, &b.widen(h)?)
    }

    /// RGB `x: [N, in_channels, H, W]` in [-1, 1] → the posterior mean
    /// `[N, embed_dim, H/8, W/8]` (unscaled).
    pub fn encode(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let s = b.shape(x);
        if s.len() != 4 || s[1] != self.cfg.in_channels {
            return Err(Error::Invalid(format!(
                "VAE encode input has shape {s:?}, expected [N, {}, H, W]",
                self.cfg.in_channels
            )));
        }
        let mut h = self.enc_conv_in.forward(b, x)?;
        for level in &self.enc_levels {
            for block in &level.blocks {
                h = block.forward_owned(b, h, None)?;
            }
            if let Some(conv) = &level.resample {
                h = conv.forward(b, &pad_right_bottom(b, &h)?)?;
            }
        }
        h = self.enc_mid.forward(b, &h)?;
        let h = self.enc_norm_out.forward_silu(b, &h)?;
        let h = self.enc_conv_out.forward(b, &h)?;
        let moments = self.quant_conv.forward(b, &h)?;
        b.narrow(&moments, 1, 0, self.cfg.embed_dim)
    }
}

//! SwinIR (Liang et al. 2021), as spandrel builds it from a state dict: shallow
//! convolution, residual Swin transformer groups (window attention with a learned relative
//! position bias; every second block shifts its windows by half a window and masks the
//! wrapped-around pairs), and one of four reconstruction heads — `nearest+conv` (the
//! real-world models A1111 ships, e.g. `003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN`),
//! `pixelshuffle` (classical SR), `pixelshuffledirect` (lightweight SR) or none
//! (denoising / JPEG, scale 1).
//!
//! Read off the tensors as spandrel does: embedding width from `conv_first`, MLP ratio from
//! `fc1`, window size from the relative position index (`√len`), training image size from
//! the stored shifted-window mask (`√windows × window`, else 64), depths and heads per
//! group, `1conv`/`3conv` from `conv_after_body`, the head from which convolutions exist,
//! and the pixel range (255 for window 7, the JPEG models; else 1). The relative position
//! index and the masks are recomputed (they are fixed functions of the window geometry).
//! Files whose first convolution follows a pixel unshuffle (`conv_first.1`) are refused.

use crate::state_dict::StateDict;
use easel_core::backend::Backend;
use easel_core::nn::layers::{Conv2d, LayerNorm, Linear};
use easel_core::nn::Weights;
use easel_core::{Error, Result};
use std::collections::HashMap;
use std::sync::Mutex;

/// Mean subtracted from RGB inputs (3-channel models), from SwinIR's training code.
pub const RGB_MEAN: [f32; 3] = [0.4488, 0.4371, 0.4040];
/// Reconstruction features of every head that has them (hard-coded in SwinIR).
const NUM_FEAT: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upsampler {
    NearestConv,
    PixelShuffle,
    PixelShuffleDirect,
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SwinIrConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub embed_dim: usize,
    pub depths: Vec<usize>,
    pub heads: Vec<usize>,
    pub window: usize,
    pub mlp_hidden: usize,
    pub img_size: usize,
    pub upsampler: Upsampler,
    pub scale: usize,
    pub three_conv: bool,
    pub img_range: f32,
}

/// spandrel's detection rule.
pub fn detect(sd: &StateDict) -> bool {
    sd.contains("layers.0.residual_group.blocks.0.norm1.weight")
        && (sd.contains("conv_first.weight") || sd.contains("conv_first.1.weight"))
        && sd.contains("layers.0.residual_group.blocks.0.mlp.fc1.bias")
        && sd.contains("layers.0.residual_group.blocks.0.attn.relative_position_index")
}

fn isqrt(n: usize) -> usize {
    let mut r = (n as f64).sqrt() as usize;
    while r * r > n {
        r -= 1;
    }
    while (r + 1) * (r + 1) <= n {
        r += 1;
    }
    r
}

pub fn config(sd: &StateDict) -> Result<SwinIrConfig> {
    let file = sd.file();
    if sd.contains("conv_first.1.weight") {
        return Err(Error::format(
            file,
            "SwinIR with a pixel-unshuffled input (`conv_first.1`) is not supported",
        ));
    }
    let upsampler = if sd.contains("conv_before_upsample.0.weight") {
        if sd.contains("conv_up1.weight") {
            Upsampler::NearestConv
        } else {
            Upsampler::PixelShuffle
        }
    } else if sd.contains("upsample.0.weight") {
        Upsampler::PixelShuffleDirect
    } else {
        Upsampler::None
    };
    let in_channels = sd.dim("conv_first.weight", 1)?;
    let out_channels = if sd.contains("conv_last.weight") {
        sd.dim("conv_last.weight", 0)?
    } else {
        in_channels
    };
    let scale = match upsampler {
        Upsampler::NearestConv => {
            1usize
                << sd
                    .keys()
                    .filter(|k| k.contains("conv_up") && !k.contains("bias"))
                    .count()
        }
        Upsampler::PixelShuffle => {
            let mut s = 1;
            for i in (0..10).step_by(2) {
                let Some(shape) = sd.shape(&format!("upsample.{i}.weight")) else {
                    break;
                };
                let feat = shape.get(1).copied().unwrap_or(0).max(1);
                s *= isqrt(shape[0] / feat);
            }
            s
        }
        Upsampler::PixelShuffleDirect => isqrt(sd.dim("upsample.0.bias", 0)? / out_channels.max(1)),
        Upsampler::None => 1,
    };
    let embed_dim = sd.dim("conv_first.weight", 0)?;
    let mlp_hidden = sd.dim("layers.0.residual_group.blocks.0.mlp.fc1.bias", 0)?;
    let window = isqrt(sd.dim(
        "layers.0.residual_group.blocks.0.attn.relative_position_index",
        0,
    )?);
    let img_size = match sd.shape("layers.0.residual_group.blocks.1.attn_mask") {
        Some(s) => (((s[0] as f64).sqrt()) * window as f64) as usize,
        None => 64,
    };
    let layers = sd.seq_len("layers");
    let mut depths = Vec::with_capacity(layers);
    let mut heads = Vec::with_capacity(layers);
    for i in 0..layers {
        depths.push(sd.seq_len(&format!("layers.{i}.residual_group.blocks")));
        heads.push(sd.dim(
            &format!("layers.{i}.residual_group.blocks.0.attn.relative_position_bias_table"),
            1,
        )?);
    }
    if window == 0 || scale == 0 || embed_dim == 0 || heads.contains(&0) {
        return Err(Error::format(
            file,
            format!(
                "SwinIR with window {window}, scale {scale}, width {embed_dim}, heads {heads:?}"
            ),
        ));
    }
    if let Some(bad) = heads.iter().find(|&&h| !embed_dim.is_multiple_of(h)) {
        return Err(Error::format(
            file,
            format!("SwinIR width {embed_dim} does not split into {bad} heads"),
        ));
    }
    Ok(SwinIrConfig {
        in_channels,
        out_channels,
        embed_dim,
        depths,
        heads,
        window,
        mlp_hidden,
        img_size,
        upsampler,
        scale,
        three_conv: !sd.contains("conv_after_body.weight"),
        img_range: if window == 7 { 255.0 } else { 1.0 },
    })
}

/// `conv` of an RSTB or `conv_after_body`: one 3×3 convolution, or three (3×3 to a
/// quarter width, 1×1, 3×3 back) with leaky ReLUs (0.2) between.
enum ResidualConv<B: Backend> {
    One(Conv2d<B>),
    Three([Conv2d<B>; 3]),
}

impl<B: Backend> ResidualConv<B> {
    fn load(b: &B, w: &Weights, dim: usize, three: bool) -> Result<Self> {
        if three {
            let q = dim / 4;
            Ok(Self::Three([
                Conv2d::load(b, &w.pp("0"), dim, q, 3)?,
                Conv2d::load(b, &w.pp("2"), q, q, 1)?,
                Conv2d::load(b, &w.pp("4"), q, dim, 3)?,
            ]))
        } else {
            Ok(Self::One(Conv2d::load(b, w, dim, dim, 3)?))
        }
    }
    fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        match self {
            Self::One(c) => c.forward(b, x),
            Self::Three([c0, c1, c2]) => {
                let h = b.leaky_relu(&c0.forward(b, x)?, 0.2)?;
                let h = b.leaky_relu(&c1.forward(b, &h)?, 0.2)?;
                c2.forward(b, &h)
            }
        }
    }
}

/// SwinIR's relative position index of a `window×window` window, `[window⁴]` row-major.
fn relative_position_index(window: usize) -> Vec<usize> {
    let n = window * window;
    let mut idx = Vec::with_capacity(n * n);
    for i in 0..n {
        let (yi, xi) = (i / window, i % window);
        for j in 0..n {
            let (yj, xj) = (j / window, j % window);
            let dy = yi + window - 1 - yj;
            let dx = xi + window - 1 - xj;
            idx.push(dy * (2 * window - 1) + dx);
        }
    }
    idx
}

/// The shifted-window mask for an `h×w` token grid: `[nW, window², window²]`, 0 where two
/// tokens came from the same region before the roll, −100 elsewhere.
fn shifted_window_mask(h: usize, w: usize, window: usize, shift: usize) -> Vec<f32> {
    let region = |v: usize, len: usize| -> usize {
        if v < len - window {
            0
        } else if v < len - shift {
            1
        } else {
            2
        }
    };
    let (nh, nw) = (h / window, w / window);
    let n = window * window;
    let mut out = Vec::with_capacity(nh * nw * n * n);
    for wy in 0..nh {
        for wx in 0..nw {
            let labels: Vec<usize> = (0..n)
                .map(|t| {
                    let y = wy * window + t / window;
                    let x = wx * window + t % window;
                    region(y, h) * 3 + region(x, w)
                })
                .collect();
            for &a in &labels {
                for &c in &labels {
                    out.push(if a == c { 0.0 } else { -100.0 });
                }
            }
        }
    }
    out
}

struct SwinBlock<B: Backend> {
    window: usize,
    shift: usize,
    heads: usize,
    norm1: LayerNorm<B>,
    qkv: Linear<B>,
    proj: Linear<B>,
    /// `[heads, window², window²]`.
    bias: B::Tensor,
    norm2: LayerNorm<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
}

impl<B: Backend> SwinBlock<B> {
    fn load(b: &B, w: &Weights, cfg: &SwinIrConfig, heads: usize, index: usize) -> Result<Self> {
        let dim = cfg.embed_dim;
        let (mut window, mut shift) = (
            cfg.window,
            if index.is_multiple_of(2) {
                0
            } else {
                cfg.window / 2
            },
        );
        if cfg.img_size <= window {
            window = cfg.img_size;
            shift = 0;
        }
        let side = 2 * window - 1;
        let table = w
            .pp("attn")
            .get("relative_position_bias_table", &[side * side, heads])?;
        let n = window * window;
        let index = relative_position_index(window);
        let mut bias = vec![0f32; heads * n * n];
        for (ij, &r) in index.iter().enumerate() {
            for h in 0..heads {
                bias[h * n * n + ij] = table[r * heads + h];
            }
        }
        Ok(Self {
            window,
            shift,
            heads,
            norm1: LayerNorm::load(b, &w.pp("norm1"), dim)?,
            qkv: Linear::load(b, &w.pp("attn.qkv"), dim, 3 * dim)?,
            proj: Linear::load(b, &w.pp("attn.proj"), dim, dim)?,
            bias: b.upload_weight(&bias, &[heads, n, n])?,
            norm2: LayerNorm::load(b, &w.pp("norm2"), dim)?,
            fc1: Linear::load(b, &w.pp("mlp.fc1"), dim, cfg.mlp_hidden)?,
            fc2: Linear::load(b, &w.pp("mlp.fc2"), cfg.mlp_hidden, dim)?,
        })
    }

    fn forward(
        &self,
        b: &B,
        x: &B::Tensor,
        h: usize,
        w: usize,
        masks: &MaskCache<B>,
    ) -> Result<B::Tensor> {
        let c = b.shape(x)[2];
        let xn = self.norm1.forward(b, x)?;
        let windows = b.window_partition(&xn, h, w, self.window, self.shift)?;
        let qkv = self.qkv.forward(b, &windows)?;
        let q = b.narrow(&qkv, 2, 0, c)?;
        let k = b.narrow(&qkv, 2, c, c)?;
        let v = b.narrow(&qkv, 2, 2 * c, c)?;
        let mask = if self.shift > 0 {
            Some(masks.get(b, h, w, self.window, self.shift)?)
        } else {
            None
        };
        let attn = b.window_attention(&q, &k, &v, self.heads, &self.bias, mask.as_ref())?;
        let attn = self.proj.forward(b, &attn)?;
        let merged = b.window_merge(&attn, h, w, self.window, self.shift)?;
        let x = b.add(x, &merged)?;
        let mlp = self.fc2.forward(
            b,
            &b.gelu(&self.fc1.forward(b, &self.norm2.forward(b, &x)?)?)?,
        )?;
        b.add(&x, &mlp)
    }
}

/// Shifted-window masks by grid size, made once per size and reused by every block.
/// (grid height, grid width, window, shift).
type MaskKey = (usize, usize, usize, usize);

struct MaskCache<B: Backend> {
    masks: Mutex<HashMap<MaskKey, B::Tensor>>,
}

impl<B: Backend> MaskCache<B> {
    fn get(&self, b: &B, h: usize, w: usize, window: usize, shift: usize) -> Result<B::Tensor> {
        let key = (h, w, window, shift);
        let mut masks = self.masks.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = masks.get(&key) {
            return Ok(m.clone());
        }
        let n = window * window;
        let mask = b.upload(
            &shifted_window_mask(h, w, window, shift),
            &[(h / window) * (w / window), n, n],
        )?;
        masks.insert(key, mask.clone());
        Ok(mask)
    }
}

/// A residual Swin transformer group.
struct Rstb<B: Backend> {
    blocks: Vec<SwinBlock<B>>,
    conv: ResidualConv<B>,
}

enum Head<B: Backend> {
    NearestConv {
        before: Conv2d<B>,
        ups: Vec<Conv2d<B>>,
        hr: Conv2d<B>,
        last: Conv2d<B>,
    },
    PixelShuffle {
        before: Conv2d<B>,
        /// (convolution, shuffle factor)
        ups: Vec<(Conv2d<B>, usize)>,
        last: Conv2d<B>,
    },
    Direct {
        conv: Conv2d<B>,
    },
    Denoise {
        last: Conv2d<B>,
    },
}

pub struct SwinIr<B: Backend> {
    pub config: SwinIrConfig,
    conv_first: Conv2d<B>,
    patch_norm: Option<LayerNorm<B>>,
    layers: Vec<Rstb<B>>,
    norm: LayerNorm<B>,
    conv_after_body: ResidualConv<B>,
    head: Head<B>,
    masks: MaskCache<B>,
}

impl<B: Backend> SwinIr<B> {
    pub fn load(b: &B, sd: &StateDict) -> Result<Self> {
        let config = config(sd)?;
        let w = sd.weights();
        let dim = config.embed_dim;
        let mut layers = Vec::with_capacity(config.depths.len());
        for (i, (&depth, &heads)) in config.depths.iter().zip(&config.heads).enumerate() {
            let lw = w.pp(format!("layers.{i}"));
            let blocks = (0..depth)
                .map(|j| {
                    SwinBlock::load(
                        b,
                        &lw.pp(format!("residual_group.blocks.{j}")),
                        &config,
                        heads,
                        j,
                    )
                })
                .collect::<Result<Vec<_>>>()?;
            layers.push(Rstb {
                blocks,
                conv: ResidualConv::load(b, &lw.pp("conv"), dim, config.three_conv)?,
            });
        }
        let out = config.out_channels;
        let head = match config.upsampler {
            Upsampler::NearestConv => Head::NearestConv {
                before: Conv2d::load(b, &w.pp("conv_before_upsample.0"), dim, NUM_FEAT, 3)?,
                ups: (1..=config.scale.trailing_zeros() as usize)
                    .map(|i| Conv2d::load(b, &w.pp(format!("conv_up{i}")), NUM_FEAT, NUM_FEAT, 3))
                    .collect::<Result<Vec<_>>>()?,
                hr: Conv2d::load(b, &w.pp("conv_hr"), NUM_FEAT, NUM_FEAT, 3)?,
                last: Conv2d::load(b, &w.pp("conv_last"), NUM_FEAT, out, 3)?,
            },
            Upsampler::PixelShuffle => {
                let factors: Vec<usize> = if config.scale.is_power_of_two() {
                    vec![2; config.scale.trailing_zeros() as usize]
                } else if config.scale == 3 {
                    vec![3]
                } else {
                    return Err(Error::format(
                        sd.file(),
                        format!(
                            "SwinIR pixel-shuffle scale {} (only 2ⁿ and 3 exist)",
                            config.scale
                        ),
                    ));
                };
                Head::PixelShuffle {
                    before: Conv2d::load(b, &w.pp("conv_before_upsample.0"), dim, NUM_FEAT, 3)?,
                    ups: factors
                        .iter()
                        .enumerate()
                        .map(|(i, &f)| {
                            Ok((
                                Conv2d::load(
                                    b,
                                    &w.pp(format!("upsample.{}", 2 * i)),
                                    NUM_FEAT,
                                    f * f * NUM_FEAT,
                                    3,
                                )?,
                                f,
                            ))
                        })
                        .collect::<Result<Vec<_>>>()?,
                    last: Conv2d::load(b, &w.pp("conv_last"), NUM_FEAT, out, 3)?,
                }
            }
            Upsampler::PixelShuffleDirect => Head::Direct {
                conv: Conv2d::load(
                    b,
                    &w.pp("upsample.0"),
                    dim,
                    config.scale * config.scale * out,
                    3,
                )?,
            },
            Upsampler::None => Head::Denoise {
                last: Conv2d::load(b, &w.pp("conv_last"), dim, out, 3)?,
            },
        };
        Ok(Self {
            conv_first: Conv2d::load(b, &w.pp("conv_first"), config.in_channels, dim, 3)?,
            patch_norm: if sd.contains("patch_embed.norm.weight") {
                Some(LayerNorm::load(b, &w.pp("patch_embed.norm"), dim)?)
            } else {
                None
            },
            layers,
            norm: LayerNorm::load(b, &w.pp("norm"), dim)?,
            conv_after_body: ResidualConv::load(
                b,
                &w.pp("conv_after_body"),
                dim,
                config.three_conv,
            )?,
            head,
            masks: MaskCache {
                masks: Mutex::new(HashMap::new()),
            },
            config,
        })
    }

    fn features(&self, b: &B, x: &B::Tensor, h: usize, w: usize) -> Result<B::Tensor> {
        let mut t = b.nchw_to_nlc(x)?;
        if let Some(n) = &self.patch_norm {
            t = n.forward(b, &t)?;
        }
        for layer in &self.layers {
            let mut y = t.clone();
            for block in &layer.blocks {
                y = block.forward(b, &y, h, w, &self.masks)?;
            }
            let y = layer.conv.forward(b, &b.nlc_to_nchw(&y, h, w)?)?;
            t = b.add(&b.nchw_to_nlc(&y)?, &t)?;
        }
        let t = self.norm.forward(b, &t)?;
        b.nlc_to_nchw(&t, h, w)
    }

    /// `x: [1, C, H, W]`, already shifted by the mean, scaled by the range and padded to a
    /// multiple of the window → `[1, C, H·s, W·s]` before the mean is added back.
    pub fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let shape = b.shape(x);
        let (h, w) = (shape[2], shape[3]);
        let first = self.conv_first.forward(b, x)?;
        let body = b.add(
            &self
                .conv_after_body
                .forward(b, &self.features(b, &first, h, w)?)?,
            &first,
        )?;
        match &self.head {
            Head::NearestConv {
                before,
                ups,
                hr,
                last,
            } => {
                let mut t = b.leaky_relu(&before.forward(b, &body)?, 0.01)?;
                for up in ups {
                    t = b.leaky_relu(&up.forward(b, &b.upsample_nearest2x(&t)?)?, 0.2)?;
                }
                last.forward(b, &b.leaky_relu(&hr.forward(b, &t)?, 0.2)?)
            }
            Head::PixelShuffle { before, ups, last } => {
                let mut t = b.leaky_relu(&before.forward(b, &body)?, 0.01)?;
                for (conv, f) in ups {
                    t = b.pixel_shuffle(&conv.forward(b, &t)?, *f)?;
                }
                last.forward(b, &t)
            }
            Head::Direct { conv } => b.pixel_shuffle(&conv.forward(b, &body)?, self.config.scale),
            Head::Denoise { last } => b.add(x, &last.forward(b, &body)?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_index_is_zero_centred_like_swinir() {
        let idx = relative_position_index(2);
        // Token 0 against itself: offset (0, 0) → (w−1)·(2w−1) + (w−1) = 4.
        assert_eq!(idx[0], 4);
        // Token 0 (0,0) against token 3 (1,1): offset (−1, −1) → 0·3 + 0 = 0.
        assert_eq!(idx[3], 0);
        // Token 3 against token 0: offset (1, 1) → 2·3 + 2 = 8.
        assert_eq!(idx[12], 8);
    }

    #[test]
    fn mask_separates_wrapped_regions() {
        let m = shifted_window_mask(4, 4, 2, 1);
        assert_eq!(m.len(), 4 * 16);
        // The first window holds tokens of one region only.
        assert!(m[..16].iter().all(|&v| v == 0.0));
        // The last window mixes all four corners: token 0 and token 3 differ.
        assert_eq!(m[3 * 16 + 3], -100.0);
    }
}

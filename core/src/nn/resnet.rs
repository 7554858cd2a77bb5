//! The residual block shared by the UNet (`ResBlock`, with a time embedding) and the VAE
//! (`ResnetBlock`, without): GroupNorm+SiLU → conv3×3 → (+ embedding) → GroupNorm+SiLU →
//! conv3×3, plus the input (through a 1×1 conv when the width changes).

use crate::backend::Backend;
use crate::error::Result;
use crate::nn::layers::{Conv2d, GroupNorm, Linear};
use crate::nn::loader::Weights;

pub struct ResBlock<B: Backend> {
    norm1: GroupNorm<B>,
    conv1: Conv2d<B>,
    /// `emb_layers.1`: projects the (already SiLU-activated) time embedding to a
    /// per-channel offset. UNet only.
    emb_proj: Option<Linear<B>>,
    norm2: GroupNorm<B>,
    conv2: Conv2d<B>,
    /// 1×1 conv on the residual path when `in_ch != out_ch`.
    skip: Option<Conv2d<B>>,
}

impl<B: Backend> ResBlock<B> {
    /// LDM `openaimodel.ResBlock` keys: `in_layers.{0,2}`, `emb_layers.1`,
    /// `out_layers.{0,3}`, `skip_connection`; GroupNorm eps 1e-5.
    pub fn load_unet(
        b: &B,
        w: &Weights,
        in_ch: usize,
        out_ch: usize,
        emb_dim: usize,
    ) -> Result<Self> {
        let eps = 1e-5;
        Ok(Self {
            norm1: GroupNorm::load(b, &w.pp("in_layers.0"), in_ch, eps)?,
            conv1: Conv2d::load(b, &w.pp("in_layers.2"), in_ch, out_ch, 3)?,
            emb_proj: Some(Linear::load(b, &w.pp("emb_layers.1"), emb_dim, out_ch)?),
            norm2: GroupNorm::load(b, &w.pp("out_layers.0"), out_ch, eps)?,
            conv2: Conv2d::load(b, &w.pp("out_layers.3"), out_ch, out_ch, 3)?,
            skip: if in_ch == out_ch {
                None
            } else {
                Some(Conv2d::load(b, &w.pp("skip_connection"), in_ch, out_ch, 1)?)
            },
        })
    }

    /// LDM `diffusionmodules.model.ResnetBlock` keys (VAE): `norm1`, `conv1`, `norm2`,
    /// `conv2`, `nin_shortcut`; GroupNorm eps 1e-6.
    pub fn load_vae(b: &B, w: &Weights, in_ch: usize, out_ch: usize) -> Result<Self> {
        let eps = 1e-6;
        Ok(Self {
            norm1: GroupNorm::load(b, &w.pp("norm1"), in_ch, eps)?,
            conv1: Conv2d::load(b, &w.pp("conv1"), in_ch, out_ch, 3)?,
            emb_proj: None,
            norm2: GroupNorm::load(b, &w.pp("norm2"), out_ch, eps)?,
            conv2: Conv2d::load(b, &w.pp("conv2"), out_ch, out_ch, 3)?,
            skip: if in_ch == out_ch {
                None
            } else {
                Some(Conv2d::load(b, &w.pp("nin_shortcut"), in_ch, out_ch, 1)?)
            },
        })
    }

    /// `x: [N, in, H, W]`; `emb_silu: [N, emb_dim]` is SiLU(time embedding), required for
    /// UNet blocks and ignored by VAE blocks.
    pub fn forward(&self, b: &B, x: &B::Tensor, emb_silu: Option<&B::Tensor>) -> Result<B::Tensor> {
        let h = self.branch(b, self.norm1.forward_silu(b, x)?, emb_silu)?;
        match &self.skip {
            Some(skip) => b.add(&skip.forward(b, x)?, &h),
            None => b.add(x, &h),
        }
    }

    /// [`forward`](Self::forward) of an `x` no one else holds. A block that changes the
    /// width adds its 1×1 conv of `x` rather than `x` itself, so it takes that conv first
    /// and then normalises `x` in `x`'s own storage: `x`, its normalised copy and the first
    /// conv's output never coexist. At the VAE decoder's first 512² block (256 → 128
    /// channels) that lowers the block's peak from 640 to 512 MiB per image, and with it
    /// the decode's. Same arithmetic, same result to the bit.
    pub fn forward_owned(
        &self,
        b: &B,
        x: B::Tensor,
        emb_silu: Option<&B::Tensor>,
    ) -> Result<B::Tensor> {
        let Some(skip) = &self.skip else {
            return self.forward(b, &x, emb_silu);
        };
        let residual = skip.forward(b, &x)?;
        let h = self.branch(b, self.norm1.forward_silu_owned(b, x)?, emb_silu)?;
        b.add(&residual, &h)
    }

    /// The residual branch from the normalised input `a`: conv1, the embedding's offset,
    /// GroupNorm+SiLU (in the conv output's own storage), conv2. Each intermediate is freed
    /// as soon as the next exists: at the VAE decoder's 512² level they are 128–256 MiB
    /// each, and keeping them raised the decode's peak by 384 MiB.
    fn branch(&self, b: &B, a: B::Tensor, emb_silu: Option<&B::Tensor>) -> Result<B::Tensor> {
        let mut h = self.conv1.forward(b, &a)?;
        drop(a);
        if let (Some(proj), Some(emb)) = (&self.emb_proj, emb_silu) {
            let offset = proj.forward(b, emb)?;
            h = b.add_channel_vector(&h, &offset)?;
        }
        let a = self.norm2.forward_silu_owned(b, h)?;
        self.conv2.forward(b, &a)
    }
}

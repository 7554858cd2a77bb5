//! The leaf layers every network is built from, each holding its uploaded weights and
//! loading them by their LDM/HF short names (`weight`, `bias`).

use crate::backend::Backend;
use crate::error::Result;
use crate::nn::loader::Weights;

/// `y = x · Wᵀ (+ b)` with `W: [out, in]`. Also loads 1×1 conv weights `[out, in, 1, 1]`
/// (LDM's `proj_in`/`proj_out` and the VAE's attention projections), which are the same
/// map applied per pixel.
pub struct Linear<B: Backend> {
    weight: B::Tensor,
    bias: Option<B::Tensor>,
}

impl<B: Backend> Linear<B> {
    pub fn load(b: &B, w: &Weights, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Self {
            weight: w.load(b, "weight", &[out_dim, in_dim])?,
            bias: Some(w.load(b, "bias", &[out_dim])?),
        })
    }
    pub fn load_no_bias(b: &B, w: &Weights, in_dim: usize, out_dim: usize) -> Result<Self> {
        Ok(Self {
            weight: w.load(b, "weight", &[out_dim, in_dim])?,
            bias: None,
        })
    }
    pub fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        b.linear(x, &self.weight, self.bias.as_ref())
    }
    /// The `[out, in]` weight (for fused backend ops that take several layers at once).
    pub fn weight(&self) -> &B::Tensor {
        &self.weight
    }
    pub fn bias(&self) -> Option<&B::Tensor> {
        self.bias.as_ref()
    }
}

/// Square-kernel 2-D convolution with bias.
pub struct Conv2d<B: Backend> {
    weight: B::Tensor,
    bias: B::Tensor,
    stride: usize,
    padding: usize,
}

impl<B: Backend> Conv2d<B> {
    /// `kernel`×`kernel` convolution with "same" padding (`kernel / 2`) and stride 1.
    pub fn load(b: &B, w: &Weights, in_ch: usize, out_ch: usize, kernel: usize) -> Result<Self> {
        Self::load_with(b, w, in_ch, out_ch, kernel, 1, kernel / 2)
    }
    pub fn load_with(
        b: &B,
        w: &Weights,
        in_ch: usize,
        out_ch: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        Ok(Self {
            weight: w.load(b, "weight", &[out_ch, in_ch, kernel, kernel])?,
            bias: w.load(b, "bias", &[out_ch])?,
            stride,
            padding,
        })
    }
    pub fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        b.conv2d(x, &self.weight, Some(&self.bias), self.stride, self.padding)
    }
    /// The convolution of `x` upsampled 2× (nearest), as the backend's
    /// [`Backend::conv2d_nearest2x`] computes it.
    pub fn forward_nearest2x(&self, b: &B, x: B::Tensor) -> Result<B::Tensor> {
        b.conv2d_nearest2x(x, &self.weight, Some(&self.bias), self.stride, self.padding)
    }
}

/// Groups of every GroupNorm in SD1.x (LDM's `Normalize`).
pub const GROUP_NORM_GROUPS: usize = 32;

/// Group norm with [`GROUP_NORM_GROUPS`] groups and per-channel affine.
pub struct GroupNorm<B: Backend> {
    gamma: B::Tensor,
    beta: B::Tensor,
    groups: usize,
    eps: f32,
}

impl<B: Backend> GroupNorm<B> {
    pub fn load(b: &B, w: &Weights, channels: usize, eps: f32) -> Result<Self> {
        Ok(Self {
            gamma: w.load(b, "weight", &[channels])?,
            beta: w.load(b, "bias", &[channels])?,
            groups: GROUP_NORM_GROUPS,
            eps,
        })
    }
    pub fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        b.group_norm(x, self.groups, &self.gamma, &self.beta, self.eps, false)
    }
    /// Norm followed by SiLU, fused where the backend can.
    pub fn forward_silu(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        b.group_norm(x, self.groups, &self.gamma, &self.beta, self.eps, true)
    }

    /// [`forward_silu`](Self::forward_silu) of a tensor no one else holds, possibly in its
    /// own storage (see [`Backend::group_norm_owned`]).
    pub fn forward_silu_owned(&self, b: &B, x: B::Tensor) -> Result<B::Tensor> {
        b.group_norm_owned(x, self.groups, &self.gamma, &self.beta, self.eps, true)
    }
}

/// Layer norm over the last dim.
pub struct LayerNorm<B: Backend> {
    gamma: B::Tensor,
    beta: B::Tensor,
    eps: f32,
}

impl<B: Backend> LayerNorm<B> {
    /// torch's default eps, used by CLIP and the UNet transformer blocks.
    pub const EPS: f32 = 1e-5;

    pub fn load(b: &B, w: &Weights, width: usize) -> Result<Self> {
        Ok(Self {
            gamma: w.load(b, "weight", &[width])?,
            beta: w.load(b, "bias", &[width])?,
            eps: Self::EPS,
        })
    }
    pub fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        b.layer_norm(x, &self.gamma, &self.beta, self.eps)
    }
}

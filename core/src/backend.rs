//! `Backend`: the tensor operations the three SD networks need. `UNet<B>`, `Vae<B>` and
//! `ClipTextEncoder<B>` are written once against this trait; the candle plugin runs them
//! on the CPU (or CUDA), the wgpu plugin on WGSL kernels in the browser.
//!
//! Conventions: images are `[N, C, H, W]`, token sequences `[N, L, C]`, linear weights
//! `[out, in]` (torch layout), conv weights `[out, in, kh, kw]`. Weights are uploaded once
//! with [`Backend::upload_weight`] and stay on the device; a backend may keep them in f16.
//! Fused operations (attention, group norm + SiLU) are single trait methods so a backend
//! can supply one kernel for each.

use crate::error::Result;
use std::future::Future;
use std::pin::Pin;

/// A boxed future without a `Send` bound: browser futures are single-threaded.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

pub trait Backend {
    type Tensor: Clone;

    /// Human-readable device name, printed by benchmarks and `--verbose`.
    fn name(&self) -> String;

    /// Copy host data to the device as an f32 activation.
    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Self::Tensor>;
    /// Copy a weight to the device; the backend may store it in reduced precision.
    fn upload_weight(&self, data: &[f32], shape: &[usize]) -> Result<Self::Tensor> {
        self.upload(data, shape)
    }
    /// Read a tensor back to the host (blocking; native backends).
    fn download(&self, t: &Self::Tensor) -> Result<Vec<f32>>;
    /// Read a tensor back without blocking (what a browser backend must implement).
    fn download_async<'a>(&'a self, t: &'a Self::Tensor) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move { self.download(t) })
    }
    fn shape(&self, t: &Self::Tensor) -> Vec<usize>;

    // ---- layout -------------------------------------------------------------------
    /// Same elements, new shape (element count must match).
    fn reshape(&self, t: &Self::Tensor, shape: &[usize]) -> Result<Self::Tensor>;
    /// `[N, C, H, W]` → `[N, H·W, C]`.
    fn nchw_to_nlc(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// `[N, H·W, C]` → `[N, C, H, W]`.
    fn nlc_to_nchw(&self, x: &Self::Tensor, h: usize, w: usize) -> Result<Self::Tensor>;
    /// Concatenate along `dim`.
    fn concat(&self, xs: &[&Self::Tensor], dim: usize) -> Result<Self::Tensor>;
    /// `len` entries of `dim` starting at `start`.
    fn narrow(
        &self,
        x: &Self::Tensor,
        dim: usize,
        start: usize,
        len: usize,
    ) -> Result<Self::Tensor>;

    // ---- elementwise ---------------------------------------------------------------
    /// `a + b`, same shapes.
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// `a * b`, same shapes.
    fn mul(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;
    /// `a * s`.
    fn scale(&self, a: &Self::Tensor, s: f32) -> Result<Self::Tensor>;
    /// `x[n, c, h, w] + v[n, c]`: adds a per-sample, per-channel vector (the time embedding).
    fn add_channel_vector(&self, x: &Self::Tensor, v: &Self::Tensor) -> Result<Self::Tensor>;
    fn silu(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// Exact (erf) GELU.
    fn gelu(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// CLIP's `x · sigmoid(1.702 x)`.
    fn quick_gelu(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// Splits the last dim in halves `[a, g]` and returns `a · gelu(g)`.
    fn geglu(&self, x: &Self::Tensor) -> Result<Self::Tensor>;

    // ---- layers --------------------------------------------------------------------
    /// `x[..., in] · wᵀ + b` with `w: [out, in]`.
    fn linear(
        &self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor>;
    /// 2-D convolution, square kernel from `w: [out, in, k, k]`, symmetric zero padding.
    fn conv2d(
        &self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: Option<&Self::Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Self::Tensor>;
    /// Group norm over `[N, C, ...]` with per-channel affine; `silu` fuses a SiLU after it.
    fn group_norm(
        &self,
        x: &Self::Tensor,
        groups: usize,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        eps: f32,
        silu: bool,
    ) -> Result<Self::Tensor>;
    /// Layer norm over the last dim.
    fn layer_norm(
        &self,
        x: &Self::Tensor,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        eps: f32,
    ) -> Result<Self::Tensor>;
    /// Multi-head scaled dot-product attention: `q: [N, Lq, H·D]`, `k, v: [N, Lk, H·D]`,
    /// result `[N, Lq, H·D]`; scale `1/√D`; `causal` masks keys after the query position.
    fn attention(
        &self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        heads: usize,
        causal: bool,
    ) -> Result<Self::Tensor>;
    /// Nearest-neighbour ×2 upsampling of `[N, C, H, W]`.
    fn upsample_nearest2x(&self, x: &Self::Tensor) -> Result<Self::Tensor>;
    /// Rows of `table: [V, C]` for `ids`, as `[ids.len(), C]`.
    fn embedding(&self, table: &Self::Tensor, ids: &[u32]) -> Result<Self::Tensor>;
}

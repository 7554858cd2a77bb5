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

/// Element-wise functions beyond the networks' own (SiLU, GELU, leaky ReLU): the torch
/// activation modules an A1111 hypernetwork may name, with torch's default arguments.
/// [`crate::backend_host`] defines each on one value; backends with kernels of their own
/// match it to within f32 rounding of `exp`/`tanh`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementwiseFn {
    Tanh,
    Sigmoid,
    /// α = 1 (CELU with α = 1 is the same function).
    Elu,
    Selu,
    /// `x · relu6(x + 3) / 6`.
    Hardswish,
    Mish,
    Relu6,
    /// Clamp to [-1, 1].
    Hardtanh,
    /// `relu6(x + 3) / 6`.
    Hardsigmoid,
    /// β = 1, the identity above 20.
    Softplus,
    Softsign,
    Tanhshrink,
    LogSigmoid,
    /// λ = 0.5.
    Hardshrink,
    /// λ = 0.5.
    Softshrink,
}

impl ElementwiseFn {
    /// Every function, for tests and listings.
    pub const ALL: [ElementwiseFn; 15] = [
        ElementwiseFn::Tanh,
        ElementwiseFn::Sigmoid,
        ElementwiseFn::Elu,
        ElementwiseFn::Selu,
        ElementwiseFn::Hardswish,
        ElementwiseFn::Mish,
        ElementwiseFn::Relu6,
        ElementwiseFn::Hardtanh,
        ElementwiseFn::Hardsigmoid,
        ElementwiseFn::Softplus,
        ElementwiseFn::Softsign,
        ElementwiseFn::Tanhshrink,
        ElementwiseFn::LogSigmoid,
        ElementwiseFn::Hardshrink,
        ElementwiseFn::Softshrink,
    ];
}

pub trait Backend: 'static {
    type Tensor: Clone;

    /// Human-readable device name, printed by benchmarks and `--verbose`.
    fn name(&self) -> String;

    /// Copy host data to the device as an f32 activation.
    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Self::Tensor>;
    /// Copy a weight to the device; the backend may store it in reduced precision.
    fn upload_weight(&self, data: &[f32], shape: &[usize]) -> Result<Self::Tensor> {
        self.upload(data, shape)
    }
    /// [`Backend::upload_weight`] of values the caller no longer needs: a backend whose
    /// tensors live in host memory keeps the vector itself instead of copying it (loading a
    /// checkpoint in fp32 would otherwise write its 4 GB twice).
    fn upload_weight_owned(&self, data: Vec<f32>, shape: &[usize]) -> Result<Self::Tensor> {
        self.upload_weight(&data, shape)
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
    /// The transformer's GEGLU feed-forward, `geglu(x · w1ᵀ + b1) · w2ᵀ + b2` with
    /// `w1: [2·inner, in]` and `w2: [out, inner]`. The default composes [`Backend::linear`]
    /// and [`Backend::geglu`]; a backend may fuse it so that the `2·inner`-wide
    /// intermediate (84 MiB per call at 512² on the CPU) never exists whole.
    fn feed_forward_geglu(
        &self,
        x: &Self::Tensor,
        w1: &Self::Tensor,
        b1: Option<&Self::Tensor>,
        w2: &Self::Tensor,
        b2: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor> {
        let h = self.linear(x, w1, b1)?;
        let h = self.geglu(&h)?;
        self.linear(&h, w2, b2)
    }
    /// `x` in the storage this backend keeps large activations in, if it has one: a network
    /// calls it where its activations grow large (the VAE decoder's upper levels, 128–256
    /// MiB per tensor at 512² in f32). The CPU backend with bf16 weights stores a tensor
    /// of 64 MiB or more (as f32) in bf16, as PyTorch's bf16 autocast stores convolution
    /// outputs; every other backend and precision hands `x` back unchanged (the default). A compact tensor may go only to [`conv2d`](Self::conv2d),
    /// [`group_norm`](Self::group_norm), [`group_norm_owned`](Self::group_norm_owned),
    /// [`add`](Self::add) (with another compact tensor) and
    /// [`upsample_nearest2x`](Self::upsample_nearest2x), which keep it compact, and to
    /// [`widen`](Self::widen) and the downloads.
    fn compact(&self, x: Self::Tensor) -> Result<Self::Tensor> {
        Ok(x)
    }
    /// `x` back in the backend's full precision (undoes [`compact`](Self::compact)).
    fn widen(&self, x: Self::Tensor) -> Result<Self::Tensor> {
        Ok(x)
    }
    /// 2-D convolution, square kernel from `w: [out, in, k, k]`, symmetric zero padding.
    fn conv2d(
        &self,
        x: &Self::Tensor,
        w: &Self::Tensor,
        b: Option<&Self::Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Self::Tensor>;
    /// [`conv2d`](Self::conv2d) of [`upsample_nearest2x`](Self::upsample_nearest2x) of `x`
    /// (the UNet's and the VAE decoder's upsampling layers): a backend may read the
    /// upsampled image from `x` as it convolves, so that the image four times `x`'s size
    /// (256 MiB in f32 at the VAE decoder's 512² level) is never made. The default makes it,
    /// letting `x` go first (it is taken by value for that).
    fn conv2d_nearest2x(
        &self,
        x: Self::Tensor,
        w: &Self::Tensor,
        b: Option<&Self::Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Self::Tensor> {
        let up = self.upsample_nearest2x(&x)?;
        drop(x);
        self.conv2d(&up, w, b, stride, padding)
    }
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
    /// [`group_norm`](Self::group_norm) of a tensor the caller gives up: a backend may
    /// write the result over `x`'s own storage, so `x` must share it with no other live
    /// tensor (no clone, view or reshape of it kept). A block can then normalise a large
    /// activation without a second one beside it (at the VAE decoder's 512² level each is
    /// 128–256 MiB per image). The default normalises into a new tensor and drops `x`.
    fn group_norm_owned(
        &self,
        x: Self::Tensor,
        groups: usize,
        gamma: &Self::Tensor,
        beta: &Self::Tensor,
        eps: f32,
        silu: bool,
    ) -> Result<Self::Tensor> {
        self.group_norm(&x, groups, gamma, beta, eps, silu)
    }
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

    // ---- upscaler networks (ESRGAN, Real-ESRGAN compact, SwinIR) -------------------------
    // Each has a default that runs on the host (download, compute in
    // `crate::backend_host`, upload), so every backend runs every upscaler; a backend
    // overrides the ones it has kernels for.

    /// `f` applied to every element (the activations hypernetworks may name that the SD
    /// networks themselves never use).
    fn elementwise(&self, x: &Self::Tensor, f: ElementwiseFn) -> Result<Self::Tensor> {
        let shape = self.shape(x);
        let data = self.download(x)?;
        self.upload(&crate::backend_host::elementwise(&data, f), &shape)
    }
    /// `x` where `x > 0`, else `slope · x`.
    fn leaky_relu(&self, x: &Self::Tensor, slope: f32) -> Result<Self::Tensor> {
        let shape = self.shape(x);
        let data = self.download(x)?;
        self.upload(&crate::backend_host::leaky_relu(&data, slope), &shape)
    }
    /// PReLU of `[N, C, ...]` with one slope per channel (`weight: [C]`, or `[1]` for all).
    fn prelu(&self, x: &Self::Tensor, weight: &Self::Tensor) -> Result<Self::Tensor> {
        let shape = self.shape(x);
        let (data, w) = (self.download(x)?, self.download(weight)?);
        self.upload(&crate::backend_host::prelu(&data, &shape, &w)?, &shape)
    }
    /// `[N, C·r², H, W]` → `[N, C, H·r, W·r]` (torch's `pixel_shuffle`).
    fn pixel_shuffle(&self, x: &Self::Tensor, r: usize) -> Result<Self::Tensor> {
        let (data, shape) =
            crate::backend_host::pixel_shuffle(&self.download(x)?, &self.shape(x), r)?;
        self.upload(&data, &shape)
    }
    /// `[N, C, H·r, W·r]` → `[N, C·r², H, W]` (torch's `pixel_unshuffle`).
    fn pixel_unshuffle(&self, x: &Self::Tensor, r: usize) -> Result<Self::Tensor> {
        let (data, shape) =
            crate::backend_host::pixel_unshuffle(&self.download(x)?, &self.shape(x), r)?;
        self.upload(&data, &shape)
    }
    /// Swin windows: `[N, H·W, C]` rolled by `-shift` on both axes and cut into
    /// `window×window` windows, `[N·nW, window², C]` (windows row-major per image).
    fn window_partition(
        &self,
        x: &Self::Tensor,
        h: usize,
        w: usize,
        window: usize,
        shift: usize,
    ) -> Result<Self::Tensor> {
        let (data, shape) = crate::backend_host::window_partition(
            &self.download(x)?,
            &self.shape(x),
            h,
            w,
            window,
            shift,
        )?;
        self.upload(&data, &shape)
    }
    /// The inverse of [`Backend::window_partition`]: `[N·nW, window², C]` → `[N, H·W, C]`.
    fn window_merge(
        &self,
        x: &Self::Tensor,
        h: usize,
        w: usize,
        window: usize,
        shift: usize,
    ) -> Result<Self::Tensor> {
        let (data, shape) = crate::backend_host::window_merge(
            &self.download(x)?,
            &self.shape(x),
            h,
            w,
            window,
            shift,
        )?;
        self.upload(&data, &shape)
    }
    /// Attention inside windows: `q, k, v: [B, L, H·D]`, per head
    /// `softmax((q·D^-½) kᵀ + bias[h] + mask[b mod nW]) v` with `bias: [H, L, L]` (the
    /// relative position bias) and `mask: [nW, L, L]` (the shifted-window mask).
    fn window_attention(
        &self,
        q: &Self::Tensor,
        k: &Self::Tensor,
        v: &Self::Tensor,
        heads: usize,
        bias: &Self::Tensor,
        mask: Option<&Self::Tensor>,
    ) -> Result<Self::Tensor> {
        let shape = self.shape(q);
        let mask_shape = mask.map(|m| self.shape(m));
        let dims = crate::backend_host::WindowAttentionDims::check(
            &shape,
            &self.shape(k),
            &self.shape(v),
            heads,
            &self.shape(bias),
            mask_shape.as_deref(),
        )?;
        let mask_data = mask.map(|m| self.download(m)).transpose()?;
        let out = crate::backend_host::window_attention(
            &self.download(q)?,
            &self.download(k)?,
            &self.download(v)?,
            &shape,
            heads,
            &self.download(bias)?,
            mask_data.as_deref().zip(dims.windows),
        )?;
        self.upload(&out, &shape)
    }
}

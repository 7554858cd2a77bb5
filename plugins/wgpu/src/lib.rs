//! Easel's [`Backend`] on wgpu: WGSL compute kernels that run unchanged on Vulkan, Metal
//! and DX12 natively and on WebGPU in the browser.
//!
//! Activations are f32; weights of rank ≥ 2 are kept in f16 (as `array<f16>` where the
//! adapter has `shader-f16`, else two per u32 word widened in the shader), and every kernel
//! accumulates in f32. Kernels: a tiled GEMM for `linear`, convolutions as an implicit GEMM,
//! group norm with fused SiLU, layer norm, flash-style attention with an online softmax, and
//! the elementwise and layout ops the networks need (see `src/shaders/`), the upscalers'
//! (PReLU, pixel (un)shuffle, Swin's window partition, merge and attention) included, so
//! that nothing falls back to the trait's host defaults, which read back synchronously
//! and so cannot run in the browser. Dispatches are batched into few submissions; buffers
//! come from a pool, so a sampling loop allocates nothing after its first step; reading
//! back never blocks in `download_async`.
//!
//! Limits: the kernels are written for WebGPU's default limits. What an adapter must offer
//! is checked once when it is opened (`device.rs`); operands larger than one storage
//! binding are split per op (`split.rs` and each file of `ops/`); tensors over
//! `max_buffer_size` and any binding or dispatch over its limit are refused with an error
//! naming the limit (`gpu.rs`). `README.md` next to this crate's manifest has the table.

mod device;
mod gpu;
mod kernels;
mod ops;
mod pool;
mod readback;
mod split;
mod tensor;

pub use device::{check_limits, AdapterChoice, F16Storage, KernelShapes, WgpuOptions};
pub use tensor::{DType, WgpuTensor};
/// The wgpu (and half) versions this backend is built on, for callers that configure it.
pub use {half, wgpu};

use easel_core::backend::{Backend, LocalBoxFuture};
use easel_core::{Error, Result};
use gpu::Gpu;
use ops::elementwise::UnaryOp;
use ops::Windows;
use std::sync::Arc;

/// A wgpu device with Easel's operations on it. Cloning shares the device.
#[derive(Clone)]
pub struct WgpuBackend {
    gpu: Arc<Gpu>,
    /// `download` is refused (always in the browser; natively with
    /// [`WgpuOptions::refuse_blocking_download`]).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    refuse_blocking_download: bool,
}

/// Why `download` fails where it is refused.
const BLOCKING_DOWNLOAD_REFUSED: &str =
    "wgpu reads tensors back only with download_async here (as in the browser)";

impl WgpuBackend {
    /// Opens the adapter `options` choose. Fails with a message naming what is missing when
    /// there is no adapter or its limits are too small for the kernels.
    pub async fn new(options: WgpuOptions) -> Result<Self> {
        let open = device::open(&options).await?;
        Ok(Self {
            gpu: Arc::new(Gpu::new(open)),
            refuse_blocking_download: options.refuse_blocking_download,
        })
    }

    /// [`WgpuBackend::new`] for native callers (adapter and device requests complete
    /// without an event loop there).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(options: WgpuOptions) -> Result<Self> {
        easel_core::sampler::block_on(Self::new(options))
    }

    /// Adapter name, driver and API, as wgpu reports them.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.gpu.info
    }

    /// The limits the device was opened with (all the adapter offers).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.gpu.limits
    }

    /// Whether weights are read as `array<f16>` (`shader-f16`) rather than packed words.
    pub fn native_f16(&self) -> bool {
        self.gpu.native_f16
    }

    /// Storage buffers created so far for activations (a sampling step after the first
    /// should add none).
    pub fn buffers_created(&self) -> u64 {
        self.gpu.pool.created()
    }

    /// Submits all recorded work and waits for it (native; for timing).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn synchronize(&self) -> Result<()> {
        self.gpu.flush();
        self.gpu
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Backend(format!("wgpu: waiting for the device failed: {e}")))
    }
}

fn check_len(op: &str, data: &[f32], shape: &[usize]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::Backend(format!(
            "{op}: {} values for shape {shape:?}",
            data.len()
        )));
    }
    Ok(())
}

/// Trait methods whose work is all one `Gpu` method (the kernels' host sides, in `ops/`):
/// `fn op(args) => method(call);` is `fn op(&self, args) -> Result<WgpuTensor>` with the
/// body `self.gpu.method(call)`. The forwarding is written once, and no signature is
/// repeated line for line beside the `Gpu` method's.
macro_rules! on_the_gpu {
    ($(
        $(#[$attr:meta])*
        fn $op:ident($($arg:ident: $ty:ty),*) => $method:ident($($call:expr),*);
    )*) => {
        $(
            $(#[$attr])*
            fn $op(&self, $($arg: $ty),*) -> Result<WgpuTensor> {
                self.gpu.$method($($call),*)
            }
        )*
    };
}

impl Backend for WgpuBackend {
    type Tensor = WgpuTensor;

    fn name(&self) -> String {
        let i = &self.gpu.info;
        format!(
            "wgpu {} ({:?}, {} {})",
            i.name, i.backend, i.driver, i.driver_info
        )
    }

    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<WgpuTensor> {
        check_len("upload", data, shape)?;
        self.gpu
            .upload_bytes(bytemuck::cast_slice(data), shape, DType::F32, true)
    }

    /// Rank ≥ 2 weights are stored in f16; vectors (biases, norm affines) stay f32, which
    /// costs nothing and keeps the elementwise kernels single-typed.
    fn upload_weight(&self, data: &[f32], shape: &[usize]) -> Result<WgpuTensor> {
        check_len("upload_weight", data, shape)?;
        if shape.len() < 2 {
            return self
                .gpu
                .upload_bytes(bytemuck::cast_slice(data), shape, DType::F32, false);
        }
        let halves: Vec<u16> = data
            .iter()
            .map(|&v| half::f16::from_f32(v).to_bits())
            .collect();
        self.gpu
            .upload_bytes(bytemuck::cast_slice(&halves), shape, DType::F16, false)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn download(&self, t: &WgpuTensor) -> Result<Vec<f32>> {
        if self.refuse_blocking_download {
            return Err(Error::Backend(BLOCKING_DOWNLOAD_REFUSED.into()));
        }
        let t = self.gpu.as_f32(t)?;
        readback::start(&self.gpu, &t).wait()
    }

    /// A browser cannot block: use `download_async` there.
    #[cfg(target_arch = "wasm32")]
    fn download(&self, _t: &WgpuTensor) -> Result<Vec<f32>> {
        Err(Error::Backend(BLOCKING_DOWNLOAD_REFUSED.into()))
    }

    fn download_async<'a>(&'a self, t: &'a WgpuTensor) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let t = self.gpu.as_f32(t)?;
            readback::start(&self.gpu, &t).finish().await
        })
    }

    fn shape(&self, t: &WgpuTensor) -> Vec<usize> {
        t.shape.clone()
    }

    fn reshape(&self, t: &WgpuTensor, shape: &[usize]) -> Result<WgpuTensor> {
        let n: usize = shape.iter().product();
        if n != t.numel() {
            return Err(Error::Backend(format!(
                "reshape: {:?} to {shape:?}",
                t.shape
            )));
        }
        Ok(WgpuTensor {
            shape: shape.to_vec(),
            ..t.clone()
        })
    }

    on_the_gpu! {
        fn nchw_to_nlc(x: &WgpuTensor) => nchw_to_nlc(x);
        fn nlc_to_nchw(x: &WgpuTensor, h: usize, w: usize) => nlc_to_nchw(x, h, w);
        fn concat(xs: &[&WgpuTensor], dim: usize) => concat(xs, dim);
        fn narrow(x: &WgpuTensor, dim: usize, start: usize, len: usize)
            => narrow(x, dim, start, len);
        fn add(a: &WgpuTensor, b: &WgpuTensor) => add(a, b);
        fn mul(a: &WgpuTensor, b: &WgpuTensor) => mul(a, b);
        fn scale(a: &WgpuTensor, s: f32) => unary(a, UnaryOp::Scale, s);
        fn add_channel_vector(x: &WgpuTensor, v: &WgpuTensor) => add_channel_vector(x, v);
        fn silu(x: &WgpuTensor) => unary(x, UnaryOp::Silu, 0.0);
        fn gelu(x: &WgpuTensor) => unary(x, UnaryOp::Gelu, 0.0);
        fn quick_gelu(x: &WgpuTensor) => unary(x, UnaryOp::QuickGelu, 0.0);
        /// On the device: the browser cannot read tensors back synchronously, which the
        /// host default needs (TAESD's ReLUs, the upscalers' leaky ReLUs).
        fn leaky_relu(x: &WgpuTensor, slope: f32) => unary(x, UnaryOp::LeakyRelu, slope);
        /// On the device, for the same reason as `leaky_relu` (hypernetworks' activations).
        fn elementwise(x: &WgpuTensor, f: easel_core::ElementwiseFn)
            => unary(x, UnaryOp::from(f), 0.0);
        /// On the device, as every upscaler operation below: the trait's host defaults read
        /// back synchronously, which the browser refuses.
        fn prelu(x: &WgpuTensor, weight: &WgpuTensor) => prelu(x, weight);
        fn pixel_shuffle(x: &WgpuTensor, r: usize) => pixel_shuffle(x, r);
        fn pixel_unshuffle(x: &WgpuTensor, r: usize) => pixel_unshuffle(x, r);
        fn window_partition(x: &WgpuTensor, h: usize, w: usize, window: usize, shift: usize)
            => window_partition(x, Windows { h, w, window, shift });
        fn window_merge(x: &WgpuTensor, h: usize, w: usize, window: usize, shift: usize)
            => window_merge(x, Windows { h, w, window, shift });
        fn window_attention(q: &WgpuTensor, k: &WgpuTensor, v: &WgpuTensor, heads: usize,
            bias: &WgpuTensor, mask: Option<&WgpuTensor>)
            => window_attention(q, k, v, heads, bias, mask);
        fn geglu(x: &WgpuTensor) => geglu(x);
        fn linear(x: &WgpuTensor, w: &WgpuTensor, b: Option<&WgpuTensor>) => linear(x, w, b);
        fn conv2d(x: &WgpuTensor, w: &WgpuTensor, b: Option<&WgpuTensor>, stride: usize,
            padding: usize) => conv2d(x, w, b, stride, padding);
        fn group_norm(x: &WgpuTensor, groups: usize, gamma: &WgpuTensor, beta: &WgpuTensor,
            eps: f32, silu: bool) => group_norm(x, groups, gamma, beta, eps, silu);
        fn layer_norm(x: &WgpuTensor, gamma: &WgpuTensor, beta: &WgpuTensor, eps: f32)
            => layer_norm(x, gamma, beta, eps);
        fn attention(q: &WgpuTensor, k: &WgpuTensor, v: &WgpuTensor, heads: usize,
            causal: bool) => attention(q, k, v, heads, causal, None);
        fn upsample_nearest2x(x: &WgpuTensor) => upsample_nearest2x(x);
        fn embedding(table: &WgpuTensor, ids: &[u32]) => embedding(table, ids);
    }
}

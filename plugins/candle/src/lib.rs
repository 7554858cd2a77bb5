//! Easel's [`Backend`] on candle-core: f32 compute on the CPU (CUDA with the `cuda`
//! feature). On the CPU, convolutions, linear layers and attention run on the blocked
//! matrix product in [`gemm`] (AVX-512 / AVX2 microkernels, a portable one elsewhere),
//! and the operations candle-core lacks or runs single-threaded (softmax, group/layer
//! norm, GEGLU) have kernels of their own in [`ops`]; other devices use compositions of
//! candle ops.

pub mod gemm;
pub mod ops;

use candle_core::{DType, Device, Tensor};
use easel_core::backend::Backend;
use easel_core::{Error, Result};
pub use gemm::Precision;

/// Converts a candle error into Easel's backend error, keeping candle's message.
pub(crate) fn backend_err(e: candle_core::Error) -> Error {
    Error::Backend(e.to_string())
}

/// Extension to turn `candle_core::Result<T>` into `easel_core::Result<T>` with `?`.
pub(crate) trait CandleResultExt<T> {
    fn be(self) -> Result<T>;
}

impl<T> CandleResultExt<T> for candle_core::Result<T> {
    fn be(self) -> Result<T> {
        self.map_err(backend_err)
    }
}

/// A candle device with Easel's operations on it.
#[derive(Clone, Debug)]
pub struct CandleBackend {
    device: Device,
    /// Upper bound, in bytes, of one attention score block (queries are processed in chunks
    /// so that `batch · heads · chunk · Lk · 4` stays below it).
    attention_block_bytes: usize,
    /// Arithmetic of the CPU matrix products (convolutions, linear layers, attention).
    precision: Precision,
    /// With bf16 weights on the CPU, the size (as f32) from which [`Backend::compact`]
    /// stores an activation in bf16.
    compact_from_bytes: usize,
}

/// 64 MiB: at a 512² decode, the VAE decoder's two upper levels (256² with 512 and 256
/// channels, 512² with 256 and 128), whose tensors set the whole image's peak memory; the
/// levels below, and the UNet's activations, stay f32.
pub const DEFAULT_COMPACT_FROM_BYTES: usize = 64 << 20;

/// 256 MiB: at 512×512 the first UNet attention has 4096×4096 scores per head, which would
/// be 1 GiB per image for 8 heads; this keeps the working set bounded.
pub const DEFAULT_ATTENTION_BLOCK_BYTES: usize = 256 << 20;

impl CandleBackend {
    /// The CPU (all cores, through candle's rayon pool).
    pub fn cpu() -> Self {
        Self::on(Device::Cpu)
    }

    /// CUDA device `ordinal`.
    #[cfg(feature = "cuda")]
    pub fn cuda(ordinal: usize) -> Result<Self> {
        Ok(Self::on(Device::new_cuda(ordinal).be()?))
    }

    /// Whether a weight of `shape` is kept resident in bf16: matrices on the CPU with bf16
    /// products (see `upload_weight`).
    fn keeps_in_bf16(&self, shape: &[usize]) -> bool {
        self.precision == Precision::Bf16 && self.device.is_cpu() && shape.len() >= 2
    }

    /// Any candle device.
    pub fn on(device: Device) -> Self {
        Self {
            device,
            attention_block_bytes: DEFAULT_ATTENTION_BLOCK_BYTES,
            precision: Precision::F32,
            compact_from_bytes: DEFAULT_COMPACT_FROM_BYTES,
        }
    }

    /// Run the CPU matrix products in `precision`. Every CPU runs bf16: with bf16 products
    /// on AMX or AVX512-BF16, elsewhere as bf16 weights in f32 products (see
    /// [`Precision::Bf16`]).
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Change the size from which activations are kept in bf16 with bf16 weights (tests
    /// use 0 to run the tiny networks' compact path).
    pub fn with_compact_from_bytes(mut self, bytes: usize) -> Self {
        self.compact_from_bytes = bytes;
        self
    }

    /// Change the attention score-block budget (tests use a tiny one to exercise chunking).
    pub fn with_attention_block_bytes(mut self, bytes: usize) -> Self {
        self.attention_block_bytes = bytes.max(1);
        self
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}

fn check_same_shape(op: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dims() != b.dims() {
        return Err(Error::Backend(format!(
            "{op}: shapes differ: {:?} vs {:?}",
            a.dims(),
            b.dims()
        )));
    }
    Ok(())
}

/// Refuses host data whose length is not the number of elements of `shape`, naming `op`.
fn check_value_count(op: &str, values: usize, shape: &[usize]) -> Result<()> {
    if values == shape.iter().product::<usize>() {
        return Ok(());
    }
    Err(Error::Backend(format!(
        "{op}: {values} values for shape {shape:?}"
    )))
}

impl Backend for CandleBackend {
    type Tensor = Tensor;

    fn name(&self) -> String {
        match &self.device {
            Device::Cpu => format!(
                "candle cpu ({} threads, {} products on {})",
                candle_core::utils::get_num_threads(),
                match self.precision {
                    Precision::F32 => "fp32",
                    Precision::Bf16 => "bf16",
                },
                gemm::kernel_name(self.precision)
            ),
            Device::Cuda(_) => format!(
                "candle cuda:{} (fp32)",
                match self.device.location() {
                    candle_core::DeviceLocation::Cuda { gpu_id } => gpu_id,
                    _ => 0,
                }
            ),
            Device::Metal(_) => "candle metal".to_string(),
        }
    }

    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        check_value_count("upload", data.len(), shape)?;
        Tensor::from_slice(data, shape, &self.device).be()
    }

    /// On the CPU in bf16, matrices (rank ≥ 2: linear, convolution and embedding weights)
    /// stay resident in bf16, which halves the memory they take; the bf16 products round
    /// their operands to bf16 anyway, so the results are the same bit for bit. Vectors
    /// (biases, norm scales) stay f32, as the bf16 path keeps everything outside products.
    fn upload_weight(&self, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        if !self.keeps_in_bf16(shape) {
            return self.upload(data, shape);
        }
        check_value_count("upload_weight", data.len(), shape)?;
        use rayon::prelude::*;
        let bf16: Vec<half::bf16> = data.par_iter().map(|&x| half::bf16::from_f32(x)).collect();
        Tensor::from_vec(bf16, shape, &self.device).be()
    }

    /// An f32 weight on the CPU becomes the tensor's storage as it is, with no copy.
    fn upload_weight_owned(&self, data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        if self.keeps_in_bf16(shape) {
            return self.upload_weight(&data, shape);
        }
        check_value_count("upload_weight", data.len(), shape)?;
        Tensor::from_vec(data, shape, &self.device).be()
    }

    fn download(&self, t: &Tensor) -> Result<Vec<f32>> {
        t.flatten_all()
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .be()
    }

    fn shape(&self, t: &Tensor) -> Vec<usize> {
        t.dims().to_vec()
    }

    fn reshape(&self, t: &Tensor, shape: &[usize]) -> Result<Tensor> {
        t.reshape(shape).be()
    }

    fn nchw_to_nlc(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4().be()?;
        x.reshape((n, c, h * w))
            .and_then(|t| ops::layout::swap_last_two(&t))
            .be()
    }

    fn nlc_to_nchw(&self, x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
        let (n, l, c) = x.dims3().be()?;
        if l != h * w {
            return Err(Error::Backend(format!(
                "nlc_to_nchw: sequence length {l} is not {h}×{w}"
            )));
        }
        ops::layout::swap_last_two(x)
            .and_then(|t| t.reshape((n, c, h, w)))
            .be()
    }

    fn concat(&self, xs: &[&Tensor], dim: usize) -> Result<Tensor> {
        Tensor::cat(xs, dim).be()
    }

    fn narrow(&self, x: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
        x.narrow(dim, start, len).be()
    }

    fn add(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        check_same_shape("add", a, b)?;
        a.add(b).be()
    }

    fn mul(&self, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        check_same_shape("mul", a, b)?;
        a.mul(b).be()
    }

    fn scale(&self, a: &Tensor, s: f32) -> Result<Tensor> {
        a.affine(s as f64, 0.0).be()
    }

    fn add_channel_vector(&self, x: &Tensor, v: &Tensor) -> Result<Tensor> {
        let (n, c) = v.dims2().be()?;
        let mut shape = vec![n, c];
        shape.resize(x.rank(), 1);
        x.broadcast_add(&v.reshape(shape).be()?).be()
    }

    fn silu(&self, x: &Tensor) -> Result<Tensor> {
        ops::activation::silu(x).be()
    }

    fn gelu(&self, x: &Tensor) -> Result<Tensor> {
        x.gelu_erf().be()
    }

    fn quick_gelu(&self, x: &Tensor) -> Result<Tensor> {
        ops::activation::quick_gelu(x).be()
    }

    fn geglu(&self, x: &Tensor) -> Result<Tensor> {
        ops::activation::geglu(x).be()
    }

    fn linear(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        ops::linear::linear(x, w, b, self.precision).be()
    }

    fn feed_forward_geglu(
        &self,
        x: &Tensor,
        w1: &Tensor,
        b1: Option<&Tensor>,
        w2: &Tensor,
        b2: Option<&Tensor>,
    ) -> Result<Tensor> {
        ops::feed_forward::feed_forward_geglu(x, [w1, w2], [b1, b2], self.precision).be()
    }

    /// With bf16 weights on the CPU, large activations in bf16: half the memory of the VAE
    /// decoder's upper levels, which set a 512² image's peak. Every value is rounded to
    /// bf16 once, as it is stored (PyTorch's autocast stores its convolution outputs the
    /// same way); the kernels widen them exactly as they read them and sum in f32.
    fn compact(&self, x: Tensor) -> Result<Tensor> {
        let large = x.elem_count() * std::mem::size_of::<f32>() >= self.compact_from_bytes;
        if self.precision == Precision::Bf16
            && self.device.is_cpu()
            && x.dtype() == DType::F32
            && large
        {
            return x.to_dtype(DType::BF16).be();
        }
        Ok(x)
    }

    fn widen(&self, x: Tensor) -> Result<Tensor> {
        match x.dtype() {
            DType::F32 => Ok(x),
            _ => x.to_dtype(DType::F32).be(),
        }
    }

    fn conv2d(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        ops::conv::conv2d(x, w, b, stride, padding, self.precision).be()
    }

    fn conv2d_nearest2x(
        &self,
        x: Tensor,
        w: &Tensor,
        b: Option<&Tensor>,
        stride: usize,
        padding: usize,
    ) -> Result<Tensor> {
        ops::conv::conv2d_nearest2x(&x, w, b, stride, padding, self.precision).be()
    }

    fn group_norm(
        &self,
        x: &Tensor,
        groups: usize,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        ops::norm::group_norm(x, groups, gamma, beta, eps, silu).be()
    }

    fn group_norm_owned(
        &self,
        x: Tensor,
        groups: usize,
        gamma: &Tensor,
        beta: &Tensor,
        eps: f32,
        silu: bool,
    ) -> Result<Tensor> {
        ops::norm::group_norm_owned(x, groups, gamma, beta, eps, silu).be()
    }

    fn layer_norm(&self, x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
        ops::norm::layer_norm(x, gamma, beta, eps).be()
    }

    fn attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        causal: bool,
    ) -> Result<Tensor> {
        ops::attention::attention(
            q,
            k,
            v,
            heads,
            causal,
            self.attention_block_bytes,
            self.precision,
        )
        .be()
    }

    fn upsample_nearest2x(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4().be()?;
        x.upsample_nearest2d(2 * h, 2 * w).be()
    }

    fn embedding(&self, table: &Tensor, ids: &[u32]) -> Result<Tensor> {
        let (vocab, _) = table.dims2().be()?;
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(Error::Backend(format!(
                "embedding: id {bad} is outside the table of {vocab} rows"
            )));
        }
        let ids = Tensor::from_slice(ids, ids.len(), &self.device).be()?;
        // A bf16-resident table widens (exactly) to the f32 activations everything else uses.
        table
            .index_select(&ids, 0)
            .and_then(|rows| rows.to_dtype(DType::F32))
            .be()
    }

    fn leaky_relu(&self, x: &Tensor, slope: f32) -> Result<Tensor> {
        ops::activation::leaky_relu(x, slope).be()
    }

    fn prelu(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor> {
        ops::activation::prelu(x, weight).be()
    }

    fn pixel_shuffle(&self, x: &Tensor, r: usize) -> Result<Tensor> {
        ops::pixel_shuffle::pixel_shuffle(x, r).be()
    }

    fn pixel_unshuffle(&self, x: &Tensor, r: usize) -> Result<Tensor> {
        ops::pixel_shuffle::pixel_unshuffle(x, r).be()
    }

    fn window_partition(
        &self,
        x: &Tensor,
        h: usize,
        w: usize,
        window: usize,
        shift: usize,
    ) -> Result<Tensor> {
        ops::window::window_partition(x, h, w, window, shift).be()
    }

    fn window_merge(
        &self,
        x: &Tensor,
        h: usize,
        w: usize,
        window: usize,
        shift: usize,
    ) -> Result<Tensor> {
        ops::window::window_merge(x, h, w, window, shift).be()
    }

    fn window_attention(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        bias: &Tensor,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        ops::window::window_attention(q, k, v, heads, bias, mask).be()
    }
}

//! The device tensor: a buffer, a shape and how its elements are stored.

use crate::pool::PooledBuffer;
use std::sync::Arc;

/// Element storage of a tensor. Activations are always `F32`; weights uploaded with
/// `upload_weight` (rank ≥ 2) are `F16`, read either as `array<f16>` or as packed words
/// depending on the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
}

impl DType {
    /// Bytes of a buffer holding `n` elements: a multiple of 4, at least 4 (bindings of
    /// zero bytes are invalid).
    pub fn buffer_bytes(self, n: usize) -> u64 {
        let bytes = match self {
            DType::F32 => 4 * n as u64,
            DType::F16 => 2 * n as u64,
        };
        bytes.div_ceil(4).max(1) * 4
    }
}

/// A tensor on the wgpu device. Cloning shares the buffer; reshaping shares it too.
#[derive(Clone)]
pub struct WgpuTensor {
    pub(crate) buf: Arc<PooledBuffer>,
    pub(crate) shape: Vec<usize>,
    pub(crate) dtype: DType,
}

impl WgpuTensor {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buf.buffer()
    }
}

impl std::fmt::Debug for WgpuTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WgpuTensor({:?}, {:?})", self.shape, self.dtype)
    }
}

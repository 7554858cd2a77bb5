//! Plumbing shared by the custom CPU kernels: reading candle's CPU storage as f32 slices.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result};

/// Elements handed to one rayon task by the elementwise kernels: large enough to amortise
/// scheduling, small enough to spread a 64×64×320 activation over every core.
pub const ELEMENTWISE_CHUNK: usize = 1 << 14;

/// The contiguous f32 elements of `storage` described by `layout`.
pub fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = match storage {
        CpuStorage::F32(v) => v.as_slice(),
        other => bail!("{op}: only f32 tensors are supported, got {:?}", other.dtype()),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => bail!("{op}: the input must be contiguous"),
    }
}

/// Mutable variant of [`f32_slice`] for in-place kernels.
pub fn f32_slice_mut<'a>(
    storage: &'a mut CpuStorage,
    layout: &Layout,
    op: &str,
) -> Result<&'a mut [f32]> {
    let data = match storage {
        CpuStorage::F32(v) => v.as_mut_slice(),
        other => bail!("{op}: only f32 tensors are supported, got {:?}", other.dtype()),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => bail!("{op}: the input must be contiguous"),
    }
}

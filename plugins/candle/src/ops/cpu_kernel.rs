//! Plumbing shared by the custom CPU kernels: reading candle's CPU storage as f32 slices (or
//! as f32 or bf16, for weights and for the activations the backend keeps compact).

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, DType, Layout, Result, Storage, Tensor};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the custom CPU kernels run at all (see [`set_cpu_kernels`]).
static CPU_KERNELS: AtomicBool = AtomicBool::new(true);

/// Turns the custom CPU kernels off (or back on) for the whole process: every operation on
/// CPU tensors then runs as the composition of candle operations that other devices (CUDA)
/// run, so that those compositions can be checked against the reference outputs on a
/// machine without a GPU (`tests/tests/composed_ops.rs`). fp32 only: the bf16 precision's
/// resident weights and compact activations are the kernels' own forms. Much slower.
pub fn set_cpu_kernels(on: bool) {
    CPU_KERNELS.store(on, Ordering::Relaxed);
}

/// Whether `t` is on the CPU with the custom kernels on: where the kernels may take it.
pub fn on_kernel_cpu(t: &Tensor) -> bool {
    t.device().is_cpu() && CPU_KERNELS.load(Ordering::Relaxed)
}

/// Elements handed to one rayon task by the elementwise kernels: large enough to amortise
/// scheduling, small enough to spread a 64×64×320 activation over every core.
pub const ELEMENTWISE_CHUNK: usize = 1 << 14;

/// The contiguous f32 elements of `storage` described by `layout`.
pub fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = match storage {
        CpuStorage::F32(v) => v.as_slice(),
        other => bail!(
            "{op}: only f32 tensors are supported, got {:?}",
            other.dtype()
        ),
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
        other => bail!(
            "{op}: only f32 tensors are supported, got {:?}",
            other.dtype()
        ),
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&mut data[start..end]),
        None => bail!("{op}: the input must be contiguous"),
    }
}

/// Runs `f` on the elements of a CPU f32 tensor, made contiguous first if it is not.
pub fn with_f32_data<R>(t: &Tensor, op: &str, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(cpu) => Ok(f(f32_slice(cpu, layout, op)?)),
        _ => bail!("{op}: the tensor is not on the CPU"),
    }
}

/// A CPU tensor's elements as the custom kernels read them: f32, or bf16 (weights kept
/// resident in bf16, see `CandleBackend::upload_weight`; activations kept compact, see
/// `CandleBackend::compact`).
#[derive(Clone, Copy, Debug)]
pub enum CpuElements<'a> {
    F32(&'a [f32]),
    Bf16(&'a [half::bf16]),
}

/// A weight's elements.
pub type WeightData<'a> = CpuElements<'a>;
/// An activation's elements.
pub type ActivationData<'a> = CpuElements<'a>;

impl<'a> CpuElements<'a> {
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::Bf16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements `range` of the same kind.
    pub fn slice(&self, range: std::ops::Range<usize>) -> CpuElements<'a> {
        match self {
            Self::F32(v) => Self::F32(&v[range]),
            Self::Bf16(v) => Self::Bf16(&v[range]),
        }
    }
}

/// Runs `f` on the elements (f32 or bf16) of a CPU tensor, made contiguous first; `what`
/// names the operand in errors.
fn with_cpu_elements<R>(
    t: &Tensor,
    op: &str,
    what: &str,
    f: impl FnOnce(CpuElements<'_>) -> R,
) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        bail!("{op}: the {what} is not on the CPU")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: the {what} must be contiguous")
    };
    Ok(match cpu {
        CpuStorage::F32(v) => f(CpuElements::F32(&v[start..end])),
        CpuStorage::BF16(v) => f(CpuElements::Bf16(&v[start..end])),
        other => bail!(
            "{op}: the {what} must be f32 or bf16, got {:?}",
            other.dtype()
        ),
    })
}

/// Runs `f` on the elements of a CPU weight (f32 or bf16).
pub fn with_weight_data<R>(t: &Tensor, op: &str, f: impl FnOnce(WeightData<'_>) -> R) -> Result<R> {
    with_cpu_elements(t, op, "weight", f)
}

/// Runs `f` on the elements of a CPU activation (f32, or compact bf16).
pub fn with_activation_data<R>(
    t: &Tensor,
    op: &str,
    f: impl FnOnce(ActivationData<'_>) -> R,
) -> Result<R> {
    with_cpu_elements(t, op, "input", f)
}

/// Where a kernel writes an activation: f32, or compact bf16 (each value rounded once, to
/// nearest even, as it is stored).
#[derive(Debug)]
pub enum ActivationDataMut<'a> {
    F32(&'a mut [f32]),
    Bf16(&'a mut [half::bf16]),
}

impl ActivationDataMut<'_> {
    pub fn len(&self) -> usize {
        match self {
            Self::F32(v) => v.len(),
            Self::Bf16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether `t` is a compact (bf16) activation on the CPU, which the kernels that keep
/// activations compact read as it is.
pub fn is_compact_cpu(t: &Tensor) -> bool {
    on_kernel_cpu(t) && t.dtype() == DType::BF16
}

/// Whether `w` is a weight the custom kernels read on the CPU (f32, or resident bf16) and
/// every other tensor is f32 on the CPU.
pub fn cpu_kernel_operands(w: &Tensor, others: &[&Tensor]) -> bool {
    on_kernel_cpu(w) && matches!(w.dtype(), DType::F32 | DType::BF16) && all_cpu_f32(others)
}

/// Whether every tensor is an f32 tensor on the CPU (the case the custom kernels handle).
pub fn all_cpu_f32(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| on_kernel_cpu(t) && t.dtype() == DType::F32)
}

/// A new vector of `len` values that `fill` writes, never zeroed first: an activation's
/// output is a pass over memory as large as the kernel's own work, and zeroing it would be
/// a second one (on an AMX Xeon, where the products are fast, the zeroing of linear, GEGLU
/// and normalisation outputs was 6 % of a 512² step).
///
/// # Safety
/// `fill` must write every element of the slice it is given.
pub unsafe fn new_filled(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    fill(&mut v.spare_capacity_mut()[..len]);
    // SAFETY: `fill` wrote all `len` elements (the caller's promise).
    unsafe { v.set_len(len) };
    v
}

/// `dst[i] = f(src[i])`, compiled for the widest vector unit this CPU has: the body is
/// inlined into a wrapper per instruction set, so `f` (built from [`super::fast_math`],
/// whose functions are always inlined) vectorises at that width. Writes every element of
/// `dst` (which need not be initialised).
#[inline(always)]
pub fn map_into<F: Fn(f32) -> f32>(dst: &mut [MaybeUninit<f32>], src: &[f32], f: F) {
    zip_map_into(dst, src, src, |x, _| f(x))
}

/// `dst[i] = f(a[i], b[i])`, vectorised like [`map_into`]; every element of `dst` is written.
pub fn zip_map_into<F: Fn(f32, f32) -> f32>(
    dst: &mut [MaybeUninit<f32>],
    a: &[f32],
    b: &[f32],
    f: F,
) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { zip_map_avx512(dst, a, b, &f) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { zip_map_avx2(dst, a, b, &f) };
        }
    }
    zip_map_body(dst, a, b, &f)
}

/// [`zip_map_into`] over values that are already initialised.
pub fn zip_map_over<F: Fn(f32, f32) -> f32>(dst: &mut [f32], a: &[f32], b: &[f32], f: F) {
    // SAFETY: `MaybeUninit<f32>` has f32's layout, and `zip_map_into` only writes
    // initialised values through this view, so `dst` stays initialised.
    let dst = unsafe { &mut *(dst as *mut [f32] as *mut [MaybeUninit<f32>]) };
    zip_map_into(dst, a, b, f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn zip_map_avx512<F: Fn(f32, f32) -> f32>(
    dst: &mut [MaybeUninit<f32>],
    a: &[f32],
    b: &[f32],
    f: &F,
) {
    zip_map_body(dst, a, b, f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn zip_map_avx2<F: Fn(f32, f32) -> f32>(
    dst: &mut [MaybeUninit<f32>],
    a: &[f32],
    b: &[f32],
    f: &F,
) {
    zip_map_body(dst, a, b, f)
}

#[inline(always)]
fn zip_map_body<F: Fn(f32, f32) -> f32>(dst: &mut [MaybeUninit<f32>], a: &[f32], b: &[f32], f: &F) {
    assert!(
        a.len() >= dst.len() && b.len() >= dst.len(),
        "elementwise: operands shorter than the output"
    );
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        d.write(f(x, y));
    }
}

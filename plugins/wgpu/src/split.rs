//! Operands larger than one storage binding. Some adapters bind at most 128 MiB of a buffer
//! at once (lavapipe, WebGPU's default), while SD's VAE at 512² holds 256 MiB activations.
//! A tensor still lives in one buffer (up to `max_buffer_size`); an op that cannot bind its
//! operands whole is split into dispatches over ranges of its work (images, channels, rows,
//! elements), each binding only the window of every operand that its range touches.
//!
//! A window starts at an offset aligned to `min_storage_buffer_offset_alignment`, so it may
//! begin a little before the first element the range needs: [`Gpu::window`] returns the
//! element index where the window begins, and kernels subtract it (or add the difference
//! to their local indices).

use crate::gpu::{Bind, Gpu};
use crate::tensor::{DType, WgpuTensor};
use easel_core::{Error, Result};

impl DType {
    /// Bytes of one element.
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 => 2,
        }
    }
}

impl Gpu {
    /// The byte window `(offset, size)` binding elements `start..end` of `t`, or `None`
    /// where the whole buffer fits one binding (it is then bound whole).
    fn window_range(&self, t: &WgpuTensor, start: usize, end: usize) -> Option<(u64, u64)> {
        let size = t.buffer().size();
        if size <= self.limits.max_storage_buffer_binding_size {
            return None;
        }
        let es = t.dtype.size();
        let align = self.limits.min_storage_buffer_offset_alignment.max(4) as u64;
        let first = (start as u64 * es) / align * align;
        let last = (end as u64 * es)
            .div_ceil(4)
            .saturating_mul(4)
            .clamp(first + 4, size);
        Some((first, last - first))
    }

    /// Whether elements `start..end` of `t` can be bound at once.
    pub fn fits(&self, t: &WgpuTensor, start: usize, end: usize) -> bool {
        self.window_range(t, start, end)
            .is_none_or(|(_, size)| size <= self.limits.max_storage_buffer_binding_size)
    }

    /// A binding holding elements `start..end` of `t`, and the index of the element it
    /// begins with (0 when the whole buffer is bound). The caller checked [`Gpu::fits`];
    /// `dispatch` refuses a window over the limit anyway.
    pub fn window<'a>(&self, t: &'a WgpuTensor, start: usize, end: usize) -> (Bind<'a>, usize) {
        match self.window_range(t, start, end) {
            None => (Bind::whole(t.buffer()), 0),
            Some((offset, size)) => (
                Bind {
                    buffer: t.buffer(),
                    window: Some((offset, size)),
                },
                (offset / t.dtype.size()) as usize,
            ),
        }
    }

    /// Splits `n` work items into equal ranges (multiples of `quantum` items, the last one
    /// shorter) for which `fits(start, end)` holds: the whole range where it fits, else
    /// halving until it does. Fails, naming the limit, when even one quantum does not fit.
    pub fn plan(
        &self,
        op: &str,
        n: usize,
        quantum: usize,
        fits: impl Fn(usize, usize) -> bool,
    ) -> Result<Vec<(usize, usize)>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let quantum = quantum.max(1);
        let mut chunk = n;
        loop {
            let ranges: Vec<(usize, usize)> = (0..n)
                .step_by(chunk)
                .map(|s| (s, (s + chunk).min(n)))
                .collect();
            if ranges.iter().all(|&(s, e)| fits(s, e)) {
                return Ok(ranges);
            }
            if chunk <= quantum {
                return Err(self.binding_error(op, "its smallest piece of work"));
            }
            chunk = (chunk / 2).div_ceil(quantum) * quantum;
        }
    }

    /// The error for an operand that cannot be split below the binding limit.
    pub fn binding_error(&self, op: &str, what: impl std::fmt::Display) -> Error {
        Error::Backend(format!(
            "{op}: {what} needs an operand window larger than the adapter's \
             max_storage_buffer_binding_size {} bytes",
            self.limits.max_storage_buffer_binding_size
        ))
    }
}

//! Host side of each kernel: shape checks, parameter blocks and dispatch sizes. Each file
//! adds the methods of one kind of operation to [`Gpu`].

mod attention;
mod conv;
pub(crate) use attention::ATTENTION_WORKGROUP_BYTES;
pub(crate) mod elementwise;
mod embedding;
mod layout;
mod linear;
mod norm;
mod rearrange;
pub(crate) use rearrange::Windows;
mod tile;

use crate::gpu::Gpu;
use crate::kernels::{Kernel, Variant};
use crate::tensor::{DType, WgpuTensor};
use easel_core::{Error, Result};

pub(crate) fn op_err(op: &str, msg: impl std::fmt::Display) -> Error {
    Error::Backend(format!("{op}: {msg}"))
}

/// `x`'s `R` dims, or an error saying that `op` expects the `layout` (e.g. `[N, C, H, W]`).
pub(crate) fn dims<const R: usize>(op: &str, x: &WgpuTensor, layout: &str) -> Result<[usize; R]> {
    x.shape
        .as_slice()
        .try_into()
        .map_err(|_| op_err(op, format!("expected {layout}, got {:?}", x.shape)))
}

impl Gpu {
    /// `t` as an f32 tensor: itself, or its f16 weight widened into a new tensor (for a
    /// weight passed where an activation is expected).
    pub(crate) fn as_f32(&self, t: &WgpuTensor) -> Result<WgpuTensor> {
        if t.dtype == DType::F32 {
            return Ok(t.clone());
        }
        let out = self.alloc(&t.shape)?;
        let variant = Variant {
            weight: self.weight_read(t.dtype),
            ..Variant::plain(Kernel::Cast)
        };
        let ranges = self.plan("cast", t.numel(), 256, |s, e| {
            self.fits(t, s, e) && self.fits(&out, s, e)
        })?;
        for (s, e) in ranges {
            let (xb, x_base) = self.window(t, s, e);
            let (yb, y_base) = self.window(&out, s, e);
            self.dispatch(
                &variant,
                &[(e - s) as u32, (s - x_base) as u32, (s - y_base) as u32],
                &[xb],
                &yb,
                self.groups_1d(e - s),
            )?;
        }
        Ok(out)
    }
}

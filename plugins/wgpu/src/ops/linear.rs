//! `linear`: x[..., K] · wᵀ + b with `w: [N, K]` in any storage.

use super::op_err;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::Result;

/// Output tile edge of `linear.wgsl`.
const TILE: usize = 64;

impl Gpu {
    pub(crate) fn linear(
        &self,
        x: &WgpuTensor,
        w: &WgpuTensor,
        b: Option<&WgpuTensor>,
    ) -> Result<WgpuTensor> {
        let x = self.as_f32(x)?;
        let k = *x
            .shape
            .last()
            .ok_or_else(|| op_err("linear", "scalar input"))?;
        let (n, wk) = match w.shape[..] {
            [n, wk] => (n, wk),
            [n, wk, 1, 1] => (n, wk),
            _ => {
                return Err(op_err(
                    "linear",
                    format!("weight {:?} is not [out, in]", w.shape),
                ))
            }
        };
        if wk != k {
            return Err(op_err(
                "linear",
                format!("input {:?} does not fit weight {:?}", x.shape, w.shape),
            ));
        }
        let bias = b.map(|b| self.as_f32(b)).transpose()?;
        if let Some(bias) = &bias {
            if bias.numel() != n {
                return Err(op_err(
                    "linear",
                    format!("bias {:?} does not fit weight {:?}", bias.shape, w.shape),
                ));
            }
        }
        let m = x.numel() / k.max(1);
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("rank ≥ 1") = n;
        let out = self.alloc(&shape)?;
        let variant = Variant {
            weight: self.weight_read(w.dtype),
            ..Variant::plain(Kernel::Linear)
        };
        let bias_buf = bias.as_ref().map_or(&self.dummy, |b| b.buffer());
        self.dispatch(
            &variant,
            &[m as u32, n as u32, k as u32, bias.is_some() as u32],
            &[
                Bind::whole(x.buffer()),
                Bind::whole(w.buffer()),
                Bind::whole(bias_buf),
            ],
            &Bind::whole(out.buffer()),
            [n.div_ceil(TILE) as u32, m.div_ceil(TILE) as u32, 1],
        )?;
        Ok(out)
    }
}

//! `linear`: x[..., K] · wᵀ + b with `w: [N, K]` in any storage. Rows of x beyond one
//! storage binding are split into row ranges (x and y windows); the weight is bound whole.

use super::op_err;
use super::tile::Tile;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::Result;

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
        if !self.fits(w, 0, w.numel()) {
            return Err(self.binding_error("linear", format!("the weight {:?}", w.shape)));
        }
        let m = x.numel() / k.max(1);
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("rank ≥ 1") = n;
        let out = self.alloc(&shape)?;
        let tile = Tile::pick(m, n, self.small_workgroups);
        let variant = tile.apply(Variant {
            weight: self.weight_read(w.dtype),
            ..Variant::plain(Kernel::Linear)
        });
        let bias_buf = bias.as_ref().map_or(&self.dummy, |b| b.buffer());
        let ranges = self.plan("linear", m, tile.rows(), |s, e| {
            self.fits(&x, s * k, e * k) && self.fits(&out, s * n, e * n)
        })?;
        for (r0, r1) in ranges {
            let (xb, x_base) = self.window(&x, r0 * k, r1 * k);
            let (yb, y_base) = self.window(&out, r0 * n, r1 * n);
            let rows = r1 - r0;
            self.dispatch(
                &variant,
                &[
                    rows,
                    n,
                    k,
                    bias.is_some() as usize,
                    r0 * k - x_base,
                    0,
                    r0 * n - y_base,
                ]
                .map(|v| v as u32),
                &[xb, Bind::whole(w.buffer()), Bind::whole(bias_buf)],
                &yb,
                [
                    n.div_ceil(tile.cols()) as u32,
                    rows.div_ceil(tile.rows()) as u32,
                    1,
                ],
            )?;
        }
        Ok(out)
    }
}

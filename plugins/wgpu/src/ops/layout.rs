//! Layout kernels: NCHW <-> NLC transposes, concat, narrow, nearest upsampling.

use super::op_err;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::Result;

impl Gpu {
    /// `[B, R, C]` -> `[B, C, R]` (returned with `out_shape`).
    fn transpose(
        &self,
        x: &WgpuTensor,
        (b, r, c): (usize, usize, usize),
        out_shape: &[usize],
    ) -> Result<WgpuTensor> {
        let x = self.as_f32(x)?;
        let out = self.alloc(out_shape)?;
        self.dispatch(
            &Variant::plain(Kernel::Transpose),
            &[b as u32, r as u32, c as u32],
            &[Bind::whole(x.buffer())],
            &Bind::whole(out.buffer()),
            [c.div_ceil(16) as u32, r.div_ceil(16) as u32, b as u32],
        )?;
        Ok(out)
    }

    pub(crate) fn nchw_to_nlc(&self, x: &WgpuTensor) -> Result<WgpuTensor> {
        let [n, c, h, w] = x.shape[..] else {
            return Err(op_err(
                "nchw_to_nlc",
                format!("expected [N, C, H, W], got {:?}", x.shape),
            ));
        };
        self.transpose(x, (n, c, h * w), &[n, h * w, c])
    }

    pub(crate) fn nlc_to_nchw(&self, x: &WgpuTensor, h: usize, w: usize) -> Result<WgpuTensor> {
        let [n, l, c] = x.shape[..] else {
            return Err(op_err(
                "nlc_to_nchw",
                format!("expected [N, L, C], got {:?}", x.shape),
            ));
        };
        if l != h * w {
            return Err(op_err(
                "nlc_to_nchw",
                format!("sequence length {l} is not {h}×{w}"),
            ));
        }
        self.transpose(x, (n, l, c), &[n, c, h, w])
    }

    /// Strided block copy (see `copy.wgsl`).
    #[allow(clippy::too_many_arguments)]
    fn copy_blocks(
        &self,
        src: &WgpuTensor,
        dst: &WgpuTensor,
        rows: usize,
        row_len: usize,
        (src_stride, src_off): (usize, usize),
        (dst_stride, dst_off): (usize, usize),
    ) -> Result<()> {
        let n = rows * row_len;
        if n == 0 {
            return Ok(());
        }
        self.dispatch(
            &Variant::plain(Kernel::Copy),
            &[
                n as u32,
                row_len as u32,
                src_stride as u32,
                src_off as u32,
                dst_stride as u32,
                dst_off as u32,
            ],
            &[Bind::whole(src.buffer())],
            &Bind::whole(dst.buffer()),
            self.groups_1d(n),
        )
    }

    pub(crate) fn concat(&self, xs: &[&WgpuTensor], dim: usize) -> Result<WgpuTensor> {
        let first = xs.first().ok_or_else(|| op_err("concat", "no tensors"))?;
        let rank = first.shape.len();
        if dim >= rank {
            return Err(op_err(
                "concat",
                format!("dim {dim} out of range for {:?}", first.shape),
            ));
        }
        let mut shape = first.shape.clone();
        shape[dim] = 0;
        for x in xs {
            let same_rest = x.shape.len() == rank
                && (0..rank).all(|d| d == dim || x.shape[d] == first.shape[d]);
            if !same_rest {
                return Err(op_err(
                    "concat",
                    format!(
                        "shapes {:?} and {:?} differ outside dim {dim}",
                        first.shape, x.shape
                    ),
                ));
            }
            shape[dim] += x.shape[dim];
        }
        let outer: usize = shape[..dim].iter().product();
        let inner: usize = shape[dim + 1..].iter().product();
        let out = self.alloc(&shape)?;
        let mut offset = 0;
        for x in xs {
            let x = self.as_f32(x)?;
            let len = x.shape[dim] * inner;
            self.copy_blocks(&x, &out, outer, len, (len, 0), (shape[dim] * inner, offset))?;
            offset += len;
        }
        Ok(out)
    }

    pub(crate) fn narrow(
        &self,
        x: &WgpuTensor,
        dim: usize,
        start: usize,
        len: usize,
    ) -> Result<WgpuTensor> {
        if dim >= x.shape.len() || start + len > x.shape[dim] {
            return Err(op_err(
                "narrow",
                format!(
                    "{start}..{} of dim {dim} is outside {:?}",
                    start + len,
                    x.shape
                ),
            ));
        }
        let x = self.as_f32(x)?;
        let mut shape = x.shape.clone();
        shape[dim] = len;
        let outer: usize = shape[..dim].iter().product();
        let inner: usize = shape[dim + 1..].iter().product();
        let out = self.alloc(&shape)?;
        self.copy_blocks(
            &x,
            &out,
            outer,
            len * inner,
            (x.shape[dim] * inner, start * inner),
            (len * inner, 0),
        )?;
        Ok(out)
    }

    pub(crate) fn upsample_nearest2x(&self, x: &WgpuTensor) -> Result<WgpuTensor> {
        let [n, c, h, w] = x.shape[..] else {
            return Err(op_err(
                "upsample_nearest2x",
                format!("expected [N, C, H, W], got {:?}", x.shape),
            ));
        };
        let x = self.as_f32(x)?;
        let out = self.alloc(&[n, c, 2 * h, 2 * w])?;
        let total = out.numel();
        self.dispatch(
            &Variant::plain(Kernel::Upsample),
            &[total as u32, h as u32, w as u32],
            &[Bind::whole(x.buffer())],
            &Bind::whole(out.buffer()),
            self.groups_1d(total),
        )?;
        Ok(out)
    }
}

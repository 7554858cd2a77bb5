//! Layout kernels: NCHW <-> NLC transposes, concat, narrow, nearest upsampling. Each splits
//! into dispatches over windows of its operands where they exceed one storage binding: the
//! transpose over matrices and then blocks of rows x columns, the others over elements.

use super::{dims, op_err};
use crate::gpu::Gpu;
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
        let plane = r * c;
        let whole = |b0: usize, b1: usize| {
            self.fits(&x, b0 * plane, b1 * plane) && self.fits(&out, b0 * plane, b1 * plane)
        };
        if let Ok(ranges) = self.plan("transpose", b, 1, whole) {
            for (b0, b1) in ranges {
                self.transpose_block(&x, &out, (r, c), b0..b1, 0..r, 0..c)?;
            }
            return Ok(out);
        }
        // Blocks of rows x columns of one matrix: input rows r0..r1 span (r1 - r0) * c
        // values, output rows (input columns) c0..c1 span (c1 - c0) * r.
        for bi in 0..b {
            let base = bi * plane;
            let rows = self.plan("transpose", r, 16, |r0, r1| {
                self.fits(&x, base + r0 * c, base + r1 * c)
            })?;
            let cols = self.plan("transpose", c, 16, |c0, c1| {
                self.fits(&out, base + c0 * r, base + c1 * r)
            })?;
            for &(r0, r1) in &rows {
                for &(c0, c1) in &cols {
                    self.transpose_block(&x, &out, (r, c), bi..bi + 1, r0..r1, c0..c1)?;
                }
            }
        }
        Ok(out)
    }

    /// One transpose dispatch over matrices `bs`, rows `rs` and columns `cs`.
    fn transpose_block(
        &self,
        x: &WgpuTensor,
        out: &WgpuTensor,
        (r, c): (usize, usize),
        bs: std::ops::Range<usize>,
        rs: std::ops::Range<usize>,
        cs: std::ops::Range<usize>,
    ) -> Result<()> {
        let plane = r * c;
        let last = bs.end - 1;
        let (xb, x_base) = self.window(
            x,
            bs.start * plane + rs.start * c + cs.start,
            last * plane + (rs.end - 1) * c + cs.end,
        );
        let (yb, y_base) = self.window(
            out,
            bs.start * plane + cs.start * r + rs.start,
            last * plane + (cs.end - 1) * r + rs.end,
        );
        self.dispatch(
            &Variant::plain(Kernel::Transpose),
            &[
                r, c, bs.start, rs.start, cs.start, rs.end, cs.end, x_base, y_base,
            ]
            .map(|v| v as u32),
            &[xb],
            &yb,
            [
                cs.len().div_ceil(16) as u32,
                rs.len().div_ceil(16) as u32,
                bs.len() as u32,
            ],
        )
    }

    pub(crate) fn nchw_to_nlc(&self, x: &WgpuTensor) -> Result<WgpuTensor> {
        let [n, c, h, w] = dims("nchw_to_nlc", x, "[N, C, H, W]")?;
        self.transpose(x, (n, c, h * w), &[n, h * w, c])
    }

    pub(crate) fn nlc_to_nchw(&self, x: &WgpuTensor, h: usize, w: usize) -> Result<WgpuTensor> {
        let [n, l, c] = dims("nlc_to_nchw", x, "[N, L, C]")?;
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
        // Elements of src and dst that items s..e touch.
        let span = |s: usize, e: usize, stride: usize, off: usize| {
            let at = |i: usize| i / row_len * stride + off + i % row_len;
            (at(s), at(e - 1) + 1)
        };
        let ranges = self.plan("copy", n, 256, |s, e| {
            let (ss, se) = span(s, e, src_stride, src_off);
            let (ds, de) = span(s, e, dst_stride, dst_off);
            self.fits(src, ss, se) && self.fits(dst, ds, de)
        })?;
        for (s, e) in ranges {
            let (ss, se) = span(s, e, src_stride, src_off);
            let (ds, de) = span(s, e, dst_stride, dst_off);
            let (sb, src_base) = self.window(src, ss, se);
            let (db, dst_base) = self.window(dst, ds, de);
            self.dispatch(
                &Variant::plain(Kernel::Copy),
                &[
                    e - s,
                    row_len,
                    src_stride,
                    src_off,
                    dst_stride,
                    dst_off,
                    s,
                    src_base,
                    dst_base,
                ]
                .map(|v| v as u32),
                &[sb],
                &db,
                self.groups_1d(e - s),
            )?;
        }
        Ok(())
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
        let [n, c, h, w] = dims("upsample_nearest2x", x, "[N, C, H, W]")?;
        let x = self.as_f32(x)?;
        let out = self.alloc(&[n, c, 2 * h, 2 * w])?;
        // Input elements output elements s..e read: whole input rows (two output rows
        // read each input row, so the last output element need not read the last input).
        let (plane, ow) = (4 * h * w, 2 * w);
        let input_row = |i: usize| i / plane * h + i % plane / ow / 2;
        let source = |s: usize, e: usize| (input_row(s) * w, (input_row(e - 1) + 1) * w);
        let ranges = self.plan("upsample_nearest2x", out.numel(), 256, |s, e| {
            let (xs, xe) = source(s, e);
            self.fits(&x, xs, xe) && self.fits(&out, s, e)
        })?;
        for (s, e) in ranges {
            let (xs, xe) = source(s, e);
            let (xb, x_base) = self.window(&x, xs, xe);
            let (yb, y_base) = self.window(&out, s, e);
            self.dispatch(
                &Variant::plain(Kernel::Upsample),
                &[e - s, h, w, s, x_base, y_base].map(|v| v as u32),
                &[xb],
                &yb,
                self.groups_1d(e - s),
            )?;
        }
        Ok(out)
    }
}

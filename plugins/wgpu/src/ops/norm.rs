//! Group norm (optionally fused with SiLU) and layer norm.

use super::op_err;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::Result;

impl Gpu {
    pub(crate) fn group_norm(
        &self,
        x: &WgpuTensor,
        groups: usize,
        gamma: &WgpuTensor,
        beta: &WgpuTensor,
        eps: f32,
        silu: bool,
    ) -> Result<WgpuTensor> {
        if x.shape.len() < 2 {
            return Err(op_err(
                "group_norm",
                format!("input {:?} has no channel dim", x.shape),
            ));
        }
        let (n, c) = (x.shape[0], x.shape[1]);
        if groups == 0 || c % groups != 0 {
            return Err(op_err(
                "group_norm",
                format!("{c} channels do not split into {groups} groups"),
            ));
        }
        if gamma.numel() != c || beta.numel() != c {
            return Err(op_err(
                "group_norm",
                format!("affine {:?}/{:?} for {c} channels", gamma.shape, beta.shape),
            ));
        }
        let s: usize = x.shape[2..].iter().product();
        let (x, gamma, beta) = (self.as_f32(x)?, self.as_f32(gamma)?, self.as_f32(beta)?);
        let out = self.alloc(&x.shape)?;
        // Whole (image, group) pairs per dispatch, each a contiguous run of values.
        let group_len = c / groups * s;
        let pairs = n * groups;
        let ranges = self.plan("group_norm", pairs, 1, |g0, g1| {
            self.fits(&x, g0 * group_len, g1 * group_len)
                && self.fits(&out, g0 * group_len, g1 * group_len)
        });
        let Ok(ranges) = ranges else {
            // A single group larger than a binding: statistics over ranges first.
            return self.group_norm_segmented(&x, groups, &gamma, &beta, eps, silu, out);
        };
        for (g0, g1) in ranges {
            let (xb, x_base) = self.window(&x, g0 * group_len, g1 * group_len);
            let (yb, y_base) = self.window(&out, g0 * group_len, g1 * group_len);
            self.dispatch(
                &self.reduction(Kernel::GroupNorm),
                &[
                    c as u32,
                    s as u32,
                    groups as u32,
                    eps.to_bits(),
                    silu as u32,
                    g0 as u32,
                    x_base as u32,
                    y_base as u32,
                ],
                &[xb, Bind::whole(gamma.buffer()), Bind::whole(beta.buffer())],
                &yb,
                [(g1 - g0) as u32, 1, 1],
            )?;
        }
        Ok(out)
    }

    pub(crate) fn layer_norm(
        &self,
        x: &WgpuTensor,
        gamma: &WgpuTensor,
        beta: &WgpuTensor,
        eps: f32,
    ) -> Result<WgpuTensor> {
        let c = *x
            .shape
            .last()
            .ok_or_else(|| op_err("layer_norm", "scalar input"))?;
        if gamma.numel() != c || beta.numel() != c {
            return Err(op_err(
                "layer_norm",
                format!("affine {:?}/{:?} for width {c}", gamma.shape, beta.shape),
            ));
        }
        let rows = x.numel() / c.max(1);
        let (x, gamma, beta) = (self.as_f32(x)?, self.as_f32(gamma)?, self.as_f32(beta)?);
        let out = self.alloc(&x.shape)?;
        let ranges = self.plan("layer_norm", rows, 1, |r0, r1| {
            self.fits(&x, r0 * c, r1 * c) && self.fits(&out, r0 * c, r1 * c)
        })?;
        for (r0, r1) in ranges {
            let (xb, x_base) = self.window(&x, r0 * c, r1 * c);
            let (yb, y_base) = self.window(&out, r0 * c, r1 * c);
            // One workgroup per row, folded into two dimensions like the elementwise kernels.
            let mut wgs = self.groups_1d((r1 - r0) * 256);
            wgs[2] = 1;
            self.dispatch(
                &self.reduction(Kernel::LayerNorm),
                &[
                    (r1 - r0) as u32,
                    c as u32,
                    eps.to_bits(),
                    (r0 * c - x_base) as u32,
                    (r0 * c - y_base) as u32,
                ],
                &[xb, Bind::whole(gamma.buffer()), Bind::whole(beta.buffer())],
                &yb,
                wgs,
            )?;
        }
        Ok(out)
    }
}

impl Gpu {
    /// Group norm where one (image, group) run of values exceeds a storage binding: each
    /// group is cut into segments that fit, a first pass writes every segment's count, mean
    /// and M2, and a second combines them per group and normalises segment by segment.
    #[allow(clippy::too_many_arguments)]
    fn group_norm_segmented(
        &self,
        x: &WgpuTensor,
        groups: usize,
        gamma: &WgpuTensor,
        beta: &WgpuTensor,
        eps: f32,
        silu: bool,
        out: WgpuTensor,
    ) -> Result<WgpuTensor> {
        let (n, c) = (x.shape[0], x.shape[1]);
        let s: usize = x.shape[2..].iter().product();
        let group_len = c / groups * s;
        let affine = self.concat(&[gamma, beta], 0)?;
        // Segments of every (image, group) pair: (pair, start, end) within the pair's run.
        let mut segments = Vec::new();
        for pair in 0..n * groups {
            let base = pair * group_len;
            for (a, b) in self.plan("group_norm", group_len, 256, |a, b| {
                self.fits(x, base + a, base + b) && self.fits(&out, base + a, base + b)
            })? {
                segments.push((pair, a, b));
            }
        }
        let stats = self.alloc(&[3 * segments.len()])?;
        if !self.fits(&stats, 0, stats.numel()) || !self.fits(&affine, 0, affine.numel()) {
            return Err(self.binding_error("group_norm", "the per-segment statistics"));
        }
        for (slot, &(pair, a, b)) in segments.iter().enumerate() {
            let base = pair * group_len;
            let (xb, x_base) = self.window(x, base + a, base + b);
            self.dispatch(
                &self.reduction(Kernel::GroupStats),
                &[(b - a) as u32, (base + a - x_base) as u32, slot as u32],
                &[xb],
                &Bind::whole(stats.buffer()),
                [1, 1, 1],
            )?;
        }
        for (slot, &(pair, a, b)) in segments.iter().enumerate() {
            let base = pair * group_len;
            let seg0 = segments
                .iter()
                .position(|&(p, _, _)| p == pair)
                .unwrap_or(slot);
            let nseg = segments.iter().filter(|&&(p, _, _)| p == pair).count();
            let (xb, x_base) = self.window(x, base + a, base + b);
            let (yb, y_base) = self.window(&out, base + a, base + b);
            self.dispatch(
                &Variant::plain(Kernel::GroupNormApply),
                &[
                    c as u32,
                    s as u32,
                    groups as u32,
                    eps.to_bits(),
                    silu as u32,
                    (pair % groups) as u32,
                    seg0 as u32,
                    nseg as u32,
                    a as u32,
                    (b - a) as u32,
                    (base + a - x_base) as u32,
                    (base + a - y_base) as u32,
                ],
                &[
                    xb,
                    Bind::whole(affine.buffer()),
                    Bind::whole(stats.buffer()),
                ],
                &yb,
                self.groups_1d(b - a),
            )?;
        }
        Ok(out)
    }

    /// A norm kernel in workgroups of 64 invocations on software adapters and 256 on GPUs
    /// (`workgroup_sum.wgsl` reduces over ROWS x ROWS of them).
    fn reduction(&self, kernel: Kernel) -> Variant {
        let rows = if self.small_workgroups { 8 } else { 16 };
        Variant {
            consts: vec![("ROWS", rows)],
            ..Variant::plain(kernel)
        }
    }
}

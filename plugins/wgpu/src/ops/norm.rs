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
        self.dispatch(
            &Variant::plain(Kernel::GroupNorm),
            &[
                c as u32,
                s as u32,
                groups as u32,
                eps.to_bits(),
                silu as u32,
            ],
            &[
                Bind::whole(x.buffer()),
                Bind::whole(gamma.buffer()),
                Bind::whole(beta.buffer()),
            ],
            &Bind::whole(out.buffer()),
            [(n * groups) as u32, 1, 1],
        )?;
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
        // One workgroup per row, folded into two dimensions like the elementwise kernels.
        let mut groups = self.groups_1d(rows * 256);
        groups[2] = 1;
        self.dispatch(
            &Variant::plain(Kernel::LayerNorm),
            &[rows as u32, c as u32, eps.to_bits()],
            &[
                Bind::whole(x.buffer()),
                Bind::whole(gamma.buffer()),
                Bind::whole(beta.buffer()),
            ],
            &Bind::whole(out.buffer()),
            groups,
        )?;
        Ok(out)
    }
}

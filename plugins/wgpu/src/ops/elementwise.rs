//! Elementwise kernels: unary maps, binary ops, GEGLU.

use super::op_err;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::Result;

/// Operation codes of `unary.wgsl`.
#[derive(Clone, Copy)]
pub(crate) enum UnaryOp {
    Scale = 0,
    Silu = 1,
    Gelu = 2,
    QuickGelu = 3,
}

/// Operation codes of `binary.wgsl`.
#[derive(Clone, Copy)]
enum BinaryOp {
    Add = 0,
    Mul = 1,
    AddChannel = 2,
}

impl Gpu {
    pub(crate) fn unary(&self, x: &WgpuTensor, op: UnaryOp, alpha: f32) -> Result<WgpuTensor> {
        let x = self.as_f32(x)?;
        let out = self.alloc(&x.shape)?;
        let n = x.numel();
        self.dispatch(
            &Variant::plain(Kernel::Unary),
            &[n as u32, op as u32, alpha.to_bits()],
            &[Bind::whole(x.buffer())],
            &Bind::whole(out.buffer()),
            self.groups_1d(n),
        )?;
        Ok(out)
    }

    fn binary(
        &self,
        a: &WgpuTensor,
        b: &WgpuTensor,
        op: BinaryOp,
        inner: usize,
    ) -> Result<WgpuTensor> {
        let (a, b) = (self.as_f32(a)?, self.as_f32(b)?);
        let out = self.alloc(&a.shape)?;
        let n = a.numel();
        self.dispatch(
            &Variant::plain(Kernel::Binary),
            &[n as u32, op as u32, inner as u32],
            &[Bind::whole(a.buffer()), Bind::whole(b.buffer())],
            &Bind::whole(out.buffer()),
            self.groups_1d(n),
        )?;
        Ok(out)
    }

    pub(crate) fn add(&self, a: &WgpuTensor, b: &WgpuTensor) -> Result<WgpuTensor> {
        same_shape("add", a, b)?;
        self.binary(a, b, BinaryOp::Add, 1)
    }

    pub(crate) fn mul(&self, a: &WgpuTensor, b: &WgpuTensor) -> Result<WgpuTensor> {
        same_shape("mul", a, b)?;
        self.binary(a, b, BinaryOp::Mul, 1)
    }

    /// `x[n, c, ...] + v[n, c]`.
    pub(crate) fn add_channel_vector(&self, x: &WgpuTensor, v: &WgpuTensor) -> Result<WgpuTensor> {
        if v.shape.len() != 2 || x.shape.len() < 2 || x.shape[..2] != v.shape[..] {
            return Err(op_err(
                "add_channel_vector",
                format!(
                    "vector {:?} does not match the leading dims of {:?}",
                    v.shape, x.shape
                ),
            ));
        }
        let inner = x.shape[2..].iter().product::<usize>();
        self.binary(x, v, BinaryOp::AddChannel, inner.max(1))
    }

    pub(crate) fn geglu(&self, x: &WgpuTensor) -> Result<WgpuTensor> {
        let x = self.as_f32(x)?;
        let width = *x
            .shape
            .last()
            .ok_or_else(|| op_err("geglu", "scalar input"))?;
        if width % 2 != 0 {
            return Err(op_err("geglu", format!("last dim {width} is odd")));
        }
        let mut shape = x.shape.clone();
        *shape.last_mut().expect("rank ≥ 1") = width / 2;
        let out = self.alloc(&shape)?;
        let n = out.numel();
        self.dispatch(
            &Variant::plain(Kernel::Geglu),
            &[n as u32, (width / 2) as u32],
            &[Bind::whole(x.buffer())],
            &Bind::whole(out.buffer()),
            self.groups_1d(n),
        )?;
        Ok(out)
    }
}

fn same_shape(op: &str, a: &WgpuTensor, b: &WgpuTensor) -> Result<()> {
    if a.shape != b.shape {
        return Err(op_err(
            op,
            format!("shapes differ: {:?} vs {:?}", a.shape, b.shape),
        ));
    }
    Ok(())
}

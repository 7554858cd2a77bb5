//! Elementwise kernels: unary maps, binary ops (PReLU among them: a per-channel slope is
//! a broadcast second operand), GEGLU.

use super::op_err;
use crate::gpu::Gpu;
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
    LeakyRelu = 4,
    Tanh = 5,
    Sigmoid = 6,
    Elu = 7,
    Selu = 8,
    Hardswish = 9,
    Mish = 10,
    Relu6 = 11,
    Hardtanh = 12,
    Hardsigmoid = 13,
    Softplus = 14,
    Softsign = 15,
    Tanhshrink = 16,
    LogSigmoid = 17,
    Hardshrink = 18,
    Softshrink = 19,
}

impl From<easel_core::ElementwiseFn> for UnaryOp {
    fn from(f: easel_core::ElementwiseFn) -> Self {
        use easel_core::ElementwiseFn as F;
        match f {
            F::Tanh => UnaryOp::Tanh,
            F::Sigmoid => UnaryOp::Sigmoid,
            F::Elu => UnaryOp::Elu,
            F::Selu => UnaryOp::Selu,
            F::Hardswish => UnaryOp::Hardswish,
            F::Mish => UnaryOp::Mish,
            F::Relu6 => UnaryOp::Relu6,
            F::Hardtanh => UnaryOp::Hardtanh,
            F::Hardsigmoid => UnaryOp::Hardsigmoid,
            F::Softplus => UnaryOp::Softplus,
            F::Softsign => UnaryOp::Softsign,
            F::Tanhshrink => UnaryOp::Tanhshrink,
            F::LogSigmoid => UnaryOp::LogSigmoid,
            F::Hardshrink => UnaryOp::Hardshrink,
            F::Softshrink => UnaryOp::Softshrink,
        }
    }
}

/// Operation codes of `binary.wgsl`.
#[derive(Clone, Copy)]
enum BinaryOp {
    Add = 0,
    Mul = 1,
    AddChannel = 2,
    Prelu = 3,
}

impl Gpu {
    pub(crate) fn unary(&self, x: &WgpuTensor, op: UnaryOp, alpha: f32) -> Result<WgpuTensor> {
        let x = self.as_f32(x)?;
        let out = self.alloc(&x.shape)?;
        let ranges = self.plan("unary op", x.numel(), 256, |s, e| {
            self.fits(&x, s, e) && self.fits(&out, s, e)
        })?;
        for (s, e) in ranges {
            let (xb, x_base) = self.window(&x, s, e);
            let (yb, y_base) = self.window(&out, s, e);
            self.dispatch(
                &Variant::plain(Kernel::Unary),
                &[
                    (e - s) as u32,
                    op as u32,
                    alpha.to_bits(),
                    (s - x_base) as u32,
                    (s - y_base) as u32,
                ],
                &[xb],
                &yb,
                self.groups_1d(e - s),
            )?;
        }
        Ok(out)
    }

    /// `op` on `a` and `b`; `inner` is the run of `a`'s elements sharing one element of a
    /// broadcast `b` (`AddChannel`, `Prelu`), `channels` the length of PReLU's `b`.
    fn binary(
        &self,
        a: &WgpuTensor,
        b: &WgpuTensor,
        op: BinaryOp,
        inner: usize,
        channels: usize,
    ) -> Result<WgpuTensor> {
        let (a, b) = (self.as_f32(a)?, self.as_f32(b)?);
        let out = self.alloc(&a.shape)?;
        // Elements s..e of a read b's elements b_range(s, e): PReLU's slopes (one per
        // channel, cycling over images) are bound whole.
        let b_range = |s: usize, e: usize| match op {
            BinaryOp::AddChannel => (s / inner, (e - 1) / inner + 1),
            BinaryOp::Prelu => (0, channels),
            _ => (s, e),
        };
        let ranges = self.plan("binary op", a.numel(), 256, |s, e| {
            let (bs, be) = b_range(s, e);
            self.fits(&a, s, e) && self.fits(&b, bs, be) && self.fits(&out, s, e)
        })?;
        for (s, e) in ranges {
            let (bs, be) = b_range(s, e);
            let (ab, a_base) = self.window(&a, s, e);
            let (bb, b_base) = self.window(&b, bs, be);
            let (yb, y_base) = self.window(&out, s, e);
            self.dispatch(
                &Variant::plain(Kernel::Binary),
                &[
                    e - s,
                    op as usize,
                    inner,
                    s,
                    s - a_base,
                    bs - b_base,
                    s - y_base,
                    channels,
                ]
                .map(|v| v as u32),
                &[ab, bb],
                &yb,
                self.groups_1d(e - s),
            )?;
        }
        Ok(out)
    }

    pub(crate) fn add(&self, a: &WgpuTensor, b: &WgpuTensor) -> Result<WgpuTensor> {
        same_shape("add", a, b)?;
        self.binary(a, b, BinaryOp::Add, 1, 1)
    }

    pub(crate) fn mul(&self, a: &WgpuTensor, b: &WgpuTensor) -> Result<WgpuTensor> {
        same_shape("mul", a, b)?;
        self.binary(a, b, BinaryOp::Mul, 1, 1)
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
        self.binary(x, v, BinaryOp::AddChannel, inner.max(1), 1)
    }

    /// PReLU of `x: [N, C, ...]` with `weight` holding one slope per channel or a single
    /// slope for all (`nn.PReLU`'s two forms), in whatever storage it was uploaded.
    pub(crate) fn prelu(&self, x: &WgpuTensor, weight: &WgpuTensor) -> Result<WgpuTensor> {
        if x.shape.len() < 2 {
            return Err(op_err(
                "prelu",
                format!("expected [N, C, ...], got {:?}", x.shape),
            ));
        }
        let c = x.shape[1];
        let slopes = weight.numel();
        if slopes != c && slopes != 1 {
            return Err(op_err(
                "prelu",
                format!("{slopes} weights for {c} channels"),
            ));
        }
        let inner = x.shape[2..].iter().product::<usize>();
        self.binary(x, weight, BinaryOp::Prelu, inner.max(1), slopes)
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
        let half = width / 2;
        let rows = out.numel() / half.max(1);
        let ranges = self.plan("geglu", rows, 1, |r0, r1| {
            self.fits(&x, r0 * width, r1 * width) && self.fits(&out, r0 * half, r1 * half)
        })?;
        for (r0, r1) in ranges {
            let (xb, x_base) = self.window(&x, r0 * width, r1 * width);
            let (yb, y_base) = self.window(&out, r0 * half, r1 * half);
            let n = (r1 - r0) * half;
            self.dispatch(
                &Variant::plain(Kernel::Geglu),
                &[n, half, r0 * width - x_base, r0 * half - y_base].map(|v| v as u32),
                &[xb],
                &yb,
                self.groups_1d(n),
            )?;
        }
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

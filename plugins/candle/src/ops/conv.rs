//! 2-D convolution. On the CPU, a 3×3 stride-1 convolution in f32 goes through Winograd's
//! transform ([`winograd`]); any other is one blocked matrix product per image,
//! `out[Cout, Ho·Wo] = W[Cout, C·k·k] · cols[C·k·k, Ho·Wo] + bias`, whose column matrix is
//! packed straight from the image block by block ([`Im2col`]) and never materialised; a
//! 1×1 convolution reads the image itself as the right operand. Other devices use candle's
//! conv2d.

use super::cpu_kernel::{cpu_kernel_operands, with_f32_data, with_weight_data, WeightData};
use super::winograd::{self, Conv3x3};
use crate::gemm::{matmul_batched_in, Bias, Dims, Element, Im2col, Output, Precision, RowMajor};
use candle_core::{bail, Device, Result, Tensor};

/// Square-kernel convolution of `[N, C, H, W]` by `w: [out, C, k, k]`, its products on
/// the CPU in `precision`.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
    precision: Precision,
) -> Result<Tensor> {
    let (_, c, h, wd) = x.dims4()?;
    let (out, cin, kh, kw) = w.dims4()?;
    if c != cin || kh != kw {
        bail!(
            "conv2d: input {:?} does not fit weight {:?}",
            x.dims(),
            w.dims()
        );
    }
    if stride == 0 || h + 2 * padding < kh || wd + 2 * padding < kw {
        bail!(
            "conv2d: kernel {kh}×{kw} (stride {stride}, padding {padding}) does not fit input {:?}",
            x.dims()
        );
    }
    if let Some(b) = b {
        if b.dims() != [out] {
            bail!("conv2d: bias {:?} is not [{out}]", b.dims());
        }
    }
    let mut others = vec![x];
    others.extend(b);
    if cpu_kernel_operands(w, &others) {
        return conv2d_cpu(x, w, b, stride, padding, precision);
    }
    let y = x.conv2d(w, padding, stride, 1, 1)?;
    match b {
        Some(b) => y.broadcast_add(&b.reshape((1, out, 1, 1))?),
        None => Ok(y),
    }
}

/// The CPU path (shapes already checked by [`conv2d`]).
fn conv2d_cpu(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
    precision: Precision,
) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (cout, _, k, _) = w.dims4()?;
    let ho = (h + 2 * padding - k) / stride + 1;
    let wo = (wd + 2 * padding - k) / stride + 1;
    let mut y = vec![0f32; n * cout * ho * wo];
    let bias = match b {
        Some(b) => Some(with_f32_data(b, "conv2d", |v| v.to_vec())?),
        None => None,
    };
    let shape = ConvShape {
        n,
        c,
        h,
        wd,
        cout,
        k,
        stride,
        padding,
        ho,
        wo,
    };
    let bias = bias.as_deref();
    with_f32_data(x, "conv2d", |xs| {
        with_weight_data(w, "conv2d", |wd| match wd {
            WeightData::F32(ws) => conv_products(&shape, xs, ws, &mut y, bias, precision),
            WeightData::Bf16(ws) => conv_products(&shape, xs, ws, &mut y, bias, precision),
        })
    })??;
    Tensor::from_vec(y, (n, cout, ho, wo), &Device::Cpu)
}

/// The sizes of one CPU convolution (input, weight, output).
struct ConvShape {
    n: usize,
    c: usize,
    h: usize,
    wd: usize,
    cout: usize,
    k: usize,
    stride: usize,
    padding: usize,
    ho: usize,
    wo: usize,
}

/// `y = W · cols(x) + bias` for every image, with the weight in f32 or bf16: through
/// Winograd's transform where it applies, else one product per image.
fn conv_products<T: Element>(
    s: &ConvShape,
    xs: &[f32],
    ws: &[T],
    y: &mut [f32],
    bias: Option<&[f32]>,
    precision: Precision,
) {
    let (c, h, wd) = (s.c, s.h, s.wd);
    if winograd::applies(s.k, s.stride, s.padding, s.n, h, wd, precision) {
        let shape = Conv3x3 {
            images: s.n,
            channels: c,
            height: h,
            width: wd,
            out_channels: s.cout,
        };
        return winograd::conv3x3(shape, xs, ws, y, bias, precision);
    }
    let bias = bias.map_or(Bias::None, Bias::PerRow);
    let dims = Dims {
        m: s.cout,
        n: s.ho * s.wo,
        k: c * s.k * s.k,
    };
    let weight = RowMajor {
        data: ws,
        ld: dims.k,
    };
    let output = Output {
        data: y,
        ld: dims.n,
        batch_stride: s.cout * dims.n,
    };
    let image = |i: usize| &xs[i * c * h * wd..(i + 1) * c * h * wd];
    if s.k == 1 && s.stride == 1 && s.padding == 0 {
        let cols = |i| RowMajor {
            data: image(i),
            ld: h * wd,
        };
        matmul_batched_in(precision, dims, s.n, &weight, cols, output, bias, true);
    } else {
        let cols = |i| Im2col {
            image: image(i),
            channels: c,
            height: h,
            width: wd,
            kernel: s.k,
            stride: s.stride,
            padding: s.padding,
            out_height: s.ho,
            out_width: s.wo,
        };
        matmul_batched_in(precision, dims, s.n, &weight, cols, output, bias, true);
    }
}

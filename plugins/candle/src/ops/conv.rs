//! 2-D convolution. On the CPU, a 3×3 stride-1 convolution in f32 goes through Winograd's
//! transform ([`winograd`]); any other is one blocked matrix product per image,
//! `out[Cout, Ho·Wo] = W[Cout, C·k·k] · cols[C·k·k, Ho·Wo] + bias`, whose column matrix is
//! packed straight from the image block by block ([`Im2col`]) and never materialised; a
//! 1×1 convolution reads the image itself as the right operand. Other devices use candle's
//! conv2d.
//!
//! An image the backend keeps compact (bf16, see `CandleBackend::compact`) gives a compact
//! output: its values widen exactly as they are read, the sums stay f32, and each output
//! value is rounded once as it is stored. Through the matrix products the output is made a
//! window of pixels at a time, so that no whole f32 copy of it exists beside it.

use super::cpu_kernel::{
    cpu_kernel_operands, is_compact_cpu, with_activation_data, with_f32_data, with_weight_data,
    ActivationData, ActivationDataMut, WeightData,
};
use super::winograd::{self, Conv3x3};
use crate::gemm::{
    matmul_batched_in, matmul_in, Bias, ColumnsFrom, Dims, Element, Im2col, Output, PackB,
    Precision, RowMajor,
};
use candle_core::{bail, DType, Device, Result, Tensor};
use half::bf16;
use half::slice::HalfFloatSliceExt;

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
    check_shapes(x.dims4()?, w, b, stride, padding)?;
    if kernel_operands(x, w, b) {
        return conv2d_cpu(x, w, b, stride, padding, precision, false);
    }
    if is_compact_cpu(x) {
        // No kernel of ours for this weight: candle's, in f32, stored compact again.
        let y = conv2d(&x.to_dtype(DType::F32)?, w, b, stride, padding, precision)?;
        return y.to_dtype(DType::BF16);
    }
    let y = x.conv2d(w, padding, stride, 1, 1)?;
    match b {
        Some(b) => y.broadcast_add(&b.reshape((1, w.dim(0)?, 1, 1))?),
        None => Ok(y),
    }
}

/// [`conv2d`] of `x`'s nearest-neighbour upsampling to twice its height and width. Where
/// the convolution goes through Winograd's transform, the transform reads the upsampled
/// rows straight from `x` ([`winograd::Image`]), so the upsampled image (four times `x`)
/// is never made; otherwise it is made and convolved.
pub fn conv2d_nearest2x(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
    precision: Precision,
) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (ho, wo) = (2 * h, 2 * wd);
    check_shapes((n, c, ho, wo), w, b, stride, padding)?;
    let k = w.dim(2)?;
    if kernel_operands(x, w, b) && winograd::applies(k, stride, padding, n, ho, wo, precision) {
        return conv2d_cpu(x, w, b, stride, padding, precision, true);
    }
    conv2d(
        &x.upsample_nearest2d(ho, wo)?,
        w,
        b,
        stride,
        padding,
        precision,
    )
}

/// That a convolution of an image of `dims` by `w` (and `b`) is well formed.
fn check_shapes(
    (n, c, h, wd): (usize, usize, usize, usize),
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<()> {
    let (out, cin, kh, kw) = w.dims4()?;
    if c != cin || kh != kw {
        bail!(
            "conv2d: input {:?} does not fit weight {:?}",
            [n, c, h, wd],
            w.dims()
        );
    }
    if stride == 0 || h + 2 * padding < kh || wd + 2 * padding < kw {
        bail!(
            "conv2d: kernel {kh}×{kw} (stride {stride}, padding {padding}) does not fit input {:?}",
            [n, c, h, wd]
        );
    }
    if let Some(b) = b {
        if b.dims() != [out] {
            bail!("conv2d: bias {:?} is not [{out}]", b.dims());
        }
    }
    Ok(())
}

/// Whether the CPU kernels take these operands: a weight they read with f32 bias and
/// image, or with a compact image.
fn kernel_operands(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> bool {
    let mut others: Vec<&Tensor> = b.into_iter().collect();
    if !is_compact_cpu(x) {
        others.push(x);
    }
    cpu_kernel_operands(w, &others)
}

/// The CPU path (shapes already checked by [`conv2d`]), on `x` or (`nearest2x`, through
/// Winograd's transform only) its nearest-neighbour upsampling by 2.
fn conv2d_cpu(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
    precision: Precision,
    nearest2x: bool,
) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (h, wd) = if nearest2x { (2 * h, 2 * wd) } else { (h, wd) };
    let (cout, _, k, _) = w.dims4()?;
    let ho = (h + 2 * padding - k) / stride + 1;
    let wo = (wd + 2 * padding - k) / stride + 1;
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
        nearest2x,
    };
    let bias = bias.as_deref();
    let len = n * cout * ho * wo;
    let products = |y: ConvOutput<'_>| {
        with_activation_data(x, "conv2d", |xs| {
            with_weight_data(w, "conv2d", |wd| match wd {
                WeightData::F32(ws) => conv_products(&shape, xs, ws, y, bias, precision),
                WeightData::Bf16(ws) => conv_products(&shape, xs, ws, y, bias, precision),
            })
        })
    };
    let winograd = winograd::applies(k, stride, padding, n, h, wd, precision);
    assert!(
        winograd || !nearest2x,
        "conv2d: upsampling outside Winograd's transform"
    );
    // The output is kept as compact as the input.
    if is_compact_cpu(x) {
        let mut y = vec![bf16::ZERO; len];
        products(if winograd {
            ConvOutput::Winograd(ActivationDataMut::Bf16(&mut y))
        } else {
            ConvOutput::Images(ImageOutput::Compact(&mut y))
        })??;
        Tensor::from_vec(y, (n, cout, ho, wo), &Device::Cpu)
    } else if winograd {
        let mut y = vec![0f32; len];
        products(ConvOutput::Winograd(ActivationDataMut::F32(&mut y)))??;
        Tensor::from_vec(y, (n, cout, ho, wo), &Device::Cpu)
    } else {
        let mut y = Vec::with_capacity(len);
        let fresh = Output::uninit(&mut y.spare_capacity_mut()[..len], ho * wo, cout * ho * wo);
        products(ConvOutput::Images(ImageOutput::F32(fresh)))??;
        // SAFETY: the products wrote every element of `y[..len]`: `n` items `cout · ho · wo`
        // apart, each `cout × ho·wo` with rows `ho · wo` apart (`Output::uninit`).
        unsafe { y.set_len(len) };
        Tensor::from_vec(y, (n, cout, ho, wo), &Device::Cpu)
    }
}

/// How a CPU convolution computes and where it writes, as [`conv2d_cpu`] chose: through
/// Winograd's transform into an activation (zeroed f32, or compact), or one product per
/// image (into new f32 memory the products fill, never zeroed first, or a compact
/// activation).
enum ConvOutput<'a> {
    Winograd(ActivationDataMut<'a>),
    Images(ImageOutput<'a>),
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
    /// The image is read upsampled 2× (nearest): `h` and `wd` are the upsampled sizes.
    nearest2x: bool,
}

/// `y = W · cols(x) + bias` for every image, with the weight in f32 or bf16 and the image
/// and output f32 or compact: through Winograd's transform or one product per image, as
/// `y` says.
fn conv_products<T: Element>(
    s: &ConvShape,
    xs: ActivationData<'_>,
    ws: &[T],
    y: ConvOutput<'_>,
    bias: Option<&[f32]>,
    precision: Precision,
) {
    let y = match y {
        ConvOutput::Winograd(y) => {
            let shape = Conv3x3 {
                images: s.n,
                channels: s.c,
                height: s.h,
                width: s.wd,
                out_channels: s.cout,
            };
            let image = winograd::Image {
                data: xs,
                nearest2x: s.nearest2x,
            };
            return winograd::conv3x3(shape, image, ws, y, bias, precision);
        }
        ConvOutput::Images(y) => y,
    };
    match xs {
        ActivationData::F32(xs) => image_products(s, xs, ws, y, bias, precision),
        ActivationData::Bf16(xs) => image_products(s, xs, ws, y, bias, precision),
    }
}

/// Where [`image_products`] writes: f32 products (rows `ho · wo` apart, images
/// `cout · ho · wo` apart), or a compact activation.
enum ImageOutput<'a> {
    F32(Output<'a>),
    Compact(&'a mut [bf16]),
}

/// Floats of f32 output a compact convolution computes at a time before storing them in
/// bf16 (4 MiB: a few thousand pixels of every output channel).
const COMPACT_WINDOW_FLOATS: usize = 1 << 20;

/// [`conv_products`] through the GEMM: the image itself as the right operand (1×1) or its
/// column matrix. A compact output is made a window of pixels at a time, so no f32 copy of
/// it is ever whole.
fn image_products<T: Element, X: Element>(
    s: &ConvShape,
    xs: &[X],
    ws: &[T],
    y: ImageOutput<'_>,
    bias: Option<&[f32]>,
    precision: Precision,
) {
    let (c, h, wd) = (s.c, s.h, s.wd);
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
    let image = |i: usize| &xs[i * c * h * wd..(i + 1) * c * h * wd];
    let pointwise = s.k == 1 && s.stride == 1 && s.padding == 0;
    let columns = |i: usize| Im2col {
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
    let pixels = |i: usize| RowMajor {
        data: image(i),
        ld: h * wd,
    };
    match y {
        ImageOutput::F32(output) => {
            if pointwise {
                matmul_batched_in(precision, dims, s.n, &weight, pixels, output, bias, true);
            } else {
                matmul_batched_in(precision, dims, s.n, &weight, columns, output, bias, true);
            }
        }
        ImageOutput::Compact(y) => {
            if pointwise {
                compact_products(s, dims, &weight, pixels, y, bias, precision);
            } else {
                compact_products(s, dims, &weight, columns, y, bias, precision);
            }
        }
    }
}

/// `y = W · B_i + bias` for every image `i`, stored compact: a window of
/// [`COMPACT_WINDOW_FLOATS`] of f32 results at a time, each rounded as it is stored.
fn compact_products<T: Element, B: PackB>(
    s: &ConvShape,
    dims: Dims,
    weight: &RowMajor<'_, T>,
    operand: impl Fn(usize) -> B,
    y: &mut [bf16],
    bias: Bias<'_>,
    precision: Precision,
) {
    let window = (COMPACT_WINDOW_FLOATS / s.cout).clamp(64, dims.n.max(64));
    let mut part = vec![0f32; s.cout * window];
    for i in 0..s.n {
        for first in (0..dims.n).step_by(window) {
            let len = window.min(dims.n - first);
            let part = &mut part[..s.cout * len];
            let columns = ColumnsFrom {
                operand: operand(i),
                first,
            };
            let window_dims = Dims { n: len, ..dims };
            matmul_in(
                precision,
                window_dims,
                weight,
                &columns,
                part,
                len,
                bias,
                true,
            );
            for (o, values) in part.chunks_exact(len).enumerate() {
                y[(i * s.cout + o) * dims.n + first..][..len].convert_from_f32_slice(values);
            }
        }
    }
}

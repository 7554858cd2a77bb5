//! Linear layers: one matrix product over all leading dims. On the CPU (f32) the blocked
//! product reads the `[out, in]` weight as `Wᵀ` while packing it and adds the bias in the
//! kernel's epilogue; other devices use candle's matmul on the transposed view.

use super::cpu_kernel::{cpu_kernel_operands, with_f32_data, with_weight_data, WeightData};
use crate::gemm::{matmul_batched_new, Bias, Dims, Element, Precision, RowMajor, Transposed};
use candle_core::{bail, Device, Result, Tensor};

/// `x[..., in] · wᵀ + b` with `w: [out, in]`.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>, precision: Precision) -> Result<Tensor> {
    let (out_features, in_features) = w.dims2()?;
    let dims = x.dims();
    let Some((&last, lead)) = dims.split_last() else {
        bail!("linear: input is a scalar");
    };
    if last != in_features {
        bail!("linear: input {dims:?} does not end in {in_features} (weight [{out_features}, {in_features}])");
    }
    if let Some(b) = b {
        if b.dims() != [out_features] {
            bail!("linear: bias {:?} is not [{out_features}]", b.dims());
        }
    }
    let rows: usize = lead.iter().product();
    let mut out_dims = lead.to_vec();
    out_dims.push(out_features);
    let mut others = vec![x];
    others.extend(b);
    if cpu_kernel_operands(w, &others) {
        let bias = match b {
            Some(b) => Some(with_f32_data(b, "linear", |v| v.to_vec())?),
            None => None,
        };
        let dims = Dims {
            m: rows,
            n: out_features,
            k: in_features,
        };
        let bias = bias.as_deref().map_or(Bias::None, Bias::PerColumn);
        let y = with_f32_data(x, "linear", |xs| {
            with_weight_data(w, "linear", |wd| match wd {
                WeightData::F32(ws) => products(dims, xs, ws, bias, precision),
                WeightData::Bf16(ws) => products(dims, xs, ws, bias, precision),
            })
        })??;
        return Tensor::from_vec(y, out_dims, &Device::Cpu);
    }
    let y = x.reshape((rows, in_features))?.matmul(&w.t()?)?;
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    y.reshape(out_dims)
}

/// `y = x · Wᵀ + bias` with the `[out, in]` weight in f32 or bf16 (a new output, never
/// zeroed first).
fn products<T: Element>(
    dims: Dims,
    xs: &[f32],
    ws: &[T],
    bias: Bias<'_>,
    precision: Precision,
) -> Vec<f32> {
    let x = RowMajor {
        data: xs,
        ld: dims.k,
    };
    let w = Transposed {
        data: ws,
        ld: dims.k,
    };
    matmul_batched_new(precision, dims, 1, &x, |_| &w, bias, true)
}

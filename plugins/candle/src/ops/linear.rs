//! Linear layers: one gemm over all leading dims, with the weight read transposed in place.

use candle_core::{bail, Result, Tensor};

/// `x[..., in] · wᵀ + b` with `w: [out, in]`.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let (out_features, in_features) = w.dims2()?;
    let dims = x.dims();
    let Some((&last, lead)) = dims.split_last() else {
        bail!("linear: input is a scalar");
    };
    if last != in_features {
        bail!("linear: input {dims:?} does not end in {in_features} (weight [{out_features}, {in_features}])");
    }
    let rows: usize = lead.iter().product();
    let y = x.reshape((rows, in_features))?.matmul(&w.t()?)?;
    let y = match b {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    let mut out_dims = lead.to_vec();
    out_dims.push(out_features);
    y.reshape(out_dims)
}

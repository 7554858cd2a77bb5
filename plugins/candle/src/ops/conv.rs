//! 2-D convolution: candle's conv2d (im2col + gemm on the CPU) plus a per-channel bias.

use candle_core::{bail, Result, Tensor};

/// Square-kernel convolution of `[N, C, H, W]` by `w: [out, C, k, k]`.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (_, c, _, _) = x.dims4()?;
    let (out, cin, kh, kw) = w.dims4()?;
    if c != cin || kh != kw {
        bail!(
            "conv2d: input {:?} does not fit weight {:?}",
            x.dims(),
            w.dims()
        );
    }
    let y = x.conv2d(w, padding, stride, 1, 1)?;
    match b {
        Some(b) => y.broadcast_add(&b.reshape((1, out, 1, 1))?),
        None => Ok(y),
    }
}

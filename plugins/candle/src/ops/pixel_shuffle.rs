//! Pixel shuffle and unshuffle (the sub-pixel upsampling of Real-ESRGAN's compact net and
//! SwinIR, and the space-to-depth input of Real-ESRGAN's x1/x2 RRDB nets). On the CPU one
//! gather pass over contiguous data (candle's strided copy of a 6-D permutation walks the
//! destination one element at a time); elsewhere a reshape, permute and copy.

use super::cpu_kernel::{all_cpu_f32, with_f32_data};
use candle_core::{bail, Device, Result, Tensor};

fn host(r: easel_core::Result<(Vec<f32>, Vec<usize>)>) -> Result<Tensor> {
    match r {
        Ok((data, shape)) => Tensor::from_vec(data, shape, &Device::Cpu),
        Err(e) => bail!("{e}"),
    }
}

/// `[N, C·r², H, W]` → `[N, C, H·r, W·r]`.
pub fn pixel_shuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    let (n, crr, h, w) = x.dims4()?;
    if r == 0 || !crr.is_multiple_of(r * r) {
        bail!("pixel_shuffle: {crr} channels do not split by {r}²");
    }
    if all_cpu_f32(&[x]) {
        let dims = x.dims().to_vec();
        return host(with_f32_data(x, "pixel_shuffle", |d| {
            easel_core::backend_host::pixel_shuffle(d, &dims, r)
        })?);
    }
    let c = crr / (r * r);
    x.reshape((n, c, r, r, h, w))?
        .permute((0, 1, 4, 2, 5, 3))?
        .contiguous()?
        .reshape((n, c, h * r, w * r))
}

/// `[N, C, H·r, W·r]` → `[N, C·r², H, W]`.
pub fn pixel_unshuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    let (n, c, hi, wi) = x.dims4()?;
    if r == 0 || !hi.is_multiple_of(r) || !wi.is_multiple_of(r) {
        bail!("pixel_unshuffle: {hi}×{wi} is not a multiple of {r}");
    }
    if all_cpu_f32(&[x]) {
        let dims = x.dims().to_vec();
        return host(with_f32_data(x, "pixel_unshuffle", |d| {
            easel_core::backend_host::pixel_unshuffle(d, &dims, r)
        })?);
    }
    let (h, w) = (hi / r, wi / r);
    x.reshape((n, c, h, r, w, r))?
        .permute((0, 1, 3, 5, 2, 4))?
        .contiguous()?
        .reshape((n, c * r * r, h, w))
}

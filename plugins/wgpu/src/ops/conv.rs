//! `conv2d`: square kernels, any stride and padding, as the implicit GEMM of `conv2d.wgsl`.

use super::op_err;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::Result;

/// Output tile edge of `conv2d.wgsl`.
const TILE: usize = 64;

impl Gpu {
    pub(crate) fn conv2d(
        &self,
        x: &WgpuTensor,
        w: &WgpuTensor,
        b: Option<&WgpuTensor>,
        stride: usize,
        padding: usize,
    ) -> Result<WgpuTensor> {
        let [n, c, h, wd] = x.shape[..] else {
            return Err(op_err(
                "conv2d",
                format!("input {:?} is not [N, C, H, W]", x.shape),
            ));
        };
        let [o, wc, ks, ks2] = w.shape[..] else {
            return Err(op_err(
                "conv2d",
                format!("weight {:?} is not [out, in, k, k]", w.shape),
            ));
        };
        if wc != c || ks != ks2 || ks == 0 || stride == 0 {
            return Err(op_err(
                "conv2d",
                format!(
                    "input {:?} does not fit weight {:?} (stride {stride})",
                    x.shape, w.shape
                ),
            ));
        }
        if h + 2 * padding < ks || wd + 2 * padding < ks {
            return Err(op_err(
                "conv2d",
                format!("kernel {ks} larger than the padded input {:?}", x.shape),
            ));
        }
        let oh = (h + 2 * padding - ks) / stride + 1;
        let ow = (wd + 2 * padding - ks) / stride + 1;
        let x = self.as_f32(x)?;
        let bias = b.map(|b| self.as_f32(b)).transpose()?;
        if let Some(bias) = &bias {
            if bias.numel() != o {
                return Err(op_err(
                    "conv2d",
                    format!("bias {:?} does not fit weight {:?}", bias.shape, w.shape),
                ));
            }
        }
        let out = self.alloc(&[n, o, oh, ow])?;
        let npix = n * oh * ow;
        let variant = Variant {
            weight: self.weight_read(w.dtype),
            ..Variant::plain(Kernel::Conv2d)
        };
        let bias_buf = bias.as_ref().map_or(&self.dummy, |b| b.buffer());
        let params = [
            n,
            c,
            h,
            wd,
            o,
            oh,
            ow,
            ks,
            stride,
            padding,
            bias.is_some() as usize,
            c * ks * ks,
            npix,
        ]
        .map(|v| v as u32);
        self.dispatch(
            &variant,
            &params,
            &[
                Bind::whole(x.buffer()),
                Bind::whole(w.buffer()),
                Bind::whole(bias_buf),
            ],
            &Bind::whole(out.buffer()),
            [npix.div_ceil(TILE) as u32, o.div_ceil(TILE) as u32, 1],
        )?;
        Ok(out)
    }
}

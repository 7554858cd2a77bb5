//! `conv2d`: square kernels, any stride and padding, as the implicit GEMM of `conv2d.wgsl`.
//!
//! Where input, output or weight exceed one storage binding (SD's VAE at 512² has 256 MiB
//! activations; some adapters bind 128 MiB), the convolution is split: first over images;
//! if one image is still too large, over ranges of output channels (each a contiguous run
//! of output planes and of weight rows) and of input channels (contiguous input planes),
//! the ranges after the first adding onto the partial sums already written. NCHW keeps
//! channel ranges contiguous, which row bands are not, and needs no halo.

use super::op_err;
use super::tile::Tile;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::Result;
use std::ops::Range;

/// The geometry of one convolution.
struct ConvShape {
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    oh: usize,
    ow: usize,
    ks: usize,
    stride: usize,
    pad: usize,
}

impl ConvShape {
    fn kdim(&self) -> usize {
        self.c * self.ks * self.ks
    }
    /// Element range of input channels `chans` of images `imgs` (contiguous when `chans` is
    /// all channels or `imgs` one image).
    fn x_range(&self, imgs: &Range<usize>, chans: &Range<usize>) -> (usize, usize) {
        let plane = self.h * self.w;
        (
            (imgs.start * self.c + chans.start) * plane,
            ((imgs.end - 1) * self.c + chans.end) * plane,
        )
    }
    fn y_range(&self, imgs: &Range<usize>, outs: &Range<usize>) -> (usize, usize) {
        let plane = self.oh * self.ow;
        (
            (imgs.start * self.o + outs.start) * plane,
            ((imgs.end - 1) * self.o + outs.end) * plane,
        )
    }
    fn w_range(&self, outs: &Range<usize>) -> (usize, usize) {
        (outs.start * self.kdim(), outs.end * self.kdim())
    }
}

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
        let s = ConvShape {
            c,
            h,
            w: wd,
            o,
            oh,
            ow,
            ks,
            stride,
            pad: padding,
        };
        let fits = |imgs: &Range<usize>, chans: &Range<usize>, outs: &Range<usize>| {
            let (xs, xe) = s.x_range(imgs, chans);
            let (ys, ye) = s.y_range(imgs, outs);
            let (ws, we) = s.w_range(outs);
            self.fits(&x, xs, xe) && self.fits(&out, ys, ye) && self.fits(w, ws, we)
        };
        let run = |imgs: Range<usize>, chans: Range<usize>, outs: Range<usize>| {
            self.conv_piece(&s, &x, w, bias.as_ref(), &out, imgs, chans, outs)
        };
        // Whole images at a time where they fit.
        if let Ok(ranges) = self.plan("conv2d", n, 1, |i0, i1| fits(&(i0..i1), &(0..c), &(0..o))) {
            for (i0, i1) in ranges {
                run(i0..i1, 0..c, 0..o)?;
            }
            return Ok(out);
        }
        for img in 0..n {
            let imgs = img..img + 1;
            let outs = self.plan("conv2d", o, 1, |o0, o1| fits(&imgs, &(0..1), &(o0..o1)))?;
            let chans = self.plan("conv2d", c, 1, |c0, c1| fits(&imgs, &(c0..c1), &(0..1)))?;
            for &(o0, o1) in &outs {
                for &(c0, c1) in &chans {
                    run(imgs.clone(), c0..c1, o0..o1)?;
                }
            }
        }
        Ok(out)
    }

    /// One dispatch: output channels `outs` of images `imgs` from input channels `chans`,
    /// added onto the output where `chans` does not start at channel 0.
    #[allow(clippy::too_many_arguments)]
    fn conv_piece(
        &self,
        s: &ConvShape,
        x: &WgpuTensor,
        w: &WgpuTensor,
        bias: Option<&WgpuTensor>,
        out: &WgpuTensor,
        imgs: Range<usize>,
        chans: Range<usize>,
        outs: Range<usize>,
    ) -> Result<()> {
        let (xs, xe) = s.x_range(&imgs, &chans);
        let (ys, ye) = s.y_range(&imgs, &outs);
        let (ws, we) = s.w_range(&outs);
        let (xb, x_base) = self.window(x, xs, xe);
        let (yb, y_base) = self.window(out, ys, ye);
        let (wb, w_base) = self.window(w, ws, we);
        let first = chans.start == 0;
        let kk2 = s.ks * s.ks;
        let rows = outs.len();
        let npix = imgs.len() * s.oh * s.ow;
        let tile = Tile::pick(rows, npix, self.small_workgroups);
        let variant = tile.apply(Variant {
            weight: self.weight_read(w.dtype),
            consts: vec![("KS", s.ks as u32)],
            ..Variant::plain(Kernel::Conv2d)
        });
        let bias_buf = bias.map_or(&self.dummy, |b| b.buffer());
        let params = [
            imgs.len(),
            chans.len(),
            s.h,
            s.w,
            rows,
            s.oh,
            s.ow,
            s.stride,
            s.pad,
            (bias.is_some() && first) as usize,
            chans.len() * kk2,
            npix,
            s.kdim(),
            chans.start * kk2,
            outs.start,
            !first as usize,
            xs - x_base,
            ws - w_base,
            ys - y_base,
        ]
        .map(|v| v as u32);
        self.dispatch(
            &variant,
            &params,
            &[xb, wb, Bind::whole(bias_buf)],
            &yb,
            [
                npix.div_ceil(tile.cols()) as u32,
                rows.div_ceil(tile.rows()) as u32,
                1,
            ],
        )
    }
}

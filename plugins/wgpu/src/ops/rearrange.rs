//! The upscalers' permutations (`rearrange.wgsl`): pixel shuffle and unshuffle (ESRGAN's
//! and SwinIR's upsampling heads, Real-ESRGAN's x2/x1 input) and Swin's shifted-window
//! partition and merge. On the device because the browser cannot read a tensor back
//! synchronously, which the trait's host defaults need; shapes are checked as the host
//! versions in `easel_core::backend_host` check them, and the results are theirs exactly.
//!
//! Splitting: the output is cut into units whose inputs form one contiguous run, and
//! dispatches cover ranges of units whose output and input runs fit one binding:
//! output planes for pixel (un)shuffle (a plane reads r² input planes, or a 1/r² of
//! one), rows of windows for the partition and image rows for the merge (a row of
//! windows reads `window` image rows, rolled by the shift). Where a shift wraps a range
//! round its image's edge, the range reads its image's first and last rows, so with a
//! shift each image must fit one binding (a 192x192 SwinIR tile of 180 channels holds
//! 26 MiB).

use super::{dims, op_err};
use crate::gpu::Gpu;
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::Result;

/// Operation codes of `rearrange.wgsl`.
#[derive(Clone, Copy)]
enum Rearrange {
    PixelShuffle = 0,
    PixelUnshuffle = 1,
    WindowPartition = 2,
    WindowMerge = 3,
}

impl Rearrange {
    fn name(self) -> &'static str {
        match self {
            Rearrange::PixelShuffle => "pixel_shuffle",
            Rearrange::PixelUnshuffle => "pixel_unshuffle",
            Rearrange::WindowPartition => "window_partition",
            Rearrange::WindowMerge => "window_merge",
        }
    }
}

/// Rows `r0..r1`, counted across images of `h` rows, each moved cyclically by `shift`
/// within its image: the run of rows they land on (a whole image where a part wraps).
fn rolled_rows(r0: usize, r1: usize, h: usize, shift: usize) -> (usize, usize) {
    // Local rows a..b of image `img`.
    let part = |img: usize, a: usize, b: usize| {
        let s = (a + shift) % h;
        if s + (b - a) <= h {
            (img * h + s, img * h + s + b - a)
        } else {
            (img * h, (img + 1) * h)
        }
    };
    let (i0, i1) = (r0 / h, (r1 - 1) / h);
    if i0 == i1 {
        part(i0, r0 - i0 * h, r1 - i0 * h)
    } else {
        (part(i0, r0 - i0 * h, h).0, part(i1, 0, r1 - i1 * h).1)
    }
}

/// Swin's shifted windows: an `h×w` grid rolled by `-shift` on both axes and cut into
/// `window×window` windows (the arguments `Backend::window_partition` and `window_merge`
/// share).
#[derive(Clone, Copy)]
pub(crate) struct Windows {
    pub h: usize,
    pub w: usize,
    pub window: usize,
    pub shift: usize,
}

impl Windows {
    /// `(h, w, window, shift)` where the grid splits into windows and `shift < window`,
    /// else `op`'s error.
    fn check(self, op: &str) -> Result<(usize, usize, usize, usize)> {
        let Windows {
            h,
            w,
            window,
            shift,
        } = self;
        if window == 0 || !h.is_multiple_of(window) || !w.is_multiple_of(window) || shift >= window
        {
            return Err(op_err(
                op,
                format!("{h}×{w} does not split into {window}×{window} windows (shift {shift})"),
            ));
        }
        Ok((h, w, window, shift))
    }
}

impl Gpu {
    /// `x` permuted by `op` into a tensor of `out_shape`, whose elements are `units` runs
    /// of equal length; `source(u0, u1)` is the run of input elements units `u0..u1` read.
    fn rearrange(
        &self,
        x: &WgpuTensor,
        out_shape: &[usize],
        op: Rearrange,
        dims: [usize; 5],
        units: usize,
        source: impl Fn(usize, usize) -> (usize, usize),
    ) -> Result<WgpuTensor> {
        let x = self.as_f32(x)?;
        let out = self.alloc(out_shape)?;
        let len = out.numel() / units.max(1);
        let ranges = self.plan(op.name(), units, 1, |u0, u1| {
            let (xs, xe) = source(u0, u1);
            self.fits(&x, xs, xe) && self.fits(&out, u0 * len, u1 * len)
        })?;
        for (u0, u1) in ranges {
            let (xs, xe) = source(u0, u1);
            let (s, e) = (u0 * len, u1 * len);
            let (xb, x_base) = self.window(&x, xs, xe);
            let (yb, y_base) = self.window(&out, s, e);
            let [d0, d1, d2, d3, d4] = dims;
            self.dispatch(
                &Variant::plain(Kernel::Rearrange),
                &[e - s, op as usize, s, x_base, y_base, d0, d1, d2, d3, d4].map(|v| v as u32),
                &[xb],
                &yb,
                self.groups_1d(e - s),
            )?;
        }
        Ok(out)
    }

    /// `[N, C·r², H, W]` → `[N, C, H·r, W·r]`: output plane `p` reads input planes
    /// `p·r²..(p+1)·r²`, the same number of elements.
    pub(crate) fn pixel_shuffle(&self, x: &WgpuTensor, r: usize) -> Result<WgpuTensor> {
        let op = Rearrange::PixelShuffle.name();
        let [n, crr, h, w] = dims(op, x, "[N, C, H, W]")?;
        if r == 0 || !crr.is_multiple_of(r * r) {
            return Err(op_err(op, format!("{crr} channels do not split by {r}²")));
        }
        let c = crr / (r * r);
        let plane = h * w * r * r;
        self.rearrange(
            x,
            &[n, c, h * r, w * r],
            Rearrange::PixelShuffle,
            [r, h, w, 0, 0],
            n * c,
            |p0, p1| (p0 * plane, p1 * plane),
        )
    }

    /// `[N, C, H·r, W·r]` → `[N, C·r², H, W]`: output plane `p` reads a `1/r²` of input
    /// plane `p / r²`.
    pub(crate) fn pixel_unshuffle(&self, x: &WgpuTensor, r: usize) -> Result<WgpuTensor> {
        let op = Rearrange::PixelUnshuffle.name();
        let [n, c, hi, wi] = dims(op, x, "[N, C, H, W]")?;
        if r == 0 || !hi.is_multiple_of(r) || !wi.is_multiple_of(r) {
            return Err(op_err(op, format!("{hi}×{wi} is not a multiple of {r}")));
        }
        let (h, w, rr) = (hi / r, wi / r, r * r);
        let plane = hi * wi;
        self.rearrange(
            x,
            &[n, c * rr, h, w],
            Rearrange::PixelUnshuffle,
            [r, h, w, 0, 0],
            n * c * rr,
            |p0, p1| (p0 / rr * plane, p1.div_ceil(rr) * plane),
        )
    }

    /// Swin's partition of `[N, H·W, C]` into `[N·nW, window², C]`, rolled by `-shift`:
    /// a row of windows (`window` rows of the rolled grid) reads those rows `+shift`.
    pub(crate) fn window_partition(&self, x: &WgpuTensor, grid: Windows) -> Result<WgpuTensor> {
        let op = Rearrange::WindowPartition.name();
        let [n, l, c] = dims(op, x, "[N, L, C]")?;
        let (h, w, window, shift) = grid.check(op)?;
        if l != h * w {
            return Err(op_err(op, format!("{l} tokens are not {h}×{w}")));
        }
        let (nh, nw) = (h / window, w / window);
        let row = w * c;
        self.rearrange(
            x,
            &[n * nh * nw, window * window, c],
            Rearrange::WindowPartition,
            [window, h, w, c, shift],
            n * nh,
            |u0, u1| {
                let (r0, r1) = rolled_rows(u0 * window, u1 * window, h, shift);
                (r0 * row, r1 * row)
            },
        )
    }

    /// The inverse of [`Gpu::window_partition`]: image row `y` reads the row of windows
    /// holding row `y - shift` of the rolled grid.
    pub(crate) fn window_merge(&self, x: &WgpuTensor, grid: Windows) -> Result<WgpuTensor> {
        let op = Rearrange::WindowMerge.name();
        let [bw, l, c] = dims(op, x, "[N·nW, window², C]")?;
        let (h, w, window, shift) = grid.check(op)?;
        let per_image = (h / window) * (w / window);
        if per_image == 0 || l != window * window || !bw.is_multiple_of(per_image) {
            return Err(op_err(
                op,
                format!(
                    "{:?} is not windows of {window}² tokens over {h}×{w}",
                    x.shape
                ),
            ));
        }
        let n = bw / per_image;
        // A row of windows holds `window` rows of the rolled grid.
        let window_row = window * w * c;
        self.rearrange(
            x,
            &[n, h * w, c],
            Rearrange::WindowMerge,
            [window, h, w, c, shift],
            n * h,
            |y0, y1| {
                let (r0, r1) = rolled_rows(y0, y1, h, h - shift);
                (r0 / window * window_row, r1.div_ceil(window) * window_row)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::rolled_rows;

    #[test]
    fn rolled_rows_stay_in_their_image_and_cover_a_wrap_whole() {
        // Images of 8 rows, shift 3.
        assert_eq!(rolled_rows(0, 4, 8, 3), (3, 7));
        assert_eq!(rolled_rows(4, 8, 8, 3), (0, 8));
        assert_eq!(rolled_rows(8, 12, 8, 3), (11, 15));
        // Across images: from the first image's first row landed on to the last's last.
        assert_eq!(rolled_rows(2, 10, 8, 3), (0, 13));
        assert_eq!(rolled_rows(6, 10, 8, 0), (6, 10));
        assert_eq!(rolled_rows(0, 16, 8, 0), (0, 16));
        assert_eq!(rolled_rows(1, 2, 8, 8 - 3), (6, 7));
    }
}

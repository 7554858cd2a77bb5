//! The two Gaussian blurs A1111's inpainting uses, each exact to its library.
//!
//! * The mask blur (`Mask blur` in the UI) is OpenCV's `cv2.GaussianBlur` run once along x
//!   with a `k×1` kernel and once along y with `1×k`, `k = 2·int(2.5·σ + 0.5) + 1`. For
//!   8-bit images OpenCV uses its bit-exact path: the Gaussian is computed in f64,
//!   normalised, quantised to 8 fractional bits with error diffusion (so the taps sum to
//!   exactly 256), applied with reflect-101 borders, and rounded half up.
//! * The "fill" masked-content mode blurs with PIL's `ImageFilter.GaussianBlur`, which is
//!   not a Gaussian kernel at all but three passes of an extended box filter per axis
//!   (Pillow's `BoxBlur.c`, after Gwosdek et al.) in 24-bit fixed point.
//!
//! Neither is available from a crate with these roundings, hence the code here.

use super::{GrayImage, Pixels};

/// Which axis a one-dimensional blur runs along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlurAxis {
    X,
    Y,
}

/// A1111's kernel size for a mask blur of `sigma`: `2 * int(2.5 * sigma + 0.5) + 1`.
pub fn mask_blur_kernel(sigma: f64) -> usize {
    2 * (2.5 * sigma + 0.5) as usize + 1
}

/// OpenCV's bit-exact Gaussian taps for `n` (odd) and `sigma > 0`, in units of 1/256.
fn opencv_taps(n: usize, sigma: f64) -> Vec<i64> {
    let scale2x = -0.125 / (sigma * sigma);
    let half = (n - 1) / 2;
    let mut values = Vec::with_capacity(half);
    let mut sum = 0.0f64;
    let mut x = 1 - n as i64;
    for _ in 0..half {
        let t = ((x * x) as f64 * scale2x).exp();
        values.push(t);
        sum += t;
        x += 2;
    }
    sum *= 2.0;
    sum += 1.0;
    let mul = 1.0 / sum;
    let mut taps = vec![0i64; n];
    let mut err = 0.0f64;
    let mut total = 0i64;
    for (i, v) in values.iter().enumerate() {
        let adj = v * mul * 256.0 + err;
        let q = adj.round_ties_even() as i64;
        err = adj - q as f64;
        taps[i] = q;
        taps[n - 1 - i] = q;
        total += q;
    }
    taps[half] = 256 - 2 * total;
    taps
}

/// OpenCV `borderInterpolate` for `BORDER_REFLECT_101`.
fn reflect101(mut p: i64, len: i64) -> usize {
    if len == 1 {
        return 0;
    }
    while p < 0 || p >= len {
        if p < 0 {
            p = -p;
        } else {
            p = 2 * len - p - 2;
        }
    }
    p as usize
}

/// `cv2.GaussianBlur(mask, (k, 1) or (1, k), sigma)` on an 8-bit single-channel image.
pub fn opencv_gaussian_blur(
    mask: &GrayImage,
    ksize: usize,
    sigma: f64,
    axis: BlurAxis,
) -> GrayImage {
    let (w, h) = (mask.width, mask.height);
    let len = match axis {
        BlurAxis::X => w,
        BlurAxis::Y => h,
    };
    // OpenCV drops the kernel along an axis of length 1; a 1-tap kernel is a copy.
    if ksize <= 1 || len <= 1 || sigma <= 0.0 {
        return mask.clone();
    }
    let taps = opencv_taps(ksize, sigma);
    let r = (ksize / 2) as i64;
    let mut out = vec![0u8; w * h];
    let index: Vec<Vec<usize>> = (0..len as i64)
        .map(|p| {
            (0..ksize as i64)
                .map(|i| reflect101(p + i - r, len as i64))
                .collect()
        })
        .collect();
    for y in 0..h {
        for x in 0..w {
            let p = match axis {
                BlurAxis::X => x,
                BlurAxis::Y => y,
            };
            let mut s = 0i64;
            for (t, &src) in taps.iter().zip(&index[p]) {
                let v = match axis {
                    BlurAxis::X => mask.data[y * w + src],
                    BlurAxis::Y => mask.data[src * w + x],
                };
                s += t * v as i64;
            }
            out[y * w + x] = ((s + 128) >> 8).clamp(0, 255) as u8;
        }
    }
    GrayImage {
        width: w,
        height: h,
        data: out,
    }
}

/// A1111's mask blur (`StableDiffusionProcessingImg2Img.init`): x first, then y; a blur of 0
/// skips that axis.
pub fn mask_blur(mask: &GrayImage, blur_x: f64, blur_y: f64) -> GrayImage {
    let mut m = mask.clone();
    if blur_x > 0.0 {
        m = opencv_gaussian_blur(&m, mask_blur_kernel(blur_x), blur_x, BlurAxis::X);
    }
    if blur_y > 0.0 {
        m = opencv_gaussian_blur(&m, mask_blur_kernel(blur_y), blur_y, BlurAxis::Y);
    }
    m
}

/// Pillow's extended-box radius for a Gaussian of standard deviation `radius` in `passes`
/// passes (C float arithmetic, as `_gaussian_blur_radius`).
fn box_radius(radius: f32, passes: i32) -> f32 {
    let sigma2: f32 = radius * radius / passes as f32;
    let big_l = (12.0f64 * sigma2 as f64 + 1.0).sqrt() as f32;
    let l = ((big_l as f64 - 1.0) / 2.0).floor() as f32;
    let mut a: f32 = (2.0 * l + 1.0) * (l * (l + 1.0) - 3.0 * sigma2);
    a /= 6.0 * (sigma2 - (l + 1.0) * (l + 1.0));
    l + a
}

/// One line of `ImagingLineBoxBlur`: `line` holds `n` pixels of `ch` channels.
fn box_line(out: &mut [u8], line: &[u8], n: usize, ch: usize, fradius: f32) {
    let radius = fradius as i64;
    let ww = (16777216.0f32 / (fradius * 2.0 + 1.0)) as u32;
    let fw = 16777216u32.wrapping_sub(((radius * 2 + 1) as u32).wrapping_mul(ww)) / 2;
    let lastx = n as i64 - 1;
    let edge_a = (radius + 1).min(n as i64);
    let edge_b = (n as i64 - radius - 1).max(0);
    for c in 0..ch {
        let px = |i: i64| line[i as usize * ch + c] as u32;
        let mut acc: u32 = px(0).wrapping_mul((radius + 1) as u32);
        for x in 0..edge_a - 1 {
            acc = acc.wrapping_add(px(x));
        }
        acc = acc.wrapping_add(px(lastx).wrapping_mul((radius - edge_a + 1) as u32));
        let mut step = |x: i64, sub: i64, add: i64, left: i64, right: i64, acc: &mut u32| {
            *acc = acc.wrapping_add((px(add) as i32 - px(sub) as i32) as u32);
            let bulk = acc
                .wrapping_mul(ww)
                .wrapping_add((px(left) + px(right)).wrapping_mul(fw));
            out[x as usize * ch + c] = (bulk.wrapping_add(1 << 23) >> 24) as u8;
        };
        if edge_a <= edge_b {
            for x in 0..edge_a {
                step(x, 0, x + radius, 0, x + radius + 1, &mut acc);
            }
            for x in edge_a..edge_b {
                step(
                    x,
                    x - radius - 1,
                    x + radius,
                    x - radius - 1,
                    x + radius + 1,
                    &mut acc,
                );
            }
            for x in edge_b..=lastx {
                step(x, x - radius - 1, lastx, x - radius - 1, lastx, &mut acc);
            }
        } else {
            for x in 0..edge_b {
                step(x, 0, x + radius, 0, x + radius + 1, &mut acc);
            }
            for x in edge_b..edge_a {
                step(x, 0, lastx, 0, lastx, &mut acc);
            }
            for x in edge_a..=lastx {
                step(x, x - radius - 1, lastx, x - radius - 1, lastx, &mut acc);
            }
        }
    }
}

/// PIL `image.filter(ImageFilter.GaussianBlur(radius))` on 8-bit pixels of any mode
/// (all channels blurred alike, as for "RGBa").
pub(crate) fn pil_gaussian_blur(src: &Pixels, radius: f32) -> Pixels {
    if radius == 0.0 || src.width == 0 || src.height == 0 {
        return src.clone();
    }
    const PASSES: i32 = 3;
    let r = box_radius(radius, PASSES);
    let (w, h, ch) = (src.width, src.height, src.channels);
    let mut img = src.data.clone();
    if r != 0.0 {
        let mut out = vec![0u8; w * ch];
        for _ in 0..PASSES {
            for y in 0..h {
                let row = &mut img[y * w * ch..(y + 1) * w * ch];
                box_line(&mut out, row, w, ch, r);
                row.copy_from_slice(&out);
            }
        }
        let mut col = vec![0u8; h * ch];
        let mut out = vec![0u8; h * ch];
        for x in 0..w {
            for y in 0..h {
                col[y * ch..(y + 1) * ch]
                    .copy_from_slice(&img[(y * w + x) * ch..(y * w + x + 1) * ch]);
            }
            for _ in 0..PASSES {
                box_line(&mut out, &col, h, ch, r);
                col.copy_from_slice(&out);
            }
            for y in 0..h {
                img[(y * w + x) * ch..(y * w + x + 1) * ch]
                    .copy_from_slice(&col[y * ch..(y + 1) * ch]);
            }
        }
    }
    Pixels {
        width: w,
        height: h,
        channels: ch,
        data: img,
    }
}

/// PIL `ImageFilter.GaussianBlur(radius)` on a gray image.
pub fn box_gaussian_blur(img: &GrayImage, radius: f32) -> GrayImage {
    pil_gaussian_blur(&img.as_pixels(), radius).into()
}

//! Pillow's `Image.resize`, byte for byte.
//!
//! img2img, inpainting and the upscalers resize with PIL at every step (Lanczos for the
//! init image, bicubic for the latent mask, nearest for the "Nearest" upscaler), and the
//! results are fed back into the VAE, so "close" is not good enough: a one-level
//! difference in a pixel changes the latent. This is a re-implementation of the semantics
//! of Pillow's `libImaging/Resample.c` (two separable passes, horizontal first, each
//! rounded to 8 bits; filter support widened by the downscale factor; coefficients
//! normalised in f64 and then turned into 22-bit fixed point; a source `box` given in f32)
//! and of the affine nearest-neighbour path `Image.resize` takes for `NEAREST`. No crate
//! reproduces these roundings, which is why the code is here and not in a dependency.

use super::{Pixels, MAX_SIDE};
use crate::{Error, Result};

/// PIL's resampling filters that A1111 uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `Image.NEAREST` (affine nearest-neighbour, pixel centres).
    Nearest,
    /// `Image.BILINEAR` (triangle, support 1).
    Bilinear,
    /// `Image.BICUBIC` (Keys cubic, a = -0.5, support 2): PIL's default for `resize`.
    Bicubic,
    /// `Image.LANCZOS` (Lanczos-3): A1111's `images.LANCZOS`.
    Lanczos,
}

/// The source rectangle `(x0, y0, x1, y1)` of a resize, as PIL's `box=` argument
/// (PIL parses it into C floats).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SourceBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn support(filter: Filter) -> f64 {
    match filter {
        Filter::Nearest => 0.0,
        Filter::Bilinear => 1.0,
        Filter::Bicubic => 2.0,
        Filter::Lanczos => 3.0,
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        let x = x * std::f64::consts::PI;
        x.sin() / x
    }
}

fn weight(filter: Filter, x: f64) -> f64 {
    match filter {
        Filter::Nearest => unreachable!("nearest does not convolve"),
        Filter::Bilinear => {
            let x = x.abs();
            if x < 1.0 {
                1.0 - x
            } else {
                0.0
            }
        }
        Filter::Bicubic => {
            const A: f64 = -0.5;
            let x = x.abs();
            if x < 1.0 {
                ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
            } else if x < 2.0 {
                (((x - 5.0) * x + 8.0) * x - 4.0) * A
            } else {
                0.0
            }
        }
        Filter::Lanczos => {
            if (-3.0..3.0).contains(&x) {
                sinc(x) * sinc(x / 3.0)
            } else {
                0.0
            }
        }
    }
}

/// One output position's window of source indices and its fixed-point weights.
struct Taps {
    /// (first source index, number of taps) per output index.
    bounds: Vec<(usize, usize)>,
    /// `ksize` weights per output index.
    weights: Vec<i32>,
    ksize: usize,
}

fn precompute(in_size: usize, in0: f32, in1: f32, out_size: usize, filter: Filter) -> Taps {
    let scale = (in1 - in0) as f64 / out_size as f64;
    let filterscale = if scale < 1.0 { 1.0 } else { scale };
    let support = support(filter) * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let inv_filterscale = 1.0 / filterscale;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = in0 as f64 + (xx as f64 + 0.5) * scale;
        // C's (int) truncates toward zero; the clamp to 0 follows.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) - xmin;
        let xmax = xmax.max(0) as usize;
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(xmax) {
            let w = weight(
                filter,
                (x as f64 + xmin as f64 - center + 0.5) * inv_filterscale,
            );
            *kx = w;
            ww += w;
        }
        for (x, kx) in k.iter_mut().enumerate() {
            let v = if x < xmax {
                if ww != 0.0 {
                    *kx / ww
                } else {
                    *kx
                }
            } else {
                0.0
            };
            let fixed = v * (1u32 << PRECISION_BITS) as f64;
            weights[xx * ksize + x] = if v < 0.0 {
                (-0.5 + fixed) as i32
            } else {
                (0.5 + fixed) as i32
            };
        }
        bounds.push((xmin as usize, xmax));
    }
    Taps {
        bounds,
        weights,
        ksize,
    }
}

#[inline]
fn clip8(ss: i32) -> u8 {
    (ss >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Horizontal pass over rows `row0..row0 + rows` of `src`.
fn horizontal(src: &Pixels, row0: usize, rows: usize, out_w: usize, taps: &Taps) -> Pixels {
    let ch = src.channels;
    let mut out = vec![0u8; out_w * rows * ch];
    for y in 0..rows {
        let line = &src.data[(y + row0) * src.width * ch..(y + row0 + 1) * src.width * ch];
        let dst = &mut out[y * out_w * ch..(y + 1) * out_w * ch];
        for xx in 0..out_w {
            let (xmin, n) = taps.bounds[xx];
            let k = &taps.weights[xx * taps.ksize..xx * taps.ksize + n];
            for c in 0..ch {
                let mut ss: i32 = 1 << (PRECISION_BITS - 1);
                for (x, &kx) in k.iter().enumerate() {
                    ss = ss.wrapping_add((line[(x + xmin) * ch + c] as i32).wrapping_mul(kx));
                }
                dst[xx * ch + c] = clip8(ss);
            }
        }
    }
    Pixels {
        width: out_w,
        height: rows,
        channels: ch,
        data: out,
    }
}

/// Vertical pass; `shift` is subtracted from every window start (rows already dropped).
fn vertical(src: &Pixels, out_h: usize, taps: &Taps, shift: usize) -> Pixels {
    let ch = src.channels;
    let row = src.width * ch;
    let mut out = vec![0u8; row * out_h];
    let mut acc = vec![0i32; row];
    for yy in 0..out_h {
        let (ymin, n) = taps.bounds[yy];
        let ymin = ymin - shift;
        let k = &taps.weights[yy * taps.ksize..yy * taps.ksize + n];
        acc.fill(1 << (PRECISION_BITS - 1));
        for (y, &ky) in k.iter().enumerate() {
            let line = &src.data[(y + ymin) * row..(y + ymin + 1) * row];
            for (a, &p) in acc.iter_mut().zip(line) {
                *a = a.wrapping_add((p as i32).wrapping_mul(ky));
            }
        }
        for (o, &a) in out[yy * row..(yy + 1) * row].iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    Pixels {
        width: src.width,
        height: out_h,
        channels: ch,
        data: out,
    }
}

/// Checks a requested output size the way every resize in this module does.
pub(crate) fn check_size(what: &str, w: usize, h: usize) -> Result<()> {
    if w == 0 || h == 0 {
        return Err(Error::Invalid(format!(
            "{what}: target size {w}x{h} is empty (width and height must be at least 1)"
        )));
    }
    for v in [w, h] {
        if v > MAX_SIDE {
            return Err(Error::Invalid(format!(
                "{what}: target side {v} exceeds the limit of {MAX_SIDE} pixels"
            )));
        }
    }
    Ok(())
}

/// PIL `im.resize((w, h), filter, box)` on interleaved 8-bit pixels of any channel count.
pub(crate) fn resize_pixels(
    src: &Pixels,
    w: usize,
    h: usize,
    filter: Filter,
    bx: Option<SourceBox>,
) -> Result<Pixels> {
    check_size("resize", w, h)?;
    let bx = bx.unwrap_or(SourceBox {
        x0: 0.0,
        y0: 0.0,
        x1: src.width as f32,
        y1: src.height as f32,
    });
    if bx.x0 < 0.0 || bx.y0 < 0.0 {
        return Err(Error::Invalid(
            "resize: box offset can't be negative".into(),
        ));
    }
    if bx.x1 > src.width as f32 || bx.y1 > src.height as f32 {
        return Err(Error::Invalid(
            "resize: box can't exceed original image size".into(),
        ));
    }
    if bx.x1 - bx.x0 < 0.0 || bx.y1 - bx.y0 < 0.0 {
        return Err(Error::Invalid("resize: box can't be empty".into()));
    }
    if src.width == 0 || src.height == 0 {
        return Err(Error::Invalid("resize: source image is empty".into()));
    }
    // Image.resize: same size and whole box -> copy.
    if w == src.width
        && h == src.height
        && bx.x0 == 0.0
        && bx.y0 == 0.0
        && bx.x1 == src.width as f32
        && bx.y1 == src.height as f32
    {
        return Ok(src.clone());
    }
    // An integer box as large as the output is a crop.
    if bx.x0.fract() == 0.0
        && bx.x1 - bx.x0 == w as f32
        && bx.y0.fract() == 0.0
        && bx.y1 - bx.y0 == h as f32
    {
        return Ok(src.crop(bx.x0 as usize, bx.y0 as usize, w, h));
    }
    if filter == Filter::Nearest {
        return Ok(nearest(src, w, h, bx));
    }
    let need_h = w != src.width || bx.x0 != 0.0 || bx.x1 != w as f32;
    let need_v = h != src.height || bx.y0 != 0.0 || bx.y1 != h as f32;
    let vtaps = precompute(src.height, bx.y0, bx.y1, h, filter);
    let first = vtaps.bounds[0].0;
    let (lmin, ln) = vtaps.bounds[h - 1];
    let last = lmin + ln;
    let mut cur: Option<Pixels> = None;
    let mut shift = 0;
    if need_h {
        let htaps = precompute(src.width, bx.x0, bx.x1, w, filter);
        cur = Some(horizontal(src, first, last - first, w, &htaps));
        shift = first;
    }
    if need_v {
        let input = cur.as_ref().unwrap_or(src);
        cur = Some(vertical(input, h, &vtaps, shift));
    }
    Ok(cur.unwrap_or_else(|| src.clone()))
}

/// `ImagingScaleAffine`: pixel-centre sampling with PIL's accumulated f64 steps.
fn nearest(src: &Pixels, w: usize, h: usize, bx: SourceBox) -> Pixels {
    let ch = src.channels;
    let a0 = (bx.x1 - bx.x0) as f64 / w as f64;
    let a4 = (bx.y1 - bx.y0) as f64 / h as f64;
    let coord = |v: f64| -> i64 {
        if v < 0.0 {
            -1
        } else {
            v as i64
        }
    };
    let mut xo = bx.x0 as f64 + a0 * 0.5;
    let mut xin = Vec::with_capacity(w);
    for _ in 0..w {
        let x = coord(xo);
        xin.push(if x >= 0 && (x as usize) < src.width {
            Some(x as usize)
        } else {
            None
        });
        xo += a0;
    }
    let mut out = vec![0u8; w * h * ch];
    let mut yo = bx.y0 as f64 + a4 * 0.5;
    for y in 0..h {
        let yi = coord(yo);
        if yi >= 0 && (yi as usize) < src.height {
            let line = &src.data[yi as usize * src.width * ch..];
            for (x, sx) in xin.iter().enumerate() {
                if let Some(sx) = sx {
                    out[(y * w + x) * ch..(y * w + x + 1) * ch]
                        .copy_from_slice(&line[sx * ch..sx * ch + ch]);
                }
            }
        }
        yo += a4;
    }
    Pixels {
        width: w,
        height: h,
        channels: ch,
        data: out,
    }
}

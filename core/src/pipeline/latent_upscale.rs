//! Resizing latents as torch's `F.interpolate(x, size=…)` on the CPU does, for A1111's
//! "Latent …" hires upscalers and its "Just resize (latent upscale)" img2img mode.
//!
//! Hand-written rather than taken from an image crate because the hires pass feeds the
//! result straight into sampling, so it must equal torch's float arithmetic: the source
//! index `scale·(i + ½) − ½` with `scale = in/out` in f32, the clamped 4-tap cubic with
//! A = −0.75, nearest's `⌊i·scale⌋` and nearest-exact's `⌊(i + ½)·scale⌋`, and for the
//! antialiased modes torch's PIL-style separable filters (triangle, or cubic with
//! A = −0.5; support widened by the scale when shrinking; weights normalised), applied
//! along the width first and then the height.

use crate::error::{Error, Result};

/// torch's interpolation modes that A1111 offers for latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatentInterpolation {
    Bilinear,
    Bicubic,
    Nearest,
    NearestExact,
}

/// One of A1111's latent upscale modes (`shared.latent_upscale_modes`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatentUpscaleMode {
    pub interpolation: LatentInterpolation,
    pub antialias: bool,
}

/// A1111's names for the latent upscalers, with their torch modes.
pub const LATENT_UPSCALERS: [(&str, LatentUpscaleMode); 6] = [
    ("Latent", mode(LatentInterpolation::Bilinear, false)),
    (
        "Latent (antialiased)",
        mode(LatentInterpolation::Bilinear, true),
    ),
    (
        "Latent (bicubic)",
        mode(LatentInterpolation::Bicubic, false),
    ),
    (
        "Latent (bicubic antialiased)",
        mode(LatentInterpolation::Bicubic, true),
    ),
    (
        "Latent (nearest)",
        mode(LatentInterpolation::Nearest, false),
    ),
    (
        "Latent (nearest-exact)",
        mode(LatentInterpolation::NearestExact, false),
    ),
];

const fn mode(interpolation: LatentInterpolation, antialias: bool) -> LatentUpscaleMode {
    LatentUpscaleMode {
        interpolation,
        antialias,
    }
}

impl LatentUpscaleMode {
    /// The mode A1111 calls `name` (exact spelling), or `None` for an image upscaler.
    pub fn from_a1111_name(name: &str) -> Option<Self> {
        LATENT_UPSCALERS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, m)| *m)
    }
}

/// Resize `x` = `[n, c, h, w]` (row-major) to `[n, c, out_h, out_w]`.
pub fn interpolate(
    x: &[f32],
    shape: [usize; 4],
    out_h: usize,
    out_w: usize,
    mode: LatentUpscaleMode,
) -> Result<Vec<f32>> {
    let [n, c, h, w] = shape;
    if x.len() != n * c * h * w || h == 0 || w == 0 || out_h == 0 || out_w == 0 {
        return Err(Error::Invalid(format!(
            "latent resize: {} values for shape {shape:?} to {out_h}x{out_w}",
            x.len()
        )));
    }
    let planes = n * c;
    Ok(match (mode.interpolation, mode.antialias) {
        (LatentInterpolation::Nearest, _) => gather(x, planes, [h, w], [out_h, out_w], false),
        (LatentInterpolation::NearestExact, _) => gather(x, planes, [h, w], [out_h, out_w], true),
        (interp, false) => {
            let cubic = interp == LatentInterpolation::Bicubic;
            let rows = taps(h, out_h, cubic);
            let cols = taps(w, out_w, cubic);
            separable_2d(x, planes, [h, w], [out_h, out_w], &rows, &cols)
        }
        (interp, true) => {
            let cubic = interp == LatentInterpolation::Bicubic;
            // Width first into a temporary, then height (torch's order).
            let cols = aa_taps(w, out_w, cubic);
            let tmp = along_width(x, planes * h, w, out_w, &cols);
            let rows = aa_taps(h, out_h, cubic);
            along_height(&tmp, planes, h, out_h, out_w, &rows)
        }
    })
}

/// torch's `area_pixel_compute_scale` without align_corners: in/out in f32.
fn ratio(input: usize, output: usize) -> f32 {
    input as f32 / output as f32
}

/// Nearest / nearest-exact source indices (torch's `nearest_idx`, `nearest_exact_idx`).
fn nearest_index(i: usize, input: usize, output: usize, exact: bool) -> usize {
    if output == input {
        return i;
    }
    if !exact && output == 2 * input {
        return i >> 1;
    }
    let scale = ratio(input, output);
    let src = if exact {
        // (i + 0.5) is a double in torch, the product rounds to f32 for floorf.
        (((i as f64 + 0.5) * scale as f64) as f32).floor()
    } else {
        (i as f32 * scale).floor()
    };
    (src as usize).min(input - 1)
}

fn gather(
    x: &[f32],
    planes: usize,
    [h, w]: [usize; 2],
    [oh, ow]: [usize; 2],
    exact: bool,
) -> Vec<f32> {
    let rows: Vec<usize> = (0..oh).map(|i| nearest_index(i, h, oh, exact)).collect();
    let cols: Vec<usize> = (0..ow).map(|j| nearest_index(j, w, ow, exact)).collect();
    let mut out = Vec::with_capacity(planes * oh * ow);
    for p in 0..planes {
        let plane = &x[p * h * w..(p + 1) * h * w];
        for &r in &rows {
            out.extend(cols.iter().map(|&c| plane[r * w + c]));
        }
    }
    out
}

/// Source indices and weights of one output position.
struct Taps {
    index: Vec<usize>,
    weight: Vec<f32>,
}

fn cubic_near(x: f32, a: f32) -> f32 {
    ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
}

fn cubic_far(x: f32, a: f32) -> f32 {
    ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
}

/// torch's (non-antialiased) linear / cubic taps for every output index along one axis.
fn taps(input: usize, output: usize, cubic: bool) -> Vec<Taps> {
    let scale = ratio(input, output);
    (0..output)
        .map(|i| {
            if !cubic && output == input {
                return Taps {
                    index: vec![i, i],
                    weight: vec![1.0, 0.0],
                };
            }
            let mut src = scale * (i as f32 + 0.5) - 0.5;
            if !cubic && src < 0.0 {
                src = 0.0;
            }
            // guard_index_and_lambda
            let floor = (src.floor() as i64).min(input as i64 - 1);
            let lambda = (src - floor as f32).clamp(0.0, 1.0);
            if cubic {
                const A: f32 = -0.75;
                let weight = vec![
                    cubic_far(lambda + 1.0, A),
                    cubic_near(lambda, A),
                    cubic_near(1.0 - lambda, A),
                    cubic_far(2.0 - lambda, A),
                ];
                let index = (0..4)
                    .map(|j| (floor - 1 + j).clamp(0, input as i64 - 1) as usize)
                    .collect();
                Taps { index, weight }
            } else {
                let i0 = floor as usize;
                let i1 = i0 + usize::from(i0 < input - 1);
                Taps {
                    index: vec![i0, i1],
                    weight: vec![1.0 - lambda, lambda],
                }
            }
        })
        .collect()
}

/// `Σ_r w_r · (Σ_c w_c · x[r, c])`, first term assigned then accumulated, as torch's
/// generic upsampling kernel (height outermost).
fn separable_2d(
    x: &[f32],
    planes: usize,
    [h, w]: [usize; 2],
    [oh, ow]: [usize; 2],
    rows: &[Taps],
    cols: &[Taps],
) -> Vec<f32> {
    let mut out = Vec::with_capacity(planes * oh * ow);
    for p in 0..planes {
        let plane = &x[p * h * w..(p + 1) * h * w];
        for rt in rows {
            for ct in cols {
                let row_value = |r: usize| {
                    let mut acc = plane[r * w + ct.index[0]] * ct.weight[0];
                    for k in 1..ct.index.len() {
                        acc += plane[r * w + ct.index[k]] * ct.weight[k];
                    }
                    acc
                };
                let mut acc = row_value(rt.index[0]) * rt.weight[0];
                for k in 1..rt.index.len() {
                    acc += row_value(rt.index[k]) * rt.weight[k];
                }
                out.push(acc);
            }
        }
    }
    out
}

/// torch's antialiased taps (`_compute_weights_aa`, PIL's scheme) along one axis.
fn aa_taps(input: usize, output: usize, cubic: bool) -> Vec<Taps> {
    let scale = ratio(input, output);
    let interp_size: f32 = if cubic { 4.0 } else { 2.0 };
    let support = if scale >= 1.0 {
        interp_size * 0.5 * scale
    } else {
        interp_size * 0.5
    };
    let max_taps = (support.ceil() as usize) * 2 + 1;
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };
    let filter = |x: f32| -> f32 {
        let x = x.abs();
        if cubic {
            const A: f32 = -0.5;
            if x < 1.0 {
                ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
            } else if x < 2.0 {
                (((x - 5.0) * x + 8.0) * x - 4.0) * A
            } else {
                0.0
            }
        } else if x < 1.0 {
            1.0 - x
        } else {
            0.0
        }
    };
    (0..output)
        .map(|i| {
            // torch mixes f32 and f64 here; each step rounds where its C++ does.
            let center = (scale as f64 * (i as f64 + 0.5)) as f32;
            let xmin = (((center - support) as f64 + 0.5) as i64).max(0);
            let xmax = (((center + support) as f64 + 0.5) as i64).min(input as i64);
            let size = (xmax - xmin).clamp(0, max_taps as i64) as usize;
            let xmin = xmin as usize;
            let mut weight: Vec<f32> = (0..size)
                .map(|j| {
                    let at = (((j + xmin) as f32 - center) as f64 + 0.5) * invscale as f64;
                    filter(at as f32)
                })
                .collect();
            let total: f32 = weight.iter().fold(0.0, |a, w| a + w);
            if total != 0.0 {
                for v in &mut weight {
                    *v /= total;
                }
            }
            Taps {
                index: (xmin..xmin + size).collect(),
                weight,
            }
        })
        .collect()
}

fn weighted(values: impl Iterator<Item = f32>, weights: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (k, (v, w)) in values.zip(weights).enumerate() {
        if k == 0 {
            acc = v * w;
        } else {
            acc += v * w;
        }
    }
    acc
}

fn along_width(x: &[f32], rows: usize, w: usize, ow: usize, cols: &[Taps]) -> Vec<f32> {
    if w == ow {
        return x.to_vec();
    }
    let mut out = Vec::with_capacity(rows * ow);
    for r in 0..rows {
        let row = &x[r * w..(r + 1) * w];
        for t in cols {
            out.push(weighted(t.index.iter().map(|&i| row[i]), &t.weight));
        }
    }
    out
}

fn along_height(
    x: &[f32],
    planes: usize,
    h: usize,
    oh: usize,
    w: usize,
    rows: &[Taps],
) -> Vec<f32> {
    if h == oh {
        return x.to_vec();
    }
    let mut out = Vec::with_capacity(planes * oh * w);
    for p in 0..planes {
        let plane = &x[p * h * w..(p + 1) * h * w];
        for t in rows {
            for c in 0..w {
                out.push(weighted(
                    t.index.iter().map(|&i| plane[i * w + c]),
                    &t.weight,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a1111_names_map_to_torch_modes() {
        let m = LatentUpscaleMode::from_a1111_name("Latent (bicubic antialiased)").unwrap();
        assert_eq!(m.interpolation, LatentInterpolation::Bicubic);
        assert!(m.antialias);
        assert!(LatentUpscaleMode::from_a1111_name("Lanczos").is_none());
    }

    #[test]
    fn same_size_is_identity_and_nearest_doubles() {
        let x: Vec<f32> = (0..6).map(|v| v as f32).collect();
        for (_, m) in LATENT_UPSCALERS {
            assert_eq!(interpolate(&x, [1, 1, 2, 3], 2, 3, m).unwrap(), x);
        }
        let m = LatentUpscaleMode::from_a1111_name("Latent (nearest)").unwrap();
        let y = interpolate(&[1.0, 2.0], [1, 1, 1, 2], 1, 4, m).unwrap();
        assert_eq!(y, vec![1.0, 1.0, 2.0, 2.0]);
    }
}

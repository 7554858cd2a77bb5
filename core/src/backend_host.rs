//! Host (plain Rust, f32) versions of the [`Backend`](crate::Backend) operations that the
//! trait gives a default for: the hypernetworks' activations ([`crate::ElementwiseFn`]), the
//! upscaler networks' activations (leaky ReLU, PReLU), pixel
//! (un)shuffle, and the Swin window operations. A backend without a kernel of its own runs
//! them through these by a round trip (download, compute here, upload), so every backend
//! runs every upscaler; the candle backend has native versions, and these double as the
//! reference the backend tests compare against.
//!
//! Semantics follow torch: `F.leaky_relu`, `nn.PReLU`, `F.pixel_shuffle`,
//! `F.pixel_unshuffle`, and SwinIR's `torch.roll` + `window_partition` /
//! `window_reverse` + `roll` back, with window attention as SwinIR computes it.

use crate::error::{Error, Result};

fn check_len(op: &str, data: &[f32], shape: &[usize]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::Backend(format!(
            "{op}: {} values for shape {shape:?}",
            data.len()
        )));
    }
    Ok(())
}

fn dims4(op: &str, shape: &[usize]) -> Result<[usize; 4]> {
    <[usize; 4]>::try_from(shape)
        .map_err(|_| Error::Backend(format!("{op}: expected [N, C, H, W], got {shape:?}")))
}

fn dims3(op: &str, shape: &[usize]) -> Result<[usize; 3]> {
    <[usize; 3]>::try_from(shape)
        .map_err(|_| Error::Backend(format!("{op}: expected [N, L, C], got {shape:?}")))
}

const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `ln(1 + eˣ)`, the identity above 20 as torch's Softplus.
fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

impl crate::ElementwiseFn {
    /// The function on one value, in f32 as torch computes it.
    pub fn apply(self, x: f32) -> f32 {
        use crate::ElementwiseFn::*;
        match self {
            Tanh => x.tanh(),
            Sigmoid => sigmoid(x),
            Elu => {
                if x > 0.0 {
                    x
                } else {
                    x.exp_m1()
                }
            }
            Selu => SELU_SCALE * if x > 0.0 { x } else { SELU_ALPHA * x.exp_m1() },
            Hardswish => x * (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Mish => x * softplus(x).tanh(),
            Relu6 => x.clamp(0.0, 6.0),
            Hardtanh => x.clamp(-1.0, 1.0),
            Hardsigmoid => (x + 3.0).clamp(0.0, 6.0) / 6.0,
            Softplus => softplus(x),
            Softsign => x / (1.0 + x.abs()),
            Tanhshrink => x - x.tanh(),
            // torch's stable form: min(x, 0) − ln(1 + e^−|x|).
            LogSigmoid => x.min(0.0) - (-x.abs()).exp().ln_1p(),
            Hardshrink => {
                if x.abs() > 0.5 {
                    x
                } else {
                    0.0
                }
            }
            Softshrink => {
                if x > 0.5 {
                    x - 0.5
                } else if x < -0.5 {
                    x + 0.5
                } else {
                    0.0
                }
            }
        }
    }
}

/// `f` on every element.
pub fn elementwise(x: &[f32], f: crate::ElementwiseFn) -> Vec<f32> {
    x.iter().map(|&v| f.apply(v)).collect()
}

/// `x` where `x > 0`, else `slope · x` (torch's `F.leaky_relu`).
pub fn leaky_relu(x: &[f32], slope: f32) -> Vec<f32> {
    x.iter()
        .map(|&v| if v > 0.0 { v } else { v * slope })
        .collect()
}

/// `nn.PReLU` on `[N, C, ...]`: `x` where `x ≥ 0`, else `weight[c] · x`; a single weight
/// applies to every channel.
pub fn prelu(x: &[f32], shape: &[usize], weight: &[f32]) -> Result<Vec<f32>> {
    check_len("prelu", x, shape)?;
    if shape.len() < 2 {
        return Err(Error::Backend(format!(
            "prelu: expected [N, C, ...], got {shape:?}"
        )));
    }
    let c = shape[1];
    if weight.len() != c && weight.len() != 1 {
        return Err(Error::Backend(format!(
            "prelu: {} weights for {c} channels",
            weight.len()
        )));
    }
    let plane: usize = shape[2..].iter().product();
    let mut out = Vec::with_capacity(x.len());
    for (i, chunk) in x.chunks(plane.max(1)).enumerate() {
        let a = if weight.len() == 1 {
            weight[0]
        } else {
            weight[i % c]
        };
        out.extend(chunk.iter().map(|&v| if v >= 0.0 { v } else { a * v }));
    }
    Ok(out)
}

/// `[N, C·r², H, W]` → `[N, C, H·r, W·r]`: `out[n, c, h·r + i, w·r + j] = x[n, c·r² + i·r + j, h, w]`.
pub fn pixel_shuffle(x: &[f32], shape: &[usize], r: usize) -> Result<(Vec<f32>, Vec<usize>)> {
    check_len("pixel_shuffle", x, shape)?;
    let [n, crr, h, w] = dims4("pixel_shuffle", shape)?;
    if r == 0 || !crr.is_multiple_of(r * r) {
        return Err(Error::Backend(format!(
            "pixel_shuffle: {crr} channels do not split by {r}²"
        )));
    }
    let c = crr / (r * r);
    let (ho, wo) = (h * r, w * r);
    let mut out = vec![0f32; x.len()];
    for b in 0..n {
        for co in 0..c {
            for i in 0..r {
                for j in 0..r {
                    let src = &x[((b * crr + co * r * r + i * r + j) * h) * w..][..h * w];
                    for y in 0..h {
                        let row = &mut out[((b * c + co) * ho + y * r + i) * wo..][..wo];
                        for (xx, &v) in src[y * w..(y + 1) * w].iter().enumerate() {
                            row[xx * r + j] = v;
                        }
                    }
                }
            }
        }
    }
    Ok((out, vec![n, c, ho, wo]))
}

/// `[N, C, H·r, W·r]` → `[N, C·r², H, W]`, the inverse of [`pixel_shuffle`].
pub fn pixel_unshuffle(x: &[f32], shape: &[usize], r: usize) -> Result<(Vec<f32>, Vec<usize>)> {
    check_len("pixel_unshuffle", x, shape)?;
    let [n, c, hi, wi] = dims4("pixel_unshuffle", shape)?;
    if r == 0 || !hi.is_multiple_of(r) || !wi.is_multiple_of(r) {
        return Err(Error::Backend(format!(
            "pixel_unshuffle: {hi}×{wi} is not a multiple of {r}"
        )));
    }
    let (h, w) = (hi / r, wi / r);
    let mut out = vec![0f32; x.len()];
    for b in 0..n {
        for ci in 0..c {
            for i in 0..r {
                for j in 0..r {
                    let dst = &mut out[((b * c + ci) * r * r + i * r + j) * h * w..][..h * w];
                    for y in 0..h {
                        let row = &x[((b * c + ci) * hi + y * r + i) * wi..][..wi];
                        for xx in 0..w {
                            dst[y * w + xx] = row[xx * r + j];
                        }
                    }
                }
            }
        }
    }
    Ok((out, vec![n, c * r * r, h, w]))
}

fn check_windows(op: &str, h: usize, w: usize, window: usize, shift: usize) -> Result<()> {
    if window == 0 || !h.is_multiple_of(window) || !w.is_multiple_of(window) || shift >= window {
        return Err(Error::Backend(format!(
            "{op}: {h}×{w} does not split into {window}×{window} windows (shift {shift})"
        )));
    }
    Ok(())
}

/// Swin's shifted-window partition of `[N, H·W, C]` tokens (row-major over H×W): the grid
/// is rolled by `-shift` on both axes, then cut into `window×window` windows, giving
/// `[N·(H/window)·(W/window), window², C]` with windows row-major within each image.
pub fn window_partition(
    x: &[f32],
    shape: &[usize],
    h: usize,
    w: usize,
    window: usize,
    shift: usize,
) -> Result<(Vec<f32>, Vec<usize>)> {
    check_len("window_partition", x, shape)?;
    let [n, l, c] = dims3("window_partition", shape)?;
    check_windows("window_partition", h, w, window, shift)?;
    if l != h * w {
        return Err(Error::Backend(format!(
            "window_partition: {l} tokens are not {h}×{w}"
        )));
    }
    let (nh, nw) = (h / window, w / window);
    let mut out = vec![0f32; x.len()];
    let mut dst = 0;
    for b in 0..n {
        for wy in 0..nh {
            for wx in 0..nw {
                for i in 0..window {
                    let sy = (wy * window + i + shift) % h;
                    for j in 0..window {
                        let sx = (wx * window + j + shift) % w;
                        let src = ((b * h + sy) * w + sx) * c;
                        out[dst..dst + c].copy_from_slice(&x[src..src + c]);
                        dst += c;
                    }
                }
            }
        }
    }
    Ok((out, vec![n * nh * nw, window * window, c]))
}

/// The inverse of [`window_partition`]: `[N·nW, window², C]` → `[N, H·W, C]`, rolled back
/// by `+shift`.
pub fn window_merge(
    x: &[f32],
    shape: &[usize],
    h: usize,
    w: usize,
    window: usize,
    shift: usize,
) -> Result<(Vec<f32>, Vec<usize>)> {
    check_len("window_merge", x, shape)?;
    let [bw, l, c] = dims3("window_merge", shape)?;
    check_windows("window_merge", h, w, window, shift)?;
    let per_image = (h / window) * (w / window);
    if l != window * window || !bw.is_multiple_of(per_image) {
        return Err(Error::Backend(format!(
            "window_merge: {shape:?} is not windows of {window}² tokens over {h}×{w}"
        )));
    }
    let n = bw / per_image;
    let (nh, nw) = (h / window, w / window);
    let mut out = vec![0f32; x.len()];
    let mut src = 0;
    for b in 0..n {
        for wy in 0..nh {
            for wx in 0..nw {
                for i in 0..window {
                    let ty = (wy * window + i + shift) % h;
                    for j in 0..window {
                        let tx = (wx * window + j + shift) % w;
                        let dst = ((b * h + ty) * w + tx) * c;
                        out[dst..dst + c].copy_from_slice(&x[src..src + c]);
                        src += c;
                    }
                }
            }
        }
    }
    Ok((out, vec![n, h * w, c]))
}

/// Shapes of [`window_attention`]'s operands, checked.
pub struct WindowAttentionDims {
    pub batch: usize,
    pub len: usize,
    pub width: usize,
    pub heads: usize,
    /// Windows per image of the mask (the mask of window `b` is `mask[b % windows]`).
    pub windows: Option<usize>,
}

impl WindowAttentionDims {
    /// Checks `q, k, v: [B, L, H·D]`, `bias: [H, L, L]`, `mask: [nW, L, L]` with `B`
    /// a multiple of `nW`.
    pub fn check(
        q: &[usize],
        k: &[usize],
        v: &[usize],
        heads: usize,
        bias: &[usize],
        mask: Option<&[usize]>,
    ) -> Result<Self> {
        let [b, l, width] = dims3("window_attention", q)?;
        if k != q || v != q {
            return Err(Error::Backend(format!(
                "window_attention: q {q:?}, k {k:?}, v {v:?} differ"
            )));
        }
        if heads == 0 || !width.is_multiple_of(heads) {
            return Err(Error::Backend(format!(
                "window_attention: width {width} does not split into {heads} heads"
            )));
        }
        if bias != [heads, l, l] {
            return Err(Error::Backend(format!(
                "window_attention: bias {bias:?} is not [{heads}, {l}, {l}]"
            )));
        }
        let windows = match mask {
            None => None,
            Some(m) => {
                let nw = m.first().copied().unwrap_or(0);
                if m.len() != 3 || m[1] != l || m[2] != l || nw == 0 || !b.is_multiple_of(nw) {
                    return Err(Error::Backend(format!(
                        "window_attention: mask {m:?} does not fit {b} windows of {l} tokens"
                    )));
                }
                Some(nw)
            }
        };
        Ok(Self {
            batch: b,
            len: l,
            width,
            heads,
            windows,
        })
    }
}

/// Attention inside each window as SwinIR computes it: per head,
/// `softmax((q·D^-½) kᵀ + bias[h] + mask[b mod nW]) v`, with `q, k, v: [B, L, H·D]`
/// (head `h` in columns `h·D..(h+1)·D`), `bias: [H, L, L]`, `mask: [nW, L, L]`.
#[allow(clippy::too_many_arguments)]
pub fn window_attention(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    shape: &[usize],
    heads: usize,
    bias: &[f32],
    mask: Option<(&[f32], usize)>,
) -> Result<Vec<f32>> {
    let [b, l, width] = dims3("window_attention", shape)?;
    check_len("window_attention q", q, shape)?;
    check_len("window_attention k", k, shape)?;
    check_len("window_attention v", v, shape)?;
    check_len("window_attention bias", bias, &[heads, l, l])?;
    if let Some((m, nw)) = mask {
        check_len("window_attention mask", m, &[nw, l, l])?;
    }
    let d = width / heads;
    let scale = (d as f64).powf(-0.5) as f32;
    let mut out = vec![0f32; q.len()];
    let mut scores = vec![0f32; l];
    for bi in 0..b {
        let base = bi * l * width;
        for h in 0..heads {
            let off = h * d;
            for i in 0..l {
                let qi = &q[base + i * width + off..][..d];
                let qs: Vec<f32> = qi.iter().map(|&x| x * scale).collect();
                for (j, s) in scores.iter_mut().enumerate() {
                    let kj = &k[base + j * width + off..][..d];
                    let mut acc = 0f32;
                    for (a, bb) in qs.iter().zip(kj) {
                        acc += a * bb;
                    }
                    acc += bias[(h * l + i) * l + j];
                    if let Some((m, nw)) = mask {
                        acc += m[((bi % nw) * l + i) * l + j];
                    }
                    *s = acc;
                }
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                let o = &mut out[base + i * width + off..][..d];
                for (j, &p) in scores.iter().enumerate() {
                    let vj = &v[base + j * width + off..][..d];
                    let p = p / sum;
                    for (acc, &x) in o.iter_mut().zip(vj) {
                        *acc += p * x;
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_shuffle_round_trips_and_places_like_torch() {
        // [1, 4, 1, 2] with r = 2: channel i·2 + j goes to offset (i, j) of each 2×2 block.
        let x: Vec<f32> = (0..8).map(|v| v as f32).collect();
        let (y, s) = pixel_shuffle(&x, &[1, 4, 1, 2], 2).unwrap();
        assert_eq!(s, [1, 1, 2, 4]);
        assert_eq!(y, [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        let (back, s2) = pixel_unshuffle(&y, &s, 2).unwrap();
        assert_eq!(s2, [1, 4, 1, 2]);
        assert_eq!(back, x);
    }

    #[test]
    fn window_partition_rolls_then_cuts_and_merge_inverts() {
        let (h, w, c) = (4, 4, 2);
        let x: Vec<f32> = (0..h * w * c).map(|v| v as f32).collect();
        let (p, s) = window_partition(&x, &[1, h * w, c], h, w, 2, 1).unwrap();
        assert_eq!(s, [4, 4, 2]);
        // First window, first token: rolled by -1, so it is source pixel (1, 1).
        assert_eq!(&p[..2], &x[(w + 1) * c..(w + 1) * c + 2]);
        let (m, s2) = window_merge(&p, &s, h, w, 2, 1).unwrap();
        assert_eq!(s2, [1, h * w, c]);
        assert_eq!(m, x);
    }

    #[test]
    fn prelu_uses_the_channel_weight_for_negatives_only() {
        let x = [-1.0, 2.0, -3.0, 4.0];
        let y = prelu(&x, &[1, 2, 2], &[0.5, 0.25]).unwrap();
        assert_eq!(y, [-0.5, 2.0, -0.75, 4.0]);
        assert_eq!(leaky_relu(&[-2.0, 0.0, 3.0], 0.2), [-0.4, 0.0, 3.0]);
    }
}

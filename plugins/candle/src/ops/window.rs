//! Swin window operations for SwinIR: the shifted-window partition and its inverse, and
//! attention inside windows with the relative position bias and the shifted-window mask.
//!
//! The partition is a gather of `C`-float rows (one pass on the CPU, where candle's
//! strided copy of the 6-D permutation would walk the destination one element at a time);
//! the attention is batched matrix products over all windows and heads with the bias and
//! mask added by broadcasting and the row softmax of [`super::softmax`].

use super::cpu_kernel::{all_cpu_f32, with_f32_data};
use super::softmax::scaled_softmax;
use candle_core::{bail, Device, Result, Tensor};

fn check(h: usize, w: usize, window: usize, shift: usize) -> Result<()> {
    if window == 0 || !h.is_multiple_of(window) || !w.is_multiple_of(window) || shift >= window {
        bail!("window: {h}×{w} does not split into {window}×{window} windows (shift {shift})");
    }
    Ok(())
}

fn host(r: easel_core::Result<(Vec<f32>, Vec<usize>)>) -> Result<Tensor> {
    match r {
        Ok((data, shape)) => Tensor::from_vec(data, shape, &Device::Cpu),
        Err(e) => bail!("{e}"),
    }
}

/// `[N, H·W, C]` rolled by `-shift` on both axes, cut into windows: `[N·nW, window², C]`.
pub fn window_partition(
    x: &Tensor,
    h: usize,
    w: usize,
    window: usize,
    shift: usize,
) -> Result<Tensor> {
    check(h, w, window, shift)?;
    let (n, l, c) = x.dims3()?;
    if l != h * w {
        bail!("window_partition: {l} tokens are not {h}×{w}");
    }
    if all_cpu_f32(&[x]) {
        let dims = x.dims().to_vec();
        return host(with_f32_data(x, "window_partition", |d| {
            easel_core::backend_host::window_partition(d, &dims, h, w, window, shift)
        })?);
    }
    let s = -(shift as i32);
    let (nh, nw) = (h / window, w / window);
    x.reshape((n, h, w, c))?
        .roll(s, 1)?
        .roll(s, 2)?
        .reshape((n * nh, window, nw, window * c))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((n * nh * nw, window * window, c))
}

/// The inverse of [`window_partition`]: `[N·nW, window², C]` → `[N, H·W, C]`.
pub fn window_merge(x: &Tensor, h: usize, w: usize, window: usize, shift: usize) -> Result<Tensor> {
    check(h, w, window, shift)?;
    let (bw, l, c) = x.dims3()?;
    let (nh, nw) = (h / window, w / window);
    if l != window * window || !bw.is_multiple_of(nh * nw) {
        bail!(
            "window_merge: {:?} is not windows of {window}² tokens over {h}×{w}",
            x.dims()
        );
    }
    if all_cpu_f32(&[x]) {
        let dims = x.dims().to_vec();
        return host(with_f32_data(x, "window_merge", |d| {
            easel_core::backend_host::window_merge(d, &dims, h, w, window, shift)
        })?);
    }
    let n = bw / (nh * nw);
    let s = shift as i32;
    x.reshape((n * nh, nw, window, window * c))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((n, h, w, c))?
        .roll(s, 1)?
        .roll(s, 2)?
        .reshape((n, h * w, c))
}

/// `q, k, v: [B, L, H·D]`; per head `softmax((q·D^-½) kᵀ + bias[h] + mask[b mod nW]) v`
/// with `bias: [H, L, L]` and `mask: [nW, L, L]`.
pub fn window_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    bias: &Tensor,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let mask_dims = mask.map(|m| m.dims().to_vec());
    if let Err(e) = easel_core::backend_host::WindowAttentionDims::check(
        q.dims(),
        k.dims(),
        v.dims(),
        heads,
        bias.dims(),
        mask_dims.as_deref(),
    ) {
        bail!("{e}");
    }
    let (b, l, width) = q.dims3()?;
    let d = width / heads;
    let scale = (d as f64).powf(-0.5);
    let split = |t: &Tensor| -> Result<Tensor> {
        t.reshape((b, l, heads, d))?.transpose(1, 2)?.contiguous()
    };
    let q = split(q)?.affine(scale, 0.0)?;
    let kt = split(k)?.t()?;
    let v = split(v)?;
    let mut scores = q.matmul(&kt)?.broadcast_add(&bias.unsqueeze(0)?)?;
    if let Some(m) = mask {
        let nw = m.dim(0)?;
        scores = scores
            .reshape((b / nw, nw, heads, l, l))?
            .broadcast_add(&m.unsqueeze(1)?.unsqueeze(0)?)?
            .reshape((b, heads, l, l))?;
    }
    let probs = scaled_softmax(scores, 1.0, None)?;
    probs
        .matmul(&v)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((b, l, width))
}

//! Multi-head scaled dot-product attention as batched matrix products per head, with the
//! queries processed in chunks so one score block (`batch · heads · chunk · Lk` floats)
//! stays under a byte budget: at 512×512 the first UNet attention would otherwise hold
//! 8 × 4096 × 4096 scores per image.

use super::softmax::{scaled_softmax, CausalRows};
use candle_core::{bail, Result, Tensor};

/// Query rows per chunk for a score block of at most `block_bytes`.
pub fn query_chunk_rows(batch_heads: usize, lq: usize, lk: usize, block_bytes: usize) -> usize {
    let row_bytes = (batch_heads * lk * std::mem::size_of::<f32>()).max(1);
    (block_bytes / row_bytes).clamp(1, lq.max(1))
}

/// `q: [N, Lq, H·D]`, `k, v: [N, Lk, H·D]` → `[N, Lq, H·D]`, scale `1/√D`; `causal`
/// hides keys after each query's position.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
    block_bytes: usize,
) -> Result<Tensor> {
    let (n, lq, width) = q.dims3()?;
    let (nk, lk, wk) = k.dims3()?;
    if k.dims() != v.dims() || nk != n || wk != width {
        bail!(
            "attention: q {:?}, k {:?}, v {:?} do not fit together",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    if heads == 0 || width % heads != 0 {
        bail!("attention: width {width} does not split into {heads} heads");
    }
    let d = width / heads;
    let scale = 1.0 / (d as f32).sqrt();
    // [N, L, H·D] → [N·H, L, D], contiguous so each head is one gemm operand.
    let split_heads = |t: &Tensor, l: usize| -> Result<Tensor> {
        t.reshape((n, l, heads, d))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((n * heads, l, d))
    };
    let q = split_heads(q, lq)?;
    let kt = split_heads(k, lk)?.t()?;
    let v = split_heads(v, lk)?;

    let chunk = query_chunk_rows(n * heads, lq, lk, block_bytes);
    let mut outputs = Vec::with_capacity(lq.div_ceil(chunk));
    let mut start = 0;
    while start < lq {
        let len = chunk.min(lq - start);
        let qc = if len == lq {
            q.clone()
        } else {
            q.narrow(1, start, len)?
        };
        let scores = qc.matmul(&kt)?;
        let probs = scaled_softmax(
            scores,
            scale,
            causal.then_some(CausalRows {
                rows: len,
                first_query: start,
            }),
        )?;
        outputs.push(probs.matmul(&v)?);
        start += len;
    }
    let out = if outputs.len() == 1 {
        outputs.pop().expect("one chunk")
    } else {
        Tensor::cat(&outputs, 1)?
    };
    out.reshape((n, heads, lq, d))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((n, lq, width))
}

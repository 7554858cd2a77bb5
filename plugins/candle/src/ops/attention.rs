//! Multi-head scaled dot-product attention as batched matrix products per head, with the
//! queries processed in chunks so one score block (`batch · heads · chunk · Lk` floats)
//! stays under a byte budget: at 512×512 the first UNet attention would otherwise hold
//! 8 × 4096 × 4096 scores per image.

use super::cpu_kernel::on_kernel_cpu;
use super::fused_attention::{block_rows_for, FusedAttention};
use super::softmax::{scaled_softmax, CausalRows};
use crate::gemm::Precision;
use candle_core::{bail, DType, Result, Tensor};

/// Query rows per chunk for a score block of at most `block_bytes`.
pub fn query_chunk_rows(batch_heads: usize, lq: usize, lk: usize, block_bytes: usize) -> usize {
    let row_bytes = (batch_heads * lk * std::mem::size_of::<f32>()).max(1);
    (block_bytes / row_bytes).clamp(1, lq.max(1))
}

/// `q: [N, Lq, H·D]`, `k, v: [N, Lk, H·D]` → `[N, Lq, H·D]`, scale `1/√D`; `causal`
/// hides keys after each query's position. On the CPU this runs the fused kernel (query
/// blocks as [`block_rows_for`] sizes them, fewer rows if `block_bytes` asks for it, its
/// products in `precision`); elsewhere batched matmuls over query chunks of at most
/// `block_bytes` of scores.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
    block_bytes: usize,
    precision: Precision,
) -> Result<Tensor> {
    let fused = (on_kernel_cpu(q) && q.dtype() == DType::F32).then_some(precision);
    attention_with(q, k, v, heads, causal, block_bytes, fused)
}

/// [`attention`] with the kernel chosen by the caller: `Some(precision)` is the fused CPU
/// kernel (CPU f32 tensors only), `None` the unfused form GPUs run, exposed so tests can
/// check it on the CPU.
pub fn attention_with(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    causal: bool,
    block_bytes: usize,
    fused: Option<Precision>,
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
    if heads == 0 || !width.is_multiple_of(heads) {
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
    let chunk = query_chunk_rows(n * heads, lq, lk, block_bytes);
    if let Some(precision) = fused {
        let op = FusedAttention {
            scale,
            causal,
            block_rows: chunk.min(block_rows_for(
                n * heads,
                lq,
                lk,
                rayon::current_num_threads(),
                precision,
            )),
            heads,
            precision,
        };
        return q
            .contiguous()?
            .apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &op);
    }
    let q = split_heads(q, lq)?;
    let merge_heads = |out: Tensor| -> Result<Tensor> {
        out.reshape((n, heads, lq, d))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((n, lq, width))
    };
    let kt = split_heads(k, lk)?.t()?;
    let v = split_heads(v, lk)?;

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
    merge_heads(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 3.0
            })
            .collect()
    }

    /// The fused CPU kernel and the batched-matmul form (what GPUs run) agree, with and
    /// without causal masking and with ragged query blocks.
    #[test]
    fn fused_and_unfused_agree() -> Result<()> {
        for (n, lq, lk, heads, d, causal, budget) in [
            (2, 37, 29, 3, 8, false, 1 << 20),
            (1, 77, 77, 2, 64, true, 1 << 20),
            (2, 70, 70, 1, 5, true, 2 * 70 * 4 * 3),
        ] {
            let t = |l: usize, seed| {
                Tensor::from_vec(
                    random(n * l * heads * d, seed),
                    (n, l, heads * d),
                    &Device::Cpu,
                )
            };
            let (q, k, v) = (t(lq, 1)?, t(lk, 2)?, t(lk, 3)?);
            let a = attention_with(&q, &k, &v, heads, causal, budget, Some(Precision::F32))?;
            let b = attention_with(&q, &k, &v, heads, causal, budget, None)?;
            let diff = (a - &b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "lq={lq} causal={causal}: {diff}");
            // bf16 products (keys and values in AMX tiles where the CPU has them, the
            // probabilities rounded as the softmax pairs them) against the f32 attention of
            // the same inputs rounded to bf16: apart only by the probabilities' rounding
            // (2⁻⁹ of each weight of an average of values near 1; seen: 0.003, where the
            // unrounded inputs' f32 attention is 0.025 away).
            let c = attention_with(&q, &k, &v, heads, causal, budget, Some(Precision::Bf16))?;
            // (Without bf16 arithmetic the products stay f32: the f32 attention itself.)
            let r = |t: &Tensor| t.to_dtype(DType::BF16)?.to_dtype(DType::F32);
            let (want, bound) = if Precision::Bf16.rounds_products() {
                let rounded = (r(&q)?, r(&k)?, r(&v)?);
                let (q, k, v) = (&rounded.0, &rounded.1, &rounded.2);
                (attention_with(q, k, v, heads, causal, budget, None)?, 6e-3)
            } else {
                (b, 1e-5)
            };
            let diff = (c - want)?
                .abs()?
                .flatten_all()?
                .max(0)?
                .to_scalar::<f32>()?;
            assert!(diff < bound, "bf16 lq={lq} causal={causal}: {diff}");
        }
        Ok(())
    }
}

//! Fused attention for the CPU: one rayon task per (sample·head, block of query rows)
//! computes that block's scores against every key, its softmax and the product with the
//! values while the block is still in cache. Nothing larger than one block of scores
//! (`rows × Lk` floats per task) is ever held, and the big score matrix never goes
//! through main memory, which is what makes the naive batched-matmul form slow at
//! 4096 × 4096.
//!
//! The block is computed transposed, key-major: `Sᵀ = K·Qᵀ`, then `Oᵀ = Vᵀ·P`. The keys
//! and values of a head are packed for the matrix kernels once and shared by all its
//! blocks; the queries of a block are a one-panel operand that is cheap to pack; and the
//! probabilities come out of the softmax already in the row-major layout the second
//! product packs with plain copies. (Query-major, the scores would have to be transposed
//! into panels for every block, which costs as much as the products at a head width of 40.)

use super::cpu_cache;
use super::cpu_kernel::f32_slice;
use super::key_major_softmax::{exp_columns_in_place, exp_columns_paired};
use crate::gemm::{
    matmul_in, Bf16Kernel, Bias, Dims, PackB, PackedA, PairedRows, Precision, RowMajor, Transposed,
};
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape};
use rayon::prelude::*;
use std::cell::RefCell;

/// Most query rows per task: the products of a block run at their full rate only when
/// it is several kernel panels wide (measured on Zen 5 at Lk = 4096, one thread: 64 rows
/// took 20–40 % longer per attention than 192, the VAE's single 512-wide head the most).
pub const MAX_BLOCK_ROWS: usize = 192;
/// Fewest query rows per task, when narrower blocks are needed to give every thread work
/// or to keep the score block near the level-2 cache.
const MIN_BLOCK_ROWS: usize = 64;
/// Largest score block (`Lk × rows` floats) as a multiple of the level-2 cache. The block
/// is written, read twice by the softmax and packed for the second product, so where it
/// lives matters: on Zen 5 (1 MiB L2, fast L3) 192 rows at Lk = 4096 (3 MiB) were best;
/// on Zen 1 (512 KiB L2, slower L3) 64–96 rows, 9 % faster than 192 for the UNet's 8
/// heads at 64² and 4 % for the VAE's one 512-wide head.
const SCORE_BLOCK_L2_MULTIPLE: usize = 3;

/// Most and fewest query rows per task when the products run on AMX, whose tile products
/// are fast enough that the score block's trips between the caches set the pace: a
/// quarter of the level-2 cache at most. Measured on a 2-core Xeon with AMX (2 MiB L2),
/// one thread, the UNet's 8-head 64² attention in bf16: 32 rows 338–396 ms, 64 rows
/// 366–406, 192 rows (the general rule) 413–459; at 1024 keys 64 rows 26–28 ms against
/// 33–34 for 192.
const AMX_BLOCK_ROWS: (usize, usize) = (32, 64);
const AMX_SCORE_BLOCK_L2_DIVISOR: usize = 4;

/// Query rows per task for `batch_heads` heads of `lq` queries against `lk` keys on
/// `threads` threads: as many as [`MAX_BLOCK_ROWS`] while that still leaves four tasks
/// per thread and the score block within [`SCORE_BLOCK_L2_MULTIPLE`] level-2 caches,
/// down to `MIN_BLOCK_ROWS`; on AMX ([`amx_block_rows_within`]) fewer.
pub fn block_rows_for(
    batch_heads: usize,
    lq: usize,
    lk: usize,
    threads: usize,
    precision: Precision,
) -> usize {
    let l2 = cpu_cache::l2_bytes();
    if precision == Precision::Bf16 && Bf16Kernel::detect() == Some(Bf16Kernel::Amx) {
        return amx_block_rows_within(lk, l2);
    }
    block_rows_within(batch_heads, lq, lk, threads, l2)
}

/// Query rows per task for `lk` keys when AMX runs the products: the score block within
/// a quarter of a level-2 cache of `l2_bytes`, in whole 32-row panels, between
/// [`AMX_BLOCK_ROWS`]' bounds. (Narrow blocks leave enough tasks for every thread.)
fn amx_block_rows_within(lk: usize, l2_bytes: usize) -> usize {
    let (fewest, most) = AMX_BLOCK_ROWS;
    let cache_rows =
        l2_bytes / AMX_SCORE_BLOCK_L2_DIVISOR / (lk.max(1) * std::mem::size_of::<f32>());
    (cache_rows / 32 * 32).clamp(fewest, most)
}

/// [`block_rows_for`] on a CPU whose level-2 cache holds `l2_bytes`.
fn block_rows_within(
    batch_heads: usize,
    lq: usize,
    lk: usize,
    threads: usize,
    l2_bytes: usize,
) -> usize {
    let cache_rows =
        (SCORE_BLOCK_L2_MULTIPLE * l2_bytes / (lk.max(1) * std::mem::size_of::<f32>())) / 32 * 32;
    (batch_heads * lq)
        .div_ceil(4 * threads.max(1))
        .next_multiple_of(32)
        .min(cache_rows)
        .clamp(MIN_BLOCK_ROWS, MAX_BLOCK_ROWS)
}

/// `q: [N, Lq, H·D]`, `k, v: [N, Lk, H·D]` (contiguous; each head is read in place with
/// the full row width as its stride) → `[N, Lq, H·D]`.
pub struct FusedAttention {
    pub scale: f32,
    pub causal: bool,
    /// Query rows per task (≥ 1).
    pub block_rows: usize,
    /// Heads the width splits into (≥ 1, divides the width).
    pub heads: usize,
    /// Arithmetic of the score and output products.
    pub precision: Precision,
}

/// The output buffer, shared by tasks that write disjoint (query block, head) regions.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: every task writes only the rows of its query block within its head's columns.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// Per-thread buffers of one block: scores, transposed output, column sums, and (bf16
/// products) the probabilities as bf16 pairs of rows.
#[derive(Default)]
struct BlockScratch {
    scores: Vec<f32>,
    out_t: Vec<f32>,
    sums: Vec<f32>,
    paired: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<BlockScratch> = RefCell::default();
}

impl FusedAttention {
    /// `Oᵀ = Vᵀ·P` into `out_t` (`dims`: head width × queries × keys), with the
    /// probabilities in whichever form the softmax left them.
    fn values_times(&self, dims: Dims, values: &PackedA, probs: &impl PackB, out_t: &mut [f32]) {
        matmul_in(
            self.precision,
            dims,
            values,
            probs,
            out_t,
            dims.n,
            Bias::None,
            false,
        );
    }

    /// One block of `n` queries (`q_block`: row `i` at `i·width`, `d` wide) against a
    /// head's packed keys (`[lk, d]`) and values (`[d, lk]`); row `i` of the result goes to
    /// `out + i·width`.
    ///
    /// # Safety
    /// `out` addresses `n` rows of `d` floats at stride `width` that no other task touches.
    #[allow(clippy::too_many_arguments)]
    unsafe fn block(
        &self,
        q_block: &[f32],
        n: usize,
        width: usize,
        keys: &PackedA,
        values: &PackedA,
        lk: usize,
        d: usize,
        first: usize,
        out: *mut f32,
    ) {
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let BlockScratch {
                scores,
                out_t,
                sums,
                paired,
            } = &mut *scratch;
            scores.resize(lk * n, 0.0);
            out_t.resize(d * n, 0.0);
            sums.resize(n, 0.0);
            matmul_in(
                self.precision,
                Dims { m: lk, n, k: d },
                keys,
                &Transposed {
                    data: q_block,
                    ld: width,
                },
                scores,
                n,
                Bias::None,
                false,
            );
            let causal = self.causal.then_some(first);
            let dims = Dims { m: d, n, k: lk };
            if self.precision.rounds_products() {
                // The probabilities are rounded to bf16 for the product anyway: rounded
                // and paired as the softmax makes them, they are packed by copying words.
                paired.resize(lk.div_ceil(2) * n, 0);
                exp_columns_paired(scores, self.scale, causal, sums, paired);
                let probs = PairedRows {
                    words: paired,
                    rows: lk,
                    ld: n,
                };
                self.values_times(dims, values, &probs, out_t);
            } else {
                exp_columns_in_place(scores, self.scale, causal, sums);
                let probs = RowMajor {
                    data: &scores[..],
                    ld: n,
                };
                self.values_times(dims, values, &probs, out_t);
            }
            for (i, &sum) in sums.iter().enumerate() {
                let inv = 1.0 / sum;
                // Written, never read: the output may be uninitialised memory.
                let row = std::slice::from_raw_parts_mut(
                    out.add(i * width).cast::<std::mem::MaybeUninit<f32>>(),
                    d,
                );
                for (c, o) in row.iter_mut().enumerate() {
                    o.write(out_t[c * n + i] * inv);
                }
            }
        });
    }
}

impl CustomOp3 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused_attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let q = f32_slice(qs, ql, "fused_attention")?;
        let k = f32_slice(ks, kl, "fused_attention")?;
        let v = f32_slice(vs, vl, "fused_attention")?;
        let (batch, lq, width) = ql.shape().dims3()?;
        let (bk, lk, wk) = kl.shape().dims3()?;
        let heads = self.heads.max(1);
        if bk != batch || wk != width || vl.dims() != kl.dims() || width % heads != 0 {
            bail!(
                "fused_attention: q {:?}, k {:?}, v {:?}, {heads} heads",
                ql.dims(),
                kl.dims(),
                vl.dims()
            );
        }
        let d = width / heads;
        let len = batch * lq * width;
        if len == 0 || lk == 0 {
            return Ok((CpuStorage::F32(vec![0f32; len]), ql.shape().clone()));
        }
        // Every element is written below (every head's columns of every query row), so the
        // output is never zeroed first.
        let mut out = Vec::<f32>::with_capacity(len);
        let rows = self.block_rows.max(1);
        let blocks = lq.div_ceil(rows);
        let shared = SharedOut(out.as_mut_ptr());
        (0..batch * heads).into_par_iter().for_each(|bh| {
            let (b, h) = (bh / heads, bh % heads);
            // Head `h` of sample `b`: rows of `d` floats at stride `width`.
            let start = b * lk * width + h * d;
            let end = start + (lk - 1) * width + d;
            let (k_head, v_head) = (&k[start..end], &v[start..end]);
            // Packed once per head, read by every block of queries.
            let keys = PackedA::for_products(
                self.precision,
                &RowMajor {
                    data: k_head,
                    ld: width,
                },
                lk,
                d,
            );
            let values = PackedA::for_products(
                self.precision,
                &Transposed {
                    data: v_head,
                    ld: width,
                },
                d,
                lk,
            );
            (0..blocks).into_par_iter().for_each(|block| {
                let first = block * rows;
                let n = rows.min(lq - first);
                let start = (b * lq + first) * width + h * d;
                let q_block = &q[start..start + (n - 1) * width + d];
                let out = shared;
                // SAFETY: rows `first..first + n` of sample `b`, columns of head `h`: inside
                // `out` and disjoint from every other (bh, block) task.
                unsafe {
                    self.block(
                        q_block,
                        n,
                        width,
                        &keys,
                        &values,
                        lk,
                        d,
                        first,
                        out.0.add(start),
                    );
                }
            });
        });
        // SAFETY: the tasks wrote all `len` elements: the (sample, head, block) tasks cover
        // every query row of every sample, each writing its head's `d` columns.
        unsafe { out.set_len(len) };
        Ok((CpuStorage::F32(out), ql.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_blocks_follow_the_level_2_cache() {
        // The UNet's 64² attention at 512² (2 images × 8 heads, 4096 queries and keys).
        assert_eq!(block_rows_within(16, 4096, 4096, 1, 512 << 10), 96);
        assert_eq!(block_rows_within(16, 4096, 4096, 1, 1 << 20), 192);
        assert_eq!(
            block_rows_within(16, 4096, 4096, 1, 64 << 10),
            MIN_BLOCK_ROWS
        );
        // Shorter key rows fit more queries, up to the cap.
        assert_eq!(block_rows_within(16, 1024, 1024, 1, 512 << 10), 192);
        // Work for every thread comes first.
        assert_eq!(block_rows_within(2, 256, 256, 8, 1 << 20), MIN_BLOCK_ROWS);
    }

    #[test]
    fn amx_score_blocks_take_a_quarter_of_the_level_2_cache() {
        // 2 MiB L2 (Sapphire Rapids): 4096 keys → 512 KiB blocks of 32 rows.
        assert_eq!(amx_block_rows_within(4096, 2 << 20), 32);
        // Fewer keys: more rows, up to 64.
        assert_eq!(amx_block_rows_within(1024, 2 << 20), 64);
        assert_eq!(amx_block_rows_within(77, 2 << 20), 64);
        // Never under one 32-row panel.
        assert_eq!(amx_block_rows_within(16384, 2 << 20), 32);
        assert_eq!(amx_block_rows_within(4096, 0), 32);
    }
}

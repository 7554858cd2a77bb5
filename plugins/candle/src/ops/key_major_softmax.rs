//! The softmax step of the fused CPU attention, on a score block stored key-major
//! (`[keys, queries]`, one row per key): every operation runs along a row of queries, so it
//! vectorises with no horizontal reductions, and the block is already in the layout the
//! following product with the values reads.

use super::fast_math::{self, Fused, MulAdd, Unfused};

/// Replaces each column `j` of `scores` (`[keys, queries]`, row-major) by
/// `exp(scale · (s − max_j))`, where `max_j` is over the keys query `j` may see, and writes
/// the column sums to `sums` (normalising is left to the caller, on the much smaller
/// output). With `causal_first = Some(q0)`, column `j` is query `q0 + j` and keys after it
/// get 0.
///
/// # Panics
/// If `scores` is not a whole number of rows of `sums.len()` queries.
pub fn exp_columns_in_place(
    scores: &mut [f32],
    scale: f32,
    causal_first: Option<usize>,
    sums: &mut [f32],
) {
    exp_columns_into(scores, scale, causal_first, sums, None)
}

/// The exponentials of [`exp_columns_in_place`] rounded to bf16 as pairs of rows
/// (`paired[p·queries + j]` holds keys `2p` and `2p + 1` of query `j`: the layout of
/// [`PairedRows`](crate::gemm::PairedRows)), for a following product with bf16 inputs,
/// and the column sums of the unrounded values. `scores` is left as scratch: on CPUs with
/// AVX512-BF16 (the only ones whose products read the pairs) the unmasked softmax writes
/// each pair of rows straight from the registers it computed them in, never as f32
/// (elsewhere, and with the causal mask, it holds the in-place exponentials).
///
/// # Panics
/// As [`exp_columns_in_place`], or if `paired` does not hold `ceil(keys/2) · queries` words.
pub fn exp_columns_paired(
    scores: &mut [f32],
    scale: f32,
    causal_first: Option<usize>,
    sums: &mut [f32],
    paired: &mut [u32],
) {
    let queries = sums.len().max(1);
    assert_eq!(
        paired.len(),
        (scores.len() / queries).div_ceil(2) * queries,
        "softmax: paired output size"
    );
    exp_columns_into(scores, scale, causal_first, sums, Some(paired))
}

/// `2^(slope·s − shift)` of the `live` lanes of sixteen scores from `at` (zero-filled
/// past them): `exp_row`'s arithmetic, one fused multiply-subtract and the exponential.
///
/// # Safety
/// The CPU must support AVX-512F; `at` holds the live lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn exp_lanes(
    at: *const f32,
    live: std::arch::x86_64::__mmask16,
    slope: std::arch::x86_64::__m512,
    shift: std::arch::x86_64::__m512,
) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let v = _mm512_maskz_loadu_ps(live, at);
    fast_math::exp2_nonpositive_avx512(_mm512_fmsub_ps(v, slope, shift))
}

/// The unmasked [`exp_columns_paired`] with AVX-512 intrinsics: the same maxima, the
/// same exponentials ([`fast_math::exp2_nonpositive_avx512`], bit for bit the `Fused`
/// scalar form) and the same order of additions into the sums as [`exp_columns`], but
/// each pair of keys' sixteen exponentials per column group is rounded and interleaved in
/// registers and stored as words once, where the general body stores both rows as f32
/// and reads them back to pair them. On a Xeon with AMX, where the products are fast, the
/// pairing had been about a fifth of the softmax's time.
///
/// # Safety
/// The CPU must support AVX-512F and AVX512-BF16; `scores` holds whole rows of
/// `sums.len() > 0` queries and `paired` `ceil(keys/2)·queries` words.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn exp_pairs_avx512(scores: &[f32], scale: f32, sums: &mut [f32], paired: &mut [u32]) {
    use std::arch::x86_64::*;
    let queries = sums.len();
    let keys = scores.len() / queries;
    let slope = scale * std::f32::consts::LOG2_E;
    // The maxima go where the sums will: each group's are read before its sums are stored.
    let maxima = sums;
    column_maxima(scores, None, maxima);
    let slope_v = _mm512_set1_ps(slope);
    // Sixteen columns at a time over every key, so each column's sum stays in a register
    // and takes its terms in key order.
    for j in (0..queries).step_by(16) {
        let live = crate::gemm::bf16::first_lanes(queries - j);
        let shift = _mm512_mul_ps(_mm512_maskz_loadu_ps(live, maxima.as_ptr().add(j)), slope_v);
        let row = scores.as_ptr().add(j);
        let exp_of = |key: usize| exp_lanes(row.add(key * queries), live, slope_v, shift);
        let mut sum = _mm512_setzero_ps();
        for p in 0..keys / 2 {
            let (ea, eb) = (exp_of(2 * p), exp_of(2 * p + 1));
            sum = _mm512_add_ps(sum, _mm512_add_ps(ea, eb));
            let words = crate::gemm::bf16::pair_words_avx512(ea, eb);
            _mm512_mask_storeu_epi32(paired.as_mut_ptr().add(p * queries + j).cast(), live, words);
        }
        if keys % 2 == 1 {
            let e = exp_of(keys - 1);
            sum = _mm512_add_ps(sum, e);
            let words = crate::gemm::bf16::pair_words_avx512(e, _mm512_setzero_ps());
            let at = (keys / 2) * queries + j;
            _mm512_mask_storeu_epi32(paired.as_mut_ptr().add(at).cast(), live, words);
        }
        _mm512_mask_storeu_ps(maxima.as_mut_ptr().add(j), live, sum);
    }
}

fn exp_columns_into(
    scores: &mut [f32],
    scale: f32,
    causal_first: Option<usize>,
    sums: &mut [f32],
    paired: Option<&mut [u32]>,
) {
    let queries = sums.len();
    assert!(
        queries > 0 && scores.len().is_multiple_of(queries),
        "softmax: ragged score block"
    );
    // The unmasked paired softmax has its own body where the CPU can pair in registers.
    #[cfg(target_arch = "x86_64")]
    let paired = match paired {
        Some(words) if causal_first.is_none() && crate::gemm::bf16::bf16_kernel_available() => {
            // SAFETY: the CPU has the instructions; the sizes were checked (here and by
            // `exp_columns_paired`).
            return unsafe { exp_pairs_avx512(scores, scale, sums, words) };
        }
        other => other,
    };
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { exp_columns_avx512(scores, scale, causal_first, sums, paired) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { exp_columns_avx2(scores, scale, causal_first, sums, paired) };
        }
    }
    exp_columns::<Unfused>(scores, scale, causal_first, sums, paired)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_columns_avx512(
    s: &mut [f32],
    scale: f32,
    causal: Option<usize>,
    sums: &mut [f32],
    paired: Option<&mut [u32]>,
) {
    exp_columns::<Fused>(s, scale, causal, sums, paired)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_columns_avx2(
    s: &mut [f32],
    scale: f32,
    causal: Option<usize>,
    sums: &mut [f32],
    paired: Option<&mut [u32]>,
) {
    exp_columns::<Fused>(s, scale, causal, sums, paired)
}

/// First query column that may see key `key`.
fn first_visible(key: usize, causal_first: Option<usize>) -> usize {
    causal_first.map_or(0, |q0| key.saturating_sub(q0))
}

/// Each column's maximum over the keys its query may see, into `maxima` (one per query).
/// Inlined into each caller so it is vectorised for the caller's instruction set.
#[inline(always)]
fn column_maxima(scores: &[f32], causal_first: Option<usize>, maxima: &mut [f32]) {
    let queries = maxima.len();
    maxima.fill(f32::NEG_INFINITY);
    for (key, row) in scores.chunks_exact(queries).enumerate() {
        let j0 = first_visible(key, causal_first).min(queries);
        // A maximum of values, not a store on a condition: the compiler turns the latter
        // into masked stores, which take a dozen cycles each on AMD's AVX2 cores.
        for (m, &v) in maxima[j0..].iter_mut().zip(&row[j0..]) {
            *m = m.max(v);
        }
    }
}

/// The body, inlined into each instruction-set wrapper so it is vectorised for it.
#[inline(always)]
fn exp_columns<M: MulAdd>(
    scores: &mut [f32],
    scale: f32,
    causal_first: Option<usize>,
    sums: &mut [f32],
    mut paired: Option<&mut [u32]>,
) {
    let queries = sums.len();
    let keys = scores.len() / queries;
    // exp(scale·(s − max)) = 2^(slope·s − slope·max): the exponentials are taken in base 2,
    // whose range reduction is cheaper (see `fast_math::exp2_nonpositive_with`).
    let slope = scale * std::f32::consts::LOG2_E;
    // The column maxima, kept in `sums` until the exponentials need it.
    let shifts = sums;
    column_maxima(scores, causal_first, shifts);
    // Every query sees key 0, so each maximum is finite.
    let mut maxima = [0f32; 256];
    let mut start = 0;
    while start < queries {
        // Process at most 256 columns at a time so the maxima live on the stack.
        let len = (queries - start).min(maxima.len());
        let cols = start..start + len;
        for (m, s) in maxima.iter_mut().zip(&shifts[cols.clone()]) {
            *m = *s * slope;
        }
        let maxima = &maxima[..len];
        let sums = &mut shifts[cols.clone()];
        sums.fill(0.0);
        let visible =
            |key: usize| first_visible(key, causal_first).clamp(start, start + len) - start;
        // Two keys at a time: two independent chains of the exponential's polynomial per
        // column keep the FP units busy where one chain would wait on its own latency.
        let mut pairs = scores.chunks_exact_mut(2 * queries);
        for (pair, rows) in pairs.by_ref().enumerate() {
            let (a, b) = rows.split_at_mut(queries);
            let (ja, jb) = (visible(2 * pair), visible(2 * pair + 1));
            let (a, b) = (&mut a[cols.clone()], &mut b[cols.clone()]);
            a[..ja].fill(0.0);
            b[..jb].fill(0.0);
            // Keys later in the order see no more queries than earlier ones: ja ≤ jb.
            exp_row::<M>(&mut a[ja..jb], &maxima[ja..jb], &mut sums[ja..jb], slope);
            for (((va, vb), &m), s) in a[jb..]
                .iter_mut()
                .zip(b[jb..].iter_mut())
                .zip(&maxima[jb..])
                .zip(sums[jb..].iter_mut())
            {
                let ea = fast_math::exp2_nonpositive_with::<M>(M::mul_add(*va, slope, -m));
                let eb = fast_math::exp2_nonpositive_with::<M>(M::mul_add(*vb, slope, -m));
                *va = ea;
                *vb = eb;
                *s += ea + eb;
            }
            if let Some(out) = paired.as_deref_mut() {
                let words = &mut out[pair * queries + start..][..len];
                crate::gemm::bf16::pair_two_rows(a, Some(&*b), words);
            }
        }
        let last = pairs.into_remainder();
        if !last.is_empty() {
            let j0 = visible(keys - 1);
            let row = &mut last[cols.clone()];
            row[..j0].fill(0.0);
            exp_row::<M>(&mut row[j0..], &maxima[j0..], &mut sums[j0..], slope);
            if let Some(out) = paired.as_deref_mut() {
                let words = &mut out[(keys / 2) * queries + start..][..len];
                crate::gemm::bf16::pair_two_rows(row, None, words);
            }
        }
        start += len;
    }
}

/// `row[j] = 2^(slope · row[j] − maxima[j])`, added to `sums[j]`.
#[inline(always)]
fn exp_row<M: MulAdd>(row: &mut [f32], maxima: &[f32], sums: &mut [f32], slope: f32) {
    for ((v, &m), s) in row.iter_mut().zip(maxima).zip(sums.iter_mut()) {
        let e = fast_math::exp2_nonpositive_with::<M>(M::mul_add(*v, slope, -m));
        *v = e;
        *s += e;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::bf16::to_bf16_bits;

    /// The paired output is the in-place exponentials rounded to bf16, two keys a word
    /// (the last, odd key with a zero high half), and the sums are the in-place ones to
    /// the bit: over more than one 256-column chunk and a last group of fewer than 16
    /// columns, with and without the causal mask (on CPUs with AVX512-BF16 the unmasked
    /// case runs the intrinsics path, elsewhere the general one).
    #[test]
    fn paired_output_is_the_rounded_exponentials() {
        let (keys, queries) = (7, 300);
        let scores: Vec<f32> = (0..keys * queries)
            .map(|i| ((i * 7919 % 1000) as f32 / 100.0) - 5.0)
            .collect();
        for causal in [None, Some(2)] {
            let (mut plain, mut sums) = (scores.clone(), vec![0f32; queries]);
            exp_columns_in_place(&mut plain, 0.3, causal, &mut sums);
            let (mut twin, mut twin_sums) = (scores.clone(), vec![0f32; queries]);
            let mut paired = vec![u32::MAX; keys.div_ceil(2) * queries];
            exp_columns_paired(&mut twin, 0.3, causal, &mut twin_sums, &mut paired);
            assert_eq!(sums, twin_sums);
            for (p, row) in paired.chunks_exact(queries).enumerate() {
                for (j, &w) in row.iter().enumerate() {
                    let lo = to_bf16_bits(plain[2 * p * queries + j]);
                    let hi = if 2 * p + 1 < keys {
                        to_bf16_bits(plain[(2 * p + 1) * queries + j])
                    } else {
                        0
                    };
                    assert_eq!(
                        w,
                        u32::from(lo) | (u32::from(hi) << 16),
                        "key pair {p}, query {j}"
                    );
                }
            }
        }
    }
}

//! The softmax step of the fused CPU attention, on a score block stored key-major
//! (`[keys, queries]`, one row per key): every operation runs along a row of queries, so it
//! vectorises with no horizontal reductions, and the block is already in the layout the
//! following product with the values reads.

use super::fast_math;

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
    let queries = sums.len();
    assert!(
        queries > 0 && scores.len().is_multiple_of(queries),
        "softmax: ragged score block"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F.
            return unsafe { exp_columns_avx512(scores, scale, causal_first, sums) };
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA.
            return unsafe { exp_columns_avx2(scores, scale, causal_first, sums) };
        }
    }
    exp_columns(scores, scale, causal_first, sums)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_columns_avx512(s: &mut [f32], scale: f32, causal: Option<usize>, sums: &mut [f32]) {
    exp_columns(s, scale, causal, sums)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_columns_avx2(s: &mut [f32], scale: f32, causal: Option<usize>, sums: &mut [f32]) {
    exp_columns(s, scale, causal, sums)
}

/// First query column that may see key `key`.
fn first_visible(key: usize, causal_first: Option<usize>) -> usize {
    causal_first.map_or(0, |q0| key.saturating_sub(q0))
}

/// The body, inlined into each instruction-set wrapper so it is vectorised for it.
#[inline(always)]
fn exp_columns(scores: &mut [f32], scale: f32, causal_first: Option<usize>, sums: &mut [f32]) {
    let queries = sums.len();
    // The column maxima, kept in `sums` until the exponentials need it.
    let shifts = sums;
    shifts.fill(f32::NEG_INFINITY);
    for (key, row) in scores.chunks_exact(queries).enumerate() {
        let j0 = first_visible(key, causal_first).min(queries);
        for (m, &v) in shifts[j0..].iter_mut().zip(&row[j0..]) {
            *m = if v > *m { v } else { *m };
        }
    }
    // Every query sees key 0, so each maximum is finite.
    let mut maxima = [0f32; 256];
    let mut start = 0;
    while start < queries {
        // Process at most 256 columns at a time so the maxima live on the stack.
        let len = (queries - start).min(maxima.len());
        let cols = start..start + len;
        for (m, s) in maxima.iter_mut().zip(&shifts[cols.clone()]) {
            *m = *s * scale;
        }
        let maxima = &maxima[..len];
        let sums = &mut shifts[cols.clone()];
        sums.fill(0.0);
        for (key, row) in scores.chunks_exact_mut(queries).enumerate() {
            let j0 = first_visible(key, causal_first).clamp(start, start + len) - start;
            let row = &mut row[cols.clone()];
            row[..j0].fill(0.0);
            for ((v, &m), s) in row[j0..]
                .iter_mut()
                .zip(&maxima[j0..])
                .zip(sums[j0..].iter_mut())
            {
                let e = fast_math::exp(*v * scale - m);
                *v = e;
                *s += e;
            }
        }
        start += len;
    }
}

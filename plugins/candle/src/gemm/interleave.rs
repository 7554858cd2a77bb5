//! Interleaving `W` rows into a panel, `dst[k·W + i] = rows[i][k]`: how a row-major
//! left operand (a convolution's weight, a linear layer's input) and a transposed right
//! operand (a linear layer's `[out, in]` weight) are laid out for the microkernels.
//!
//! It is a transposition, and done one value at a time it is bound by the stores: about
//! one value per cycle. Packing a weight for a few rows of activations (the text
//! encoder's 77 tokens, the UNet's 8² level) is little arithmetic per value packed, and on
//! the 2-core Zen 3 it was a quarter of the text encoder's time and 5 % of a 512² step.
//! With AVX2 each group of eight rows is read eight depths at a time and turned by an
//! 8 × 8 register transpose into eight vectors, one per depth, each stored whole (or its
//! first four or six lanes for the 12- and 6-row panels' last group); bf16 rows widen
//! exactly as they are loaded. Elsewhere, and for the depths past the last whole eight,
//! the values go one by one. From a source in cache that is 3× as fast (0.35 → 0.11 ns a
//! value on the Zen 3); from memory the prefetch below does what is left to gain.
//!
//! The bf16 kernels' panels interleave 32-bit words (bf16 pairs) the same way
//! ([`interleave_words`]): pairing a bf16 weight in 192 × 512 blocks went from 0.32–0.37
//! to 0.25–0.29 ns a value on the Zen 3 (`examples/gemm_bench.rs`, builds alternating).

use super::operand::Element;

/// `dst[k·W + i] = rows[i][k].widen()` for every depth `k` of the (equally long) rows.
#[inline]
pub(super) fn interleave_rows<const W: usize, T: Element>(rows: [&[T]; W], dst: &mut [f32]) {
    check_panel(&rows, dst.len());
    let done = by_eights(&rows, dst);
    one_by_one(&rows, done, dst, T::widen);
}

/// `dst[k·W + i] = rows[i][k]` for 32-bit words (bf16 pairs, for the bf16 kernels'
/// panels): the same transposition, bit for bit.
#[inline]
pub(super) fn interleave_words<const W: usize>(rows: [&[u32]; W], dst: &mut [u32]) {
    check_panel(&rows, dst.len());
    #[cfg(target_arch = "x86_64")]
    let done = if is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is present, and the lengths were checked above; the lanes are
        // moved as bits, never computed on.
        unsafe { x86::interleave::<W, u32>(&rows, dst.as_mut_ptr().cast()) }
    } else {
        0
    };
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    one_by_one(&rows, done, dst, |w| w);
}

/// Panics unless the rows are equally long and a panel of `panel_len` holds them.
fn check_panel<const W: usize, T>(rows: &[&[T]; W], panel_len: usize) {
    let kc = rows[0].len();
    assert!(
        rows.iter().all(|r| r.len() == kc) && panel_len >= kc * W,
        "interleave: rows of unequal length or too small a panel"
    );
}

/// The whole eights of depths through AVX2 where the CPU has it (f32 or bf16 rows); how
/// many depths that was.
#[inline]
fn by_eights<const W: usize, T: Element>(rows: &[&[T]; W], dst: &mut [f32]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        let out = dst.as_mut_ptr();
        // SAFETY (both calls): AVX2 is present, and the caller checked the lengths.
        if T::as_f32(rows[0]).is_some() {
            let rows: [&[f32]; W] = std::array::from_fn(|i| T::as_f32(rows[i]).unwrap());
            return unsafe { x86::interleave::<W, f32>(&rows, out) };
        }
        if T::as_bf16(rows[0]).is_some() {
            let rows: [&[half::bf16]; W] = std::array::from_fn(|i| T::as_bf16(rows[i]).unwrap());
            return unsafe { x86::interleave::<W, half::bf16>(&rows, out) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (rows, dst);
    0
}

/// The depths from `from` on, one value at a time, each converted by `value`.
fn one_by_one<const W: usize, S: Copy, D>(
    rows: &[&[S]; W],
    from: usize,
    dst: &mut [D],
    value: impl Fn(S) -> D,
) {
    for k in from..rows[0].len() {
        for (i, row) in rows.iter().enumerate() {
            dst[k * W + i] = value(row[k]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Eight consecutive values as f32 lanes (or, for words, their bits in those lanes).
    pub(super) trait Load8: Copy {
        /// # Safety
        /// `p..p + 8` is readable; AVX2 is present.
        unsafe fn load8(p: *const Self) -> __m256;
    }

    impl Load8 for f32 {
        #[inline(always)]
        unsafe fn load8(p: *const f32) -> __m256 {
            _mm256_loadu_ps(p)
        }
    }

    impl Load8 for u32 {
        #[inline(always)]
        unsafe fn load8(p: *const u32) -> __m256 {
            _mm256_castsi256_ps(_mm256_loadu_si256(p.cast()))
        }
    }

    impl Load8 for half::bf16 {
        /// A bf16 is the high half of the f32 with the same value: widen each 16-bit lane
        /// to 32 bits and shift it up.
        #[inline(always)]
        unsafe fn load8(p: *const half::bf16) -> __m256 {
            let h = _mm_loadu_si128(p.cast());
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
        }
    }

    /// Rows become columns: lane `i` of output `j` is lane `j` of input `i`.
    #[inline(always)]
    unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        // Each 128-bit half now holds depths (0, 4), (1, 5), (2, 6), (3, 7) of rows 0–3
        // and 4–7.
        let q0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let q1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let q2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let q3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let q4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let q5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let q6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let q7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        [
            _mm256_permute2f128_ps::<0x20>(q0, q4),
            _mm256_permute2f128_ps::<0x20>(q1, q5),
            _mm256_permute2f128_ps::<0x20>(q2, q6),
            _mm256_permute2f128_ps::<0x20>(q3, q7),
            _mm256_permute2f128_ps::<0x31>(q0, q4),
            _mm256_permute2f128_ps::<0x31>(q1, q5),
            _mm256_permute2f128_ps::<0x31>(q2, q6),
            _mm256_permute2f128_ps::<0x31>(q3, q7),
        ]
    }

    /// Stores the first `live` lanes of `v` at `p`.
    #[inline(always)]
    unsafe fn store_lanes(p: *mut f32, v: __m256, live: usize) {
        match live {
            8 => _mm256_storeu_ps(p, v),
            4 => _mm_storeu_ps(p, _mm256_castps256_ps128(v)),
            6 => {
                _mm_storeu_ps(p, _mm256_castps256_ps128(v));
                let high = _mm256_extractf128_ps::<1>(v);
                _mm_storel_pd(p.add(4).cast(), _mm_castps_pd(high));
            }
            _ => {
                let mut lanes = [0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                std::ptr::copy_nonoverlapping(lanes.as_ptr(), p, live);
            }
        }
    }

    /// Depths ahead of the loads that each row is prefetched, once per cache line: a
    /// weight's rows come from memory, each at its own stride, more streams than the
    /// hardware prefetcher follows well. On the Zen 3, packing a 1280 × 11520 weight in
    /// 192 × 256 blocks (`examples/gemm_bench.rs`) took 0.42 ns a value without and 0.32–0.37
    /// with; two lines ahead did as well as four or eight.
    const AHEAD: usize = 32;

    /// Interleaves the rows' depths up to the last whole eight into `out` and returns
    /// how many depths that was.
    ///
    /// # Safety
    /// AVX2 is present; every row is `rows[0].len()` long and `out` holds `W` times that.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn interleave<const W: usize, T: Load8>(
        rows: &[&[T]; W],
        out: *mut f32,
    ) -> usize {
        let kc = rows[0].len();
        let whole = kc - kc % 8;
        for k0 in (0..whole).step_by(8) {
            if k0 % 16 == 0 {
                for row in rows {
                    _mm_prefetch::<_MM_HINT_T0>(row.as_ptr().wrapping_add(k0 + AHEAD).cast());
                }
            }
            for g in (0..W).step_by(8) {
                let live = (W - g).min(8);
                // Lanes past `live` read the group's first row again and are never stored.
                let v: [__m256; 8] = std::array::from_fn(|i| {
                    let row = rows[g + if i < live { i } else { 0 }];
                    T::load8(row.as_ptr().add(k0))
                });
                for (j, column) in transpose8(v).into_iter().enumerate() {
                    store_lanes(out.add((k0 + j) * W + g), column, live);
                }
            }
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use half::bf16;

    /// `got` holds `rows` (each `kc` long, laid end to end in `data`) interleaved `W`
    /// wide, as 32-bit patterns.
    fn assert_interleaved<const W: usize>(got: &[u32], data: &[u32], kc: usize, what: &str) {
        for k in 0..kc {
            for i in 0..W {
                assert_eq!(
                    got[k * W + i],
                    data[i * kc + k],
                    "{what}: W {W} kc {kc} k {k} i {i}"
                );
            }
        }
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn check<const W: usize>() {
        for kc in [1, 7, 8, 9, 16, 23, 384, 389] {
            let data: Vec<f32> = (0..W * kc).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
            let rows: [&[f32]; W] = std::array::from_fn(|i| &data[i * kc..(i + 1) * kc]);
            let mut got = vec![f32::NAN; W * kc + 3];
            interleave_rows(rows, &mut got);
            assert_interleaved::<W>(&bits(&got), &bits(&data), kc, "f32");
            assert!(
                got[W * kc..].iter().all(|v| v.is_nan()),
                "wrote past the panel"
            );
            let halves: Vec<bf16> = data.iter().map(|&v| bf16::from_f32(v)).collect();
            let rows: [&[bf16]; W] = std::array::from_fn(|i| &halves[i * kc..(i + 1) * kc]);
            interleave_rows(rows, &mut got);
            let widened: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
            assert_interleaved::<W>(&bits(&got), &bits(&widened), kc, "bf16");
        }
    }

    fn check_words<const W: usize>() {
        for kc in [1, 8, 13, 256] {
            // Every bit pattern kind, NaN payloads included, must come through unchanged.
            let data: Vec<u32> = (0..W * kc)
                .map(|i| {
                    let bits = (i as u32).wrapping_mul(0x9E37_79B9);
                    // Every third word a NaN with a payload.
                    if i.is_multiple_of(3) {
                        bits | 0x7F80_0001
                    } else {
                        bits
                    }
                })
                .collect();
            let rows: [&[u32]; W] = std::array::from_fn(|i| &data[i * kc..(i + 1) * kc]);
            let mut got = vec![0xDEAD_BEEF; W * kc + 2];
            interleave_words(rows, &mut got);
            assert_interleaved::<W>(&got, &data, kc, "words");
            assert_eq!(got[W * kc..], [0xDEAD_BEEF; 2], "wrote past the panel");
        }
    }

    /// The pair panels' widths (16 and 32 for AVX512-BF16 and AMX).
    #[test]
    fn word_panels_move_every_bit() {
        check_words::<3>();
        check_words::<16>();
        check_words::<32>();
    }

    /// Every panel width the kernels use (6 and 16 for AVX2, 12 and 32 for AVX-512, 4 and
    /// 16 for the portable kernel) and a few odd ones, against the definition.
    #[test]
    fn panels_hold_each_row_at_its_lane() {
        check::<1>();
        check::<4>();
        check::<5>();
        check::<6>();
        check::<12>();
        check::<16>();
        check::<32>();
    }
}

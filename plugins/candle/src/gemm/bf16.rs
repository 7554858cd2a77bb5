//! Products with bf16 inputs and f32 accumulation, for CPUs with AVX512-BF16.
//!
//! `vdpbf16ps` multiplies pairs of bf16 values and adds both products to one f32 lane, at the
//! same instruction rate as an f32 FMA: twice the arithmetic per cycle. The packed f32
//! panels of the ordinary path are re-laid as such pairs (two consecutive depths of a line
//! in one 32-bit word), rounded to nearest even as torch and the CPU's own conversion do.
//! Only the operands are rounded; sums, biases and everything between layers stay f32.
//!
//! A CPU without bf16 arithmetic (an AVX2-only x86, AVX-512 without BF16, other
//! architectures) would gain nothing from rounding its operands: its products would cost
//! what f32 ones do and lose precision. There [`Precision::Bf16`] keeps only the weights in
//! bf16 (half the memory, widened exactly to f32 as they are packed) and multiplies in f32,
//! Winograd's convolutions included, so its results are those of the rounded weights alone.

/// Which arithmetic the matrix products use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// f32 inputs and sums (the reference arithmetic).
    #[default]
    F32,
    /// Weights resident in bf16 (half the memory) on every CPU; where the CPU has bf16
    /// arithmetic (AMX, AVX512-BF16), every product's inputs rounded to bf16 with sums in
    /// f32: about twice as fast, with the inputs' relative error of 2⁻⁹.
    Bf16,
}

impl Precision {
    /// The faster precision on this CPU: bf16 where it has bf16 arithmetic, f32 elsewhere
    /// (there bf16 saves memory, not time).
    pub fn fastest() -> Precision {
        if Precision::Bf16.rounds_products() {
            Precision::Bf16
        } else {
            Precision::F32
        }
    }

    /// Whether the products round their inputs to bf16 and run on a bf16 kernel: bf16 on
    /// a CPU with bf16 arithmetic. Otherwise they are f32 products (in bf16, of the bf16
    /// weights widened exactly).
    pub fn rounds_products(self) -> bool {
        self == Precision::Bf16 && super::Bf16Kernel::detect().is_some()
    }
}

/// AVX-512F with the BF16 extension (Zen 4 and later, Intel Cooper Lake / Sapphire Rapids).
pub fn bf16_kernel_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `x` rounded to bf16 (the upper 16 bits of an f32), ties to even; NaN stays NaN.
#[inline]
pub fn to_bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    let rounding = 0x7FFF + ((bits >> 16) & 1);
    (bits.wrapping_add(rounding) >> 16) as u16
}

/// Re-lays packed panels for the bf16 kernel. `src` holds panels of `kc` depths × `width`
/// lines (depth-major, as the f32 kernels read them); each panel becomes `ceil(kc/2)` groups
/// of `width` words, word `j` of group `p` holding line `j` at depths `2p` (low half) and
/// `2p + 1` (high half; zero past the end). A panel keeps its word offset (`index · kc ·
/// width`), so the same panel arithmetic finds it; `dst` may end after the last panel's
/// groups.
pub fn pair_panels(src: &[f32], width: usize, kc: usize, dst: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if bf16_kernel_available() {
        // SAFETY: the CPU has the instructions; the slices are checked inside.
        return unsafe { pair_panels_avx512(src, width, kc, dst) };
    }
    pair_panels_scalar(src, width, kc, dst)
}

/// Packs `data`'s lines `lines` (line `l`, depth `d` at `data[l·ld + d]`: the rows of a
/// row-major `A`, the columns of a transposed `B`) over depths `ks` straight into
/// [`pair_panels`]'s layout with `W`-line panels (panel `q` at word `q·panel_words`,
/// at least `W·ceil(kc/2)`: `W·kc` for that layout, less for AMX's): each line's
/// consecutive depths are already its consecutive pairs, so a line converts as one run
/// and the runs are interleaved. Lines past `lines.end` are zero.
///
/// # Panics
/// If `dst` is too short.
pub fn pair_panels_from_lines<const W: usize, T: super::Element>(
    data: &[T],
    ld: usize,
    lines: std::ops::Range<usize>,
    ks: std::ops::Range<usize>,
    panel_words: usize,
    dst: &mut [u32],
) {
    /// Pairs converted per line at a time (the depth is taken in slices this deep).
    const MAX_PAIRS: usize = super::KC_PAIRS / 2;
    let kc = ks.len();
    let kp = kc.div_ceil(2);
    assert!(
        panel_words >= kp * W
            && (lines.is_empty()
                || dst.len() >= (lines.len().div_ceil(W) - 1) * panel_words + kp * W),
        "pair_panels_from_lines: destination too short"
    );
    let mut runs = [[0u32; MAX_PAIRS]; W];
    for (q, l0) in lines.clone().step_by(W).enumerate() {
        let panel = &mut dst[q * panel_words..][..kp * W];
        // Slices of an even number of depths, so pairs never straddle two of them.
        for p0 in (0..kp).step_by(MAX_PAIRS) {
            let pairs = MAX_PAIRS.min(kp - p0);
            let depths = ks.start + 2 * p0..(ks.start + 2 * (p0 + pairs)).min(ks.end);
            for (j, run) in runs.iter_mut().enumerate() {
                let line = l0 + j;
                if line < lines.end {
                    T::bf16_pairs(&data[line * ld..][depths.clone()], &mut run[..pairs]);
                } else {
                    run[..pairs].fill(0);
                }
            }
            let groups = &mut panel[p0 * W..(p0 + pairs) * W];
            super::interleave::interleave_words::<W>(
                std::array::from_fn(|j| &runs[j][..pairs]),
                groups,
            );
        }
    }
}

/// `out[j]` = `low[j]` and `high[j]` (0 without `high`) rounded to bf16, the first in the
/// low half: two rows of a matrix as one row of its pairs (see [`PairedRows`](super::PairedRows)).
///
/// # Panics
/// If the lengths differ.
pub fn pair_two_rows(low: &[f32], high: Option<&[f32]>, out: &mut [u32]) {
    assert!(
        low.len() == out.len() && high.is_none_or(|h| h.len() == low.len()),
        "pair_two_rows: lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    if bf16_kernel_available() {
        let n = low.len();
        // SAFETY: the CPU has the instructions; every row holds `n` values.
        unsafe { pair_two_rows_avx512(low.as_ptr(), high.map(<[f32]>::as_ptr), n, out) };
        return;
    }
    for (j, w) in out.iter_mut().enumerate() {
        let hi = high.map_or(0, |h| to_bf16_bits(h[j]));
        *w = u32::from(to_bf16_bits(low[j])) | (u32::from(hi) << 16);
    }
}

/// [`pair_two_rows`] sixteen words at a time.
///
/// # Safety
/// The CPU must support AVX-512F and AVX512-BF16; the rows hold `n` values, `out` `n` words.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pair_two_rows_avx512(
    low: *const f32,
    high: Option<*const f32>,
    n: usize,
    out: &mut [u32],
) {
    pair_group_avx512(low, high, n, n, out.as_mut_ptr());
}

/// Packs the block `data[ks, cols]` of a row-major f32 matrix (row stride `ld`) straight
/// into [`pair_panels`]'s layout with `width`-column panels (panel `q` at word
/// `q·panel_words`, at least `width·ceil(kc/2)`): rows `2p` and `2p + 1` of the block
/// become group `p`. Columns past
/// `cols.end` are zero. Returns false, packing nothing, where the CPU lacks AVX512-BF16
/// (the layout is only read by that kernel).
///
/// # Panics
/// If the block lies outside `data` or `dst` is too short.
pub fn pair_rows(
    data: &[f32],
    ld: usize,
    ks: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    width: usize,
    panel_words: usize,
    dst: &mut [u32],
) -> bool {
    if ks.is_empty() || cols.is_empty() {
        return true;
    }
    assert!(
        cols.end <= ld && (ks.end - 1) * ld + cols.end <= data.len(),
        "pair_rows: block outside the matrix"
    );
    let panels = cols.len().div_ceil(width);
    let kc = ks.len();
    assert!(
        panel_words >= kc.div_ceil(2) * width
            && dst.len() >= (panels - 1) * panel_words + kc.div_ceil(2) * width,
        "pair_rows: destination too short"
    );
    #[cfg(target_arch = "x86_64")]
    if bf16_kernel_available() {
        // SAFETY: the CPU has the instructions; the bounds are checked above.
        unsafe { pair_rows_avx512(data, ld, ks, cols, width, panel_words, dst) };
        return true;
    }
    false
}

/// [`pair_rows`], one group of pairs at a time ([`pair_group_avx512`]).
///
/// # Safety
/// The CPU must support AVX-512F and AVX512-BF16; the block and `dst` as checked by
/// [`pair_rows`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pair_rows_avx512(
    data: &[f32],
    ld: usize,
    ks: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    width: usize,
    panel_words: usize,
    dst: &mut [u32],
) {
    let kc = ks.len();
    for (q, c0) in cols.clone().step_by(width).enumerate() {
        let live = width.min(cols.end - c0);
        let panel = dst.as_mut_ptr().add(q * panel_words);
        for p in 0..kc.div_ceil(2) {
            let low = data.as_ptr().add((ks.start + 2 * p) * ld + c0);
            let high =
                (2 * p + 1 < kc).then(|| data.as_ptr().add((ks.start + 2 * p + 1) * ld + c0));
            pair_group_avx512(low, high, live, width, panel.add(p * width));
        }
    }
}

/// One group of a pair panel: word `j` of `width` holds `low[j]` and `high[j]` rounded to
/// bf16 by the CPU (the low depth in the low half; a zero high half without `high`), zero
/// from `live` on. Sixteen words per step; lanes past `live` are masked off (never read),
/// so their addresses may lie past the source.
///
/// # Safety
/// Only for callers compiled with AVX-512F and AVX512-BF16; `low` and `high` are readable
/// for `live` floats, `words` writable for `width`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) unsafe fn pair_group_avx512(
    low: *const f32,
    high: Option<*const f32>,
    live: usize,
    width: usize,
    words: *mut u32,
) {
    use std::arch::x86_64::*;
    for j in (0..width).step_by(16) {
        let load = first_lanes(live.saturating_sub(j));
        let lo = _mm512_maskz_loadu_ps(load, low.wrapping_add(j));
        let hi = match high {
            Some(high) => _mm512_maskz_loadu_ps(load, high.wrapping_add(j)),
            None => _mm512_setzero_ps(),
        };
        let pairs = pair_words_avx512(lo, hi);
        _mm512_mask_storeu_epi32(words.add(j).cast(), first_lanes(width - j), pairs);
    }
}

/// The mask of the first `n` of sixteen lanes (all of them from 16 on).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn first_lanes(n: usize) -> std::arch::x86_64::__mmask16 {
    ((1u32 << n.min(16)) - 1) as std::arch::x86_64::__mmask16
}

/// Sixteen words, word `j` holding `lo[j]` (low half) and `hi[j]` (high half) rounded to
/// bf16, ties to even.
///
/// # Safety
/// The CPU must support AVX-512F and AVX512-BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
#[inline]
pub(crate) unsafe fn pair_words_avx512(
    lo: std::arch::x86_64::__m512,
    hi: std::arch::x86_64::__m512,
) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    // Lanes 0–15 hold the low values' bf16, 16–31 the high ones': interleave.
    let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
    _mm512_permutexvar_epi16(PAIR_ORDER, both)
}

/// Word `j` of a pair group takes bf16 lane `j` (low half) and lane `16 + j` (high half).
#[cfg(target_arch = "x86_64")]
const PAIR_ORDER: std::arch::x86_64::__m512i = unsafe {
    std::mem::transmute::<[u16; 32], std::arch::x86_64::__m512i>([
        0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24, 9, 25, 10, 26, 11, 27, 12,
        28, 13, 29, 14, 30, 15, 31,
    ])
};

/// Whether `src_len` floats are whole panels whose pairs fit in `dst_len` words.
fn paired_len_fits(src_len: usize, width: usize, kc: usize, dst_len: usize) -> bool {
    let panel_len = kc * width;
    panel_len > 0
        && src_len.is_multiple_of(panel_len)
        && (src_len == 0 || dst_len >= src_len - panel_len + kc.div_ceil(2) * width)
}

/// [`pair_panels`] one word at a time.
fn pair_panels_scalar(src: &[f32], width: usize, kc: usize, dst: &mut [u32]) {
    let panel_len = kc * width;
    assert!(paired_len_fits(src.len(), width, kc, dst.len()));
    for (panel, out) in src.chunks_exact(panel_len).zip(dst.chunks_mut(panel_len)) {
        let mut depths = panel.chunks_exact(width);
        for group in out.chunks_exact_mut(width).take(kc.div_ceil(2)) {
            let low = depths.next().expect("at least one depth per group");
            match depths.next() {
                Some(high) => {
                    for ((w, &l), &h) in group.iter_mut().zip(low).zip(high) {
                        *w = u32::from(to_bf16_bits(l)) | (u32::from(to_bf16_bits(h)) << 16);
                    }
                }
                None => {
                    for (w, &l) in group.iter_mut().zip(low) {
                        *w = u32::from(to_bf16_bits(l));
                    }
                }
            }
        }
    }
}

/// [`pair_panels`] with the vector conversion: each panel is a row-major block of `kc`
/// depth rows, `width` wide, paired as [`pair_rows`] pairs a matrix's rows.
///
/// # Safety
/// The CPU must support AVX-512F and AVX512-BF16.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pair_panels_avx512(src: &[f32], width: usize, kc: usize, dst: &mut [u32]) {
    let panel_len = kc * width;
    assert!(paired_len_fits(src.len(), width, kc, dst.len()));
    for (panel, out) in src.chunks_exact(panel_len).zip(dst.chunks_mut(panel_len)) {
        pair_rows_avx512(panel, width, 0..kc, 0..width, width, panel_len, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_even() {
        // Values chosen from the bf16 definition: 8 significant bits.
        assert_eq!(to_bf16_bits(1.0), 0x3F80);
        // 1 + 2⁻⁸ is halfway between 1 and 1 + 2⁻⁷: ties go to the even neighbour, 1.
        assert_eq!(to_bf16_bits(1.0 + 2f32.powi(-8)), 0x3F80);
        // 1 + 3·2⁻⁸ is halfway between 1 + 2⁻⁷ (odd) and 1 + 2·2⁻⁷ (even).
        assert_eq!(to_bf16_bits(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
        // Just above a tie rounds up.
        assert_eq!(to_bf16_bits(1.0 + 2f32.powi(-8) + 2f32.powi(-20)), 0x3F81);
        assert_eq!(to_bf16_bits(-2.5), 0xC020);
        assert_eq!(to_bf16_bits(f32::INFINITY), 0x7F80);
        assert!(f32::from_bits(u32::from(to_bf16_bits(f32::NAN)) << 16).is_nan());
        // The largest finite f32 rounds up to infinity, as IEEE rounding does.
        assert_eq!(to_bf16_bits(f32::MAX), 0x7F80);
    }

    #[test]
    fn vector_and_scalar_pairing_agree() {
        // Two panels of 5 depths × 32 lines, with ties, tiny and huge values and a NaN-free
        // spread of magnitudes.
        let src: Vec<f32> = (0..2 * 5 * 32)
            .map(|i| ((i as f32) * 0.7381).sin() * 10f32.powi(i % 9 - 4))
            .chain([1.0 + 2f32.powi(-8), -3.0 * 2f32.powi(-9)])
            .collect();
        let src = &src[..2 * 5 * 32];
        let mut a = vec![0u32; src.len()];
        let mut b = vec![0u32; src.len()];
        pair_panels(src, 32, 5, &mut a);
        pair_panels_scalar(src, 32, 5, &mut b);
        assert_eq!(a, b);
        // Panels of 12 lines (the A side): a masked tail.
        let src = &src[..2 * 5 * 12];
        let (mut a, mut b) = (vec![0u32; src.len()], vec![0u32; src.len()]);
        pair_panels(src, 12, 5, &mut a);
        pair_panels_scalar(src, 12, 5, &mut b);
        assert_eq!(a, b);
    }

    /// Panels paired straight from the lines of a matrix (a weight's rows), against the
    /// definition: word `p` of line `j` holds depths `2p` and `2p + 1` rounded to bf16,
    /// zero past the depths and the lines.
    fn check_pairs_from_lines<const W: usize>() {
        let (lines_total, ld) = (W + 5, 530);
        let data: Vec<f32> = (0..lines_total * ld)
            .map(|i| ((i as f32) * 0.613).sin() * 10f32.powi(i as i32 % 7 - 3))
            .collect();
        let halves: Vec<half::bf16> = data.iter().map(|&v| half::bf16::from_f32(v)).collect();
        let bf = |x: f32| u32::from(to_bf16_bits(x));
        for (lines, ks) in [(0..lines_total, 3..520), (2..W + 1, 0..17), (1..4, 10..11)] {
            let kp = ks.len().div_ceil(2);
            let panel_words = kp * W + 3;
            let panels = lines.len().div_ceil(W);
            let mut want = vec![0u32; panels * panel_words];
            for q in 0..panels {
                for p in 0..kp {
                    for j in 0..W {
                        let line = lines.start + q * W + j;
                        if line >= lines.end {
                            continue;
                        }
                        let at = |d: usize| {
                            let d = ks.start + d;
                            if d < ks.end {
                                bf(data[line * ld + d])
                            } else {
                                0
                            }
                        };
                        want[q * panel_words + p * W + j] = at(2 * p) | at(2 * p + 1) << 16;
                    }
                }
            }
            let mut got = vec![0u32; want.len()];
            pair_panels_from_lines::<W, f32>(
                &data,
                ld,
                lines.clone(),
                ks.clone(),
                panel_words,
                &mut got,
            );
            assert_eq!(got, want, "f32 lines, W {W}, {lines:?} x {ks:?}");
            // bf16 lines hold the rounded values already.
            let mut got = vec![0u32; want.len()];
            pair_panels_from_lines::<W, half::bf16>(
                &halves,
                ld,
                lines.clone(),
                ks.clone(),
                panel_words,
                &mut got,
            );
            assert_eq!(got, want, "bf16 lines, W {W}, {lines:?} x {ks:?}");
        }
    }

    #[test]
    fn pairs_from_lines_follow_the_definition() {
        check_pairs_from_lines::<12>();
        check_pairs_from_lines::<16>();
        check_pairs_from_lines::<32>();
    }

    #[test]
    fn pairs_consecutive_depths_per_line() {
        // One panel of 3 depths × 2 lines: depth-major [d0l0, d0l1, d1l0, d1l1, d2l0, d2l1].
        let src = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dst = [0u32; 6];
        pair_panels(&src, 2, 3, &mut dst);
        let bf = |x: f32| u32::from(to_bf16_bits(x));
        assert_eq!(dst[0], bf(1.0) | bf(3.0) << 16);
        assert_eq!(dst[1], bf(2.0) | bf(4.0) << 16);
        assert_eq!(dst[2], bf(5.0));
        assert_eq!(dst[3], bf(6.0));
    }
}

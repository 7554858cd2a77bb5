//! The two operands of a product `C = A·B` as the blocked driver sees them: something that
//! can copy a block of itself into the packed panel layout the microkernels read.
//!
//! Packed `A` (rows `i`, depth `k`): panels of `MR` rows, each stored depth-major
//! (`panel[k·MR + i]`), so a kernel step broadcasts `MR` consecutive floats. Packed `B`
//! (depth `k`, columns `j`): panels of `NR` columns, each stored depth-major
//! (`panel[k·NR + j]`), so a kernel step loads `NR` consecutive floats as vectors. Rows or
//! columns past the end of the matrix are packed as zeros, which lets the kernels always run
//! full tiles.

use std::ops::Range;

/// The left operand `A[m, k]`.
pub trait PackA: Sync {
    /// Packs `A[rows, ks]` into `dst` as `ceil(rows/MR)` panels of `MR × ks.len()`.
    fn pack_a<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>, dst: &mut [f32]);

    /// The block `A[rows, ks]` already in packed form, when the operand keeps one (see
    /// [`super::PackedA`]); the driver then reads it in place instead of packing.
    fn prepacked<const MR: usize>(&self, _rows: Range<usize>, _ks: Range<usize>) -> Option<&[f32]> {
        None
    }

    /// The block `A[rows, ks]` already in the AMX kernel's tile layout (that of
    /// [`super::amx::pack_a_rows`]), when the operand keeps one ([`super::PackedA::for_products`]).
    fn prepacked_tiles(&self, _rows: Range<usize>, _ks: Range<usize>) -> Option<&[u32]> {
        None
    }

    /// `A[rows, ks]` as the AMX kernel can read it in place: the address of its first
    /// element and the bytes from one row to the next, when the operand is a bf16 matrix
    /// whose rows hold each depth pair in one 4-byte word (the tile layout's rows, at the
    /// matrix's own stride) and the block lies inside it.
    fn tile_rows(&self, _rows: Range<usize>, _ks: Range<usize>) -> Option<(*const u8, usize)> {
        None
    }

    /// Packs `A[rows, ks]` straight into the AMX kernel's layout (that of
    /// [`super::amx::pack_a_rows`]) when the operand can do so without f32 panels first;
    /// returns false when it cannot, and the driver packs and re-lays instead.
    fn pack_a_tiles(&self, _rows: Range<usize>, _ks: Range<usize>, _dst: &mut [u32]) -> bool {
        false
    }

    /// Packs `A[rows, ks]` straight into the AVX512-BF16 kernel's pair layout (that of
    /// [`super::bf16::pair_panels`] over `MR`-row panels) when the operand can do so
    /// without f32 panels first; returns false when it cannot.
    fn pack_a_pairs<const MR: usize>(
        &self,
        _rows: Range<usize>,
        _ks: Range<usize>,
        _dst: &mut [u32],
    ) -> bool {
        false
    }
}

/// The right operand `B[k, n]`.
pub trait PackB: Sync {
    /// Packs `B[ks, cols]` into `dst` as `ceil(cols/NR)` panels of `ks.len() × NR`.
    fn pack_b<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>, dst: &mut [f32]);

    /// The block `B[ks, cols]` already in packed form, when the operand keeps one (see
    /// [`super::PackedB`]); the driver then reads it in place instead of packing.
    fn prepacked<const NR: usize>(&self, _ks: Range<usize>, _cols: Range<usize>) -> Option<&[f32]> {
        None
    }

    /// Packs `B[ks, cols]` straight into the pair layout of the bf16 kernels (that of
    /// [`super::bf16::pair_panels`] over `NR`-column panels, `ceil(kc/2)` groups of `NR`
    /// words each) with panel `q` at word `q·panel_words` (`NR·kc` for AVX512-BF16, the
    /// tile-padded depth for AMX: groups past `ceil(kc/2)` are left as they are) when the
    /// operand can do so without f32 panels first; returns false when it cannot.
    fn pack_b_pairs<const NR: usize>(
        &self,
        _ks: Range<usize>,
        _cols: Range<usize>,
        _panel_words: usize,
        _dst: &mut [u32],
    ) -> bool {
        false
    }
}

/// What a matrix operand may hold: f32, or bf16 (weights kept resident in bf16 on the
/// bf16 path; they widen to f32 exactly while packed).
pub trait Element: Copy + Send + Sync + 'static {
    fn widen(self) -> f32;
    /// The slice itself when the elements are f32 (for packers with an f32-only fast path).
    fn as_f32(s: &[Self]) -> Option<&[f32]>;
    /// `src` in order as bf16 pairs (consecutive values share a word, the first in the low
    /// half), zero past its end; `dst` holds at least `ceil(src.len()/2)` words.
    fn bf16_pairs(src: &[Self], dst: &mut [u32]);
    /// The slice itself when the elements are bf16 (read in place by the AMX kernel).
    fn as_bf16(s: &[Self]) -> Option<&[half::bf16]>;
    /// `dst[i] = src[i].widen()` (the lengths match).
    #[inline(always)]
    fn widen_into(src: &[Self], dst: &mut [f32]) {
        match Self::as_f32(src) {
            Some(f) => dst.copy_from_slice(f),
            None => {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = v.widen();
                }
            }
        }
    }
}

impl Element for f32 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self
    }

    fn as_f32(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }

    fn bf16_pairs(src: &[f32], dst: &mut [u32]) {
        super::amx::f32_to_bf16_pairs(src, dst)
    }

    fn as_bf16(_: &[f32]) -> Option<&[half::bf16]> {
        None
    }
}

impl Element for half::bf16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        self.to_f32()
    }

    fn as_f32(_: &[half::bf16]) -> Option<&[f32]> {
        None
    }

    fn as_bf16(s: &[half::bf16]) -> Option<&[half::bf16]> {
        Some(s)
    }

    /// Already bf16: the bits pair up unchanged (on a little-endian CPU a word's low half
    /// is its first two bytes, so the pairs are the values' bytes as they lie: one copy).
    fn bf16_pairs(src: &[half::bf16], dst: &mut [u32]) {
        let whole = src.len() / 2;
        if cfg!(target_endian = "little") {
            let bytes: &[u8] = bytemuck::cast_slice(&src[..2 * whole]);
            bytemuck::cast_slice_mut::<u32, u8>(&mut dst[..whole]).copy_from_slice(bytes);
        } else {
            for (w, pair) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *w = u32::from(pair[0].to_bits()) | (u32::from(pair[1].to_bits()) << 16);
            }
        }
        let mut next = whole;
        if src.len() % 2 == 1 {
            dst[next] = u32::from(src[src.len() - 1].to_bits());
            next += 1;
        }
        dst[next..].fill(0);
    }
}

/// A matrix stored row by row: element `(r, c)` at `data[r·ld + c]`.
#[derive(Clone, Copy, Debug)]
pub struct RowMajor<'a, T: Element = f32> {
    pub data: &'a [T],
    pub ld: usize,
}

/// A matrix read through its transpose: element `(r, c)` at `data[c·ld + r]` (a linear
/// layer's `[out, in]` weight used as `Wᵀ`, or the keys of attention used as `Kᵀ`).
#[derive(Clone, Copy, Debug)]
pub struct Transposed<'a, T: Element = f32> {
    pub data: &'a [T],
    pub ld: usize,
}

impl<T: Element> PackA for RowMajor<'_, T> {
    fn pack_a<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>, dst: &mut [f32]) {
        pack_depth_contiguous::<MR, T>(self.data, self.ld, rows, ks, dst)
    }

    /// A bf16 matrix's rows are the tile layout's rows at its own stride: pairs start at
    /// even depths of even-length rows (little-endian words: the first value low).
    fn tile_rows(&self, rows: Range<usize>, ks: Range<usize>) -> Option<(*const u8, usize)> {
        let data = T::as_bf16(self.data)?;
        let inside = !rows.is_empty()
            && (rows.end - 1) * self.ld + ks.end <= data.len()
            && ks.end <= self.ld;
        let paired = self.ld.is_multiple_of(2) && ks.start.is_multiple_of(2);
        if !(inside && paired && cfg!(target_endian = "little")) {
            return None;
        }
        let first = &data[rows.start * self.ld + ks.start];
        Some((std::ptr::from_ref(first).cast::<u8>(), 2 * self.ld))
    }

    /// A row's depths are contiguous, which is the AMX layout's order: each row converts
    /// in place, with no transpose.
    fn pack_a_tiles(&self, rows: Range<usize>, ks: Range<usize>, dst: &mut [u32]) -> bool {
        super::amx::pack_a_rows_from_lines(self.data, self.ld, rows, ks, dst);
        true
    }

    /// Each row's consecutive depths are its consecutive pairs: converted row by row and
    /// interleaved, with no f32 panels in between (a bf16 weight's bits are copied as
    /// they are).
    fn pack_a_pairs<const MR: usize>(
        &self,
        rows: Range<usize>,
        ks: Range<usize>,
        dst: &mut [u32],
    ) -> bool {
        let panel_words = MR * ks.len();
        super::bf16::pair_panels_from_lines::<MR, T>(
            self.data,
            self.ld,
            rows,
            ks,
            panel_words,
            dst,
        );
        true
    }
}

/// Panels of `W` lines where each line's depths lie contiguous (line `l`, depth `k` at
/// `data[l·ld + k]`: the rows of a row-major `A`, the columns of a transposed `B`).
/// Lines past `lines.end` are zero.
#[inline]
fn pack_depth_contiguous<const W: usize, T: Element>(
    data: &[T],
    ld: usize,
    lines: Range<usize>,
    ks: Range<usize>,
    dst: &mut [f32],
) {
    let kc = ks.len();
    for (p, panel) in dst.chunks_exact_mut(W * kc).enumerate() {
        let l0 = lines.start + p * W;
        if l0 >= lines.end {
            break;
        }
        let live = W.min(lines.end - l0);
        let src = |i: usize| &data[(l0 + i) * ld + ks.start..][..kc];
        if live == W {
            super::interleave::interleave_rows::<W, T>(std::array::from_fn(src), panel);
        } else {
            for i in 0..W {
                if i < live {
                    for (k, &v) in src(i).iter().enumerate() {
                        panel[k * W + i] = v.widen();
                    }
                } else {
                    for k in 0..kc {
                        panel[k * W + i] = 0.0;
                    }
                }
            }
        }
    }
}

/// Panels of `W` lines where each depth's lines lie contiguous (line `l`, depth `k` at
/// `data[k·ld + l]`: the rows of a transposed `A`, the columns of a row-major `B`).
/// Lines past `lines.end` are zero.
#[inline]
fn pack_lines_contiguous<const W: usize, T: Element>(
    data: &[T],
    ld: usize,
    lines: Range<usize>,
    ks: Range<usize>,
    dst: &mut [f32],
) {
    let kc = ks.len();
    for (p, panel) in dst.chunks_exact_mut(W * kc).enumerate() {
        let l0 = lines.start + p * W;
        if l0 >= lines.end {
            break;
        }
        let live = W.min(lines.end - l0);
        if live == W {
            // Whole panels (nearly all of them) copy a fixed width, which compiles to a few
            // vector moves; a copy of run-time length became a `memmove` call per depth,
            // dearer than the 64 bytes it moved.
            for (k, depth) in panel.chunks_exact_mut(W).enumerate() {
                let src: &[T; W] = data[(ks.start + k) * ld + l0..][..W]
                    .try_into()
                    .expect("a whole panel's line");
                for (d, &v) in depth.iter_mut().zip(src) {
                    *d = v.widen();
                }
            }
            continue;
        }
        for (k, depth) in panel.chunks_exact_mut(W).enumerate() {
            let src = &data[(ks.start + k) * ld + l0..][..live];
            for (d, &v) in depth.iter_mut().zip(src) {
                *d = v.widen();
            }
            depth[live..].fill(0.0);
        }
    }
}

impl<T: Element> PackA for Transposed<'_, T> {
    fn pack_a<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>, dst: &mut [f32]) {
        pack_lines_contiguous::<MR, T>(self.data, self.ld, rows, ks, dst)
    }
}

impl<T: Element> PackB for RowMajor<'_, T> {
    fn pack_b<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>, dst: &mut [f32]) {
        pack_lines_contiguous::<NR, T>(self.data, self.ld, cols, ks, dst)
    }

    /// Two consecutive rows give one group of pairs (attention's probabilities, the
    /// right operand of its second product): converted and interleaved in one pass.
    fn pack_b_pairs<const NR: usize>(
        &self,
        ks: Range<usize>,
        cols: Range<usize>,
        panel_words: usize,
        dst: &mut [u32],
    ) -> bool {
        T::as_f32(self.data).is_some_and(|data| {
            super::bf16::pair_rows(data, self.ld, ks, cols, NR, panel_words, dst)
        })
    }
}

impl<T: Element> PackB for Transposed<'_, T> {
    fn pack_b<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>, dst: &mut [f32]) {
        pack_depth_contiguous::<NR, T>(self.data, self.ld, cols, ks, dst)
    }

    /// A column's depths are contiguous (a row of the `[out, in]` weight): as for a
    /// row-major `A`.
    fn pack_b_pairs<const NR: usize>(
        &self,
        ks: Range<usize>,
        cols: Range<usize>,
        panel_words: usize,
        dst: &mut [u32],
    ) -> bool {
        super::bf16::pair_panels_from_lines::<NR, T>(
            self.data,
            self.ld,
            cols,
            ks,
            panel_words,
            dst,
        );
        true
    }
}

/// The column matrix of a 2-D convolution, read straight from one image `[C, H, W]`
/// without materialising it: row `k = (c·kh + ky)·kw + kx` (the order of a `[out, C, kh,
/// kw]` weight flattened to `[out, K]`), column `n = oy·Wo + ox`, value
/// `x[c, oy·s + ky − p, ox·s + kx − p]` or 0 in the padding.
///
/// The image may be bf16 (an activation the backend keeps compact): its values widen
/// exactly as they are packed.
#[derive(Clone, Copy, Debug)]
pub struct Im2col<'a, T: Element = f32> {
    pub image: &'a [T],
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub out_height: usize,
    pub out_width: usize,
}

impl<T: Element> Im2col<'_, T> {
    /// Depth of the column matrix (`C · k · k`).
    pub fn depth(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }

    /// Columns of the column matrix (`Ho · Wo`).
    pub fn columns(&self) -> usize {
        self.out_height * self.out_width
    }

    /// Writes columns `n0..n0 + out.len()` of `tap`'s depth row into `out`.
    fn fill_row(&self, tap: &Tap, n0: usize, out: &mut [f32]) {
        let (ky, kx) = (tap.ky, tap.kx);
        let plane = &self.image[tap.plane..][..self.height * self.width];
        let (wo, s) = (self.out_width, self.stride);
        let mut n = n0;
        let mut j = 0;
        while j < out.len() {
            let (oy, ox) = (n / wo, n % wo);
            let seg = (out.len() - j).min(wo - ox);
            let dst = &mut out[j..j + seg];
            let iy = (oy * s + ky) as isize - self.padding as isize;
            if iy < 0 || iy >= self.height as isize {
                dst.fill(0.0);
            } else {
                let row = &plane[iy as usize * self.width..][..self.width];
                // Input column of output column `ox + t` is `first + t·s`.
                let first = (ox * s + kx) as isize - self.padding as isize;
                if s == 1 {
                    // Leading padding, the in-bounds run, trailing padding.
                    let lead = (-first).clamp(0, seg as isize) as usize;
                    let end =
                        (self.width as isize - first).clamp(lead as isize, seg as isize) as usize;
                    dst[..lead].fill(0.0);
                    if end > lead {
                        let src0 = (first + lead as isize) as usize;
                        T::widen_into(&row[src0..src0 + (end - lead)], &mut dst[lead..end]);
                    }
                    dst[end..].fill(0.0);
                } else {
                    for (t, d) in dst.iter_mut().enumerate() {
                        let ix = first + (t * s) as isize;
                        *d = if ix >= 0 && ix < self.width as isize {
                            row[ix as usize].widen()
                        } else {
                            0.0
                        };
                    }
                }
            }
            n += seg;
            j += seg;
        }
    }
}

impl<T: Element> PackB for Im2col<'_, T> {
    fn pack_b<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>, dst: &mut [f32]) {
        let kc = ks.len();
        let panels = self.panels::<NR>(cols);
        // Depth row by depth row, every panel: each pass reads one input row along its
        // length (panel by panel, the rows of every tap would be read a few floats at a
        // time, which the prefetcher cannot follow).
        for k in 0..kc {
            let tap = self.tap(ks.start + k);
            for (q, panel) in panels.iter().enumerate() {
                let row: &mut [f32; NR] = (&mut dst[q * NR * kc + k * NR..][..NR])
                    .try_into()
                    .expect("NR-wide row");
                self.fill_panel_row(&tap, panel, row);
            }
        }
    }

    fn pack_b_pairs<const NR: usize>(
        &self,
        ks: Range<usize>,
        cols: Range<usize>,
        panel_words: usize,
        dst: &mut [u32],
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if NR.is_multiple_of(16) && super::bf16::bf16_kernel_available() {
            let panels = cols.len().div_ceil(NR);
            let used = ks.len().div_ceil(2) * NR;
            assert!(
                panel_words >= used && dst.len() >= (panels - 1) * panel_words + used,
                "im2col pairs: block too short"
            );
            // SAFETY: the CPU has the instructions; `dst` holds every panel.
            unsafe { im2col_pairs_avx512::<NR, T>(self, ks, cols, panel_words, dst) };
            return true;
        }
        false
    }
}

/// [`PackB::pack_b`]'s panels of an [`Im2col`] straight in the AVX512-BF16 pair layout:
/// each two depth rows of a panel are filled as `pack_b` fills them (on the stack) and
/// rounded and interleaved at once, so the f32 block is never written.
///
/// # Safety
/// The CPU must support AVX-512F and AVX512-BF16; `dst` holds the block's panels
/// (`panel_words` apart).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn im2col_pairs_avx512<const NR: usize, T: Element>(
    im: &Im2col<'_, T>,
    ks: Range<usize>,
    cols: Range<usize>,
    panel_words: usize,
    dst: &mut [u32],
) {
    let kc = ks.len();
    let panels = im.panels::<NR>(cols);
    let (mut lo, mut hi) = ([0f32; NR], [0f32; NR]);
    // Pair by pair, every panel, as `pack_b` goes row by row.
    for p in 0..kc.div_ceil(2) {
        let tap_lo = im.tap(ks.start + 2 * p);
        let tap_hi = (2 * p + 1 < kc).then(|| im.tap(ks.start + 2 * p + 1));
        for (q, panel) in panels.iter().enumerate() {
            im.fill_panel_row(&tap_lo, panel, &mut lo);
            let high = tap_hi.map(|tap| {
                im.fill_panel_row(&tap, panel, &mut hi);
                hi.as_ptr()
            });
            let words = dst[q * panel_words + p * NR..][..NR].as_mut_ptr();
            super::bf16::pair_group_avx512(lo.as_ptr(), high, NR, NR, words);
        }
    }
}

/// One depth row of a convolution's column matrix: the channel plane it reads (offset
/// into the image) and the kernel position.
#[derive(Clone, Copy, Debug)]
struct Tap {
    plane: usize,
    ky: usize,
    kx: usize,
}

/// Where one `NR`-wide panel of the column matrix lies: its first column, how many of its
/// columns are inside the matrix, and that column's output position; `run` when stride 1
/// puts all its columns in one output row (each depth row is then one run of an input
/// row).
#[derive(Clone, Copy, Debug)]
struct PanelSpan {
    c0: usize,
    live: usize,
    oy: usize,
    ox: usize,
    run: bool,
}

impl<T: Element> Im2col<'_, T> {
    fn panels<const NR: usize>(&self, cols: Range<usize>) -> Vec<PanelSpan> {
        cols.clone()
            .step_by(NR)
            .map(|c0| {
                let live = NR.min(cols.end - c0);
                let (oy, ox) = (c0 / self.out_width, c0 % self.out_width);
                let run = self.stride == 1 && live == NR && ox + NR <= self.out_width;
                PanelSpan {
                    c0,
                    live,
                    oy,
                    ox,
                    run,
                }
            })
            .collect()
    }

    /// `tap`'s depth row of `panel`, zero past the matrix's last column.
    #[inline]
    fn fill_panel_row<const NR: usize>(&self, tap: &Tap, panel: &PanelSpan, row: &mut [f32; NR]) {
        if panel.run {
            self.fill_run::<NR>(tap, panel.oy, panel.ox, row);
        } else {
            self.fill_row(tap, panel.c0, &mut row[..panel.live]);
            row[panel.live..].fill(0.0);
        }
    }

    fn tap(&self, k: usize) -> Tap {
        let kk = self.kernel * self.kernel;
        Tap {
            plane: (k / kk) * self.height * self.width,
            ky: (k % kk) / self.kernel,
            kx: k % self.kernel,
        }
    }

    /// Stride 1: the `W` columns from output `(oy, ox)` on (one output row) of `tap`'s
    /// depth row, which read input row `oy + ky − p` from column `ox + kx − p` on.
    #[inline]
    fn fill_run<const W: usize>(&self, tap: &Tap, oy: usize, ox: usize, out: &mut [f32; W]) {
        let iy = (oy + tap.ky).wrapping_sub(self.padding);
        if iy >= self.height {
            *out = [0.0; W];
            return;
        }
        let row = &self.image[tap.plane + iy * self.width..][..self.width];
        let first = (ox + tap.kx) as isize - self.padding as isize;
        if first >= 0 && first as usize + W <= self.width {
            let first = first as usize;
            T::widen_into(&row[first..first + W], out);
        } else {
            for (t, o) in out.iter_mut().enumerate() {
                let ix = first + t as isize;
                *o = if ix >= 0 && (ix as usize) < self.width {
                    row[ix as usize].widen()
                } else {
                    0.0
                };
            }
        }
    }
}

/// A `rows × ld` matrix already rounded to bf16 and stored as pairs of rows: word
/// `p·ld + c` holds row `2p`, column `c` in its low half and row `2p + 1` in its high half
/// (zero past the last row). The attention's probabilities come out of its softmax this way
/// on the bf16 path, so the product with the values packs them with plain copies of words.
#[derive(Clone, Copy, Debug)]
pub struct PairedRows<'a> {
    pub words: &'a [u32],
    pub rows: usize,
    pub ld: usize,
}

impl PairedRows<'_> {
    /// The word of rows `2p`, `2p + 1` at column `c`.
    #[inline]
    fn word(&self, p: usize, c: usize) -> u32 {
        self.words[p * self.ld + c]
    }
}

impl PackB for PairedRows<'_> {
    /// Widened back to f32 (exactly: the values are bf16), for the f32 layouts.
    fn pack_b<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>, dst: &mut [f32]) {
        let kc = ks.len();
        for (q, panel) in dst.chunks_exact_mut(NR * kc).enumerate() {
            let c0 = cols.start + q * NR;
            if c0 >= cols.end {
                break;
            }
            let live = NR.min(cols.end - c0);
            for (d, line) in panel.chunks_exact_mut(NR).enumerate() {
                let k = ks.start + d;
                for (j, v) in line.iter_mut().enumerate() {
                    *v = if j < live {
                        let w = self.word(k / 2, c0 + j);
                        f32::from_bits(if k.is_multiple_of(2) {
                            w << 16
                        } else {
                            w & 0xFFFF_0000
                        })
                    } else {
                        0.0
                    };
                }
            }
        }
    }

    /// Blocks that start on a pair copy their groups word for word; a block ending
    /// between the two rows of a pair keeps only the low half of its last group.
    fn pack_b_pairs<const NR: usize>(
        &self,
        ks: Range<usize>,
        cols: Range<usize>,
        panel_words: usize,
        dst: &mut [u32],
    ) -> bool {
        if !ks.start.is_multiple_of(2) || ks.end > self.rows || cols.end > self.ld {
            return false;
        }
        let groups = ks.len().div_ceil(2);
        let cut_high = ks.len() % 2 == 1;
        assert!(
            panel_words >= groups * NR
                && dst.len() >= (cols.len().div_ceil(NR) - 1) * panel_words + groups * NR,
            "paired rows: block too short"
        );
        for (q, c0) in cols.clone().step_by(NR).enumerate() {
            let live = NR.min(cols.end - c0);
            for g in 0..groups {
                let p = ks.start / 2 + g;
                let out = &mut dst[q * panel_words + g * NR..][..NR];
                out[..live].copy_from_slice(&self.words[p * self.ld + c0..][..live]);
                out[live..].fill(0);
                if cut_high && g + 1 == groups {
                    out.iter_mut().for_each(|w| *w &= 0xFFFF);
                }
            }
        }
        true
    }
}

/// Columns `first..` of `operand`, as a matrix of their own: a product over a window of a
/// wide right operand (a convolution's output pixels, a few thousand at a time, so that
/// each window's f32 result is small before it is stored in bf16).
#[derive(Clone, Copy, Debug)]
pub struct ColumnsFrom<B> {
    pub operand: B,
    pub first: usize,
}

impl<B: PackB> PackB for ColumnsFrom<B> {
    fn pack_b<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>, dst: &mut [f32]) {
        let cols = cols.start + self.first..cols.end + self.first;
        self.operand.pack_b::<NR>(ks, cols, dst)
    }

    fn pack_b_pairs<const NR: usize>(
        &self,
        ks: Range<usize>,
        cols: Range<usize>,
        panel_words: usize,
        dst: &mut [u32],
    ) -> bool {
        let cols = cols.start + self.first..cols.end + self.first;
        self.operand.pack_b_pairs::<NR>(ks, cols, panel_words, dst)
    }
}

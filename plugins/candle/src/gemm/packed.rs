//! Operands packed once and reused by many products: the keys and values of one attention
//! head are multiplied with every block of queries, so packing them per block would cost
//! about as much as the products themselves (the depth of those products is only the head
//! width).

use super::amx::{depth_words, MR_AMX};
use super::operand::{PackA, PackB};
use super::{amx_block_depth, block_depth, Bf16Kernel, Isa, Precision, KC, KC_AMX};
use std::ops::Range;

#[cfg(target_arch = "x86_64")]
use super::kernels::x86;

/// Panel sizes of the kernel [`Isa::detect`] picks: `(MR, NR)`.
fn tile() -> (usize, usize) {
    match Isa::detect() {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (x86::MR_512, x86::NR_512),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (x86::MR_256, x86::NR_256),
        _ => (super::PORTABLE_MR, super::PORTABLE_NR),
    }
}

/// Where the elements of a whole matrix in panel layout live: for each block of the depth
/// ([`block_depth`]), all `ceil(len/panel)` panels of `panel` lines along the other
/// dimension, each depth-major. `A` and `B` share this form (their panels differ only in
/// which side is the line).
#[derive(Clone, Copy, Debug)]
struct Geometry {
    /// Depth (`k`).
    depth: usize,
    /// Lines along the panel dimension (`m` for `A`, `n` for `B`).
    len: usize,
    /// Lines per panel (`MR` or `NR`).
    panel: usize,
    /// Depth of the blocks (`block_depth(depth, KC)`, as the driver cuts them).
    block: usize,
}

impl Geometry {
    fn new(depth: usize, len: usize, panel: usize) -> Self {
        Self {
            depth,
            len,
            panel,
            block: block_depth(depth, KC),
        }
    }

    /// Lines rounded up to whole panels.
    fn width(&self) -> usize {
        self.len.next_multiple_of(self.panel)
    }

    /// Elements of the packed matrix.
    fn size(&self) -> usize {
        self.depth * self.width()
    }

    /// Index of the element at depth `k`, line `line`.
    #[inline(always)]
    fn offset(&self, k: usize, line: usize) -> usize {
        let pc = k - k % self.block;
        let kc = self.block.min(self.depth - pc);
        let p = line / self.panel;
        pc * self.width() + p * kc * self.panel + (k - pc) * self.panel + line % self.panel
    }

    /// The packed block for `lines` × `ks` in `data`, if it is laid out as the driver
    /// wants it.
    fn block<'d>(
        &self,
        data: &'d [f32],
        panel: usize,
        lines: Range<usize>,
        ks: Range<usize>,
    ) -> Option<&'d [f32]> {
        let whole_block = ks.start.is_multiple_of(self.block)
            && ks.end == (ks.start + self.block).min(self.depth);
        if panel != self.panel
            || !whole_block
            || !lines.start.is_multiple_of(panel)
            || lines.end > self.len
        {
            return None;
        }
        let kc = ks.len();
        let start = ks.start * self.width() + (lines.start / panel) * kc * panel;
        Some(&data[start..start + kc * lines.len().next_multiple_of(panel)])
    }

    /// Repacks `data` for a kernel with another panel size (tests run every kernel).
    fn repack(
        &self,
        data: &[f32],
        panel: usize,
        lines: Range<usize>,
        ks: Range<usize>,
        dst: &mut [f32],
    ) {
        let kc = ks.len();
        for (q, chunk) in dst.chunks_exact_mut(panel * kc).enumerate() {
            let l0 = lines.start + q * panel;
            if l0 >= lines.end {
                break;
            }
            for (k, row) in chunk.chunks_exact_mut(panel).enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    let line = l0 + j;
                    *v = if line < lines.end {
                        data[self.offset(ks.start + k, line)]
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// `dst` filled with zeros, as initialised floats.
fn zeroed(dst: &mut [std::mem::MaybeUninit<f32>]) -> &mut [f32] {
    dst.fill(std::mem::MaybeUninit::new(0.0));
    // SAFETY: every element was just written.
    unsafe { &mut *(dst as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) }
}

/// A whole matrix in panel layout, owning its elements.
#[derive(Clone, Debug)]
struct Panels {
    data: Vec<f32>,
    geometry: Geometry,
}

/// Floats of panels packed by one task of [`Panels::build`] (256 KiB: a chunk is zeroed
/// and then written while it is still in the level-2 cache).
const BUILD_CHUNK_FLOATS: usize = 1 << 16;
/// Smallest matrix [`Panels::build`] packs on more than one thread.
const PARALLEL_BUILD_FLOATS: usize = 1 << 18;

/// One chunk of a matrix in panel layout: whole panels of `lines` at the depths `ks`,
/// `floats` elements that follow the previous chunk's in storage.
struct ChunkPlan {
    ks: Range<usize>,
    lines: Range<usize>,
    floats: usize,
}

impl Geometry {
    /// The matrix cut into chunks of whole panels of one depth block, in storage order,
    /// each about `chunk_floats` (at least one panel).
    fn chunks(&self, chunk_floats: usize) -> Vec<ChunkPlan> {
        let mut chunks = Vec::new();
        for pc in (0..self.depth).step_by(self.block) {
            let ks = pc..(pc + self.block).min(self.depth);
            let chunk_lines = (chunk_floats / (ks.len() * self.panel)).max(1) * self.panel;
            for first in (0..self.len).step_by(chunk_lines) {
                let lines = first..(first + chunk_lines).min(self.len);
                let floats = ks.len() * lines.len().next_multiple_of(self.panel);
                chunks.push(ChunkPlan {
                    ks: ks.clone(),
                    lines,
                    floats,
                });
            }
        }
        chunks
    }
}

/// Fills one matrix of `geometry` per region (each of `geometry.size()` elements, in order),
/// with `fill(depth range, line range, dsts)` writing a chunk of every matrix at once
/// (`dsts[i]` is matrix `i`'s, zeroed). Each chunk of all the matrices together is about
/// [`BUILD_CHUNK_FLOATS`], zeroed just before it is filled, in cache: no pass over the
/// whole buffers, and every element initialised whatever the filler writes. Chunks run on
/// rayon's pool when the matrices are large.
fn fill_sharing_layout(
    geometry: Geometry,
    regions: Vec<&mut [std::mem::MaybeUninit<f32>]>,
    fill: impl Fn(Range<usize>, Range<usize>, &mut [&mut [f32]]) + Sync,
) {
    use rayon::prelude::*;
    let size = geometry.size();
    let count = regions.len().max(1);
    let chunks = geometry.chunks(BUILD_CHUNK_FLOATS / count);
    // Piece `c` of every region, gathered per chunk.
    let mut per_chunk: Vec<Vec<&mut [std::mem::MaybeUninit<f32>]>> =
        chunks.iter().map(|_| Vec::with_capacity(count)).collect();
    for mut region in regions {
        assert_eq!(region.len(), size, "gemm: packed region size");
        for (pieces, plan) in per_chunk.iter_mut().zip(&chunks) {
            let (piece, rest) = std::mem::take(&mut region).split_at_mut(plan.floats);
            region = rest;
            pieces.push(piece);
        }
        debug_assert!(region.is_empty(), "the chunks tile the matrix");
    }
    let fill_chunk = |(plan, pieces): (&ChunkPlan, Vec<&mut [std::mem::MaybeUninit<f32>]>)| {
        let mut dsts: Vec<&mut [f32]> = pieces.into_iter().map(zeroed).collect();
        fill(plan.ks.clone(), plan.lines.clone(), &mut dsts);
    };
    if count * size >= PARALLEL_BUILD_FLOATS && rayon::current_num_threads() > 1 {
        chunks.par_iter().zip(per_chunk).for_each(fill_chunk);
    } else {
        chunks.iter().zip(per_chunk).for_each(fill_chunk);
    }
}

impl Panels {
    /// Builds the panels with `pack(depth range, line range, dst)`, in `storage` (whose
    /// contents are overwritten), a chunk of whole panels of one depth block at a time, on
    /// rayon's pool when the matrix is large. The feed-forward packs its weights for every
    /// call (up to 52 MiB at the UNet's 1280-wide level): on one thread, with the whole
    /// buffer zeroed first, that left the other threads idle.
    fn build(
        depth: usize,
        len: usize,
        panel: usize,
        mut data: Vec<f32>,
        pack: impl Fn(Range<usize>, Range<usize>, &mut [f32]) + Sync,
    ) -> Self {
        let geometry = Geometry::new(depth, len, panel);
        let size = geometry.size();
        data.clear();
        data.reserve(size);
        let region = &mut data.spare_capacity_mut()[..size];
        fill_sharing_layout(geometry, vec![region], |ks, lines, dsts| {
            pack(ks, lines, &mut *dsts[0])
        });
        // SAFETY: `fill_sharing_layout` initialised the first `size` elements.
        unsafe { data.set_len(size) };
        Self { data, geometry }
    }

    fn block(&self, panel: usize, lines: Range<usize>, ks: Range<usize>) -> Option<&[f32]> {
        self.geometry.block(&self.data, panel, lines, ks)
    }

    fn repack(&self, panel: usize, lines: Range<usize>, ks: Range<usize>, dst: &mut [f32]) {
        self.geometry.repack(&self.data, panel, lines, ks, dst)
    }
}

/// `A[m, k]` in the AMX kernel's layout ([`super::amx::pack_a_rows`]): for each depth
/// block as the driver cuts them for AMX (`amx_block_depth(k, KC_AMX)`), every 32-row panel,
/// each row's depth pairs padded to whole tiles. Block `b` starts at word
/// `b · panels · 32 · depth_words(block)` (the last, shallower block leaves a gap).
#[derive(Clone, Debug)]
struct Tiles {
    words: Vec<u32>,
    depth: usize,
    rows: usize,
    block: usize,
}

impl Tiles {
    fn build(a: &impl PackA, m: usize, k: usize) -> Self {
        let block = amx_block_depth(k, KC_AMX);
        let panels = m.div_ceil(MR_AMX);
        let block_words = panels * MR_AMX * depth_words(block);
        let mut words = vec![0u32; k.div_ceil(block) * block_words];
        let mut f32_panels = Vec::new();
        for (b, dst) in words.chunks_exact_mut(block_words).enumerate() {
            let ks = b * block..((b + 1) * block).min(k);
            let dst = &mut dst[..panels * MR_AMX * depth_words(ks.len())];
            if !a.pack_a_tiles(0..m, ks.clone(), dst) {
                f32_panels.resize(panels * MR_AMX * ks.len(), 0.0);
                a.pack_a::<MR_AMX>(0..m, ks.clone(), &mut f32_panels);
                super::amx::pack_a_rows(&f32_panels, MR_AMX, ks.len(), dst);
            }
        }
        Self {
            words,
            depth: k,
            rows: m,
            block,
        }
    }

    /// The tiles of `A[rows, ks]`, when `ks` is one of the blocks and `rows` starts a panel.
    fn block(&self, rows: Range<usize>, ks: Range<usize>) -> Option<&[u32]> {
        let whole_block = ks.start.is_multiple_of(self.block)
            && ks.end == (ks.start + self.block).min(self.depth);
        if !whole_block || !rows.start.is_multiple_of(MR_AMX) || rows.end > self.rows {
            return None;
        }
        let panels = self.rows.div_ceil(MR_AMX);
        let kp = depth_words(ks.len());
        let start =
            (ks.start / self.block) * panels * MR_AMX * depth_words(self.block) + rows.start * kp;
        Some(&self.words[start..start + rows.len().next_multiple_of(MR_AMX) * kp])
    }

    /// `A[rows, ks]` widened from the tiles into `MR`-row f32 panels (for a kernel other
    /// than the one the tiles were made for: the values are the bf16-rounded ones).
    fn unpack<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>, dst: &mut [f32]) {
        let panels = self.rows.div_ceil(MR_AMX);
        let kc = ks.len();
        for (q, panel) in dst.chunks_exact_mut(MR * kc).enumerate() {
            for (d, line) in panel.chunks_exact_mut(MR).enumerate() {
                let k = ks.start + d;
                let (b, kk) = (k / self.block, k % self.block);
                let kp = depth_words(self.block.min(self.depth - b * self.block));
                let base = b * panels * MR_AMX * depth_words(self.block);
                for (j, v) in line.iter_mut().enumerate() {
                    let row = rows.start + q * MR + j;
                    *v = if row < rows.end {
                        let w = self.words[base + row * kp + kk / 2];
                        let bits = if kk.is_multiple_of(2) {
                            w << 16
                        } else {
                            w & 0xFFFF_0000
                        };
                        f32::from_bits(bits)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// How a [`PackedA`] holds its matrix.
#[derive(Clone, Debug)]
enum PackedForm {
    /// f32 panels for the kernel [`Isa::detect`] picks.
    Panels(Panels),
    /// bf16 tiles for the AMX kernel.
    Tiles(Tiles),
}

/// `A[m, k]` packed once for many products: f32 panels for the kernel [`Isa::detect`]
/// picks, or (see [`PackedA::for_products`]) the AMX kernel's tiles.
#[derive(Clone, Debug)]
pub struct PackedA(PackedForm);

impl PackedA {
    /// Packs all of `a` (`m × k`) in f32 panels.
    pub fn new(a: &impl PackA, m: usize, k: usize) -> Self {
        let (mr, _) = tile();
        Self(PackedForm::Panels(Panels::build(
            k,
            m,
            mr,
            Vec::new(),
            |ks, rows, dst| match Isa::detect() {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => a.pack_a::<{ x86::MR_512 }>(rows, ks, dst),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => a.pack_a::<{ x86::MR_256 }>(rows, ks, dst),
                _ => a.pack_a::<{ super::PORTABLE_MR }>(rows, ks, dst),
            },
        )))
    }

    /// Packs all of `a` (`m × k`) for products in `precision`: where those run on the AMX
    /// kernel, straight in its tile layout, so that no product re-lays it again (an
    /// attention head's keys and values serve every block of its queries); elsewhere as
    /// [`PackedA::new`].
    pub fn for_products(precision: Precision, a: &impl PackA, m: usize, k: usize) -> Self {
        if precision == Precision::Bf16 && Bf16Kernel::detect() == Some(Bf16Kernel::Amx) {
            Self(PackedForm::Tiles(Tiles::build(a, m, k)))
        } else {
            Self::new(a, m, k)
        }
    }

    /// `a` in the AMX tile layout whatever the CPU (tests check the layout everywhere).
    #[cfg(test)]
    pub(crate) fn amx_tiles(a: &impl PackA, m: usize, k: usize) -> Self {
        Self(PackedForm::Tiles(Tiles::build(a, m, k)))
    }
}

impl PackA for PackedA {
    fn pack_a<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>, dst: &mut [f32]) {
        match &self.0 {
            PackedForm::Panels(p) => p.repack(MR, rows, ks, dst),
            PackedForm::Tiles(t) => t.unpack::<MR>(rows, ks, dst),
        }
    }

    fn prepacked<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>) -> Option<&[f32]> {
        match &self.0 {
            PackedForm::Panels(p) => p.block(MR, rows, ks),
            PackedForm::Tiles(_) => None,
        }
    }

    fn prepacked_tiles(&self, rows: Range<usize>, ks: Range<usize>) -> Option<&[u32]> {
        match &self.0 {
            PackedForm::Panels(_) => None,
            PackedForm::Tiles(t) => t.block(rows, ks),
        }
    }
}

/// Several `m × k` left operands in f32 panels for the kernel [`Isa::detect`] picks, in one
/// allocation (`stride` floats apart): the transformed kernels of every position of a
/// Winograd tile, up to 236 MiB for a 1280-channel convolution through F(4×4, 3×3). As one
/// block that large, the `easel` binary's allocator hands it on to the next large request
/// when it is freed (the VAE decoder's activations, say); as one allocation per position
/// (6.5 MiB each) it came from the C heap, which keeps such pages, and raised the peak
/// memory of a whole image by as much.
pub struct PackedASet {
    data: Vec<f32>,
    geometry: Geometry,
    stride: usize,
}

impl PackedASet {
    /// `count` matrices of `m × k`, in `storage` (from [`PackedASet::into_storage`], so a
    /// set packed again and again does not fault in fresh pages every time; its contents
    /// are overwritten), filled together by `fill(rows, ks, panel, dsts)`: `dsts[i]` is
    /// matrix `i`'s chunk of whole panels of `panel` rows from `rows.start` at the depths
    /// `ks`, zeroed, laid out panel after panel, each depth after depth, each depth's
    /// `panel` values row after row (rows past `m` stay zero). For matrices computed from
    /// one source, such as the transformed kernels of every position of a Winograd tile:
    /// each source value is read once and each result written once, straight into its
    /// panel.
    pub fn build(
        m: usize,
        k: usize,
        count: usize,
        mut storage: Vec<f32>,
        fill: impl Fn(Range<usize>, Range<usize>, usize, &mut [&mut [f32]]) + Sync,
    ) -> Self {
        let (mr, _) = tile();
        let geometry = Geometry::new(k, m, mr);
        let size = geometry.size();
        let stride = spread_stride(size);
        storage.clear();
        storage.reserve(count * stride);
        let mut regions = Vec::with_capacity(count);
        for slot in storage.spare_capacity_mut()[..count * stride].chunks_exact_mut(stride) {
            let (region, gap) = slot.split_at_mut(size);
            gap.fill(std::mem::MaybeUninit::new(0.0));
            regions.push(region);
        }
        fill_sharing_layout(geometry, regions, |ks, rows, dsts| fill(rows, ks, mr, dsts));
        // SAFETY: every region was filled and every gap zeroed.
        unsafe { storage.set_len(count * stride) };
        Self {
            data: storage,
            geometry,
            stride,
        }
    }

    /// Floats the storage of `count` operands of `m × k` takes.
    pub fn storage_len(m: usize, k: usize, count: usize) -> usize {
        count * spread_stride(Geometry::new(k, m, tile().0).size())
    }

    /// Operand `i`.
    ///
    /// # Panics
    /// If `i` is not below the set's count.
    pub fn get(&self, i: usize) -> PanelView<'_> {
        let count = self.data.len() / self.stride;
        assert!(i < count, "gemm: operand {i} of a set of {count}");
        PanelView {
            data: &self.data[i * self.stride..][..self.geometry.size()],
            geometry: self.geometry,
        }
    }

    /// The memory of the set, for the next [`PackedASet::build`].
    pub fn into_storage(self) -> Vec<f32> {
        self.data
    }
}

/// `size` floats rounded to an odd number of 64-byte lines: the distance to put between
/// matrices of one size that are written or read element by element across all of them
/// (the operands of a [`PackedASet`], Winograd's per-position operands), so that the same
/// element of each does not fall in one cache set (8 ways in L1 and L2), as it does when
/// the size is a multiple of the set stride.
#[inline(always)]
pub fn spread_stride(size: usize) -> usize {
    const LINE: usize = 64 / std::mem::size_of::<f32>();
    size.next_multiple_of(2 * LINE) + LINE
}

/// `B[k, n]` packed for the kernel [`Isa::detect`] picks.
#[derive(Clone, Debug)]
pub struct PackedB(Panels);

impl PackedB {
    /// Packs all of `b` (`k × n`).
    pub fn new(b: &impl PackB, k: usize, n: usize) -> Self {
        let (_, nr) = tile();
        Self(Panels::build(
            k,
            n,
            nr,
            Vec::new(),
            |ks, cols, dst| match Isa::detect() {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => b.pack_b::<{ x86::NR_512 }>(ks, cols, dst),
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => b.pack_b::<{ x86::NR_256 }>(ks, cols, dst),
                _ => b.pack_b::<{ super::PORTABLE_NR }>(ks, cols, dst),
            },
        ))
    }
}

impl PackedB {
    /// `b` (`k × n`) packed in panels of `NR` columns (the driver's kernel), in parallel on
    /// rayon's pool when large (see [`Panels::build`]); `b_of` gives the operand (called
    /// once per chunk of panels, on the thread packing it).
    pub(crate) fn for_kernel<const NR: usize, B: PackB>(
        b_of: impl Fn() -> B + Sync,
        k: usize,
        n: usize,
    ) -> Self {
        Self(Panels::build(k, n, NR, Vec::new(), |ks, cols, dst| {
            b_of().pack_b::<NR>(ks, cols, dst)
        }))
    }
}

impl PackB for PackedB {
    fn pack_b<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>, dst: &mut [f32]) {
        self.0.repack(NR, cols, ks, dst)
    }

    fn prepacked<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>) -> Option<&[f32]> {
        self.0.block(NR, cols, ks)
    }
}

/// The panel layout of a `k × n` right operand for the kernel [`Isa::detect`] picks, for
/// producers that write `B` in packed form themselves instead of handing the GEMM a matrix
/// to pack (Winograd's transformed input tiles: see `ops::winograd`).
#[derive(Clone, Copy, Debug)]
pub struct PanelsOfB(Geometry);

impl PanelsOfB {
    pub fn new(k: usize, n: usize) -> Self {
        Self(Geometry::new(k, n, tile().1))
    }

    /// Elements the packed operand takes (its columns rounded up to whole panels).
    pub fn size(&self) -> usize {
        self.0.size()
    }

    /// Columns per panel: the columns `c..c + r` of one depth are contiguous when they lie
    /// in one panel.
    pub fn panel(&self) -> usize {
        self.0.panel
    }

    /// Index of element `(k, col)`.
    #[inline(always)]
    pub fn offset(&self, k: usize, col: usize) -> usize {
        self.0.offset(k, col)
    }

    /// `data` (of [`PanelsOfB::size`] elements, written in this layout) as an operand.
    ///
    /// # Panics
    /// If `data` is shorter than the layout.
    pub fn view<'a>(&self, data: &'a [f32]) -> PanelView<'a> {
        assert!(data.len() >= self.size(), "gemm: packed operand too short");
        PanelView {
            data,
            geometry: self.0,
        }
    }
}

/// An operand already in panel layout, in borrowed memory: a right operand written by its
/// producer (see [`PanelsOfB`]), or one left operand of a [`PackedASet`].
#[derive(Clone, Copy, Debug)]
pub struct PanelView<'a> {
    data: &'a [f32],
    geometry: Geometry,
}

impl PackA for PanelView<'_> {
    fn pack_a<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>, dst: &mut [f32]) {
        self.geometry.repack(self.data, MR, rows, ks, dst)
    }

    fn prepacked<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>) -> Option<&[f32]> {
        self.geometry.block(self.data, MR, rows, ks)
    }
}

impl PackB for PanelView<'_> {
    fn pack_b<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>, dst: &mut [f32]) {
        self.geometry.repack(self.data, NR, cols, ks, dst)
    }

    fn prepacked<const NR: usize>(&self, ks: Range<usize>, cols: Range<usize>) -> Option<&[f32]> {
        self.geometry.block(self.data, NR, cols, ks)
    }
}

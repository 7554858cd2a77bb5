//! Operands packed once and reused by many products: the keys and values of one attention
//! head are multiplied with every block of queries, so packing them per block would cost
//! about as much as the products themselves (the depth of those products is only the head
//! width).

use super::operand::{PackA, PackB};
use super::{block_depth, Isa, KC};
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

/// A whole matrix in panel layout: for each block of the depth ([`block_depth`]), all
/// `ceil(len/panel)` panels of `panel` lines along the other dimension, each depth-major.
/// `A` and `B` share this form (their panels differ only in which side is the line).
#[derive(Clone, Debug)]
struct Panels {
    data: Vec<f32>,
    /// Depth (`k`).
    depth: usize,
    /// Lines along the panel dimension (`m` for `A`, `n` for `B`).
    len: usize,
    /// Lines per panel (`MR` or `NR`).
    panel: usize,
    /// Depth of the blocks (`block_depth(depth, KC)`, as the driver cuts them).
    block: usize,
}

impl Panels {
    /// Builds the panels block by block with `pack(depth range, dst)`.
    fn build(
        depth: usize,
        len: usize,
        panel: usize,
        pack: impl Fn(Range<usize>, &mut [f32]),
    ) -> Self {
        let width = len.next_multiple_of(panel);
        let mut data = vec![0f32; depth * width];
        let block = block_depth(depth, KC);
        for pc in (0..depth).step_by(block) {
            let kc = block.min(depth - pc);
            pack(pc..pc + kc, &mut data[pc * width..(pc + kc) * width]);
        }
        Self {
            data,
            depth,
            len,
            panel,
            block,
        }
    }

    /// Element at depth `k`, line `line`.
    fn get(&self, k: usize, line: usize) -> f32 {
        let width = self.len.next_multiple_of(self.panel);
        let pc = k - k % self.block;
        let kc = self.block.min(self.depth - pc);
        let p = line / self.panel;
        self.data[pc * width + p * kc * self.panel + (k - pc) * self.panel + line % self.panel]
    }

    /// The packed block for `lines` × `ks`, if it is laid out as the driver wants it.
    fn block(&self, panel: usize, lines: Range<usize>, ks: Range<usize>) -> Option<&[f32]> {
        let whole_block = ks.start.is_multiple_of(self.block)
            && ks.end == (ks.start + self.block).min(self.depth);
        if panel != self.panel
            || !whole_block
            || !lines.start.is_multiple_of(panel)
            || lines.end > self.len
        {
            return None;
        }
        let width = self.len.next_multiple_of(panel);
        let kc = ks.len();
        let start = ks.start * width + (lines.start / panel) * kc * panel;
        Some(&self.data[start..start + kc * lines.len().next_multiple_of(panel)])
    }

    /// Repacks for a kernel with another panel size (tests run every kernel).
    fn repack(&self, panel: usize, lines: Range<usize>, ks: Range<usize>, dst: &mut [f32]) {
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
                        self.get(ks.start + k, line)
                    } else {
                        0.0
                    };
                }
            }
        }
    }
}

/// `A[m, k]` packed for the kernel [`Isa::detect`] picks.
#[derive(Clone, Debug)]
pub struct PackedA(Panels);

impl PackedA {
    /// Packs all of `a` (`m × k`).
    pub fn new(a: &impl PackA, m: usize, k: usize) -> Self {
        let (mr, _) = tile();
        Self(Panels::build(k, m, mr, |ks, dst| match Isa::detect() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => a.pack_a::<{ x86::MR_512 }>(0..m, ks, dst),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => a.pack_a::<{ x86::MR_256 }>(0..m, ks, dst),
            _ => a.pack_a::<{ super::PORTABLE_MR }>(0..m, ks, dst),
        }))
    }
}

impl PackA for PackedA {
    fn pack_a<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>, dst: &mut [f32]) {
        self.0.repack(MR, rows, ks, dst)
    }

    fn prepacked<const MR: usize>(&self, rows: Range<usize>, ks: Range<usize>) -> Option<&[f32]> {
        self.0.block(MR, rows, ks)
    }
}

/// `B[k, n]` packed for the kernel [`Isa::detect`] picks.
#[derive(Clone, Debug)]
pub struct PackedB(Panels);

impl PackedB {
    /// Packs all of `b` (`k × n`).
    pub fn new(b: &impl PackB, k: usize, n: usize) -> Self {
        let (_, nr) = tile();
        Self(Panels::build(k, n, nr, |ks, dst| match Isa::detect() {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => b.pack_b::<{ x86::NR_512 }>(ks, 0..n, dst),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => b.pack_b::<{ x86::NR_256 }>(ks, 0..n, dst),
            _ => b.pack_b::<{ super::PORTABLE_NR }>(ks, 0..n, dst),
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

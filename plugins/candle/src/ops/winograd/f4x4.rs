//! F(4×4, 3×3): each 4×4 block of output from the 6×6 block of input around it, 36
//! multiplications per input channel instead of 144 (4× fewer; F(2×2, 3×3) saves 2.25×),
//! with the interpolation points 0, ±1, ±2 and ∞.
//!
//! The price is rounding: the input and output transforms have coefficients up to 5 and
//! 8 and the kernel transform ⅙ and 1⁄24 (inexact in binary), so a result's error is a
//! few times F(2×2)'s. The kernel transform is computed in f64 and rounded once; the
//! tests bound the error against a direct convolution in f64.

use super::{
    each_input_tile_row, each_output_block, load_lanes, position_stride, store_lanes, window,
    Chunk, Conv3x3, Image, PanelRun, SharedOutput, KERNEL_LANES, LANES,
};
use crate::gemm::PanelsOfB;

/// Output pixels a tile covers in each direction.
pub(super) const SIDE: usize = 4;
/// Input pixels a tile reads in each direction, and so the side of a transformed tile.
const T: usize = SIDE + 2;
/// Positions of a transformed tile.
pub(super) const POSITIONS: usize = T * T;

/// `G`, 6 × 3.
const G: [[f64; 3]; T] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// `U = G g Gᵀ` of [`KERNEL_LANES`] 3×3 kernels at once (`g[tap][lane]`, taps row-major),
/// as `put(ξ, values)` for each position `ξ = row · 6 + column`, computed in f64 and
/// rounded once.
#[inline(always)]
pub(super) fn transform_kernels(
    g: &[[f32; KERNEL_LANES]; 9],
    mut put: impl FnMut(usize, &[f32; KERNEL_LANES]),
) {
    let mut gg = [[[0f64; KERNEL_LANES]; 3]; T];
    for (gg, gr) in gg.iter_mut().zip(&G) {
        for (col, v) in gg.iter_mut().enumerate() {
            for (l, v) in v.iter_mut().enumerate() {
                *v = (0..3).map(|k| gr[k] * f64::from(g[k * 3 + col][l])).sum();
            }
        }
    }
    for (row, gg) in gg.iter().enumerate() {
        for (col, gc) in G.iter().enumerate() {
            let mut v = [0f32; KERNEL_LANES];
            for (l, v) in v.iter_mut().enumerate() {
                *v = (0..3).map(|k| gg[k][l] * gc[k]).sum::<f64>() as f32;
            }
            put(row * T + col, &v);
        }
    }
}

/// `Bᵀ d` for six lanes of `d`, with
/// `Bᵀ = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
///        [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]`.
#[inline(always)]
fn bt(d: &[[f32; LANES]; T]) -> [[f32; LANES]; T] {
    let mut r = [[0f32; LANES]; T];
    for l in 0..LANES {
        let [d0, d1, d2, d3, d4, d5] = [d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]];
        let (a, b) = (d4 - 4.0 * d2, d3 - 4.0 * d1);
        let (c, e) = (d4 - d2, 2.0 * (d3 - d1));
        r[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
        r[1][l] = a + b;
        r[2][l] = a - b;
        r[3][l] = c + e;
        r[4][l] = c - e;
        r[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
    r
}

/// `Aᵀ m` for six lanes of `m`, with
/// `Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]`.
#[inline(always)]
fn at(m: &[[f32; LANES]; T]) -> [[f32; LANES]; SIDE] {
    let mut y = [[0f32; LANES]; SIDE];
    for l in 0..LANES {
        let (p12, m12) = (m[1][l] + m[2][l], m[1][l] - m[2][l]);
        let (p34, m34) = (m[3][l] + m[4][l], m[3][l] - m[4][l]);
        y[0][l] = m[0][l] + p12 + p34;
        y[1][l] = m12 + 2.0 * m34;
        y[2][l] = p12 + 4.0 * p34;
        y[3][l] = m12 + 8.0 * m34 + m[5][l];
    }
    y
}

per_isa! {
    /// `V_ξ[c, t] = (Bᵀ d B)_ξ` for every channel `c` and tile `t` of the chunk, with `d`
    /// the 6×6 input block starting one row and column before the tile's output (zero
    /// outside).
    pub(super) fn transform_input(
        s: Conv3x3,
        image: Image<'_>,
        chunk: &Chunk,
        panels: &PanelsOfB,
        v: &mut [f32],
    ) {
        let seg = chunk.cols.len();
        let (size, stride) = (panels.size(), position_stride(panels.size()));
        // A closure, so that the row transform is compiled with this copy's instruction set.
        let row = |row: &[f32], j0: usize, rt: &mut [f32], seg: usize| {
            transform_row(row, j0, rt, seg)
        };
        each_input_tile_row(s, image, chunk, SIDE, row, |c, base, t| {
            for j in (0..seg).step_by(LANES) {
                let n = LANES.min(seg - j);
                let at = PanelRun::new(panels, c, base + j, n);
                for b in 0..T {
                    let d = std::array::from_fn(|dr| load_lanes(&t[(dr * T + b) * seg + j..][..n]));
                    for (a, lanes) in bt(&d).iter().enumerate() {
                        at.store(&mut v[(a * T + b) * stride..][..size], lanes);
                    }
                }
            }
        });
    }
}

/// Input columns one step of [`transform_row`] reads.
const STEP_COLUMNS: usize = SIDE * LANES + 2;

/// The row half of the input transform, `d B`, for the `seg` tiles from tile column `j0`
/// of one input row: `rt[b][j]`.
#[inline(always)]
fn transform_row(row: &[f32], j0: usize, rt: &mut [f32], seg: usize) {
    for j in (0..seg).step_by(LANES) {
        let p: [f32; STEP_COLUMNS] = window(row, SIDE * (j0 + j));
        let d = std::array::from_fn(|k| std::array::from_fn(|l| p[SIDE * l + k]));
        let n = LANES.min(seg - j);
        for (b, lanes) in bt(&d).iter().enumerate() {
            store_lanes(&mut rt[b * seg + j..][..n], lanes);
        }
    }
}

per_isa! {
    /// `y = Aᵀ M A + bias` for every output channel and tile of the chunk; tiles past the
    /// image's edge are cut.
    pub(super) fn transform_output(
        s: Conv3x3,
        m: &[f32],
        chunk: &Chunk,
        bias: Option<&[f32]>,
        out: &SharedOutput,
    ) {
        each_output_block::<POSITIONS>(s, m, chunk, bias, out, SIDE, |e, j, b0, ys| {
            // Aᵀ on the rows of M (each column b), then on its columns (each row k).
            let mut rows = [[[0f32; LANES]; T]; SIDE];
            for b in 0..T {
                let column = std::array::from_fn(|a| e[a * T + b]);
                for (k, lanes) in at(&column).into_iter().enumerate() {
                    rows[k][b] = lanes;
                }
            }
            let row_len = ys.len() / SIDE;
            for (y, row) in ys.chunks_exact_mut(row_len).zip(&rows) {
                let y4 = at(row);
                let dst: &mut [f32; SIDE * LANES] =
                    (&mut y[SIDE * j..][..SIDE * LANES]).try_into().unwrap();
                for l in 0..LANES {
                    for (q, y) in y4.iter().enumerate() {
                        dst[SIDE * l + q] = y[l] + b0;
                    }
                }
            }
        });
    }
}

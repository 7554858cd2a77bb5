//! 3×3, stride-1, padding-1 convolutions by Winograd's minimal filtering F(2×2, 3×3):
//! each 2×2 block of output is computed from the 4×4 block of input around it with 16
//! multiplications per input channel instead of 36, so the products (which are nearly all
//! of a UNet's or a VAE decoder's convolution time) shrink 2.25×.
//!
//! In matrix form, with `d` a 4×4 input tile, `g` a 3×3 kernel and the fixed transforms
//! `Bᵀ`, `G`, `Aᵀ` below, the 2×2 output is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`. Summed over
//! input channels, the element-wise product becomes 16 matrix products, one per position
//! `ξ` of the 4×4 transformed tile: `M_ξ[out, tiles] = U_ξ[out, in] · V_ξ[in, tiles]`,
//! which run on the blocked GEMM ([`crate::gemm`]) like any other product.
//!
//! The tiles of a batch are cut into chunks of whole tile-row segments. One task takes a
//! chunk: it transforms its input tiles into `V` (`16 × in × tiles`), multiplies, and
//! transforms `M` back into the output, so the transformed data of a chunk (a few MiB)
//! stays in cache instead of going to memory four times the size of the image. The
//! kernel transforms `U` are computed once per call and packed once for the GEMM.
//!
//! Every transform coefficient is 0, ±1 or ±½ (exact in binary), so the only rounding
//! beyond a direct convolution's is in the sums of the transforms; in f32 the result
//! differs from a direct convolution by a few units in the last place of the sums.
//!
//! The backend takes this path in f32 only. In bf16 the GEMM re-lays each chunk's `U_ξ`
//! as bf16 pairs, which costs as much as the products it multiplies: on the 2-core Zen 5
//! the VAE decoder's 128- and 256-channel convolutions gain a fifth, the UNet's 320 and
//! 512 lose as much.

use crate::gemm::{matmul_in, Bias, Dims, Element, PackedA, PanelsOfB, Precision, RowMajor};
use rayon::prelude::*;
use std::cell::RefCell;

/// Positions of a transformed 4×4 tile.
const XI: usize = 16;
/// Tiles a chunk aims for: enough columns for the GEMM to reuse each packed `U_ξ` block
/// over, few enough that `V` and `M` of a chunk (`16 × (in + out) × tiles` floats) stay
/// in the L3 cache.
const CHUNK_TILES: usize = 256;
/// Tiles a convolution needs for the transform to pay: each chunk multiplies by all of
/// `U` (16/9 of the weight), so with few tiles the products are bound by reading `U`, and
/// transforming it each call costs about what it saves. On the 2-core Zen 5
/// (`examples/gemm_bench.rs`, 1 thread / 2 threads, batch of 2): 320 channels at 64²
/// (2048 tiles) take 38 / 21 ms against 64 / 35 through the column matrix, 640 at 32²
/// (512 tiles) 40 / 23 against 62 / 35, and 1280 at 16² (128 tiles) 68 / 36 against
/// 61 / 36.
const MIN_TILES: usize = 512;
/// The fewest tiles a chunk is cut down to so that every thread has chunks to take.
const MIN_CHUNK_TILES: usize = 64;

/// Whether [`conv3x3`] computes a convolution of this shape: a 3×3 kernel at stride 1 with
/// padding 1, with f32 products (f32, or bf16 weights on a CPU without bf16 arithmetic; bf16
/// products would round the transformed inputs, which adds more error than rounding the
/// image itself), with at least [`MIN_TILES`] tiles.
pub fn applies(
    kernel: usize,
    stride: usize,
    padding: usize,
    images: usize,
    height: usize,
    width: usize,
    precision: Precision,
) -> bool {
    kernel == 3
        && !precision.rounds_products()
        && stride == 1
        && padding == 1
        && images * height.div_ceil(2) * width.div_ceil(2) >= MIN_TILES
}

/// The sizes of one convolution: `images` of `[channels, height, width]` into
/// `[out_channels, height, width]`.
#[derive(Clone, Copy, Debug)]
pub struct Conv3x3 {
    pub images: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub out_channels: usize,
}

/// A chunk of tiles: rows `rows` of tile columns `cols` of image `image`.
#[derive(Clone, Debug)]
struct Chunk {
    image: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
}

impl Chunk {
    fn tiles(&self) -> usize {
        self.rows.len() * self.cols.len()
    }
}

/// The output, written by many tasks at once, each to its own tiles.
struct SharedOutput(*mut f32, usize);
// SAFETY: tasks write disjoint elements (their chunks' tiles), and the buffer outlives them.
unsafe impl Sync for SharedOutput {}

thread_local! {
    /// The transformed kernels of the last convolution the thread started.
    static KERNEL_BUFFERS: RefCell<KernelBuffers> = RefCell::new(KernelBuffers::default());
    /// `V` and `M` of the chunk a thread is working on, kept between calls.
    static CHUNK_BUFFER: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `y = conv(x, w) + bias` for a 3×3 kernel at stride 1 with padding 1: `x` is
/// `[images, channels, height, width]`, `w` is `[out, channels, 3, 3]` and `y` is
/// `[images, out, height, width]`.
///
/// # Panics
/// If a slice does not have the length its shape says.
pub fn conv3x3<T: Element>(
    s: Conv3x3,
    x: &[f32],
    w: &[T],
    y: &mut [f32],
    bias: Option<&[f32]>,
    precision: Precision,
) {
    let plane = s.height * s.width;
    assert_eq!(x.len(), s.images * s.channels * plane, "winograd: input");
    assert_eq!(w.len(), s.out_channels * s.channels * 9, "winograd: weight");
    assert_eq!(
        y.len(),
        s.images * s.out_channels * plane,
        "winograd: output"
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), s.out_channels, "winograd: bias");
    }
    let mut kernels = KERNEL_BUFFERS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let u = transformed_kernels(s, w, &mut kernels);
    let chunks = chunks(s);
    let out = SharedOutput(y.as_mut_ptr(), y.len());
    chunks.par_iter().for_each(|chunk| {
        CHUNK_BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            let tiles = chunk.tiles();
            let panels = PanelsOfB::new(s.channels, tiles);
            let (v_len, m_len) = (XI * panels.size(), XI * s.out_channels * tiles);
            if buffer.len() < v_len + m_len {
                buffer.resize(v_len + m_len, 0.0);
            }
            let (v, m) = buffer.split_at_mut(v_len);
            let m = &mut m[..m_len];
            let image = &x[chunk.image * s.channels * plane..][..s.channels * plane];
            transform_input(s, image, chunk, &panels, v);
            for (xi, u) in u.iter().enumerate() {
                let dims = Dims {
                    m: s.out_channels,
                    n: tiles,
                    k: s.channels,
                };
                let v = panels.view(&v[xi * panels.size()..][..panels.size()]);
                let m = &mut m[xi * s.out_channels * tiles..][..s.out_channels * tiles];
                matmul_in(precision, dims, u, &v, m, tiles, Bias::None, false);
            }
            transform_output(s, m, chunk, bias, &out);
        })
    });
    kernels.packed = u.into_iter().map(PackedA::into_storage).collect();
    if kernels.bytes() <= KEEP_KERNEL_BYTES {
        KERNEL_BUFFERS.with(|b| *b.borrow_mut() = kernels);
    }
}

/// The most memory [`KernelBuffers`] keep between calls: enough for the UNet's 320- and
/// 640-channel convolutions. Larger ones (1280 channels at 32²: 210 MiB) are given back
/// after the call; their packed kernels come from the calling thread's heap, whose freed
/// pages the allocator keeps (see the CLI's allocator settings) and hands to the next
/// large allocations, so giving them back costs no fresh pages. On the 2-core Zen 5 this
/// took a 512² fp32 step from 7.34 to 7.05 s at 1 thread (no change at 2) and the peak RSS
/// of a tiled 1024² decode from 5896 to 5745 MiB, against keeping everything.
const KEEP_KERNEL_BYTES: usize = 64 << 20;

/// Memory for the transformed kernels, kept between calls: a convolution's `U` is as
/// large as 16/9 of its weight, and fresh pages for it each call cost more than
/// transforming it.
#[derive(Default)]
struct KernelBuffers {
    /// `U` as `[out][ξ][in]`.
    rows: Vec<f32>,
    /// The storage of each packed `U_ξ`.
    packed: Vec<Vec<f32>>,
}

impl KernelBuffers {
    fn bytes(&self) -> usize {
        let floats = self.rows.capacity() + self.packed.iter().map(Vec::capacity).sum::<usize>();
        floats * std::mem::size_of::<f32>()
    }
}

/// `U_ξ = (G g Gᵀ)_ξ` for every output and input channel, each packed for the GEMM, with
/// `G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]`.
fn transformed_kernels<T: Element>(
    s: Conv3x3,
    w: &[T],
    buffers: &mut KernelBuffers,
) -> Vec<PackedA> {
    let (out, cin) = (s.out_channels, s.channels);
    // Laid out [out][ξ][in], so that each output channel is one task's.
    let u = &mut buffers.rows;
    u.resize(XI * out * cin, 0.0);
    u.par_chunks_exact_mut(XI * cin)
        .zip(w.par_chunks_exact(9 * cin))
        .for_each(|(u, w)| {
            for (i, g) in w.chunks_exact(9).enumerate() {
                let g: [f32; 9] = std::array::from_fn(|k| g[k].widen());
                // G g: 4 × 3, rows transformed.
                let mut gg = [0f32; 12];
                for col in 0..3 {
                    let (g0, g1, g2) = (g[col], g[3 + col], g[6 + col]);
                    gg[col] = g0;
                    gg[3 + col] = 0.5 * (g0 + g1 + g2);
                    gg[6 + col] = 0.5 * (g0 - g1 + g2);
                    gg[9 + col] = g2;
                }
                // (G g) Gᵀ: 4 × 4, columns transformed.
                for row in 0..4 {
                    let (g0, g1, g2) = (gg[row * 3], gg[row * 3 + 1], gg[row * 3 + 2]);
                    let vals = [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2];
                    for (col, v) in vals.into_iter().enumerate() {
                        u[(row * 4 + col) * cin + i] = v;
                    }
                }
            }
        });
    buffers.packed.resize_with(XI, Vec::new);
    // Grown here, on the calling thread, not by the workers that pack: memory a worker
    // allocates comes from its own arena, and returns there (not to the system or to the
    // arena the activations use) when the storage is later dropped or grown again.
    let len = PackedA::storage_len(out, cin);
    for storage in &mut buffers.packed {
        if storage.capacity() < len {
            *storage = Vec::with_capacity(len);
        }
    }
    let u = &*u;
    buffers
        .packed
        .par_iter_mut()
        .enumerate()
        .map(|(xi, storage)| {
            let storage = std::mem::take(storage);
            let rows = RowMajor {
                data: &u[xi * cin..],
                ld: XI * cin,
            };
            PackedA::new_in(&rows, out, cin, storage)
        })
        .collect()
}

/// The chunks of a convolution's tiles: segments of at most [`CHUNK_TILES`] tile columns,
/// grouped by whole rows up to about that many tiles, smaller when the threads would
/// otherwise go without work.
fn chunks(s: Conv3x3) -> Vec<Chunk> {
    let (rows, cols) = (s.height.div_ceil(2), s.width.div_ceil(2));
    let total = s.images * rows * cols;
    let threads = rayon::current_num_threads().max(1);
    let target = (total / (2 * threads)).clamp(MIN_CHUNK_TILES, CHUNK_TILES);
    let seg = cols.min(target);
    let rows_per = (target / seg).max(1);
    let mut chunks = Vec::new();
    for image in 0..s.images {
        for r in (0..rows).step_by(rows_per) {
            for c in (0..cols).step_by(seg) {
                chunks.push(Chunk {
                    image,
                    rows: r..(r + rows_per).min(rows),
                    cols: c..(c + seg).min(cols),
                });
            }
        }
    }
    chunks
}

/// Defines `fn $name(args)` as `$body(args)` compiled for the widest vector unit this CPU
/// has (the transforms are written as fixed-width lanes for the compiler to vectorise):
/// `$body` is inlined into one copy per instruction set, picked at run time.
macro_rules! per_isa {
    ($(#[$doc:meta])* fn $name:ident = $body:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// Tiles a transform handles per step: one AVX-512 vector of f32.
const LANES: usize = 16;

per_isa! {
    /// `V_ξ[c, t] = (Bᵀ d B)_ξ` for every channel `c` and tile `t` of the chunk, with
    /// `Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]` and `d` the 4×4
    /// input block starting one row and column before the tile's output (zero outside).
    fn transform_input = transform_input_body(
        s: Conv3x3,
        image: &[f32],
        chunk: &Chunk,
        panels: &PanelsOfB,
        v: &mut [f32],
    )
}

#[inline(always)]
fn transform_input_body(
    s: Conv3x3,
    image: &[f32],
    chunk: &Chunk,
    panels: &PanelsOfB,
    v: &mut [f32],
) {
    let seg = chunk.cols.len();
    let plane = s.height * s.width;
    let size = panels.size();
    // The row transform of the tile's 4 input rows: t[row][b][j].
    let mut t = vec![0f32; 4 * 4 * seg];
    for c in 0..s.channels {
        let channel = &image[c * plane..][..plane];
        for (ti, i) in chunk.rows.clone().enumerate() {
            for dr in 0..4 {
                let r = (2 * i + dr).wrapping_sub(1);
                let rt = &mut t[dr * 4 * seg..][..4 * seg];
                if r < s.height {
                    let row = &channel[r * s.width..][..s.width];
                    transform_row(row, chunk.cols.start, rt, seg);
                } else {
                    rt.fill(0.0);
                }
            }
            let base = ti * seg;
            for b in 0..4 {
                let row = |dr: usize| &t[(dr * 4 + b) * seg..][..seg];
                let (t0, t1, t2, t3) = (row(0), row(1), row(2), row(3));
                let at = |a: usize| (a * 4 + b) * size..(a * 4 + b + 1) * size;
                combine_into(&mut v[at(0)], panels, c, base, t0, t2, |p, q| p - q);
                combine_into(&mut v[at(1)], panels, c, base, t1, t2, |p, q| p + q);
                combine_into(&mut v[at(2)], panels, c, base, t2, t1, |p, q| p - q);
                combine_into(&mut v[at(3)], panels, c, base, t1, t3, |p, q| p - q);
            }
        }
    }
}

/// Input columns one step of [`transform_row`] reads.
const STEP_COLUMNS: usize = 2 * LANES + 2;

/// The row half of the input transform, `d B`, for the `seg` tiles from tile column `j0`
/// of one input row.
#[inline(always)]
fn transform_row(row: &[f32], j0: usize, rt: &mut [f32], seg: usize) {
    let (r0, rest) = rt.split_at_mut(seg);
    let (r1, rest) = rest.split_at_mut(seg);
    let (r2, r3) = rest.split_at_mut(seg);
    for j in (0..seg).step_by(LANES) {
        // Input columns 2·(j0 + j) - 1 onward, zero outside the row.
        let first = (2 * (j0 + j)).wrapping_sub(1);
        let p: [f32; STEP_COLUMNS] = match row.get(first..first.wrapping_add(STEP_COLUMNS)) {
            Some(inside) => *<&[f32; STEP_COLUMNS]>::try_from(inside).unwrap(),
            None => {
                // At the image's edges: the columns inside, zeros around them.
                let mut p = [0f32; STEP_COLUMNS];
                let skip = usize::from(first == usize::MAX);
                let inside = row.get(first.wrapping_add(skip)..).unwrap_or(&[]);
                for (d, &v) in p[skip..].iter_mut().zip(inside) {
                    *d = v;
                }
                p
            }
        };
        let mut d = [[0f32; LANES]; 4];
        for (k, d) in d.iter_mut().enumerate() {
            for (l, d) in d.iter_mut().enumerate() {
                *d = p[2 * l + k];
            }
        }
        let mut lanes = [[0f32; LANES]; 4];
        for l in 0..LANES {
            lanes[0][l] = d[0][l] - d[2][l];
            lanes[1][l] = d[1][l] + d[2][l];
            lanes[2][l] = d[2][l] - d[1][l];
            lanes[3][l] = d[1][l] - d[3][l];
        }
        let n = LANES.min(seg - j);
        for (dst, src) in [&mut *r0, &mut *r1, &mut *r2, &mut *r3]
            .into_iter()
            .zip(&lanes)
        {
            store_lanes(&mut dst[j..j + n], src);
        }
    }
}

/// `src`, zero past its end (`src` holds at most [`LANES`] values).
#[inline(always)]
fn load_lanes(src: &[f32]) -> [f32; LANES] {
    match <&[f32; LANES]>::try_from(src) {
        Ok(lanes) => *lanes,
        Err(_) => {
            let mut lanes = [0f32; LANES];
            for (l, &v) in lanes.iter_mut().zip(src) {
                *l = v;
            }
            lanes
        }
    }
}

/// The first `dst.len()` (at most [`LANES`]) values of `src` into `dst`.
#[inline(always)]
fn store_lanes(dst: &mut [f32], src: &[f32; LANES]) {
    match <&mut [f32; LANES]>::try_from(&mut *dst) {
        Ok(whole) => *whole = *src,
        Err(_) => {
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = v;
            }
        }
    }
}

/// `B[k, t0 + j] = f(p[j], q[j])` for the operand `b` in panel layout `panels`.
#[inline(always)]
fn combine_into(
    b: &mut [f32],
    panels: &PanelsOfB,
    k: usize,
    t0: usize,
    p: &[f32],
    q: &[f32],
    f: impl Fn(f32, f32) -> f32,
) {
    let panel = panels.panel();
    let mut j = 0;
    while j < p.len() {
        let t = t0 + j;
        // The run of columns left in this panel.
        let n = (panel - t % panel).min(p.len() - j);
        let dst = &mut b[panels.offset(k, t)..][..n];
        for ((d, &a), &b) in dst.iter_mut().zip(&p[j..j + n]).zip(&q[j..j + n]) {
            *d = f(a, b);
        }
        j += n;
    }
}

per_isa! {
    /// `y = Aᵀ M A + bias` for every output channel and tile of the chunk, with
    /// `Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]`; tiles past the image's edge are cut.
    fn transform_output = transform_output_body(
        s: Conv3x3,
        m: &[f32],
        chunk: &Chunk,
        bias: Option<&[f32]>,
        out: &SharedOutput,
    )
}

#[inline(always)]
fn transform_output_body(
    s: Conv3x3,
    m: &[f32],
    chunk: &Chunk,
    bias: Option<&[f32]>,
    out: &SharedOutput,
) {
    let tiles = chunk.tiles();
    let seg = chunk.cols.len();
    let plane = s.height * s.width;
    // The two output rows of a segment of tiles, columns interleaved as in the image.
    let mut ys = vec![0f32; 2 * 2 * seg.next_multiple_of(LANES)];
    let (y0, y1) = ys.split_at_mut(2 * seg.next_multiple_of(LANES));
    let c0 = 2 * chunk.cols.start;
    let width = (2 * seg).min(s.width - c0);
    for o in 0..s.out_channels {
        let b0 = bias.map_or(0.0, |b| b[o]);
        let channel = (chunk.image * s.out_channels + o) * plane;
        for (ti, i) in chunk.rows.clone().enumerate() {
            let at = |xi: usize| &m[(xi * s.out_channels + o) * tiles + ti * seg..][..seg];
            let ms: [&[f32]; XI] = std::array::from_fn(at);
            for j in (0..seg).step_by(LANES) {
                let n = LANES.min(seg - j);
                let mut e = [[0f32; LANES]; XI];
                for (e, m) in e.iter_mut().zip(&ms) {
                    *e = load_lanes(&m[j..j + n]);
                }
                // Aᵀ on the rows of M, then on its columns.
                let mut s0 = [[0f32; LANES]; 4];
                let mut s1 = [[0f32; LANES]; 4];
                for b in 0..4 {
                    for l in 0..LANES {
                        s0[b][l] = e[b][l] + e[4 + b][l] + e[8 + b][l];
                        s1[b][l] = e[4 + b][l] - e[8 + b][l] - e[12 + b][l];
                    }
                }
                for (y, s) in [(&mut *y0, &s0), (&mut *y1, &s1)] {
                    let pairs: &mut [f32; 2 * LANES] =
                        (&mut y[2 * j..][..2 * LANES]).try_into().unwrap();
                    for l in 0..LANES {
                        pairs[2 * l] = s[0][l] + s[1][l] + s[2][l] + b0;
                        pairs[2 * l + 1] = s[1][l] - s[2][l] - s[3][l] + b0;
                    }
                }
            }
            for (dr, y) in [&*y0, &*y1].into_iter().enumerate() {
                let r = 2 * i + dr;
                if r >= s.height {
                    continue;
                }
                let start = channel + r * s.width + c0;
                assert!(start + width <= out.1);
                // SAFETY: in bounds (checked), and this chunk's tiles are the only writers
                // of these elements.
                let row = unsafe { std::slice::from_raw_parts_mut(out.0.add(start), width) };
                row.copy_from_slice(&y[..width]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 23) as f32) - 1.0
            })
            .collect()
    }

    /// A direct 3×3, padding-1 convolution in f64, and the sum of the magnitudes of each
    /// output's terms (the scale of its rounding error).
    fn direct(s: Conv3x3, x: &[f32], w: &[f32], bias: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let (h, wd) = (s.height, s.width);
        let mut y = Vec::new();
        let mut mag = Vec::new();
        for n in 0..s.images {
            for o in 0..s.out_channels {
                for r in 0..h {
                    for c in 0..wd {
                        let (mut acc, mut m) = (bias[o] as f64, bias[o].abs() as f64);
                        for ci in 0..s.channels {
                            for (ky, kx) in (0..3).flat_map(|a| (0..3).map(move |b| (a, b))) {
                                let (iy, ix) = ((r + ky).wrapping_sub(1), (c + kx).wrapping_sub(1));
                                if iy >= h || ix >= wd {
                                    continue;
                                }
                                let p = x[((n * s.channels + ci) * h + iy) * wd + ix] as f64
                                    * w[((o * s.channels + ci) * 3 + ky) * 3 + kx] as f64;
                                acc += p;
                                m += p.abs();
                            }
                        }
                        y.push(acc);
                        mag.push(m);
                    }
                }
            }
        }
        (y, mag)
    }

    #[test]
    fn winograd_matches_a_direct_convolution() {
        // (images, channels, height, width, out): odd sides cut the last tiles; the wide
        // images split tile rows into several column segments.
        let cases = [
            (1, 3, 4, 4, 2),
            (2, 5, 7, 9, 4),
            (1, 1, 1, 1, 1),
            (1, 17, 16, 16, 33),
            (3, 4, 5, 150, 3),
            (2, 2, 3, 301, 5),
            (1, 40, 33, 35, 19),
        ];
        for (i, &(images, channels, height, width, out)) in cases.iter().enumerate() {
            let s = Conv3x3 {
                images,
                channels,
                height,
                width,
                out_channels: out,
            };
            let x = values(images * channels * height * width, 3 * i as u64);
            let w = values(out * channels * 9, 3 * i as u64 + 1);
            let bias = values(out, 3 * i as u64 + 2);
            let mut y = vec![f32::NAN; images * out * height * width];
            conv3x3(s, &x, &w, &mut y, Some(&bias), Precision::F32);
            let (want, mag) = direct(s, &x, &w, &bias);
            for (k, ((&got, &want), &mag)) in y.iter().zip(&want).zip(&mag).enumerate() {
                let err = (got as f64 - want).abs();
                assert!(
                    err <= 4e-6 * mag + 1e-30,
                    "{s:?}: element {k} is {got}, a direct convolution gives {want} (terms' magnitude {mag})"
                );
            }
        }
    }

    /// The backend's convolution takes this path at the shapes it applies to (the tiny test
    /// models' latents are too small for it, so the pipeline tests rarely get here).
    #[test]
    fn conv2d_goes_through_the_transform_and_matches_a_direct_convolution() {
        use candle_core::{Device, Tensor};
        let s = Conv3x3 {
            images: 2,
            channels: 3,
            height: 33,
            width: 31,
            out_channels: 4,
        };
        assert!(applies(
            3,
            1,
            1,
            s.images,
            s.height,
            s.width,
            Precision::F32
        ));
        assert!(!applies(
            3,
            2,
            1,
            s.images,
            s.height,
            s.width,
            Precision::F32
        ));
        assert!(!applies(3, 1, 1, 1, 8, 8, Precision::F32));
        let x = values(2 * 3 * 33 * 31, 50);
        let w = values(4 * 3 * 9, 51);
        let bias = values(4, 52);
        let t = |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &Device::Cpu).unwrap();
        let y = crate::ops::conv::conv2d(
            &t(&x, &[2, 3, 33, 31]),
            &t(&w, &[4, 3, 3, 3]),
            Some(&t(&bias, &[4])),
            1,
            1,
            Precision::F32,
        )
        .unwrap();
        assert_eq!(y.dims(), [2, 4, 33, 31]);
        let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (want, mag) = direct(s, &x, &w, &bias);
        for (k, ((&got, &want), &mag)) in y.iter().zip(&want).zip(&mag).enumerate() {
            assert!(
                (got as f64 - want).abs() <= 4e-6 * mag + 1e-30,
                "element {k}: {got}, a direct convolution gives {want}"
            );
        }
    }

    #[test]
    fn bf16_weights_are_widened_exactly() {
        let s = Conv3x3 {
            images: 1,
            channels: 6,
            height: 10,
            width: 12,
            out_channels: 5,
        };
        let x = values(6 * 10 * 12, 40);
        let w: Vec<half::bf16> = values(5 * 6 * 9, 41)
            .into_iter()
            .map(half::bf16::from_f32)
            .collect();
        let wide: Vec<f32> = w.iter().map(|v| v.to_f32()).collect();
        let bias = vec![0f32; 5];
        let mut y = vec![0f32; 5 * 10 * 12];
        conv3x3(s, &x, &w, &mut y, None, Precision::F32);
        let (want, mag) = direct(s, &x, &wide, &bias);
        for ((&got, &want), &mag) in y.iter().zip(&want).zip(&mag) {
            assert!((got as f64 - want).abs() <= 4e-6 * mag + 1e-30);
        }
    }
}

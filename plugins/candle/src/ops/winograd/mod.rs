//! 3×3, stride-1, padding-1 convolutions by Winograd's minimal filtering F(m×m, 3×3):
//! each m×m block of output is computed from the (m+2)×(m+2) block of input around it
//! with (m+2)² multiplications per input channel instead of 9m², so the products (which
//! are nearly all of a UNet's or a VAE decoder's convolution time) shrink: 2.25× with
//! F(2×2, 3×3) ([`f2x2`]), 4× with F(4×4, 3×3) ([`f4x4`]).
//!
//! In matrix form, with `d` an input tile, `g` a 3×3 kernel and the fixed transforms `Bᵀ`,
//! `G`, `Aᵀ` of the tiling, the output tile is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`. Summed over
//! input channels, the element-wise product becomes one matrix product per position `ξ`
//! of the transformed tile: `M_ξ[out, tiles] = U_ξ[out, in] · V_ξ[in, tiles]`, which run
//! on the blocked GEMM ([`crate::gemm`]) like any other product.
//!
//! The tiles of a batch are cut into chunks of whole tile-row segments. One task takes a
//! chunk: it transforms its input tiles into `V` (`ξ × in × tiles`), multiplies, and
//! transforms `M` back into the output, so the transformed data of a chunk (a few MiB)
//! stays in cache instead of going to memory several times the size of the image. The
//! kernel transforms `U` are computed once per call, straight into the GEMM's panels.
//!
//! The larger tile multiplies less but rounds more (see [`f4x4`]), and its `U` is 4× the
//! weight instead of 16/9, so it pays only over enough tiles: [`Tiling::pick`] takes it
//! where it measured faster.
//!
//! The image and the output may each be compact (bf16 activations the backend keeps to
//! halve the memory of the VAE decoder's upper levels): a chunk's input rows widen as they
//! are read, and its output rows round as they are written.
//!
//! The backend takes this path with f32 products only. With bf16 products the GEMM
//! re-lays each chunk's `U_ξ` as bf16 pairs, which costs as much as the products it
//! multiplies: on the 2-core Zen 5
//! the VAE decoder's 128- and 256-channel convolutions gain a fifth, the UNet's 320 and
//! 512 lose as much.

use super::cpu_kernel::CpuElements;
pub use super::cpu_kernel::{ActivationData, ActivationDataMut};
use crate::gemm::{
    matmul_in, spread_stride, Bias, Dims, Element, Isa, PackedASet, PanelsOfB, Precision,
};
use half::bf16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;
use std::cell::RefCell;
use std::ops::Range;

/// The tile counts from which the transform pays, which depend on how fast the column
/// matrix's products are next to the transforms, and so on the fp32 kernel in use
/// ([`Thresholds::for_cpu`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Tiles of F(2×2, 3×3) a convolution needs for the transform to pay at all: each
    /// chunk multiplies by all of `U` (16/9 of the weight), so with few tiles the products
    /// are bound by reading `U`, and transforming it each call costs about what it saves.
    pub f2x2: usize,
    /// Tiles of F(4×4, 3×3) it needs before [`Tiling::pick`] takes that over F(2×2): its
    /// `U` is 36/16 of F(2×2)'s, so over few tiles reading and transforming it costs more
    /// than the products save.
    pub f4x4: usize,
}

/// With the AVX2 kernel (and the portable one). On the 2-core Zen 3
/// (`examples/gemm_bench.rs`, 1 thread / 2 threads), once the kernel transform ran at a
/// tenth of a nanosecond per value: 1280 channels at 16² (64 tiles per image) take 104 /
/// 52 ms for a batch of 2 against 165 / 87 through the column matrix, and 62 / 37 against
/// 86 / 54 for one image; at 8² (16 tiles per image) a batch of 2 is a draw (46 / 23–26
/// against 47 / 26) and one image loses (32 / 20 against 25 / 14). The UNet's 32²
/// convolutions (128 tiles of 4×4 in a batch of 2) gain a fifth from F(4×4) (640 channels
/// 70 / 37 ms against F(2×2)'s 86 / 45, 1280 253 / 132 against 325 / 165); at 64 tiles
/// (640 at 32², one image) the two are even, and at 16² (32 tiles) F(4×4) loses (1280
/// channels 121 / 62 against 104 / 52).
pub const AVX2_THRESHOLDS: Thresholds = Thresholds {
    f2x2: 64,
    f4x4: 128,
};

/// With the AVX-512 kernel, whose products through the column matrix are twice as wide
/// per instruction while the transforms gain less. On a 2-core Xeon with AMX (AVX-512, 2
/// MiB L2; `gemm_bench winograd`, 1 thread, batch of 2): at 16² the column matrix wins
/// (1280 channels 91 ms against F(2×2)'s 130, 2560 → 1280 182 against 250); at 32² F(2×2)
/// wins (640 channels 66 ms against F(4×4)'s 77 and the column matrix's 99, 1280 277
/// against 344 and 415, 1920 → 640 228 against 273 and 282); at 64² F(4×4) does (320
/// channels 45 ms against 56 and 103), as it does on the VAE decoder's 128–512 channels.
pub const AVX512_THRESHOLDS: Thresholds = Thresholds {
    f2x2: 512,
    f4x4: 256,
};

impl Thresholds {
    /// The thresholds for the fp32 kernel this CPU runs ([`Isa::detect`]).
    pub fn for_cpu() -> Thresholds {
        match Isa::detect() {
            Isa::Avx512 => AVX512_THRESHOLDS,
            Isa::Avx2 | Isa::Portable => AVX2_THRESHOLDS,
        }
    }

    /// Whether a convolution over `tiles_2x2` tiles of F(2×2) goes through the transform.
    pub fn transform_pays(self, tiles_2x2: usize) -> bool {
        tiles_2x2 >= self.f2x2
    }

    /// The tiling for a convolution over `tiles_4x4` tiles of F(4×4) that goes through
    /// the transform.
    pub fn tiling(self, tiles_4x4: usize) -> Tiling {
        if tiles_4x4 >= self.f4x4 {
            Tiling::F4x4
        } else {
            Tiling::F2x2
        }
    }
}

/// Whether [`conv3x3`] computes a convolution of this shape: a 3×3 kernel at stride 1 with
/// padding 1, with f32 products (f32, or bf16 weights on a CPU without bf16 arithmetic; bf16
/// products would round the transformed inputs, which adds more error than rounding the
/// image itself), over enough tiles ([`Thresholds::for_cpu`]).
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
        && Thresholds::for_cpu().transform_pays(Tiling::F2x2.tiles(images, height, width))
}

/// One of the minimal filterings this module computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiling {
    /// F(2×2, 3×3): [`f2x2`].
    F2x2,
    /// F(4×4, 3×3): [`f4x4`].
    F4x4,
}

impl Tiling {
    /// Output pixels a tile covers in each direction.
    pub fn side(self) -> usize {
        match self {
            Tiling::F2x2 => f2x2::SIDE,
            Tiling::F4x4 => f4x4::SIDE,
        }
    }

    /// Positions `ξ` of a transformed tile: the matrix products per chunk.
    fn positions(self) -> usize {
        match self {
            Tiling::F2x2 => f2x2::POSITIONS,
            Tiling::F4x4 => f4x4::POSITIONS,
        }
    }

    /// Tiles of `images` `height × width` images.
    fn tiles(self, images: usize, height: usize, width: usize) -> usize {
        images * height.div_ceil(self.side()) * width.div_ceil(self.side())
    }

    /// Tiles a chunk aims for: enough columns for the GEMM to reuse each packed `U_ξ`
    /// block over, few enough that `V` and `M` of a chunk (`ξ × (in + out) × tiles`
    /// floats) stay in the L3 cache: 256 of F(2×2) and 128 of F(4×4), whose chunk of the
    /// same memory covers twice the pixels. A chunk is cut down to a quarter of that at
    /// most, so that every thread has chunks to take.
    fn chunk_tiles(self) -> usize {
        match self {
            Tiling::F2x2 => 256,
            Tiling::F4x4 => 128,
        }
    }

    /// The tiling [`conv3x3`] uses for a shape [`applies`] to: F(4×4, 3×3) over enough
    /// of its tiles ([`Thresholds::for_cpu`]), else F(2×2, 3×3).
    pub fn pick(s: Conv3x3) -> Tiling {
        Thresholds::for_cpu().tiling(Tiling::F4x4.tiles(s.images, s.height, s.width))
    }

    #[inline(always)]
    fn transform_kernels(
        self,
        g: &[[f32; KERNEL_LANES]; 9],
        put: impl FnMut(usize, &[f32; KERNEL_LANES]),
    ) {
        match self {
            Tiling::F2x2 => f2x2::transform_kernels(g, put),
            Tiling::F4x4 => f4x4::transform_kernels(g, put),
        }
    }
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

/// The image a convolution reads: `data` itself, or (with `nearest2x`) its
/// nearest-neighbour upsampling to twice the height and width, which is never made: each
/// input row the transform reads is filled from `data`'s row at half its index, each value
/// twice. So an upsampling convolution (the UNet's and the VAE decoder's) needs no
/// upsampled copy of its input, which at the decoder's 512² level is 256 MiB in f32.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    pub data: ActivationData<'a>,
    pub nearest2x: bool,
}

impl<'a> From<ActivationData<'a>> for Image<'a> {
    fn from(data: ActivationData<'a>) -> Self {
        Image {
            data,
            nearest2x: false,
        }
    }
}

impl<'a> Image<'a> {
    /// Elements `data` holds for `images` images of the convolution's shape `s`.
    fn len_for(self, s: Conv3x3) -> usize {
        let plane = s.height * s.width;
        let per_image = s.channels * if self.nearest2x { plane / 4 } else { plane };
        s.images * per_image
    }

    /// Image `i` of the batch.
    fn image(self, s: Conv3x3, i: usize) -> Image<'a> {
        let one = Conv3x3 { images: 1, ..s };
        let len = self.len_for(one);
        Image {
            data: self.data.slice(i * len..(i + 1) * len),
            nearest2x: self.nearest2x,
        }
    }
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

/// The output, written by many tasks at once, each to its own tiles: f32, or bf16 for a
/// compact activation.
struct SharedOutput(OutputPtr, usize);

#[derive(Clone, Copy)]
enum OutputPtr {
    F32(*mut f32),
    Bf16(*mut bf16),
}
// SAFETY: tasks write disjoint elements (their chunks' tiles), and the buffer outlives them.
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// Writes the output rows of one tile row of `chunk` in output channel `o`, starting at
    /// image row `first`: `ys` holds them `row_len` apart, columns as in the image; rows
    /// and columns past the image's edge are cut.
    fn write_rows(
        &self,
        s: Conv3x3,
        chunk: &Chunk,
        o: usize,
        first: usize,
        ys: &[f32],
        row_len: usize,
    ) {
        let side = ys.len() / row_len;
        let c0 = side * chunk.cols.start;
        let width = (side * chunk.cols.len()).min(s.width - c0);
        let channel = (chunk.image * s.out_channels + o) * s.height * s.width;
        for (dr, y) in ys.chunks_exact(row_len).enumerate() {
            let r = first + dr;
            if r >= s.height {
                break;
            }
            let start = channel + r * s.width + c0;
            assert!(start + width <= self.1);
            match self.0 {
                OutputPtr::F32(p) => {
                    // SAFETY: in bounds (checked), and this chunk's tiles are the only
                    // writers of these elements.
                    let row = unsafe { std::slice::from_raw_parts_mut(p.add(start), width) };
                    row.copy_from_slice(&y[..width]);
                }
                OutputPtr::Bf16(p) => {
                    // SAFETY: as above.
                    let row = unsafe { std::slice::from_raw_parts_mut(p.add(start), width) };
                    row.convert_from_f32_slice(&y[..width]);
                }
            }
        }
    }
}

thread_local! {
    /// The transformed kernels of the last convolution the thread started.
    static KERNEL_BUFFERS: RefCell<KernelBuffers> = RefCell::new(KernelBuffers::default());
    /// `V` and `M` of the chunk a thread is working on, kept between calls.
    static CHUNK_BUFFER: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `y = conv(x, w) + bias` for a 3×3 kernel at stride 1 with padding 1: `x` is
/// `[images, channels, height, width]`, `w` is `[out, channels, 3, 3]` and `y` is
/// `[images, out, height, width]`; through the tiling [`Tiling::pick`] takes. `x` and `y`
/// may each be compact (bf16): inputs widen exactly, outputs round once as stored.
///
/// # Panics
/// If a slice does not have the length its shape says.
pub fn conv3x3<T: Element>(
    s: Conv3x3,
    x: Image<'_>,
    w: &[T],
    y: ActivationDataMut<'_>,
    bias: Option<&[f32]>,
    precision: Precision,
) {
    conv3x3_tiled(Tiling::pick(s), s, x, w, y, bias, precision)
}

/// [`conv3x3`] through a given tiling.
///
/// # Panics
/// If a slice does not have the length its shape says.
pub fn conv3x3_tiled<T: Element>(
    tiling: Tiling,
    s: Conv3x3,
    x: Image<'_>,
    w: &[T],
    y: ActivationDataMut<'_>,
    bias: Option<&[f32]>,
    precision: Precision,
) {
    let plane = s.height * s.width;
    assert_eq!(x.data.len(), x.len_for(s), "winograd: input");
    assert!(
        !x.nearest2x || (s.height.is_multiple_of(2) && s.width.is_multiple_of(2)),
        "winograd: an upsampled image has an even height and width"
    );
    assert_eq!(w.len(), s.out_channels * s.channels * 9, "winograd: weight");
    assert_eq!(
        y.len(),
        s.images * s.out_channels * plane,
        "winograd: output"
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), s.out_channels, "winograd: bias");
    }
    let positions = tiling.positions();
    let mut kernels = KERNEL_BUFFERS.with(|b| std::mem::take(&mut *b.borrow_mut()));
    let u = transformed_kernels(tiling, s, w, &mut kernels);
    let chunks = chunks(tiling, s);
    let out = match y {
        ActivationDataMut::F32(y) => SharedOutput(OutputPtr::F32(y.as_mut_ptr()), y.len()),
        ActivationDataMut::Bf16(y) => SharedOutput(OutputPtr::Bf16(y.as_mut_ptr()), y.len()),
    };
    // With fewer chunks than threads (a small image), each chunk's products are split
    // over the threads by rows instead.
    let parallel_products = chunks.len() < rayon::current_num_threads();
    chunks.par_iter().for_each(|chunk| {
        CHUNK_BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            let tiles = chunk.tiles();
            let panels = PanelsOfB::new(s.channels, tiles);
            let (v_size, m_size) = (panels.size(), s.out_channels * tiles);
            let (v_stride, m_stride) = (position_stride(v_size), position_stride(m_size));
            let (v_len, m_len) = (positions * v_stride, positions * m_stride);
            if buffer.len() < v_len + m_len {
                buffer.resize(v_len + m_len, 0.0);
            }
            let (v, m) = buffer.split_at_mut(v_len);
            let m = &mut m[..m_len];
            transform_input(tiling, s, x.image(s, chunk.image), chunk, &panels, v);
            let dims = Dims {
                m: s.out_channels,
                n: tiles,
                k: s.channels,
            };
            for xi in 0..positions {
                let u = u.get(xi);
                let v = panels.view(&v[xi * v_stride..][..v_size]);
                let m = &mut m[xi * m_stride..][..m_size];
                matmul_in(
                    precision,
                    dims,
                    &u,
                    &v,
                    m,
                    tiles,
                    Bias::None,
                    parallel_products,
                );
            }
            transform_output(tiling, s, m, chunk, bias, &out);
        })
    });
    kernels.packed = u.into_storage();
    // Kept for the next convolution unless large, or much larger than this one needed: a
    // 512-channel convolution's buffers would otherwise stay through the VAE decoder's
    // 128-channel level, where the whole image's memory peaks.
    let needed = KernelBuffers::bytes_for(tiling, s);
    if kernels.bytes() <= KEEP_KERNEL_BYTES.min(2 * needed) {
        KERNEL_BUFFERS.with(|b| *b.borrow_mut() = kernels);
    }
}

/// The most memory [`KernelBuffers`] keep between calls: enough for the UNet's 320- and
/// 640-channel convolutions at 64² (up to 59 MiB, 640 channels through F(4×4, 3×3)).
/// Larger sets (1280 channels: 105 MiB through F(2×2), 236 through F(4×4)) are freed after
/// the call: in the `easel` binary a block that large goes back to its recycling allocator
/// and serves the next large request, the next such convolution's or an activation's;
/// kept here, it would stay through the VAE decode, which sets the whole image's peak
/// memory. On the 2-core Zen 5, when each convolution also kept a second copy of `U` in
/// rows, this took a 512² fp32 step from 7.34 to 7.05 s at 1 thread (no change at 2) and
/// the peak RSS of a tiled 1024² decode from 5896 to 5745 MiB, against keeping everything.
const KEEP_KERNEL_BYTES: usize = 64 << 20;

/// Memory for the transformed kernels, kept between calls: a convolution's `U` is as
/// large as 16/9 of its weight, and fresh pages for it each call cost more than
/// transforming it.
#[derive(Default)]
struct KernelBuffers {
    /// The storage of every packed `U_ξ` (one [`PackedASet`]).
    packed: Vec<f32>,
}

impl KernelBuffers {
    fn bytes(&self) -> usize {
        self.packed.capacity() * std::mem::size_of::<f32>()
    }

    /// What the transformed kernels of one convolution take.
    fn bytes_for(tiling: Tiling, s: Conv3x3) -> usize {
        PackedASet::storage_len(s.out_channels, s.channels, tiling.positions())
            * std::mem::size_of::<f32>()
    }
}

/// `U_ξ = (G g Gᵀ)_ξ` of the tiling for every output and input channel, each packed for
/// the GEMM, all in one allocation. Each kernel is read once and its transform written
/// straight into the panels of every `U_ξ` (they share one layout): transforming into
/// rows and then packing them took a second pass over memory 16/9 to 4× the weight's,
/// 0.5 s of a 512² step on the 2-core Zen 3.
fn transformed_kernels<T: Element>(
    tiling: Tiling,
    s: Conv3x3,
    w: &[T],
    buffers: &mut KernelBuffers,
) -> PackedASet {
    let (out, cin) = (s.out_channels, s.channels);
    let mut storage = std::mem::take(&mut buffers.packed);
    // Grown here, on the calling thread, not by the workers that pack: memory a worker
    // allocates comes from its own arena, and returns there (not to the system or to the
    // arena the activations use) when the storage is later dropped or grown again.
    let len = PackedASet::storage_len(out, cin, tiling.positions());
    if storage.capacity() < len {
        storage = Vec::with_capacity(len);
    }
    let w = match (T::as_f32(w), T::as_bf16(w)) {
        (Some(w), _) => CpuElements::F32(w),
        (_, Some(w)) => CpuElements::Bf16(w),
        _ => unreachable!("weights are f32 or bf16"),
    };
    PackedASet::build(
        out,
        cin,
        tiling.positions(),
        storage,
        |rows, ks, panel, dsts| fill_kernel_panels(tiling, w, cin, rows, ks, panel, dsts),
    )
}

/// Output channels whose kernels are transformed together, one per lane: a panel's rows at
/// one depth are contiguous in every `U_ξ`, so their transforms are computed side by side
/// and each position's values stored as one run.
const KERNEL_LANES: usize = 8;

per_isa! {
    /// The panels of every `U_ξ` for output channels `rows` (whole panels of `panel` rows
    /// from `rows.start`) and input channels `ks`, into `dsts[ξ]` (see
    /// [`PackedASet::build`]).
    fn fill_kernel_panels(
        tiling: Tiling,
        w: CpuElements<'_>,
        cin: usize,
        rows: Range<usize>,
        ks: Range<usize>,
        panel: usize,
        dsts: &mut [&mut [f32]],
    ) {
        match w {
            CpuElements::F32(w) => fill_kernel_panels_from(tiling, w, cin, rows, ks, panel, dsts),
            CpuElements::Bf16(w) => fill_kernel_panels_from(tiling, w, cin, rows, ks, panel, dsts),
        }
    }
}

/// [`fill_kernel_panels`] for weights of element type `T`, inlined into each instruction
/// set's copy. Depth by depth within a panel, so each position's stores run along its
/// panel (the order of memory) instead of revisiting every line once per row. Each group
/// of lanes is stored whole where it fits: the lanes past the panel's rows hold the
/// transforms of zero kernels, 0, and land on rows of the next depth (or panel), which
/// are written after them, or on the zero rows past the last output channel.
#[inline(always)]
fn fill_kernel_panels_from<T: Element>(
    tiling: Tiling,
    w: &[T],
    cin: usize,
    rows: Range<usize>,
    ks: Range<usize>,
    panel: usize,
    dsts: &mut [&mut [f32]],
) {
    let depth = ks.len();
    for (q, first) in rows.clone().step_by(panel).enumerate() {
        let last = (first + panel).min(rows.end);
        for d in 0..depth {
            for r0 in (first..last).step_by(KERNEL_LANES) {
                let lanes = (last - r0).min(KERNEL_LANES);
                let mut g = [[0f32; KERNEL_LANES]; 9];
                for l in 0..lanes {
                    let kernel = &w[((r0 + l) * cin + ks.start + d) * 9..][..9];
                    for (tap, &v) in kernel.iter().enumerate() {
                        g[tap][l] = v.widen();
                    }
                }
                // Rows `r0..r0 + lanes` at depth `d` of panel `q`, in every position's chunk.
                let at = (q * depth + d) * panel + r0 - first;
                // (Every position's chunk has the same length.)
                if at + KERNEL_LANES <= dsts[0].len() {
                    tiling.transform_kernels(&g, |xi, v| {
                        dsts[xi][at..at + KERNEL_LANES].copy_from_slice(v);
                    });
                } else {
                    tiling.transform_kernels(&g, |xi, v| {
                        dsts[xi][at..at + lanes].copy_from_slice(&v[..lanes]);
                    });
                }
            }
        }
    }
}

/// The chunks of a convolution's tiles: segments of at most [`Tiling::chunk_tiles`] tile
/// columns, grouped by whole rows up to about that many tiles, smaller when the threads
/// would otherwise go without work.
fn chunks(tiling: Tiling, s: Conv3x3) -> Vec<Chunk> {
    let side = tiling.side();
    let (rows, cols) = (s.height.div_ceil(side), s.width.div_ceil(side));
    let total = s.images * rows * cols;
    let threads = rayon::current_num_threads().max(1);
    let most = tiling.chunk_tiles();
    let target = (total / (2 * threads)).clamp(most / 4, most);
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

mod f2x2;
mod f4x4;

/// `V_ξ[c, t] = (Bᵀ d B)_ξ` of `tiling` for every channel `c` and tile `t` of the chunk,
/// `d` the input block around the tile's output (zero outside the image).
fn transform_input(
    tiling: Tiling,
    s: Conv3x3,
    image: Image<'_>,
    chunk: &Chunk,
    panels: &PanelsOfB,
    v: &mut [f32],
) {
    match tiling {
        Tiling::F2x2 => f2x2::transform_input(s, image, chunk, panels, v),
        Tiling::F4x4 => f4x4::transform_input(s, image, chunk, panels, v),
    }
}

/// `y = Aᵀ M A + bias` of `tiling` for every output channel and tile of the chunk; tiles
/// past the image's edge are cut.
fn transform_output(
    tiling: Tiling,
    s: Conv3x3,
    m: &[f32],
    chunk: &Chunk,
    bias: Option<&[f32]>,
    out: &SharedOutput,
) {
    match tiling {
        Tiling::F2x2 => f2x2::transform_output(s, m, chunk, bias, out),
        Tiling::F4x4 => f4x4::transform_output(s, m, chunk, bias, out),
    }
}

/// Row `k` of an operand in panel layout `panels`, columns `t0..t0 + len`: `fill(dst,
/// run)` for each run of those columns that lies within one panel, `dst` the run's slots
/// in `b` and `run` its columns counted from `t0`.
#[inline(always)]
fn panel_row_runs(
    b: &mut [f32],
    panels: &PanelsOfB,
    k: usize,
    t0: usize,
    len: usize,
    mut fill: impl FnMut(&mut [f32], std::ops::Range<usize>),
) {
    let panel = panels.panel();
    let mut j = 0;
    while j < len {
        let t = t0 + j;
        let n = (panel - t % panel).min(len - j);
        fill(&mut b[panels.offset(k, t)..][..n], j..j + n);
        j += n;
    }
}

/// Where a run of at most [`LANES`] columns `t0..t0 + n` of row `k` lies in an operand in
/// panel layout: found once, then used for every position `ξ` (whose operands share the
/// layout). A run within one panel is one contiguous slice, written with a fixed-width
/// copy; one that crosses a panel's edge goes column by column.
struct PanelRun<'p> {
    panels: &'p PanelsOfB,
    k: usize,
    t0: usize,
    n: usize,
    /// The run's offset when it lies within one panel.
    contiguous: Option<usize>,
}

impl<'p> PanelRun<'p> {
    #[inline(always)]
    fn new(panels: &'p PanelsOfB, k: usize, t0: usize, n: usize) -> Self {
        let within = t0 % panels.panel() + n <= panels.panel();
        PanelRun {
            panels,
            k,
            t0,
            n,
            contiguous: within.then(|| panels.offset(k, t0)),
        }
    }

    /// The run's first `n` lanes into `b`, one position's operand.
    #[inline(always)]
    fn store(&self, b: &mut [f32], lanes: &[f32; LANES]) {
        match self.contiguous {
            Some(at) => store_lanes(&mut b[at..][..self.n], lanes),
            None => panel_row_runs(b, self.panels, self.k, self.t0, self.n, |dst, run| {
                for (d, &v) in dst.iter_mut().zip(&lanes[run]) {
                    *d = v;
                }
            }),
        }
    }
}

/// Floats from one position's operand (`V_ξ` or `M_ξ`) of a chunk to the next (see
/// [`spread_stride`]): the transforms write (and read) the same element of every position
/// in turn, and at 128 channels × 128 tiles (64 KiB a position) back to back those 16 or
/// 36 lines all fell in one cache set. Spread, on the 2-core Zen 3, 1 thread, the F(4×4)
/// convolutions 128 → 128 at 512² took 326–336 ms instead of 337–354, 256 → 256 at 256²
/// 282–322 instead of 307–330.
#[inline(always)]
fn position_stride(size: usize) -> usize {
    spread_stride(size)
}

/// Each of `src`'s values, as f32, twice in a row into `dst` (a row of a nearest-neighbour
/// upsampling).
#[inline(always)]
fn widen_doubled<T: Element>(src: &[T], dst: &mut [f32]) {
    for (d, &v) in dst.chunks_exact_mut(2).zip(src) {
        d.fill(v.widen());
    }
}

/// Tiles a transform handles per step: one AVX-512 vector of f32.
const LANES: usize = 16;

/// `N` columns of `row` from column `first - 1` on, zero outside the row (the transforms'
/// input window, with the convolution's padding of one).
#[inline(always)]
fn window<const N: usize>(row: &[f32], first: usize) -> [f32; N] {
    let first = first.wrapping_sub(1);
    match row.get(first..first.wrapping_add(N)) {
        Some(inside) => *<&[f32; N]>::try_from(inside).unwrap(),
        None => {
            // At the image's edges: the columns inside, zeros around them.
            let mut p = [0f32; N];
            let skip = usize::from(first == usize::MAX);
            let inside = row.get(first.wrapping_add(skip)..).unwrap_or(&[]);
            for (d, &v) in p[skip..].iter_mut().zip(inside) {
                *d = v;
            }
            p
        }
    }
}

/// The input transform's loop over a chunk, shared by the tilings: for every channel `c`
/// and every tile row of the chunk (the `ti`-th), the row half of the transform of the tile
/// row's `side + 2` input rows, `rows[dr][b][j]` (`transform_row(input row, first tile
/// column, rows[dr], tiles)`; zero for rows outside the image), then
/// `columns(c, ti · tiles, rows)` for the column half.
#[inline(always)]
fn each_input_tile_row(
    s: Conv3x3,
    image: Image<'_>,
    chunk: &Chunk,
    side: usize,
    transform_row: impl Fn(&[f32], usize, &mut [f32], usize),
    mut columns: impl FnMut(usize, usize, &[f32]),
) {
    let t = side + 2;
    let seg = chunk.cols.len();
    let (height, width) = if image.nearest2x {
        (s.height / 2, s.width / 2)
    } else {
        (s.height, s.width)
    };
    let mut rows = vec![0f32; t * t * seg];
    // A compact or upsampled image's rows are made in `wide`, over the columns the chunk's
    // input windows read (one before its first tile to one past its last).
    let mut wide = match image.data {
        ActivationData::F32(_) if !image.nearest2x => Vec::new(),
        _ => vec![0f32; s.width],
    };
    let reach =
        (side * chunk.cols.start).saturating_sub(1)..(side * chunk.cols.end + 1).min(s.width);
    for c in 0..s.channels {
        for (ti, i) in chunk.rows.clone().enumerate() {
            // The stored row the last input row was read from: two input rows of an
            // upsampled image in a row are the same row, transformed once.
            let mut last = None;
            for dr in 0..t {
                let r = (side * i + dr).wrapping_sub(1);
                let (done, rt) = rows.split_at_mut(dr * t * seg);
                let rt = &mut rt[..t * seg];
                if r >= s.height {
                    rt.fill(0.0);
                    last = None;
                    continue;
                }
                let stored = if image.nearest2x { r / 2 } else { r };
                let at = (c * height + stored) * width;
                if last == Some(at) {
                    rt.copy_from_slice(&done[(dr - 1) * t * seg..]);
                    continue;
                }
                last = Some(at);
                let row = match (image.data, image.nearest2x) {
                    (ActivationData::F32(x), false) => &x[at..at + s.width],
                    (ActivationData::Bf16(x), false) => {
                        let src = &x[at + reach.start..at + reach.end];
                        bf16::widen_into(src, &mut wide[reach.clone()]);
                        &wide[..]
                    }
                    (data, true) => {
                        // Each stored value twice, over the stored columns the reach
                        // covers (the width is even, so the pairs stay inside the row).
                        let pairs = reach.start / 2..reach.end.div_ceil(2);
                        let dst = &mut wide[2 * pairs.start..2 * pairs.end];
                        match data.slice(at + pairs.start..at + pairs.end) {
                            ActivationData::F32(x) => widen_doubled(x, dst),
                            ActivationData::Bf16(x) => widen_doubled(x, dst),
                        }
                        &wide[..]
                    }
                };
                transform_row(row, chunk.cols.start, rt, seg);
            }
            columns(c, ti * seg, &rows);
        }
    }
}

/// The output transform's loop over a chunk, shared by the tilings: for every output
/// channel and tile row of the chunk, and each run of [`LANES`] tiles from tile `j` in it,
/// `block(e, j, bias, ys)` with `e[ξ]` the run's values of `M_ξ` writes the run's `side`
/// output rows into `ys` (rows `ys.len() / side` apart, columns as in the image, from
/// column `side · j`); the rows are then written out, cut at the image's edges.
#[inline(always)]
fn each_output_block<const P: usize>(
    s: Conv3x3,
    m: &[f32],
    chunk: &Chunk,
    bias: Option<&[f32]>,
    out: &SharedOutput,
    side: usize,
    mut block: impl FnMut(&[[f32; LANES]; P], usize, f32, &mut [f32]),
) {
    let tiles = chunk.tiles();
    let seg = chunk.cols.len();
    let row_len = side * seg.next_multiple_of(LANES);
    let mut ys = vec![0f32; side * row_len];
    let stride = position_stride(s.out_channels * tiles);
    for o in 0..s.out_channels {
        let b0 = bias.map_or(0.0, |b| b[o]);
        for (ti, i) in chunk.rows.clone().enumerate() {
            let at = |xi: usize| &m[xi * stride + o * tiles + ti * seg..][..seg];
            let ms: [&[f32]; P] = std::array::from_fn(at);
            for j in (0..seg).step_by(LANES) {
                let n = LANES.min(seg - j);
                let e = std::array::from_fn(|xi| load_lanes(&ms[xi][j..j + n]));
                block(&e, j, b0, &mut ys);
            }
            out.write_rows(s, chunk, o, side * i, &ys, row_len);
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

    /// The bound on a result's error relative to the magnitudes of its terms: a few units
    /// in the last place of f32 for F(2×2, 3×3) (2.0e-7 measured here); F(4×4, 3×3)'s
    /// larger coefficients and inexact kernel transform round about ten times as much
    /// (2.4e-6).
    fn tolerance(tiling: Tiling) -> f64 {
        match tiling {
            Tiling::F2x2 => 4e-6,
            Tiling::F4x4 => 4e-5,
        }
    }

    /// Test shapes: sides that are not multiples of the tile cut the last tiles; the wide
    /// images split tile rows into several column segments.
    fn cases() -> impl Iterator<Item = (usize, Conv3x3)> {
        // (images, channels, height, width, out)
        [
            (1, 3, 4, 4, 2),
            (2, 5, 7, 9, 4),
            (1, 1, 1, 1, 1),
            (1, 17, 16, 16, 33),
            (3, 4, 5, 150, 3),
            (2, 2, 3, 301, 5),
            (1, 40, 33, 35, 19),
            (1, 6, 10, 530, 7),
            (1, 64, 21, 18, 20),
            // Deeper than one block of the products, and panels of `U` filled in several
            // chunks.
            (1, 400, 6, 7, 50),
        ]
        .into_iter()
        .map(|(images, channels, height, width, out_channels)| Conv3x3 {
            images,
            channels,
            height,
            width,
            out_channels,
        })
        .enumerate()
    }

    #[test]
    fn winograd_matches_a_direct_convolution() {
        for tiling in [Tiling::F2x2, Tiling::F4x4] {
            let mut worst = 0f64;
            for (i, s) in cases() {
                let (images, channels, height, width, out) =
                    (s.images, s.channels, s.height, s.width, s.out_channels);
                let x = values(images * channels * height * width, 3 * i as u64);
                let w = values(out * channels * 9, 3 * i as u64 + 1);
                let bias = values(out, 3 * i as u64 + 2);
                let mut y = vec![f32::NAN; images * out * height * width];
                conv3x3_tiled(
                    tiling,
                    s,
                    ActivationData::F32(&x).into(),
                    &w,
                    ActivationDataMut::F32(&mut y),
                    Some(&bias),
                    Precision::F32,
                );
                let (want, mag) = direct(s, &x, &w, &bias);
                for (k, ((&got, &want), &mag)) in y.iter().zip(&want).zip(&mag).enumerate() {
                    let err = (got as f64 - want).abs();
                    worst = worst.max(err / mag);
                    assert!(
                        err <= tolerance(tiling) * mag + 1e-30,
                        "{tiling:?} {s:?}: element {k} is {got}, a direct convolution gives {want} (terms' magnitude {mag})"
                    );
                }
            }
            println!("{tiling:?}: largest error {worst:.2e} of the terms' magnitude");
        }
    }

    /// The backend's convolution takes this path at the shapes it applies to (the tiny test
    /// models' latents are too small for it, so the pipeline tests rarely get here).
    #[test]
    fn conv2d_goes_through_the_transform_and_matches_a_direct_convolution() {
        use candle_core::{Device, Tensor};
        // An image F(2×2) takes under this CPU's thresholds: 144 tiles of 2×2 (40 of 4×4)
        // with the AVX2 ones, 540 (144) with the AVX-512 ones.
        let (height, width) = if Thresholds::for_cpu() == AVX512_THRESHOLDS {
            (36, 30)
        } else {
            (17, 15)
        };
        let s = Conv3x3 {
            images: 2,
            channels: 3,
            height,
            width,
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
        // The larger image has 306 tiles of 4×4 (1155 of 2×2): F(4×4) under either.
        for (s, tiling) in [
            (s, Tiling::F2x2),
            (
                Conv3x3 {
                    images: 1,
                    height: 70,
                    width: 66,
                    ..s
                },
                Tiling::F4x4,
            ),
        ] {
            assert_eq!(Tiling::pick(s), tiling, "{s:?}");
            let x = values(s.images * 3 * s.height * s.width, 50);
            let w = values(4 * 3 * 9, 51);
            let bias = values(4, 52);
            let t =
                |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &Device::Cpu).unwrap();
            let shape = [s.images, 3, s.height, s.width];
            let y = crate::ops::conv::conv2d(
                &t(&x, &shape),
                &t(&w, &[4, 3, 3, 3]),
                Some(&t(&bias, &[4])),
                1,
                1,
                Precision::F32,
            )
            .unwrap();
            assert_eq!(y.dims(), [s.images, 4, s.height, s.width]);
            let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let mut tiled = vec![0f32; y.len()];
            conv3x3_tiled(
                tiling,
                s,
                ActivationData::F32(&x).into(),
                &w,
                ActivationDataMut::F32(&mut tiled),
                Some(&bias),
                Precision::F32,
            );
            assert!(y == tiled, "{s:?}: the backend did not take {tiling:?}");
            let (want, mag) = direct(s, &x, &w, &bias);
            for (k, ((&got, &want), &mag)) in y.iter().zip(&want).zip(&mag).enumerate() {
                assert!(
                    (got as f64 - want).abs() <= tolerance(tiling) * mag + 1e-30,
                    "{s:?} element {k}: {got}, a direct convolution gives {want}"
                );
            }
        }
    }

    /// The two sets of thresholds put the UNet's levels (a batch of 2 at 512²) where
    /// their measurements did: with AVX2, the transform from 16² on and F(4×4) from 32²;
    /// with AVX-512, the column matrix at 16², F(2×2) at 32² and F(4×4) at 64².
    #[test]
    fn thresholds_place_the_unet_levels() {
        let tiles = |side: usize| {
            (
                Tiling::F2x2.tiles(2, side, side),
                Tiling::F4x4.tiles(2, side, side),
            )
        };
        let choice = |rules: Thresholds, side: usize| {
            let (t2, t4) = tiles(side);
            rules.transform_pays(t2).then(|| rules.tiling(t4))
        };
        let avx2: Vec<_> = [8, 16, 32, 64].map(|s| choice(AVX2_THRESHOLDS, s)).into();
        assert_eq!(
            avx2,
            [
                None,
                Some(Tiling::F2x2),
                Some(Tiling::F4x4),
                Some(Tiling::F4x4)
            ]
        );
        let avx512: Vec<_> = [8, 16, 32, 64].map(|s| choice(AVX512_THRESHOLDS, s)).into();
        assert_eq!(avx512, [None, None, Some(Tiling::F2x2), Some(Tiling::F4x4)]);
    }

    /// The backend's upsampling convolution gives, to the bit, what convolving candle's
    /// nearest-neighbour upsampling gives: through each tiling (read upsampled) and below
    /// the transform's sizes (upsampled, then convolved), for f32 and compact images.
    #[test]
    fn conv2d_nearest2x_equals_the_convolution_of_the_upsampled_image() {
        use candle_core::{DType, Device, Tensor};
        // Upsampled: 18×16 × 2 images (F(2×2) under the AVX2 thresholds; 36×30 under the
        // AVX-512 ones), 70×66 (F(4×4)), 10×12 (no transform).
        let f2x2_half = if Thresholds::for_cpu() == AVX512_THRESHOLDS {
            (18, 15)
        } else {
            (9, 8)
        };
        for (images, height, width, tiling) in [
            (2, f2x2_half.0, f2x2_half.1, Some(Tiling::F2x2)),
            (1, 35, 33, Some(Tiling::F4x4)),
            (1, 5, 6, None),
        ] {
            let s = Conv3x3 {
                images,
                channels: 3,
                height: 2 * height,
                width: 2 * width,
                out_channels: 4,
            };
            let transformed = applies(3, 1, 1, images, s.height, s.width, Precision::F32);
            assert_eq!(transformed.then(|| Tiling::pick(s)), tiling, "{s:?}");
            let t =
                |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &Device::Cpu).unwrap();
            let x = t(
                &values(images * 3 * height * width, 60),
                &[images, 3, height, width],
            );
            let w = t(&values(4 * 3 * 9, 61), &[4, 3, 3, 3]);
            let bias = t(&values(4, 62), &[4]);
            for x in [x.clone(), x.to_dtype(DType::BF16).unwrap()] {
                let conv = |x: &Tensor, nearest2x: bool| {
                    let f = if nearest2x {
                        crate::ops::conv::conv2d_nearest2x
                    } else {
                        crate::ops::conv::conv2d
                    };
                    let y = f(x, &w, Some(&bias), 1, 1, Precision::F32).unwrap();
                    assert_eq!(y.dims(), [images, 4, s.height, s.width]);
                    assert_eq!(
                        y.dtype(),
                        x.dtype(),
                        "the output is kept as compact as the input"
                    );
                    let y = y.to_dtype(DType::F32).unwrap().flatten_all().unwrap();
                    y.to_vec1::<f32>().unwrap()
                };
                let up = x.upsample_nearest2d(s.height, s.width).unwrap();
                assert!(
                    conv(&x, true) == conv(&up, false),
                    "{s:?} ({:?}): the upsampling convolution differs from convolving the upsampled image",
                    x.dtype()
                );
            }
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
        let (want, mag) = direct(s, &x, &wide, &bias);
        for tiling in [Tiling::F2x2, Tiling::F4x4] {
            let mut y = vec![0f32; 5 * 10 * 12];
            conv3x3_tiled(
                tiling,
                s,
                ActivationData::F32(&x).into(),
                &w,
                ActivationDataMut::F32(&mut y),
                None,
                Precision::F32,
            );
            for ((&got, &want), &mag) in y.iter().zip(&want).zip(&mag) {
                assert!((got as f64 - want).abs() <= tolerance(tiling) * mag + 1e-30);
            }
        }
    }

    /// A compact (bf16) image is read exactly and a compact output rounded once: the
    /// result is within the tiling's own error of a direct convolution of the widened
    /// image, plus one bf16 rounding of the value.
    #[test]
    fn compact_images_widen_exactly_and_outputs_round_once() {
        // bf16's unit roundoff: 8 significant bits.
        let half_ulp = 2f64.powi(-8);
        for tiling in [Tiling::F2x2, Tiling::F4x4] {
            for (i, s) in cases() {
                let (images, channels, height, width, out) =
                    (s.images, s.channels, s.height, s.width, s.out_channels);
                let x: Vec<bf16> = values(images * channels * height * width, 7 * i as u64)
                    .into_iter()
                    .map(bf16::from_f32)
                    .collect();
                let wide: Vec<f32> = x.iter().map(|v| v.to_f32()).collect();
                let w = values(out * channels * 9, 7 * i as u64 + 1);
                let bias = values(out, 7 * i as u64 + 2);
                let mut y = vec![bf16::NAN; images * out * height * width];
                conv3x3_tiled(
                    tiling,
                    s,
                    ActivationData::Bf16(&x).into(),
                    &w,
                    ActivationDataMut::Bf16(&mut y),
                    Some(&bias),
                    Precision::F32,
                );
                let (want, mag) = direct(s, &wide, &w, &bias);
                for (k, ((got, &want), &mag)) in y.iter().zip(&want).zip(&mag).enumerate() {
                    let got = got.to_f64();
                    let bound = tolerance(tiling) * mag * (1.0 + half_ulp) + half_ulp * want.abs();
                    assert!(
                        (got - want).abs() <= bound + 1e-30,
                        "{tiling:?} {s:?}: element {k} is {got}, a direct convolution gives {want}"
                    );
                }
            }
        }
    }

    /// An upsampled image (`Image::nearest2x`) convolves as its nearest-neighbour
    /// upsampling, made here element by element, does through a direct convolution: f32
    /// and compact, both tilings, every shape of [`cases`] as the stored image.
    #[test]
    fn upsampled_images_convolve_as_their_upsampling_does() {
        for tiling in [Tiling::F2x2, Tiling::F4x4] {
            for (i, stored) in cases() {
                let s = Conv3x3 {
                    height: 2 * stored.height,
                    width: 2 * stored.width,
                    ..stored
                };
                let planes = s.images * s.channels;
                let x = values(planes * stored.height * stored.width, 11 * i as u64);
                let x16: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
                let w = values(s.out_channels * s.channels * 9, 11 * i as u64 + 1);
                let bias = values(s.out_channels, 11 * i as u64 + 2);
                let upsample = |x: &[f32]| -> Vec<f32> {
                    let mut up = Vec::with_capacity(planes * s.height * s.width);
                    for p in 0..planes {
                        for r in 0..s.height {
                            for c in 0..s.width {
                                let at = (p * stored.height + r / 2) * stored.width + c / 2;
                                up.push(x[at]);
                            }
                        }
                    }
                    up
                };
                let wide: Vec<f32> = x16.iter().map(|v| v.to_f32()).collect();
                for (kind, data, reference) in [
                    ("f32", ActivationData::F32(&x), upsample(&x)),
                    ("bf16", ActivationData::Bf16(&x16), upsample(&wide)),
                ] {
                    let mut y = vec![f32::NAN; s.images * s.out_channels * s.height * s.width];
                    let image = Image {
                        data,
                        nearest2x: true,
                    };
                    conv3x3_tiled(
                        tiling,
                        s,
                        image,
                        &w,
                        ActivationDataMut::F32(&mut y),
                        Some(&bias),
                        Precision::F32,
                    );
                    let (want, mag) = direct(s, &reference, &w, &bias);
                    for (k, ((&got, &want), &mag)) in y.iter().zip(&want).zip(&mag).enumerate() {
                        assert!(
                            (got as f64 - want).abs() <= tolerance(tiling) * mag + 1e-30,
                            "{tiling:?} {s:?} upsampled from {kind}: element {k} is {got}, \
                             a direct convolution of the upsampled image gives {want}"
                        );
                    }
                }
            }
        }
    }
}

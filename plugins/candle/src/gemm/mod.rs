//! Single-precision matrix products for the CPU, written for the shapes of a diffusion
//! UNet: `C[m, n] = A[m, k] · B[k, n] (+ bias)` with `C` row-major.
//!
//! The layout is the classic blocked one (Goto / BLIS): a `KC`-deep slice of `B` is packed
//! into `NR`-wide column panels, an `MC`-tall block of `A` into `MR`-tall row panels, and a
//! register-resident microkernel ([`kernels`]) multiplies one panel pair into one `MR × NR`
//! tile of `C`. Packing is done by the operand itself ([`operand`]), which is how a
//! convolution feeds its column matrix straight from the image ([`Im2col`]) and a linear
//! layer reads its `[out, in]` weight as `Wᵀ` ([`Transposed`]) with no intermediate copy.
//!
//! Work is split into independent tasks over blocks of `C`, run on rayon's pool; a task
//! covers every item of a batch, so a packed block of the shared `A` (a convolution's
//! weight) serves all images before the next is packed. Each task packs into buffers owned
//! by its thread, so the packing buffers are allocated once per thread, not per call.
//! Where the tasks split only the rows of `A` (few columns: the UNet's 16² and 8² levels, a
//! linear layer's weight as `B`), `B` is packed once up front, in parallel, and read by all
//! of them instead of being packed again by each (f32; 512² step at 2 threads on Zen 5
//! 3.97–4.01 → 3.89–3.92 s, and more on machines with more cores).
//!
//! Single-thread throughput on the 2-core Zen 5 development machine (`examples/gemm_bench.rs`)
//! is 215–270 GFLOP/s in f32 at UNet shapes, close to its peak of 64 flops per cycle, and
//! 310–490 GFLOP/s in bf16 (AVX512-BF16); the VAE decoder's 3×3 convolutions at 256²–512²
//! reach 200–220 (f32) and 330–390 (bf16).

pub mod amx;
pub mod bf16;
mod interleave;
pub mod kernels;
pub mod operand;
mod packed;

pub use bf16::Precision;
pub use operand::{ColumnsFrom, Element, Im2col, PackA, PackB, PairedRows, RowMajor, Transposed};
pub use packed::{spread_stride, PackedA, PackedASet, PackedB, PanelView, PanelsOfB};

use kernels::{Epilogue, KernelFn};
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::sync::OnceLock;

/// Deepest packed block: a `KC × NR` panel of `B` (48 KiB at 384 × 32, Zen 5's L1) stays
/// in L1 while the kernel sweeps the `A` block. Deeper blocks mean fewer passes over `C`:
/// on the 2-core Zen 5, 384 instead of 256 took a 320-deep linear layer from two passes to
/// one (8192 × 2560 × 320: 217 → 270 GFLOP/s in f32).
const KC: usize = 384;
/// Deepest block for the AVX512-BF16 kernel, whose pair panels take half the bytes per
/// depth (32 KiB at 512 × 32): half the passes over `C` again (8192 × 2560 × 320 in bf16:
/// 340 → 480 GFLOP/s against 256-deep blocks).
const KC_PAIRS: usize = 512;
/// Deepest block for the AMX kernel. A tile product is so fast that every pass over `C`
/// (four 1 KiB accumulator tiles loaded and stored per 32 × 32 block) and every re-packed
/// block shows: deeper blocks mean fewer of both. At 1024 a block's panels of `A` and
/// `B` (64 KiB each in bf16) still sit in the level-2 cache (2 MiB on Sapphire Rapids)
/// beside the `MC`-row block of `A`.
const KC_AMX: usize = 1024;

/// Depth of the packed blocks of a product `k` deep whose blocks may be at most `max`
/// deep: the fewest blocks, of equal depth (the last may be shallower), so no pass over
/// `C` is spent on a thin remainder.
fn block_depth(k: usize, max: usize) -> usize {
    k.div_ceil(k.div_ceil(max).max(1)).max(1)
}
/// [`block_depth`] for the AMX layout: whole 32-deep tiles per block (the last block
/// takes the remainder), so that no block but the last pads its depth.
fn amx_block_depth(k: usize, max: usize) -> usize {
    block_depth(k, max).next_multiple_of(32).min(k.max(1))
}

/// Tile of the portable kernel.
const PORTABLE_MR: usize = 4;
const PORTABLE_NR: usize = 16;
/// Rows of `A` packed per block (a multiple of every `MR`): `MC × KC` (about 200 KiB)
/// stays in L2 while the panels of `B` stream past it.
const MC: usize = 192;
/// Columns of `B` packed per block: `KC × NC` (4 MiB) stays in L3.
const NC: usize = 4096;
/// Smallest column / row chunk worth a task of its own when splitting work over threads.
const MIN_TASK_COLS: usize = 256;
/// Largest `B` (all items, in floats: 64 MiB) packed once and shared by tasks that split
/// only the rows of `A` (see [`drive`]).
const SHARED_B_FLOATS: usize = 16 << 20;
/// Packed `B` held per task for a batch (4 MiB): see [`run_task`].
const B_GROUP_FLOATS: usize = 1 << 20;
const MIN_TASK_ROWS: usize = 96;

/// What is added to every element of `C`.
#[derive(Clone, Copy, Debug)]
pub enum Bias<'a> {
    None,
    /// One value per row of `C` (a convolution's output channels).
    PerRow(&'a [f32]),
    /// One value per column of `C` (a linear layer's output features).
    PerColumn(&'a [f32]),
}

/// The instruction sets the kernels exist for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// AVX-512F (x86-64).
    Avx512,
    /// AVX2 with FMA (x86-64).
    Avx2,
    /// Plain Rust, vectorised by the compiler for the build target.
    Portable,
}

impl Isa {
    /// The best kernel this CPU can run (checked once).
    pub fn detect() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| {
            #[cfg(target_arch = "x86_64")]
            {
                if is_x86_feature_detected!("avx512f") {
                    return Isa::Avx512;
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    return Isa::Avx2;
                }
            }
            Isa::Portable
        })
    }

    /// Every kernel this CPU can run, best first (tests check each against the others).
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|i| i.is_supported())
            .collect()
    }

    /// Whether this CPU can run the kernel (every AVX-512 CPU also has AVX2 and FMA).
    pub fn is_supported(self) -> bool {
        let rank = |i: Isa| match i {
            Isa::Avx512 => 0,
            Isa::Avx2 => 1,
            Isa::Portable => 2,
        };
        rank(self) >= rank(Isa::detect())
    }
}

/// Shape of one product: `C[m, n] = A[m, k] · B[k, n]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

/// Where the products are written: item `b` of the batch is the row-major `m × n` matrix
/// at `data[b·batch_stride..]` with row stride `ld`.
///
/// The products only ever write their elements before reading them (a depth block after
/// the first adds to what the first wrote), so the memory may also be uninitialised
/// ([`Output::uninit`]): a new output then costs no zeroing pass over it.
#[derive(Debug)]
pub struct Output<'a> {
    data: *mut f32,
    len: usize,
    pub ld: usize,
    pub batch_stride: usize,
    _memory: std::marker::PhantomData<&'a mut [f32]>,
}

impl<'a> Output<'a> {
    /// Products written over `data`.
    pub fn new(data: &'a mut [f32], ld: usize, batch_stride: usize) -> Self {
        // SAFETY: `MaybeUninit<f32>` has f32's layout, and the products write only f32
        // values, so `data` stays initialised.
        let data = unsafe { &mut *(data as *mut [f32] as *mut [MaybeUninit<f32>]) };
        Self::uninit(data, ld, batch_stride)
    }

    /// Products written into memory that need not be initialised: afterwards every element
    /// of every item's `m × n` matrix is (with `ld = n` and `batch_stride = m·n`, all of
    /// `data[..batch·m·n]`); elements between rows or items are left as they were.
    pub fn uninit(data: &'a mut [MaybeUninit<f32>], ld: usize, batch_stride: usize) -> Self {
        Self {
            data: data.as_mut_ptr().cast(),
            len: data.len(),
            ld,
            batch_stride,
            _memory: std::marker::PhantomData,
        }
    }
}

/// `C_b = A · B_b + bias` for `b in 0..batch` (one left operand shared by the batch, as a
/// convolution's weight is by its images), on the best kernel for this CPU. With
/// `parallel`, blocks of the work run on rayon's pool; without, on the calling thread (for
/// callers that are already one task of a parallel loop).
///
/// # Panics
/// If `out` is too small for the batch of `m × n` matrices or a bias has the wrong length.
pub fn matmul_batched<A: PackA, B: PackB>(
    dims: Dims,
    batch: usize,
    a: &A,
    b: impl Fn(usize) -> B + Sync,
    out: Output<'_>,
    bias: Bias<'_>,
    parallel: bool,
) {
    matmul_batched_on(Isa::detect(), dims, batch, a, b, out, bias, parallel)
}

/// `C = A · B + bias` (one product); see [`matmul_batched`].
pub fn matmul<A: PackA, B: PackB>(
    dims: Dims,
    a: &A,
    b: &B,
    out: &mut [f32],
    ld: usize,
    bias: Bias<'_>,
    parallel: bool,
) {
    matmul_in(Precision::F32, dims, a, b, out, ld, bias, parallel)
}

/// [`matmul`] in the given precision.
///
/// # Panics
/// As [`matmul_batched_in`].
#[allow(clippy::too_many_arguments)]
pub fn matmul_in<A: PackA, B: PackB>(
    precision: Precision,
    dims: Dims,
    a: &A,
    b: &B,
    out: &mut [f32],
    ld: usize,
    bias: Bias<'_>,
    parallel: bool,
) {
    let output = Output::new(out, ld, 0);
    matmul_batched_in(precision, dims, 1, a, |_| b, output, bias, parallel)
}

/// [`matmul_in`] into a new `batch · m × n` vector (item after item, rows `n` apart), which
/// is never zeroed first: the products write all of it.
///
/// # Panics
/// As [`matmul_batched_in`].
#[allow(clippy::too_many_arguments)]
pub fn matmul_batched_new<A: PackA, B: PackB>(
    precision: Precision,
    dims: Dims,
    batch: usize,
    a: &A,
    b: impl Fn(usize) -> B + Sync,
    bias: Bias<'_>,
    parallel: bool,
) -> Vec<f32> {
    let len = batch * dims.m * dims.n;
    let mut c = Vec::with_capacity(len);
    let output = Output::uninit(&mut c.spare_capacity_mut()[..len], dims.n, dims.m * dims.n);
    matmul_batched_in(precision, dims, batch, a, b, output, bias, parallel);
    // SAFETY: with rows `n` apart and items `m·n` apart, the products wrote every element
    // of `c[..len]` (see `Output::uninit`).
    unsafe { c.set_len(len) };
    c
}

/// [`matmul_batched`] in the given precision: bf16 on [`Bf16Kernel::detect`]'s kernel, or
/// in f32 on a CPU without one (see [`Precision::rounds_products`]).
///
/// # Panics
/// As [`matmul_batched`].
#[allow(clippy::too_many_arguments)]
pub fn matmul_batched_in<A: PackA, B: PackB>(
    precision: Precision,
    dims: Dims,
    batch: usize,
    a: &A,
    b: impl Fn(usize) -> B + Sync,
    out: Output<'_>,
    bias: Bias<'_>,
    parallel: bool,
) {
    match precision {
        Precision::Bf16 => match Bf16Kernel::detect() {
            Some(kernel) => matmul_batched_bf16_on(kernel, dims, batch, a, b, out, bias, parallel),
            None => matmul_batched(dims, batch, a, b, out, bias, parallel),
        },
        Precision::F32 => matmul_batched(dims, batch, a, b, out, bias, parallel),
    }
}

/// The kernels the bf16 products can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Kernel {
    /// AMX tiles (`tdpbf16ps`, Intel Sapphire Rapids and later): see [`amx`].
    Amx,
    /// AVX512-BF16 (`vdpbf16ps`, AMD Zen 4 and later, Intel Cooper Lake and later).
    Avx512Bf16,
    /// [`amx::emulated`]: the AMX kernel's arithmetic in plain Rust, so that tests check
    /// the AMX layouts and tiling on every CPU.
    #[cfg(test)]
    AmxEmulated,
}

impl Bf16Kernel {
    /// The fastest bf16 kernel this CPU has (AMX before AVX512-BF16), if any.
    pub fn detect() -> Option<Bf16Kernel> {
        if amx::amx_available() {
            Some(Bf16Kernel::Amx)
        } else if bf16::bf16_kernel_available() {
            Some(Bf16Kernel::Avx512Bf16)
        } else {
            None
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Bf16Kernel::Amx => amx::amx_available(),
            Bf16Kernel::Avx512Bf16 => bf16::bf16_kernel_available(),
            #[cfg(test)]
            Bf16Kernel::AmxEmulated => true,
        }
    }

    /// The instruction that does the products, for reports (`easel bench`, `-v`).
    pub fn name(self) -> &'static str {
        match self {
            Bf16Kernel::Amx => "AMX (tdpbf16ps)",
            Bf16Kernel::Avx512Bf16 => "AVX512-BF16 (vdpbf16ps)",
            #[cfg(test)]
            Bf16Kernel::AmxEmulated => "AMX emulated",
        }
    }
}

/// The kernel a product in `precision` runs on, for reports: e.g. `AVX-512 (f32 FMA)`,
/// `AMX (tdpbf16ps)`, or for bf16 on a CPU without bf16 arithmetic
/// `Avx2 (f32 FMA; bf16 weights only)`.
pub fn kernel_name(precision: Precision) -> String {
    let f32_kernel = format!("{:?} (f32 FMA)", Isa::detect());
    match (precision, Bf16Kernel::detect()) {
        (Precision::Bf16, Some(kernel)) => kernel.name().into(),
        (Precision::Bf16, None) => format!("{f32_kernel}; bf16 weights only"),
        (Precision::F32, _) => f32_kernel,
    }
}

/// [`matmul_batched_in`] in bf16 on a chosen kernel (which must be supported: see
/// [`Bf16Kernel::is_supported`]).
#[allow(clippy::too_many_arguments)]
pub fn matmul_batched_bf16_on<A: PackA, B: PackB>(
    kernel: Bf16Kernel,
    dims: Dims,
    batch: usize,
    a: &A,
    b: impl Fn(usize) -> B + Sync,
    out: Output<'_>,
    bias: Bias<'_>,
    parallel: bool,
) {
    assert!(
        kernel.is_supported(),
        "gemm: bf16 kernel {kernel:?} is not supported by this CPU"
    );
    let job = Job {
        dims,
        batch,
        a,
        b,
        out,
        bias,
        parallel,
    };
    use amx::{MR_AMX, NR_AMX};
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Bf16Kernel::Amx => {
            drive::<MR_AMX, NR_AMX, _, _>(amx::x86::amx_bf16, PanelLayout::AmxTiles, job)
        }
        #[cfg(target_arch = "x86_64")]
        Bf16Kernel::Avx512Bf16 => {
            use kernels::x86::{avx512_bf16, MR_512, NR_512};
            drive::<MR_512, NR_512, _, _>(avx512_bf16, PanelLayout::Bf16Pairs, job)
        }
        #[cfg(test)]
        Bf16Kernel::AmxEmulated => {
            drive::<MR_AMX, NR_AMX, _, _>(amx::emulated, PanelLayout::AmxTiles, job)
        }
        #[allow(unreachable_patterns)]
        _ => unreachable!("checked by is_supported"),
    }
}

/// How the driver hands packed panels to the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PanelLayout {
    /// The f32 panels as packed.
    F32,
    /// Re-laid as bf16 pairs ([`bf16::pair_panels`]) for the AVX512-BF16 kernel.
    Bf16Pairs,
    /// Re-laid for AMX tiles ([`amx::pack_a_rows`], [`amx::pack_b_pairs`]).
    AmxTiles,
}

impl PanelLayout {
    /// Words between the panels of a re-laid block of depth `kc`, per line of a panel.
    fn panel_depth(self, kc: usize) -> usize {
        match self {
            PanelLayout::F32 | PanelLayout::Bf16Pairs => kc,
            PanelLayout::AmxTiles => amx::depth_words(kc),
        }
    }
}

impl<T: PackA> PackA for &T {
    fn pack_a<const MR: usize>(
        &self,
        rows: std::ops::Range<usize>,
        ks: std::ops::Range<usize>,
        dst: &mut [f32],
    ) {
        (**self).pack_a::<MR>(rows, ks, dst)
    }

    fn prepacked<const MR: usize>(
        &self,
        rows: std::ops::Range<usize>,
        ks: std::ops::Range<usize>,
    ) -> Option<&[f32]> {
        (**self).prepacked::<MR>(rows, ks)
    }

    fn prepacked_tiles(
        &self,
        rows: std::ops::Range<usize>,
        ks: std::ops::Range<usize>,
    ) -> Option<&[u32]> {
        (**self).prepacked_tiles(rows, ks)
    }

    fn tile_rows(
        &self,
        rows: std::ops::Range<usize>,
        ks: std::ops::Range<usize>,
    ) -> Option<(*const u8, usize)> {
        (**self).tile_rows(rows, ks)
    }

    fn pack_a_tiles(
        &self,
        rows: std::ops::Range<usize>,
        ks: std::ops::Range<usize>,
        dst: &mut [u32],
    ) -> bool {
        (**self).pack_a_tiles(rows, ks, dst)
    }

    fn pack_a_pairs<const MR: usize>(
        &self,
        rows: std::ops::Range<usize>,
        ks: std::ops::Range<usize>,
        dst: &mut [u32],
    ) -> bool {
        (**self).pack_a_pairs::<MR>(rows, ks, dst)
    }
}

impl<T: PackB> PackB for &T {
    fn pack_b<const NR: usize>(
        &self,
        ks: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        dst: &mut [f32],
    ) {
        (**self).pack_b::<NR>(ks, cols, dst)
    }

    fn prepacked<const NR: usize>(
        &self,
        ks: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
    ) -> Option<&[f32]> {
        (**self).prepacked::<NR>(ks, cols)
    }

    fn pack_b_pairs<const NR: usize>(
        &self,
        ks: std::ops::Range<usize>,
        cols: std::ops::Range<usize>,
        panel_words: usize,
        dst: &mut [u32],
    ) -> bool {
        (**self).pack_b_pairs::<NR>(ks, cols, panel_words, dst)
    }
}

/// [`matmul_batched`] on a chosen kernel (which must be in [`Isa::available`]).
#[allow(clippy::too_many_arguments)]
pub fn matmul_batched_on<A: PackA, B: PackB>(
    isa: Isa,
    dims: Dims,
    batch: usize,
    a: &A,
    b: impl Fn(usize) -> B + Sync,
    out: Output<'_>,
    bias: Bias<'_>,
    parallel: bool,
) {
    assert!(
        isa.is_supported(),
        "gemm: kernel {isa:?} is not supported by this CPU"
    );
    let job = Job {
        dims,
        batch,
        a,
        b,
        out,
        bias,
        parallel,
    };
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => {
            use kernels::x86::{avx512, MR_512, NR_512};
            drive::<MR_512, NR_512, _, _>(avx512, PanelLayout::F32, job)
        }
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => {
            use kernels::x86::{avx2, MR_256, NR_256};
            drive::<MR_256, NR_256, _, _>(avx2, PanelLayout::F32, job)
        }
        _ => drive::<PORTABLE_MR, PORTABLE_NR, _, _>(
            kernels::generic::<PORTABLE_MR, PORTABLE_NR>,
            PanelLayout::F32,
            job,
        ),
    }
}

/// A raw pointer to `C` shared by tasks that write disjoint tiles of it.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);
// SAFETY: tasks write pairwise disjoint regions (distinct batch items or blocks of C).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// One task: rows `rows` and columns `cols` of every item of the batch.
#[derive(Clone, Debug)]
struct Task {
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
}

/// Splits `m × n` into chunks so each thread gets two tasks: enough to even out the load
/// when other processes share the cores, few enough that the packing every task repeats
/// (its rows of `A` for all of `k`, or its columns of `B`) stays a small share of the work.
fn task_chunks(dims: Dims, mr: usize, nr: usize, threads: usize) -> (usize, usize) {
    let (mut mc, mut nc) = (dims.m.max(1), dims.n.max(1));
    if threads <= 1 {
        return (mc, nc);
    }
    let target = threads * 2;
    while dims.m.div_ceil(mc) * dims.n.div_ceil(nc) < target {
        let can_n = nc >= 2 * MIN_TASK_COLS;
        let can_m = mc >= 2 * MIN_TASK_ROWS;
        if can_n && (nc >= mc || !can_m) {
            nc = nc.div_ceil(2).next_multiple_of(nr);
        } else if can_m {
            mc = mc.div_ceil(2).next_multiple_of(mr);
        } else {
            break;
        }
    }
    (mc, nc)
}

/// The operands and output of one batched product, as the tasks see them.
struct Problem<'p, A, FB> {
    kernel: KernelFn,
    /// How the kernel reads its panels.
    layout: PanelLayout,
    dims: Dims,
    batch: usize,
    a: &'p A,
    b: FB,
    c: SharedOut,
    ld: usize,
    batch_stride: usize,
    bias: Bias<'p>,
    /// Depth of the packed blocks ([`block_depth`] at most [`KC`], or at most
    /// [`KC_PAIRS`] for the AVX512-BF16 layout and [`KC_AMX`] for the AMX one when neither
    /// operand is prepacked in f32: prepacked panels are cut as for `KC`).
    kc_block: usize,
}

/// One batched product as the public entry points received it (see [`matmul_batched`]).
struct Job<'o, 'p, A, FB> {
    dims: Dims,
    batch: usize,
    a: &'p A,
    b: FB,
    out: Output<'o>,
    bias: Bias<'p>,
    parallel: bool,
}

fn drive<const MR: usize, const NR: usize, A: PackA, B: PackB>(
    kernel: KernelFn,
    layout: PanelLayout,
    job: Job<'_, '_, A, impl Fn(usize) -> B + Sync>,
) {
    let Job {
        dims,
        batch,
        a,
        b,
        out,
        bias,
        parallel,
    } = job;
    if batch == 0 || dims.m == 0 || dims.n == 0 {
        return;
    }
    assert!(out.ld >= dims.n, "gemm: row stride below the width");
    let needed = (batch - 1) * out.batch_stride + (dims.m - 1) * out.ld + dims.n;
    assert!(out.len >= needed, "gemm: output too small");
    match bias {
        Bias::PerRow(v) => assert_eq!(v.len(), dims.m, "gemm: row bias length"),
        Bias::PerColumn(v) => assert_eq!(v.len(), dims.n, "gemm: column bias length"),
        Bias::None => {}
    }
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    let (mc, nc) = task_chunks(dims, MR, NR, threads);
    let mut tasks = Vec::new();
    for r0 in (0..dims.m).step_by(mc) {
        for c0 in (0..dims.n).step_by(nc) {
            tasks.push(Task {
                rows: r0..(r0 + mc).min(dims.m),
                cols: c0..(c0 + nc).min(dims.n),
            });
        }
    }
    // Prepacked operands hold `KC`-cut blocks; the pair layout goes deeper only when it
    // packs both operands itself.
    let first_block = 0..block_depth(dims.k, KC);
    let prepacked = a
        .prepacked::<MR>(0..MR.min(dims.m), first_block.clone())
        .is_some()
        || b(0)
            .prepacked::<NR>(first_block, 0..NR.min(dims.n))
            .is_some();
    let deepest = match layout {
        PanelLayout::Bf16Pairs if !prepacked => KC_PAIRS,
        PanelLayout::AmxTiles if !prepacked => KC_AMX,
        _ => KC,
    };
    // Tasks that split only the rows of `A` would each pack the same blocks of `B`
    // (a 16²-level convolution's column matrix, a linear layer's weight): with more than one
    // thread, pack each item's `B` once, in parallel, and let every task read it.
    let splits_rows_only = tasks.len() > 1 && nc >= dims.n;
    let shared_floats = batch * dims.k * dims.n.next_multiple_of(NR);
    let kc_block = if layout == PanelLayout::AmxTiles {
        amx_block_depth(dims.k, deepest)
    } else {
        block_depth(dims.k, deepest)
    };
    let c = SharedOut(out.data);
    let (ld, batch_stride) = (out.ld, out.batch_stride);
    // SAFETY (both calls): the assertions above keep every tile inside `out`; tasks cover
    // disjoint blocks of it.
    if threads > 1
        && splits_rows_only
        && layout == PanelLayout::F32
        && !prepacked
        && shared_floats <= SHARED_B_FLOATS
    {
        let packed: Vec<PackedB> = (0..batch)
            .map(|i| PackedB::for_kernel::<NR, B>(|| b(i), dims.k, dims.n))
            .collect();
        let problem = Problem {
            kc_block,
            kernel,
            layout,
            dims,
            batch,
            a,
            b: |i: usize| &packed[i],
            c,
            ld,
            batch_stride,
            bias,
        };
        unsafe { run_tasks::<MR, NR, _, _, _>(&problem, &tasks, threads) };
    } else {
        let problem = Problem {
            kc_block,
            kernel,
            layout,
            dims,
            batch,
            a,
            b,
            c,
            ld,
            batch_stride,
            bias,
        };
        unsafe { run_tasks::<MR, NR, _, _, _>(&problem, &tasks, threads) };
    }
}

/// Runs `tasks` of `p`, in parallel when there are several and more than one thread.
///
/// # Safety
/// As for [`run_task`], for every task; the tasks cover disjoint blocks of `C`.
unsafe fn run_tasks<const MR: usize, const NR: usize, A: PackA, B: PackB, FB>(
    p: &Problem<'_, A, FB>,
    tasks: &[Task],
    threads: usize,
) where
    FB: Fn(usize) -> B + Sync,
{
    let run = |t: &Task| unsafe { run_task::<MR, NR, _, _, _>(p, t) };
    if tasks.len() > 1 && threads > 1 {
        tasks.par_iter().for_each(run);
    } else {
        tasks.iter().for_each(run);
    }
}

/// A 64-byte aligned scratch buffer that grows as needed and is reused across calls.
#[derive(Default)]
struct Scratch(Vec<f32>);

impl Scratch {
    fn get(&mut self, len: usize) -> &mut [f32] {
        const ALIGN: usize = 16;
        if self.0.len() < len + ALIGN {
            self.0 = vec![0.0; len + ALIGN];
        }
        let offset = self.0.as_ptr().align_offset(ALIGN * 4).min(ALIGN);
        &mut self.0[offset..offset + len]
    }
}

thread_local! {
    /// Packed `A` and `B` blocks of the task running on this thread.
    static PACKED: RefCell<(Scratch, Scratch)> = RefCell::default();
    /// The same blocks re-laid as bf16 pairs, for the bf16 kernel.
    static PAIRED_A: RefCell<Vec<u32>> = RefCell::default();
    static PAIRED_B: RefCell<Vec<u32>> = RefCell::default();
}

/// Computes one task's block of `C`, for every item of the batch, sequentially: each
/// packed block of `A` is used for all items before the next is packed.
///
/// # Safety
/// `p.c` is valid for the whole batch of outputs (checked by [`drive`]) and no other thread
/// touches this task's block of them.
unsafe fn run_task<const MR: usize, const NR: usize, A: PackA, B: PackB, FB>(
    p: &Problem<'_, A, FB>,
    t: &Task,
) where
    FB: Fn(usize) -> B,
{
    let k = p.dims.k;
    if k == 0 {
        for item in 0..p.batch {
            let c = p.c.0.add(item * p.batch_stride);
            for i in t.rows.clone() {
                for j in t.cols.clone() {
                    *c.add(i * p.ld + j) = match p.bias {
                        Bias::None => 0.0,
                        Bias::PerRow(v) => v[i],
                        Bias::PerColumn(v) => v[j],
                    };
                }
            }
        }
        return;
    }
    let nc_max = NC.min(t.cols.len()).next_multiple_of(NR);
    let b_stride = p.kc_block.min(k) * nc_max;
    // Items whose packed blocks of B are held at once: all of them when the blocks are
    // small (few columns, where sharing each packed block of A matters), fewer when they
    // are large (where repacking A per group costs little next to the product).
    let group = (B_GROUP_FLOATS / b_stride).clamp(1, p.batch);
    for first in (0..p.batch).step_by(group) {
        let items = first..(first + group).min(p.batch);
        run_group::<MR, NR, A, B>(p, t, items, b_stride);
    }
}

/// [`run_task`] for the batch items `items`, whose packed blocks of `B` (`b_stride`
/// floats each) are held together.
///
/// # Safety
/// As for [`run_task`].
unsafe fn run_group<const MR: usize, const NR: usize, A: PackA, B: PackB>(
    p: &Problem<'_, A, impl Fn(usize) -> B>,
    t: &Task,
    items: std::ops::Range<usize>,
    b_stride: usize,
) {
    let k = p.dims.k;
    let bs: Vec<B> = items.clone().map(&p.b).collect();
    PACKED.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let (a_buf, b_buf) = &mut *bufs;
        let bp = b_buf.get(b_stride * bs.len());
        let ap = a_buf.get(p.kc_block.min(k) * MC.min(t.rows.len()).next_multiple_of(MR));
        for jc in t.cols.clone().step_by(NC) {
            let nc = NC.min(t.cols.end - jc);
            for pc in (0..k).step_by(p.kc_block) {
                let kc = p.kc_block.min(k - pc);
                let b_len = kc * nc.next_multiple_of(NR);
                let b_blocks = match b_pairs_direct::<NR, B>(
                    p.layout,
                    &bs,
                    pc..pc + kc,
                    jc..jc + nc,
                    b_stride,
                ) {
                    Some(blocks) => blocks,
                    None => {
                        let b_f32: Vec<&[f32]> = bs
                            .iter()
                            .zip(bp.chunks_exact_mut(b_stride))
                            .map(
                                |(b, dst)| match b.prepacked::<NR>(pc..pc + kc, jc..jc + nc) {
                                    Some(panels) => &panels[..b_len],
                                    None => {
                                        b.pack_b::<NR>(pc..pc + kc, jc..jc + nc, &mut dst[..b_len]);
                                        &dst[..b_len]
                                    }
                                },
                            )
                            .collect();
                        // Every item's block of B is re-laid (bf16) once here and then
                        // serves all row blocks of A.
                        kernel_blocks::<NR>(p.layout, Operand::B, &b_f32, b_stride, kc, &PAIRED_B)
                    }
                };
                let depth = p.layout.panel_depth(kc);
                for ic in t.rows.clone().step_by(MC) {
                    let mc = MC.min(t.rows.end - ic);
                    let a_len = kc * mc.next_multiple_of(MR);
                    // Where the kernel reads the block of A, and the bytes from one of its
                    // rows to the next (a packed panel's rows are `depth` words apart).
                    let (a_ptr, a_row_bytes) = match a_in_place::<A>(p, ic..ic + mc, pc..pc + kc) {
                        Some(direct) => direct,
                        None => (
                            a_packed::<MR, A>(p, ic..ic + mc, pc..pc + kc, a_len, &mut ap[..a_len]),
                            4 * depth,
                        ),
                    };
                    for (item, &b_block) in b_blocks.iter().enumerate() {
                        let c = p.c.0.add((items.start + item) * p.batch_stride);
                        for jr in (0..nc).step_by(NR) {
                            let b_panel = b_block.add(jr * depth);
                            for ir in (0..mc).step_by(MR) {
                                let a_panel = a_ptr.byte_add(ir * a_row_bytes);
                                tile::<MR, NR>(
                                    p.kernel,
                                    kc,
                                    (a_panel, a_row_bytes),
                                    b_panel,
                                    c,
                                    p.ld,
                                    ic + ir,
                                    jc + jr,
                                    MR.min(mc - ir),
                                    NR.min(nc - jr),
                                    pc > 0,
                                    p.bias,
                                );
                            }
                        }
                    }
                }
            }
        }
    });
}

/// The block `A[rows, ks]` where the kernel reads it: this thread's buffer, packed and (for
/// a bf16 kernel) re-laid, or the operand's own prepacked panels.
///
/// # Safety
/// The pointer is valid until the next packing on this thread.
unsafe fn a_packed<const MR: usize, A: PackA>(
    p: &Problem<'_, A, impl Sized>,
    rows: std::ops::Range<usize>,
    ks: std::ops::Range<usize>,
    a_len: usize,
    ap: &mut [f32],
) -> *const f32 {
    if let Some(ptr) = a_relaid_direct::<MR, A>(p, rows.clone(), ks.clone()) {
        return ptr;
    }
    let kc = ks.len();
    let a_block: &[f32] = match p.a.prepacked::<MR>(rows.clone(), ks.clone()) {
        Some(panels) => &panels[..a_len],
        None => {
            p.a.pack_a::<MR>(rows, ks, ap);
            ap
        }
    };
    kernel_blocks::<MR>(p.layout, Operand::A, &[a_block], a_len, kc, &PAIRED_A)[0]
}

/// For the AMX kernel, `A[rows, ks]` read in place when the operand is a bf16 matrix the
/// tile loads can stride through ([`PackA::tile_rows`]): whole 32-row panels and whole
/// 32-deep tiles only, so the kernel never reads past the block (the convolution weights
/// of SD's networks: no copy of them per product).
fn a_in_place<A: PackA>(
    p: &Problem<'_, A, impl Sized>,
    rows: std::ops::Range<usize>,
    ks: std::ops::Range<usize>,
) -> Option<(*const f32, usize)> {
    let whole = rows.len().is_multiple_of(amx::MR_AMX) && ks.len().is_multiple_of(32);
    if p.layout != PanelLayout::AmxTiles || !whole {
        return None;
    }
    p.a.tile_rows(rows, ks)
        .map(|(ptr, stride)| (ptr.cast::<f32>(), stride))
}

/// For the bf16 layouts, `A[rows, ks]` packed by the operand itself straight into this
/// thread's re-layout buffer (see [`PackA::pack_a_tiles`], [`PackA::pack_a_pairs`]), when
/// it can.
fn a_relaid_direct<const MR: usize, A: PackA>(
    p: &Problem<'_, A, impl Sized>,
    rows: std::ops::Range<usize>,
    ks: std::ops::Range<usize>,
) -> Option<*const f32> {
    if p.layout == PanelLayout::F32 || p.a.prepacked::<MR>(rows.clone(), ks.clone()).is_some() {
        return None;
    }
    if p.layout == PanelLayout::AmxTiles {
        if let Some(tiles) = p.a.prepacked_tiles(rows.clone(), ks.clone()) {
            return Some(tiles.as_ptr().cast::<f32>());
        }
    }
    PAIRED_A.with(|words| {
        let mut words = words.borrow_mut();
        let len = rows.len().next_multiple_of(MR) * p.layout.panel_depth(ks.len());
        if words.len() < len {
            words.resize(len, 0);
        }
        let dst = &mut words[..len];
        let packed = match p.layout {
            PanelLayout::AmxTiles => p.a.pack_a_tiles(rows, ks, dst),
            _ => p.a.pack_a_pairs::<MR>(rows, ks, dst),
        };
        packed.then(|| words.as_ptr().cast::<f32>())
    })
}

/// For the bf16 layouts, each item's `B[ks, cols]` packed by the operand itself straight
/// into this thread's re-layout buffer (see [`PackB::pack_b_pairs`]), blocks `stride` words
/// apart (or more, where AMX's padded panels need it), when every item can. The AMX layout
/// is the pair layout with each panel's depth padded to whole tiles: the operand writes
/// its panels at their padded places and the padding is zeroed.
fn b_pairs_direct<const NR: usize, B: PackB>(
    layout: PanelLayout,
    bs: &[B],
    ks: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
    stride: usize,
) -> Option<Vec<*const f32>> {
    if layout == PanelLayout::F32
        || bs
            .iter()
            .any(|b| b.prepacked::<NR>(ks.clone(), cols.clone()).is_some())
    {
        return None;
    }
    let (kc, panels) = (ks.len(), cols.len().div_ceil(NR));
    let panel_words = NR * layout.panel_depth(kc);
    let stride = stride.max(panels * panel_words);
    PAIRED_B.with(|words| {
        let mut words = words.borrow_mut();
        if words.len() < stride * bs.len() {
            words.resize(stride * bs.len(), 0);
        }
        let mut blocks = Vec::with_capacity(bs.len());
        for (b, dst) in bs.iter().zip(words.chunks_exact_mut(stride)) {
            if !b.pack_b_pairs::<NR>(ks.clone(), cols.clone(), panel_words, dst) {
                return None;
            }
            if layout == PanelLayout::AmxTiles {
                let used = kc.div_ceil(2) * NR;
                for panel in dst.chunks_exact_mut(panel_words).take(panels) {
                    panel[used..].fill(0);
                }
            }
            blocks.push(dst.as_ptr().cast::<f32>());
        }
        Some(blocks)
    })
}

/// Which operand a packed block belongs to (the AMX layouts differ).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operand {
    A,
    B,
}

/// Where the kernel reads each packed block (panels of `W` lines, `stride` floats apart):
/// the blocks themselves for the f32 kernels, or their re-layout for a bf16 kernel in this
/// thread's `buffer`, which stays valid until the next call with it. A re-laid block's
/// panels are `W · layout.panel_depth(kc)` words apart.
fn kernel_blocks<const W: usize>(
    layout: PanelLayout,
    operand: Operand,
    blocks: &[&[f32]],
    stride: usize,
    kc: usize,
    buffer: &'static std::thread::LocalKey<RefCell<Vec<u32>>>,
) -> Vec<*const f32> {
    if layout == PanelLayout::F32 {
        return blocks.iter().map(|b| b.as_ptr()).collect();
    }
    // Words per re-laid block: AMX pads each panel's depth to whole tiles.
    let relaid = |len: usize| (len / kc) * layout.panel_depth(kc);
    let block_words = relaid(stride).max(blocks.iter().map(|b| relaid(b.len())).max().unwrap_or(0));
    buffer.with(|words| {
        let mut words = words.borrow_mut();
        let needed = words.len().max(block_words * blocks.len());
        words.resize(needed, 0);
        let mut out = Vec::with_capacity(blocks.len());
        for (src, dst) in blocks.iter().zip(words.chunks_exact_mut(block_words)) {
            let dst = &mut dst[..relaid(src.len())];
            match (layout, operand) {
                (PanelLayout::AmxTiles, Operand::A) => amx::pack_a_rows(src, W, kc, dst),
                (PanelLayout::AmxTiles, Operand::B) => amx::pack_b_pairs(src, W, kc, dst),
                _ => bf16::pair_panels(src, W, kc, dst),
            }
            out.push(dst.as_ptr().cast::<f32>());
        }
        out
    })
}

/// Runs the kernel on the tile at (`row`, `col`) of which `rows × cols` lie inside `C`;
/// partial tiles go through a full-size scratch tile.
///
/// # Safety
/// As for [`run_task`]; the panels hold `kc·MR` and `kc·NR` floats.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile<const MR: usize, const NR: usize>(
    kernel: KernelFn,
    kc: usize,
    (a_panel, a_row_bytes): (*const f32, usize),
    b_panel: *const f32,
    c: *mut f32,
    ld: usize,
    row: usize,
    col: usize,
    rows: usize,
    cols: usize,
    accumulate: bool,
    bias: Bias<'_>,
) {
    let c_tile = c.add(row * ld + col);
    if rows == MR && cols == NR {
        let mut e = Epilogue {
            accumulate,
            row_bias: std::ptr::null(),
            col_bias: std::ptr::null(),
            a_row_bytes,
        };
        if !accumulate {
            match bias {
                Bias::PerRow(v) => e.row_bias = v.as_ptr().add(row),
                Bias::PerColumn(v) => e.col_bias = v.as_ptr().add(col),
                Bias::None => {}
            }
        }
        kernel(kc, a_panel, b_panel, c_tile, ld, e);
        return;
    }
    let mut scratch = [[0f32; NR]; MR];
    let mut row_bias = [0f32; MR];
    let mut col_bias = [0f32; NR];
    if accumulate {
        for (i, s) in scratch.iter_mut().enumerate().take(rows) {
            std::ptr::copy_nonoverlapping(c_tile.add(i * ld), s.as_mut_ptr(), cols);
        }
    } else {
        match bias {
            Bias::PerRow(v) => row_bias[..rows].copy_from_slice(&v[row..row + rows]),
            Bias::PerColumn(v) => col_bias[..cols].copy_from_slice(&v[col..col + cols]),
            Bias::None => {}
        }
    }
    let e = Epilogue {
        accumulate,
        row_bias: row_bias.as_ptr(),
        col_bias: col_bias.as_ptr(),
        a_row_bytes,
    };
    kernel(kc, a_panel, b_panel, scratch.as_mut_ptr().cast(), NR, e);
    for (i, s) in scratch.iter().enumerate().take(rows) {
        std::ptr::copy_nonoverlapping(s.as_ptr(), c_tile.add(i * ld), cols);
    }
}

#[cfg(test)]
mod tests;

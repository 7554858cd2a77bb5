//! Microkernels: one `MR × NR` tile of `C` from an `MR`-row panel of packed `A` and an
//! `NR`-column panel of packed `B` (layouts in [`super::operand`]). The tile stays in
//! registers for the whole depth; each depth step broadcasts the `MR` floats of `A` and
//! multiplies them into the `NR` floats of `B`, which are vectors along `C`'s rows.
//!
//! Three versions: AVX-512 (12 × 32: 24 zmm accumulators, enough independent FMAs to keep
//! both FMA pipes of a Zen 4/5 or Intel core busy), AVX2+FMA (6 × 16: 12 ymm accumulators)
//! and portable code that the compiler vectorises for whatever the target has (NEON, SIMD128,
//! SSE2).

/// What a kernel adds to the product before storing the tile.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue {
    /// Add the tile's current contents of `C` (every depth block after the first).
    pub accumulate: bool,
    /// `MR` values added to each row, or null.
    pub row_bias: *const f32,
    /// `NR` values added to each column, or null.
    pub col_bias: *const f32,
    /// Bytes from one row of `A` to the next, for the AMX kernel, which loads `A` a tile
    /// of rows at a time: `4·kp` in its packed layout, or a bf16 matrix's own row stride
    /// when it reads the matrix in place. The other kernels read packed panels and
    /// ignore it.
    pub a_row_bytes: usize,
}

/// `C[0..MR, 0..NR] (row stride ldc) = epilogue + A·B` over depth `kc`.
///
/// # Safety
/// `a` holds `kc·MR` floats, `b` holds `kc·NR`, `c` addresses an `MR × NR` tile with row
/// stride `ldc`, and the epilogue's non-null pointers hold `MR`/`NR` floats; the CPU has the
/// kernel's instruction set.
pub type KernelFn =
    unsafe fn(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, e: Epilogue);

/// Portable kernel: rows of `NR` floats in plain arrays, vectorised by the compiler.
///
/// # Safety
/// See [`KernelFn`].
pub unsafe fn generic<const MR: usize, const NR: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    e: Epilogue,
) {
    let mut acc = [[0f32; NR]; MR];
    let a = std::slice::from_raw_parts(a, kc * MR);
    let b = std::slice::from_raw_parts(b, kc * NR);
    for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
        for (row, &av) in acc.iter_mut().zip(ak) {
            for (r, &bv) in row.iter_mut().zip(bk) {
                *r += av * bv;
            }
        }
    }
    for (i, row) in acc.iter_mut().enumerate() {
        let c_row = std::slice::from_raw_parts_mut(c.add(i * ldc), NR);
        let rb = if e.row_bias.is_null() {
            0.0
        } else {
            *e.row_bias.add(i)
        };
        for (j, (out, &v)) in c_row.iter_mut().zip(row.iter()).enumerate() {
            let mut v = v + rb;
            if !e.col_bias.is_null() {
                v += *e.col_bias.add(j);
            }
            if e.accumulate {
                v += *out;
            }
            *out = v;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use super::Epilogue;
    use std::arch::x86_64::*;

    /// Rows of the AVX-512 tile.
    pub const MR_512: usize = 12;
    /// Columns of the AVX-512 tile (two zmm vectors).
    pub const NR_512: usize = 32;

    /// AVX-512 12 × 32 kernel.
    ///
    /// # Safety
    /// See [`super::KernelFn`]; the CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        e: Epilogue,
    ) {
        const MR: usize = MR_512;
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let mut a = a;
        let mut b = b;
        for _ in 0..kc {
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm512_set1_ps(*a.add(i));
                row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
            }
            a = a.add(MR);
            b = b.add(32);
        }
        store_512(&acc, c, ldc, e);
    }

    /// AVX-512 BF16 12 × 32 kernel: the same tile as [`avx512`], two depths per step.
    /// `a` and `b` are panels re-laid by [`crate::gemm::bf16::pair_panels`] (`ceil(kc/2)`
    /// groups of `MR` and `NR` bf16 pairs), passed as `f32` pointers.
    ///
    /// # Safety
    /// See [`super::KernelFn`] with the panel sizes above; the CPU must support AVX-512F
    /// and AVX512-BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub unsafe fn avx512_bf16(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        e: Epilogue,
    ) {
        const MR: usize = MR_512;
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let mut a = a.cast::<i32>();
        let mut b = b.cast::<i32>();
        for _ in 0..kc.div_ceil(2) {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(16).cast()));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai: __m512bh = std::mem::transmute(_mm512_set1_epi32(*a.add(i)));
                row[0] = _mm512_dpbf16_ps(row[0], ai, b0);
                row[1] = _mm512_dpbf16_ps(row[1], ai, b1);
            }
            a = a.add(MR);
            b = b.add(32);
        }
        store_512(&acc, c, ldc, e);
    }

    /// Writes a 12 × 32 tile of accumulators to `C` with the epilogue applied.
    ///
    /// # Safety
    /// As for the kernels above.
    #[inline(always)]
    unsafe fn store_512(acc: &[[__m512; 2]; MR_512], c: *mut f32, ldc: usize, e: Epilogue) {
        let (cb0, cb1) = if e.col_bias.is_null() {
            (_mm512_setzero_ps(), _mm512_setzero_ps())
        } else {
            (
                _mm512_loadu_ps(e.col_bias),
                _mm512_loadu_ps(e.col_bias.add(16)),
            )
        };
        for (i, row) in acc.iter().enumerate() {
            let p = c.add(i * ldc);
            let rb = if e.row_bias.is_null() {
                _mm512_setzero_ps()
            } else {
                _mm512_set1_ps(*e.row_bias.add(i))
            };
            let mut v0 = _mm512_add_ps(row[0], _mm512_add_ps(rb, cb0));
            let mut v1 = _mm512_add_ps(row[1], _mm512_add_ps(rb, cb1));
            if e.accumulate {
                v0 = _mm512_add_ps(v0, _mm512_loadu_ps(p));
                v1 = _mm512_add_ps(v1, _mm512_loadu_ps(p.add(16)));
            }
            _mm512_storeu_ps(p, v0);
            _mm512_storeu_ps(p.add(16), v1);
        }
    }

    /// Rows of the AVX2 tile.
    pub const MR_256: usize = 6;
    /// Columns of the AVX2 tile (two ymm vectors).
    pub const NR_256: usize = 16;

    /// AVX2+FMA 6 × 16 kernel.
    ///
    /// # Safety
    /// See [`super::KernelFn`]; the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        e: Epilogue,
    ) {
        const MR: usize = MR_256;
        // The tile of C is read (a deep product's later passes add to it) and written only
        // after the depth loop, thousands of instructions on, so its misses would stall the
        // end of every call: fetched into L2 now, they arrive during the loop. L2, not L1:
        // the panels of A and B streaming through L1 would evict them first. On the 2-core
        // Zen 3, 1 thread (`gemm_bench`): 8192 × 320 × 1280 (four passes) 83–85 → 92
        // GFLOP/s, the 16²-level 1280-channel convolution through its column matrix
        // (thirty passes) 180–181 → 167–168 ms; single-pass products unchanged.
        for i in 0..MR {
            let p = c.add(i * ldc).cast::<i8>();
            _mm_prefetch::<_MM_HINT_T1>(p);
            _mm_prefetch::<_MM_HINT_T1>(p.add(60));
        }
        let mut acc = [[_mm256_setzero_ps(); 2]; MR];
        let mut a = a;
        let mut b = b;
        for _ in 0..kc {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = _mm256_set1_ps(*a.add(i));
                row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
            }
            a = a.add(MR);
            b = b.add(16);
        }
        let (cb0, cb1) = if e.col_bias.is_null() {
            (_mm256_setzero_ps(), _mm256_setzero_ps())
        } else {
            (
                _mm256_loadu_ps(e.col_bias),
                _mm256_loadu_ps(e.col_bias.add(8)),
            )
        };
        for (i, row) in acc.iter().enumerate() {
            let p = c.add(i * ldc);
            let rb = if e.row_bias.is_null() {
                _mm256_setzero_ps()
            } else {
                _mm256_set1_ps(*e.row_bias.add(i))
            };
            let mut v0 = _mm256_add_ps(row[0], _mm256_add_ps(rb, cb0));
            let mut v1 = _mm256_add_ps(row[1], _mm256_add_ps(rb, cb1));
            if e.accumulate {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(p));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(p.add(8)));
            }
            _mm256_storeu_ps(p, v0);
            _mm256_storeu_ps(p.add(8), v1);
        }
    }
}

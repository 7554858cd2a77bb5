//! bf16 products on Intel's AMX tile unit (Sapphire Rapids and later Xeons).
//!
//! On those CPUs `vdpbf16ps` runs no faster than an f32 FMA; their bf16 throughput is in
//! the tile unit, where one `tdpbf16ps` multiplies a 16 × 32 bf16 tile of `A` by a 32 × 16
//! tile of `B` into a 16 × 16 f32 tile of `C` (16 K flops). The microkernel here keeps a
//! 32 × 32 block of `C` in four accumulator tiles and streams two tiles of each operand per
//! 32-deep step, so every loaded tile feeds two products.
//!
//! The tile unit wants its operands in two layouts, which the driver produces from the
//! ordinary packed f32 panels ([`pack_a_rows`], [`pack_b_pairs`]):
//! - `A`: for each panel of 32 rows, row `i` holds its depth pairs contiguously, `kp`
//!   words of (depth `2q` low half, depth `2q + 1` high half), so a 16-row tile is one strided
//!   load;
//! - `B`: for each panel of 32 columns, pair-group `q` holds the 32 columns' words for depths
//!   `2q`, `2q + 1` ("VNNI" layout), the same form as the AVX512-BF16 kernel's panels.
//!
//! Both are padded with zeros to a multiple of 32 depths (`kp = 16·ceil(kc/32)` words a
//! line), so the kernel never needs a partial-depth tile.
//!
//! Most operands skip the f32 panels: a bf16 weight's rows already are `A`'s tile rows at
//! the matrix's own stride, so whole 32-row, whole-tile blocks of it are read in place
//! (`Epilogue::a_row_bytes`, `PackA::tile_rows`); an attention head's keys and values are
//! laid out once (`PackedA::for_products`); and the right operands pair themselves straight
//! into `B`'s layout at its padded panel stride (`PackB::pack_b_pairs`).
//!
//! Linux hands the tile state to a process only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`); [`amx_available`] asks once and
//! reports AMX only when the CPU has it, the kernel enabled it in XCR0 and the request was
//! granted. Each thread loads the tile configuration before its first product.
//!
//! `EASEL_BF16_KERNEL=avx512bf16` turns AMX off (for comparisons on the same machine).

use super::bf16::{pair_panels, to_bf16_bits};
#[cfg(test)]
use super::kernels::Epilogue;
use super::operand::Element;

/// Rows of the AMX block of `C` (two 16-row tiles).
pub const MR_AMX: usize = 32;
/// Columns of the AMX block of `C` (two 16-column tiles).
pub const NR_AMX: usize = 32;

/// Words per line of a re-laid panel of depth `kc`: pairs of depths, padded to whole
/// 32-deep tiles.
pub fn depth_words(kc: usize) -> usize {
    kc.div_ceil(32) * 16
}

/// Whether the bf16 products can run on AMX here (checked once; see the module doc).
pub fn amx_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let disabled = std::env::var("EASEL_BF16_KERNEL")
            .map(|v| v.eq_ignore_ascii_case("avx512bf16"))
            .unwrap_or(false);
        !disabled && x86::detect_and_enable() && passes_self_check()
    })
}

/// One small product on the tile unit against the same arithmetic in plain Rust
/// ([`emulate_tile`]), before AMX is trusted with any real work: a CPU, hypervisor or
/// kernel that reports AMX but computes something else (or a layout slip on a CPU this
/// code could not be tested on) falls back to AVX512-BF16 with a warning instead of
/// producing wrong images.
fn passes_self_check() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // 32 × 32 × 72: three depth tiles, the last one partly padding.
        let kc = 72;
        let kp = depth_words(kc);
        let value = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 16.0;
        let a: Vec<f32> = (0..kc * MR_AMX).map(value).collect();
        let b: Vec<f32> = (0..kc * NR_AMX).map(|i| value(i + 7)).collect();
        let mut a_tiles = vec![0u32; MR_AMX * kp];
        let mut b_tiles = vec![0u32; NR_AMX * kp];
        pack_a_rows(&a, MR_AMX, kc, &mut a_tiles);
        pack_b_pairs(&b, NR_AMX, kc, &mut b_tiles);
        let bias: Vec<f32> = (0..MR_AMX).map(|i| i as f32).collect();
        let mut got = vec![1f32; MR_AMX * NR_AMX];
        let mut want = got.clone();
        let e = super::kernels::Epilogue {
            accumulate: true,
            row_bias: std::ptr::null(),
            col_bias: std::ptr::null(),
            a_row_bytes: 4 * kp,
        };
        let first = super::kernels::Epilogue {
            accumulate: false,
            row_bias: bias.as_ptr(),
            col_bias: std::ptr::null(),
            a_row_bytes: 4 * kp,
        };
        // SAFETY: the buffers hold the panels and tile the kernel reads and writes; the
        // tile state was granted.
        unsafe {
            let (ap, bp) = (a_tiles.as_ptr().cast(), b_tiles.as_ptr().cast());
            x86::amx_bf16(kc, ap, bp, got.as_mut_ptr(), NR_AMX, first);
            x86::amx_bf16(kc, ap, bp, got.as_mut_ptr(), NR_AMX, e);
        }
        emulate_tile(
            kc,
            &a_tiles,
            &b_tiles,
            &mut want,
            NR_AMX,
            Some(&bias),
            false,
        );
        emulate_tile(kc, &a_tiles, &b_tiles, &mut want, NR_AMX, None, true);
        // Small integers times sixteenths: every sum is exact, so any difference is an error.
        if got != want {
            eprintln!(
                "warning: this CPU reports AMX but its tile products disagree with the \
                 reference; bf16 products fall back to AVX512-BF16"
            );
            return false;
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// The AMX kernel's arithmetic on one 32 × 32 block in plain Rust: `C = bias + A·B` or
/// `C += A·B` (`accumulate`), with `A`/`B` in the layouts of [`pack_a_rows`] and
/// [`pack_b_pairs`].
fn emulate_tile(
    kc: usize,
    a: &[u32],
    b: &[u32],
    c: &mut [f32],
    ldc: usize,
    row_bias: Option<&[f32]>,
    accumulate: bool,
) {
    let kp = depth_words(kc);
    let half = |w: u32, high: bool| f32::from_bits(if high { w & 0xFFFF_0000 } else { w << 16 });
    for i in 0..MR_AMX {
        for j in 0..NR_AMX {
            let out = &mut c[i * ldc + j];
            let mut s = if accumulate { *out } else { 0.0 };
            for q in 0..kp {
                let (aw, bw) = (a[i * kp + q], b[q * NR_AMX + j]);
                s += half(aw, false) * half(bw, false) + half(aw, true) * half(bw, true);
            }
            *out = s + row_bias.map_or(0.0, |r| r[i]);
        }
    }
}

/// Re-lays `A` panels (`kc` depths × `width` rows, depth-major f32, `width·kc` floats
/// apart) as rows of bf16 pairs: row `i` of a panel at words `i·kp .. (i+1)·kp`, panels
/// `width·kp` words apart, zero past depth `kc`.
pub fn pack_a_rows(src: &[f32], width: usize, kc: usize, dst: &mut [u32]) {
    let kp = depth_words(kc);
    let pairs = kc / 2;
    for (panel, out) in src
        .chunks_exact(kc * width)
        .zip(dst.chunks_exact_mut(kp * width))
    {
        for (i, row) in out.chunks_exact_mut(kp).enumerate() {
            for (q, w) in row.iter_mut().enumerate().take(pairs) {
                let lo = to_bf16_bits(panel[2 * q * width + i]);
                let hi = to_bf16_bits(panel[(2 * q + 1) * width + i]);
                *w = u32::from(lo) | (u32::from(hi) << 16);
            }
            let mut q = pairs;
            if kc % 2 == 1 {
                row[q] = u32::from(to_bf16_bits(panel[(kc - 1) * width + i]));
                q += 1;
            }
            row[q..].fill(0);
        }
    }
}

/// Packs `data`'s lines `lines` (line `l`, depth `d` at `data[l·ld + d]`, e.g. the rows
/// of a row-major `A`) over depths `ks` straight into [`pack_a_rows`]'s layout with
/// `MR_AMX`-line panels: each line's consecutive depths become its consecutive bf16 pairs.
/// Lines past `lines.end` are zero.
pub fn pack_a_rows_from_lines<T: Element>(
    data: &[T],
    ld: usize,
    lines: std::ops::Range<usize>,
    ks: std::ops::Range<usize>,
    dst: &mut [u32],
) {
    let kc = ks.len();
    let kp = depth_words(kc);
    let panels = lines.len().div_ceil(MR_AMX);
    for (slot, row) in dst.chunks_exact_mut(kp).take(panels * MR_AMX).enumerate() {
        let line = lines.start + slot;
        if line >= lines.end {
            row.fill(0);
        } else {
            T::bf16_pairs(&data[line * ld + ks.start..][..kc], row);
        }
    }
}

/// `src` rounded to bf16 in order, consecutive values paired into the words of `dst`
/// (the first in the low half), zero past its end; `dst` holds at least
/// `ceil(src.len()/2)` words.
pub fn f32_to_bf16_pairs(src: &[f32], dst: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if super::bf16::bf16_kernel_available() {
        // SAFETY: the CPU has the instructions; the length is checked inside.
        return unsafe { x86::bf16_pairs_avx512(src, dst) };
    }
    for (w, pair) in dst.iter_mut().zip(src.chunks(2)) {
        let hi = pair.get(1).map_or(0, |&x| to_bf16_bits(x));
        *w = u32::from(to_bf16_bits(pair[0])) | (u32::from(hi) << 16);
    }
    dst[src.len().div_ceil(2)..].fill(0);
}

/// Re-lays `B` panels (`kc` depths × `width` columns, depth-major f32) as `kp` groups of
/// `width` words, group `q` holding depths `2q` and `2q + 1` of each column; panels
/// `width·kp` words apart, zero past depth `kc`.
pub fn pack_b_pairs(src: &[f32], width: usize, kc: usize, dst: &mut [u32]) {
    let kp = depth_words(kc);
    let used = kc.div_ceil(2) * width;
    for (panel, out) in src
        .chunks_exact(kc * width)
        .zip(dst.chunks_exact_mut(kp * width))
    {
        pair_panels(panel, width, kc, &mut out[..used]);
        out[used..].fill(0);
    }
}

/// What the AMX kernel computes, in plain Rust on the same layouts: tests run the driver
/// with it on CPUs without AMX, so the re-layout and tiling are checked everywhere and the
/// AMX machine only has the instructions left to prove.
///
/// # Safety
/// As [`super::kernels::KernelFn`] with panels re-laid by [`pack_a_rows`] and
/// [`pack_b_pairs`].
#[cfg(test)]
pub unsafe fn emulated(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    ldc: usize,
    e: Epilogue,
) {
    let kp = depth_words(kc);
    // The rows of `A`, `e.a_row_bytes` apart (packed tiles or a bf16 matrix in place).
    let a: Vec<u32> = (0..MR_AMX * kp)
        .map(|w| {
            let row = a.cast::<u8>().add((w / kp) * e.a_row_bytes);
            row.cast::<u32>().add(w % kp).read_unaligned()
        })
        .collect();
    let b = std::slice::from_raw_parts(b.cast::<u32>(), NR_AMX * kp);
    let c = std::slice::from_raw_parts_mut(c, (MR_AMX - 1) * ldc + NR_AMX);
    let row_bias = (!e.row_bias.is_null()).then(|| std::slice::from_raw_parts(e.row_bias, MR_AMX));
    emulate_tile(kc, &a, b, c, ldc, row_bias, e.accumulate);
    if !e.col_bias.is_null() {
        for i in 0..MR_AMX {
            for j in 0..NR_AMX {
                c[i * ldc + j] += *e.col_bias.add(j);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod x86 {
    use super::{MR_AMX, NR_AMX};
    use crate::gemm::kernels::Epilogue;
    use std::arch::asm;
    use std::cell::Cell;

    /// CPUID.(7,0):EDX bits: AMX-BF16 and AMX-TILE.
    const AMX_BF16: u32 = 1 << 22;
    const AMX_TILE: u32 = 1 << 24;
    /// XCR0 bits of the tile configuration and tile data state.
    const XTILE_STATE: u64 = (1 << 17) | (1 << 18);

    /// Has the CPU AMX-BF16, has the OS enabled the tile state, and did Linux grant this
    /// process its use.
    pub(super) fn detect_and_enable() -> bool {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        let (max_leaf, osxsave) = (__cpuid(0).eax, __cpuid(1).ecx & (1 << 27) != 0);
        if max_leaf < 7 || !osxsave {
            return false;
        }
        let edx = __cpuid_count(7, 0).edx;
        if edx & (AMX_BF16 | AMX_TILE) != AMX_BF16 | AMX_TILE {
            return false;
        }
        let (lo, hi): (u32, u32);
        // SAFETY: OSXSAVE is set, so XGETBV is enabled.
        unsafe {
            asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack))
        };
        let xcr0 = (u64::from(hi) << 32) | u64::from(lo);
        if xcr0 & XTILE_STATE != XTILE_STATE {
            return false;
        }
        request_tile_permission()
    }

    #[cfg(target_os = "linux")]
    fn request_tile_permission() -> bool {
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: a plain system call with integer arguments.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }

    /// Other systems grant the tile state without a request.
    #[cfg(not(target_os = "linux"))]
    fn request_tile_permission() -> bool {
        true
    }

    /// The `ldtilecfg` operand: palette 1, tiles 0–7 of 16 rows × 64 bytes.
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        bytes_per_row: [u16; 16],
        rows: [u8; 16],
    }

    /// `src` rounded to bf16 in order (consecutive values pair up into the words of
    /// `dst`), zero past its end.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX512-BF16; `dst` holds at least
    /// `ceil(src.len()/2)` words.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn bf16_pairs_avx512(src: &[f32], dst: &mut [u32]) {
        use std::arch::x86_64::*;
        assert!(dst.len() >= src.len().div_ceil(2));
        let mut d = 0;
        for chunk in src.chunks(32) {
            let n = chunk.len();
            let mask = |from: usize| -> __mmask16 {
                let live = n.saturating_sub(from).min(16);
                ((1u32 << live) - 1) as __mmask16
            };
            let lo = _mm512_maskz_loadu_ps(mask(0), chunk.as_ptr());
            let hi = _mm512_maskz_loadu_ps(mask(16), chunk.as_ptr().add(16.min(n)));
            let words: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            let live = (dst.len() - d).min(16);
            let store: __mmask16 = ((1u32 << live) - 1) as __mmask16;
            _mm512_mask_storeu_epi32(dst.as_mut_ptr().add(d).cast(), store, words);
            d += 16;
        }
        if d < dst.len() {
            dst[d..].fill(0);
        }
    }

    thread_local! {
        static CONFIGURED: Cell<bool> = const { Cell::new(false) };
    }

    /// Loads the tile configuration on this thread once.
    ///
    /// # Safety
    /// [`super::amx_available`] must have returned true.
    unsafe fn configure_tiles() {
        if CONFIGURED.get() {
            return;
        }
        let mut cfg = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            bytes_per_row: [0; 16],
            rows: [0; 16],
        };
        for t in 0..8 {
            cfg.bytes_per_row[t] = 64;
            cfg.rows[t] = 16;
        }
        asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack, readonly));
        CONFIGURED.set(true);
    }

    /// `prefetcht0` of the 32 cache lines of `B`'s 32-deep step two steps ahead of the one
    /// being multiplied (bytes 4096–6143 past `{b}`). A tile load that misses L1 waits on
    /// each of its 16 lines in turn; `B`'s panel (64 KiB at 1024 deep) outgrows L1 and
    /// comes back from L2 for every block of `A` it serves. Past the panel's end the
    /// lines are the next panel's first steps, which the next column block reads.
    macro_rules! prefetch_b_ahead {
        () => {
            concat!(
                "prefetcht0 [{b} + 4096]\n",
                "prefetcht0 [{b} + 4160]\n",
                "prefetcht0 [{b} + 4224]\n",
                "prefetcht0 [{b} + 4288]\n",
                "prefetcht0 [{b} + 4352]\n",
                "prefetcht0 [{b} + 4416]\n",
                "prefetcht0 [{b} + 4480]\n",
                "prefetcht0 [{b} + 4544]\n",
                "prefetcht0 [{b} + 4608]\n",
                "prefetcht0 [{b} + 4672]\n",
                "prefetcht0 [{b} + 4736]\n",
                "prefetcht0 [{b} + 4800]\n",
                "prefetcht0 [{b} + 4864]\n",
                "prefetcht0 [{b} + 4928]\n",
                "prefetcht0 [{b} + 4992]\n",
                "prefetcht0 [{b} + 5056]\n",
                "prefetcht0 [{b} + 5120]\n",
                "prefetcht0 [{b} + 5184]\n",
                "prefetcht0 [{b} + 5248]\n",
                "prefetcht0 [{b} + 5312]\n",
                "prefetcht0 [{b} + 5376]\n",
                "prefetcht0 [{b} + 5440]\n",
                "prefetcht0 [{b} + 5504]\n",
                "prefetcht0 [{b} + 5568]\n",
                "prefetcht0 [{b} + 5632]\n",
                "prefetcht0 [{b} + 5696]\n",
                "prefetcht0 [{b} + 5760]\n",
                "prefetcht0 [{b} + 5824]\n",
                "prefetcht0 [{b} + 5888]\n",
                "prefetcht0 [{b} + 5952]\n",
                "prefetcht0 [{b} + 6016]\n",
                "prefetcht0 [{b} + 6080]",
            )
        };
    }

    /// The 32 × 32 AMX microkernel: accumulator tiles 0–3 hold `C`'s quarters, tiles 4–5
    /// the two 16-row halves of `A`'s 32-deep step, tiles 6–7 the two 16-column halves of
    /// `B`'s. Biases are added after the tiles are stored.
    ///
    /// # Safety
    /// See [`crate::gemm::kernels::KernelFn`] with panels re-laid by
    /// [`super::pack_a_rows`] / [`super::pack_b_pairs`]; [`super::amx_available`] must have
    /// returned true.
    pub unsafe fn amx_bf16(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        ldc: usize,
        e: Epilogue,
    ) {
        if kc == 0 {
            return;
        }
        configure_tiles();
        let a_lo = a.cast::<u8>();
        let a_hi = a_lo.add(16 * e.a_row_bytes);
        let c_hi = c.add(16 * ldc);
        asm!(
            "test {acc:e}, {acc:e}",
            "jz 2f",
            "tileloadd tmm0, [{c} + {ldc}*1]",
            "tileloadd tmm1, [{c} + {ldc}*1 + 64]",
            "tileloadd tmm2, [{c_hi} + {ldc}*1]",
            "tileloadd tmm3, [{c_hi} + {ldc}*1 + 64]",
            "jmp 3f",
            "2:",
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "3:",
            prefetch_b_ahead!(),
            "tileloadd tmm4, [{a_lo} + {lda}*1]",
            "tileloadd tmm6, [{b} + {ldb}*1]",
            "tileloadd tmm7, [{b} + {ldb}*1 + 64]",
            "tileloadd tmm5, [{a_hi} + {lda}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a_lo}, 64",
            "add {a_hi}, 64",
            "add {b}, {b_step}",
            "dec {steps}",
            "jnz 3b",
            "tilestored [{c} + {ldc}*1], tmm0",
            "tilestored [{c} + {ldc}*1 + 64], tmm1",
            "tilestored [{c_hi} + {ldc}*1], tmm2",
            "tilestored [{c_hi} + {ldc}*1 + 64], tmm3",
            acc = in(reg) u32::from(e.accumulate),
            c = in(reg) c,
            c_hi = in(reg) c_hi,
            ldc = in(reg) ldc * 4,
            a_lo = inout(reg) a_lo => _,
            a_hi = inout(reg) a_hi => _,
            lda = in(reg) e.a_row_bytes,
            b = inout(reg) b => _,
            ldb = in(reg) NR_AMX * 4,
            b_step = const 16 * NR_AMX * 4,
            steps = inout(reg) kc.div_ceil(32) => _,
            options(nostack),
        );
        if e.row_bias.is_null() && e.col_bias.is_null() {
            return;
        }
        for i in 0..MR_AMX {
            let rb = if e.row_bias.is_null() {
                0.0
            } else {
                *e.row_bias.add(i)
            };
            let row = std::slice::from_raw_parts_mut(c.add(i * ldc), NR_AMX);
            for (j, v) in row.iter_mut().enumerate() {
                *v += rb;
                if !e.col_bias.is_null() {
                    *v += *e.col_bias.add(j);
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    pub(super) fn detect_and_enable() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rows_hold_depth_pairs_per_row() {
        // One panel of 3 depths × 2 rows, depth-major: [d0r0, d0r1, d1r0, d1r1, d2r0, d2r1].
        // (width 2 only to keep the picture small; the driver uses 32.)
        let src = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut dst = [u32::MAX; 2 * 16];
        pack_a_rows(&src, 2, 3, &mut dst);
        let bf = |x: f32| u32::from(to_bf16_bits(x));
        assert_eq!(dst[0], bf(1.0) | bf(3.0) << 16);
        assert_eq!(dst[1], bf(5.0));
        assert!(dst[2..16].iter().all(|&w| w == 0));
        assert_eq!(dst[16], bf(2.0) | bf(4.0) << 16);
        assert_eq!(dst[17], bf(6.0));
        assert!(dst[18..].iter().all(|&w| w == 0));
    }

    #[test]
    fn b_pairs_are_padded_to_whole_tiles() {
        // Two panels of 33 depths × 32 columns: 17 used pair groups of 32, padded to 32.
        let kc = 33;
        let src: Vec<f32> = (0..2 * kc * 32).map(|i| i as f32).collect();
        let mut dst = vec![u32::MAX; 2 * 32 * depth_words(kc)];
        pack_b_pairs(&src, 32, kc, &mut dst);
        let bf = |x: f32| u32::from(to_bf16_bits(x));
        let panel = 32 * depth_words(kc);
        for p in 0..2 {
            let base = (p * kc * 32) as f32;
            // Group 0, column 5: depths 0 and 1.
            assert_eq!(dst[p * panel + 5], bf(base + 5.0) | bf(base + 37.0) << 16);
            // Group 16, column 3: depth 32 alone.
            assert_eq!(dst[p * panel + 16 * 32 + 3], bf(base + 32.0 * 32.0 + 3.0));
            assert!(dst[p * panel + 17 * 32..(p + 1) * panel]
                .iter()
                .all(|&w| w == 0));
        }
    }
}

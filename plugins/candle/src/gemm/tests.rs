//! The blocked product against a plain triple loop in f64, on every kernel this CPU has,
//! at sizes that are not multiples of any tile or block (1, primes, deeper than one `KC`
//! block, wider than one `NC` block) and with every operand form and bias.

use super::*;
use std::ops::Range;

fn random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `|got − want| ≤ 1e-5·(1 + Σ|a·b|)` elementwise: f32 rounding over a sum of `k` terms.
fn assert_close(got: &[f32], want: &[f64], scale: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, ((&g, &w), &s)) in got.iter().zip(want).zip(scale).enumerate() {
        let tol = 1e-5 * (1.0 + s);
        assert!(
            (g as f64 - w).abs() <= tol,
            "{what}: element {i}: {g} vs {w} (tol {tol})"
        );
    }
}

/// Reference `C = A·B + bias` with `A[i][k] = a(i, k)`, `B[k][j] = b(k, j)`; also returns
/// `Σ|A·B|` per element for the tolerance.
fn reference(
    dims: Dims,
    a: impl Fn(usize, usize) -> f32,
    b: impl Fn(usize, usize) -> f32,
    bias: Bias<'_>,
) -> (Vec<f64>, Vec<f64>) {
    let mut c = vec![0f64; dims.m * dims.n];
    let mut mag = vec![0f64; dims.m * dims.n];
    for i in 0..dims.m {
        for j in 0..dims.n {
            let mut s = match bias {
                Bias::None => 0.0,
                Bias::PerRow(v) => v[i] as f64,
                Bias::PerColumn(v) => v[j] as f64,
            };
            let mut m = s.abs();
            for k in 0..dims.k {
                let p = a(i, k) as f64 * b(k, j) as f64;
                s += p;
                m += p.abs();
            }
            c[i * dims.n + j] = s;
            mag[i * dims.n + j] = m;
        }
    }
    (c, mag)
}

#[test]
fn products_match_the_triple_loop_at_ragged_sizes() {
    let sizes = [
        (1, 1, 1),
        (1, 37, 5),
        (13, 1, 7),
        (12, 32, 256),
        (13, 33, 257),
        (29, 47, 300),
        (97, 83, 41),
        (200, 70, 530),
        (5, 4100, 3),
    ];
    for isa in Isa::available() {
        for (t, &(m, n, k)) in sizes.iter().enumerate() {
            let dims = Dims { m, n, k };
            let a = random(m * k, 3 * t as u64 + 1);
            let b = random(k * n, 3 * t as u64 + 2);
            let bias = random(m.max(n), 3 * t as u64 + 3);
            for (form, parallel) in [(0, true), (1, false), (2, true), (3, true)] {
                let bias = match form {
                    0 => Bias::None,
                    1 | 3 => Bias::PerRow(&bias[..m]),
                    _ => Bias::PerColumn(&bias[..n]),
                };
                // B stored row-major for forms 0/1, as the transpose of an [n, k] matrix
                // for form 2; the output has a row stride wider than n.
                let ld = n + 3;
                let mut c = vec![f32::NAN; m * ld];
                let a_op = RowMajor { data: &a, ld: k };
                let out = Output::new(&mut c, ld, 0);
                let (want, mag) = if form == 3 {
                    // Both operands pre-packed; A from its transpose (`a` read as [k, m]).
                    let a_t = Transposed { data: &a, ld: m };
                    let a_op = PackedA::new(&a_t, m, k);
                    let b_op = PackedB::new(&RowMajor { data: &b, ld: n }, k, n);
                    matmul_batched_on(isa, dims, 1, &a_op, |_| &b_op, out, bias, parallel);
                    let (want, mag) =
                        reference(dims, |i, p| a[p * m + i], |p, j| b[p * n + j], bias);
                    // Also A transposed without pre-packing.
                    let mut c2 = vec![0f32; m * n];
                    let out2 = Output::new(&mut c2, n, 0);
                    matmul_batched_on(
                        isa,
                        dims,
                        1,
                        &a_t,
                        |_| RowMajor { data: &b, ld: n },
                        out2,
                        bias,
                        parallel,
                    );
                    assert_close(&c2, &want, &mag, &format!("{isa:?} {m}x{n}x{k} Aᵀ"));
                    (want, mag)
                } else if form == 2 {
                    let b_op = Transposed { data: &b, ld: k };
                    matmul_batched_on(isa, dims, 1, &a_op, |_| b_op, out, bias, parallel);
                    reference(dims, |i, p| a[i * k + p], |p, j| b[j * k + p], bias)
                } else {
                    let b_op = RowMajor { data: &b, ld: n };
                    matmul_batched_on(isa, dims, 1, &a_op, |_| b_op, out, bias, parallel);
                    reference(dims, |i, p| a[i * k + p], |p, j| b[p * n + j], bias)
                };
                let got: Vec<f32> = c.chunks(ld).flat_map(|r| r[..n].to_vec()).collect();
                assert_close(
                    &got,
                    &want,
                    &mag,
                    &format!("{isa:?} {m}x{n}x{k} form {form}"),
                );
                assert!(
                    c.chunks(ld).all(|r| r[n..].iter().all(|v| v.is_nan())),
                    "{isa:?} {m}x{n}x{k}: wrote outside the output columns"
                );
            }
        }
    }
}

/// Direct convolution in f64 for one image.
#[allow(clippy::too_many_arguments)]
fn direct_conv(
    x: &[f32],
    w: &[f32],
    (c, h, wd): (usize, usize, usize),
    cout: usize,
    k: usize,
    s: usize,
    p: usize,
) -> (Vec<f64>, Vec<f64>, usize, usize) {
    let ho = (h + 2 * p - k) / s + 1;
    let wo = (wd + 2 * p - k) / s + 1;
    let mut y = vec![0f64; cout * ho * wo];
    let mut mag = vec![0f64; cout * ho * wo];
    for o in 0..cout {
        for oy in 0..ho {
            for ox in 0..wo {
                let (mut acc, mut m) = (0f64, 0f64);
                for ci in 0..c {
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * s + ky) as isize - p as isize;
                            let ix = (ox * s + kx) as isize - p as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                continue;
                            }
                            let v = x[(ci * h + iy as usize) * wd + ix as usize] as f64
                                * w[((o * c + ci) * k + ky) * k + kx] as f64;
                            acc += v;
                            m += v.abs();
                        }
                    }
                }
                y[(o * ho + oy) * wo + ox] = acc;
                mag[(o * ho + oy) * wo + ox] = m;
            }
        }
    }
    (y, mag, ho, wo)
}

/// Convolutions the im2col tests run: (channels, height, width, out channels, kernel,
/// stride, padding).
const CONV_CASES: [(usize, usize, usize, usize, usize, usize, usize); 12] = [
    (3, 7, 5, 4, 3, 1, 1),
    (5, 9, 11, 13, 3, 2, 1),
    (2, 8, 8, 3, 3, 1, 0),
    (4, 6, 7, 5, 1, 1, 0),
    (3, 5, 5, 2, 5, 1, 2),
    (1, 1, 1, 2, 3, 1, 1),
    (31, 16, 16, 17, 3, 1, 1),
    (40, 33, 35, 7, 3, 2, 1),
    // Rows of 32 output columns and more: the fixed-width runs of stride 1, with the
    // left and right padding inside them, and ragged panels falling back.
    (3, 6, 64, 5, 3, 1, 1),
    (2, 5, 70, 3, 3, 1, 1),
    (2, 4, 40, 3, 5, 1, 2),
    (2, 3, 33, 2, 3, 1, 0),
];

/// Runs every [`CONV_CASES`] convolution on a batch of two images through `product`
/// (weight, image operands, output) and checks it against a direct convolution of
/// `round`ed inputs.
fn check_convolutions(
    what: &str,
    round: impl Fn(f32) -> f32,
    product: impl for<'a> Fn(Dims, &RowMajor<'a>, &'a (dyn Fn(usize) -> Im2col<'a> + Sync), Output<'a>),
) {
    for (t, &(c, h, wd, cout, k, s, p)) in CONV_CASES.iter().enumerate() {
        let batch = 2;
        let x = random(batch * c * h * wd, 5 * t as u64 + 1);
        let w = random(cout * c * k * k, 5 * t as u64 + 2);
        let (ho, wo) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
        let mut y = vec![f32::NAN; batch * cout * ho * wo];
        let depth = c * k * k;
        let image = |i: usize| &x[i * c * h * wd..(i + 1) * c * h * wd];
        let cols = |i: usize| Im2col {
            image: image(i),
            channels: c,
            height: h,
            width: wd,
            kernel: k,
            stride: s,
            padding: p,
            out_height: ho,
            out_width: wo,
        };
        product(
            Dims {
                m: cout,
                n: ho * wo,
                k: depth,
            },
            &RowMajor {
                data: &w,
                ld: depth,
            },
            &cols,
            Output::new(&mut y, ho * wo, cout * ho * wo),
        );
        let w_rounded: Vec<f32> = w.iter().map(|&v| round(v)).collect();
        for i in 0..batch {
            let x_rounded: Vec<f32> = image(i).iter().map(|&v| round(v)).collect();
            let (want, mag, _, _) = direct_conv(&x_rounded, &w_rounded, (c, h, wd), cout, k, s, p);
            let got = &y[i * cout * ho * wo..(i + 1) * cout * ho * wo];
            assert_close(got, &want, &mag, &format!("{what} conv case {t} image {i}"));
        }
    }
}

#[test]
fn implicit_im2col_matches_a_direct_convolution() {
    for isa in Isa::available() {
        check_convolutions(
            &format!("{isa:?}"),
            |v| v,
            |dims, w, cols, out| matmul_batched_on(isa, dims, 2, w, cols, out, Bias::None, true),
        );
    }
}

/// The column matrix packed straight into bf16 pairs (AVX512-BF16) or re-laid for AMX
/// tiles (emulated on every CPU) gives exact sums of the rounded image and weight.
#[test]
fn bf16_convolutions_are_exact_sums_of_rounded_inputs() {
    let round = |x: f32| f32::from_bits(u32::from(bf16::to_bf16_bits(x)) << 16);
    for kernel in [Bf16Kernel::Avx512Bf16, Bf16Kernel::AmxEmulated] {
        if !kernel.is_supported() {
            eprintln!("skipped: this CPU cannot run the {} kernel", kernel.name());
            continue;
        }
        check_convolutions(kernel.name(), round, |dims, w, cols, out| {
            matmul_batched_bf16_on(kernel, dims, 2, w, cols, out, Bias::None, true)
        });
    }
}

/// Runs a batch of products (one shared `A`, a row-major `B` per item) on every kernel, in
/// a pool of `threads` threads (in parallel when more than one), and checks each item
/// against the triple loop.
fn check_batch(dims: Dims, batch: usize, seed: u64, with_bias: bool, threads: usize) {
    let Dims { m, n, k } = dims;
    let a = random(m * k, seed);
    let bs: Vec<Vec<f32>> = (0..batch)
        .map(|i| random(k * n, seed + 1 + i as u64))
        .collect();
    let bias_values = random(m, seed + 100);
    let bias = if with_bias {
        Bias::PerRow(&bias_values)
    } else {
        Bias::None
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    for isa in Isa::available() {
        let mut c = vec![f32::NAN; batch * m * n];
        pool.install(|| {
            matmul_batched_on(
                isa,
                dims,
                batch,
                &RowMajor { data: &a, ld: k },
                |i| RowMajor {
                    data: &bs[i],
                    ld: n,
                },
                Output::new(&mut c, n, m * n),
                bias,
                threads > 1,
            )
        });
        for (i, b) in bs.iter().enumerate() {
            let (want, mag) = reference(dims, |r, p| a[r * k + p], |p, j| b[p * n + j], bias);
            let got = &c[i * m * n..(i + 1) * m * n];
            assert_close(got, &want, &mag, &format!("{isa:?} {dims:?} item {i}"));
        }
    }
}

/// A batch whose packed right operands are too large to hold together is run item group by
/// item group (here one item at a time), each item still matching the triple loop.
#[test]
fn large_batches_are_run_in_groups() {
    check_batch(
        Dims {
            m: 5,
            n: 4200,
            k: 300,
        },
        3,
        71,
        true,
        1,
    );
}

/// With several threads and few columns the tasks split only the rows of `A`; the right
/// operands (a batch of two, two depth blocks, ragged columns) are then packed once and
/// shared, and every item must still match the triple loop.
#[test]
fn row_split_tasks_share_one_packing_of_b() {
    check_batch(
        Dims {
            m: 300,
            n: 45,
            k: 500,
        },
        2,
        81,
        false,
        3,
    );
}

/// The bf16 products against exact arithmetic on the bf16-rounded inputs (so only the f32
/// sums may differ), at ragged sizes, odd depths, several `KC` blocks, a batch, both bias
/// forms and a prepacked operand; and within bf16's input rounding of the f32 product.
fn check_bf16_kernel(kernel: Bf16Kernel) {
    if !kernel.is_supported() {
        eprintln!("skipped: this CPU cannot run the {} kernel", kernel.name());
        return;
    }
    let round = |x: f32| f32::from_bits(u32::from(bf16::to_bf16_bits(x)) << 16);
    for (t, &(m, n, k)) in [
        (1, 1, 1),
        (13, 33, 257),
        (29, 47, 301),
        (97, 83, 41),
        (24, 64, 600),
        (64, 96, 512),
        (33, 65, 31),
        (70, 40, 8),
        // Deeper than one AMX block: three blocks, the last of odd depth.
        (40, 70, 2101),
        // Whole 32-row panels of a bf16 weight (form 3): the AMX kernels read its first
        // blocks in place (whole tiles deep), the last (odd depth) packed.
        (64, 40, 2101),
        (96, 33, 1024),
    ]
    .iter()
    .enumerate()
    {
        let dims = Dims { m, n, k };
        let a = random(m * k, 50 + t as u64);
        let bs: Vec<Vec<f32>> = (0..2)
            .map(|i| random(k * n, 60 + 2 * t as u64 + i))
            .collect();
        let row_bias = random(m, 70 + t as u64);
        let col_bias = random(n, 80 + t as u64);
        // The same operands as a bf16 weight `A` and a transposed `B` (a linear layer's
        // weight), which pack straight into pairs.
        let a_bf16: Vec<half::bf16> = a.iter().map(|&x| half::bf16::from_f32(x)).collect();
        let bs_t: Vec<Vec<f32>> = bs
            .iter()
            .map(|b| (0..n * k).map(|i| b[(i % k) * n + i / k]).collect())
            .collect();
        for (form, bias) in [
            (0, Bias::PerRow(&row_bias)),
            (1, Bias::PerColumn(&col_bias)),
            (2, Bias::None),
            (3, Bias::PerRow(&row_bias)),
            (4, Bias::PerColumn(&col_bias)),
        ] {
            let mut c = vec![f32::NAN; 2 * m * n];
            let out = Output::new(&mut c, n, m * n);
            let rows = RowMajor { data: &a, ld: k };
            let packed = PackedA::new(&rows, m, k);
            let b_of = |i: usize| RowMajor {
                data: &bs[i],
                ld: n,
            };
            if form == 2 {
                matmul_batched_bf16_on(kernel, dims, 2, &packed, b_of, out, bias, true);
            } else if form == 4 {
                // `A` packed once in the AMX tile layout: read in place by the AMX kernels,
                // widened back for the others.
                let tiles = PackedA::amx_tiles(&rows, m, k);
                matmul_batched_bf16_on(kernel, dims, 2, &tiles, b_of, out, bias, true);
            } else if form == 3 {
                let rows = RowMajor {
                    data: &a_bf16,
                    ld: k,
                };
                let b_of = |i: usize| Transposed {
                    data: &bs_t[i],
                    ld: k,
                };
                matmul_batched_bf16_on(kernel, dims, 2, &rows, b_of, out, bias, true);
            } else {
                matmul_batched_bf16_on(kernel, dims, 2, &rows, b_of, out, bias, form == 0);
            }
            for (i, b) in bs.iter().enumerate() {
                let got = &c[i * m * n..(i + 1) * m * n];
                let (want, mag) = reference(
                    dims,
                    |r, d| round(a[r * k + d]),
                    |d, col| round(b[d * n + col]),
                    bias,
                );
                let what = format!("{} {m}x{n}x{k} form {form}", kernel.name());
                assert_close(got, &want, &mag, &what);
                // And the unrounded product within the inputs' rounding (2⁻⁸ relative each).
                let (exact, _) =
                    reference(dims, |r, d| a[r * k + d], |d, col| b[d * n + col], bias);
                for ((&g, &w), &s) in got.iter().zip(&exact).zip(&mag) {
                    assert!((g as f64 - w).abs() <= 2f64.powi(-7) * s + 1e-5);
                }
            }
        }
    }
}

#[test]
fn avx512_bf16_products_are_exact_sums_of_rounded_inputs() {
    check_bf16_kernel(Bf16Kernel::Avx512Bf16);
}

/// Runs only on CPUs with AMX (Intel Sapphire Rapids and later); elsewhere it prints a
/// notice and [`amx_layouts_and_tiling_are_exact_on_every_cpu`] checks everything but the
/// instructions.
#[test]
fn amx_products_are_exact_sums_of_rounded_inputs() {
    check_bf16_kernel(Bf16Kernel::Amx);
}

#[test]
fn amx_layouts_and_tiling_are_exact_on_every_cpu() {
    check_bf16_kernel(Bf16Kernel::AmxEmulated);
}

/// `Precision::Bf16` runs on the fastest kernel present, and forcing each kernel gives the
/// same products up to f32 summation order; on a CPU without one its products are f32
/// products, to the bit, and `--precision auto` keeps f32.
#[test]
fn bf16_dispatch_prefers_amx_and_kernels_agree() {
    let dims = Dims {
        m: 45,
        n: 77,
        k: 300,
    };
    let a = random(dims.m * dims.k, 5);
    let b = random(dims.k * dims.n, 6);
    let rows = RowMajor {
        data: &a,
        ld: dims.k,
    };
    let cols = RowMajor {
        data: &b,
        ld: dims.n,
    };
    let Some(best) = Bf16Kernel::detect() else {
        assert!(!Precision::Bf16.rounds_products());
        assert_eq!(Precision::fastest(), Precision::F32);
        let run = |precision| {
            let mut c = vec![0f32; dims.m * dims.n];
            matmul_in(
                precision,
                dims,
                &rows,
                &cols,
                &mut c,
                dims.n,
                Bias::None,
                true,
            );
            c
        };
        let got = run(Precision::Bf16);
        let (want, mag) = reference(
            dims,
            |r, d| a[r * dims.k + d],
            |d, c| b[d * dims.n + c],
            Bias::None,
        );
        assert_close(&got, &want, &mag, "bf16 without a bf16 kernel");
        assert_eq!(got, run(Precision::F32));
        eprintln!("no bf16 kernel on this CPU: checked that bf16 products are f32 ones");
        return;
    };
    assert_eq!(best == Bf16Kernel::Amx, amx::amx_available());
    assert!(Precision::Bf16.rounds_products());
    assert_eq!(Precision::fastest(), Precision::Bf16);
    let run = |kernel: Option<Bf16Kernel>| {
        let mut c = vec![0f32; dims.m * dims.n];
        let out = Output::new(&mut c, dims.n, 0);
        match kernel {
            Some(k) => matmul_batched_bf16_on(k, dims, 1, &rows, |_| &cols, out, Bias::None, true),
            None => matmul_batched_in(
                Precision::Bf16,
                dims,
                1,
                &rows,
                |_| &cols,
                out,
                Bias::None,
                true,
            ),
        }
        c
    };
    let auto = run(None);
    assert_eq!(auto, run(Some(best)), "Precision::Bf16 runs on {best:?}");
    for kernel in [
        Bf16Kernel::Amx,
        Bf16Kernel::Avx512Bf16,
        Bf16Kernel::AmxEmulated,
    ] {
        if !kernel.is_supported() {
            eprintln!("skipped: {}", kernel.name());
            continue;
        }
        for (x, y) in run(Some(kernel)).iter().zip(&auto) {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{kernel:?}: {x} vs {y}"
            );
        }
    }
}

/// A matrix handed over as bf16 pairs of rows ([`PairedRows`], the attention's
/// probabilities on the bf16 path) multiplies exactly as the same rounded values in f32
/// rows: on every kernel, with an odd row count and blocks that end between the two rows
/// of a pair (f32 blocks), to the bit.
#[test]
fn paired_rows_multiply_as_their_rounded_rows() {
    let round = |x: f32| f32::from_bits(u32::from(bf16::to_bf16_bits(x)) << 16);
    for &(m, n, k) in &[(40usize, 45usize, 77usize), (33, 70, 2101)] {
        let a = random(m * k, 90);
        let b: Vec<f32> = random(k * n, 91).into_iter().map(round).collect();
        let mut words = vec![0u32; k.div_ceil(2) * n];
        for (p, row) in words.chunks_exact_mut(n).enumerate() {
            for (c, w) in row.iter_mut().enumerate() {
                let lo = bf16::to_bf16_bits(b[2 * p * n + c]);
                let hi = if 2 * p + 1 < k {
                    bf16::to_bf16_bits(b[(2 * p + 1) * n + c])
                } else {
                    0
                };
                *w = u32::from(lo) | (u32::from(hi) << 16);
            }
        }
        let paired = PairedRows {
            words: &words,
            rows: k,
            ld: n,
        };
        let plain = RowMajor { data: &b, ld: n };
        let rows = RowMajor { data: &a, ld: k };
        let dims = Dims { m, n, k };
        let run = |f: &dyn Fn(&mut [f32])| {
            let mut c = vec![f32::NAN; m * n];
            f(&mut c);
            c
        };
        let f32_paired = run(&|c| matmul(dims, &rows, &paired, c, n, Bias::None, true));
        let f32_plain = run(&|c| matmul(dims, &rows, &plain, c, n, Bias::None, true));
        assert_eq!(f32_paired, f32_plain, "f32 {m}x{n}x{k}");
        let mut kernels = vec![Bf16Kernel::AmxEmulated];
        kernels.extend(Bf16Kernel::detect());
        if bf16::bf16_kernel_available() {
            kernels.push(Bf16Kernel::Avx512Bf16);
        }
        for kernel in kernels {
            let product = |b: &dyn Fn(&mut [f32])| run(b);
            let got = product(&|c| {
                let out = Output::new(c, n, 0);
                matmul_batched_bf16_on(kernel, dims, 1, &rows, |_| paired, out, Bias::None, true)
            });
            let want = product(&|c| {
                let out = Output::new(c, n, 0);
                matmul_batched_bf16_on(kernel, dims, 1, &rows, |_| plain, out, Bias::None, true)
            });
            assert_eq!(got, want, "{} {m}x{n}x{k}", kernel.name());
        }
    }
}

/// Runs `product` into zeroed memory and into uninitialised memory that holds NaN (which
/// a read before a write would carry into the result and a skipped element would keep),
/// and checks that the second wrote every element, bit for bit as the first. Returns the
/// first.
fn into_zeroed_and_uninit(len: usize, what: &str, product: impl Fn(Output<'_>)) -> Vec<f32> {
    let mut zeroed = vec![0f32; len];
    product(Output::new(&mut zeroed, 0, 0));
    let mut fresh = vec![MaybeUninit::new(f32::NAN); len];
    product(Output::uninit(&mut fresh, 0, 0));
    for (i, (z, f)) in zeroed.iter().zip(&fresh).enumerate() {
        // SAFETY: every element was initialised (to NaN) before the product.
        let f = unsafe { f.assume_init() };
        assert!(z.is_finite(), "{what}: element {i} is {z}");
        assert_eq!(z.to_bits(), f.to_bits(), "{what}: element {i}");
    }
    zeroed
}

/// A product into uninitialised memory (`Output::uninit`, `matmul_batched_new`) writes
/// every element of every item, never reads one before writing it, and gives the same
/// values, bit for bit, as the product into zeroed memory; checked on every f32 kernel and
/// both precisions, over shapes with partial tiles, several depth blocks and 2 threads'
/// worth of tasks.
#[test]
fn products_into_uninitialised_memory_write_every_element() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    for (m, n, k) in [(1, 1, 1), (37, 300, 5), (130, 33, 1000), (7, 4100, 3)] {
        let dims = Dims { m, n, k };
        let a = random(m * k, 11);
        let bs = [random(k * n, 12), random(k * n, 13)];
        let bias = random(m, 14);
        let rows = RowMajor { data: &a, ld: k };
        let b_of = |i: usize| RowMajor {
            data: &bs[i],
            ld: n,
        };
        for precision in [Precision::F32, Precision::Bf16] {
            let what = format!("{m}×{n}×{k} {precision:?}");
            pool.install(|| {
                let bias = Bias::PerRow(&bias);
                let want = into_zeroed_and_uninit(2 * m * n, &what, |out| {
                    let out = Output {
                        ld: n,
                        batch_stride: m * n,
                        ..out
                    };
                    matmul_batched_in(precision, dims, 2, &rows, b_of, out, bias, true)
                });
                let new = matmul_batched_new(precision, dims, 2, &rows, b_of, bias, true);
                assert_eq!(new, want, "{what}: matmul_batched_new");
            });
        }
    }
    for isa in Isa::available() {
        let dims = Dims {
            m: 29,
            n: 70,
            k: 400,
        };
        let (a, b) = (random(29 * 400, 15), random(400 * 70, 16));
        let rows = RowMajor { data: &a, ld: 400 };
        let cols = RowMajor { data: &b, ld: 70 };
        into_zeroed_and_uninit(29 * 70, &format!("{isa:?}"), |out| {
            let out = Output { ld: 70, ..out };
            matmul_batched_on(isa, dims, 1, &rows, |_| &cols, out, Bias::None, true)
        });
    }
}

/// `a · b` (one product, on the calling thread's pool) on every kernel this CPU has, within
/// [`assert_close`] of `want` (the reference and its magnitudes).
fn assert_every_kernel_multiplies(
    dims: Dims,
    a: &impl PackA,
    b: &impl PackB,
    (want, mag): (&[f64], &[f64]),
    what: &str,
) {
    for isa in Isa::available() {
        let mut c = vec![f32::NAN; dims.m * dims.n];
        let out = Output::new(&mut c, dims.n, 0);
        matmul_batched_on(isa, dims, 1, a, |_| b, out, Bias::None, true);
        assert_close(&c, want, mag, &format!("{isa:?}, {what}"));
    }
}

/// Operands prepacked once (an attention head's keys, the feed-forward's weights) are
/// large enough here to be packed in chunks of panels on several threads: two depth
/// blocks, several chunks per block and a ragged last panel on each side.
#[test]
fn large_prepacked_operands_packed_in_parallel_chunks_match_the_triple_loop() {
    let dims = Dims {
        m: 401,
        n: 523,
        k: 700,
    };
    let a = random(dims.m * dims.k, 41);
    // B given as its transpose, `[n, k]`, as a linear layer's weight is.
    let b = random(dims.n * dims.k, 42);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("thread pool");
    let (a_op, b_op) = pool.install(|| {
        (
            PackedA::new(
                &RowMajor {
                    data: &a,
                    ld: dims.k,
                },
                dims.m,
                dims.k,
            ),
            PackedB::new(
                &Transposed {
                    data: &b,
                    ld: dims.k,
                },
                dims.k,
                dims.n,
            ),
        )
    });
    let (want, mag) = reference(
        dims,
        |i, p| a[i * dims.k + p],
        |p, j| b[j * dims.k + p],
        Bias::None,
    );
    assert_every_kernel_multiplies(dims, &a_op, &b_op, (&want, &mag), "prepacked in chunks");
}

/// Matrices packed together into one shared layout (Winograd's transformed kernels: one
/// per position of a tile) multiply as each matrix does: two depth blocks, several chunks
/// per block, a ragged last panel, three threads, and storages that held other values.
#[test]
fn matrices_filled_together_multiply_as_each_one() {
    let dims = Dims {
        m: 401,
        n: 37,
        k: 700,
    };
    let matrices: Vec<Vec<f32>> = (0..3).map(|i| random(dims.m * dims.k, 50 + i)).collect();
    let b = random(dims.k * dims.n, 60);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .expect("thread pool");
    let fill = |rows: Range<usize>, ks: Range<usize>, panel: usize, dsts: &mut [&mut [f32]]| {
        let depth = ks.len();
        for (q, first) in rows.clone().step_by(panel).enumerate() {
            for row in first..(first + panel).min(rows.end) {
                for (d, k) in ks.clone().enumerate() {
                    for (dst, a) in dsts.iter_mut().zip(&matrices) {
                        dst[(q * depth + d) * panel + row - first] = a[row * dims.k + k];
                    }
                }
            }
        }
    };
    // In new memory, and again in the storage of the first set (its old contents are
    // overwritten, and rows past `m` come out zero whatever was there).
    let first = pool.install(|| PackedASet::build(dims.m, dims.k, 3, Vec::new(), fill));
    let mut storage = first.into_storage();
    storage.fill(f32::NAN);
    let packed = pool.install(|| PackedASet::build(dims.m, dims.k, 3, storage, fill));
    let b_op = RowMajor {
        data: &b,
        ld: dims.n,
    };
    for (i, a) in matrices.iter().enumerate() {
        let a_op = packed.get(i);
        let (want, mag) = reference(
            dims,
            |r, p| a[r * dims.k + p],
            |p, j| b[p * dims.n + j],
            Bias::None,
        );
        assert_every_kernel_multiplies(dims, &a_op, &b_op, (&want, &mag), &format!("matrix {i}"));
    }
}

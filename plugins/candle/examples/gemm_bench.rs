//! GFLOP/s of the blocked matrix product at UNet shapes, of the 3×3 convolutions of the
//! UNet and the VAE decoder (their column matrix packed from the image), and of the fused
//! attention at the UNet's and the VAE's 64² shapes, in f32 and (where the CPU has
//! AVX512-BF16 or AMX) bf16:
//! `RAYON_NUM_THREADS=1 cargo run --release -p easel-candle --example gemm_bench`.
//! `EASEL_BF16_KERNEL=avx512bf16` runs bf16 on AVX512-BF16 on an AMX machine. An argument
//! (`matmul`, `conv`, `winograd`, `attention`) runs only that part (after the packing figures).

use candle_core::{Device, Tensor};
use easel_candle::gemm::{
    kernel_name, matmul_batched_in, matmul_in, Bias, Dims, Im2col, Output, PackA, PackedA, PackedB,
    Precision, RowMajor, Transposed,
};
use easel_candle::ops::attention::attention;
use easel_candle::ops::winograd::{self, Conv3x3};
use std::time::Instant;

/// Best of `runs` timings of `f`, after one warm-up call, in seconds.
fn best_of(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..runs)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// Inputs of a 3×3 convolution `c → cout` of `images` `side²` images: image, weight.
fn conv_inputs(c: usize, cout: usize, side: usize, images: usize) -> (Vec<f32>, Vec<f32>) {
    let x = (0..images * c * side * side)
        .map(|i| (i % 7) as f32 * 0.1)
        .collect();
    let w = (0..cout * c * 9).map(|i| (i % 5) as f32 * 0.1).collect();
    (x, w)
}

/// Best time of a 3×3, stride 1, padding 1 convolution of `images` `side²` images through
/// the column matrix (packed from the image), and its GFLOP.
fn im2col_conv(
    (x, w): (&[f32], &[f32]),
    (c, cout, side, images): (usize, usize, usize, usize),
    precision: Precision,
) -> (f64, f64) {
    let n = side * side;
    let mut y = vec![0f32; images * cout * n];
    let dims = Dims {
        m: cout,
        n,
        k: c * 9,
    };
    let t = best_of(3, || {
        let cols = |i: usize| Im2col {
            image: &x[i * c * n..(i + 1) * c * n],
            channels: c,
            height: side,
            width: side,
            kernel: 3,
            stride: 1,
            padding: 1,
            out_height: side,
            out_width: side,
        };
        let out = Output::new(&mut y, n, cout * n);
        let weight = RowMajor {
            data: w,
            ld: dims.k,
        };
        matmul_batched_in(
            precision,
            dims,
            images,
            &weight,
            cols,
            out,
            Bias::None,
            true,
        );
    });
    (t, 2.0 * (images * dims.m * dims.n * dims.k) as f64 / 1e9)
}

/// A 3×3, stride 1, padding 1 convolution `c → cout` of one `side²` image.
fn conv(c: usize, cout: usize, side: usize, precision: Precision) {
    let (x, w) = conv_inputs(c, cout, side, 1);
    let (t, gflop) = im2col_conv((&x, &w), (c, cout, side, 1), precision);
    println!(
        "conv 3x3 {c:>3} -> {cout:>3} at {side:>3}² {precision:?}: {:7.2} ms  {:6.1} GFLOP/s",
        t * 1e3,
        gflop / t
    );
}

/// A 3×3 f32 convolution of `images` `side²` images through Winograd's two tilings and
/// through the column matrix, all in GFLOP/s of the direct convolution.
fn winograd_conv(c: usize, cout: usize, side: usize, images: usize) {
    let (x, w) = conv_inputs(c, cout, side, images);
    let mut y = vec![0f32; images * cout * side * side];
    let s = Conv3x3 {
        images,
        channels: c,
        height: side,
        width: side,
        out_channels: cout,
    };
    let [f2, f4] = [winograd::Tiling::F2x2, winograd::Tiling::F4x4].map(|tiling| {
        best_of(3, || {
            winograd::conv3x3_tiled(
                tiling,
                s,
                winograd::ActivationData::F32(&x).into(),
                &w,
                winograd::ActivationDataMut::F32(&mut y),
                None,
                Precision::F32,
            )
        })
    });
    let picked = winograd::Tiling::pick(s);
    let (im2col, gflop) = im2col_conv((&x, &w), (c, cout, side, images), Precision::F32);
    println!(
        "conv 3x3 {c:>4} -> {cout:>4} at {side:>3}² × {images} F32: F(2x2) {:7.2} ms ({:5.1} GFLOP/s), F(4x4) {:7.2} ms ({:5.1}), im2col {:7.2} ms ({:5.1}); picked {picked:?}",
        f2 * 1e3,
        gflop / f2,
        f4 * 1e3,
        gflop / f4,
        im2col * 1e3,
        gflop / im2col
    );
}

/// Attention of a batch of 2 over `len` tokens `width` wide in `heads` heads.
fn attention_timing(len: usize, width: usize, heads: usize, precision: Precision) {
    let t = |seed: f32| {
        let data: Vec<f32> = (0..2 * len * width)
            .map(|i| (i as f32 * 0.001 + seed).sin())
            .collect();
        Tensor::from_vec(data, (2, len, width), &Device::Cpu).expect("tensor")
    };
    let (q, k, v) = (t(0.1), t(0.2), t(0.3));
    let s = best_of(3, || {
        std::hint::black_box(attention(&q, &k, &v, heads, false, 1 << 30, precision).unwrap());
    });
    // Two products of 2·len²·width flops per sample.
    let gflop = 2.0 * 2.0 * 2.0 * (len * len * width) as f64 / 1e9;
    println!(
        "attention 2 × {len} × {width}, {heads} heads {precision:?}: {:7.2} ms  {:6.1} GFLOP/s",
        s * 1e3,
        gflop / s
    );
}

fn main() {
    let only = std::env::args().nth(1);
    let wants = |part: &str| only.as_deref().is_none_or(|o| o == part);
    // (m, n, k, B transposed): conv 3×3 320 @64² as one image, linear 320/1280/640 layers.
    let shapes = [
        (320, 4096, 2880, false),
        (640, 1024, 5760, false),
        (8192, 320, 320, true),
        (8192, 2560, 320, true),
        (8192, 320, 1280, true),
        (2048, 640, 640, true),
    ];
    // Packing a conv weight (1280 × 11520) as the left operand.
    let (m, k) = (1280, 11520);
    let w: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32).collect();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let s = Instant::now();
        std::hint::black_box(PackedA::new(&RowMajor { data: &w, ld: k }, m, k));
        best = best.min(s.elapsed().as_secs_f64());
    }
    println!(
        "pack A {m}x{k}: {:.2} ms, {:.3} ns/element",
        best * 1e3,
        best * 1e9 / (m * k) as f64
    );
    // The 1280-wide feed-forward's first weight (`[10240, 1280]`, the right operand
    // transposed), packed once per call and read by every block of rows.
    let (n, depth) = (10240, 1280);
    let ff: Vec<f32> = (0..n * depth).map(|i| (i % 5) as f32).collect();
    let b = Transposed {
        data: &ff,
        ld: depth,
    };
    let best = best_of(3, || {
        std::hint::black_box(PackedB::new(&b, depth, n));
    });
    println!(
        "prepack the feed-forward's {n}x{depth} weight: {:.2} ms, {:.3} ns/element",
        best * 1e3,
        best * 1e9 / (n * depth) as f64
    );
    drop(ff);
    let mut buf = vec![0f32; 192 * 256];
    let s = Instant::now();
    let a = RowMajor { data: &w, ld: k };
    for r in (0..m).step_by(192) {
        for p in (0..k).step_by(256) {
            a.pack_a::<12>(r..(r + 192).min(m), p..p + 256, &mut buf);
        }
    }
    let t = s.elapsed().as_secs_f64();
    println!(
        "pack A blocks into a warm buffer: {:.3} ns/element",
        t * 1e9 / (m * k) as f64
    );
    // The same weight kept in bf16 and paired for the bf16 kernels (512-deep blocks).
    let w16: Vec<half::bf16> = w.iter().map(|&v| half::bf16::from_f32(v)).collect();
    let mut words = vec![0u32; 192 * 256];
    let s = Instant::now();
    for r in (0..m).step_by(192) {
        for p in (0..k).step_by(512) {
            easel_candle::gemm::bf16::pair_panels_from_lines::<16, half::bf16>(
                &w16,
                k,
                r..(r + 192).min(m),
                p..(p + 512).min(k),
                256 * 16,
                &mut words,
            );
        }
    }
    let t = s.elapsed().as_secs_f64();
    println!(
        "pair a bf16 weight's blocks for the bf16 kernels: {:.3} ns/element",
        t * 1e9 / (m * k) as f64
    );
    // The same from a source already in cache (a linear layer's activations).
    let small: Vec<f32> = (0..192 * 256).map(|i| (i % 7) as f32).collect();
    let a = RowMajor {
        data: &small,
        ld: 256,
    };
    let s = Instant::now();
    for _ in 0..1000 {
        a.pack_a::<12>(0..192, 0..256, &mut buf);
        std::hint::black_box(&buf);
    }
    let t = s.elapsed().as_secs_f64();
    println!(
        "pack A blocks from a source in cache: {:.3} ns/element",
        t * 1e9 / (1000.0 * 192.0 * 256.0)
    );
    let precisions: Vec<Precision> = [Precision::F32, Precision::Bf16]
        .into_iter()
        .filter(|&p| p == Precision::F32 || p.rounds_products())
        .collect();
    for p in &precisions {
        println!("{p:?} products run on {}", kernel_name(*p));
    }
    for (m, n, k, t, p) in shapes
        .into_iter()
        .filter(|_| wants("matmul"))
        .flat_map(|s| precisions.iter().map(move |&p| (s, p)))
        .map(|((m, n, k, t), p)| (m, n, k, t, p))
    {
        let precision = p;
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let dims = Dims { m, n, k };
        let mut run = || {
            let a = RowMajor { data: &a, ld: k };
            if t {
                let b = Transposed { data: &b, ld: k };
                matmul_in(precision, dims, &a, &b, &mut c, n, Bias::None, true);
            } else {
                let b = RowMajor { data: &b, ld: n };
                matmul_in(precision, dims, &a, &b, &mut c, n, Bias::None, true);
            }
        };
        run();
        let mut best = f64::MAX;
        for _ in 0..5 {
            let s = Instant::now();
            run();
            best = best.min(s.elapsed().as_secs_f64());
        }
        let gflop = 2.0 * (m * n * k) as f64 / 1e9;
        println!(
            "{m:>5}x{n:>5}x{k:>5} {} {precision:?}: {:7.2} ms  {:6.1} GFLOP/s",
            if t { "Bt" } else { "B " },
            best * 1e3,
            gflop / best
        );
    }
    // The UNet's 3×3 convolutions at 64² and the VAE decoder's at 64²–512².
    for p in precisions.iter().filter(|_| wants("conv")) {
        for (c, cout, side) in [
            (320, 320, 64),
            (512, 512, 64),
            (256, 256, 256),
            (128, 128, 512),
        ] {
            conv(c, cout, side, *p);
        }
    }
    // The same through Winograd's transform, and the UNet's deeper levels (batch of 2).
    for (c, cout, side, images) in [
        (320, 320, 64, 1),
        (512, 512, 64, 1),
        (256, 256, 256, 1),
        (128, 128, 512, 1),
        (320, 320, 64, 2),
        (640, 320, 64, 2),
        (320, 640, 32, 2),
        (640, 640, 32, 2),
        (960, 640, 32, 2),
        (1280, 640, 32, 2),
        (1920, 640, 32, 2),
        (1280, 1280, 32, 2),
        (640, 1280, 16, 2),
        (1280, 1280, 16, 2),
        (2560, 1280, 16, 2),
        (1280, 1280, 16, 1),
        (1280, 1280, 8, 2),
        (2560, 1280, 8, 2),
        (1280, 1280, 8, 1),
    ]
    .into_iter()
    .filter(|_| wants("winograd"))
    {
        winograd_conv(c, cout, side, images);
    }
    // Self-attention at the UNet's 64² level (8 heads of 40) and the VAE's mid block.
    for p in precisions.iter().filter(|_| wants("attention")) {
        attention_timing(4096, 320, 8, *p);
        attention_timing(4096, 512, 1, *p);
    }
}

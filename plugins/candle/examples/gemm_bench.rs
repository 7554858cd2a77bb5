//! GFLOP/s of the blocked matrix product at UNet shapes, in f32 and (where the CPU has
//! AVX512-BF16 or AMX) bf16:
//! `RAYON_NUM_THREADS=1 cargo run --release -p easel-candle --example gemm_bench`.
//! `EASEL_BF16_KERNEL=avx512bf16` runs bf16 on AVX512-BF16 on an AMX machine.

use easel_candle::gemm::{
    kernel_name, matmul_in, Bias, Dims, PackA, PackedA, Precision, RowMajor, Transposed,
};
use std::time::Instant;

fn main() {
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
    let precisions: Vec<Precision> = [Precision::F32, Precision::Bf16]
        .into_iter()
        .filter(|p| p.is_supported())
        .collect();
    for p in &precisions {
        println!("{p:?} products run on {}", kernel_name(*p));
    }
    for (m, n, k, t, p) in shapes
        .into_iter()
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
}

//! Times the wgpu kernels at the shapes of an SD1.5 UNet step with CFG (batch 2) and one
//! whole UNet step, printing GFLOP/s (GB/s for memory-bound kernels) and the adapter:
//!
//! ```sh
//! cargo run --release -p easel-wgpu --example kernel_bench -- [--side 64] [--packed]
//!     [--weights bench-models/sd15-unet.safetensors] [--steps 1]
//! ```
//!
//! `--side` is the image side in pixels (latent side / 8); the default 64 keeps a software
//! adapter (lavapipe, ~1 GFLOP/s) to about a minute; use 512 on a real GPU. Without the
//! weights file, random SD1.5 UNet weights are generated (speed does not depend on them).

use easel_core::formats::open_tensor_store;
use easel_core::nn::{random_weights, UNet, UNetConfig, Weights};
use easel_core::Backend;
use easel_wgpu::{F16Storage, WgpuBackend, WgpuOptions};
use std::path::PathBuf;
use std::time::Instant;

fn random(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

struct Args {
    side: usize,
    packed: bool,
    weights: PathBuf,
    steps: usize,
}

fn args() -> Args {
    let mut a = Args {
        side: 64,
        packed: false,
        weights: PathBuf::from("bench-models/sd15-unet.safetensors"),
        steps: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--side" => a.side = value().parse().expect("--side: pixels"),
            "--weights" => a.weights = PathBuf::from(value()),
            "--steps" => a.steps = value().parse().expect("--steps: count"),
            "--packed" => a.packed = true,
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(
        a.side.is_multiple_of(64) && a.side > 0,
        "--side must be a positive multiple of 64"
    );
    a
}

/// Runs `f` once to compile and warm up, then `reps` times; milliseconds per run.
fn time<T>(b: &WgpuBackend, reps: usize, mut f: impl FnMut() -> T) -> f64 {
    std::hint::black_box(f());
    b.synchronize().unwrap();
    let start = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(f());
    }
    b.synchronize().unwrap();
    start.elapsed().as_secs_f64() * 1e3 / reps as f64
}

fn report(label: &str, ms: f64, flop: f64, bytes: f64) {
    let rate = if flop > 0.0 {
        format!("{:8.2} GFLOP/s", flop / ms / 1e6)
    } else {
        format!("{:8.2} GB/s   ", bytes / ms / 1e6)
    };
    println!("{label:<46} {ms:10.2} ms {rate}");
}

fn main() -> easel_core::Result<()> {
    let a = args();
    let b = WgpuBackend::new_blocking(WgpuOptions {
        f16: if a.packed {
            F16Storage::Packed
        } else {
            F16Storage::Auto
        },
        ..Default::default()
    })?;
    let info = b.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?}, driver {} {})",
        info.name, info.device_type, info.backend, info.driver, info.driver_info
    );
    println!(
        "weights: {}",
        if b.native_f16() {
            "array<f16>"
        } else {
            "f16 packed in u32"
        }
    );
    let l = a.side / 8;
    let hw = l * l;
    println!(
        "shapes of an SD1.5 UNet step at {0}x{0} (latent {l}x{l}, batch 2)\n",
        a.side
    );

    let up = |shape: &[usize], seed| b.upload(&random(shape.iter().product(), seed), shape);
    let wt = |shape: &[usize], seed| b.upload_weight(&random(shape.iter().product(), seed), shape);
    let reps = 3;

    let x = up(&[2, 320, l, l], 1)?;
    let w3 = wt(&[320, 320, 3, 3], 2)?;
    let bias = wt(&[320], 3)?;
    let ms = time(&b, reps, || b.conv2d(&x, &w3, Some(&bias), 1, 1).unwrap());
    report(
        &format!("conv3x3 320->320 @{l}x{l}"),
        ms,
        2.0 * 320.0 * 320.0 * 9.0 * (2 * hw) as f64,
        0.0,
    );
    let ms = time(&b, reps, || b.conv2d(&x, &w3, Some(&bias), 2, 1).unwrap());
    report(
        &format!("conv3x3/2 320->320 @{l}x{l}"),
        ms,
        2.0 * 320.0 * 320.0 * 9.0 * (2 * hw / 4) as f64,
        0.0,
    );
    let x4 = up(&[2, 1280, l / 8, l / 8], 4)?;
    let w4 = wt(&[1280, 1280, 3, 3], 5)?;
    let b4 = wt(&[1280], 6)?;
    let ms = time(&b, reps, || b.conv2d(&x4, &w4, Some(&b4), 1, 1).unwrap());
    report(
        &format!("conv3x3 1280->1280 @{0}x{0}", l / 8),
        ms,
        2.0 * 1280.0 * 1280.0 * 9.0 * (2 * hw / 64) as f64,
        0.0,
    );

    let t = b.nchw_to_nlc(&x)?;
    let w1 = wt(&[320, 320], 7)?;
    let ms = time(&b, reps, || b.linear(&t, &w1, Some(&bias)).unwrap());
    report(
        &format!("linear 320->320 x{}", 2 * hw),
        ms,
        2.0 * 320.0 * 320.0 * (2 * hw) as f64,
        0.0,
    );
    let wff = wt(&[2560, 320], 8)?;
    let ms = time(&b, reps, || b.linear(&t, &wff, None).unwrap());
    report(
        &format!("linear 320->2560 x{}", 2 * hw),
        ms,
        2.0 * 320.0 * 2560.0 * (2 * hw) as f64,
        0.0,
    );

    let ms = time(&b, reps, || b.attention(&t, &t, &t, 8, false).unwrap());
    report(
        &format!("self-attention {hw}x{hw} h8 d40"),
        ms,
        4.0 * 2.0 * 8.0 * (hw * hw) as f64 * 40.0,
        0.0,
    );
    let ctx = up(&[2, 77, 320], 9)?;
    let ms = time(&b, reps, || b.attention(&t, &ctx, &ctx, 8, false).unwrap());
    report(
        &format!("cross-attention {hw}x77 h8 d40"),
        ms,
        4.0 * 2.0 * 8.0 * (hw * 77) as f64 * 40.0,
        0.0,
    );

    // The VAE's single head over 512 channels at the latent (one image, no CFG).
    let vae = up(&[1, hw, 512], 13)?;
    let ms = time(&b, reps, || {
        b.attention(&vae, &vae, &vae, 1, false).unwrap()
    });
    report(
        &format!("VAE attention {hw}x{hw} h1 d512"),
        ms,
        4.0 * (hw * hw) as f64 * 512.0,
        0.0,
    );

    let bytes = (2 * 320 * hw * 4 * 2) as f64;
    let ms = time(&b, reps, || {
        b.group_norm(&x, 32, &bias, &bias, 1e-5, true).unwrap()
    });
    report(&format!("group_norm+silu 320@{l}x{l}"), ms, 0.0, bytes);
    let ms = time(&b, reps, || b.layer_norm(&t, &bias, &bias, 1e-5).unwrap());
    report(&format!("layer_norm {}x320", 2 * hw), ms, 0.0, bytes);
    let ms = time(&b, reps, || b.nchw_to_nlc(&x).unwrap());
    report(&format!("nchw_to_nlc 320@{l}x{l}"), ms, 0.0, bytes);
    let ms = time(&b, reps, || b.add(&x, &x).unwrap());
    report(&format!("add 320@{l}x{l}"), ms, 0.0, bytes * 1.5);
    let ff = up(&[2, hw, 2560], 10)?;
    let ms = time(&b, reps, || b.geglu(&ff).unwrap());
    report(
        &format!("geglu {}x2560", 2 * hw),
        ms,
        0.0,
        (2 * hw * 2560 * 4) as f64 * 1.5,
    );
    let ms = time(&b, reps, || b.upsample_nearest2x(&x).unwrap());
    report(&format!("upsample2x 320@{l}x{l}"), ms, 0.0, bytes * 2.5);

    // One whole UNet step (CFG batch 2).
    let store = if a.weights.exists() {
        println!("\nUNet weights: {}", a.weights.display());
        open_tensor_store(&a.weights)?
    } else {
        println!("\nUNet weights: random (no {})", a.weights.display());
        random_weights(Some(&UNetConfig::sd15()), None, None, 1)
    };
    let start = Instant::now();
    let unet = UNet::load(
        &b,
        &Weights::new(&store, "model.diffusion_model"),
        &UNetConfig::sd15(),
    )?;
    b.synchronize()?;
    println!("loaded in {:.1} s", start.elapsed().as_secs_f64());
    let latent = up(&[2, 4, l, l], 11)?;
    let context = up(&[2, 77, 768], 12)?;
    let step = || {
        let eps = unet
            .forward(&b, &latent, &[500.0, 500.0], &context, &[])
            .unwrap();
        b.download(&eps).unwrap()
    };
    let ms = time(&b, a.steps, step);
    // 803 GFLOP per image at 512x512 (FLOP counter on the reference UNet), scaled by pixels.
    let gflop = 2.0 * 803.0 * (a.side * a.side) as f64 / (512.0 * 512.0);
    println!(
        "UNet step {0}x{0} batch 2: {1:.1} ms, {2:.2} GFLOP/s (~{gflop:.0} GFLOP), {3} pooled buffers",
        a.side,
        ms,
        gflop / ms * 1e3,
        b.buffers_created()
    );
    Ok(())
}

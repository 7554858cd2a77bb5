//! `easel bench`: speed figures for full-size SD1.5 with random weights (speed does not
//! depend on the values). By default, seconds per CFG sampling step (UNet, batch 2) at the
//! given sizes with achieved GFLOP/s; with `--pipeline`, what a user waits for on one whole
//! image (see [`pipeline`]); with `--upscale`, an ESRGAN 4× upscale (see [`upscale`]). All
//! print the backend, the CPU kernels in use and peak RSS.
//!
//! The weights come from a file when one is given (or when `tests/bench/make_bench_model.py`
//! has written `bench-models/sd15-unet.safetensors`), else from
//! [`easel_core::nn::random_weights`]: a seeded store generated in memory, so the benchmark
//! needs no download and no Python.

mod pipeline;
mod upscale;

use crate::compute::{Compute, ComputeArgs};
use clap::Args;
use easel_candle::gemm::kernel_name;
use easel_candle::Precision;
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::nn::unet::UNet;
use easel_core::nn::{random_weights, UNetConfig, Weights};
use easel_core::{Backend, Error, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where `tests/bench/make_bench_model.py` writes its UNet weights.
const DEFAULT_UNET_FILE: &str = "bench-models/sd15-unet.safetensors";
/// Seed of the generated weights (any fixed value: runs stay comparable).
pub const WEIGHT_SEED: u64 = 15;

#[derive(Args)]
pub struct BenchArgs {
    /// Time one whole image (model load, text encoding of prompt and negative prompt,
    /// --steps Euler steps with CFG, VAE decode) instead of one sampling step.
    #[arg(long)]
    pub pipeline: bool,
    /// Per-step bench: SD1.5 UNet weights under `model.diffusion_model.*` [default:
    /// bench-models/sd15-unet.safetensors if present, else random weights made in memory].
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// --pipeline: an SD1.x checkpoint to load (its load time is then a real file's)
    /// [default: random weights made in memory].
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Image sizes (square side in pixels) [default: 256,512; --pipeline: 512].
    #[arg(long, value_delimiter = ',')]
    pub sizes: Vec<usize>,
    /// Timed steps per size after one warm-up step [default: 2]; --pipeline: sampling
    /// steps of the image [default: 20].
    #[arg(long)]
    pub steps: Option<usize>,
    /// --pipeline: add hires fix with the `Latent` upscaler at this scale (strength 0.7).
    #[arg(long, requires = "pipeline")]
    pub hires_scale: Option<f64>,
    /// --pipeline: decode in tiles (`easel generate --vae-tiling`).
    #[arg(long = "vae-tiling", requires = "pipeline")]
    pub vae_tiling: bool,
    /// --pipeline with --hires-scale: the second pass's steps [default: 10].
    #[arg(long, requires = "hires_scale", default_value_t = 10)]
    pub hires_steps: usize,
    /// Time an ESRGAN 4x upscale (RRDBNet, 23 blocks, 64 features, random weights) of
    /// --sizes square images [default: 512] in A1111's tiles instead.
    #[arg(long, conflicts_with = "pipeline")]
    pub upscale: bool,
    /// --upscale: tile size (A1111's ESRGAN_tile; 0 = the whole image at once).
    #[arg(long, default_value_t = 192)]
    pub tile: usize,
    #[command(flatten)]
    pub compute: ComputeArgs,
    /// --pipeline: also print each image's figures as one line of JSON (read by
    /// tests/bench/bench_pipeline.py).
    #[arg(long)]
    pub json: bool,
    /// Write the random full-size SD1.5 weights (UNet, VAE, text encoder; LDM keys) as an
    /// fp16 `.safetensors` checkpoint (about 2.1 GB) and exit: a real-size model file for
    /// trying a backend or the web page without downloading one.
    #[arg(long = "write-checkpoint", conflicts_with_all = ["pipeline", "upscale"])]
    pub write_checkpoint: Option<PathBuf>,
}

/// `--write-checkpoint`: the seeded random full-size SD1.5 weights, rounded to f16, as one
/// safetensors checkpoint (written atomically).
fn write_checkpoint(path: &Path) -> Result<()> {
    use easel_core::formats::{safetensors, DType};
    use easel_core::nn::{ClipConfig, VaeConfig};
    let t0 = Instant::now();
    let store = random_weights(
        Some(&UNetConfig::sd15()),
        Some(&VaeConfig::sd15()),
        Some(&ClipConfig::vit_l14()),
        WEIGHT_SEED,
    );
    let mut tensors = Vec::new();
    for key in store.keys() {
        let shape = store.info(key)?.shape.clone();
        let bytes: Vec<u8> = store
            .read_f32(key)?
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect();
        tensors.push((key.to_string(), DType::F16, shape, bytes));
    }
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert(
        "easel".to_string(),
        format!("random full-size SD1.5 weights (seed {WEIGHT_SEED}), not a trained model"),
    );
    safetensors::write(path, &tensors, &metadata)?;
    let bytes: usize = tensors.iter().map(|t| t.3.len()).sum();
    println!(
        "wrote {} ({:.2} GB, {} tensors) in {:.1} s",
        path.display(),
        bytes as f64 / 1e9,
        tensors.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Multiply-adds ×2 of one SD1.5 UNet forward for one image, by side (measured with a
/// FLOP counter on the reference UNet: 803 GFLOP at 512², 180 GFLOP at 256²); other sizes
/// are scaled by pixel count, which holds to a few percent.
pub fn unet_gflop(side: usize) -> f64 {
    match side {
        512 => 803.0,
        256 => 180.0,
        s => 803.0 * (s * s) as f64 / (512.0 * 512.0),
    }
}

/// Peak resident memory of this process, from /proc (Linux).
/// Starts a new peak-RSS window (Linux: writing 5 to `clear_refs` resets `VmHWM` to the
/// current RSS), so a part's own peak can be read after it; false where that is refused.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The CPU backend's kernel level and precision, for the header of every report.
pub fn cpu_dispatch_line(precision: Precision) -> String {
    let name = match precision {
        Precision::F32 => "fp32",
        Precision::Bf16 if precision.rounds_products() => "bf16 inputs, f32 sums",
        Precision::Bf16 => "bf16 weights, f32 products",
    };
    format!(
        "CPU kernels: fp32 on {}, bf16 on {}; precision {name} (runs on {})",
        kernel_name(Precision::F32),
        kernel_name(Precision::Bf16),
        kernel_name(precision)
    )
}

fn check_sizes(sizes: &[usize]) -> Result<()> {
    match sizes.iter().find(|&&s| s == 0 || s % 8 != 0) {
        Some(s) => Err(Error::Invalid(format!(
            "size {s} is not a positive multiple of 8"
        ))),
        None => Ok(()),
    }
}

pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(path) = &a.write_checkpoint {
        return write_checkpoint(path);
    }
    let compute = a.compute.choose()?;
    if a.sizes.is_empty() {
        let default: &[usize] = if a.pipeline || a.upscale {
            &[512]
        } else {
            &[256, 512]
        };
        return run(BenchArgs {
            sizes: default.to_vec(),
            ..a
        });
    }
    check_sizes(&a.sizes)?;
    match compute {
        Compute::Candle => {
            let b = a.compute.candle()?;
            println!("backend: {}", b.name());
            if b.device().is_cpu() {
                println!("{}", cpu_dispatch_line(b.precision()));
            }
            run_on(&b, &a)
        }
        Compute::Wgpu => {
            let b = a.compute.wgpu()?;
            println!("backend: {}", b.name());
            run_on(&b, &a)
        }
    }?;
    if let Some(rss) = peak_rss_mib() {
        println!("peak RSS: {rss:.0} MiB");
    }
    Ok(())
}

fn run_on<B: Backend + Clone>(b: &B, a: &BenchArgs) -> Result<()> {
    if a.upscale {
        return upscale::run(b, &a.sizes, a.tile);
    }
    if a.pipeline {
        if a.weights.is_some() {
            return Err(Error::Invalid(
                "--weights is the per-step bench's UNet file; --pipeline takes --checkpoint".into(),
            ));
        }
        let opts = pipeline::PipelineOptions {
            checkpoint: a.checkpoint.clone(),
            sizes: a.sizes.clone(),
            steps: a.steps.unwrap_or(20),
            json: a.json,
            hires_scale: a.hires_scale,
            hires_steps: a.hires_steps,
            vae_tiling: a.vae_tiling,
        };
        return pipeline::run(b, &opts);
    }
    if a.checkpoint.is_some() {
        return Err(Error::Invalid(
            "--checkpoint is for --pipeline; the per-step bench takes --weights".into(),
        ));
    }
    step_bench(b, a)
}

/// The UNet weights of the per-step bench: the file asked for, the default file when
/// present, else generated ones.
fn unet_store(weights: Option<&Path>) -> Result<(TensorStore, String)> {
    match weights {
        Some(path) if !path.is_file() => Err(Error::Invalid(format!(
            "{} not found; make random SD1.5 UNet weights with `.venv/bin/python \
             tests/bench/make_bench_model.py`, or leave --weights out to generate them in memory",
            path.display()
        ))),
        Some(path) => Ok((open_tensor_store(path)?, path.display().to_string())),
        None if Path::new(DEFAULT_UNET_FILE).is_file() => Ok((
            open_tensor_store(Path::new(DEFAULT_UNET_FILE))?,
            DEFAULT_UNET_FILE.to_string(),
        )),
        None => Ok((
            random_weights(Some(&UNetConfig::sd15()), None, None, WEIGHT_SEED),
            format!("random weights generated in memory (seed {WEIGHT_SEED})"),
        )),
    }
}

/// Seconds per CFG step (UNet batch 2) at each size, best and mean of `--steps` after one
/// warm-up step.
fn step_bench<B: Backend>(b: &B, a: &BenchArgs) -> Result<()> {
    let cfg = UNetConfig::sd15();
    let t0 = Instant::now();
    // The file's pages are released once the weights are on the backend.
    let (unet, source) = {
        let (store, source) = unet_store(a.weights.as_deref())?;
        let unet = UNet::load(b, &Weights::new(&store, "model.diffusion_model"), &cfg)?;
        (unet, source)
    };
    println!(
        "loaded SD1.5 UNet ({source}) in {:.1}s",
        t0.elapsed().as_secs_f32()
    );
    let context = b.upload(&vec![0.01f32; 2 * 77 * 768], &[2, 77, 768])?;
    for &side in &a.sizes {
        let l = side / 8;
        let x: Vec<f32> = (0..2 * 4 * l * l)
            .map(|i| ((i * 7919 % 1000) as f32 / 500.0) - 1.0)
            .collect();
        let x = b.upload(&x, &[2, 4, l, l])?;
        let step = || -> Result<f64> {
            let t = Instant::now();
            let eps = unet.forward(b, &x, &[500.0, 500.0], &context, &[])?;
            b.download(&eps)?;
            Ok(t.elapsed().as_secs_f64())
        };
        step()?; // warm-up: allocations, page faults
        let mut times = Vec::new();
        for _ in 0..a.steps.unwrap_or(2).max(1) {
            times.push(step()?);
        }
        let best = times.iter().cloned().fold(f64::INFINITY, f64::min);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let gflop = 2.0 * unet_gflop(side);
        println!(
            "{side}x{side} CFG step (UNet batch 2): best {best:.2} s, mean {mean:.2} s, {:.0} GFLOP/s",
            gflop / best
        );
    }
    Ok(())
}

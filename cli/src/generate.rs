//! `easel generate`: flags named as in A1111 / stable-diffusion.cpp.

use crate::progress::step_bar;
use clap::Args;
use easel_candle::CandleBackend;
use easel_core::infotext::write_png;
use easel_core::model::{checkpoint_files, resolve_checkpoint, StableDiffusion, VaeChoice};
use easel_core::noise::RngKind;
use easel_core::pipeline::{txt2img, txt2img_infotext, Txt2ImgParams};
use easel_core::registry::SamplerRegistry;
use easel_core::sampler::block_on;
use easel_core::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Args, Clone)]
pub struct GenerateArgs {
    /// Prompt (A1111 syntax: (word:1.2), [word], BREAK, ...).
    #[arg(short, long, default_value = "")]
    pub prompt: String,
    /// Negative prompt.
    #[arg(short = 'n', long = "negative", default_value = "")]
    pub negative: String,
    /// Sampling steps.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Sampler (A1111 label or alias: "Euler a", euler, k_euler_a, ...).
    #[arg(long, default_value = "Euler a")]
    pub sampler: String,
    /// Classifier-free guidance scale.
    #[arg(long = "cfg", default_value_t = 7.0)]
    pub cfg: f32,
    /// Seed; -1 picks a random one (the real seed is recorded in the PNG).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub seed: i64,
    /// Image size WIDTHxHEIGHT, multiples of 8.
    #[arg(long, default_value = "512x512")]
    pub size: String,
    /// CLIP skip (2 = penultimate layer, as NovelAI models expect).
    #[arg(long = "clip-skip", default_value_t = 1)]
    pub clip_skip: usize,
    /// Noise generator: gpu (A1111 default, Philox), nv (same stream), cpu (torch CPU).
    #[arg(long, default_value = "gpu")]
    pub rng: String,
    /// Eta noise seed delta (31337 for NovelAI parity); affects ancestral samplers.
    #[arg(long, default_value_t = 0)]
    pub ensd: u64,
    /// Number of batches to run one after another.
    #[arg(long = "batch-count", default_value_t = 1)]
    pub batch_count: usize,
    /// Images per batch (seed + i for image i).
    #[arg(long = "batch-size", default_value_t = 1)]
    pub batch_size: usize,
    /// An A1111-style models folder (default: ./models, else the bundled tiny model).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Checkpoint: name, stem, or path (default: the first in the folder).
    #[arg(long, default_value = "")]
    pub model: String,
    /// VAE: auto (sidecar <stem>.vae.pt if present), none (the checkpoint's own), a name in models/VAE, or a path.
    #[arg(long, default_value = "auto")]
    pub vae: String,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output PNG (batch images get -2, -3, ... before the extension).
    #[arg(short, long, default_value = "out.png")]
    pub output: PathBuf,
    /// Also write the initial noise and final latent (keys `noise`, `latent`) here.
    #[arg(long = "save-latents")]
    pub save_latents: Option<PathBuf>,
}

/// Every sampler this build knows.
pub fn sampler_registry() -> SamplerRegistry {
    let mut reg = SamplerRegistry::new();
    easel_samplers::register_all(&mut reg);
    reg
}

/// The bundled tiny model folder of a source checkout.
pub fn bundled_models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models")
}

/// `--models` if given, else `./models`, else the bundled tiny model (with its name).
pub fn models_folder(arg: &Option<PathBuf>, model: &str) -> (PathBuf, String) {
    match arg {
        Some(p) => (p.clone(), model.to_string()),
        None if Path::new("models/Stable-diffusion").is_dir() => (PathBuf::from("models"), model.to_string()),
        None => (bundled_models(), if model.is_empty() { "tiny".to_string() } else { model.to_string() }),
    }
}

pub fn parse_size(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::Invalid(format!("--size `{s}` is not WIDTHxHEIGHT (e.g. 512x512)"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((w.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?))
}

/// Limit CPU threads. Must run before any parallel work starts: candle's kernels and the
/// rayon pool read `RAYON_NUM_THREADS` once.
pub fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads.filter(|&n| n > 0) {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

/// Threads the CPU backend will use.
pub fn cpu_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// `out.png` for image 0, `out-2.png`, `out-3.png`, ... for the rest.
fn output_path(base: &Path, index: usize) -> PathBuf {
    if index == 0 {
        return base.to_path_buf();
    }
    let stem = base.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
    let ext = base.extension().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "png".into());
    base.with_file_name(format!("{stem}-{}.{ext}", index + 1))
}

fn random_seed() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    // A1111 draws seeds in [0, 2^32).
    (nanos as u64 ^ (nanos >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

pub fn run(a: GenerateArgs) -> Result<()> {
    set_threads(a.threads);
    let (width, height) = parse_size(&a.size)?;
    let rng: RngKind = a.rng.parse()?;
    let sampler = sampler_registry().get(&a.sampler)?;
    let seed = if a.seed < 0 { random_seed() } else { a.seed as u64 };
    if a.batch_count == 0 {
        return Err(Error::Invalid("--batch-count must be at least 1".into()));
    }
    let mut params = Txt2ImgParams {
        prompt: a.prompt.clone(),
        negative_prompt: a.negative.clone(),
        steps: a.steps,
        cfg_scale: a.cfg,
        seed,
        width,
        height,
        batch_size: a.batch_size,
        clip_skip: a.clip_skip,
        rng,
        ensd: a.ensd,
        sampler,
    };
    params.validate()?;

    let (models, model_name) = models_folder(&a.models, &a.model);
    let checkpoint = resolve_checkpoint(&models, &model_name)?;
    let files = checkpoint_files(&models, &checkpoint, &VaeChoice::parse(&a.vae))?;
    let backend = CandleBackend::cpu();
    let t0 = std::time::Instant::now();
    let model = StableDiffusion::load(&backend, &files)?;
    eprintln!(
        "loaded {} [{}]{} in {:.1}s",
        model.info.name,
        model.info.hash,
        model.info.vae_name.as_ref().map(|v| format!(" with VAE {v}")).unwrap_or_default(),
        t0.elapsed().as_secs_f32()
    );

    let mut saved_noise = Vec::new();
    let mut saved_latent = Vec::new();
    let mut index = 0;
    for batch in 0..a.batch_count {
        params.seed = seed.wrapping_add((batch * a.batch_size) as u64);
        let bar = step_bar(params.steps as u64, &format!("batch {}/{}", batch + 1, a.batch_count));
        let mut on_step = |i: usize, _total: usize, _x: &[f32]| bar.set_position(i as u64 + 1);
        let images = block_on(txt2img(&backend, &model, &params, Vec::new(), &mut on_step))?;
        bar.finish();
        for img in images {
            let text = txt2img_infotext(&params, &model.info, img.seed).format();
            let path = output_path(&a.output, index);
            write_png(&path, img.width as u32, img.height as u32, &img.rgb, Some(&text))?;
            eprintln!("wrote {} (seed {})", path.display(), img.seed);
            saved_noise.extend_from_slice(&img.noise);
            saved_latent.extend_from_slice(&img.latent);
            index += 1;
        }
    }
    if let Some(path) = &a.save_latents {
        let shape = vec![index, 4, height / 8, width / 8];
        easel_core::formats::safetensors::write_f32(path, &[("noise", shape.as_slice(), saved_noise.as_slice()), ("latent", shape.as_slice(), saved_latent.as_slice())], &Default::default())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

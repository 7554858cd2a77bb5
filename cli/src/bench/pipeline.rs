//! `easel bench --pipeline`: the parts of one txt2img image a user waits for, timed one by
//! one — model load, text encoding (prompt and negative prompt), the sampling steps (Euler
//! with CFG: one UNet call of batch 2 per step) and the VAE decode — each through the
//! same core functions `easel generate` runs, then their total.
//!
//! Without `--checkpoint` the weights are generated in memory, so "load" is the time to
//! generate them and lay them out on the backend, not a disk read.
//!
//! With `--hires-scale`, the image is A1111's hires fix with the `Latent` upscaler: the
//! first pass's latent is resized (bilinear), then a second pass of `--hires-steps` Euler
//! steps runs at the larger size over the tail of a schedule stretched by the strength (as
//! A1111's `setup_img2img_steps` does), and the decode is the large image's.

use super::WEIGHT_SEED;
use crate::generate::{sampler_registry, scheduler_registry};
use easel_core::model::{CheckpointFiles, StableDiffusion};
use easel_core::nn::{random_weights, ClipConfig, UNetConfig, VaeConfig};
use easel_core::noise::{ImageRng, RngKind};
use easel_core::pipeline::{
    decode_to_rgb, encode_prompt_parts, encode_scheduled, interpolate_latent, CfgDenoiser,
    PromptOptions, LATENT_UPSCALERS,
};
use easel_core::registry::SamplerChoice;
use easel_core::sampler::{block_on, NoiseSampler, SampleContext};
use easel_core::sampler_params::SamplerParams;
use easel_core::scheduler::sampler_sigmas;
use easel_core::{Backend, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const PROMPT: &str = "a watercolor painting of a lighthouse on a cliff at dawn, seagulls";
const NEGATIVE: &str = "blurry, low quality";
const CFG_SCALE: f32 = 7.0;
const SEED: u64 = 1;

pub struct PipelineOptions {
    /// A checkpoint file to load; `None` = random weights generated in memory.
    pub checkpoint: Option<PathBuf>,
    pub sizes: Vec<usize>,
    /// Sampling steps per image.
    pub steps: usize,
    /// Print each image's figures as a JSON line too.
    pub json: bool,
    /// Hires fix: the second pass's scale (`None` = plain txt2img).
    pub hires_scale: Option<f64>,
    /// Hires fix: the second pass's steps.
    pub hires_steps: usize,
    /// Decode in tiles (`--vae-tiling`).
    pub vae_tiling: bool,
}

/// Hires fix's denoising strength in the bench (A1111's default).
const HIRES_STRENGTH: f64 = 0.7;

/// Euler never asks for fresh noise; this answers if a sampler ever does.
struct NoNoise;

impl NoiseSampler for NoNoise {
    fn noise(&mut self, _sigma: f32, _sigma_next: f32) -> Vec<f32> {
        Vec::new()
    }
}

/// Wall time of each part of one image.
struct ImageTimes {
    text: Duration,
    /// One entry per sampling step.
    steps: Vec<Duration>,
    /// Hires fix: the latent resize and one entry per second-pass step.
    upscale: Duration,
    hires_steps: Vec<Duration>,
    decode: Duration,
    /// Peak RSS during the decode alone, where the kernel can reset the peak.
    decode_peak_mib: Option<f64>,
}

/// Euler over `sigmas` from `x`, with the time of every step.
fn euler<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    shape: [usize; 3],
    conds: (
        &easel_core::pipeline::PromptConditioning,
        &easel_core::pipeline::ScheduledConditioning,
    ),
    x: Vec<f32>,
    sigmas: &[f32],
) -> Result<(Vec<f32>, Vec<Duration>)> {
    let schedulers = scheduler_registry();
    let choice = SamplerChoice::parse(&sampler_registry(), &schedulers, "Euler", None)?;
    let (sampler, _) = choice.configured(&schedulers, &SamplerParams::default())?;
    let mut denoiser = CfgDenoiser::new(
        b,
        &model.unet,
        &model.schedule,
        Vec::new(),
        1,
        shape,
        conds.0.clone(),
        conds.1.clone(),
        CFG_SCALE,
    );
    let mut step_times = Vec::with_capacity(sigmas.len());
    let mut last = Instant::now();
    let mut on_step = |_: usize, _: usize, _: &[f32], _: &[f32]| {
        let now = Instant::now();
        step_times.push(now - last);
        last = now;
    };
    let ctx = SampleContext {
        denoiser: &mut denoiser,
        noise: &mut NoNoise,
        schedule: &model.schedule,
        on_step: &mut on_step,
        timesteps: None,
    };
    let latent = block_on(sampler.sample(x, sigmas, ctx))?;
    Ok((latent, step_times))
}

fn load<B: Backend>(b: &B, checkpoint: Option<&PathBuf>) -> Result<(StableDiffusion<B>, String)> {
    match checkpoint {
        Some(path) => {
            let files = CheckpointFiles {
                checkpoint: path.clone(),
                config: None,
                vae: None,
            };
            Ok((
                StableDiffusion::load(b, &files)?,
                path.display().to_string(),
            ))
        }
        None => {
            let store = random_weights(
                Some(&UNetConfig::sd15()),
                Some(&VaeConfig::sd15()),
                Some(&ClipConfig::vit_l14()),
                WEIGHT_SEED,
            );
            let model = StableDiffusion::load_from_stores(
                b,
                &store,
                None,
                None,
                "random-sd15.safetensors",
                ("0000000000".into(), None),
            )?;
            Ok((
                model,
                format!("random weights generated in memory (seed {WEIGHT_SEED})"),
            ))
        }
    }
}

/// One image at `side`², part by part.
fn image<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    side: usize,
    steps: usize,
    hires: Option<(f64, usize)>,
    vae_tiling: bool,
) -> Result<ImageTimes> {
    let options = PromptOptions::default();
    let t = Instant::now();
    let cond = block_on(encode_prompt_parts(
        b,
        &model.clip,
        PROMPT,
        steps,
        1,
        &options,
    ))?;
    let uncond = block_on(encode_scheduled(
        b,
        &model.clip,
        NEGATIVE,
        steps,
        1,
        &options,
    ))?;
    let text = t.elapsed();

    let schedulers = scheduler_registry();
    let choice = SamplerChoice::parse(&sampler_registry(), &schedulers, "Euler", None)?;
    let (sampler, scheduler) = choice.configured(&schedulers, &SamplerParams::default())?;
    let sigmas_for =
        |n: usize| sampler_sigmas(sampler.as_ref(), scheduler.as_ref(), &model.schedule, n);
    let sigmas = sigmas_for(steps)?;
    let shape = [model.config.unet.in_channels, side / 8, side / 8];
    let noise = ImageRng::new(RngKind::Gpu, &[SEED], 0).first(&shape);
    let x: Vec<f32> = noise.iter().map(|v| v * sigmas[0]).collect();
    let (mut latent, step_times) = euler(b, model, shape, (&cond, &uncond), x, &sigmas)?;
    let mut shape = shape;
    let mut upscale = Duration::ZERO;
    let mut hires_times = Vec::new();
    if let Some((scale, hr_steps)) = hires {
        let t = Instant::now();
        let big = ((side as f64 * scale) as usize / 8).max(1);
        latent = interpolate_latent(
            &latent,
            [1, shape[0], shape[1], shape[2]],
            big,
            big,
            LATENT_UPSCALERS[0].1,
        )?;
        upscale = t.elapsed();
        shape = [shape[0], big, big];
        // A1111: int(steps / strength) steps, of which the last `hr_steps` run.
        let stretched = sigmas_for((hr_steps as f64 / HIRES_STRENGTH) as usize)?;
        let tail = &stretched[stretched.len() - hr_steps - 1..];
        let noise = ImageRng::new(RngKind::Gpu, &[SEED], 0).first(&shape);
        let x: Vec<f32> = latent
            .iter()
            .zip(&noise)
            .map(|(l, n)| l + n * tail[0])
            .collect();
        let (l, times) = euler(b, model, shape, (&cond, &uncond), x, tail)?;
        latent = l;
        hires_times = times;
    }

    let window = super::reset_peak_rss();
    let t = Instant::now();
    let rgb = if vae_tiling {
        block_on(easel_core::pipeline::vae_tiling::decode_tiled_rgb(
            b,
            model,
            &latent,
            shape,
            easel_core::pipeline::vae_tiling::SD1_TILE_LATENT,
        ))?
    } else {
        block_on(decode_to_rgb(b, model, &latent, shape))?
    };
    let decode = t.elapsed();
    let decode_peak_mib = if window { super::peak_rss_mib() } else { None };
    debug_assert_eq!(rgb.len(), shape[1] * shape[2] * 64 * 3);
    Ok(ImageTimes {
        text,
        steps: step_times,
        upscale,
        hires_steps: hires_times,
        decode,
        decode_peak_mib,
    })
}

pub fn run<B: Backend>(b: &B, opts: &PipelineOptions) -> Result<()> {
    let t = Instant::now();
    let (model, source) = load(b, opts.checkpoint.as_ref())?;
    let load_s = t.elapsed().as_secs_f64();
    println!("SD1.5 from {source}");
    println!(
        "prompt {PROMPT:?}, negative {NEGATIVE:?}; Euler, CFG {CFG_SCALE} (one UNet call of batch 2 per step)"
    );
    println!("{:<34} {:>9}", "part", "seconds");
    println!("{:<34} {load_s:>9.2}", "model load");
    let hires = opts.hires_scale.map(|s| (s, opts.hires_steps));
    for &side in &opts.sizes {
        let times = image(b, &model, side, opts.steps, hires, opts.vae_tiling)?;
        let text = times.text.as_secs_f64();
        let steps: Vec<f64> = times.steps.iter().map(Duration::as_secs_f64).collect();
        let sampling: f64 = steps.iter().sum();
        let decode = times.decode.as_secs_f64();
        let upscale = times.upscale.as_secs_f64();
        let hires_steps: Vec<f64> = times
            .hires_steps
            .iter()
            .map(Duration::as_secs_f64)
            .collect();
        let hires_sampling: f64 = hires_steps.iter().sum();
        let out_side = match opts.hires_scale {
            Some(s) => ((side as f64 * s) as usize / 8) * 8,
            None => side,
        };
        println!("{side}x{side}:");
        println!("{:<34} {text:>9.2}", "  text encoding (cond + uncond)");
        println!(
            "{:<34} {sampling:>9.2}",
            format!("  sampling, {} steps", steps.len())
        );
        if let Some(first) = steps.first() {
            let rest = &steps[1..];
            if rest.is_empty() {
                println!("{:<34} {first:>9.2}", "    per step");
            } else {
                let best = rest.iter().cloned().fold(f64::INFINITY, f64::min);
                let mean = rest.iter().sum::<f64>() / rest.len() as f64;
                println!("    per step: first {first:.2}, then best {best:.2}, mean {mean:.2}");
            }
        }
        if opts.hires_scale.is_some() {
            println!("{:<34} {upscale:>9.2}", "  hires: latent upscale (Latent)");
            println!(
                "{:<34} {hires_sampling:>9.2}",
                format!(
                    "  hires: {} steps at {out_side}x{out_side}",
                    hires_steps.len()
                )
            );
        }
        println!(
            "{:<34} {decode:>9.2}",
            format!(
                "  VAE decode {out_side}x{out_side}{}",
                if opts.vae_tiling { " (tiled)" } else { "" }
            )
        );
        if let Some(mib) = times.decode_peak_mib {
            println!("{:<34} {mib:>9.0}", "  peak RSS during the decode, MiB");
        }
        println!(
            "{:<34} {:>9.2}",
            "  total (with model load)",
            load_s + text + sampling + upscale + hires_sampling + decode
        );
        if opts.json {
            let figures = serde_json::json!({
                "size": side,
                "load_s": load_s,
                "text_s": text,
                "steps_s": steps,
                "upscale_s": upscale,
                "hires_steps_s": hires_steps,
                "decode_s": decode,
                "decode_peak_rss_mib": times.decode_peak_mib,
                "peak_rss_mib": super::peak_rss_mib(),
            });
            println!("{figures}");
        }
    }
    Ok(())
}

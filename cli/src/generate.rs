//! `easel generate`: flags named as in A1111 / stable-diffusion.cpp.

use crate::compute::{Compute, ComputeArgs};
use crate::progress::step_bar;
use crate::session::{Session, SessionBackend, Settings};
use clap::Args;
use easel_core::image::{decode_image, decode_mask};
use easel_core::infotext::{read_parameters, write_png, Infotext};
use easel_core::model::check_plain_name;
use easel_core::noise::TorchDevice;
use easel_core::pipeline::MaskedContent;
use easel_core::registry::{SamplerRegistry, SchedulerRegistry};
use easel_core::sampler_params::SamplerParams;
use easel_core::service::{GenerationInputs, GenerationSettings, NetworkSetting, StepProgress};
use easel_core::text::EmphasisMode;
use easel_core::Backend;
use easel_core::{Error, Result};
use std::path::{Path, PathBuf};

#[derive(Args, Clone)]
pub struct GenerateArgs {
    /// Take every setting from this PNG's A1111 infotext (flags given here override it).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Print the settings this run would use (after --from and every flag), the sampler
    /// and schedule they resolve to and any warnings, as JSON, and generate nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// With --from: stop with an error where A1111's paste would only warn (a checkpoint,
    /// hypernetwork or sampler that is not installed, a feature Easel does not have).
    #[arg(long, requires = "from")]
    pub strict: bool,
    /// Prompt (A1111 syntax: (word:1.2), [word], BREAK, ...).
    #[arg(short, long)]
    pub prompt: Option<String>,
    /// Negative prompt.
    #[arg(short = 'n', long = "negative")]
    pub negative: Option<String>,
    /// Sampling steps [default: 20].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Sampler (A1111 label or alias: "Euler a", euler, k_euler_a, ...) [default: Euler a].
    #[arg(long)]
    pub sampler: Option<String>,
    /// Schedule type (A1111 names: Automatic, Karras, Exponential, ...) [default: Automatic].
    #[arg(long = "schedule-type")]
    pub schedule_type: Option<String>,
    /// Hypernetwork NAME[:STRENGTH] from models/hypernetworks (repeatable; also `<hypernet:NAME:STRENGTH>` in the prompt).
    #[arg(long = "hypernet")]
    pub hypernets: Vec<String>,
    /// LoRA/LyCORIS NAME[:WEIGHT] from models/Lora or models/LyCORIS (repeatable; also `<lora:NAME:WEIGHT>` or `<lora:NAME:TE:UNET>` in the prompt).
    #[arg(long = "lora")]
    pub loras: Vec<String>,
    /// Emphasis mode: Original (default), "No norm", Ignore, None (brackets are plain text).
    #[arg(long)]
    pub emphasis: Option<String>,
    /// Read `{word}` / `[word]` as NovelAI's ×1.05 / ÷1.05 instead of A1111's brackets.
    #[arg(long = "nai-braces")]
    pub nai_braces: bool,
    /// A1111's "Use old prompt editing timelines" (before v1.6): `[a:b:N]` below 1 is a
    /// fraction of the steps. On by itself for `--from` PNGs of those versions.
    #[arg(long = "old-prompt-timelines")]
    pub old_prompt_timelines: bool,
    /// A1111's "Downcast alphas_cumprod" (before v1.7.0-225): sample over the fp16
    /// schedule those versions used, to reproduce their seeds. On by itself for `--from`
    /// PNGs of those versions.
    #[arg(long = "downcast-alphas-cumprod")]
    pub downcast_alphas_cumprod: bool,
    /// A1111's "Pad prompt/negative prompt": a prompt and negative prompt of different
    /// lengths (over 75 tokens) share one UNet batch, the shorter padded with empty-prompt
    /// chunks. Changes the image; recorded as `Pad conds: True`.
    #[arg(long = "pad-conds")]
    pub pad_conds: bool,
    /// A1111's "Pad prompt/negative prompt (v0)" (DDIM and PLMS before v1.6): the negative
    /// prompt repeats its last vector up to the prompt's length. On by itself for `--from`
    /// PNGs of those versions.
    #[arg(long = "pad-conds-v0")]
    pub pad_conds_v0: bool,
    /// A1111's "VAE type for decode": full (the model's VAE), taesd (TAESD's tiny decoder
    /// from models/VAE-approx/taesd_decoder.pth: much faster, softer) or a VAE plugin's
    /// name [default: full].
    #[arg(long = "vae-decoder")]
    pub vae_decoder: Option<String>,
    /// A1111's "VAE type for encode": full (the model's VAE) or taesd (TAESD's tiny encoder
    /// from models/VAE-approx/taesd_encoder.pth) for init images and the hires pass's
    /// re-encode [default: full].
    #[arg(long = "vae-encoder")]
    pub vae_encoder: Option<String>,
    /// Decode with the VAE in 512-pixel tiles (diffusers' VAE tiling): a 2048² image in
    /// bounded memory; pixels near the seams differ slightly from a whole decode.
    #[arg(long = "vae-tiling")]
    pub vae_tiling: bool,
    /// Classifier-free guidance scale [default: 7].
    #[arg(long = "cfg")]
    pub cfg: Option<f32>,
    /// Seed; -1 picks a random one (the real seed is recorded in the PNG) [default: -1].
    #[arg(long, allow_negative_numbers = true)]
    pub seed: Option<i64>,
    /// Image size WIDTHxHEIGHT, multiples of 8 [default: 512x512].
    #[arg(long)]
    pub size: Option<String>,
    /// CLIP skip (2 = penultimate layer, as NovelAI models expect) [default: 1].
    #[arg(long = "clip-skip")]
    pub clip_skip: Option<usize>,
    /// Noise generator: gpu (A1111 default, Philox), nv (same stream), cpu (torch CPU).
    #[arg(long)]
    pub rng: Option<String>,
    /// Device of the A1111 run to reproduce: cuda (an NVIDIA GPU), cpu (torch on a CPU) or
    /// auto (cpu with --rng cpu, else cuda). Only the DPM++ SDE samplers' Brownian noise
    /// depends on it [default: auto].
    #[arg(long = "noise-device")]
    pub noise_device: Option<String>,
    /// Eta for ancestral and SDE samplers (A1111's "Eta for ancestral samplers", infotext
    /// `Eta`) [default: 1].
    #[arg(long)]
    pub eta: Option<f32>,
    /// Eta for DDIM (infotext `Eta DDIM`) [default: 0].
    #[arg(long = "eta-ddim")]
    pub eta_ddim: Option<f32>,
    /// Sigma churn for Euler, Heun and DPM2 (infotext `Sigma churn`) [default: 0].
    #[arg(long = "s-churn")]
    pub s_churn: Option<f32>,
    /// Sigma tmin for churn (infotext `Sigma tmin`) [default: 0].
    #[arg(long = "s-tmin")]
    pub s_tmin: Option<f32>,
    /// Sigma tmax for churn; 0 = no limit (infotext `Sigma tmax`) [default: 0].
    #[arg(long = "s-tmax")]
    pub s_tmax: Option<f32>,
    /// Sigma noise for churn (infotext `Sigma noise`) [default: 1].
    #[arg(long = "s-noise")]
    pub s_noise: Option<f32>,
    /// Lowest σ of the Karras, Exponential, Polyexponential, KL Optimal and Beta schedules
    /// (infotext `Schedule min sigma`) [default: 0 = the model's].
    #[arg(long = "sigma-min")]
    pub sigma_min: Option<f32>,
    /// Highest σ of those schedules (infotext `Schedule max sigma`) [default: 0 = the model's].
    #[arg(long = "sigma-max")]
    pub sigma_max: Option<f32>,
    /// ρ of the Karras (7) and Polyexponential (1) schedules (infotext `Schedule rho`)
    /// [default: 0 = the schedule's].
    #[arg(long)]
    pub rho: Option<f32>,
    /// α of the Beta schedule (infotext `Beta schedule alpha`) [default: 0.6].
    #[arg(long = "beta-alpha")]
    pub beta_alpha: Option<f32>,
    /// β of the Beta schedule (infotext `Beta schedule beta`) [default: 0.6].
    #[arg(long = "beta-beta")]
    pub beta_beta: Option<f32>,
    /// Eta noise seed delta (31337 for NovelAI parity); affects ancestral samplers [default: 0].
    #[arg(long)]
    pub ensd: Option<u64>,
    /// Number of batches to run one after another.
    #[arg(long = "batch-count", default_value_t = 1)]
    pub batch_count: usize,
    /// Images per batch (seed + i for image i).
    #[arg(long = "batch-size", default_value_t = 1)]
    pub batch_size: usize,
    /// An A1111-style models folder (default: ./models, else the bundled tiny model).
    #[arg(long)]
    pub models: Option<PathBuf>,
    /// Textual-inversion embeddings folder, read recursively [default: `embeddings/` beside
    /// the models folder, A1111's layout].
    #[arg(long = "embeddings-dir")]
    pub embeddings_dir: Option<PathBuf>,
    /// Checkpoint: name, stem, path, legacy hash (`925997e9`) or A1111 title
    /// (`final-pruned [925997e9]`) [default: the first in the folder].
    #[arg(long)]
    pub model: Option<String>,
    /// VAE: auto (sidecar <stem>.vae.pt if present), none (the checkpoint's own), a name in
    /// models/VAE, a path, or taesd (auto for the weights, TAESD's decoder for the final
    /// decode, as --vae-decoder taesd).
    #[arg(long, default_value = "auto")]
    pub vae: String,
    #[command(flatten)]
    pub compute: ComputeArgs,
    /// Print the backend and the CPU kernels it dispatched to.
    #[arg(short, long)]
    pub verbose: bool,
    /// Output PNG (batch images get -2, -3, ... before the extension).
    #[arg(short, long, default_value = "out.png")]
    pub output: PathBuf,
    /// Live preview: write the first image's preview to this PNG while sampling (A1111's
    /// "Approx NN" with models/VAE-approx/model.pt, else its "Approx cheap").
    #[arg(long, value_name = "FILE.png")]
    pub preview: Option<PathBuf>,
    /// With --preview: every how many sampling steps (and at the end of each pass).
    #[arg(long = "preview-every", default_value_t = 10, requires = "preview")]
    pub preview_every: usize,
    /// With --preview: auto (A1111's Approx NN when models/VAE-approx/model.pt is there,
    /// else Approx cheap), approx-nn, approx-cheap, or taesd
    /// (models/VAE-approx/taesd_decoder.pth).
    #[arg(long = "preview-method", default_value = "auto", requires = "preview")]
    pub preview_method: String,
    /// Also write the initial noise and final latent (keys `noise`, `latent`) here.
    #[arg(long = "save-latents")]
    pub save_latents: Option<PathBuf>,
    #[command(flatten)]
    pub img2img: Img2ImgArgs,
}

/// img2img, inpainting and hires fix (A1111's names; see the README).
#[derive(Args, Clone, Default)]
pub struct Img2ImgArgs {
    /// img2img: init image (PNG/JPEG/WebP/BMP; repeat for one per batch image). Its VAE
    /// latent is taken at the posterior mean (A1111 samples it unseeded), so runs repeat.
    #[arg(long = "init-img")]
    pub init_img: Vec<PathBuf>,
    /// img2img / hires: denoising strength, 0..1 [default: 0.75].
    #[arg(long = "denoising-strength")]
    pub denoising_strength: Option<f64>,
    /// img2img: just-resize, crop-and-resize, resize-and-fill, latent-upscale (or 0-3)
    /// [default: just-resize].
    #[arg(long = "resize-mode")]
    pub resize_mode: Option<String>,
    /// Inpainting: mask image (white = repaint; any size, resized like the init image).
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Inpainting: mask blur in pixels [default: 4].
    #[arg(long = "mask-blur")]
    pub mask_blur: Option<u32>,
    /// Inpainting: masked content: fill, original, latent-noise, latent-nothing
    /// [default: original].
    #[arg(long = "inpainting-fill")]
    pub inpainting_fill: Option<String>,
    /// Inpainting: "Only masked": inpaint a crop around the mask at full resolution.
    #[arg(long = "inpaint-full-res")]
    pub inpaint_full_res: bool,
    /// Inpainting: padding of that crop in pixels [default: 32].
    #[arg(long = "inpaint-full-res-padding")]
    pub inpaint_full_res_padding: Option<u32>,
    /// Inpainting: repaint what the mask leaves out.
    #[arg(long = "inpainting-mask-invert")]
    pub inpainting_mask_invert: bool,
    /// Hires fix on (also implied by any --hr-* size or upscaler flag).
    #[arg(long)]
    pub hires: bool,
    /// Hires: upscale factor of the first pass [default: 2].
    #[arg(long = "hr-scale")]
    pub hr_scale: Option<f64>,
    /// Hires: target width (0 = from the height or the scale).
    #[arg(long = "hr-resize-x")]
    pub hr_resize_x: Option<usize>,
    /// Hires: target height (0 = from the width or the scale).
    #[arg(long = "hr-resize-y")]
    pub hr_resize_y: Option<usize>,
    /// Hires: Latent, "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic
    /// antialiased)", "Latent (nearest)", "Latent (nearest-exact)", None, Lanczos, Nearest
    /// [default: Latent].
    #[arg(long = "hr-upscaler")]
    pub hr_upscaler: Option<String>,
    /// Hires: steps of the second pass (0 = as the first) [default: 0].
    #[arg(long = "hr-second-pass-steps")]
    pub hr_second_pass_steps: Option<usize>,
    /// Hires: denoising strength of the second pass (A1111 shares it with img2img's).
    #[arg(long = "hr-denoising-strength")]
    pub hr_denoising_strength: Option<f64>,
    /// Hires: sampler of the second pass [default: the first pass's].
    #[arg(long = "hr-sampler")]
    pub hr_sampler: Option<String>,
    /// Hires: schedule type of the second pass (A1111's "Hires schedule type") [default:
    /// the first pass's].
    #[arg(long = "hr-schedule-type")]
    pub hr_schedule_type: Option<String>,
    /// Hires: prompt of the second pass [default: the first pass's].
    #[arg(long = "hr-prompt")]
    pub hr_prompt: Option<String>,
    /// Hires: negative prompt of the second pass [default: the first pass's].
    #[arg(long = "hr-negative")]
    pub hr_negative: Option<String>,
}

impl Img2ImgArgs {
    /// Apply these flags over `g` (pasted values stay unless a flag is given).
    pub fn apply(&self, g: &mut GenerationSettings) -> Result<()> {
        if let Some(v) = self.denoising_strength {
            g.denoising_strength = v;
        }
        if let Some(m) = &self.resize_mode {
            g.resize_mode = parse_resize_mode(m)?;
        }
        if let Some(v) = self.mask_blur {
            g.mask_blur = v;
        }
        if let Some(f) = &self.inpainting_fill {
            g.inpainting_fill = MaskedContent::parse(f)?.index();
        }
        if self.inpaint_full_res {
            g.inpaint_full_res = true;
        }
        if let Some(v) = self.inpaint_full_res_padding {
            g.inpaint_full_res_padding = v;
        }
        if self.inpainting_mask_invert {
            g.inpainting_mask_invert = true;
        }
        let any_hr = self.hires
            || self.hr_scale.is_some()
            || self.hr_resize_x.is_some()
            || self.hr_resize_y.is_some()
            || self.hr_upscaler.is_some();
        if any_hr {
            g.enable_hr = true;
        }
        if let Some(v) = self.hr_scale {
            g.hr_scale = v;
        }
        if let Some(v) = self.hr_resize_x {
            g.hr_resize_x = v;
        }
        if let Some(v) = self.hr_resize_y {
            g.hr_resize_y = v;
        }
        if let Some(v) = &self.hr_upscaler {
            g.hr_upscaler.clone_from(v);
        }
        if let Some(v) = self.hr_second_pass_steps {
            g.hr_second_pass_steps = v;
        }
        if let Some(v) = self.hr_denoising_strength {
            g.denoising_strength = v;
        }
        if let Some(v) = &self.hr_sampler {
            g.hr_sampler.clone_from(v);
        }
        if let Some(v) = &self.hr_schedule_type {
            g.hr_schedule_type = Some(v.clone());
        }
        if let Some(v) = &self.hr_prompt {
            g.hr_prompt.clone_from(v);
        }
        if let Some(v) = &self.hr_negative {
            g.hr_negative_prompt.clone_from(v);
        }
        if !self.init_img.is_empty() {
            if any_hr {
                return Err(Error::Invalid(
                    "hires fix is a txt2img option; it cannot be combined with --init-img".into(),
                ));
            }
            // A pasted img2img PNG turns hires on in A1111's txt2img only.
            g.enable_hr = false;
        }
        if self.mask.is_some() && self.init_img.is_empty() {
            return Err(Error::Invalid(
                "--mask needs an --init-img to inpaint".into(),
            ));
        }
        Ok(())
    }

    /// The init images and mask, decoded (each error names its file).
    pub fn inputs(&self) -> Result<GenerationInputs> {
        let read = |p: &PathBuf| {
            std::fs::read(p).map_err(|e| Error::Invalid(format!("{}: {e}", p.display())))
        };
        let mut inputs = GenerationInputs::default();
        for p in &self.init_img {
            inputs
                .init_images
                .push(decode_image(&read(p)?, &p.display().to_string())?);
        }
        if let Some(p) = &self.mask {
            inputs.mask = Some(decode_mask(&read(p)?, &p.display().to_string())?);
        }
        Ok(inputs)
    }
}

/// A1111's resize modes by name or number.
pub fn parse_resize_mode(text: &str) -> Result<u32> {
    match text.trim().to_ascii_lowercase().replace([' ', '_'], "-").as_str() {
        "0" | "just-resize" => Ok(0),
        "1" | "crop-and-resize" => Ok(1),
        "2" | "resize-and-fill" => Ok(2),
        "3" | "latent-upscale" | "just-resize-(latent-upscale)" => Ok(3),
        _ => Err(Error::Invalid(format!(
            "resize mode `{text}` is not one of just-resize, crop-and-resize, resize-and-fill, latent-upscale"
        ))),
    }
}

impl GenerateArgs {
    /// The sampler parameters given as flags.
    fn sampler_params(&self) -> SamplerParams {
        SamplerParams {
            eta: self.eta,
            eta_ddim: self.eta_ddim,
            s_churn: self.s_churn,
            s_tmin: self.s_tmin,
            s_tmax: self.s_tmax,
            s_noise: self.s_noise,
            schedule_sigma_min: self.sigma_min,
            schedule_sigma_max: self.sigma_max,
            schedule_rho: self.rho,
            beta_alpha: self.beta_alpha,
            beta_beta: self.beta_beta,
        }
    }
}

/// Every sampler this build knows: A1111's, plus the example third-party one when the
/// build asks for it (`--features example-sampler`), so a default build offers only what
/// an A1111 user expects.
pub fn sampler_registry() -> SamplerRegistry {
    let mut reg = SamplerRegistry::new();
    easel_samplers::register_all(&mut reg);
    #[cfg(feature = "example-sampler")]
    easel_example_custom_sampler::register(&mut reg);
    reg
}

/// Every schedule this build knows.
pub fn scheduler_registry() -> SchedulerRegistry {
    let mut reg = SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut reg);
    reg
}

/// The bundled tiny model folder of a source checkout.
pub fn bundled_models() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models");
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// `--models` if given, else `./models`, else the bundled tiny model (with its name).
pub fn models_folder(arg: &Option<PathBuf>, model: &str) -> (PathBuf, String) {
    match arg {
        Some(p) => (p.clone(), model.to_string()),
        None if Path::new("models/Stable-diffusion").is_dir() => {
            (PathBuf::from("models"), model.to_string())
        }
        None => (
            bundled_models(),
            if model.is_empty() {
                "tiny".to_string()
            } else {
                model.to_string()
            },
        ),
    }
}

pub fn parse_size(s: &str) -> Result<(usize, usize)> {
    let bad = || Error::Invalid(format!("--size `{s}` is not WIDTHxHEIGHT (e.g. 512x512)"));
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    Ok((
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    ))
}

/// `out.png` for image 0, `out-2.png`, `out-3.png`, ... for the rest.
fn output_path(base: &Path, index: usize) -> PathBuf {
    if index == 0 {
        return base.to_path_buf();
    }
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "out".into());
    let ext = base
        .extension()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "png".into());
    base.with_file_name(format!("{stem}-{}.{ext}", index + 1))
}

fn random_seed() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // A1111 draws seeds in [0, 2^32).
    (nanos as u64 ^ (nanos >> 64) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

impl GenerateArgs {
    /// The settings these flags describe: `--from` read first (as A1111's "send to
    /// txt2img"), every flag given here over it, defaults for the rest, a random seed
    /// drawn for -1.
    pub fn settings(&self) -> Result<Settings> {
        let (settings, warnings) = self.settings_and_warnings()?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        Ok(settings)
    }

    /// [`Self::settings`] with the warnings `--from` raised instead of printing them.
    pub fn settings_and_warnings(&self) -> Result<(Settings, Vec<String>)> {
        let a = self;
        let mut all_warnings = Vec::new();
        let mut g = GenerationSettings::default();
        let mut seed = a.seed;
        let mut pasted = None;
        let mut field_warnings = Vec::new();
        if let Some(png) = &a.from {
            let text = read_parameters(png)?.ok_or_else(|| {
                Error::Invalid(format!(
                    "{}: the PNG has no A1111 `parameters` text",
                    png.display()
                ))
            })?;
            let info = Infotext::parse(&text);
            field_warnings = g.paste_infotext(&info);
            if seed.is_none() {
                // An unreadable seed is one of the warnings; the run then draws one.
                seed = info.seed().ok().flatten().map(|v| v as i64);
            }
            pasted = Some(info);
        }
        if let Some(p) = &a.prompt {
            // A prompt with its own tag replaces the pasted hypernetwork.
            if p.contains("<hypernet:") {
                g.hypernets.clear();
            }
            g.prompt.clone_from(p);
        }
        if let Some(n) = &a.negative {
            g.negative_prompt.clone_from(n);
        }
        if let Some(v) = a.steps {
            g.steps = v;
        }
        if let Some(sampler) = &a.sampler {
            g.sampler.clone_from(sampler);
            g.schedule_type = None;
        }
        if let Some(t) = &a.schedule_type {
            g.schedule_type = Some(t.clone());
        }
        if !a.hypernets.is_empty() {
            g.hypernets = a
                .hypernets
                .iter()
                .map(|h| NetworkSetting::parse(h))
                .collect::<Result<_>>()?;
        }
        if !a.loras.is_empty() {
            g.loras = a
                .loras
                .iter()
                .map(|l| parse_lora_flag(l))
                .collect::<Result<_>>()?;
        }
        if let Some(v) = a.cfg {
            g.cfg_scale = v;
        }
        g.seed = match seed.unwrap_or(-1) {
            s if s < 0 => random_seed(),
            s => s as u64,
        };
        if let Some(size) = &a.size {
            (g.width, g.height) = parse_size(size)?;
        }
        if let Some(v) = a.clip_skip {
            g.clip_skip = v;
        }
        if let Some(r) = &a.rng {
            g.rng = r.parse()?;
        }
        g.noise_device = TorchDevice::parse_or_auto(a.noise_device.as_deref().unwrap_or("auto"))?;
        if let Some(v) = a.ensd {
            g.ensd = v;
        }
        // Flags win over the pasted values, as for every other setting.
        g.sampler_params = a.sampler_params().or(g.sampler_params);
        g.sampler_params.validate()?;
        if let Some(e) = &a.emphasis {
            g.emphasis = EmphasisMode::from_a1111_name(e)?;
        }
        g.nai_braces = a.nai_braces;
        g.old_prompt_timelines |= a.old_prompt_timelines;
        g.downcast_alphas_cumprod |= a.downcast_alphas_cumprod;
        g.pad_conds |= a.pad_conds;
        g.pad_conds_v0 |= a.pad_conds_v0;
        g.vae_tiling |= a.vae_tiling;
        if let Some(d) = &a.vae_decoder {
            g.vae_decoder = easel_core::pipeline::VaeDecoder::parse(d)?;
        }
        if let Some(e) = &a.vae_encoder {
            g.vae_encoder = easel_core::pipeline::VaeEncoder::parse(e)?;
        }
        a.img2img.apply(&mut g)?;
        g.batch_size = a.batch_size;
        g.batch_count = a.batch_count;
        g.vae.clone_from(&a.vae);
        // `--vae taesd`: the checkpoint's weights for encoding, TAESD's decoder for the
        // final decode (stable-diffusion.cpp's `--taesd`, A1111's decode method).
        if a.vae.eq_ignore_ascii_case("taesd") {
            g.vae = "auto".into();
            g.vae_decoder = easel_core::pipeline::VaeDecoder::taesd();
        }
        // Names pasted from a PNG are outside data: a checkpoint or hypernetwork named there
        // resolves only inside the models folder, never as a path.
        if a.from.is_some() {
            if a.model.is_none() && !g.model.is_empty() {
                check_plain_name(&g.model, "checkpoint")?;
            }
            if a.hypernets.is_empty() {
                for h in &g.hypernets {
                    check_plain_name(&h.name, "hypernetwork")?;
                }
            }
        }
        let model = a.model.clone().unwrap_or_else(|| g.model.clone());
        let (models, model) = models_folder(&a.models, &model);
        g.model = model;
        if let Some(info) = &pasted {
            let explicit = crate::paste::Explicit {
                model: a.model.is_some(),
                vae: !a.vae.eq_ignore_ascii_case("auto"),
                hypernets: !a.hypernets.is_empty(),
                sampler: a.sampler.is_some(),
            };
            let warnings = crate::paste::check_pasted(
                info,
                std::mem::take(&mut field_warnings),
                &mut g,
                &models,
                &explicit,
                &sampler_registry(),
                &scheduler_registry(),
                a.strict,
            )?;
            all_warnings = warnings;
        }
        // A pasted `Lora hashes` renames the prompt's LoRAs to the files of this folder with
        // those hashes, as A1111's paste does.
        if let (Some(png), None) = (&a.from, &a.prompt) {
            if let Some(field) = read_parameters(png)?
                .map(|t| Infotext::parse(&t))
                .and_then(|i| i.get("Lora hashes").map(str::to_string))
            {
                let entries = easel_lora::list_loras(&models);
                g.prompt =
                    easel_lora::rename_by_pasted_hashes(&g.prompt, &field, &entries, &mut |e| {
                        e.short_hash().ok()
                    });
            }
        }
        Ok((
            Settings {
                models,
                embeddings: a.embeddings_dir.clone(),
                generation: g,
            },
            all_warnings,
        ))
    }
}

/// `--dry-run`: what the run would do, as JSON on stdout: the models folder, every
/// setting (after `--from` and the flags), the sampler and schedule type they resolve to
/// (as the PNG would record them) and the warnings. Nothing is loaded or generated.
fn print_dry_run(a: &GenerateArgs) -> Result<()> {
    let (settings, warnings) = a.settings_and_warnings()?;
    let g = &settings.generation;
    let (samplers, schedulers) = (sampler_registry(), scheduler_registry());
    let choice = easel_core::registry::SamplerChoice::parse(
        &samplers,
        &schedulers,
        &g.sampler,
        g.schedule_type.as_deref(),
    )?;
    let out = serde_json::json!({
        "models": settings.models.display().to_string(),
        "settings": g,
        "sampler": choice.infotext_sampler(),
        "schedule_type": choice.infotext_schedule_type(&schedulers)?,
        "warnings": warnings,
    });
    println!("{out}");
    Ok(())
}

pub fn run(a: GenerateArgs) -> Result<()> {
    if a.dry_run {
        return print_dry_run(&a);
    }
    let compute = a.compute.choose()?;
    if a.batch_count == 0 {
        return Err(Error::Invalid("--batch-count must be at least 1".into()));
    }
    match compute {
        Compute::Candle => {
            let b = a.compute.candle()?;
            if a.verbose {
                eprintln!("backend: {}", b.name());
            }
            run_on(&a, Session::new(b))
        }
        Compute::Wgpu => run_on(&a, Session::new(a.compute.wgpu()?)),
    }
}

fn run_on<B: SessionBackend>(a: &GenerateArgs, mut session: Session<B>) -> Result<()> {
    let settings = a.settings()?;
    let inputs = a.img2img.inputs()?;
    let preview = match &a.preview {
        Some(path) => {
            let p = crate::preview::LivePreview::new(
                path.clone(),
                a.preview_every,
                &a.preview_method,
                &settings.models,
                session.backend().clone(),
            )?;
            eprintln!("live preview ({}) in {}", p.method(), path.display());
            Some(p)
        }
        None => None,
    };
    let mut bar: Option<(usize, indicatif::ProgressBar)> = None;
    let mut on_step = |p: &StepProgress| {
        if let Some(preview) = &preview {
            preview.on_step(p);
        }
        if bar.as_ref().map(|(b, _)| *b) != Some(p.batch) {
            if let Some((_, old)) = bar.take() {
                old.finish();
            }
            let label = format!("batch {}/{}", p.batch + 1, p.batch_count);
            bar = Some((p.batch, step_bar(p.steps as u64, &label)));
        }
        if let Some((_, b)) = &bar {
            b.set_position(p.step as u64 + 1);
        }
    };
    let images = session.generate_with_inputs(&settings, &inputs, &mut on_step)?;
    if let Some((_, b)) = bar.take() {
        b.finish();
    }
    let mut saved_noise = Vec::new();
    let mut saved_latent = Vec::new();
    let mut index = 0;
    // Hires images are larger than the first-pass size the settings hold.
    let images_size = images.first().map(|(img, _)| (img.height, img.width));
    for (img, info) in images {
        let path = output_path(&a.output, index);
        write_png(
            &path,
            img.width as u32,
            img.height as u32,
            &img.rgb,
            Some(&info.format()),
        )?;
        eprintln!("wrote {} (seed {})", path.display(), img.seed);
        saved_noise.extend_from_slice(&img.noise);
        saved_latent.extend_from_slice(&img.latent);
        index += 1;
    }
    if let Some(path) = &a.save_latents {
        let (h, w) = images_size.unwrap_or((settings.height, settings.width));
        let shape = vec![index, 4, h / 8, w / 8];
        easel_core::formats::safetensors::write_f32(
            path,
            &[
                ("noise", shape.as_slice(), saved_noise.as_slice()),
                ("latent", shape.as_slice(), saved_latent.as_slice()),
            ],
            &Default::default(),
        )?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// `--lora NAME[:WEIGHT]`: the weight is what follows the last `:` when that is a number.
fn parse_lora_flag(text: &str) -> Result<NetworkSetting> {
    let (name, weight) = match text.rsplit_once(':') {
        Some((name, w)) if w.trim().parse::<f32>().is_ok() => {
            (name, w.trim().parse::<f32>().unwrap_or(1.0))
        }
        _ => (text, 1.0),
    };
    if name.trim().is_empty() || !weight.is_finite() {
        return Err(Error::Invalid(format!(
            "--lora `{text}`: expected NAME or NAME:WEIGHT with a finite weight"
        )));
    }
    Ok(NetworkSetting {
        name: name.to_string(),
        strength: weight,
    })
}

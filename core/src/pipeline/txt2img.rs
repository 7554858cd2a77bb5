//! Text to image, A1111 style: conditioning for prompt and negative prompt, per-image
//! noise from the chosen generator (seed + i for image i), σ-scaled start, the sampler
//! along A1111's default schedule, VAE decode and the truncating u8 conversion.

use super::cancel::CancelToken;
use super::cfg_denoiser::CfgDenoiser;
use super::conditioning::{encode_prompt_parts, encode_scheduled, padding_chunk, PromptOptions};
use crate::backend::{Backend, LocalBoxFuture};
use crate::error::{Error, Result};
use crate::model::StableDiffusion;
use crate::nn::hook::AttentionHook;
use crate::noise::{ImageRng, RngKind, TorchDevice};
use crate::sampler::{
    DenoiseCall, Denoised, Denoiser, NoiseRequest, NoiseSampler, SampleContext, Sampler,
};
use crate::schedule::DiscreteSchedule;
use crate::scheduler::{sampler_sigmas, Scheduler};
use crate::text::strip_comments;
use std::sync::Arc;

/// Largest side accepted (A1111's UI limit).
pub const MAX_SIDE: usize = 2048;
/// Images per batch (A1111's UI allows 8; its API no limit). Memory grows with the batch.
pub const MAX_BATCH_SIZE: usize = 64;
/// Pixels of all images of one batch together: sixteen 1024×1024 images, or sixty-four
/// 512×512 ones.
pub const MAX_BATCH_PIXELS: usize = 16 * 1024 * 1024;

#[derive(Clone)]
pub struct Txt2ImgParams {
    pub prompt: String,
    pub negative_prompt: String,
    pub steps: usize,
    pub cfg_scale: f32,
    /// Seed of the first image; image i of the batch uses seed + i.
    pub seed: u64,
    pub width: usize,
    pub height: usize,
    pub batch_size: usize,
    pub clip_skip: usize,
    pub rng: RngKind,
    /// The device of the A1111 run to reproduce: only the SDE samplers' Brownian noise
    /// depends on it (default CUDA, as on an NVIDIA GPU).
    pub noise_device: TorchDevice,
    /// Eta noise seed delta (0 = off; 31337 for NovelAI parity).
    pub ensd: u64,
    pub sampler: Arc<dyn Sampler>,
    /// The schedule that spaces σ (already resolved from `Automatic` to the sampler's
    /// default; see `SchedulerRegistry::effective`).
    pub scheduler: Arc<dyn Scheduler>,
    /// A1111's "Downcast alphas_cumprod": sample over the model's fp16 schedule.
    pub downcast_alphas_cumprod: bool,
    /// How the final latents become images (A1111's "VAE type for decode").
    pub vae_decoder: VaeDecoder,
    /// A1111's "VAE type for encode" for the image → latent steps of the job.
    pub vae_encoder: super::vae_encode::VaeEncoder,
    /// Decode with the model's VAE in tiles (diffusers' VAE tiling), in bounded memory.
    pub vae_tiling: bool,
}

/// A1111's "VAE type for decode" (`sd_vae_decode_method`): the model's VAE, TAESD's tiny
/// decoder (much faster, softer) or a plugin's. Written to the infotext as `VAE Decoder`
/// when not `Full`.
pub type VaeDecoder = crate::vae_plugin::VaeMethod;

/// The final decode of a job: the model's VAE, or the VAE method the job names.
pub async fn decode_latent_image<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Txt2ImgParams,
    latent: &[f32],
    shape: [usize; 3],
) -> Result<Vec<u8>> {
    if !params.vae_decoder.is_full() {
        let decoder = model.vae_methods.decoder(params.vae_decoder.label())?;
        return decoder.decode_rgb(b, latent, shape[1], shape[2]).await;
    }
    if params.vae_tiling {
        super::vae_tiling::decode_tiled_rgb(
            b,
            model,
            latent,
            shape,
            super::vae_tiling::SD1_TILE_LATENT,
        )
        .await
    } else {
        decode_to_rgb(b, model, latent, shape).await
    }
}

impl Txt2ImgParams {
    /// The model's diffusion schedule as this job samples it.
    pub fn schedule<'m, B: Backend>(&self, model: &'m StableDiffusion<B>) -> &'m DiscreteSchedule {
        if self.downcast_alphas_cumprod {
            &model.schedule_f16
        } else {
            &model.schedule
        }
    }

    /// Reject settings the networks cannot run, with a message naming the setting.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if v == 0 || v % 8 != 0 {
                return Err(Error::Invalid(format!(
                    "{name} {v} is not a positive multiple of 8"
                )));
            }
            if v > MAX_SIDE {
                return Err(Error::Invalid(format!(
                    "{name} {v} is larger than {MAX_SIDE}"
                )));
            }
        }
        crate::scheduler::check_steps(self.steps)?;
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(Error::Invalid(format!(
                "batch size must be between 1 and {MAX_BATCH_SIZE}, got {}",
                self.batch_size
            )));
        }
        let pixels = self.width * self.height * self.batch_size;
        if pixels > MAX_BATCH_PIXELS {
            return Err(Error::Invalid(format!(
                "a batch of {} images of {}x{} is {pixels} pixels; the limit is {MAX_BATCH_PIXELS} \
                 (use a smaller batch size and more batches)",
                self.batch_size, self.width, self.height
            )));
        }
        if !self.cfg_scale.is_finite() {
            return Err(Error::Invalid("CFG scale must be a finite number".into()));
        }
        if self.clip_skip == 0 {
            return Err(Error::Invalid("clip skip must be at least 1".into()));
        }
        Ok(())
    }

    /// Seeds of the images in this batch.
    pub fn seeds(&self) -> Vec<u64> {
        (0..self.batch_size as u64)
            .map(|i| self.seed.wrapping_add(i))
            .collect()
    }
}

/// One generated image.
#[derive(Clone, Debug)]
pub struct GeneratedImage {
    pub seed: u64,
    pub width: usize,
    pub height: usize,
    /// RGB, row-major, 3 bytes per pixel.
    pub rgb: Vec<u8>,
    /// Initial noise `[4, h/8, w/8]` (before σ₀ scaling).
    pub noise: Vec<f32>,
    /// Final latent `[4, h/8, w/8]` (before VAE decode).
    pub latent: Vec<f32>,
}

/// Progress callback: (step from 0, total steps, current latent batch).
pub type Progress<'a> = &'a mut dyn FnMut(usize, usize, &[f32]);

/// A1111's sampler noise: further draws from the per-image generators.
pub(crate) struct RngNoise<'r> {
    pub(crate) rng: &'r mut ImageRng,
    pub(crate) shape: [usize; 3],
}

impl NoiseSampler for RngNoise<'_> {
    fn noise(&mut self, _sigma: f32, _sigma_next: f32) -> Vec<f32> {
        self.rng.next(&self.shape)
    }
}

/// Generate one batch (async so the browser can await GPU readbacks), reading prompts
/// with A1111's default emphasis.
pub async fn txt2img<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Txt2ImgParams,
    hooks: Vec<&dyn AttentionHook<B>>,
    progress: Progress<'_>,
) -> Result<Vec<GeneratedImage>> {
    txt2img_with_options(b, model, params, &PromptOptions::default(), hooks, progress).await
}

/// [`txt2img`] with an emphasis mode and bracket syntax of the user's choice.
pub async fn txt2img_with_options<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Txt2ImgParams,
    options: &PromptOptions,
    hooks: Vec<&dyn AttentionHook<B>>,
    progress: Progress<'_>,
) -> Result<Vec<GeneratedImage>> {
    let never = CancelToken::new();
    txt2img_cancellable(b, model, params, options, hooks, progress, &never).await
}

/// Asks the model only while `cancel` lets the batch go on; once stopped, every further
/// evaluation fails with [`Error::Interrupted`], which ends the sampler's loop.
pub(crate) struct StoppableDenoiser<'d, D> {
    pub(crate) inner: D,
    pub(crate) cancel: &'d CancelToken,
}

impl<D: Denoiser> Denoiser for StoppableDenoiser<'_, D> {
    fn denoise<'a>(&'a mut self, x: &'a [f32], sigma: f32) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        if self.cancel.stops_batch() {
            return Box::pin(async { Err(Error::Interrupted) });
        }
        self.inner.denoise(x, sigma)
    }

    fn denoise_call<'a>(
        &'a mut self,
        x: &'a [f32],
        sigma: f32,
        call: DenoiseCall,
    ) -> LocalBoxFuture<'a, Result<Denoised>> {
        if self.cancel.stops_batch() {
            return Box::pin(async { Err(Error::Interrupted) });
        }
        self.inner.denoise_call(x, sigma, call)
    }
}

/// [`txt2img_with_options`] that stops early when `cancel` says so (A1111's Interrupt and
/// Skip): the images are then decoded from the last denoised prediction (the start latent
/// when no step finished), as A1111 returns them.
pub async fn txt2img_cancellable<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Txt2ImgParams,
    options: &PromptOptions,
    hooks: Vec<&dyn AttentionHook<B>>,
    progress: Progress<'_>,
    cancel: &CancelToken,
) -> Result<Vec<GeneratedImage>> {
    let (latent, noise, shape) =
        txt2img_latents(b, model, params, options, hooks, progress, cancel).await?;
    decode_batch(b, model, params, &latent, Some(&noise), shape).await
}

/// The batch's images: each image's latent in `latent` (`shape` each) decoded as the job
/// asks, with its seed and, when given, its initial noise.
pub(crate) async fn decode_batch<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Txt2ImgParams,
    latent: &[f32],
    noise: Option<&[f32]>,
    shape: [usize; 3],
) -> Result<Vec<GeneratedImage>> {
    let per_image: usize = shape.iter().product();
    let mut images = Vec::with_capacity(params.batch_size);
    for (i, seed) in params.seeds().into_iter().enumerate() {
        let range = i * per_image..(i + 1) * per_image;
        let lat = &latent[range.clone()];
        images.push(GeneratedImage {
            seed,
            width: shape[2] * 8,
            height: shape[1] * 8,
            rgb: decode_latent_image(b, model, params, lat, shape).await?,
            noise: noise.map(|n| n[range].to_vec()).unwrap_or_default(),
            latent: lat.to_vec(),
        });
    }
    Ok(images)
}

/// The sampling half of [`txt2img_cancellable`]: (final latents of the batch, their
/// initial noise, the latent shape of one image), not yet decoded (the hires pass
/// continues from them).
pub(crate) async fn txt2img_latents<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Txt2ImgParams,
    options: &PromptOptions,
    hooks: Vec<&dyn AttentionHook<B>>,
    progress: Progress<'_>,
    cancel: &CancelToken,
) -> Result<(Vec<f32>, Vec<f32>, [usize; 3])> {
    params.validate()?;
    // A1111 strips `#` comments before anything else sees the prompts.
    let prompt = strip_comments(&params.prompt);
    let negative = strip_comments(&params.negative_prompt);
    let cond = encode_prompt_parts(
        b,
        &model.clip,
        &prompt,
        params.steps,
        params.clip_skip,
        options,
    )
    .await?;
    let uncond = encode_scheduled(
        b,
        &model.clip,
        &negative,
        params.steps,
        params.clip_skip,
        options,
    )
    .await?;
    let latent_channels = model.config.unet.out_channels;
    let shape = [latent_channels, params.height / 8, params.width / 8];
    let seeds = params.seeds();
    let mut rng = ImageRng::new(params.rng, &seeds, params.ensd);
    let noise = rng.first(&shape);

    let sigmas = sampler_sigmas(
        params.sampler.as_ref(),
        params.scheduler.as_ref(),
        params.schedule(model),
        params.steps,
    )?;
    let x: Vec<f32> = noise.iter().map(|v| v * sigmas[0]).collect();
    let empty_chunk = padding_chunk(b, &model.clip, params.clip_skip, options).await?;
    let denoiser = CfgDenoiser::new(
        b,
        &model.unet,
        params.schedule(model),
        hooks,
        seeds.len(),
        shape,
        cond,
        uncond,
        params.cfg_scale,
    )
    .with_padding(options.cond_padding.clone(), empty_chunk);
    // An inpainting checkpoint gets A1111's "everything masked, grey image" conditioning.
    let denoiser = if super::inpaint::is_inpainting_model(model) {
        let one =
            super::inpaint::txt2img_image_conditioning(b, model, (params.width, params.height))
                .await?;
        let all = (0..seeds.len()).flat_map(|_| one.iter().copied()).collect();
        denoiser.with_image_cond(Some(all))
    } else {
        denoiser
    };
    let mut denoiser = StoppableDenoiser {
        inner: denoiser,
        cancel,
    };
    let start = x.clone();
    let walk = SamplerWalk {
        params,
        seeds: &seeds,
        shape,
        noise_sigmas: &sigmas,
        timesteps: None,
        schedule: params.schedule(model),
    };
    let latent = walk
        .run(&mut denoiser, &mut rng, x, &sigmas, start, progress)
        .await?;
    Ok((latent, noise, shape))
}

/// One walk of the sampler as A1111 runs it, shared by txt2img and img2img: SDE samplers
/// bring their own noise (a Brownian tree over `noise_sigmas`), the rest draw further noise
/// from the per-image generators; when Interrupt or Skip stops the walk, the result is the
/// last denoised prediction, or `start` when no step finished.
pub(crate) struct SamplerWalk<'a> {
    pub(crate) params: &'a Txt2ImgParams,
    pub(crate) seeds: &'a [u64],
    pub(crate) shape: [usize; 3],
    pub(crate) noise_sigmas: &'a [f32],
    pub(crate) timesteps: Option<&'a [usize]>,
    pub(crate) schedule: &'a crate::schedule::DiscreteSchedule,
}

impl SamplerWalk<'_> {
    pub(crate) async fn run(
        &self,
        denoiser: &mut dyn Denoiser,
        rng: &mut ImageRng,
        x: Vec<f32>,
        sigmas: &[f32],
        start: Vec<f32>,
        progress: Progress<'_>,
    ) -> Result<Vec<f32>> {
        let request = NoiseRequest {
            rng: self.params.rng,
            device: self.params.noise_device,
            seeds: self.seeds,
            shape: &self.shape,
            sigmas: self.noise_sigmas,
        };
        let mut noise_sampler: Box<dyn NoiseSampler + '_> =
            match self.params.sampler.custom_noise(&request) {
                Some(custom) => custom,
                None => Box::new(RngNoise {
                    rng,
                    shape: self.shape,
                }),
            };
        let mut last_denoised: Option<Vec<f32>> = None;
        let mut on_step = |i: usize, total: usize, x: &[f32], denoised: &[f32]| {
            progress(i, total, x);
            last_denoised = Some(denoised.to_vec());
        };
        let ctx = SampleContext {
            denoiser,
            noise: &mut *noise_sampler,
            schedule: self.schedule,
            on_step: &mut on_step,
            timesteps: self.timesteps,
        };
        match self.params.sampler.sample(x, sigmas, ctx).await {
            Ok(latent) => Ok(latent),
            Err(Error::Interrupted) => Ok(last_denoised.unwrap_or(start)),
            Err(e) => Err(e),
        }
    }
}

/// Latent → RGB bytes: multiply by 1/scale, VAE decode, clamp((x+1)/2) and truncate ×255
/// to u8 exactly as A1111 does.
pub async fn decode_to_rgb<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    latent: &[f32],
    shape: [usize; 3],
) -> Result<Vec<u8>> {
    let inv = (1.0 / model.config.scale_factor as f64) as f32;
    let z: Vec<f32> = latent.iter().map(|v| v * inv).collect();
    let z = b.upload(&z, &[1, shape[0], shape[1], shape[2]])?;
    let img = model.vae.decode(b, &z)?;
    let img = b.download_async(&img).await?;
    let (h, w) = (shape[1] * 8, shape[2] * 8);
    Ok(chw_to_rgb8(&img, h, w))
}

/// `[3, h, w]` floats in [-1, 1] → interleaved RGB bytes, A1111's conversion.
pub fn chw_to_rgb8(img: &[f32], h: usize, w: usize) -> Vec<u8> {
    let plane = h * w;
    let mut out = vec![0u8; plane * 3];
    for c in 0..3 {
        for p in 0..plane {
            let v = ((img[c * plane + p] + 1.0) / 2.0).clamp(0.0, 1.0);
            out[p * 3 + c] = (255.0f32 * v) as u8;
        }
    }
    out
}

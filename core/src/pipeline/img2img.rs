//! Image to image, A1111 style: the init image's latent is noised to the level the
//! denoising strength picks and the sampler runs the rest of the schedule from there.
//!
//! Steps (A1111's `setup_img2img_steps`): a plain img2img run keeps its step count `n` and
//! walks the last `t_enc = ⌊min(strength, 0.999)·n⌋` steps of it (plus one); the hires
//! pass (and A1111's "img2img fix steps" option) instead stretches the schedule to
//! `⌊n / min(strength, 0.999)⌋` steps so exactly `n` get walked (`t_enc = n − 1`).
//!
//! k-diffusion samplers start at `x = init + noise·σ` with σ the first of the sliced
//! schedule `sigmas[steps − t_enc − 1..]`; DDIM, PLMS and UniPC start from the
//! variance-preserving latent `√ᾱ·init + √(1−ᾱ)·noise` at timestep `timesteps[t_enc]` and
//! walk `timesteps[..t_enc]`. The noise is the first draw of the per-image generators
//! (seed + i), exactly as txt2img's initial noise; SDE samplers' Brownian tree spans the
//! whole, unsliced schedule, as in A1111.

use super::cancel::CancelToken;
use super::cfg_denoiser::{CfgDenoiser, LatentBlend};
use super::conditioning::{
    encode_prompt_parts, encode_scheduled, padding_chunk, CondPadding, Conditioning,
    PromptConditioning, PromptOptions, ScheduledConditioning,
};
use super::txt2img::Txt2ImgParams;
use super::txt2img::{decode_batch, GeneratedImage, Progress, SamplerWalk, StoppableDenoiser};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::StableDiffusion;
use crate::nn::hook::AttentionHook;
use crate::noise::ImageRng;
use crate::schedule::a1111_timesteps;
use crate::scheduler::sampler_sigmas;
use crate::text::strip_comments;

/// img2img settings: the txt2img ones (size = output size) plus the strength.
#[derive(Clone)]
pub struct Img2ImgParams {
    pub base: Txt2ImgParams,
    /// How far the init image is noised, 0..=1 (A1111's default 0.75). f64 as in A1111,
    /// where `⌊0.7 · 10⌋` must be 7.
    pub denoising_strength: f64,
}

impl Img2ImgParams {
    pub fn validate(&self) -> Result<()> {
        self.base.validate()?;
        check_strength(self.denoising_strength, "denoising strength")
    }
}

/// A strength must be a number in [0, 1]; the message names the setting.
pub fn check_strength(v: f64, name: &str) -> Result<()> {
    if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
        return Err(Error::Invalid(format!(
            "{name} must be between 0 and 1, got {v}"
        )));
    }
    Ok(())
}

/// A1111's `setup_img2img_steps`: (steps of the schedule, `t_enc`). `fix_steps` is its
/// behaviour when steps are passed explicitly (every hires pass).
pub fn img2img_steps(steps: usize, strength: f64, fix_steps: bool) -> (usize, usize) {
    let capped = strength.min(0.999);
    if fix_steps {
        let total = if strength > 0.0 {
            (steps as f64 / capped) as usize
        } else {
            0
        };
        (total, steps.saturating_sub(1))
    } else {
        (steps, (capped * steps as f64) as usize)
    }
}

/// Cond and uncond of one job, encoded for a schedule of `steps` steps.
pub(crate) struct JobConds {
    pub cond: PromptConditioning,
    pub uncond: ScheduledConditioning,
    /// The padding option and the empty-prompt chunk it pads with.
    pub padding: CondPadding,
    pub empty_chunk: Option<Conditioning>,
}

impl JobConds {
    pub(crate) async fn encode<B: Backend>(
        b: &B,
        model: &StableDiffusion<B>,
        prompt: &str,
        negative: &str,
        steps: usize,
        clip_skip: usize,
        options: &PromptOptions,
    ) -> Result<Self> {
        // A1111 strips `#` comments before anything else sees the prompts.
        let prompt = strip_comments(prompt);
        let negative = strip_comments(negative);
        let cond = encode_prompt_parts(b, &model.clip, &prompt, steps, clip_skip, options).await?;
        let uncond = encode_scheduled(b, &model.clip, &negative, steps, clip_skip, options).await?;
        let empty_chunk = padding_chunk(b, &model.clip, clip_skip, options).await?;
        Ok(Self {
            cond,
            uncond,
            padding: options.cond_padding.clone(),
            empty_chunk,
        })
    }
}

/// One img2img sampling run over a batch (the shared core of img2img and the hires pass).
pub(crate) struct Img2ImgRun<'a, B: Backend> {
    pub params: &'a Txt2ImgParams,
    pub strength: f64,
    /// A1111 passes the step count explicitly (hires pass): see [`img2img_steps`].
    pub fix_steps: bool,
    /// Scaled init latents of the whole batch, one after another.
    pub init: &'a [f32],
    /// Latent shape of one image.
    pub shape: [usize; 3],
    pub hooks: Vec<&'a dyn AttentionHook<B>>,
    /// Inpainting: (keep-mask, nmask) of one image `[c, h, w]`; blended in at every step
    /// and into the result.
    pub mask: Option<(Vec<f32>, Vec<f32>)>,
    /// Inpainting checkpoints: `[batch, 5, h, w]` image conditioning.
    pub image_cond: Option<Vec<f32>>,
}

impl<B: Backend> Img2ImgRun<'_, B> {
    /// (final latents, initial noise) of the batch.
    pub(crate) async fn sample(
        self,
        b: &B,
        model: &StableDiffusion<B>,
        conds: JobConds,
        progress: Progress<'_>,
        cancel: &CancelToken,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let params = self.params;
        let shape = self.shape;
        let per_image: usize = shape.iter().product();
        let seeds = params.seeds();
        if self.init.len() != per_image * seeds.len() {
            return Err(Error::Invalid(format!(
                "img2img: {} init latent values for {} images of shape {shape:?}",
                self.init.len(),
                seeds.len()
            )));
        }
        let (steps, t_enc) = img2img_steps(params.steps, self.strength, self.fix_steps);
        if steps == 0 {
            return Err(Error::Invalid(
                "denoising strength 0 leaves the hires pass no steps to take".into(),
            ));
        }
        crate::scheduler::check_steps(steps)?;
        let mut rng = ImageRng::new(params.rng, &seeds, params.ensd);
        let noise = rng.first(&shape);
        let schedule = params.schedule(model);
        let full_sigmas = sampler_sigmas(
            params.sampler.as_ref(),
            params.scheduler.as_ref(),
            schedule,
            steps,
        )?;

        let timesteps_sched: Vec<usize>;
        let (x, sigmas): (Vec<f32>, Vec<f32>) = if params.sampler.walks_timesteps() {
            let timesteps = a1111_timesteps(schedule.len(), steps);
            timesteps_sched = timesteps[..t_enc].to_vec();
            let sigma = schedule.sigmas()[timesteps[t_enc]] as f64;
            let alpha = (1.0 / (1.0 + sigma * sigma)) as f32;
            let (sa, s1a) = (alpha.sqrt(), (1.0 - alpha).sqrt());
            let x = self
                .init
                .iter()
                .zip(&noise)
                .map(|(i, n)| i * sa + n * s1a)
                .collect();
            // The σ of the walked timesteps, for samplers that only count them.
            let mut sig: Vec<f32> = timesteps_sched
                .iter()
                .rev()
                .map(|&t| schedule.sigmas()[t])
                .collect();
            sig.push(0.0);
            (x, sig)
        } else {
            timesteps_sched = Vec::new();
            let sched = full_sigmas[steps - t_enc - 1..].to_vec();
            let s0 = sched[0];
            let x = self
                .init
                .iter()
                .zip(&noise)
                .map(|(i, n)| i + n * s0)
                .collect();
            (x, sched)
        };

        let denoiser = CfgDenoiser::new(
            b,
            &model.unet,
            schedule,
            self.hooks,
            seeds.len(),
            shape,
            conds.cond,
            conds.uncond,
            params.cfg_scale,
        )
        .with_padding(conds.padding, conds.empty_chunk)
        .with_blend(self.mask.as_ref().map(|(mask, nmask)| LatentBlend {
            init: self.init.to_vec(),
            mask: mask.clone(),
            nmask: nmask.clone(),
            before: params.sampler.walks_timesteps(),
        }))
        .with_image_cond(self.image_cond.clone());
        let mut denoiser = StoppableDenoiser {
            inner: denoiser,
            cancel,
        };
        let walk = SamplerWalk {
            params,
            seeds: &seeds,
            shape,
            noise_sigmas: &full_sigmas,
            timesteps: params
                .sampler
                .walks_timesteps()
                .then_some(timesteps_sched.as_slice()),
            schedule,
        };
        // Interrupted before any step: A1111 returns the init latent.
        let latent = walk
            .run(
                &mut denoiser,
                &mut rng,
                x,
                &sigmas,
                self.init.to_vec(),
                progress,
            )
            .await?;
        // A1111's `samples * nmask + init_latent * mask` after sampling.
        let latent = match &self.mask {
            Some((mask, nmask)) => {
                let per = mask.len();
                latent
                    .iter()
                    .zip(self.init)
                    .enumerate()
                    .map(|(i, (&v, &o))| v * nmask[i % per] + o * mask[i % per])
                    .collect()
            }
            None => latent,
        };
        Ok((latent, noise))
    }
}

/// img2img over one batch: `init` holds the scaled init latents (see
/// [`super::vae_encode`]), one per image of the batch or a single one used for every
/// image (A1111 repeats a lone init image over the batch).
#[allow(clippy::too_many_arguments)]
pub async fn img2img_cancellable<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Img2ImgParams,
    init: &[Vec<f32>],
    options: &PromptOptions,
    hooks: Vec<&dyn AttentionHook<B>>,
    progress: Progress<'_>,
    cancel: &CancelToken,
) -> Result<Vec<GeneratedImage>> {
    params.validate()?;
    let base = &params.base;
    let shape = [
        model.config.unet.out_channels,
        base.height / 8,
        base.width / 8,
    ];
    let per_image: usize = shape.iter().product();
    let batch = base.batch_size;
    if init.is_empty() || (init.len() != 1 && init.len() != batch) {
        return Err(Error::Invalid(format!(
            "img2img: {} init images for a batch of {batch} (give one, or one per image)",
            init.len()
        )));
    }
    let mut all = Vec::with_capacity(per_image * batch);
    for i in 0..batch {
        let lat = &init[if init.len() == 1 { 0 } else { i }];
        if lat.len() != per_image {
            return Err(Error::Invalid(format!(
                "img2img: init latent {i} has {} values, expected {per_image} for {}x{}",
                lat.len(),
                base.width,
                base.height
            )));
        }
        all.extend_from_slice(lat);
    }
    let conds = JobConds::encode(
        b,
        model,
        &base.prompt,
        &base.negative_prompt,
        base.steps,
        base.clip_skip,
        options,
    )
    .await?;
    let run = Img2ImgRun {
        params: base,
        strength: params.denoising_strength,
        fix_steps: false,
        init: &all,
        shape,
        hooks,
        mask: None,
        image_cond: None,
    };
    let (latent, noise) = run.sample(b, model, conds, progress, cancel).await?;
    decode_batch(b, model, base, &latent, Some(&noise), shape).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_setup_img2img_steps() {
        // Plain img2img: ⌊min(d, 0.999)·n⌋ in double precision.
        assert_eq!(img2img_steps(20, 0.75, false), (20, 15));
        assert_eq!(img2img_steps(10, 0.7, false), (10, 7));
        assert_eq!(img2img_steps(20, 1.0, false), (20, 19));
        assert_eq!(img2img_steps(20, 0.0, false), (20, 0));
        // Explicit steps (hires pass): stretched schedule, n − 1.
        assert_eq!(img2img_steps(10, 0.5, true), (20, 9));
        assert_eq!(img2img_steps(10, 0.7, true), (14, 9));
        assert_eq!(img2img_steps(10, 1.0, true), (10, 9));
        assert_eq!(img2img_steps(10, 0.0, true), (0, 9));
    }

    #[test]
    fn strength_outside_unit_interval_is_refused() {
        assert!(check_strength(0.5, "denoising strength").is_ok());
        let err = check_strength(1.5, "denoising strength").unwrap_err();
        assert!(err.to_string().contains("denoising strength"), "{err}");
        assert!(check_strength(f64::NAN, "x").is_err());
        assert!(check_strength(-0.1, "x").is_err());
    }
}

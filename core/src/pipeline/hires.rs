//! Hires fix, A1111's two-pass txt2img (`StableDiffusionProcessingTxt2Img.sample_hr_pass`):
//! a first pass at the base size, the result enlarged to the hires size, then an img2img
//! pass over it with its own steps, strength, sampler and prompts.
//!
//! Enlarging: a "Latent …" upscaler resizes the latents with torch's interpolation
//! ([`super::latent_upscale`]); an image upscaler gets the decoded u8 picture and its
//! output is VAE-encoded again. Target size (`calculate_target_resolution`): `hr_scale`
//! times the base size, truncated; or `hr_resize_x`×`hr_resize_y`, where a 0 keeps the
//! aspect ratio and two values make A1111 upscale to cover them and then crop the latent
//! centrally by whole latent pixels. The second pass takes its steps explicitly, so its
//! schedule is stretched (see [`super::img2img::img2img_steps`]); its noise comes from
//! fresh per-image generators with the same seeds, shaped like the hires latent.

use super::cancel::CancelToken;
use super::conditioning::PromptOptions;
use super::img2img::{check_strength, Img2ImgRun, JobConds};
use super::latent_upscale::{interpolate, LatentUpscaleMode};
use super::txt2img::{
    decode_batch, decode_latent_image, txt2img_latents, GeneratedImage, Progress, Txt2ImgParams,
};
use super::vae_encode::encode_rgb8_with;
use crate::backend::{Backend, LocalBoxFuture};
use crate::error::{Error, Result};
use crate::model::StableDiffusion;
use crate::nn::hook::AttentionHook;
use crate::sampler::Sampler;
use crate::scheduler::Scheduler;
use crate::text::ScheduleOptions;
use std::sync::Arc;

/// Latent (and pixel) crop of the hires result: A1111's `truncate_x/y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HiresTarget {
    /// The size the first pass is enlarged to (`hr_upscale_to_x/y`).
    pub upscale_to: (usize, usize),
    /// Latent columns / rows cut away after enlarging (half on each side, the odd one
    /// at the end).
    pub truncate: (usize, usize),
}

impl HiresTarget {
    /// A1111's `calculate_target_resolution` for a first pass of `width`×`height`.
    pub fn new(width: usize, height: usize, scale: f64, resize_x: usize, resize_y: usize) -> Self {
        if resize_x == 0 && resize_y == 0 {
            return Self {
                upscale_to: (
                    (width as f64 * scale) as usize,
                    (height as f64 * scale) as usize,
                ),
                truncate: (0, 0),
            };
        }
        if resize_y == 0 {
            return Self {
                upscale_to: (resize_x, resize_x * height / width),
                truncate: (0, 0),
            };
        }
        if resize_x == 0 {
            return Self {
                upscale_to: (resize_y * width / height, resize_y),
                truncate: (0, 0),
            };
        }
        let src_ratio = width as f64 / height as f64;
        let dst_ratio = resize_x as f64 / resize_y as f64;
        let upscale_to = if src_ratio < dst_ratio {
            (resize_x, resize_x * height / width)
        } else {
            (resize_y * width / height, resize_y)
        };
        Self {
            upscale_to,
            truncate: (
                upscale_to.0.saturating_sub(resize_x) / 8,
                upscale_to.1.saturating_sub(resize_y) / 8,
            ),
        }
    }

    /// Latent size of the enlarged first pass: (h, w).
    fn latent_size(&self) -> (usize, usize) {
        (self.upscale_to.1 / 8, self.upscale_to.0 / 8)
    }

    /// Final latent size after the crop: (h, w).
    pub fn final_latent_size(&self) -> (usize, usize) {
        let (h, w) = self.latent_size();
        (
            h.saturating_sub(self.truncate.1),
            w.saturating_sub(self.truncate.0),
        )
    }
}

/// Enlarges a decoded first-pass image (A1111's image upscalers: Lanczos, Nearest, the
/// ESRGAN family), as `images.resize_image(0, image, w, h, upscaler_name)` does.
pub trait HiresImageUpscaler {
    /// Interleaved RGB `width`×`height` → RGB `to_w`×`to_h`.
    fn resize(
        &self,
        rgb: &[u8],
        width: usize,
        height: usize,
        to_w: usize,
        to_h: usize,
    ) -> Result<Vec<u8>>;
    /// [`Self::resize`] without blocking on the device; the pipeline calls this one, so an
    /// upscaler model can read its output back with `Backend::download_async` (the only
    /// read-back the browser's WebGPU allows). The default runs [`Self::resize`].
    fn resize_async<'a>(
        &'a self,
        rgb: &'a [u8],
        width: usize,
        height: usize,
        to_w: usize,
        to_h: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move { self.resize(rgb, width, height, to_w, to_h) })
    }
}

/// How the first pass is enlarged.
pub enum HiresUpscaler<'a> {
    Latent(LatentUpscaleMode),
    Image(&'a dyn HiresImageUpscaler),
}

/// The second pass's settings.
#[derive(Clone)]
pub struct HiresParams {
    /// A1111's name of the upscaler (written as `Hires upscaler`).
    pub upscaler_name: String,
    pub scale: f64,
    pub resize_x: usize,
    pub resize_y: usize,
    /// 0 = as many as the first pass.
    pub second_pass_steps: usize,
    pub denoising_strength: f64,
    /// `None` = the first pass's sampler and schedule.
    pub sampler: Option<(Arc<dyn Sampler>, Arc<dyn Scheduler>)>,
    /// Empty = the first pass's prompt (A1111's `hr_prompt == ''`).
    pub prompt: String,
    pub negative_prompt: String,
}

impl HiresParams {
    pub fn target(&self, width: usize, height: usize) -> HiresTarget {
        HiresTarget::new(width, height, self.scale, self.resize_x, self.resize_y)
    }

    pub fn validate(&self, base: &Txt2ImgParams) -> Result<()> {
        check_strength(self.denoising_strength, "hires denoising strength")?;
        if self.denoising_strength == 0.0 {
            return Err(Error::Invalid(
                "hires denoising strength 0 leaves the second pass no steps".into(),
            ));
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(Error::Invalid(format!(
                "hires scale must be a positive number, got {}",
                self.scale
            )));
        }
        let t = self.target(base.width, base.height);
        let (h, w) = t.final_latent_size();
        let (uw, uh) = t.upscale_to;
        if h == 0
            || w == 0
            || uw > super::txt2img::MAX_SIDE * 2
            || uh > super::txt2img::MAX_SIDE * 2
        {
            return Err(Error::Invalid(format!(
                "hires size {uw}x{uh} (from scale {} / resize {}x{}) is out of range",
                self.scale, self.resize_x, self.resize_y
            )));
        }
        let pixels = w * 8 * h * 8 * base.batch_size;
        if pixels > super::txt2img::MAX_BATCH_PIXELS {
            return Err(Error::Invalid(format!(
                "a hires batch of {} images of {}x{} is {pixels} pixels; the limit is {}",
                base.batch_size,
                w * 8,
                h * 8,
                super::txt2img::MAX_BATCH_PIXELS
            )));
        }
        if self.second_pass_steps > crate::scheduler::MAX_STEPS {
            return Err(Error::Invalid(format!(
                "hires steps must be at most {}, got {}",
                crate::scheduler::MAX_STEPS,
                self.second_pass_steps
            )));
        }
        Ok(())
    }

    /// The second pass as a txt2img parameter set (size = final size).
    pub fn second_pass(&self, base: &Txt2ImgParams) -> Txt2ImgParams {
        let (h, w) = self.target(base.width, base.height).final_latent_size();
        let mut p = base.clone();
        p.width = w * 8;
        p.height = h * 8;
        if self.second_pass_steps > 0 {
            p.steps = self.second_pass_steps;
        }
        if let Some((sampler, scheduler)) = &self.sampler {
            p.sampler = sampler.clone();
            p.scheduler = scheduler.clone();
        }
        if !self.prompt.is_empty() {
            p.prompt.clone_from(&self.prompt);
        }
        if !self.negative_prompt.is_empty() {
            p.negative_prompt.clone_from(&self.negative_prompt);
        }
        p
    }
}

/// Crop `[c, h, w]` latents of `n` images by A1111's truncate rule.
fn truncate(latent: &[f32], n: usize, [c, h, w]: [usize; 3], (tx, ty): (usize, usize)) -> Vec<f32> {
    if tx == 0 && ty == 0 {
        return latent.to_vec();
    }
    let (y0, y1) = (ty / 2, h - ty.div_ceil(2));
    let (x0, x1) = (tx / 2, w - tx.div_ceil(2));
    let mut out = Vec::with_capacity(n * c * (y1 - y0) * (x1 - x0));
    for plane in latent.chunks(h * w).take(n * c) {
        for y in y0..y1 {
            out.extend_from_slice(&plane[y * w + x0..y * w + x1]);
        }
    }
    out
}

/// txt2img with hires fix over one batch. `progress` hears both passes.
#[allow(clippy::too_many_arguments)]
pub async fn txt2img_hires<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Txt2ImgParams,
    hires: &HiresParams,
    upscaler: HiresUpscaler<'_>,
    options: &PromptOptions,
    hooks: Vec<&dyn AttentionHook<B>>,
    progress: Progress<'_>,
    cancel: &CancelToken,
) -> Result<Vec<GeneratedImage>> {
    params.validate()?;
    hires.validate(params)?;
    let second = hires.second_pass(params);
    let (latent, _noise, shape) = txt2img_latents(
        b,
        model,
        params,
        options,
        hooks.clone(),
        &mut *progress,
        cancel,
    )
    .await?;
    let n = params.batch_size;
    let per_image: usize = shape.iter().product();
    let target = hires.target(params.width, params.height);
    let (uw, uh) = target.upscale_to;
    let (lh, lw) = target.latent_size();
    // Interrupted during the first pass: A1111 returns the first pass as it is.
    if cancel.is_interrupted() {
        return decode_all(b, model, params, &latent, shape).await;
    }
    let enlarged = match upscaler {
        HiresUpscaler::Latent(mode) => {
            interpolate(&latent, [n, shape[0], shape[1], shape[2]], lh, lw, mode)?
        }
        HiresUpscaler::Image(up) => {
            if uw % 8 != 0 || uh % 8 != 0 {
                return Err(Error::Invalid(format!(
                    "hires size {uw}x{uh} must be a multiple of 8 with an image upscaler"
                )));
            }
            let mut out = Vec::with_capacity(n * shape[0] * lh * lw);
            for i in 0..n {
                let lat = &latent[i * per_image..(i + 1) * per_image];
                // A1111 decodes and re-encodes with the job's VAE methods.
                let rgb = decode_latent_image(b, model, params, lat, shape).await?;
                let big = up
                    .resize_async(&rgb, params.width, params.height, uw, uh)
                    .await?;
                out.extend(encode_rgb8_with(b, model, &big, (uw, uh), &params.vae_encoder).await?);
            }
            out
        }
    };
    let big_shape = [shape[0], lh, lw];
    let cropped = truncate(&enlarged, n, big_shape, target.truncate);
    let (fh, fw) = target.final_latent_size();
    let final_shape = [shape[0], fh, fw];
    // A1111 ≥ 1.6 schedules the second pass's prompts over the first pass's steps with the
    // hires steps given (`[a:b:N]` counts on from the first pass, `[a:b:0.x]` from 1.0);
    // with old timelines the hires steps are ignored.
    let hires_options = PromptOptions {
        schedule: ScheduleOptions {
            hires_steps: Some(second.steps),
            ..options.schedule
        },
        ..options.clone()
    };
    let conds = JobConds::encode(
        b,
        model,
        &second.prompt,
        &second.negative_prompt,
        params.steps,
        second.clip_skip,
        &hires_options,
    )
    .await?;
    // An inpainting checkpoint: everything masked, so the conditioning image is blank
    // whichever upscaler ran (A1111's result wherever its shapes agree).
    let image_cond = if super::inpaint::is_inpainting_model(model) {
        let one = super::inpaint::txt2img_image_conditioning(b, model, (fw * 8, fh * 8)).await?;
        Some((0..n).flat_map(|_| one.iter().copied()).collect())
    } else {
        None
    };
    let run = Img2ImgRun {
        params: &second,
        strength: hires.denoising_strength,
        fix_steps: true,
        init: &cropped,
        shape: final_shape,
        hooks,
        mask: None,
        image_cond,
    };
    let (latent, _) = run.sample(b, model, conds, progress, cancel).await?;
    decode_all(b, model, &second, &latent, final_shape).await
}

async fn decode_all<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Txt2ImgParams,
    latent: &[f32],
    shape: [usize; 3],
) -> Result<Vec<GeneratedImage>> {
    decode_batch(b, model, params, latent, None, shape).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_resolution_follows_a1111() {
        let t = HiresTarget::new(512, 512, 2.0, 0, 0);
        assert_eq!((t.upscale_to, t.truncate), ((1024, 1024), (0, 0)));
        // int() truncation of the scaled size.
        assert_eq!(HiresTarget::new(512, 768, 1.3, 0, 0).upscale_to, (665, 998));
        assert_eq!(
            HiresTarget::new(512, 768, 0.0, 1024, 0).upscale_to,
            (1024, 1536)
        );
        assert_eq!(
            HiresTarget::new(512, 768, 0.0, 0, 1024).upscale_to,
            (682, 1024)
        );
        // Both given: cover, then crop centrally in whole latent pixels.
        let t = HiresTarget::new(512, 768, 0.0, 1024, 1024);
        assert_eq!((t.upscale_to, t.truncate), ((1024, 1536), (0, 64)));
        assert_eq!(t.final_latent_size(), (128, 128));
        let t = HiresTarget::new(768, 512, 0.0, 1000, 600);
        assert_eq!((t.upscale_to, t.truncate), ((1000, 666), (0, 8)));
    }

    #[test]
    fn truncate_cuts_half_on_each_side() {
        // One 1×3×4 latent, cut 3 columns → keep column 1 only (1 before, 2 after).
        let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(truncate(&x, 1, [1, 3, 4], (3, 0)), vec![1.0, 5.0, 9.0]);
        assert_eq!(
            truncate(&x, 1, [1, 3, 4], (0, 1)),
            (0..8).map(|v| v as f32).collect::<Vec<_>>()
        );
    }
}

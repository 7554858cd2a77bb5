//! The parts of a job beyond plain txt2img: img2img / inpainting from init images (with
//! A1111's pixel steps from [`crate::image`] before and after the latent pipeline) and
//! hires fix. [`PreparedJob`] is A1111's `init`: done once per job, before the batches;
//! [`PreparedJob::run_batch`] samples one batch and writes the extra infotext fields.

use super::settings::GenerationSettings;
use crate::backend::LocalBoxFuture;
use crate::image::{
    apply_overlay, latent_mask, prepare_init_image, prepare_mask, resize_image, resize_image_async,
    GrayImage, ImageUpscaler, InpaintingFill, MaskSettings, PreparedMask, ResizeMode, RgbImage,
    RgbaImage, UpscalerRegistry,
};
use crate::infotext::Infotext;
use crate::model::StableDiffusion;
use crate::nn::AttentionHook;
use crate::pipeline::img2img::check_strength;
use crate::pipeline::img2img_infotext::{add_denoising_strength, add_extra_params, hires_fields};
use crate::pipeline::{
    img2img_inpaint, txt2img_cancellable, txt2img_hires, CancelToken, GeneratedImage,
    HiresImageUpscaler, HiresParams, HiresUpscaler, Img2ImgInputs, Img2ImgParams, InitImage,
    InpaintMask, LatentUpscaleMode, MaskedContent, PromptOptions, Txt2ImgParams,
};
use crate::registry::{SamplerChoice, SamplerRegistry, SchedulerRegistry};
use crate::{Backend, Error, Result};

/// The images a job starts from (img2img and inpainting); empty = txt2img.
#[derive(Clone, Debug, Default)]
pub struct GenerationInputs {
    /// One init image, or one per image of a batch.
    pub init_images: Vec<RgbImage>,
    /// The inpainting mask (white = repaint), any size: A1111 resizes it like the image.
    pub mask: Option<GrayImage>,
}

/// What a job does besides txt2img, prepared once.
pub(crate) enum PreparedJob<'u> {
    Txt2Img,
    Hires {
        hires: HiresParams,
        upscaler: HiresChoice<'u>,
    },
    Img2Img(Box<Img2ImgJob>),
}

pub(crate) enum HiresChoice<'u> {
    Latent(LatentUpscaleMode),
    /// `None` = A1111's "None" (a plain Lanczos resize).
    Image(Option<&'u dyn ImageUpscaler>),
}

pub(crate) struct Img2ImgJob {
    inits: Vec<InitImage>,
    /// Per init image: the original pixels outside the mask (inpainting).
    overlays: Vec<Option<RgbaImage>>,
    mask: Option<InpaintMask>,
    paste_to: Option<(i64, i64, usize, usize)>,
    latent_resize: bool,
    /// The inpainting fields of the infotext, in the order A1111's `init` sets them.
    mask_fields: Vec<(&'static str, String)>,
}

/// [`HiresImageUpscaler`] over A1111's `images.resize_image(0, …, upscaler_name)`; the
/// pipeline takes the async version, so an upscaler model never blocks on the device.
struct ResizeWith<'u>(Option<&'u dyn ImageUpscaler>);

impl HiresImageUpscaler for ResizeWith<'_> {
    fn resize(&self, rgb: &[u8], w: usize, h: usize, to_w: usize, to_h: usize) -> Result<Vec<u8>> {
        let img = RgbImage::new(w, h, rgb.to_vec())?;
        Ok(resize_image(ResizeMode::JustResize, &img, to_w, to_h, self.0)?.data)
    }
    fn resize_async<'a>(
        &'a self,
        rgb: &'a [u8],
        w: usize,
        h: usize,
        to_w: usize,
        to_h: usize,
    ) -> LocalBoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(async move {
            let img = RgbImage::new(w, h, rgb.to_vec())?;
            let out = resize_image_async(ResizeMode::JustResize, &img, to_w, to_h, self.0).await?;
            Ok(out.data)
        })
    }
}

impl<'u> PreparedJob<'u> {
    /// A1111's `init` for these settings and inputs.
    pub(crate) fn prepare(
        s: &GenerationSettings,
        inputs: &GenerationInputs,
        samplers: &SamplerRegistry,
        schedulers: &SchedulerRegistry,
        upscalers: &'u UpscalerRegistry,
    ) -> Result<Self> {
        if !inputs.init_images.is_empty() || s.enable_hr {
            check_strength(s.denoising_strength, "denoising strength")?;
        }
        if !inputs.init_images.is_empty() {
            return Ok(Self::Img2Img(Box::new(prepare_img2img(s, inputs)?)));
        }
        if inputs.mask.is_some() {
            return Err(Error::Invalid(
                "a mask needs an init image to inpaint (--init-img)".into(),
            ));
        }
        if !s.enable_hr {
            return Ok(Self::Txt2Img);
        }
        // A1111's "Use same sampler" / "Use same scheduler": a hires sampler alone keeps
        // the first pass's schedule type (its selection, `Automatic` included).
        let sampler = if s.hr_sampler.trim().is_empty() && s.hr_schedule_type.is_none() {
            None
        } else {
            let first =
                SamplerChoice::parse(samplers, schedulers, &s.sampler, s.schedule_type.as_deref())?;
            let name = if s.hr_sampler.trim().is_empty() {
                s.sampler.as_str()
            } else {
                s.hr_sampler.as_str()
            };
            let schedule = s
                .hr_schedule_type
                .clone()
                .unwrap_or_else(|| first.scheduler.label().to_string());
            let choice = SamplerChoice::parse(samplers, schedulers, name, Some(&schedule))?;
            Some(choice.configured(schedulers, &s.sampler_params)?)
        };
        let hires = HiresParams {
            upscaler_name: s.hr_upscaler.clone(),
            scale: s.hr_scale,
            resize_x: s.hr_resize_x,
            resize_y: s.hr_resize_y,
            second_pass_steps: s.hr_second_pass_steps,
            denoising_strength: s.denoising_strength,
            sampler,
            prompt: s.hr_prompt.clone(),
            negative_prompt: s.hr_negative_prompt.clone(),
        };
        // No upscaler named (A1111's API `hr_upscaler: null`): its default latent mode,
        // "Latent", and no `Hires upscaler` in the infotext.
        let latent_name = if s.hr_upscaler.trim().is_empty() {
            "Latent"
        } else {
            s.hr_upscaler.as_str()
        };
        let upscaler = match LatentUpscaleMode::from_a1111_name(latent_name) {
            Some(mode) => HiresChoice::Latent(mode),
            None => HiresChoice::Image(upscalers.get(&s.hr_upscaler).map_err(|e| {
                let latent: Vec<&str> = crate::pipeline::LATENT_UPSCALERS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect();
                Error::Invalid(format!(
                    "hires upscaler: {e}; or a latent one: {}",
                    latent.join(", ")
                ))
            })?),
        };
        Ok(Self::Hires { hires, upscaler })
    }

    /// One batch: the images and, per image, the infotext fields beyond txt2img's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run_batch<B: Backend>(
        &self,
        b: &B,
        model: &StableDiffusion<B>,
        params: &Txt2ImgParams,
        s: &GenerationSettings,
        options: &PromptOptions,
        hooks: Vec<&dyn AttentionHook<B>>,
        progress: &mut dyn FnMut(usize, usize, &[f32]),
        cancel: &CancelToken,
    ) -> Result<Vec<GeneratedImage>> {
        match self {
            Self::Txt2Img => {
                txt2img_cancellable(b, model, params, options, hooks, progress, cancel).await
            }
            Self::Hires { hires, upscaler } => {
                let image_upscaler;
                let up = match upscaler {
                    HiresChoice::Latent(mode) => HiresUpscaler::Latent(*mode),
                    HiresChoice::Image(u) => {
                        image_upscaler = ResizeWith(*u);
                        HiresUpscaler::Image(&image_upscaler)
                    }
                };
                txt2img_hires(
                    b, model, params, hires, up, options, hooks, progress, cancel,
                )
                .await
            }
            Self::Img2Img(job) => {
                let i2i = Img2ImgParams {
                    base: params.clone(),
                    denoising_strength: s.denoising_strength,
                };
                let inputs = Img2ImgInputs {
                    images: &job.inits,
                    latent_resize: job.latent_resize,
                    mask: job.mask.as_ref(),
                    inpainting_mask_weight: 1.0,
                    first_seed: s.seed,
                };
                let mut images =
                    img2img_inpaint(b, model, &i2i, &inputs, options, hooks, progress, cancel)
                        .await?;
                // A1111's apply_overlay: paste back ("only masked") and composite the
                // original outside the mask.
                for (i, img) in images.iter_mut().enumerate() {
                    let overlay = &job.overlays[if job.overlays.len() == 1 { 0 } else { i }];
                    if let Some(overlay) = overlay {
                        let rgb =
                            RgbImage::new(img.width, img.height, std::mem::take(&mut img.rgb))?;
                        let out = apply_overlay(&rgb, job.paste_to, overlay, None)?;
                        img.width = out.width;
                        img.height = out.height;
                        img.rgb = out.data;
                    }
                }
                Ok(images)
            }
        }
    }

    /// Whether the hires pass decodes, upscales and re-encodes images (an upscaler model
    /// rather than a latent mode); A1111 records a non-Full VAE encoder only then.
    pub(crate) fn hires_reencodes(&self) -> bool {
        matches!(
            self,
            Self::Hires {
                upscaler: HiresChoice::Image(_),
                ..
            }
        )
    }

    /// Add this job's fields to a txt2img infotext, where A1111 writes them.
    pub(crate) fn infotext(
        &self,
        t: &mut Infotext,
        s: &GenerationSettings,
        params: &Txt2ImgParams,
    ) {
        // `init`'s fields, then what A1111 adds just before sampling (the alpha schedule
        // override), all ahead of the sampler's own parameters.
        let mut fields = match self {
            Self::Txt2Img => Vec::new(),
            Self::Hires { hires, .. } => {
                add_denoising_strength(t, s.denoising_strength);
                hires_fields(
                    hires,
                    &params.prompt,
                    &params.negative_prompt,
                    (params.sampler.label(), params.scheduler.label()),
                )
            }
            Self::Img2Img(job) => {
                add_denoising_strength(t, s.denoising_strength);
                let mut fields = job.mask_fields.clone();
                // A1111 records it in `init`, just before encoding the init images.
                if !s.vae_encoder.is_full() {
                    fields.push(("VAE Encoder", s.vae_encoder.label().to_string()));
                }
                fields
            }
        };
        if s.downcast_alphas_cumprod {
            fields.push(("Downcast alphas_cumprod", "True".to_string()));
        }
        add_extra_params(t, fields);
    }
}

fn masked_content(s: &GenerationSettings) -> Result<(MaskedContent, InpaintingFill)> {
    let m = MaskedContent::from_index(s.inpainting_fill)?;
    let f = match m {
        MaskedContent::Fill => InpaintingFill::Fill,
        MaskedContent::Original => InpaintingFill::Original,
        MaskedContent::LatentNoise => InpaintingFill::LatentNoise,
        MaskedContent::LatentNothing => InpaintingFill::LatentNothing,
    };
    Ok((m, f))
}

/// A1111's `StableDiffusionProcessingImg2Img.init` up to the tensors.
fn prepare_img2img(s: &GenerationSettings, inputs: &GenerationInputs) -> Result<Img2ImgJob> {
    let resize_mode = ResizeMode::from_index(s.resize_mode as i64)?;
    let (content, fill) = masked_content(s)?;
    if inputs.init_images.len() > 1 && inputs.init_images.len() != s.batch_size {
        return Err(Error::Invalid(format!(
            "{} init images for a batch size of {} (give one, or one per image)",
            inputs.init_images.len(),
            s.batch_size
        )));
    }
    let mask: Option<PreparedMask> = match &inputs.mask {
        None => None,
        Some(m) => prepare_mask(
            m,
            &MaskSettings {
                blur_x: s.mask_blur as f64,
                blur_y: s.mask_blur as f64,
                invert: s.inpainting_mask_invert,
                full_res: s.inpaint_full_res,
                full_res_padding: s.inpaint_full_res_padding as i64,
                resize_mode,
                width: s.width,
                height: s.height,
            },
        )?,
    };
    let mut inits = Vec::new();
    let mut overlays = Vec::new();
    for img in &inputs.init_images {
        let p = prepare_init_image(
            img,
            mask.as_ref(),
            resize_mode,
            s.width,
            s.height,
            fill,
            None,
        )?;
        inits.push(InitImage {
            width: p.image.width,
            height: p.image.height,
            rgb: p.image.data,
        });
        overlays.push(p.overlay);
    }
    let latent_resize = resize_mode == ResizeMode::LatentUpscale;
    let mask_fields = if inputs.mask.is_some() {
        inpainting_fields(s, content, mask.as_ref())
    } else {
        Vec::new()
    };
    let inpaint_mask = match &mask {
        None => None,
        Some(m) => {
            let lm = latent_mask(&m.image_mask, s.width / 8, s.height / 8, true)?;
            Some(InpaintMask {
                image_mask: m.image_mask.data.clone(),
                latent_nmask: lm.nmask,
                fill: content,
            })
        }
    };
    Ok(Img2ImgJob {
        inits,
        overlays,
        paste_to: mask.as_ref().and_then(|m| m.paste_to),
        mask: inpaint_mask,
        latent_resize,
        mask_fields,
    })
}

/// The fields A1111's img2img `init` adds when a mask is given: `Mask mode` and `Mask blur`
/// always (before it looks at the mask), `Inpaint area` and `Masked area padding` when
/// "only masked" found something to crop, `Masked content` unless it is `original` (and
/// only while a mask is still in use: a blank "only masked" mask is dropped).
fn inpainting_fields(
    s: &GenerationSettings,
    content: MaskedContent,
    mask: Option<&PreparedMask>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if s.inpainting_mask_invert {
        out.push(("Mask mode", "Inpaint not masked".to_string()));
    }
    if s.mask_blur > 0 {
        out.push(("Mask blur", s.mask_blur.to_string()));
    }
    let Some(mask) = mask else {
        return out;
    };
    if mask.paste_to.is_some() {
        out.push(("Inpaint area", "Only masked".to_string()));
        out.push((
            "Masked area padding",
            s.inpaint_full_res_padding.to_string(),
        ));
    }
    if let Some(label) = content.infotext_label() {
        out.push(("Masked content", label.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_fields(s: &GenerationSettings, mask: Option<GrayImage>) -> Vec<(&'static str, String)> {
        let inputs = GenerationInputs {
            init_images: vec![RgbImage::filled(64, 64, [120, 80, 40])],
            mask,
        };
        prepare_img2img(s, &inputs).unwrap().mask_fields
    }

    fn square_mask() -> GrayImage {
        let mut m = GrayImage::filled(64, 64, [0]);
        for y in 20..40 {
            for x in 10..30 {
                m.data[y * 64 + x] = 255;
            }
        }
        m
    }

    fn settings() -> GenerationSettings {
        GenerationSettings {
            width: 64,
            height: 64,
            ..GenerationSettings::default()
        }
    }

    /// The order and values of `StableDiffusionProcessingImg2Img.init`: `Mask mode` when
    /// inverted, `Mask blur` when blurred, the "only masked" pair when a crop was found,
    /// then `Masked content` unless it is `original`.
    #[test]
    fn inpainting_fields_follow_a1111s_init() {
        let mut s = settings();
        s.inpainting_mask_invert = true;
        s.inpaint_full_res = true;
        s.inpaint_full_res_padding = 32;
        s.inpainting_fill = 2;
        let got = job_fields(&s, Some(square_mask()));
        let want = [
            ("Mask mode", "Inpaint not masked"),
            ("Mask blur", "4"),
            ("Inpaint area", "Only masked"),
            ("Masked area padding", "32"),
            ("Masked content", "latent noise"),
        ];
        assert_eq!(got.len(), want.len(), "{got:?}");
        for ((k, v), (wk, wv)) in got.iter().zip(want) {
            assert_eq!((*k, v.as_str()), (wk, wv));
        }

        // Whole picture, original content, no blur: nothing but what was asked for.
        let mut s = settings();
        s.mask_blur = 0;
        assert!(job_fields(&s, Some(square_mask())).is_empty());
        s.inpainting_fill = 0;
        assert_eq!(
            job_fields(&s, Some(square_mask())),
            vec![("Masked content", "fill".to_string())]
        );
        // No mask: plain img2img writes none of them.
        assert!(job_fields(&settings(), None).is_empty());
        // "Only masked" with a blank mask: A1111 drops the mask after writing the blur.
        let mut s = settings();
        s.inpaint_full_res = true;
        s.inpainting_fill = 0;
        assert_eq!(
            job_fields(&s, Some(GrayImage::filled(64, 64, [0]))),
            vec![("Mask blur", "4".to_string())]
        );
    }
}

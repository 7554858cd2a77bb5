//! img2img with everything A1111's `StableDiffusionProcessingImg2Img.init` does at the
//! latent level: init images encoded (or, for resize mode 3, encoded at their own size
//! and resized as latents, bilinearly), the inpainting mask as a latent keep-mask blended
//! in at every step, the masked-content fills that act on latents ("latent noise": the
//! first draw of each image's generator — A1111 uses the first batch's seeds here —
//! "latent nothing": zeros), and for inpainting checkpoints (UNet with 9 input channels,
//! `conditioning_key: hybrid`) the 5-channel image conditioning.
//!
//! The pixel-level steps (mask blur, crop region of "only masked", the "fill" pre-fill,
//! resizing, the final overlay) are in `crate::image`; the caller runs them before and
//! after this.

use super::cancel::CancelToken;
use super::conditioning::PromptOptions;
use super::img2img::{Img2ImgParams, Img2ImgRun, JobConds};
use super::latent_upscale::{interpolate, LatentInterpolation, LatentUpscaleMode};
use super::txt2img::{decode_batch, GeneratedImage, Progress};
use super::vae_encode::{encode_chw, encode_rgb8_with, rgb8_to_chw};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::StableDiffusion;
use crate::nn::hook::AttentionHook;
use crate::noise::ImageRng;

/// A1111's "Masked content" (`inpainting_fill`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MaskedContent {
    /// 0: pixels pre-filled with the blurred surroundings (done on pixels).
    Fill,
    /// 1: the original pixels.
    #[default]
    Original,
    /// 2: the masked latent replaced by noise.
    LatentNoise,
    /// 3: the masked latent zeroed.
    LatentNothing,
}

impl MaskedContent {
    pub fn from_index(i: u32) -> Result<Self> {
        Ok(match i {
            0 => Self::Fill,
            1 => Self::Original,
            2 => Self::LatentNoise,
            3 => Self::LatentNothing,
            _ => {
                return Err(Error::Invalid(format!(
                    "inpainting fill {i} is not 0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing)"
                )))
            }
        })
    }

    /// `fill`, `original`, `latent-noise`, `latent-nothing` (A1111's labels also accepted).
    pub fn parse(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().replace([' ', '_'], "-").as_str() {
            "fill" | "0" => Ok(Self::Fill),
            "original" | "1" => Ok(Self::Original),
            "latent-noise" | "2" => Ok(Self::LatentNoise),
            "latent-nothing" | "3" => Ok(Self::LatentNothing),
            _ => Err(Error::Invalid(format!(
                "inpainting fill `{text}` is not one of fill, original, latent-noise, latent-nothing"
            ))),
        }
    }

    pub fn index(self) -> u32 {
        self as u32
    }

    /// The `Masked content` value A1111 writes into the infotext; it writes none for
    /// `original`.
    pub fn infotext_label(self) -> Option<&'static str> {
        match self {
            Self::Fill => Some("fill"),
            Self::Original => None,
            Self::LatentNoise => Some("latent noise"),
            Self::LatentNothing => Some("latent nothing"),
        }
    }
}

/// One init image as RGB bytes.
#[derive(Clone, Debug)]
pub struct InitImage {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// The inpainting mask at the latent level.
#[derive(Clone, Debug)]
pub struct InpaintMask {
    /// A1111's `image_mask` at the processing size (gray bytes, blurred), for an inpainting
    /// checkpoint's conditioning.
    pub image_mask: Vec<u8>,
    /// A1111's `nmask` of one image, one channel `[h/8 · w/8]` (1 = repaint).
    pub latent_nmask: Vec<f32>,
    pub fill: MaskedContent,
}

/// What the init images become before sampling.
pub struct Img2ImgInputs<'a> {
    /// One per image of the batch, or one for all; at the processing size unless
    /// `latent_resize`.
    pub images: &'a [InitImage],
    /// Resize mode 3: encode at the image's own size, then resize the latent bilinearly.
    pub latent_resize: bool,
    pub mask: Option<&'a InpaintMask>,
    /// A1111's `inpainting_mask_weight` (1 = fully masked conditioning image).
    pub inpainting_mask_weight: f64,
    /// Seed of the job's first image: "latent noise" uses the first batch's seeds for
    /// every batch (A1111 draws it once, in `init`).
    pub first_seed: u64,
}

/// torch.lerp with a scalar weight (its two-sided formula).
fn lerp(a: f32, b: f32, w: f32) -> f32 {
    if w < 0.5 {
        a + w * (b - a)
    } else {
        b - (b - a) * (1.0 - w)
    }
}

/// A1111's `inpainting_image_conditioning`: `[5, lh, lw]` = the (rounded) mask resized
/// nearest to the latent size, then the latent of the source image with the masked part
/// blanked (`lerp(src, src·(1−m), weight)`). `source` is `[3, h, w]` in [-1, 1]; `mask`
/// (gray bytes `h × w`) `None` = everything masked.
pub async fn inpainting_image_conditioning<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    source: &[f32],
    (width, height): (usize, usize),
    mask: Option<&[u8]>,
    weight: f64,
    (lh, lw): (usize, usize),
) -> Result<Vec<f32>> {
    let plane = width * height;
    let m: Vec<f32> = match mask {
        Some(m) => {
            if m.len() != plane {
                return Err(Error::Invalid(format!(
                    "inpainting mask has {} pixels, expected {width}x{height}",
                    m.len()
                )));
            }
            m.iter()
                .map(|&v| (v as f32 / 255.0).round_ties_even())
                .collect()
        }
        None => vec![1.0; plane],
    };
    let w = weight as f32;
    let masked: Vec<f32> = source
        .iter()
        .enumerate()
        .map(|(i, &s)| lerp(s, s * (1.0 - m[i % plane]), w))
        .collect();
    let latent = encode_chw(b, model, &masked, width, height).await?;
    let nearest = LatentUpscaleMode {
        interpolation: LatentInterpolation::Nearest,
        antialias: false,
    };
    let mut out = interpolate(&m, [1, 1, height, width], lh, lw, nearest)?;
    if latent.len() != 4 * lh * lw {
        return Err(Error::Invalid(format!(
            "inpainting conditioning: a {width}x{height} image does not make a {lw}x{lh} latent"
        )));
    }
    out.extend(latent);
    Ok(out)
}

/// A1111's `txt2img_image_conditioning` for an inpainting checkpoint: the latent of a
/// uniform grey (0.5, i.e. 0 after `2x − 1`) image with a mask channel of ones.
pub async fn txt2img_image_conditioning<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    (width, height): (usize, usize),
) -> Result<Vec<f32>> {
    // A1111 fills with 0.5 and maps to [-1, 1] (2x - 1), which is 0.
    let grey = vec![0.0f32; 3 * width * height];
    let latent = encode_chw(b, model, &grey, width, height).await?;
    let mut out = vec![1.0; latent.len() / 4];
    out.extend(latent);
    Ok(out)
}

/// Whether `model` is an inpainting checkpoint (its UNet takes the 5 extra channels).
pub fn is_inpainting_model<B: Backend>(model: &StableDiffusion<B>) -> bool {
    model.config.unet.in_channels == model.config.unet.out_channels + 5
}

/// img2img / inpainting over one batch: returns the decoded images (before the final
/// overlay, which is pixel work for the caller).
#[allow(clippy::too_many_arguments)]
pub async fn img2img_inpaint<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    params: &Img2ImgParams,
    inputs: &Img2ImgInputs<'_>,
    options: &PromptOptions,
    hooks: Vec<&dyn AttentionHook<B>>,
    progress: Progress<'_>,
    cancel: &CancelToken,
) -> Result<Vec<GeneratedImage>> {
    params.validate()?;
    let base = &params.base;
    let batch = base.batch_size;
    let images = inputs.images;
    if images.is_empty() || (images.len() != 1 && images.len() != batch) {
        return Err(Error::Invalid(format!(
            "img2img: {} init images for a batch of {batch} (give one, or one per image)",
            images.len()
        )));
    }
    let c = model.config.unet.out_channels;
    let (lh, lw) = (base.height / 8, base.width / 8);
    let shape = [c, lh, lw];
    let per_image = c * lh * lw;
    let inpainting_model = is_inpainting_model(model);
    if inpainting_model && inputs.latent_resize {
        return Err(Error::Invalid(
            "resize mode 3 (latent upscale) cannot feed an inpainting checkpoint's image \
             conditioning (A1111 fails the same way); use another resize mode"
                .into(),
        ));
    }
    // Encode every distinct init image (each image on its own, as A1111).
    let mut init = Vec::with_capacity(per_image * batch);
    let mut image_cond = Vec::new();
    let mut sources = Vec::with_capacity(images.len());
    for (i, img) in images.iter().enumerate() {
        if !inputs.latent_resize && (img.width, img.height) != (base.width, base.height) {
            return Err(Error::Invalid(format!(
                "init image {} is {}x{}, expected the processing size {}x{}",
                i + 1,
                img.width,
                img.height,
                base.width,
                base.height
            )));
        }
        if img.width % 8 != 0 || img.height % 8 != 0 {
            return Err(Error::Invalid(format!(
                "init image {} is {}x{}: with latent resizing its sides must be multiples of 8",
                i + 1,
                img.width,
                img.height
            )));
        }
        let chw = rgb8_to_chw(&img.rgb, img.width, img.height)?;
        let mut latent = encode_rgb8_with(
            b,
            model,
            &img.rgb,
            (img.width, img.height),
            &base.vae_encoder,
        )
        .await?;
        if inputs.latent_resize && (img.width, img.height) != (base.width, base.height) {
            let bilinear = LatentUpscaleMode {
                interpolation: LatentInterpolation::Bilinear,
                antialias: false,
            };
            latent = interpolate(
                &latent,
                [1, c, img.height / 8, img.width / 8],
                lh,
                lw,
                bilinear,
            )?;
        }
        sources.push(chw);
        init.push(latent);
    }
    let mut all = Vec::with_capacity(per_image * batch);
    for i in 0..batch {
        all.extend_from_slice(&init[if init.len() == 1 { 0 } else { i }]);
    }
    let mut blend = None;
    if let Some(mask) = inputs.mask {
        if mask.latent_nmask.len() != lh * lw {
            return Err(Error::Invalid(format!(
                "latent mask has {} values, expected {lw}x{lh}",
                mask.latent_nmask.len()
            )));
        }
        let nmask: Vec<f32> = (0..c)
            .flat_map(|_| mask.latent_nmask.iter().copied())
            .collect();
        let keep: Vec<f32> = nmask.iter().map(|v| 1.0 - v).collect();
        match mask.fill {
            MaskedContent::LatentNoise => {
                let seeds: Vec<u64> = (0..batch as u64)
                    .map(|i| inputs.first_seed.wrapping_add(i))
                    .collect();
                let noise = ImageRng::new(base.rng, &seeds, 0).first(&shape);
                for (i, v) in all.iter_mut().enumerate() {
                    let k = i % per_image;
                    *v = *v * keep[k] + noise[i] * nmask[k];
                }
            }
            MaskedContent::LatentNothing => {
                for (i, v) in all.iter_mut().enumerate() {
                    *v *= keep[i % per_image];
                }
            }
            MaskedContent::Fill | MaskedContent::Original => {}
        }
        blend = Some((keep, nmask));
    }
    if inpainting_model {
        let mask = inputs.mask.map(|m| m.image_mask.as_slice());
        for i in 0..batch {
            let src = &sources[if sources.len() == 1 { 0 } else { i }];
            image_cond.extend(
                inpainting_image_conditioning(
                    b,
                    model,
                    src,
                    (base.width, base.height),
                    mask,
                    inputs.inpainting_mask_weight,
                    (lh, lw),
                )
                .await?,
            );
        }
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
        mask: blend,
        image_cond: inpainting_model.then_some(image_cond),
    };
    let (latent, noise) = run.sample(b, model, conds, progress, cancel).await?;
    decode_batch(b, model, base, &latent, Some(&noise), shape).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_content_names() {
        assert_eq!(
            MaskedContent::parse("latent noise").unwrap(),
            MaskedContent::LatentNoise
        );
        assert_eq!(MaskedContent::parse("original").unwrap().index(), 1);
        assert_eq!(
            MaskedContent::from_index(3).unwrap(),
            MaskedContent::LatentNothing
        );
        let err = MaskedContent::parse("blur").unwrap_err().to_string();
        assert!(err.contains("blur"), "{err}");
        assert!(MaskedContent::from_index(4).is_err());
    }

    #[test]
    fn lerp_is_torchs() {
        assert_eq!(lerp(2.0, 0.5, 1.0), 0.5);
        assert_eq!(lerp(2.0, 0.5, 0.0), 2.0);
        assert_eq!(lerp(1.0, 3.0, 0.25), 1.5);
    }
}

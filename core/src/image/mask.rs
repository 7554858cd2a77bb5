//! The inpainting mask pipeline of A1111's `StableDiffusionProcessingImg2Img.init` and
//! `modules/masking.py`, in the order A1111 runs it:
//!
//! 1. [`prepare_mask`]: invert, blur ([`super::mask_blur`]), then either find the crop
//!    region for "only masked" (bounding box + padding, widened to the processing aspect
//!    ratio, cropped and "resize and fill"-ed to the processing size) or resize the whole
//!    mask with the img2img resize mode and double it for the overlay.
//! 2. [`prepare_init_image`]: resize (or crop) the init image, keep the overlay of the
//!    original pixels outside the mask, and pre-fill the masked area ([`fill`]) unless the
//!    masked content is "original".
//! 3. [`latent_mask`]: the mask resized to latent size with PIL's default (bicubic)
//!    filter, divided by 255 and rounded: the blend weights of the per-step latent mix.
//! 4. After decoding, [`super::apply_overlay`] composites the overlay back.

use super::blur::{mask_blur, pil_gaussian_blur};
use super::composite::{alpha_composite, masked_overlay, premultiplied_through, unpremultiply};
use super::resize_mode::{resize_image, ResizeMode};
use super::upscale::ImageUpscaler;
use super::{Filter, GrayImage, RgbImage, RgbaImage};
use crate::{Error, Result};

/// A rectangle `(x1, y1, x2, y2)`, right and bottom exclusive, as A1111's tuples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropRegion {
    pub x1: i64,
    pub y1: i64,
    pub x2: i64,
    pub y2: i64,
}

/// A1111 `masking.get_crop_region_v2`: the bounding box of the non-zero pixels, grown by
/// `pad` and clipped to the image; `None` for an all-black mask.
pub fn get_crop_region_v2(mask: &GrayImage, pad: i64) -> Option<CropRegion> {
    let (w, h) = (mask.width, mask.height);
    let mut x1 = usize::MAX;
    let mut y1 = usize::MAX;
    let mut x2 = 0;
    let mut y2 = 0;
    for y in 0..h {
        for x in 0..w {
            if mask.data[y * w + x] != 0 {
                x1 = x1.min(x);
                y1 = y1.min(y);
                x2 = x2.max(x + 1);
                y2 = y2.max(y + 1);
            }
        }
    }
    if x2 == 0 {
        return None;
    }
    let (x1, y1, x2, y2) = (x1 as i64, y1 as i64, x2 as i64, y2 as i64);
    if pad == 0 {
        return Some(CropRegion { x1, y1, x2, y2 });
    }
    Some(CropRegion {
        x1: (x1 - pad).max(0),
        y1: (y1 - pad).max(0),
        x2: (x2 + pad).min(w as i64),
        y2: (y2 + pad).min(h as i64),
    })
}

/// A1111 `masking.get_crop_region` (the pre-1.9 contract): like the v2 function, but an
/// all-black mask gives `(w - pad, h - pad, pad, pad)` clipped, which may be inverted.
pub fn get_crop_region(mask: &GrayImage, pad: i64) -> CropRegion {
    if let Some(r) = get_crop_region_v2(mask, pad) {
        return r;
    }
    let (w, h) = (mask.width as i64, mask.height as i64);
    CropRegion {
        x1: (w - pad).max(0),
        y1: (h - pad).max(0),
        x2: pad.min(w),
        y2: pad.min(h),
    }
}

/// A1111 `masking.expand_crop_region`: grows the region to the aspect ratio of the
/// processing size, shifting it back inside the image where it overflows.
pub fn expand_crop_region(
    region: CropRegion,
    processing_width: usize,
    processing_height: usize,
    image_width: usize,
    image_height: usize,
) -> CropRegion {
    let CropRegion {
        mut x1,
        mut y1,
        mut x2,
        mut y2,
    } = region;
    let (iw, ih) = (image_width as i64, image_height as i64);
    let ratio_crop_region = (x2 - x1) as f64 / (y2 - y1) as f64;
    let ratio_processing = processing_width as f64 / processing_height as f64;
    if ratio_crop_region > ratio_processing {
        let desired_height = (x2 - x1) as f64 / ratio_processing;
        let diff = (desired_height - (y2 - y1) as f64) as i64;
        y1 -= diff.div_euclid(2);
        y2 += diff - diff.div_euclid(2);
        if y2 >= ih {
            let d = y2 - ih;
            y2 -= d;
            y1 -= d;
        }
        if y1 < 0 {
            y2 -= y1;
            y1 = 0;
        }
        if y2 >= ih {
            y2 = ih;
        }
    } else {
        let desired_width = (y2 - y1) as f64 * ratio_processing;
        let diff = (desired_width - (x2 - x1) as f64) as i64;
        x1 -= diff.div_euclid(2);
        x2 += diff - diff.div_euclid(2);
        if x2 >= iw {
            let d = x2 - iw;
            x2 -= d;
            x1 -= d;
        }
        if x1 < 0 {
            x2 -= x1;
            x1 = 0;
        }
        if x2 >= iw {
            x2 = iw;
        }
    }
    CropRegion { x1, y1, x2, y2 }
}

/// A1111 `masking.fill`: the "fill" masked content. The unmasked pixels are blurred
/// outward at radii 256, 64, 16, 4, 2 and 0 (premultiplied, so the masked hole does not
/// darken them) and alpha-composited in that order, which smears surrounding colours into
/// the hole.
pub fn fill(image: &RgbImage, mask: &GrayImage) -> RgbImage {
    let masked = premultiplied_through(image, &mask.invert());
    let mut acc = RgbaImage::filled(image.width, image.height, [0, 0, 0, 0]);
    for (radius, repeats) in [
        (256.0, 1),
        (64.0, 1),
        (16.0, 2),
        (4.0, 4),
        (2.0, 2),
        (0.0, 1),
    ] {
        let mut blurred = pil_gaussian_blur(&masked, radius);
        unpremultiply(&mut blurred);
        let blurred: RgbaImage = blurred.into();
        for _ in 0..repeats {
            acc = alpha_composite(&acc, &blurred);
        }
    }
    acc.to_rgb()
}

/// The latent blend weights of an inpainting mask (A1111's `self.nmask`, where 1 means
/// "repaint", and `self.mask` = 1 − nmask), row-major `height × width` (one channel; A1111
/// tiles it over the four latent channels).
#[derive(Clone, Debug, PartialEq)]
pub struct LatentMask {
    pub width: usize,
    pub height: usize,
    pub nmask: Vec<f32>,
    pub mask: Vec<f32>,
}

/// A1111's latent mask: `mask.convert('RGB').resize((w, h))` (PIL's default filter,
/// bicubic), first channel, `/ 255` in f32, `np.around` when `round` (`mask_round`, on by
/// default).
pub fn latent_mask(
    mask: &GrayImage,
    width: usize,
    height: usize,
    round: bool,
) -> Result<LatentMask> {
    let small = mask.resize(width, height, Filter::Bicubic)?;
    let nmask: Vec<f32> = small
        .data
        .iter()
        .map(|&v| {
            let f = v as f32 / 255.0f32;
            if round {
                f.round_ties_even()
            } else {
                f
            }
        })
        .collect();
    let inv = nmask.iter().map(|v| 1.0f32 - v).collect();
    Ok(LatentMask {
        width,
        height,
        nmask,
        mask: inv,
    })
}

/// The masked-content options ("Masked content" in the UI, `inpainting_fill` in the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InpaintingFill {
    /// 0, "fill": [`fill`] the hole before encoding.
    Fill,
    /// 1, "original": keep the init pixels.
    Original,
    /// 2, "latent noise" (the image layer still pre-fills, as A1111 does).
    LatentNoise,
    /// 3, "latent nothing" (pre-filled too).
    LatentNothing,
}

/// Settings of the mask part of an img2img run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MaskSettings {
    /// `mask_blur_x` / `mask_blur_y` (A1111 default 4 each).
    pub blur_x: f64,
    pub blur_y: f64,
    /// "Inpaint not masked".
    pub invert: bool,
    /// "Only masked" (`inpaint_full_res`).
    pub full_res: bool,
    /// "Only masked padding, pixels" (`inpaint_full_res_padding`).
    pub full_res_padding: i64,
    pub resize_mode: ResizeMode,
    /// The processing (generation) size.
    pub width: usize,
    pub height: usize,
}

/// The mask after `prepare_mask`.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedMask {
    /// At the processing size: what [`latent_mask`], [`fill`] and an inpainting model's
    /// conditioning use (A1111 `image_mask` / `latent_mask`).
    pub image_mask: GrayImage,
    /// What the overlay is cut with (A1111 `mask_for_overlay`).
    pub mask_for_overlay: GrayImage,
    /// "Only masked": the region of the original image that is processed.
    pub crop_region: Option<CropRegion>,
    /// "Only masked": where the result goes back, `(x, y, w, h)` (A1111 `paste_to`).
    pub paste_to: Option<(i64, i64, usize, usize)>,
}

/// A1111's mask steps. `mask` is the binary mask ([`super::create_binary_mask`]). Returns
/// `None` when "only masked" finds a blank mask: A1111 then drops the mask and runs plain
/// img2img.
pub fn prepare_mask(mask: &GrayImage, s: &MaskSettings) -> Result<Option<PreparedMask>> {
    let mut m = if s.invert {
        mask.invert()
    } else {
        mask.clone()
    };
    m = mask_blur(&m, s.blur_x, s.blur_y);
    if s.full_res {
        let Some(region) = get_crop_region_v2(&m, s.full_res_padding) else {
            return Ok(None);
        };
        let r = expand_crop_region(region, s.width, s.height, m.width, m.height);
        let cropped = m.crop(r.x1, r.y1, r.x2, r.y2);
        let image_mask = cropped.resize_mode(ResizeMode::ResizeAndFill, s.width, s.height)?;
        return Ok(Some(PreparedMask {
            image_mask,
            mask_for_overlay: m,
            crop_region: Some(r),
            paste_to: Some((r.x1, r.y1, (r.x2 - r.x1) as usize, (r.y2 - r.y1) as usize)),
        }));
    }
    let image_mask = m.resize_mode(s.resize_mode, s.width, s.height)?;
    let mask_for_overlay = GrayImage {
        width: image_mask.width,
        height: image_mask.height,
        data: image_mask
            .data
            .iter()
            .map(|&v| (v as u16 * 2).min(255) as u8)
            .collect(),
    };
    Ok(Some(PreparedMask {
        image_mask,
        mask_for_overlay,
        crop_region: None,
        paste_to: None,
    }))
}

/// One init image made ready for VAE encoding.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedInit {
    /// At the processing size (or the original size for resize mode 3, which A1111 resizes
    /// in latent space instead).
    pub image: RgbImage,
    /// The original pixels outside the mask, to composite over the result.
    pub overlay: Option<RgbaImage>,
}

/// A1111's per-image loop of `init`: resize (unless "only masked" or latent upscale), cut
/// the overlay, crop to the region for "only masked", and pre-fill unless `fill` is
/// [`InpaintingFill::Original`]. `image` is already flattened ([`super::flatten`]).
pub fn prepare_init_image(
    image: &RgbImage,
    mask: Option<&PreparedMask>,
    resize_mode: ResizeMode,
    width: usize,
    height: usize,
    fill_mode: InpaintingFill,
    upscaler: Option<&dyn ImageUpscaler>,
) -> Result<PreparedInit> {
    let crop = mask.and_then(|m| m.crop_region);
    let mut img = image.clone();
    if crop.is_none() && resize_mode != ResizeMode::LatentUpscale {
        img = resize_image(resize_mode, &img, width, height, upscaler)?;
    }
    let mut overlay = None;
    if let Some(m) = mask {
        let mfo =
            if (m.mask_for_overlay.width, m.mask_for_overlay.height) != (img.width, img.height) {
                m.mask_for_overlay
                    .resize_mode(resize_mode, img.width, img.height)?
            } else {
                m.mask_for_overlay.clone()
            };
        overlay = Some(masked_overlay(&img, &mfo));
    }
    if let Some(r) = crop {
        if r.x2 <= r.x1 || r.y2 <= r.y1 {
            return Err(Error::Invalid(format!(
                "inpaint crop region ({}, {}, {}, {}) is empty",
                r.x1, r.y1, r.x2, r.y2
            )));
        }
        img = img.crop(r.x1, r.y1, r.x2, r.y2);
        img = resize_image(ResizeMode::ResizeAndFill, &img, width, height, upscaler)?;
    }
    if let Some(m) = mask {
        if fill_mode != InpaintingFill::Original {
            img = fill(&img, &m.image_mask);
        }
    }
    Ok(PreparedInit {
        image: img,
        overlay,
    })
}

//! Alpha handling: flattening transparent init images, the masked overlay of the original
//! picture, and the final composite of an inpainted result (A1111 `apply_overlay`).
//!
//! All of it is PIL arithmetic on 8-bit values: premultiplication by `MULDIV255`, pasting
//! through a mask by `BLEND`, un-premultiplication by truncating division, and
//! `Image.alpha_composite` with its 7-bit-precision coefficients.

use super::decode::DecodedImage;
use super::resize_mode::{resize_image, ResizeMode};
use super::upscale::ImageUpscaler;
use super::{GrayImage, Pixels, RgbImage, RgbaImage};
use crate::Result;

#[inline]
fn div255(a: u32) -> u8 {
    let t = a + 128;
    (((t >> 8) + t) >> 8) as u8
}

/// PIL `BLEND(mask, in1, in2)`.
#[inline]
fn blend(mask: u8, a: u8, b: u8) -> u8 {
    div255(a as u32 * (255 - mask as u32) + b as u32 * mask as u32)
}

/// PIL "RGBa" → "RGBA": undo premultiplication (truncating division).
pub(crate) fn unpremultiply(p: &mut Pixels) {
    for px in p.data.chunks_exact_mut(4) {
        let a = px[3] as u32;
        if a != 0 && a != 255 {
            for c in &mut px[..3] {
                *c = ((255 * *c as u32) / a).min(255) as u8;
            }
        }
    }
}

/// A1111 `images.flatten(img, bgcolor)`: an RGBA image is pasted onto an opaque
/// background through its own alpha; any other mode is just converted to RGB.
pub fn flatten(img: &DecodedImage, background: [u8; 3]) -> RgbImage {
    match img {
        DecodedImage::Rgba(i) => RgbImage {
            width: i.width,
            height: i.height,
            data: i
                .data
                .chunks_exact(4)
                .flat_map(|p| {
                    let a = p[3];
                    [
                        blend(a, background[0], p[0]),
                        blend(a, background[1], p[1]),
                        blend(a, background[2], p[2]),
                    ]
                })
                .collect(),
        },
        other => other.to_rgb(),
    }
}

/// The premultiplied ("RGBa") copy of `image` kept where `keep` is high:
/// `Image.new('RGBa').paste(image.convert('RGBA').convert('RGBa'), mask=keep)`.
pub(crate) fn premultiplied_through(image: &RgbImage, keep: &GrayImage) -> Pixels {
    let mut out = Pixels::new(image.width, image.height, 4);
    for ((o, p), &m) in out
        .data
        .chunks_exact_mut(4)
        .zip(image.data.chunks_exact(3))
        .zip(&keep.data)
    {
        o[0] = blend(m, 0, p[0]);
        o[1] = blend(m, 0, p[1]);
        o[2] = blend(m, 0, p[2]);
        o[3] = blend(m, 0, 255);
    }
    out
}

/// The overlay A1111 keeps per init image for inpainting: the (resized) init image with
/// alpha `255 - mask_for_overlay`, as "RGBA". Pasting it over the result restores the
/// unmasked part.
pub fn masked_overlay(image: &RgbImage, mask_for_overlay: &GrayImage) -> RgbaImage {
    let mut p = premultiplied_through(image, &mask_for_overlay.invert());
    unpremultiply(&mut p);
    p.into()
}

/// PIL `Image.alpha_composite(dst, src)` (both "RGBA", same size).
pub fn alpha_composite(dst: &RgbaImage, src: &RgbaImage) -> RgbaImage {
    const PREC: u32 = 7;
    let mut out = dst.clone();
    for (o, s) in out.data.chunks_exact_mut(4).zip(src.data.chunks_exact(4)) {
        if s[3] == 0 {
            continue;
        }
        let sa = s[3] as u32;
        let blend = o[3] as u32 * (255 - sa);
        let outa255 = sa * 255 + blend;
        let coef1 = sa * 255 * 255 * (1 << PREC) / outa255;
        let coef2 = 255 * (1 << PREC) - coef1;
        for c in 0..3 {
            let t = s[c] as u32 * coef1 + o[c] as u32 * coef2 + (0x80 << PREC);
            o[c] = ((((t >> 8) + t) >> 8) >> PREC) as u8;
        }
        let t = outa255 + 0x80;
        o[3] = (((t >> 8) + t) >> 8) as u8;
    }
    out
}

/// A1111 `processing.uncrop`: the processed crop, resized back to its place with "crop and
/// resize", pasted on a transparent canvas of the original size.
pub fn uncrop(
    image: &RgbImage,
    dest_width: usize,
    dest_height: usize,
    paste_to: (i64, i64, usize, usize),
    upscaler: Option<&dyn ImageUpscaler>,
) -> Result<RgbaImage> {
    let (x, y, w, h) = paste_to;
    let resized = resize_image(ResizeMode::CropAndResize, image, w, h, upscaler)?;
    let mut base = Pixels::new(dest_width, dest_height, 4);
    base.paste(&resized.to_rgba().as_pixels(), x, y);
    Ok(base.into())
}

/// A1111 `processing.apply_overlay`: puts an inpainted result back (uncropping it for
/// "only masked") and composites the saved overlay of the original on top.
pub fn apply_overlay(
    image: &RgbImage,
    paste_to: Option<(i64, i64, usize, usize)>,
    overlay: &RgbaImage,
    upscaler: Option<&dyn ImageUpscaler>,
) -> Result<RgbImage> {
    let base = match paste_to {
        Some(loc) => uncrop(image, overlay.width, overlay.height, loc, upscaler)?,
        None => image.to_rgba(),
    };
    if base.width != overlay.width || base.height != overlay.height {
        return Err(crate::Error::Invalid(format!(
            "overlay is {}x{} but the image is {}x{}",
            overlay.width, overlay.height, base.width, base.height
        )));
    }
    Ok(alpha_composite(&base, overlay).to_rgb())
}

//! Reading user images (init images, masks) the way A1111 receives them from PIL.
//!
//! PNG and WebP decode losslessly, so pixels equal PIL's. JPEG goes through the pure-Rust
//! decoder of the `image` crate, whose IDCT and chroma upsampling are not libjpeg-turbo's:
//! expect differences of a level or two (see `docs/images.md`). EXIF orientation is applied
//! as A1111's `images.read` does (`ImageOps.exif_transpose`).

use std::io::Cursor;

use super::{luma, GrayImage, RgbImage, RgbaImage};
use crate::{Error, Result};

/// A decoded file in the PIL mode it would have (after A1111's `fix_image`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodedImage {
    /// Mode "L".
    Gray(GrayImage),
    /// Mode "LA": gray plus alpha, interleaved.
    GrayAlpha {
        width: usize,
        height: usize,
        data: Vec<u8>,
    },
    /// Mode "RGB".
    Rgb(RgbImage),
    /// Mode "RGBA" (palette images with transparency land here too, as in A1111).
    Rgba(RgbaImage),
}

impl DecodedImage {
    pub fn width(&self) -> usize {
        match self {
            DecodedImage::Gray(i) => i.width,
            DecodedImage::GrayAlpha { width, .. } => *width,
            DecodedImage::Rgb(i) => i.width,
            DecodedImage::Rgba(i) => i.width,
        }
    }

    pub fn height(&self) -> usize {
        match self {
            DecodedImage::Gray(i) => i.height,
            DecodedImage::GrayAlpha { height, .. } => *height,
            DecodedImage::Rgb(i) => i.height,
            DecodedImage::Rgba(i) => i.height,
        }
    }

    /// PIL `convert('L')` (alpha ignored).
    pub fn to_gray(&self) -> GrayImage {
        match self {
            DecodedImage::Gray(i) => i.clone(),
            DecodedImage::GrayAlpha {
                width,
                height,
                data,
            } => GrayImage {
                width: *width,
                height: *height,
                data: data.chunks_exact(2).map(|p| p[0]).collect(),
            },
            DecodedImage::Rgb(i) => i.to_gray(),
            DecodedImage::Rgba(i) => GrayImage {
                width: i.width,
                height: i.height,
                data: i.data.chunks_exact(4).map(luma).collect(),
            },
        }
    }

    /// PIL `convert('RGB')` (alpha dropped, not flattened).
    pub fn to_rgb(&self) -> RgbImage {
        match self {
            DecodedImage::Rgb(i) => i.clone(),
            DecodedImage::Rgba(i) => i.to_rgb(),
            other => other.to_gray().to_rgb(),
        }
    }
}

/// Decodes PNG, JPEG or WebP bytes; `what` (usually the file name) names the input in
/// errors.
pub fn decode_rgba(bytes: &[u8], what: &str) -> Result<DecodedImage> {
    use image::{DynamicImage, ImageDecoder, ImageReader};
    let fail = |msg: String| Error::format(what, msg);
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| fail(format!("cannot read image: {e}")))?;
    if reader.format().is_none() {
        return Err(fail(
            "not a PNG, JPEG or WebP image (unrecognised file header)".into(),
        ));
    }
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| fail(format!("cannot decode image: {e}")))?;
    let (dw, dh) = decoder.dimensions();
    for side in [dw, dh] {
        if side as usize > super::MAX_SIDE {
            return Err(fail(format!(
                "image is {dw}x{dh}; sides over {} pixels are not supported",
                super::MAX_SIDE
            )));
        }
    }
    let orientation = decoder
        .orientation()
        .map_err(|e| fail(format!("cannot read image orientation: {e}")))?;
    let mut img = DynamicImage::from_decoder(decoder)
        .map_err(|e| fail(format!("cannot decode image: {e}")))?;
    img.apply_orientation(orientation);
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(fail(format!("image is empty ({w}x{h})")));
    }
    // 16-bit files: PIL keeps the high byte of each RGB(A) sample.
    Ok(match img {
        DynamicImage::ImageLuma8(b) => DecodedImage::Gray(GrayImage::new(w, h, b.into_raw())?),
        DynamicImage::ImageLumaA8(b) => DecodedImage::GrayAlpha {
            width: w,
            height: h,
            data: b.into_raw(),
        },
        DynamicImage::ImageRgb8(b) => DecodedImage::Rgb(RgbImage::new(w, h, b.into_raw())?),
        DynamicImage::ImageRgba8(b) => DecodedImage::Rgba(RgbaImage::new(w, h, b.into_raw())?),
        DynamicImage::ImageLuma16(b) => DecodedImage::Gray(GrayImage::new(
            w,
            h,
            b.into_raw().iter().map(|v| (v >> 8) as u8).collect(),
        )?),
        DynamicImage::ImageLumaA16(b) => DecodedImage::GrayAlpha {
            width: w,
            height: h,
            data: b.into_raw().iter().map(|v| (v >> 8) as u8).collect(),
        },
        DynamicImage::ImageRgb16(b) => DecodedImage::Rgb(RgbImage::new(
            w,
            h,
            b.into_raw().iter().map(|v| (v >> 8) as u8).collect(),
        )?),
        DynamicImage::ImageRgba16(b) => DecodedImage::Rgba(RgbaImage::new(
            w,
            h,
            b.into_raw().iter().map(|v| (v >> 8) as u8).collect(),
        )?),
        other => DecodedImage::Rgba(RgbaImage::new(w, h, other.to_rgba8().into_raw())?),
    })
}

/// An init image as A1111's img2img uses it: decoded, then `images.flatten` onto its
/// default background (`img2img_background_color`, white).
pub fn decode_image(bytes: &[u8], what: &str) -> Result<RgbImage> {
    Ok(super::flatten(&decode_rgba(bytes, what)?, [255, 255, 255]))
}

/// A mask file as A1111 reads it (`create_binary_mask` with `mask_round` on): an RGBA
/// image that is not fully opaque is a mask by its alpha channel, thresholded at > 128;
/// anything else is `convert('L')`.
pub fn decode_mask(bytes: &[u8], what: &str) -> Result<GrayImage> {
    Ok(create_binary_mask(&decode_rgba(bytes, what)?, true))
}

/// A1111 `processing.create_binary_mask(image, round)`.
pub fn create_binary_mask(image: &DecodedImage, round: bool) -> GrayImage {
    if let DecodedImage::Rgba(i) = image {
        if i.data.chunks_exact(4).any(|p| p[3] != 255) {
            let alpha = i.data.chunks_exact(4).map(|p| p[3]);
            return GrayImage {
                width: i.width,
                height: i.height,
                data: if round {
                    alpha.map(|a| if a > 128 { 255 } else { 0 }).collect()
                } else {
                    alpha.collect()
                },
            };
        }
    }
    image.to_gray()
}

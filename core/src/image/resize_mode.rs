//! A1111's `images.resize_image`: the four img2img resize modes.
//!
//! Exactness notes that matter for the init latent: the target of "crop and resize" and
//! "resize and fill" comes from Python integer division; the resize is Lanczos unless an
//! img2img upscaler is set and the image grows, in which case the upscaler runs first and
//! Lanczos finishes; the stretched edges of "resize and fill" are PIL *bicubic* resizes of
//! a zero-height (or zero-width) source box, i.e. a weighted blend of the outermost rows.
//! Mode 3 ("latent upscale") resizes pixels like mode 2 when A1111 calls this function
//! with it (masks), while the init image itself is not resized at all in that mode.

use super::resample::{check_size, SourceBox};
use super::upscale::{upscale_loop, ImageUpscaler, PassMode};
use super::{Filter, GrayImage, Pixels, RgbImage};
use crate::sampler::block_on;
use crate::{Error, Result};

/// img2img's "Resize mode".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// 0, "Just resize".
    JustResize,
    /// 1, "Crop and resize".
    CropAndResize,
    /// 2, "Resize and fill".
    ResizeAndFill,
    /// 3, "Just resize (latent upscale)".
    LatentUpscale,
}

impl ResizeMode {
    /// A1111's integer code (`resize_mode` in the API).
    pub fn index(self) -> u8 {
        match self {
            ResizeMode::JustResize => 0,
            ResizeMode::CropAndResize => 1,
            ResizeMode::ResizeAndFill => 2,
            ResizeMode::LatentUpscale => 3,
        }
    }

    /// From A1111's integer code.
    pub fn from_index(i: i64) -> Result<ResizeMode> {
        Ok(match i {
            0 => ResizeMode::JustResize,
            1 => ResizeMode::CropAndResize,
            2 => ResizeMode::ResizeAndFill,
            3 => ResizeMode::LatentUpscale,
            _ => {
                return Err(Error::Invalid(format!(
                    "resize mode {i} is not one of 0 (just resize), 1 (crop and resize), 2 (resize and fill), 3 (latent upscale)"
                )))
            }
        })
    }

    /// A1111's label (as in the UI and the infotext-free API docs).
    pub fn label(self) -> &'static str {
        match self {
            ResizeMode::JustResize => "Just resize",
            ResizeMode::CropAndResize => "Crop and resize",
            ResizeMode::ResizeAndFill => "Resize and fill",
            ResizeMode::LatentUpscale => "Just resize (latent upscale)",
        }
    }
}

/// The inner `resize(im, w, h)` of `resize_image`, running the upscaler's passes as
/// `pass` says.
async fn inner_resize(
    im: &Pixels,
    w: usize,
    h: usize,
    upscaler: Option<&dyn ImageUpscaler>,
    pass: PassMode,
) -> Result<Pixels> {
    check_size("resize", w, h)?;
    let upscaler = match upscaler {
        Some(u) if im.channels == 3 => u,
        _ => return im.resize(w, h, Filter::Lanczos, None),
    };
    let scale = f64::max(w as f64 / im.width as f64, h as f64 / im.height as f64);
    let mut im = im.clone();
    if scale > 1.0 {
        let rgb: RgbImage = im.into();
        im = upscale_loop(&rgb, scale, upscaler, pass).await?.as_pixels();
    }
    if im.width != w || im.height != h {
        im = im.resize(w, h, Filter::Lanczos, None)?;
    }
    Ok(im)
}

/// `resize_image` with the upscaler's passes blocking (see [`PassMode`]).
fn resize_pixels(
    mode: ResizeMode,
    im: &Pixels,
    width: usize,
    height: usize,
    upscaler: Option<&dyn ImageUpscaler>,
) -> Result<Pixels> {
    block_on(resize_pixels_with(
        mode,
        im,
        width,
        height,
        upscaler,
        PassMode::Blocking,
    ))
}

async fn resize_pixels_with(
    mode: ResizeMode,
    im: &Pixels,
    width: usize,
    height: usize,
    upscaler: Option<&dyn ImageUpscaler>,
    pass: PassMode,
) -> Result<Pixels> {
    check_size("resize_image", width, height)?;
    if mode == ResizeMode::JustResize {
        return inner_resize(im, width, height, upscaler, pass).await;
    }
    let (iw, ih) = (im.width, im.height);
    let ratio = width as f64 / height as f64;
    let src_ratio = iw as f64 / ih as f64;
    let mut res = Pixels::new(width, height, im.channels);
    let centre = |sw: usize, sh: usize| {
        (
            (width / 2) as i64 - (sw / 2) as i64,
            (height / 2) as i64 - (sh / 2) as i64,
        )
    };
    if mode == ResizeMode::CropAndResize {
        let src_w = if ratio > src_ratio {
            width
        } else {
            iw * height / ih
        };
        let src_h = if ratio <= src_ratio {
            height
        } else {
            ih * width / iw
        };
        let resized = inner_resize(im, src_w, src_h, upscaler, pass).await?;
        let (x, y) = centre(src_w, src_h);
        res.paste(&resized, x, y);
        return Ok(res);
    }
    let src_w = if ratio < src_ratio {
        width
    } else {
        iw * height / ih
    };
    let src_h = if ratio >= src_ratio {
        height
    } else {
        ih * width / iw
    };
    let resized = inner_resize(im, src_w, src_h, upscaler, pass).await?;
    let (x, y) = centre(src_w, src_h);
    res.paste(&resized, x, y);
    let (rw, rh) = (resized.width as f32, resized.height as f32);
    if ratio < src_ratio {
        let fill_height = (height / 2) as i64 - (src_h / 2) as i64;
        if fill_height > 0 {
            let fh = fill_height as usize;
            let top = resized.resize(
                width,
                fh,
                Filter::Bicubic,
                Some(SourceBox {
                    x0: 0.0,
                    y0: 0.0,
                    x1: width as f32,
                    y1: 0.0,
                }),
            )?;
            res.paste(&top, 0, 0);
            let bottom = resized.resize(
                width,
                fh,
                Filter::Bicubic,
                Some(SourceBox {
                    x0: 0.0,
                    y0: rh,
                    x1: width as f32,
                    y1: rh,
                }),
            )?;
            res.paste(&bottom, 0, fill_height + src_h as i64);
        }
    } else if ratio > src_ratio {
        let fill_width = (width / 2) as i64 - (src_w / 2) as i64;
        if fill_width > 0 {
            let fw = fill_width as usize;
            let left = resized.resize(
                fw,
                height,
                Filter::Bicubic,
                Some(SourceBox {
                    x0: 0.0,
                    y0: 0.0,
                    x1: 0.0,
                    y1: height as f32,
                }),
            )?;
            res.paste(&left, 0, 0);
            let right = resized.resize(
                fw,
                height,
                Filter::Bicubic,
                Some(SourceBox {
                    x0: rw,
                    y0: 0.0,
                    x1: rw,
                    y1: height as f32,
                }),
            )?;
            res.paste(&right, fill_width + src_w as i64, 0);
        }
    }
    Ok(res)
}

/// A1111 `images.resize_image(mode, im, width, height, upscaler_name)` for an RGB image.
/// `upscaler` is the img2img upscaler (`upscaler_for_img2img`, or the hires-fix upscaler);
/// `None` means plain Lanczos, as A1111's "None".
pub fn resize_image(
    mode: ResizeMode,
    im: &RgbImage,
    width: usize,
    height: usize,
    upscaler: Option<&dyn ImageUpscaler>,
) -> Result<RgbImage> {
    Ok(resize_pixels(mode, &im.as_pixels(), width, height, upscaler)?.into())
}

/// [`resize_image`] through [`ImageUpscaler::upscale_pass_async`]: what the generation
/// pipeline (hires fix) calls, so an upscaler model runs on a backend that cannot block
/// on the device (the browser's WebGPU).
pub async fn resize_image_async(
    mode: ResizeMode,
    im: &RgbImage,
    width: usize,
    height: usize,
    upscaler: Option<&dyn ImageUpscaler>,
) -> Result<RgbImage> {
    let px = im.as_pixels();
    let out = resize_pixels_with(mode, &px, width, height, upscaler, PassMode::Async).await?;
    Ok(out.into())
}

impl GrayImage {
    /// `images.resize_image` on a mask ("L" images never go through an upscaler). A1111
    /// gets an RGB image back for modes 1-3; its three channels equal this one.
    pub fn resize_mode(&self, mode: ResizeMode, width: usize, height: usize) -> Result<GrayImage> {
        Ok(resize_pixels(mode, &self.as_pixels(), width, height, None)?.into())
    }
}

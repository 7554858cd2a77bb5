//! Image upscalers and A1111's `Upscaler.upscale` loop.
//!
//! A model upscaler (ESRGAN, SwinIR, ... in plugin crates) implements [`ImageUpscaler`] by
//! one pass at its native scale. The loop around it is A1111's: the target is the scaled
//! size rounded *down to a multiple of 8*; the model runs up to three times until the image
//! is at least that big (stopping early if a pass does not change the size), then a PIL
//! Lanczos resize lands exactly on the target. A1111's built-in "Lanczos" and "Nearest"
//! upscalers resize straight to `int(size * scale)` in their pass, so they get there in one.
//!
//! The loop is written once, as an async function that either calls the blocking pass or
//! awaits [`ImageUpscaler::upscale_pass_async`] ([`PassMode`]): the browser's WebGPU
//! backend can only read a model's output back asynchronously, so hires fix (already async)
//! takes the async passes, while `easel upscale` and the server keep the blocking API.

use super::resample::check_size;
use super::{Filter, RgbImage};
use crate::backend::LocalBoxFuture;
use crate::sampler::block_on;
use crate::{Error, Result};

/// An image-to-image upscaler, looked up by its A1111 name.
pub trait ImageUpscaler: Send + Sync {
    /// The name A1111 shows and writes into infotexts (`Hires upscaler: ...`).
    fn name(&self) -> &str;
    /// The factor one pass multiplies width and height by.
    fn native_scale(&self) -> u32;
    /// One pass at the native scale.
    fn upscale_once(&self, img: &RgbImage) -> Result<RgbImage>;
    /// A1111's `do_upscale`, which also sees the overall requested scale; model upscalers
    /// ignore it (the default), the resampling ones resize by it.
    fn upscale_pass(&self, img: &RgbImage, scale: f64) -> Result<RgbImage> {
        let _ = scale;
        self.upscale_once(img)
    }
    /// [`Self::upscale_pass`] for callers that must not block on the device: a backend
    /// that refuses `Backend::download` (WebGPU in a browser) reads a network's output only
    /// through `Backend::download_async`, so a model upscaler overrides this. The default
    /// runs the blocking pass, which is right for upscalers that never wait on a device
    /// (Lanczos, Nearest) and keeps every existing implementation working unchanged.
    fn upscale_pass_async<'a>(
        &'a self,
        img: &'a RgbImage,
        scale: f64,
    ) -> LocalBoxFuture<'a, Result<RgbImage>> {
        Box::pin(async move { self.upscale_pass(img, scale) })
    }
}

/// Which of an upscaler's passes the shared loop runs. With `Blocking` nothing in the loop
/// ever waits on a pending future, so the synchronous entry points drive it with
/// [`block_on`], which then returns at the first poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PassMode {
    /// [`ImageUpscaler::upscale_pass`] (the CLI, the server).
    Blocking,
    /// [`ImageUpscaler::upscale_pass_async`] (the generation pipeline, hence the browser).
    Async,
}

impl PassMode {
    async fn pass(
        self,
        upscaler: &dyn ImageUpscaler,
        img: &RgbImage,
        scale: f64,
    ) -> Result<RgbImage> {
        match self {
            Self::Blocking => upscaler.upscale_pass(img, scale),
            Self::Async => upscaler.upscale_pass_async(img, scale).await,
        }
    }
}

/// What to upscale to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpscaleTarget {
    /// Multiply both sides (A1111 "Scale by"); the result is rounded down to a multiple of 8.
    Scale(f64),
    /// A1111 Extras "Scale to": scale by `max(width / w, height / h)`, then, with `crop`,
    /// centre the result on a black `width`×`height` canvas (cutting the overflow).
    Size {
        width: usize,
        height: usize,
        crop: bool,
    },
}

fn check_scale(scale: f64) -> Result<()> {
    if !scale.is_finite() || scale <= 0.0 {
        return Err(Error::Invalid(format!(
            "upscale factor {scale} must be a positive number"
        )));
    }
    Ok(())
}

/// A1111 `Upscaler.upscale(img, scale)` with `mode`'s passes.
pub(crate) async fn upscale_loop(
    img: &RgbImage,
    scale: f64,
    upscaler: &dyn ImageUpscaler,
    mode: PassMode,
) -> Result<RgbImage> {
    check_scale(scale)?;
    let dest = |side: usize| ((side as f64 * scale) / 8.0).floor() * 8.0;
    let (dw, dh) = (dest(img.width), dest(img.height));
    for v in [dw, dh] {
        if v > super::MAX_SIDE as f64 {
            return Err(Error::Invalid(format!(
                "upscaling {}x{} by {scale} gives a side of {v} pixels, over the limit of {}",
                img.width,
                img.height,
                super::MAX_SIDE
            )));
        }
    }
    let (dw, dh) = (dw as usize, dh as usize);
    if dw == 0 || dh == 0 {
        return Err(Error::Invalid(format!(
            "upscaling {}x{} by {scale} gives {dw}x{dh}: the target is rounded down to a multiple of 8 and must not be empty",
            img.width, img.height
        )));
    }
    let mut img = img.clone();
    for i in 0..3 {
        if img.width >= dw && img.height >= dh && (i > 0 || scale != 1.0) {
            break;
        }
        let shape = (img.width, img.height);
        img = mode.pass(upscaler, &img, scale).await?;
        if shape == (img.width, img.height) {
            break;
        }
    }
    if img.width != dw || img.height != dh {
        img = img.resize(dw, dh, Filter::Lanczos)?;
    }
    Ok(img)
}

/// Upscales `img` with `upscaler` as A1111 does (Extras and hires fix), blocking on each
/// pass.
pub fn upscale(
    img: &RgbImage,
    target: UpscaleTarget,
    upscaler: &dyn ImageUpscaler,
) -> Result<RgbImage> {
    block_on(upscale_to(img, target, upscaler, PassMode::Blocking))
}

/// [`upscale`] through [`ImageUpscaler::upscale_pass_async`], for front ends whose backend
/// cannot block (the browser).
pub async fn upscale_async(
    img: &RgbImage,
    target: UpscaleTarget,
    upscaler: &dyn ImageUpscaler,
) -> Result<RgbImage> {
    upscale_to(img, target, upscaler, PassMode::Async).await
}

async fn upscale_to(
    img: &RgbImage,
    target: UpscaleTarget,
    upscaler: &dyn ImageUpscaler,
    mode: PassMode,
) -> Result<RgbImage> {
    match target {
        UpscaleTarget::Scale(s) => upscale_loop(img, s, upscaler, mode).await,
        UpscaleTarget::Size {
            width,
            height,
            crop,
        } => {
            check_size("upscale", width, height)?;
            let s = f64::max(
                width as f64 / img.width as f64,
                height as f64 / img.height as f64,
            );
            let up = upscale_loop(img, s, upscaler, mode).await?;
            if !crop {
                return Ok(up);
            }
            let mut canvas = super::Pixels::new(width, height, 3);
            canvas.paste(
                &up.as_pixels(),
                (width / 2) as i64 - (up.width / 2) as i64,
                (height / 2) as i64 - (up.height / 2) as i64,
            );
            Ok(canvas.into())
        }
    }
}

fn resample_pass(img: &RgbImage, scale: f64, filter: Filter) -> Result<RgbImage> {
    // Python int() truncates.
    let w = img.width as f64 * scale;
    let h = img.height as f64 * scale;
    if w > super::MAX_SIDE as f64 || h > super::MAX_SIDE as f64 {
        return Err(Error::Invalid(format!(
            "upscaling {}x{} by {scale} exceeds the limit of {} pixels a side",
            img.width,
            img.height,
            super::MAX_SIDE
        )));
    }
    img.resize(w as usize, h as usize, filter)
}

/// A1111's built-in "Lanczos" upscaler (PIL Lanczos by the requested scale).
#[derive(Clone, Copy, Debug, Default)]
pub struct LanczosUpscaler;

impl ImageUpscaler for LanczosUpscaler {
    fn name(&self) -> &str {
        "Lanczos"
    }
    fn native_scale(&self) -> u32 {
        4
    }
    fn upscale_once(&self, img: &RgbImage) -> Result<RgbImage> {
        resample_pass(img, 4.0, Filter::Lanczos)
    }
    fn upscale_pass(&self, img: &RgbImage, scale: f64) -> Result<RgbImage> {
        resample_pass(img, scale, Filter::Lanczos)
    }
}

/// A1111's built-in "Nearest" upscaler (PIL nearest by the requested scale).
#[derive(Clone, Copy, Debug, Default)]
pub struct NearestUpscaler;

impl ImageUpscaler for NearestUpscaler {
    fn name(&self) -> &str {
        "Nearest"
    }
    fn native_scale(&self) -> u32 {
        4
    }
    fn upscale_once(&self, img: &RgbImage) -> Result<RgbImage> {
        resample_pass(img, 4.0, Filter::Nearest)
    }
    fn upscale_pass(&self, img: &RgbImage, scale: f64) -> Result<RgbImage> {
        resample_pass(img, scale, Filter::Nearest)
    }
}

/// The upscalers a front end can pick by A1111 name. "None" is always known and means no
/// upscaler: callers get `Ok(None)` for it and resize with plain Lanczos, as A1111 does.
pub struct UpscalerRegistry {
    items: Vec<Box<dyn ImageUpscaler>>,
}

impl Default for UpscalerRegistry {
    fn default() -> Self {
        Self::with_builtins()
    }
}

impl UpscalerRegistry {
    /// The name A1111 uses for "no upscaler".
    pub const NONE: &'static str = "None";

    /// A1111's built-ins: Lanczos and Nearest.
    pub fn with_builtins() -> UpscalerRegistry {
        UpscalerRegistry {
            items: vec![Box::new(LanczosUpscaler), Box::new(NearestUpscaler)],
        }
    }

    /// Adds an upscaler; a second one with the same name is an error naming it.
    pub fn register(&mut self, upscaler: Box<dyn ImageUpscaler>) -> Result<()> {
        let name = upscaler.name();
        if name == Self::NONE || self.items.iter().any(|u| u.name() == name) {
            return Err(Error::Invalid(format!(
                "an upscaler named `{name}` is already registered"
            )));
        }
        self.items.push(upscaler);
        Ok(())
    }

    /// All names, "None" first, in registration order.
    pub fn names(&self) -> Vec<&str> {
        std::iter::once(Self::NONE)
            .chain(self.items.iter().map(|u| u.name()))
            .collect()
    }

    /// The upscaler called `name`, `Ok(None)` for "None", or an error listing the names.
    pub fn get(&self, name: &str) -> Result<Option<&dyn ImageUpscaler>> {
        if name == Self::NONE {
            return Ok(None);
        }
        match self.items.iter().find(|u| u.name() == name) {
            Some(u) => Ok(Some(u.as_ref())),
            None => Err(Error::Invalid(format!(
                "unknown upscaler `{name}` (known: {})",
                self.names().join(", ")
            ))),
        }
    }
}

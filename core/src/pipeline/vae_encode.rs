//! Image → latent, as A1111's `images_tensor_to_samples` with the full VAE: bytes to
//! floats by `/255` then `2x − 1` (both in f32), each image of a batch encoded on its own,
//! the posterior scaled by the model's scale factor. With A1111's "VAE type for encode:
//! TAESD" ([`VaeEncoder::taesd`]) TAESD's encoder takes the `/255` image as it is and gives
//! the scaled latent.
//!
//! A1111 takes `posterior.sample()`, which draws from the unseeded global torch generator,
//! so the same img2img run differs from one A1111 call to the next. Easel takes the
//! posterior mean instead: reproducible, and the centre of what A1111 samples around (the
//! VAE's posterior σ is typically ~1e-3 of the latent's range, well below what survives
//! the later noising).

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::StableDiffusion;

/// A1111's "VAE type for encode" (`sd_vae_encode_method`): the model's VAE, TAESD's tiny
/// encoder (`models/VAE-approx/taesd_encoder.pth`) or a plugin's. Written to the infotext
/// as `VAE Encoder` when not `Full`.
pub type VaeEncoder = crate::vae_plugin::VaeMethod;

/// Interleaved RGB bytes → `[3, h, w]` floats in [0, 1] (A1111: `x/255`), what TAESD
/// encodes.
pub fn rgb8_to_unit_chw(rgb: &[u8], width: usize, height: usize) -> Result<Vec<f32>> {
    rgb8_planes(rgb, width, height, |v| v)
}

/// Interleaved RGB bytes → `[3, h, w]` planes of `map(byte / 255)`, in f32.
fn rgb8_planes(
    rgb: &[u8],
    width: usize,
    height: usize,
    map: impl Fn(f32) -> f32,
) -> Result<Vec<f32>> {
    let plane = width * height;
    if rgb.len() != plane * 3 {
        return Err(Error::Invalid(format!(
            "image data has {} bytes, expected {} for {width}x{height} RGB",
            rgb.len(),
            plane * 3
        )));
    }
    let mut out = vec![0f32; plane * 3];
    for p in 0..plane {
        for c in 0..3 {
            out[c * plane + p] = map(rgb[p * 3 + c] as f32 / 255.0);
        }
    }
    Ok(out)
}

/// An image size VAEs can encode: positive multiples of 8 (`what` names the encoder).
pub fn check_encode_size(what: &str, width: usize, height: usize) -> Result<()> {
    if width == 0 || height == 0 || !width.is_multiple_of(8) || !height.is_multiple_of(8) {
        return Err(Error::Invalid(format!(
            "{what}: image size {width}x{height} is not a positive multiple of 8"
        )));
    }
    Ok(())
}

/// Interleaved RGB bytes of one image → its scaled latent by `method` (the model's VAE, or
/// a VAE method the model offers, e.g. TAESD from `models/VAE-approx/taesd_encoder.pth`).
pub async fn encode_rgb8_with<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    rgb: &[u8],
    (width, height): (usize, usize),
    method: &VaeEncoder,
) -> Result<Vec<f32>> {
    if method.is_full() {
        return encode_rgb8(b, model, rgb, width, height).await;
    }
    let encoder = model.vae_methods.encoder(method.label())?;
    encoder.encode_rgb(b, rgb, width, height).await
}

/// Interleaved RGB bytes → `[3, h, w]` floats in [-1, 1] (A1111: `x/255`, then `2x − 1`).
pub fn rgb8_to_chw(rgb: &[u8], width: usize, height: usize) -> Result<Vec<f32>> {
    rgb8_planes(rgb, width, height, |v| v * 2.0 - 1.0)
}

/// `[3, h, w]` floats in [-1, 1] → the scaled latent `[4, h/8, w/8]` (posterior mean ×
/// scale factor). `h` and `w` must be multiples of 8.
pub async fn encode_chw<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    image: &[f32],
    width: usize,
    height: usize,
) -> Result<Vec<f32>> {
    check_encode_size("VAE encode", width, height)?;
    let x = b.upload(image, &[1, 3, height, width])?;
    let mean = model.vae.encode(b, &x)?;
    let mean = b.download_async(&mean).await?;
    let scale = model.config.scale_factor;
    Ok(mean.into_iter().map(|v| scale * v).collect())
}

/// Interleaved RGB bytes of one image → its scaled latent `[4, h/8, w/8]`.
pub async fn encode_rgb8<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    rgb: &[u8],
    width: usize,
    height: usize,
) -> Result<Vec<f32>> {
    let chw = rgb8_to_chw(rgb, width, height)?;
    encode_chw(b, model, &chw, width, height).await
}

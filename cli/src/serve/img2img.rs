//! A1111's img2img request: the fields it shares with txt2img go through
//! [`super::txt2img::settings_for`]; this maps the rest (init images, mask, inpainting
//! options) onto [`GenerationSettings`] and [`GenerationInputs`], with A1111's API defaults.
//! Images arrive as base64 (optionally `data:` URLs); a URL to fetch is refused, since the
//! server reaches out to nothing a client names.

use super::api_types::{Img2ImgFields, Txt2ImgRequest};
use super::ApiError;
use base64::Engine;
use easel_core::image::{decode_image, decode_mask};
use easel_core::service::{GenerationInputs, GenerationSettings};
use serde_json::Value;

/// The bytes of a base64 image, as A1111's `decode_base64_to_image` reads it: a
/// `data:image/…;base64,` prefix is dropped, whitespace is ignored. Errors are plain text
/// naming `what`; the caller says where in the body it was.
pub fn base64_bytes(what: &str, text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    if text.starts_with("http://") || text.starts_with("https://") {
        return Err(format!(
            "{what}: Easel does not fetch images from URLs; send the image as base64"
        ));
    }
    let payload = match text.strip_prefix("data:") {
        Some(rest) => rest
            .split_once(',')
            .map(|(_, data)| data)
            .ok_or_else(|| format!("{what}: a data URL without `,`"))?,
        None => text,
    };
    let clean: String = payload.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|e| format!("{what}: not valid base64 ({e})"))
}

/// One of A1111's four numbered choices (0 to 3), or a 422 naming the field and the choices.
fn choice(field: &str, v: i64, choices: &str) -> Result<u32, ApiError> {
    u32::try_from(v)
        .ok()
        .filter(|c| *c <= 3)
        .ok_or_else(|| ApiError::field(field, format!("{field} {v} is not {choices}")))
}

/// The images and settings of an img2img request, over `s` (already holding the shared
/// fields). Fields Easel does not act on are added to `warnings`.
pub fn img2img_inputs(
    f: &Img2ImgFields,
    s: &mut GenerationSettings,
    warnings: &mut Vec<String>,
) -> Result<GenerationInputs, ApiError> {
    let images = f.init_images.as_deref().unwrap_or_default();
    if images.is_empty() {
        // A1111 answers a missing init image with 404.
        return Err(ApiError::not_found("Init image not found"));
    }
    let mut inputs = GenerationInputs::default();
    for (i, text) in images.iter().enumerate() {
        let what = format!("init_images[{i}]");
        let image = base64_bytes(&what, text)
            .and_then(|bytes| decode_image(&bytes, &what).map_err(|e| e.to_string()))
            .map_err(|msg| ApiError::list_item("init_images", i, msg))?;
        inputs.init_images.push(image);
    }
    if let Some(text) = f.mask.as_deref().filter(|m| !m.trim().is_empty()) {
        let mask = base64_bytes("mask", text)
            .and_then(|bytes| decode_mask(&bytes, "mask").map_err(|e| e.to_string()))
            .map_err(|msg| ApiError::field("mask", msg))?;
        inputs.mask = Some(mask);
    }
    s.resize_mode = choice(
        "resize_mode",
        f.resize_mode,
        "0 (just resize), 1 (crop and resize), 2 (resize and fill) or 3 (latent upscale)",
    )?;
    // `mask_blur`, when given, sets both directions (A1111's property setter).
    let (bx, by) = match f.mask_blur {
        Some(b) => (b, b),
        None => (f.mask_blur_x, f.mask_blur_y),
    };
    if bx != by {
        warnings.push(format!(
            "mask_blur_x {bx} and mask_blur_y {by} differ: Easel blurs by {bx} both ways"
        ));
    }
    s.mask_blur = u32::try_from(bx).map_err(|_| {
        ApiError::field(
            "mask_blur",
            format!("mask_blur must not be negative, not {bx}"),
        )
    })?;
    s.inpainting_fill = choice(
        "inpainting_fill",
        f.inpainting_fill,
        "0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing)",
    )?;
    s.inpaint_full_res = f.inpaint_full_res;
    s.inpaint_full_res_padding = u32::try_from(f.inpaint_full_res_padding).map_err(|_| {
        ApiError::field(
            "inpaint_full_res_padding",
            format!(
                "inpaint_full_res_padding must not be negative, not {}",
                f.inpaint_full_res_padding
            ),
        )
    })?;
    s.inpainting_mask_invert = f.inpainting_mask_invert;
    if !f.mask_round && inputs.mask.is_some() {
        warnings
            .push("mask_round false is not supported by Easel yet: the mask was rounded".into());
    }
    if f.initial_noise_multiplier
        .is_some_and(|v| v != 0.0 && v != 1.0)
    {
        warnings
            .push("initial_noise_multiplier is not supported by Easel yet and was ignored".into());
    }
    if f.latent_mask.as_deref().is_some_and(|m| !m.is_empty()) {
        warnings.push("latent_mask is not supported by Easel yet and was ignored".into());
    }
    Ok(inputs)
}

/// The request as img2img's answer echoes it: the shared and img2img fields together, the
/// images left out unless `include_init_images` (as A1111 does).
pub fn echoed_parameters(req: &Txt2ImgRequest, f: &Img2ImgFields) -> Value {
    let mut out = serde_json::to_value(req).unwrap_or(Value::Null);
    let mut fields = f.clone();
    if !f.include_init_images {
        fields.init_images = None;
        fields.mask = None;
    }
    if let (Value::Object(o), Ok(Value::Object(extra))) = (&mut out, serde_json::to_value(&fields))
    {
        o.extend(extra);
    }
    out
}

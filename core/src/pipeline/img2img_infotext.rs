//! The infotext fields A1111 adds for img2img and hires fix, placed where its
//! `create_infotext` puts them: `Denoising strength` among the fixed keys (after the model
//! and VAE, before `Clip skip`), the hires fields as the first of the extra parameters
//! (A1111 sets them in `init`, before sampling adds the sampler's own), and `Mask blur` /
//! inpainting fields likewise.

use super::hires::HiresParams;
use crate::infotext::Infotext;

/// The fixed keys `Denoising strength` follows.
const BEFORE_DENOISING: [&str; 10] = [
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Seed",
    "Size",
    "Model hash",
    "Model",
    "VAE hash",
    "VAE",
];

/// The fixed keys A1111 writes before its extra parameters.
const FIXED: [&str; 14] = [
    "Steps",
    "Sampler",
    "Schedule type",
    "CFG scale",
    "Seed",
    "Size",
    "Model hash",
    "Model",
    "VAE hash",
    "VAE",
    "Denoising strength",
    "Clip skip",
    "ENSD",
    "RNG",
];

/// A float as A1111's UI records it (`0.75`, `2` for a whole number).
pub fn format_f64(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn insert_after(t: &mut Infotext, keys: &[&str], key: &str, value: String) {
    let at = t
        .params
        .iter()
        .rposition(|(k, _)| keys.contains(&k.as_str()))
        .map_or(t.params.len(), |i| i + 1);
    t.params.insert(at, (key.to_string(), value));
}

/// Add `Denoising strength` where A1111 writes it.
pub fn add_denoising_strength(t: &mut Infotext, strength: f64) {
    insert_after(
        t,
        &BEFORE_DENOISING,
        "Denoising strength",
        format_f64(strength),
    );
}

/// Add extra parameters (in order) right after the fixed keys.
pub fn add_extra_params(t: &mut Infotext, fields: Vec<(&str, String)>) {
    let at = t
        .params
        .iter()
        .rposition(|(k, _)| FIXED.contains(&k.as_str()))
        .map_or(t.params.len(), |i| i + 1);
    for (i, (k, v)) in fields.into_iter().enumerate() {
        t.params.insert(at + i, (k.to_string(), v));
    }
}

/// The hires fields of `StableDiffusionProcessingTxt2Img.init`, in its order. `prompt` /
/// `negative` are the first pass's; `sampler_label` is the first pass's sampler label.
pub fn hires_fields(
    hires: &HiresParams,
    prompt: &str,
    negative: &str,
    (sampler_label, schedule_label): (&str, &str),
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some((sampler, _)) = &hires.sampler {
        if sampler.label() != sampler_label {
            out.push(("Hires sampler", sampler.label().to_string()));
        }
    }
    // A1111 records the second pass's schedule (the one actually used) when it has one of
    // its own that differs from the first pass's; `Automatic` (the model's spacing) never.
    let hires_schedule = hires.sampler.as_ref().map(|(_, s)| s.label());
    let hires_schedule = hires_schedule.filter(|l| *l != "Automatic" && *l != schedule_label);
    if !hires.prompt.is_empty() && hires.prompt != prompt {
        out.push(("Hires prompt", hires.prompt.clone()));
    }
    if !hires.negative_prompt.is_empty() && hires.negative_prompt != negative {
        out.push(("Hires negative prompt", hires.negative_prompt.clone()));
    }
    if let Some(label) = hires_schedule {
        out.push(("Hires schedule type", label.to_string()));
    }
    if hires.resize_x == 0 && hires.resize_y == 0 {
        out.push(("Hires upscale", format_f64(hires.scale)));
    } else {
        out.push((
            "Hires resize",
            format!("{}x{}", hires.resize_x, hires.resize_y),
        ));
    }
    if hires.second_pass_steps > 0 {
        out.push(("Hires steps", hires.second_pass_steps.to_string()));
    }
    if !hires.upscaler_name.is_empty() {
        out.push(("Hires upscaler", hires.upscaler_name.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denoising_strength_goes_before_clip_skip() {
        let mut t = Infotext::new("a", "")
            .with("Steps", 20)
            .with("Sampler", "Euler")
            .with("Size", "64x64")
            .with("Model", "tiny")
            .with("Clip skip", 2)
            .with("Eta", 0.5);
        add_denoising_strength(&mut t, 0.75);
        add_extra_params(&mut t, vec![("Hires upscale", "2".into())]);
        assert_eq!(
            t.format(),
            "a\nSteps: 20, Sampler: Euler, Size: 64x64, Model: tiny, Denoising strength: 0.75, \
             Clip skip: 2, Hires upscale: 2, Eta: 0.5"
        );
        assert_eq!(format_f64(1.0), "1");
        assert_eq!(format_f64(0.7), "0.7");
    }
}

//! What A1111's paste does with the names and fields of an infotext that this machine cannot
//! honour: a checkpoint, hypernetwork or sampler that is not installed is left at the
//! default with a warning (A1111's UI keeps its current choice), and fields of features
//! Easel lacks, which change the image in A1111, are named in one warning. `--strict`
//! turns the warnings into an error, for scripts that must not get a different image.

use easel_core::infotext::Infotext;
use easel_core::model::{check_plain_name, resolve_checkpoint, resolve_vae};
use easel_core::registry::{SamplerChoice, SamplerRegistry, SchedulerRegistry};
use easel_core::service::GenerationSettings;
use easel_core::{Error, Result};
use std::path::Path;

/// Infotext keys of A1111 features (and common extensions) Easel does not implement; each
/// changes the image A1111 makes. Keys ending in `*` match by prefix.
const UNSUPPORTED: [&str; 19] = [
    "Variation seed*",
    "Seed resize from",
    "Face restoration",
    "Tiling",
    "Refiner",
    "Hires checkpoint",
    "NGMS",
    "Token merging ratio",
    "Token merging ratio hr",
    "Noise multiplier",
    "SGM noise multiplier",
    "Skip Early CFG",
    "CFG Rescale phi",
    "Hypertile U-Net",
    "ADetailer*",
    "ControlNet*",
    "Dynamic thresholding*",
    "Soft inpainting*",
    "FreeU*",
];

/// Which settings a flag set explicitly (those are the user's, not the PNG's, and are not
/// second-guessed).
pub struct Explicit {
    pub model: bool,
    /// `--vae` other than `auto`.
    pub vae: bool,
    pub hypernets: bool,
    pub sampler: bool,
}

/// The unsupported fields `t` carries, by their infotext keys.
fn unsupported_fields(t: &Infotext) -> Vec<String> {
    t.params
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| {
            UNSUPPORTED.iter().any(|u| match u.strip_suffix('*') {
                Some(prefix) => k.starts_with(prefix),
                None => k == u,
            })
        })
        .map(str::to_string)
        .collect()
}

/// The sampler A1111's paste falls back to for a name it does not know (its first).
const PASTE_FALLBACK_SAMPLER: &str = "DPM++ 2M";

/// Checks what an infotext pasted into `g` names against `models` and this build, adjusts
/// `g` as A1111's paste would, and returns the warnings, after `field_warnings` (the
/// values the paste could not read); an error instead with `strict`.
#[allow(clippy::too_many_arguments)]
pub fn check_pasted(
    t: &Infotext,
    field_warnings: Vec<String>,
    g: &mut GenerationSettings,
    models: &Path,
    explicit: &Explicit,
    samplers: &SamplerRegistry,
    schedulers: &SchedulerRegistry,
    strict: bool,
) -> Result<Vec<String>> {
    let mut warnings: Vec<String> = field_warnings
        .into_iter()
        .map(|w| format!("{w}; keeping the default, as A1111's paste does"))
        .collect();
    if !explicit.model && !g.model.is_empty() {
        if let Err(e) = resolve_checkpoint(models, &g.model) {
            warnings.push(format!(
                "the PNG's checkpoint `{}` is not installed ({e}); using the default checkpoint",
                g.model
            ));
            g.model.clear();
        }
    }
    // A1111's paste sets the `sd_vae` override from `VAE`; a name it cannot find is
    // "None" (the checkpoint's own VAE) with a message. Names only: never a path.
    if let (false, Some(name)) = (
        explicit.vae,
        t.vae().map(str::trim).filter(|n| !n.is_empty()),
    ) {
        match check_plain_name(name, "VAE").and_then(|()| resolve_vae(models, name)) {
            Ok(_) => g.vae = name.to_string(),
            Err(e) => {
                warnings.push(format!(
                    "the PNG's VAE `{name}` is not installed ({e}); using the checkpoint's own \
                     VAE, as A1111 does"
                ));
                g.vae = "none".into();
            }
        }
    }
    if !explicit.hypernets {
        let installed = easel_hypernetwork::list_hypernetworks(models);
        g.hypernets.retain(|h| {
            let found = installed.iter().any(|e| e.name == h.name);
            if !found {
                warnings.push(format!(
                    "the PNG's hypernetwork `{}` is not in {}; generating without it",
                    h.name,
                    models.join("hypernetworks").display()
                ));
            }
            found
        });
    }
    if !explicit.sampler {
        // A1111's `get_sampler_and_scheduler`: an unknown schedule type is Automatic, an
        // unknown sampler its first one (DPM++ 2M).
        for (field, what, fallback) in [
            (&mut g.schedule_type, "schedule type", "Automatic"),
            (
                &mut g.hr_schedule_type,
                "hires schedule type",
                "the first pass's",
            ),
        ] {
            if let Some(name) = field.clone().filter(|n| schedulers.get(n).is_err()) {
                warnings.push(format!(
                    "the PNG's {what} `{name}` is not available; using {fallback}"
                ));
                *field = None;
            }
        }
        if let Err(e) =
            SamplerChoice::parse(samplers, schedulers, &g.sampler, g.schedule_type.as_deref())
        {
            warnings.push(format!(
                "the PNG's sampler `{}` is not available ({e}); using {PASTE_FALLBACK_SAMPLER}, as A1111 does",
                g.sampler
            ));
            g.sampler = PASTE_FALLBACK_SAMPLER.to_string();
        }
    }
    let unsupported = unsupported_fields(t);
    if !unsupported.is_empty() {
        warnings.push(format!(
            "the PNG uses features Easel does not have, so the image will differ from A1111's: {}",
            unsupported.join(", ")
        ));
    }
    if strict && !warnings.is_empty() {
        return Err(Error::Invalid(format!("--strict: {}", warnings.join("; "))));
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_fields_are_found_by_key_and_prefix() {
        let t = Infotext::parse(
            "a cat\nSteps: 20, Seed: 1, Variation seed: 5, Variation seed strength: 0.3, \
             ADetailer model: face_yolov8n.pt, ADetailer confidence: 0.3, Tiling: True, \
             Hires upscale: 2",
        );
        assert_eq!(
            unsupported_fields(&t),
            [
                "Variation seed",
                "Variation seed strength",
                "ADetailer model",
                "ADetailer confidence",
                "Tiling"
            ]
        );
    }
}

//! The form's fields as one table over the generation settings JSON (the service's
//! [`GenerationSettings`] as the CLI, the server and a pasted infotext fill it). Each field
//! names its input's id, its JSON key and its limits, so the form is rendered, checked,
//! remembered across reloads and filled from a PNG by the same table, and a setting the
//! service gains needs one row here.

use easel_core::service::GenerationSettings;
use serde_json::{Map, Value};

/// What an input holds and which values are valid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// A whole number in `min..=max` that is a multiple of `multiple`.
    Int {
        min: i64,
        max: i64,
        multiple: i64,
    },
    /// A number in `min..=max`.
    Float {
        min: f64,
        max: f64,
    },
    /// A number of at least `min`, or blank for the sampler's own default (`null`).
    OptionalFloat {
        min: f64,
    },
    /// Free text.
    Text,
    /// One of these values.
    Choice(&'static [&'static str]),
    /// One of a list the worker reports (samplers, schedules, hires upscalers).
    List(ListName),
    Check,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListName {
    Samplers,
    Schedules,
    Upscalers,
    /// The samplers after a blank choice: the hires pass uses the first pass's.
    HiresSamplers,
    /// The schedules after a blank choice: the hires pass uses the first pass's.
    HiresSchedules,
}

#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The input's element id.
    pub id: &'static str,
    /// The settings JSON key; `a.b` for a nested one.
    pub key: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    /// The tooltip.
    pub title: &'static str,
}

const fn int(
    id: &'static str,
    key: &'static str,
    label: &'static str,
    min: i64,
    max: i64,
) -> Field {
    Field {
        id,
        key,
        label,
        kind: Kind::Int {
            min,
            max,
            multiple: 1,
        },
        title: "",
    }
}

const fn float(
    id: &'static str,
    key: &'static str,
    label: &'static str,
    min: f64,
    max: f64,
) -> Field {
    Field {
        id,
        key,
        label,
        kind: Kind::Float { min, max },
        title: "",
    }
}

const fn sampler_param(id: &'static str, key: &'static str, label: &'static str) -> Field {
    Field {
        id,
        key,
        label,
        kind: Kind::OptionalFloat { min: 0.0 },
        title: "blank = the sampler's default",
    }
}

const fn check(
    id: &'static str,
    key: &'static str,
    label: &'static str,
    title: &'static str,
) -> Field {
    Field {
        id,
        key,
        label,
        kind: Kind::Check,
        title,
    }
}

const fn choice(
    id: &'static str,
    key: &'static str,
    label: &'static str,
    values: &'static [&'static str],
    title: &'static str,
) -> Field {
    Field {
        id,
        key,
        label,
        kind: Kind::Choice(values),
        title,
    }
}

/// Every field of the form, grouped by the component that shows it (see [`group`]).
pub const FIELDS: &[Field] = &[
    // prompt editor
    Field {
        id: "prompt",
        key: "prompt",
        label: "Prompt",
        kind: Kind::Text,
        title: "Ctrl+Enter generates; Ctrl+Up/Down change the attention of the selection or word",
    },
    Field {
        id: "negative",
        key: "negative_prompt",
        label: "Negative prompt",
        kind: Kind::Text,
        title: "",
    },
    // sampling
    Field {
        id: "sampler",
        key: "sampler",
        label: "Sampler",
        kind: Kind::List(ListName::Samplers),
        title: "",
    },
    Field {
        id: "schedule",
        key: "schedule_type",
        label: "Schedule type",
        kind: Kind::List(ListName::Schedules),
        title: "",
    },
    int("steps", "steps", "Sampling steps", 1, 150),
    Field {
        id: "seed",
        key: "seed",
        label: "Seed",
        kind: Kind::Int {
            min: -1,
            max: 9_007_199_254_740_991,
            multiple: 1,
        },
        title: "-1 = a random seed",
    },
    float("cfg", "cfg_scale", "CFG scale", 1.0, 30.0),
    Field {
        id: "width",
        key: "width",
        label: "Width",
        kind: Kind::Int {
            min: 64,
            max: 2048,
            multiple: 8,
        },
        title: "",
    },
    Field {
        id: "height",
        key: "height",
        label: "Height",
        kind: Kind::Int {
            min: 64,
            max: 2048,
            multiple: 8,
        },
        title: "",
    },
    int("batch-count", "batch_count", "Batch count", 1, 100),
    int("batch", "batch_size", "Batch size", 1, 8),
    int("clip-skip", "clip_skip", "Clip skip", 1, 12),
    choice(
        "rng",
        "rng",
        "RNG",
        &["gpu", "cpu", "nv"],
        "A1111's random number generator source",
    ),
    choice(
        "noise-device",
        "noise_device",
        "Noise device",
        &["auto", "cuda", "cpu"],
        "the torch device of the A1111 run to reproduce (SDE samplers)",
    ),
    Field {
        id: "ensd",
        key: "ensd",
        label: "ENSD",
        kind: Kind::Int {
            min: 0,
            max: i64::MAX,
            multiple: 1,
        },
        title: "eta noise seed delta (31337 for NovelAI parity)",
    },
    choice(
        "emphasis",
        "emphasis",
        "Emphasis",
        &["Original", "No norm", "Ignore", "None"],
        "how (word:1.2) and [word] change attention",
    ),
    check(
        "nai-braces",
        "nai_braces",
        "NovelAI braces",
        "{word} is ×1.05 attention, as NovelAI's prompts mean it",
    ),
    choice(
        "vae-decoder",
        "vae_decoder",
        "VAE decoder",
        &["Full", "TAESD"],
        "A1111's VAE type for decode: TAESD needs taesd_decoder.pth",
    ),
    choice(
        "vae-encoder",
        "vae_encoder",
        "VAE encoder",
        &["Full", "TAESD"],
        "A1111's VAE type for encode (img2img, hires): TAESD needs taesd_encoder.pth",
    ),
    // sampler parameters
    sampler_param("sp-eta", "sampler_params.eta", "Eta"),
    sampler_param("sp-eta_ddim", "sampler_params.eta_ddim", "Eta DDIM"),
    sampler_param("sp-s_churn", "sampler_params.s_churn", "Sigma churn"),
    sampler_param("sp-s_tmin", "sampler_params.s_tmin", "Sigma tmin"),
    sampler_param("sp-s_tmax", "sampler_params.s_tmax", "Sigma tmax"),
    sampler_param("sp-s_noise", "sampler_params.s_noise", "Sigma noise"),
    sampler_param(
        "sp-sigma_min",
        "sampler_params.sigma_min",
        "Schedule min sigma",
    ),
    sampler_param(
        "sp-sigma_max",
        "sampler_params.sigma_max",
        "Schedule max sigma",
    ),
    sampler_param("sp-rho", "sampler_params.rho", "Schedule rho"),
    sampler_param(
        "sp-beta_alpha",
        "sampler_params.beta_alpha",
        "Beta schedule alpha",
    ),
    sampler_param(
        "sp-beta_beta",
        "sampler_params.beta_beta",
        "Beta schedule beta",
    ),
    // img2img and inpainting
    float(
        "denoising",
        "denoising_strength",
        "Denoising strength",
        0.0,
        1.0,
    ),
    Field {
        id: "resize-mode",
        key: "resize_mode",
        label: "Resize mode",
        kind: Kind::Choice(&["0", "1", "2", "3"]),
        title: "0 just resize, 1 crop and resize, 2 resize and fill, 3 latent upscale",
    },
    int("mask-blur", "mask_blur", "Mask blur", 0, 64),
    Field {
        id: "inpainting-fill",
        key: "inpainting_fill",
        label: "Masked content",
        kind: Kind::Choice(&["0", "1", "2", "3"]),
        title: "0 fill, 1 original, 2 latent noise, 3 latent nothing",
    },
    check(
        "inpaint-full-res",
        "inpaint_full_res",
        "Only masked",
        "inpaint the masked area at full resolution",
    ),
    int(
        "inpaint-padding",
        "inpaint_full_res_padding",
        "Only masked padding",
        0,
        256,
    ),
    check(
        "mask-invert",
        "inpainting_mask_invert",
        "Inpaint not masked",
        "",
    ),
    // hires fix
    check(
        "enable-hr",
        "enable_hr",
        "Hires fix",
        "a second pass at a larger size (txt2img)",
    ),
    Field {
        id: "hr-upscaler",
        key: "hr_upscaler",
        label: "Upscaler",
        kind: Kind::List(ListName::Upscalers),
        title: "",
    },
    float("hr-scale", "hr_scale", "Upscale by", 1.0, 4.0),
    Field {
        id: "hr-steps",
        key: "hr_second_pass_steps",
        label: "Hires steps",
        kind: Kind::Int {
            min: 0,
            max: 150,
            multiple: 1,
        },
        title: "0 = as many as the first pass",
    },
    Field {
        id: "hr-resize-x",
        key: "hr_resize_x",
        label: "Resize width to",
        kind: Kind::Int {
            min: 0,
            max: 2048,
            multiple: 8,
        },
        title: "0 = use Upscale by",
    },
    Field {
        id: "hr-resize-y",
        key: "hr_resize_y",
        label: "Resize height to",
        kind: Kind::Int {
            min: 0,
            max: 2048,
            multiple: 8,
        },
        title: "0 = use Upscale by",
    },
];

/// The fields whose ids start with one of `prefixes` (or are named), in table order.
pub fn group(ids: &[&str]) -> Vec<Field> {
    ids.iter().filter_map(|id| field(id)).collect()
}

pub fn field(id: &str) -> Option<Field> {
    FIELDS.iter().find(|f| f.id == id).copied()
}

/// The form's starting values: A1111's txt2img defaults as the service has them.
pub fn default_form() -> Value {
    let mut v = serde_json::to_value(GenerationSettings {
        prompt: "a photograph of an astronaut riding a horse".into(),
        ..Default::default()
    })
    .unwrap_or(Value::Null);
    set(&mut v, "schedule_type", Value::from("Automatic"));
    set(&mut v, "seed", Value::from(-1));
    v
}

/// The value at `key` (`Null` when missing).
pub fn get<'a>(form: &'a Value, key: &str) -> &'a Value {
    let mut at = form;
    for part in key.split('.') {
        at = at.get(part).unwrap_or(&Value::Null);
    }
    at
}

pub fn set(form: &mut Value, key: &str, value: Value) {
    let mut at = form;
    let parts: Vec<&str> = key.split('.').collect();
    for part in &parts[..parts.len() - 1] {
        if !at.get(*part).is_some_and(Value::is_object) {
            at[*part] = Value::Object(Map::new());
        }
        at = &mut at[*part];
    }
    at[parts[parts.len() - 1]] = value;
}

/// A value as its input shows it (`null` as blank, `"Automatic"` for no schedule).
pub fn display(f: &Field, v: &Value) -> String {
    match (v, f.kind) {
        (Value::Null, Kind::List(ListName::Schedules)) => "Automatic".into(),
        (Value::Null, Kind::List(ListName::HiresSchedules)) => String::new(),
        (Value::Null, _) => String::new(),
        (Value::String(s), _) => s.clone(),
        (other, _) => other.to_string(),
    }
}

/// The input's text as the field's JSON value, or an error naming the field.
pub fn parse(f: &Field, text: &str) -> Result<Value, String> {
    let t = text.trim();
    let number = || -> Result<f64, String> {
        if t.is_empty() {
            return Err(format!("{}: no value", f.label));
        }
        t.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("{}: `{text}` is not a number", f.label))
    };
    match f.kind {
        Kind::Int { min, max, multiple } => {
            let v = number()?;
            if v.fract() != 0.0 {
                return Err(format!("{}: {t} is not a whole number", f.label));
            }
            let v = v as i64;
            if v < min || v > max {
                return Err(if max == i64::MAX {
                    format!("{}: {v} is below {min}", f.label)
                } else {
                    format!("{}: {v} is outside {min} to {max}", f.label)
                });
            }
            if v % multiple != 0 {
                return Err(format!("{}: {v} is not a multiple of {multiple}", f.label));
            }
            Ok(Value::from(v))
        }
        Kind::Float { min, max } => {
            let v = number()?;
            if v < min || v > max {
                return Err(format!("{}: {v} is outside {min} to {max}", f.label));
            }
            Ok(Value::from(v))
        }
        Kind::OptionalFloat { min } => {
            if t.is_empty() {
                return Ok(Value::Null);
            }
            let v = number()?;
            if v < min {
                return Err(format!("{}: {v} is below {min}", f.label));
            }
            Ok(Value::from(v))
        }
        Kind::Choice(values) if values.iter().all(|v| v.parse::<u32>().is_ok()) => t
            .parse::<u32>()
            .ok()
            .filter(|_| values.contains(&t))
            .map(Value::from)
            .ok_or_else(|| format!("{}: `{text}` is not one of {}", f.label, values.join(", "))),
        Kind::Choice(values) if !values.contains(&t) => Err(format!(
            "{}: `{text}` is not one of {}",
            f.label,
            values.join(", ")
        )),
        Kind::Check => Ok(Value::from(t == "true")),
        Kind::List(ListName::HiresSchedules) if t.is_empty() => Ok(Value::Null),
        _ => Ok(Value::from(text)),
    }
}

/// Every invalid value of the form, each naming its field (empty when the form is valid).
/// The raw texts of inputs that did not parse (`unparsed`) are reported as they are.
pub fn problems(form: &Value, unparsed: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = unparsed.iter().map(|(_, msg)| msg.clone()).collect();
    for f in FIELDS {
        if unparsed.iter().any(|(id, _)| id == f.id) || matches!(f.kind, Kind::Text | Kind::List(_))
        {
            continue;
        }
        let v = get(form, f.key);
        let shown = display(f, v);
        if let Err(e) = parse(
            f,
            if matches!(f.kind, Kind::Check) {
                "true"
            } else {
                &shown
            },
        ) {
            out.push(e);
        }
    }
    if out.is_empty() {
        // -1 (random) is the form's, not the service's: any seed stands in for it here.
        let mut settings = form.clone();
        if get(form, "seed").as_i64().is_some_and(|s| s < 0) {
            set(&mut settings, "seed", Value::from(0));
        }
        if let Err(e) = GenerationSettings::from_json(&settings.to_string()) {
            out.push(e.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_form_is_valid_settings() {
        let form = default_form();
        assert_eq!(problems(&form, &[]), Vec::<String>::new());
        assert_eq!(get(&form, "seed"), &Value::from(-1));
        let mut settings = form.clone();
        set(&mut settings, "seed", Value::from(5));
        let s = GenerationSettings::from_json(&settings.to_string()).unwrap();
        assert_eq!((s.steps, s.width, s.sampler.as_str()), (20, 512, "Euler a"));
        for f in FIELDS {
            assert!(
                !get(&form, f.key).is_null()
                    || matches!(
                        f.kind,
                        Kind::OptionalFloat { .. } | Kind::List(ListName::HiresSchedules)
                    ),
                "field {} has no value under `{}`",
                f.id,
                f.key
            );
        }
    }

    #[test]
    fn every_bad_value_is_named() {
        let mut form = default_form();
        set(&mut form, "steps", Value::from(0));
        set(&mut form, "width", Value::from(100));
        let found = problems(
            &form,
            &[("cfg".into(), "CFG scale: `x` is not a number".into())],
        );
        assert_eq!(
            found,
            vec![
                "CFG scale: `x` is not a number".to_string(),
                "Sampling steps: 0 is outside 1 to 150".into(),
                "Width: 100 is not a multiple of 8".into(),
            ]
        );
        let f = field("sp-eta").unwrap();
        assert_eq!(parse(&f, ""), Ok(Value::Null));
        assert_eq!(parse(&f, "0.5"), Ok(Value::from(0.5)));
        assert!(parse(&field("steps").unwrap(), "2.5")
            .unwrap_err()
            .contains("whole"));
        assert_eq!(
            parse(&field("inpainting-fill").unwrap(), "2"),
            Ok(Value::from(2))
        );
    }

    #[test]
    fn nested_keys_read_and_write() {
        let mut form = default_form();
        set(&mut form, "sampler_params.rho", Value::from(5.0));
        assert_eq!(get(&form, "sampler_params.rho"), &Value::from(5.0));
        set(&mut form, "seed", Value::from(1));
        let s = GenerationSettings::from_json(&form.to_string()).unwrap();
        assert_eq!(s.sampler_params.schedule_rho, Some(5.0));
    }
}

//! A1111's settings (`GET/POST /sdapi/v1/options`, and a request's `override_settings`)
//! mapped onto [`GenerationSettings`]. One function, [`apply_option`], knows which option
//! sets which setting, so an option set globally and the same option overridden in one
//! request act the same. Options Easel has no use for are kept (a client reads back what
//! it wrote) and reported, never guessed at.

use easel_core::noise::RngKind;
use easel_core::service::GenerationSettings;
use easel_core::text::EmphasisMode;
use serde_json::{Map, Value};

/// What applying one option did.
#[derive(Debug, PartialEq)]
pub enum Applied {
    /// It set a generation setting.
    Used,
    /// Easel has no such setting: stored only.
    Unsupported,
}

/// An option's value has the wrong type or is not a valid choice; names the option.
#[derive(Debug)]
pub struct BadOption {
    pub key: String,
    pub message: String,
}

fn bad(key: &str, message: impl Into<String>) -> BadOption {
    BadOption {
        key: key.to_string(),
        message: message.into(),
    }
}

fn number(key: &str, v: &Value) -> Result<f64, BadOption> {
    v.as_f64()
        .filter(|x| x.is_finite())
        .ok_or_else(|| bad(key, format!("`{key}` must be a number, not {v}")))
}

fn whole(key: &str, v: &Value) -> Result<u64, BadOption> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| bad(key, format!("`{key}` must be a whole number ≥ 0, not {v}")))
}

fn boolean(key: &str, v: &Value) -> Result<bool, BadOption> {
    v.as_bool()
        .ok_or_else(|| bad(key, format!("`{key}` must be true or false, not {v}")))
}

fn text<'v>(key: &str, v: &'v Value) -> Result<&'v str, BadOption> {
    v.as_str()
        .ok_or_else(|| bad(key, format!("`{key}` must be a string, not {v}")))
}

/// A model name from a request: resolved later only inside the models folder, so a path
/// (absolute, or with `..`) is refused here.
fn plain_name<'v>(key: &str, v: &'v Value, kind: &str) -> Result<&'v str, BadOption> {
    let name = text(key, v)?;
    easel_core::model::check_plain_name(name, kind).map_err(|e| bad(key, e.to_string()))?;
    Ok(name)
}

/// Sets the generation setting A1111's option `key` controls. A sampler parameter of 0
/// where A1111 reads 0 as "the default" stays a 0 the sampler interprets the same way.
pub fn apply_option(
    s: &mut GenerationSettings,
    key: &str,
    v: &Value,
) -> Result<Applied, BadOption> {
    let p = &mut s.sampler_params;
    match key {
        "sd_model_checkpoint" => s.model = plain_name(key, v, "checkpoint")?.to_string(),
        "sd_vae" => {
            s.vae = match plain_name(key, v, "VAE")? {
                "Automatic" | "automatic" | "auto" => "auto".to_string(),
                "None" | "none" => "none".to_string(),
                other => other.to_string(),
            }
        }
        "CLIP_stop_at_last_layers" => {
            let n = whole(key, v)?;
            if n == 0 {
                return Err(bad(key, "`CLIP_stop_at_last_layers` must be at least 1"));
            }
            s.clip_skip = n as usize;
        }
        "eta_noise_seed_delta" => s.ensd = whole(key, v)?,
        "randn_source" => {
            s.rng = text(key, v)?
                .parse::<RngKind>()
                .map_err(|e| bad(key, format!("`randn_source`: {e}")))?
        }
        "emphasis" => {
            s.emphasis = EmphasisMode::from_a1111_name(text(key, v)?)
                .map_err(|e| bad(key, format!("`emphasis`: {e}")))?
        }
        "use_old_scheduling" => s.old_prompt_timelines = boolean(key, v)?,
        "use_downcasted_alpha_bar" => s.downcast_alphas_cumprod = boolean(key, v)?,
        "pad_cond_uncond" => s.pad_conds = boolean(key, v)?,
        "pad_cond_uncond_v0" => s.pad_conds_v0 = boolean(key, v)?,
        "sd_vae_decode_method" => {
            s.vae_decoder = easel_core::pipeline::VaeDecoder::parse(text(key, v)?)
                .map_err(|e| bad(key, e.to_string()))?
        }
        "sd_vae_encode_method" => {
            s.vae_encoder = easel_core::pipeline::VaeEncoder::parse(text(key, v)?)
                .map_err(|e| bad(key, e.to_string()))?
        }
        "eta_ancestral" => p.eta = Some(number(key, v)? as f32),
        "eta_ddim" => p.eta_ddim = Some(number(key, v)? as f32),
        "s_churn" => p.s_churn = Some(number(key, v)? as f32),
        "s_tmin" => p.s_tmin = Some(number(key, v)? as f32),
        "s_tmax" => p.s_tmax = Some(number(key, v)? as f32),
        "s_noise" => p.s_noise = Some(number(key, v)? as f32),
        "sigma_min" => p.schedule_sigma_min = Some(number(key, v)? as f32),
        "sigma_max" => p.schedule_sigma_max = Some(number(key, v)? as f32),
        "rho" => p.schedule_rho = Some(number(key, v)? as f32),
        "beta_dist_alpha" => p.beta_alpha = Some(number(key, v)? as f32),
        "beta_dist_beta" => p.beta_beta = Some(number(key, v)? as f32),
        _ => return Ok(Applied::Unsupported),
    }
    Ok(Applied::Used)
}

/// The options a fresh server reports (A1111's defaults for what Easel honours).
pub fn default_options(model_title: &str) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_string(), v);
    };
    put("sd_model_checkpoint", Value::from(model_title));
    put("sd_vae", Value::from("Automatic"));
    put("CLIP_stop_at_last_layers", Value::from(1));
    put("eta_noise_seed_delta", Value::from(0));
    put("randn_source", Value::from("GPU"));
    put("emphasis", Value::from("Original"));
    put("use_old_scheduling", Value::from(false));
    put("use_downcasted_alpha_bar", Value::from(false));
    put("pad_cond_uncond", Value::from(false));
    put("pad_cond_uncond_v0", Value::from(false));
    put("sd_vae_decode_method", Value::from("Full"));
    put("sd_vae_encode_method", Value::from("Full"));
    put("eta_ancestral", Value::from(1.0));
    put("eta_ddim", Value::from(0.0));
    put("s_churn", Value::from(0.0));
    put("s_tmin", Value::from(0.0));
    put("s_tmax", Value::from(0.0));
    put("s_noise", Value::from(1.0));
    put("sigma_min", Value::from(0.0));
    put("sigma_max", Value::from(0.0));
    put("rho", Value::from(0.0));
    put("beta_dist_alpha", Value::from(0.6));
    put("beta_dist_beta", Value::from(0.6));
    put("samples_format", Value::from("png"));
    m
}

/// The settings every request starts from: the defaults with the server's options.
/// Unsupported options are skipped here (they were reported when set).
pub fn settings_from_options(options: &Map<String, Value>) -> GenerationSettings {
    let mut s = GenerationSettings::default();
    for (k, v) in options {
        // Stored options were checked when they were set.
        let _ = apply_option(&mut s, k, v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_set_the_settings_they_name() {
        let mut s = GenerationSettings::default();
        for (k, v) in [
            ("CLIP_stop_at_last_layers", json!(2)),
            ("eta_noise_seed_delta", json!(31337)),
            ("randn_source", json!("CPU")),
            ("emphasis", json!("No norm")),
            ("eta_ancestral", json!(0.5)),
            ("sd_vae", json!("None")),
            ("use_old_scheduling", json!(true)),
            ("use_downcasted_alpha_bar", json!(true)),
        ] {
            assert_eq!(apply_option(&mut s, k, &v).unwrap(), Applied::Used, "{k}");
        }
        assert!(s.old_prompt_timelines && s.downcast_alphas_cumprod);
        assert_eq!((s.clip_skip, s.ensd, s.rng), (2, 31337, RngKind::Cpu));
        assert_eq!(s.emphasis, EmphasisMode::NoNorm);
        assert_eq!(s.sampler_params.eta, Some(0.5));
        assert_eq!(s.vae, "none");
        assert_eq!(
            apply_option(&mut s, "show_progressbar", &json!(true)).unwrap(),
            Applied::Unsupported
        );
    }

    #[test]
    fn wrong_types_name_the_option() {
        let mut s = GenerationSettings::default();
        let e = apply_option(&mut s, "CLIP_stop_at_last_layers", &json!("two")).unwrap_err();
        assert_eq!(e.key, "CLIP_stop_at_last_layers");
        let e = apply_option(&mut s, "randn_source", &json!("dice")).unwrap_err();
        assert!(e.message.contains("dice"), "{}", e.message);
    }

    #[test]
    fn defaults_are_the_service_defaults() {
        let s = settings_from_options(&default_options("tiny [abcd1234]"));
        let d = GenerationSettings::default();
        assert_eq!(s.model, "tiny [abcd1234]");
        assert_eq!(
            (s.clip_skip, s.ensd, s.rng, s.emphasis),
            (d.clip_skip, d.ensd, d.rng, d.emphasis)
        );
    }
}

//! A1111's txt2img request (and the fields img2img shares with it) mapped onto
//! [`GenerationSettings`], and the generated images mapped back onto A1111's answer
//! (`images`, `parameters`, `info`). Every field Easel does not act on is named in `info`'s
//! `warnings`, so nothing is silently dropped.

use super::api_types::{Txt2ImgRequest, Txt2ImgResponse};
use super::options::{apply_option, Applied};
use super::ApiError;
use base64::Engine;
use easel_core::infotext::encode_png;
use easel_core::model::resolve_checkpoint;
use easel_core::registry::{SamplerChoice, SamplerRegistry, SchedulerRegistry};
use easel_core::service::{Generated, GenerationSettings};
use serde_json::{json, Map, Value};
use std::path::Path;

/// Seeds A1111 draws for -1 lie in [0, 2^32).
pub fn random_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    (nanos ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32
}

/// Which endpoint a request came through: img2img shares txt2img's fields but not hires fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Txt2Img,
    Img2Img,
}

fn non_negative(field: &str, v: i64) -> Result<usize, ApiError> {
    usize::try_from(v)
        .map_err(|_| ApiError::field(field, format!("{field} must not be negative, not {v}")))
}

/// A1111's "Use same …" choices and an empty or absent value all mean the first pass's.
fn hires_choice(v: &Option<String>) -> Option<&str> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty() && !v.starts_with("Use same"))
}

/// txt2img's hires-fix fields (A1111's `StableDiffusionProcessingTxt2Img`): on with
/// `enable_hr`, `denoising_strength` 0.75 when absent, `hr_scale` 2, no upscaler = its
/// default latent mode.
fn apply_hires(
    req: &Txt2ImgRequest,
    s: &mut GenerationSettings,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    // A1111 (old clients): a first-pass size given this way replaces width/height.
    if req.firstphase_width != 0 || req.firstphase_height != 0 {
        s.width = positive("firstphase_width", req.firstphase_width)?;
        s.height = positive("firstphase_height", req.firstphase_height)?;
    }
    s.enable_hr = true;
    s.hr_scale = req.hr_scale.unwrap_or(2.0);
    s.hr_upscaler = req.hr_upscaler.clone().unwrap_or_default();
    s.hr_second_pass_steps = non_negative(
        "hr_second_pass_steps",
        req.hr_second_pass_steps.unwrap_or(0),
    )?;
    s.hr_resize_x = non_negative("hr_resize_x", req.hr_resize_x.unwrap_or(0))?;
    s.hr_resize_y = non_negative("hr_resize_y", req.hr_resize_y.unwrap_or(0))?;
    s.hr_sampler = hires_choice(&req.hr_sampler_name)
        .unwrap_or_default()
        .to_string();
    s.hr_prompt = req.hr_prompt.clone().unwrap_or_default();
    s.hr_negative_prompt = req.hr_negative_prompt.clone().unwrap_or_default();
    if hires_choice(&req.hr_checkpoint_name).is_some() {
        warnings.push(
            "hr_checkpoint_name is not supported by Easel yet: the second pass used the first pass's checkpoint"
                .into(),
        );
    }
    s.hr_schedule_type = hires_choice(&req.hr_scheduler).map(str::to_string);
    Ok(())
}

fn positive(field: &str, v: i64) -> Result<usize, ApiError> {
    if v < 1 {
        return Err(ApiError::field(
            field,
            format!("{field} must be at least 1, not {v}"),
        ));
    }
    Ok(v as usize)
}

/// The settings a request asks for, over the server's `options`, with the warnings for
/// what Easel does not support. An unknown sampler, schedule or checkpoint is a 404
/// naming it; values out of range are 422s naming the field.
pub fn settings_for(
    endpoint: Endpoint,
    req: &Txt2ImgRequest,
    base: GenerationSettings,
    models: &Path,
    samplers: &SamplerRegistry,
    schedulers: &SchedulerRegistry,
) -> Result<(GenerationSettings, Vec<String>), ApiError> {
    let mut s = base;
    let mut warnings = Vec::new();
    s.prompt.clone_from(&req.prompt);
    s.negative_prompt.clone_from(&req.negative_prompt);
    s.seed = if req.seed < 0 {
        random_seed()
    } else {
        req.seed as u64
    };
    s.steps = positive("steps", req.steps)?;
    s.batch_size = positive("batch_size", req.batch_size)?;
    s.batch_count = positive("n_iter", req.n_iter)?;
    s.width = positive("width", req.width)?;
    s.height = positive("height", req.height)?;
    s.cfg_scale = req.cfg_scale as f32;
    // A1111: sampler_name wins; the deprecated sampler_index defaults to Euler.
    s.sampler = req
        .sampler_name
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| req.sampler_index.clone().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "Euler".to_string());
    s.schedule_type = req.scheduler.clone().filter(|n| !n.is_empty());
    // A request's eta is A1111's p.eta: it replaces both the ancestral and the DDIM eta.
    if let Some(eta) = req.eta {
        s.sampler_params.eta = Some(eta as f32);
        s.sampler_params.eta_ddim = Some(eta as f32);
    }
    for (value, slot) in [
        (req.s_churn, &mut s.sampler_params.s_churn),
        (req.s_tmin, &mut s.sampler_params.s_tmin),
        (req.s_tmax, &mut s.sampler_params.s_tmax),
        (req.s_noise, &mut s.sampler_params.s_noise),
    ] {
        if let Some(v) = value {
            *slot = Some(v as f32);
        }
    }
    if let Some(overrides) = &req.override_settings {
        for (k, v) in overrides {
            match apply_option(&mut s, k, v) {
                Ok(Applied::Used) => {}
                Ok(Applied::Unsupported) => warnings.push(format!(
                    "override_settings.{k} is not supported by Easel and was ignored"
                )),
                Err(e) => {
                    return Err(ApiError::field_path(
                        &["body", "override_settings", e.key.as_str()],
                        e.message,
                    ))
                }
            }
        }
    }
    s.sampler_params
        .validate()
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    // A1111's default for both endpoints (txt2img uses it only for hires fix).
    s.denoising_strength = req.denoising_strength.unwrap_or(0.75);
    match endpoint {
        Endpoint::Txt2Img if req.enable_hr => apply_hires(req, &mut s, &mut warnings)?,
        Endpoint::Txt2Img => {}
        Endpoint::Img2Img => {
            if req.enable_hr {
                warnings.push("enable_hr is a txt2img field; img2img ignored it".into());
            }
        }
    }

    // Names are checked now, before the request waits in the queue.
    SamplerChoice::parse(samplers, schedulers, &s.sampler, s.schedule_type.as_deref())
        .map_err(|e| ApiError::not_found(format!("Sampler not found: {} ({e})", s.sampler)))?;
    resolve_checkpoint(models, &s.model)
        .map_err(|e| ApiError::not_found(format!("Checkpoint not found: {} ({e})", s.model)))?;
    if s.enable_hr && !s.hr_sampler.is_empty() {
        SamplerChoice::parse(samplers, schedulers, &s.hr_sampler, None).map_err(|e| {
            ApiError::not_found(format!("Sampler not found: {} ({e})", s.hr_sampler))
        })?;
    }
    if let (true, Some(name)) = (s.enable_hr, &s.hr_schedule_type) {
        schedulers
            .get(name)
            .map_err(|e| ApiError::not_found(format!("Scheduler not found: {name} ({e})")))?;
    }

    let flag = |on: bool, what: &str, warnings: &mut Vec<String>| {
        if on {
            warnings.push(format!(
                "{what} is not supported by Easel yet and was ignored"
            ));
        }
    };
    flag(
        req.subseed_strength != 0.0,
        "subseed_strength (variation seed)",
        &mut warnings,
    );
    flag(
        req.seed_resize_from_h > 0 || req.seed_resize_from_w > 0,
        "seed_resize_from_h/w",
        &mut warnings,
    );
    flag(
        req.restore_faces == Some(true),
        "restore_faces",
        &mut warnings,
    );
    flag(req.tiling == Some(true), "tiling", &mut warnings);
    flag(
        req.refiner_checkpoint
            .as_deref()
            .is_some_and(|r| !r.is_empty() && r != "None"),
        "refiner_checkpoint",
        &mut warnings,
    );
    flag(
        req.s_min_uncond.is_some_and(|v| v != 0.0),
        "s_min_uncond",
        &mut warnings,
    );
    flag(
        req.styles.as_ref().is_some_and(|v| !v.is_empty()),
        "styles",
        &mut warnings,
    );
    flag(
        req.script_name.as_deref().is_some_and(|v| !v.is_empty()),
        "script_name",
        &mut warnings,
    );
    flag(
        req.alwayson_scripts.as_ref().is_some_and(|v| !v.is_empty()),
        "alwayson_scripts",
        &mut warnings,
    );
    flag(
        req.firstpass_image.is_some(),
        "firstpass_image",
        &mut warnings,
    );
    flag(
        req.disable_extra_networks,
        "disable_extra_networks",
        &mut warnings,
    );
    flag(
        req.save_images,
        "save_images (the server does not write files)",
        &mut warnings,
    );
    flag(
        req.infotext.as_deref().is_some_and(|v| !v.is_empty()),
        "infotext",
        &mut warnings,
    );
    for k in req.unknown.keys() {
        warnings.push(format!("unknown field `{k}` was ignored"));
    }
    Ok((s, warnings))
}

/// A1111's answer for the images generated from `s`; `parameters` is the request as the
/// endpoint echoes it.
pub fn response(
    req: &Txt2ImgRequest,
    parameters: Value,
    s: &GenerationSettings,
    generated: &[Generated],
    warnings: &[String],
    queue_wait_s: f64,
) -> Result<Txt2ImgResponse, ApiError> {
    let mut images = Vec::new();
    if req.send_images {
        for g in generated {
            let png = encode_png(
                g.image.width as u32,
                g.image.height as u32,
                &g.image.rgb,
                Some(&g.infotext.format()),
            )
            .map_err(|e| ApiError::internal(e.to_string()))?;
            images.push(base64::engine::general_purpose::STANDARD.encode(png));
        }
    }
    let infotexts: Vec<String> = generated.iter().map(|g| g.infotext.format()).collect();
    let seeds: Vec<u64> = generated.iter().map(|g| g.image.seed).collect();
    let first = generated.first().map(|g| &g.infotext);
    let field = |k: &str| first.and_then(|t| t.get(k)).map(str::to_string);
    let extra: Map<String, Value> = first
        .map(|t| {
            t.fields()
                .into_iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "Steps"
                            | "Sampler"
                            | "CFG scale"
                            | "Seed"
                            | "Size-1"
                            | "Size-2"
                            | "Model hash"
                            | "Model"
                            | "VAE hash"
                            | "VAE"
                            | "Version"
                    )
                })
                .map(|(k, v)| (k, Value::from(v)))
                .collect()
        })
        .unwrap_or_default();
    let info = json!({
        "prompt": s.prompt,
        "all_prompts": vec![s.prompt.clone(); generated.len()],
        "negative_prompt": s.negative_prompt,
        "all_negative_prompts": vec![s.negative_prompt.clone(); generated.len()],
        "seed": seeds.first().copied().unwrap_or(s.seed),
        "all_seeds": seeds,
        "subseed": req.subseed,
        "all_subseeds": vec![req.subseed; generated.len()],
        "subseed_strength": req.subseed_strength,
        "width": s.width,
        "height": s.height,
        "sampler_name": field("Sampler").unwrap_or_else(|| s.sampler.clone()),
        "cfg_scale": s.cfg_scale,
        "steps": s.steps,
        "batch_size": s.batch_size,
        "restore_faces": false,
        "face_restoration_model": Value::Null,
        "sd_model_name": field("Model"),
        "sd_model_hash": field("Model hash"),
        "sd_vae_name": field("VAE"),
        "sd_vae_hash": field("VAE hash"),
        "seed_resize_from_w": req.seed_resize_from_w,
        "seed_resize_from_h": req.seed_resize_from_h,
        "denoising_strength": s.denoising_strength,
        "extra_generation_params": extra,
        "index_of_first_image": 0,
        "infotexts": infotexts,
        "styles": req.styles.clone().unwrap_or_default(),
        "job_timestamp": "",
        "clip_skip": s.clip_skip,
        "is_using_inpainting_conditioning": false,
        "version": easel_core::VERSION_LABEL,
        "warnings": warnings,
        "queue_wait_seconds": queue_wait_s,
    });
    Ok(Txt2ImgResponse {
        images,
        parameters,
        info: info.to_string(),
    })
}

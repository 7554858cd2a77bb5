//! The form's settings as an A1111 `/sdapi/v1/txt2img` or `/img2img` request, for server
//! mode: the standard fields by A1111's names, and what A1111 keeps in its settings
//! (clip skip, ENSD, RNG source, emphasis, sampler parameters, VAE methods, the checkpoint)
//! as `override_settings` restored after the job, as A1111's own UI would have them.
//! NovelAI braces and the noise device have no A1111 field and stay browser-only.

use easel_core::service::GenerationSettings;
use serde_json::{json, Map, Value};

/// Base64 of the init image and mask for an img2img request.
pub struct ImageInputs {
    pub init_image: String,
    pub mask: Option<String>,
}

/// The request body; `checkpoint` is the server's model to use (`sd_model_checkpoint`).
pub fn request_body(
    s: &GenerationSettings,
    checkpoint: &str,
    images: Option<&ImageInputs>,
) -> Value {
    let p = &s.sampler_params;
    let mut body = json!({
        "prompt": s.prompt,
        "negative_prompt": s.negative_prompt,
        "seed": s.seed,
        "sampler_name": s.sampler,
        "steps": s.steps,
        "cfg_scale": s.cfg_scale,
        "width": s.width,
        "height": s.height,
        "batch_size": s.batch_size,
        "n_iter": s.batch_count,
        "denoising_strength": s.denoising_strength,
        "send_images": true,
        "save_images": false,
        "override_settings_restore_afterwards": true,
    });
    if let Some(schedule) = s.schedule_type.as_deref().filter(|t| *t != "Automatic") {
        body["scheduler"] = json!(schedule);
    }
    for (key, v) in [
        ("s_churn", p.s_churn),
        ("s_tmin", p.s_tmin),
        ("s_tmax", p.s_tmax),
        ("s_noise", p.s_noise),
    ] {
        if let Some(v) = v {
            body[key] = json!(v);
        }
    }
    let mut overrides = Map::new();
    overrides.insert("CLIP_stop_at_last_layers".into(), json!(s.clip_skip));
    overrides.insert("eta_noise_seed_delta".into(), json!(s.ensd));
    overrides.insert("randn_source".into(), json!(s.rng.a1111_name()));
    overrides.insert("emphasis".into(), json!(s.emphasis.a1111_name()));
    overrides.insert("sd_vae_decode_method".into(), json!(s.vae_decoder.label()));
    overrides.insert("sd_vae_encode_method".into(), json!(s.vae_encoder.label()));
    if !checkpoint.is_empty() {
        overrides.insert("sd_model_checkpoint".into(), json!(checkpoint));
    }
    for (key, v) in [
        ("eta_ancestral", p.eta),
        ("eta_ddim", p.eta_ddim),
        ("sigma_min", p.schedule_sigma_min),
        ("sigma_max", p.schedule_sigma_max),
        ("rho", p.schedule_rho),
        ("beta_dist_alpha", p.beta_alpha),
        ("beta_dist_beta", p.beta_beta),
    ] {
        if let Some(v) = v {
            overrides.insert(key.into(), json!(v));
        }
    }
    body["override_settings"] = Value::Object(overrides);
    match images {
        Some(img) => {
            body["init_images"] = json!([img.init_image]);
            body["resize_mode"] = json!(s.resize_mode);
            if let Some(mask) = &img.mask {
                body["mask"] = json!(mask);
                body["mask_blur"] = json!(s.mask_blur);
                body["inpainting_fill"] = json!(s.inpainting_fill);
                body["inpaint_full_res"] = json!(s.inpaint_full_res);
                body["inpaint_full_res_padding"] = json!(s.inpaint_full_res_padding);
                body["inpainting_mask_invert"] = json!(u32::from(s.inpainting_mask_invert));
            }
        }
        None if s.enable_hr => {
            body["enable_hr"] = json!(true);
            body["hr_scale"] = json!(s.hr_scale);
            body["hr_upscaler"] = json!(s.hr_upscaler);
            body["hr_second_pass_steps"] = json!(s.hr_second_pass_steps);
            body["hr_resize_x"] = json!(s.hr_resize_x);
            body["hr_resize_y"] = json!(s.hr_resize_y);
            for (key, v) in [
                ("hr_sampler_name", s.hr_sampler.as_str()),
                ("hr_scheduler", s.hr_schedule_type.as_deref().unwrap_or("")),
                ("hr_prompt", s.hr_prompt.as_str()),
                ("hr_negative_prompt", s.hr_negative_prompt.as_str()),
            ] {
                if !v.is_empty() {
                    body[key] = json!(v);
                }
            }
        }
        None => {}
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Field names and values as A1111's API models (`StableDiffusionTxt2ImgProcessingAPI`,
    /// its settings' keys `CLIP_stop_at_last_layers`, `eta_noise_seed_delta`, `randn_source`)
    /// spell them.
    #[test]
    fn settings_map_to_a1111_fields() {
        let s = GenerationSettings::from_json(
            r#"{"prompt":"a cat","negative_prompt":"dog","sampler":"Euler a","schedule_type":"Karras",
               "steps":3,"cfg_scale":9,"seed":31,"width":64,"height":96,"batch_size":2,"batch_count":3,
               "clip_skip":2,"rng":"cpu","ensd":31337,"emphasis":"No norm",
               "sampler_params":{"eta":0.5,"s_churn":0.1},"enable_hr":true,"hr_scale":1.5}"#,
        )
        .unwrap();
        let b = request_body(&s, "tiny", None);
        assert_eq!(b["sampler_name"], "Euler a");
        assert_eq!(b["scheduler"], "Karras");
        assert_eq!(
            (b["n_iter"].as_u64(), b["batch_size"].as_u64()),
            (Some(3), Some(2))
        );
        assert_eq!(b["s_churn"].as_f64().map(|v| (v * 10.0).round()), Some(1.0));
        let o = &b["override_settings"];
        assert_eq!(o["CLIP_stop_at_last_layers"], 2);
        assert_eq!(o["eta_noise_seed_delta"], 31337);
        assert_eq!(o["randn_source"], "CPU");
        assert_eq!(o["emphasis"], "No norm");
        assert_eq!(o["eta_ancestral"], 0.5);
        assert_eq!(o["sd_model_checkpoint"], "tiny");
        assert_eq!(b["enable_hr"], true);
        assert_eq!(b["hr_scale"], 1.5);
        assert!(
            b.get("hr_sampler_name").is_none(),
            "blank = the first pass's"
        );
        let img = ImageInputs {
            init_image: "AAAA".into(),
            mask: Some("BBBB".into()),
        };
        let b = request_body(&s, "", Some(&img));
        assert_eq!(b["init_images"][0], "AAAA");
        assert_eq!(b["mask"], "BBBB");
        assert!(b.get("enable_hr").is_none(), "hires fix is txt2img's");
        assert!(b["override_settings"].get("sd_model_checkpoint").is_none());
    }
}

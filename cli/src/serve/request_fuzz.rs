//! The API's request parsing under the mutation fuzzer (issue 16): every body a client can
//! send goes through what the handlers run before a job is queued — JSON decoding into each
//! endpoint's request type, the settings and per-request limits, img2img's base64 images and
//! mask, and png-info's PNG and infotext reading. Each input must end in an answer (`Ok` or
//! an `ApiError`) within the fuzzer's time and memory bounds. Seeds: the committed hostile
//! bodies (`tests/fixtures/hostile/api/`) and valid requests of every endpoint.

use super::api_types::{ExtrasSingleImageRequest, Img2ImgFields, Txt2ImgRequest};
use super::img2img::img2img_inputs;
use super::limits::RequestLimits;
use super::routes::{parse_body, png_info_of};
use super::txt2img::{settings_for, Endpoint};
use crate::generate::{sampler_registry, scheduler_registry};
use axum::body::Bytes;
use base64::Engine;
use easel_core::service::GenerationSettings;
use easel_tests::fuzz::{corpus, fuzz, CountingAlloc};
use serde_json::json;

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

fn b64_png(w: u32, h: u32, text: Option<&str>) -> String {
    let rgb = vec![90u8; (w * h * 3) as usize];
    let png = easel_core::infotext::encode_png(w, h, &rgb, text).unwrap();
    base64::engine::general_purpose::STANDARD.encode(png)
}

#[test]
fn fuzz_api_requests() {
    let models = easel_tests::models_dir();
    let (samplers, schedulers) = (sampler_registry(), scheduler_registry());
    let limits = RequestLimits::default();
    let image = b64_png(
        8,
        8,
        Some("a cat\nSteps: 2, Sampler: Euler, Seed: 1, Size: 8x8"),
    );
    let mut seeds = corpus("api");
    for body in [
        json!({"prompt": "a (red:1.2) fox [a:b:0.5] <hypernet:tiny-nai:0.5>", "steps": 3,
               "width": 64, "height": 64, "sampler_name": "Euler a", "scheduler": "Karras",
               "enable_hr": true, "hr_scale": 2, "override_settings": {"CLIP_stop_at_last_layers": 2}}),
        json!({"init_images": [image], "mask": image, "denoising_strength": 0.5,
               "resize_mode": 1, "inpainting_fill": 1, "steps": 2, "width": 64, "height": 64}),
        json!({"image": image}),
        json!({"image": image, "upscaling_resize": 2, "upscaler_1": "Lanczos"}),
    ] {
        seeds.push(body.to_string().into_bytes());
    }
    fuzz("api", seeds, |b| {
        let body = Bytes::copy_from_slice(b);
        if let Ok(req) = parse_body::<Txt2ImgRequest>(&body) {
            for endpoint in [Endpoint::Txt2Img, Endpoint::Img2Img] {
                let base = GenerationSettings::default();
                if let Ok((mut s, mut warnings)) =
                    settings_for(endpoint, &req, base, &models, &samplers, &schedulers)
                {
                    let _ = limits.check(&s);
                    if let (Endpoint::Img2Img, Ok(fields)) =
                        (endpoint, parse_body::<Img2ImgFields>(&body))
                    {
                        let _ = img2img_inputs(&fields, &mut s, &mut warnings);
                    }
                }
            }
        }
        let _ = parse_body::<ExtrasSingleImageRequest>(&body);
        let _ = png_info_of(&body);
    });
}

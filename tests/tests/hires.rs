//! Hires fix and latent resizing against `tests/fixtures/img2img/make_img2img_fixtures.py`:
//! torch's `F.interpolate` for every A1111 latent upscaler (antialiased ones included), and
//! A1111's two-pass flow (k-diffusion first pass, latent enlarge and crop, img2img pass with
//! explicit steps, fresh per-image noise) on the tiny model.

use easel_candle::CandleBackend;
use easel_core::pipeline::latent_upscale::interpolate;
use easel_core::pipeline::{
    txt2img_hires, CancelToken, HiresParams, HiresUpscaler, LatentUpscaleMode, PromptOptions,
    Txt2ImgParams,
};
use easel_core::sampler::block_on;
use easel_tests::{
    img2img_cases, img2img_golden, max_abs_diff, max_rel_diff, tiny_model, txt2img_params_of,
};
use serde_json::Value;

fn dims(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn latent_upscalers_match_torch_interpolate() {
    let store = img2img_golden("latent_upscale.safetensors");
    for case in img2img_cases("latent_upscale.json") {
        let name = case["name"].as_str().unwrap();
        let shape = dims(&case["shape"]);
        let out = dims(&case["out"]);
        let mode = LatentUpscaleMode::from_a1111_name(case["mode"].as_str().unwrap()).unwrap();
        let x = store.read_f32(case["input"].as_str().unwrap()).unwrap();
        let got = interpolate(
            &x,
            [shape[0], shape[1], shape[2], shape[3]],
            out[0],
            out[1],
            mode,
        )
        .unwrap();
        let want = store.read_f32(name).unwrap();
        let diff = max_abs_diff(&got, &want);
        // Observed up to 2.2e-6 (f32 rounding of the interpolation weights).
        assert!(diff < 1e-5, "{name}: max difference {diff}");
    }
}

fn params_of(case: &Value) -> (Txt2ImgParams, HiresParams) {
    let base = txt2img_params_of(case);
    let text = |k: &str| {
        case.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let hires = HiresParams {
        upscaler_name: text("hr_upscaler"),
        scale: case["hr_scale"].as_f64().unwrap(),
        resize_x: case["hr_resize_x"].as_u64().unwrap() as usize,
        resize_y: case["hr_resize_y"].as_u64().unwrap() as usize,
        second_pass_steps: case["hr_second_pass_steps"].as_u64().unwrap() as usize,
        denoising_strength: case["hr_denoising_strength"].as_f64().unwrap(),
        sampler: case
            .get("hr_sampler")
            .and_then(Value::as_str)
            .map(|s| easel_tests::sampler_and_schedule(s, None)),
        prompt: text("hr_prompt"),
        negative_prompt: text("hr_negative"),
    };
    (base, hires)
}

#[test]
fn hires_fix_with_latent_upscalers_matches_a1111() {
    let b = CandleBackend::cpu();
    let model = tiny_model();
    let store = img2img_golden("hires.safetensors");
    for case in img2img_cases("hires.json") {
        let name = case["name"].as_str().unwrap();
        let (base, hires) = params_of(&case);
        let mode = LatentUpscaleMode::from_a1111_name(&hires.upscaler_name).unwrap();
        let images = block_on(txt2img_hires(
            &b,
            &model,
            &base,
            &hires,
            HiresUpscaler::Latent(mode),
            &PromptOptions::default(),
            Vec::new(),
            &mut |_, _, _| {},
            &CancelToken::new(),
        ))
        .unwrap();
        let got: Vec<f32> = images.iter().flat_map(|i| i.latent.clone()).collect();
        let want = store.read_f32(&format!("{name}.latent")).unwrap();
        let rel = max_rel_diff(&got, &want);
        eprintln!("{name}: latent relative difference {rel}");
        assert!(rel < 1e-4, "{name}: latent relative difference {rel}");
        let (_, want) = store.read_raw(&format!("{name}.pixels")).unwrap();
        let pixels: Vec<u8> = images.iter().flat_map(|i| i.rgb.iter().copied()).collect();
        assert_eq!(pixels.len(), want.len(), "{name}: pixel count");
        let max = pixels
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .max()
            .unwrap_or(0);
        assert!(max <= 1, "{name}: max pixel difference {max}");
    }
}

#[test]
fn absurd_hires_settings_are_refused() {
    let (base, mut hires) = params_of(&img2img_cases("hires.json")[0]);
    hires.denoising_strength = 2.0;
    let err = hires.validate(&base).unwrap_err().to_string();
    assert!(err.contains("hires denoising strength"), "{err}");
    hires.denoising_strength = 0.5;
    hires.scale = 1000.0;
    let err = hires.validate(&base).unwrap_err().to_string();
    assert!(err.contains("hires size"), "{err}");
    hires.scale = f64::NAN;
    let err = hires.validate(&base).unwrap_err().to_string();
    assert!(err.contains("hires scale"), "{err}");
}

//! img2img on the tiny model against A1111's flow run by
//! `tests/fixtures/img2img/make_img2img_fixtures.py` (diffusers VAE encode at the posterior
//! mean, A1111's step slicing, k-diffusion Euler / Euler a and A1111's DDIM over the
//! diffusers UNet, A1111's noise from both generators).

use easel_candle::CandleBackend;
use easel_core::pipeline::{
    encode_rgb8, img2img_cancellable, CancelToken, Img2ImgParams, PromptOptions,
};
use easel_core::sampler::block_on;
use easel_tests::{img2img_cases, img2img_golden, max_rel_diff, tiny_model, txt2img_params_of};
use serde_json::Value;

fn params_of(case: &Value) -> Img2ImgParams {
    Img2ImgParams {
        base: txt2img_params_of(case),
        denoising_strength: case["strength"].as_f64().unwrap(),
    }
}

#[test]
fn vae_encode_of_the_init_image_matches_diffusers() {
    let b = CandleBackend::cpu();
    let model = tiny_model();
    let store = img2img_golden("img2img.safetensors");
    let case = &img2img_cases("img2img.json")[0];
    let name = case["name"].as_str().unwrap();
    let (_, init) = store.read_raw(&format!("{name}.init")).unwrap();
    let (w, h) = (64, 64);
    let got = block_on(encode_rgb8(&b, &model, &init, w, h)).unwrap();
    let want = store.read_f32(&format!("{name}.init_latent")).unwrap();
    let rel = max_rel_diff(&got, &want);
    assert!(rel < 1e-5, "init latent: relative difference {rel}");
}

#[test]
fn img2img_latents_and_pixels_match_a1111() {
    let b = CandleBackend::cpu();
    let model = tiny_model();
    let store = img2img_golden("img2img.safetensors");
    for case in img2img_cases("img2img.json") {
        let name = case["name"].as_str().unwrap();
        let params = params_of(&case);
        let (w, h) = (params.base.width, params.base.height);
        let (_, init) = store.read_raw(&format!("{name}.init")).unwrap();
        let latent = block_on(encode_rgb8(&b, &model, &init, w, h)).unwrap();
        let images = block_on(img2img_cancellable(
            &b,
            &model,
            &params,
            &[latent],
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
        let pixels: Vec<u8> = images.iter().flat_map(|i| i.rgb.iter().copied()).collect();
        let (_, want) = store.read_raw(&format!("{name}.pixels")).unwrap();
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
fn bad_img2img_settings_name_the_problem() {
    let b = CandleBackend::cpu();
    let model = tiny_model();
    let mut params = params_of(&img2img_cases("img2img.json")[0]);
    let latent = vec![0.0; 4 * 8 * 8];
    let run = |p: &Img2ImgParams, init: &[Vec<f32>]| {
        block_on(img2img_cancellable(
            &b,
            &model,
            p,
            init,
            &PromptOptions::default(),
            Vec::new(),
            &mut |_, _, _| {},
            &CancelToken::new(),
        ))
        .err()
        .unwrap()
        .to_string()
    };
    params.denoising_strength = 1.5;
    let err = run(&params, std::slice::from_ref(&latent));
    assert!(
        err.contains("denoising strength") && err.contains("1.5"),
        "{err}"
    );
    params.denoising_strength = 0.5;
    let err = run(&params, &[vec![0.0; 4 * 8 * 12]]);
    assert!(err.contains("init latent"), "{err}");
    let err = run(&params, &[]);
    assert!(err.contains("init images"), "{err}");
}

//! Inpainting at the latent level against A1111's flow run by
//! `tests/fixtures/img2img/make_img2img_fixtures.py`: the latent mask (PIL bicubic +
//! round), the latent fills, the per-step blend (after CFG for k-diffusion samplers,
//! before the model for DDIM), the final blend, and a 9-channel inpainting UNet with
//! A1111's image conditioning (img2img with and without a mask, and txt2img).
//!
//! The inpainting checkpoint is assembled here from the committed tiny model and the
//! fixture's 9-channel UNet (kept separate so the fixture stays small).

use easel_candle::CandleBackend;
use easel_core::formats::{open_tensor_store, DType, TensorStore};
use easel_core::model::{checkpoint_files, StableDiffusion, VaeChoice};
use easel_core::pipeline::{
    img2img_inpaint, txt2img, CancelToken, Img2ImgInputs, Img2ImgParams, InitImage, InpaintMask,
    MaskedContent, PromptOptions,
};
use easel_core::sampler::block_on;
use easel_tests::{
    fixtures_dir, img2img_cases, img2img_golden, max_rel_diff, models_dir, tiny_model,
    txt2img_params_of,
};
use std::path::PathBuf;

/// A models folder holding `tiny-inpaint.safetensors` (tiny.ckpt with its UNet replaced
/// by the 9-channel one) and tiny.vae.pt as its sidecar VAE.
fn inpaint_models_dir() -> PathBuf {
    // Built once per test process: tests run in parallel and must not read the folder while
    // another writes it.
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(build_inpaint_models_dir).clone()
}

fn build_inpaint_models_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("easel-inpaint-{}", std::process::id()));
    let sd = dir.join("Stable-diffusion");
    std::fs::create_dir_all(&sd).unwrap();
    let ckpt = sd.join("tiny-inpaint.safetensors");
    if !ckpt.exists() {
        let src = models_dir().join("Stable-diffusion");
        let base = open_tensor_store(&src.join("tiny.ckpt")).unwrap();
        let unet = open_tensor_store(&fixtures_dir().join("img2img/tiny-inpaint-unet.safetensors"))
            .unwrap();
        let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
        for store in [&base, &unet] {
            let from_unet = std::ptr::eq(store, &unet);
            for key in store.keys() {
                if key.starts_with("model.diffusion_model.") != from_unet {
                    continue;
                }
                let info = store.info(key).unwrap();
                if !matches!(
                    info.dtype,
                    DType::F32 | DType::F16 | DType::BF16 | DType::F64
                ) {
                    continue;
                }
                tensors.push((
                    key.to_string(),
                    info.shape.clone(),
                    store.read_f32(key).unwrap(),
                ));
            }
        }
        let refs: Vec<(&str, &[usize], &[f32])> = tensors
            .iter()
            .map(|(k, s, v)| (k.as_str(), s.as_slice(), v.as_slice()))
            .collect();
        easel_core::formats::safetensors::write_f32(&ckpt, &refs, &Default::default()).unwrap();
        std::fs::copy(src.join("tiny.vae.pt"), sd.join("tiny-inpaint.vae.pt")).unwrap();
    }
    dir
}

fn inpaint_model() -> StableDiffusion<CandleBackend> {
    let dir = inpaint_models_dir();
    let path = dir
        .join("Stable-diffusion")
        .join("tiny-inpaint.safetensors");
    let files = checkpoint_files(&dir, &path, &VaeChoice::Auto).unwrap();
    StableDiffusion::load(&CandleBackend::cpu(), &files).unwrap()
}

fn compare(name: &str, store: &TensorStore, latent: &[f32], pixels: &[u8]) {
    let want = store.read_f32(&format!("{name}.latent")).unwrap();
    let rel = max_rel_diff(latent, &want);
    eprintln!("{name}: latent relative difference {rel}");
    assert!(rel < 1e-4, "{name}: latent relative difference {rel}");
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

#[test]
fn inpainting_matches_a1111_on_regular_and_inpainting_models() {
    let b = CandleBackend::cpu();
    let store = img2img_golden("inpaint.safetensors");
    let regular = tiny_model();
    let inpainting = inpaint_model();
    for case in img2img_cases("inpaint.json") {
        if case.get("strength").is_none() {
            continue; // the txt2img case
        }
        let name = case["name"].as_str().unwrap();
        let base = txt2img_params_of(&case);
        let (w, h) = (base.width, base.height);
        let (_, rgb) = store.read_raw(&format!("{name}.init")).unwrap();
        let mask = case["mask"].as_bool().unwrap().then(|| InpaintMask {
            image_mask: store.read_raw(&format!("{name}.mask")).unwrap().1,
            latent_nmask: store.read_f32(&format!("{name}.nmask")).unwrap(),
            fill: MaskedContent::from_index(case["fill"].as_u64().unwrap() as u32).unwrap(),
        });
        let params = Img2ImgParams {
            denoising_strength: case["strength"].as_f64().unwrap(),
            base,
        };
        let images = [InitImage {
            width: w,
            height: h,
            rgb,
        }];
        let inputs = Img2ImgInputs {
            images: &images,
            latent_resize: false,
            mask: mask.as_ref(),
            inpainting_mask_weight: 1.0,
            first_seed: params.base.seed,
        };
        let model = if case["model"] == "inpaint" {
            &inpainting
        } else {
            &regular
        };
        let out = block_on(img2img_inpaint(
            &b,
            model,
            &params,
            &inputs,
            &PromptOptions::default(),
            Vec::new(),
            &mut |_, _, _| {},
            &CancelToken::new(),
        ))
        .unwrap();
        let latent: Vec<f32> = out.iter().flat_map(|i| i.latent.clone()).collect();
        let pixels: Vec<u8> = out.iter().flat_map(|i| i.rgb.clone()).collect();
        compare(name, &store, &latent, &pixels);
    }
}

#[test]
fn txt2img_on_an_inpainting_model_matches_a1111() {
    let b = CandleBackend::cpu();
    let store = img2img_golden("inpaint.safetensors");
    let model = inpaint_model();
    assert_eq!(model.config.unet.in_channels, 9);
    let case = img2img_cases("inpaint.json")
        .into_iter()
        .find(|c| c["name"] == "inpaint_model_txt2img")
        .unwrap();
    let params = txt2img_params_of(&case);
    let out = block_on(txt2img(&b, &model, &params, Vec::new(), &mut |_, _, _| {})).unwrap();
    let latent: Vec<f32> = out.iter().flat_map(|i| i.latent.clone()).collect();
    let pixels: Vec<u8> = out.iter().flat_map(|i| i.rgb.clone()).collect();
    compare("inpaint_model_txt2img", &store, &latent, &pixels);
}

#[test]
fn wrong_sized_inputs_name_the_problem() {
    let b = CandleBackend::cpu();
    let model = tiny_model();
    let case = &img2img_cases("inpaint.json")[0];
    let params = Img2ImgParams {
        base: txt2img_params_of(case),
        denoising_strength: 0.5,
    };
    let run = |inputs: &Img2ImgInputs| {
        block_on(img2img_inpaint(
            &b,
            &model,
            &params,
            inputs,
            &PromptOptions::default(),
            Vec::new(),
            &mut |_, _, _| {},
            &CancelToken::new(),
        ))
        .err()
        .unwrap()
        .to_string()
    };
    let images = [InitImage {
        width: 32,
        height: 64,
        rgb: vec![0; 32 * 64 * 3],
    }];
    let mut inputs = Img2ImgInputs {
        images: &images,
        latent_resize: false,
        mask: None,
        inpainting_mask_weight: 1.0,
        first_seed: 0,
    };
    let err = run(&inputs);
    assert!(err.contains("32x64") && err.contains("64x64"), "{err}");
    let good = [InitImage {
        width: 64,
        height: 64,
        rgb: vec![0; 64 * 64 * 3],
    }];
    let mask = InpaintMask {
        image_mask: vec![0; 64 * 64],
        latent_nmask: vec![0.0; 12],
        fill: MaskedContent::Original,
    };
    inputs.images = &good;
    inputs.mask = Some(&mask);
    let err = run(&inputs);
    assert!(err.contains("latent mask"), "{err}");
}

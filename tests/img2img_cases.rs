//! The cases in `tests/fixtures/img2img/` (written by `make_img2img_fixtures.py`) read into
//! the pipeline's types, shared by the img2img, hires fix and inpainting tests.

use crate::{fixtures_dir, models_dir, sampler_and_schedule};
use easel_candle::CandleBackend;
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::model::{checkpoint_files, StableDiffusion, VaeChoice};
use easel_core::noise::RngKind;
use easel_core::pipeline::Txt2ImgParams;
use serde_json::Value;

/// `tiny.ckpt` with its sidecar VAE, on the CPU.
pub fn tiny_model() -> StableDiffusion<CandleBackend> {
    let path = models_dir().join("Stable-diffusion").join("tiny.ckpt");
    let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Auto).unwrap();
    StableDiffusion::load(&CandleBackend::cpu(), &files).unwrap()
}

/// The JSON case list `tests/fixtures/img2img/<file>`.
pub fn img2img_cases(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures_dir().join("img2img").join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The reference tensors `tests/fixtures/img2img/<file>`.
pub fn img2img_golden(file: &str) -> TensorStore {
    open_tensor_store(&fixtures_dir().join("img2img").join(file)).unwrap()
}

/// A case's sampling settings (clip skip 1, no ENSD, default noise device).
pub fn txt2img_params_of(case: &Value) -> Txt2ImgParams {
    let rng = match case["rng"].as_str().unwrap() {
        "gpu" => RngKind::Gpu,
        "cpu" => RngKind::Cpu,
        other => panic!("rng {other}"),
    };
    let (sampler, scheduler) = sampler_and_schedule(case["sampler"].as_str().unwrap(), None);
    Txt2ImgParams {
        downcast_alphas_cumprod: false,
        vae_decoder: Default::default(),
        vae_encoder: Default::default(),
        vae_tiling: false,
        prompt: case["prompt"].as_str().unwrap().to_string(),
        negative_prompt: case["negative"].as_str().unwrap().to_string(),
        steps: case["steps"].as_u64().unwrap() as usize,
        cfg_scale: case["cfg"].as_f64().unwrap() as f32,
        seed: case["seed"].as_u64().unwrap(),
        width: case["width"].as_u64().unwrap() as usize,
        height: case["height"].as_u64().unwrap() as usize,
        batch_size: case["batch_size"].as_u64().unwrap() as usize,
        clip_skip: 1,
        rng,
        noise_device: Default::default(),
        ensd: 0,
        sampler,
        scheduler,
    }
}

//! The tiny model's networks and their golden outputs, shared by the tests that run the
//! networks against the reference stack's results (`tests/tests/networks.rs` with the CPU
//! kernels, `tests/tests/composed_ops.rs` with the compositions other devices run).

use crate::{golden_path, max_rel_diff, models_dir};
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::nn::{
    infer_clip_config, AttentionHook, AutoencoderKl, ClipTextEncoder, UNet, UNetConfig, VaeConfig,
    Weights,
};
use easel_core::Backend;

/// Text encoder hidden states (4 layers): observed 5e-7 with the CPU kernels.
pub const TEXT_TOL: f32 = 5e-6;
/// UNet eps (22 res blocks, 7 transformers): observed 1.6e-6 with the CPU kernels.
pub const UNET_TOL: f32 = 2e-5;
/// VAE decode and encode: observed 2.6e-6 with the CPU kernels.
pub const VAE_TOL: f32 = 2e-5;

/// A checkpoint of the tiny model in `models/Stable-diffusion`.
pub fn model(name: &str) -> TensorStore {
    open_tensor_store(&models_dir().join("Stable-diffusion").join(name)).unwrap()
}

/// A golden file.
pub fn golden(name: &str) -> TensorStore {
    open_tensor_store(&golden_path(name)).unwrap()
}

/// f32 data and shape of a golden tensor.
pub fn tensor(store: &TensorStore, key: &str) -> (Vec<f32>, Vec<usize>) {
    let shape = store.info(key).unwrap().shape.clone();
    (store.read_f32(key).unwrap(), shape)
}

/// Asserts the largest difference relative to the reference's largest magnitude is below
/// `tol`, printing it.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let rel = max_rel_diff(got, want);
    println!("{what}: max relative difference {rel:e}");
    assert!(rel < tol, "{what}: max relative difference {rel} > {tol}");
}

/// Token ids of a one-chunk prompt as A1111 builds them, from `prompt_chunks.json`.
pub fn chunk_tokens(prompt: &str) -> Vec<u32> {
    let text = std::fs::read_to_string(golden_path("prompt_chunks.json")).unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    let case = cases
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["prompt"] == prompt)
        .unwrap_or_else(|| panic!("prompt {prompt:?} not in prompt_chunks.json"));
    let chunks = case["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 1);
    for m in chunks[0]["multipliers"].as_array().unwrap() {
        assert_eq!(
            m.as_f64(),
            Some(1.0),
            "raw encoder test needs a prompt without emphasis"
        );
    }
    chunks[0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

/// The tiny model's UNet.
pub fn tiny_unet_config() -> UNetConfig {
    UNetConfig {
        model_channels: 32,
        attention_resolutions: vec![4, 2, 1],
        channel_mult: vec![1, 1, 2, 2],
        context_dim: 128,
        ..UNetConfig::sd15()
    }
}

/// The tiny model's VAE.
pub fn tiny_vae_config() -> VaeConfig {
    VaeConfig {
        ch: 32,
        ch_mult: vec![1, 2, 2, 2],
        ..VaeConfig::sd15()
    }
}

/// The UNet's output on the golden case (`unet.safetensors`: latent `x`, timesteps `t`,
/// `context`), with `hooks`; its shape is checked against the latent's.
pub fn run_unet_case<B: Backend>(
    b: &B,
    unet: &UNet<B>,
    hooks: &[&dyn AttentionHook<B>],
) -> Vec<f32> {
    let g = golden("unet.safetensors");
    let (x, xs) = tensor(&g, "x");
    let (t, _) = tensor(&g, "t");
    let (ctx, cs) = tensor(&g, "context");
    let x = b.upload(&x, &xs).unwrap();
    let ctx = b.upload(&ctx, &cs).unwrap();
    let eps = unet.forward(b, &x, &t, &ctx, hooks).unwrap();
    assert_eq!(b.shape(&eps), xs);
    b.download(&eps).unwrap()
}

/// The tiny model's text encoder, from `tiny.ckpt`.
pub fn tiny_text_encoder<B: Backend>(b: &B) -> ClipTextEncoder<B> {
    let store = model("tiny.ckpt");
    let w = Weights::new(&store, "cond_stage_model.transformer.text_model");
    ClipTextEncoder::load(b, &w, &infer_clip_config(&w).unwrap()).unwrap()
}

/// The encoder's hidden states for each `(golden key, prompt, clip skip)` of
/// `text.safetensors` (prompts without emphasis, one chunk: the raw encoder's output).
pub fn assert_text_cases<B: Backend>(
    b: &B,
    clip: &ClipTextEncoder<B>,
    cases: &[(&str, &str, usize)],
    tol: f32,
) {
    let text = golden("text.safetensors");
    for &(case, prompt, skip) in cases {
        let z = clip.forward(b, &chunk_tokens(prompt), skip).unwrap();
        let (want, shape) = tensor(&text, case);
        assert_eq!(b.shape(&z), shape, "{case}");
        assert_close(case, &b.download(&z).unwrap(), &want, tol);
    }
}

/// The tiny model's UNet, from `tiny.ckpt`.
pub fn tiny_unet<B: Backend>(b: &B) -> UNet<B> {
    let store = model("tiny.ckpt");
    UNet::load(
        b,
        &Weights::new(&store, "model.diffusion_model"),
        &tiny_unet_config(),
    )
    .unwrap()
}

/// The tiny model's VAE, from `tiny.ckpt`.
pub fn tiny_vae<B: Backend>(b: &B) -> AutoencoderKl<B> {
    let store = model("tiny.ckpt");
    AutoencoderKl::load(
        b,
        &Weights::new(&store, "first_stage_model"),
        &tiny_vae_config(),
    )
    .unwrap()
}

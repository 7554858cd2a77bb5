//! The three networks on the candle backend against the golden outputs of the reference
//! stack (diffusers/transformers, f32, one torch thread) for the tiny model. Weights are
//! fp16-representable, so both sides use identical f32 weights; what differs is summation
//! order and the backend's exp/erf approximations. Tolerances are relative to the largest
//! magnitude of the reference tensor.

use easel_candle::CandleBackend;
use easel_core::formats::TensorStore;
use easel_core::nn::{
    infer_clip_config, infer_unet_config, infer_vae_config, AutoencoderKl, ClipConfig, UNet,
    UNetConfig, Weights,
};
use easel_core::Backend;
use easel_tests::max_rel_diff;
use easel_tests::tiny_networks::{
    assert_close, assert_text_cases, golden, model, run_unet_case, tensor, tiny_text_encoder,
    tiny_unet, tiny_unet_config, tiny_vae, tiny_vae_config, TEXT_TOL, UNET_TOL, VAE_TOL,
};
use std::sync::Arc;

#[test]
fn clip_config_is_inferred_from_shapes() {
    let store = model("tiny.ckpt");
    let w = Weights::new(&store, "cond_stage_model.transformer.text_model");
    let cfg = infer_clip_config(&w).unwrap();
    assert_eq!(
        cfg,
        ClipConfig {
            vocab_size: 49408,
            hidden: 128,
            layers: 4,
            heads: 2,
            intermediate: 512,
            max_positions: 77,
        }
    );
}

#[test]
fn clip_text_encoder_matches_golden() {
    let b = CandleBackend::cpu();
    let clip = tiny_text_encoder(&b);
    let cases = [
        ("plain_skip1", "a photo of a cat", 1),
        ("plain_skip2", "a photo of a cat", 2),
        ("plain_skip3", "a photo of a cat", 3),
        ("empty_skip1", "", 1),
        ("empty_skip2", "", 2),
    ];
    assert_text_cases(&b, &clip, &cases, TEXT_TOL);
    // Bad input is an error.
    assert!(clip.forward(&b, &[], 1).is_err());
    assert!(clip.forward(&b, &[49408], 1).is_err());
    assert!(clip.forward(&b, &[1; 78], 1).is_err());
    assert!(clip.forward(&b, &[1; 77], 6).is_err());
}

#[test]
fn unet_config_is_inferred_from_shapes() {
    let store = model("tiny-st.safetensors");
    let cfg = infer_unet_config(&Weights::new(&store, "model.diffusion_model")).unwrap();
    assert_eq!(
        cfg,
        UNetConfig {
            in_channels: 4,
            out_channels: 4,
            model_channels: 32,
            attention_resolutions: vec![1, 2, 4],
            num_res_blocks: 2,
            channel_mult: vec![1, 1, 2, 2],
            num_heads: 8,
            num_head_channels: None,
            transformer_depth: 1,
            context_dim: 128,
            use_linear_in_transformer: false,
        }
    );
}

fn run_unet(store: &TensorStore, w: &Weights, b: &CandleBackend) -> Vec<f32> {
    let _ = store;
    run_unet_case(b, &UNet::load(b, w, &tiny_unet_config()).unwrap(), &[])
}

#[test]
fn unet_matches_golden_eps() {
    let b = CandleBackend::cpu();
    let g = golden("unet.safetensors");
    let store = model("tiny.ckpt");
    let eps = run_unet(&store, &Weights::new(&store, "model.diffusion_model"), &b);
    assert_close("eps (tiny.ckpt)", &eps, &tensor(&g, "eps").0, UNET_TOL);

    // The same with a small attention block budget, so every attention runs chunked.
    let chunked = CandleBackend::cpu().with_attention_block_bytes(4096);
    let eps = run_unet(
        &store,
        &Weights::new(&store, "model.diffusion_model"),
        &chunked,
    );
    assert_close(
        "eps (chunked attention)",
        &eps,
        &tensor(&g, "eps").0,
        UNET_TOL,
    );
}

/// With `Precision::Bf16` (operands rounded to bf16, f32 sums, activations kept in f32;
/// on a CPU without bf16 arithmetic only the weights rounded: 7.2e-3 RMS on Zen 1) the UNet
/// stays at least as close to the f32 reference as PyTorch's own bf16 inference
/// (CPU autocast, `eps_torch_bf16` in the golden file), and measurably away from f32.
/// "Close" is the root mean square of the difference over the reference's: the largest
/// single difference among the 768 outputs moves by about a tenth with nothing but the
/// order of the f32 sums (the GEMM's block depth: 1.15e-2 with 256-deep blocks, 1.24e-2
/// with 512, against PyTorch's 1.19e-2), while the RMS stays put (0.75–0.79 of PyTorch's).
#[test]
fn unet_in_bf16_is_no_further_from_f32_than_torch_bf16() {
    let b = easel_tests::bf16_backend();
    let g = golden("unet.safetensors");
    let store = model("tiny.ckpt");
    let eps = run_unet(&store, &Weights::new(&store, "model.diffusion_model"), &b);
    let reference = tensor(&g, "eps").0;
    let torch_bf16 = tensor(&g, "eps_torch_bf16").0;
    let rms = |v: &[f64]| (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
    let scale = rms(&reference.iter().map(|&r| r as f64).collect::<Vec<_>>());
    let deviation = |a: &[f32]| {
        let diff: Vec<f64> = a
            .iter()
            .zip(&reference)
            .map(|(&x, &r)| (x - r) as f64)
            .collect();
        rms(&diff) / scale
    };
    let (ours, torch) = (deviation(&eps), deviation(&torch_bf16));
    eprintln!(
        "UNet bf16 RMS deviation from f32: Easel {ours:.2e}, PyTorch autocast {torch:.2e} \
         (largest: Easel {:.2e}, PyTorch {:.2e})",
        max_rel_diff(&eps, &reference),
        max_rel_diff(&torch_bf16, &reference)
    );
    assert!(ours <= torch, "Easel {ours} vs PyTorch {torch}");
    assert!(ours > 1e-4, "{ours}: bf16 products not used?");
}

#[test]
fn unet_loads_training_and_ema_weights() {
    let b = CandleBackend::cpu();
    let g = golden("unet.safetensors");
    let store = model("tiny-ema.ckpt");
    let eps = run_unet(&store, &Weights::new(&store, "model.diffusion_model"), &b);
    assert_close("eps_train", &eps, &tensor(&g, "eps_train").0, UNET_TOL);
    // EMA names: `model_ema.` + the key without `model.`, dots removed.
    let ema = Weights::new(&store, "model.diffusion_model").with_key_map(Arc::new(|k: &str| {
        format!(
            "model_ema.{}",
            k.trim_start_matches("model.").replace('.', "")
        )
    }));
    let eps = run_unet(&store, &ema, &b);
    assert_close("eps_ema", &eps, &tensor(&g, "eps_ema").0, UNET_TOL);
}

#[test]
fn unet_rejects_bad_inputs() {
    let b = CandleBackend::cpu();
    let unet = tiny_unet(&b);
    let x = b.upload(&vec![0.0; 4 * 8 * 8], &[1, 4, 8, 8]).unwrap();
    let ctx = b.upload(&vec![0.0; 77 * 128], &[1, 77, 128]).unwrap();
    assert!(unet.forward(&b, &x, &[1.0, 2.0], &ctx, &[]).is_err());
    let bad_ctx = b.upload(&vec![0.0; 77 * 64], &[1, 77, 64]).unwrap();
    assert!(unet.forward(&b, &x, &[1.0], &bad_ctx, &[]).is_err());
    // A config that does not match the file names the offending tensor.
    let wrong = UNetConfig {
        model_channels: 64,
        ..tiny_unet_config()
    };
    let store = model("tiny.ckpt");
    let err = UNet::load(&b, &Weights::new(&store, "model.diffusion_model"), &wrong)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.diffusion_model.input_blocks.0.0.weight"),
        "{err}"
    );
}

#[test]
fn vae_config_is_inferred_from_shapes() {
    let store = model("tiny.ckpt");
    let cfg = infer_vae_config(&Weights::new(&store, "first_stage_model")).unwrap();
    assert_eq!(cfg, tiny_vae_config());
    let store = model("tiny.vae.pt");
    assert_eq!(
        infer_vae_config(&Weights::new(&store, "")).unwrap(),
        tiny_vae_config()
    );
}

/// RMS of `a − reference` over the RMS of `reference`.
fn rms_deviation(a: &[f32], reference: &[f32]) -> f64 {
    let rms = |v: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x * x, n + 1));
        (sum / n.max(1) as f64).sqrt()
    };
    let diff = rms(&mut a.iter().zip(reference).map(|(&x, &r)| (x - r) as f64));
    diff / rms(&mut reference.iter().map(|&r| r as f64))
}

/// With bf16 weights the backend keeps the decoder's large activations in bf16 (from 64
/// MiB; here from the first level, the tiny decoder having no large ones), as PyTorch's
/// autocast keeps its convolution outputs: the decode stays at least as close to f32 as
/// PyTorch's own bf16 decode (`decoded_torch_bf16`, CPU autocast) and measurably away
/// from it.
#[test]
fn vae_decode_with_compact_activations_is_no_further_from_f32_than_torch_bf16() {
    let g = golden("vae.safetensors");
    let store = model("tiny.ckpt");
    let decode = |b: &CandleBackend| {
        let (z, zs) = tensor(&g, "z");
        let z = b.upload(&z, &zs).unwrap();
        let weights = Weights::new(&store, "first_stage_model");
        let vae = AutoencoderKl::load(b, &weights, &tiny_vae_config()).unwrap();
        b.download(&vae.decode(b, &z).unwrap()).unwrap()
    };
    let decoded = decode(&easel_tests::bf16_backend().with_compact_from_bytes(0));
    let reference = tensor(&g, "decoded").0;
    let torch_bf16 = tensor(&g, "decoded_torch_bf16").0;
    let (ours, torch) = (
        rms_deviation(&decoded, &reference),
        rms_deviation(&torch_bf16, &reference),
    );
    eprintln!(
        "VAE decode RMS deviation from f32: Easel bf16 {ours:.2e}, PyTorch autocast {torch:.2e}"
    );
    assert!(ours <= torch, "Easel {ours} vs PyTorch {torch}");
    assert!(ours > 1e-4, "{ours}: activations not kept in bf16?");
    // With the default threshold the tiny decoder's activations stay f32: only the
    // weights are bf16, which moves the decode less.
    let weights_only = rms_deviation(&decode(&easel_tests::bf16_backend()), &reference);
    eprintln!("VAE decode RMS deviation from f32 with bf16 weights alone: {weights_only:.2e}");
    assert!(weights_only < ours, "{weights_only} vs {ours}");
}

#[test]
fn vae_matches_golden_decode_and_encode() {
    let b = CandleBackend::cpu();
    let g = golden("vae.safetensors");
    let (z, zs) = tensor(&g, "z");
    let z = b.upload(&z, &zs).unwrap();

    let vae = tiny_vae(&b);
    let decoded = vae.decode(&b, &z).unwrap();
    let (want, ws) = tensor(&g, "decoded");
    assert_eq!(b.shape(&decoded), ws);
    assert_close("decoded", &b.download(&decoded).unwrap(), &want, VAE_TOL);

    let (img, is) = tensor(&g, "image");
    let mean = vae.encode(&b, &b.upload(&img, &is).unwrap()).unwrap();
    let (want, ws) = tensor(&g, "encoded_mean");
    assert_eq!(b.shape(&mean), ws);
    assert_close("encoded_mean", &b.download(&mean).unwrap(), &want, VAE_TOL);

    let store = model("tiny.vae.pt");
    let vae = AutoencoderKl::load(&b, &Weights::new(&store, ""), &tiny_vae_config()).unwrap();
    let decoded = vae.decode(&b, &z).unwrap();
    let (want, _) = tensor(&g, "decoded_override");
    assert_close(
        "decoded_override",
        &b.download(&decoded).unwrap(),
        &want,
        VAE_TOL,
    );
}

/// The synthetic (benchmark) store lists exactly the tensors, with the same shapes, that
/// the reference stack wrote for the tiny model, and loads into all three networks.
#[test]
fn synthetic_weights_have_the_checkpoint_layout() {
    let real = model("tiny-st.safetensors");
    let clip_cfg = infer_clip_config(&Weights::new(
        &real,
        "cond_stage_model.transformer.text_model",
    ))
    .unwrap();
    let synth = easel_core::nn::random_weights(
        Some(&tiny_unet_config()),
        Some(&tiny_vae_config()),
        Some(&clip_cfg),
        1,
    );
    let network_keys = |s: &TensorStore| -> Vec<(String, Vec<usize>)> {
        s.tensors()
            .iter()
            .filter(|(k, _)| {
                !k.ends_with("position_ids")
                    && (k.starts_with("model.diffusion_model.")
                        || k.starts_with("first_stage_model.")
                        || k.starts_with("cond_stage_model."))
            })
            .map(|(k, i)| (k.clone(), i.shape.clone()))
            .collect()
    };
    assert_eq!(network_keys(&synth), network_keys(&real));

    let b = CandleBackend::cpu();
    let unet = UNet::load(
        &b,
        &Weights::new(&synth, "model.diffusion_model"),
        &tiny_unet_config(),
    )
    .unwrap();
    let x = b.upload(&vec![0.5; 4 * 8 * 8], &[1, 4, 8, 8]).unwrap();
    let ctx = b.upload(&vec![0.1; 77 * 128], &[1, 77, 128]).unwrap();
    let eps = b
        .download(&unet.forward(&b, &x, &[500.0], &ctx, &[]).unwrap())
        .unwrap();
    assert!(eps.iter().all(|v| v.is_finite()));
    AutoencoderKl::load(
        &b,
        &Weights::new(&synth, "first_stage_model"),
        &tiny_vae_config(),
    )
    .unwrap();
}

/// Test hook: key path `ctx · k_scale + k_shift`, value path `ctx · v_scale + v_shift`,
/// on every layer (or only layers of `width`).
struct AffineHook {
    k: (f32, f32),
    v: (f32, f32),
    width: Option<usize>,
}

impl easel_core::nn::AttentionHook<CandleBackend> for AffineHook {
    fn transform(
        &self,
        b: &CandleBackend,
        ctx: &<CandleBackend as Backend>::Tensor,
        width: usize,
    ) -> easel_core::Result<
        Option<(
            <CandleBackend as Backend>::Tensor,
            <CandleBackend as Backend>::Tensor,
        )>,
    > {
        if self.width.is_some_and(|w| w != width) {
            return Ok(None);
        }
        let shift = |t: &<CandleBackend as Backend>::Tensor, (s, c): (f32, f32)| {
            let ones = b.upload(&vec![c; b.shape(t).iter().product()], &b.shape(t))?;
            b.add(&b.scale(t, s)?, &ones)
        };
        Ok(Some((shift(ctx, self.k)?, shift(ctx, self.v)?)))
    }
}

/// Hooks chain like A1111's hypernetworks: each path's output feeds the same path of the
/// next hook, so two affine hooks equal their composition per path.
#[test]
fn unet_hooks_chain_key_and_value_paths_separately() {
    let b = CandleBackend::cpu();
    let unet = tiny_unet(&b);
    let run = |hooks: &[&dyn easel_core::nn::AttentionHook<CandleBackend>]| {
        run_unet_case(&b, &unet, hooks)
    };
    let plain = run(&[]);
    let identity = AffineHook {
        k: (1.0, 0.0),
        v: (1.0, 0.0),
        width: None,
    };
    assert_close("identity hook", &run(&[&identity]), &plain, 1e-6);

    let first = AffineHook {
        k: (2.0, 0.0),
        v: (0.5, 0.0),
        width: None,
    };
    let second = AffineHook {
        k: (1.0, 0.25),
        v: (1.0, -0.5),
        width: None,
    };
    // Per path: k = 2·ctx + 0.25, v = 0.5·ctx − 0.5.
    let composed = AffineHook {
        k: (2.0, 0.25),
        v: (0.5, -0.5),
        width: None,
    };
    let chained = run(&[&first, &second]);
    assert!(
        max_rel_diff(&chained, &plain) > 1e-3,
        "hooks must change the output"
    );
    assert_close("chained hooks", &chained, &run(&[&composed]), 1e-5);

    // A hook that skips a width leaves those layers alone; one that only touches the
    // cross-attention width (128 = context) differs from one touching everything.
    let cross_only = AffineHook {
        k: (2.0, 0.0),
        v: (0.5, 0.0),
        width: Some(128),
    };
    let skipped = AffineHook {
        k: (2.0, 0.0),
        v: (0.5, 0.0),
        width: Some(999),
    };
    assert_close("skipping hook", &run(&[&skipped]), &plain, 1e-6);
    assert!(max_rel_diff(&run(&[&cross_only]), &run(&[&first])) > 1e-4);
}

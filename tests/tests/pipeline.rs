//! The whole txt2img pipeline on the tiny model against the reference stack
//! (k-diffusion samplers over the diffusers UNet with A1111's CFG and noise; diffusers VAE;
//! A1111's u8 conversion), plus the schedule and the infotext written with each image.

use easel_candle::CandleBackend;
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::infotext::{read_parameters, write_png, Infotext};
use easel_core::model::{checkpoint_files, StableDiffusion, VaeChoice};
use easel_core::noise::RngKind;
use easel_core::pipeline::{
    txt2img, txt2img_infotext, txt2img_with_options, GeneratedImage, PromptOptions, Txt2ImgParams,
};
use easel_core::registry::SamplerRegistry;
use easel_core::sampler::block_on;
use easel_core::schedule::DiscreteSchedule;
use easel_core::text::EmphasisMode;
use easel_tests::{golden_path, max_abs_diff, max_rel_diff, models_dir};
use serde_json::Value;

fn registry() -> SamplerRegistry {
    let mut reg = SamplerRegistry::new();
    easel_samplers::register_all(&mut reg);
    reg
}

fn load(file: &str) -> StableDiffusion<CandleBackend> {
    let path = models_dir().join("Stable-diffusion").join(file);
    let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Auto).unwrap();
    StableDiffusion::load(&CandleBackend::cpu(), &files).unwrap()
}

fn cases(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(golden_path(name)).unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

fn golden(name: &str) -> TensorStore {
    open_tensor_store(&golden_path(name)).unwrap()
}

fn params_of(case: &Value) -> Txt2ImgParams {
    let rng = match case["rng"].as_str().unwrap() {
        "gpu" => RngKind::Gpu,
        "cpu" => RngKind::Cpu,
        other => panic!("rng {other}"),
    };
    let (sampler, scheduler) =
        easel_tests::sampler_and_schedule(case["sampler"].as_str().unwrap(), None);
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
        batch_size: case.get("batch_size").and_then(Value::as_u64).unwrap_or(1) as usize,
        clip_skip: case.get("clip_skip").and_then(Value::as_u64).unwrap_or(1) as usize,
        rng,
        noise_device: Default::default(),
        ensd: case["ensd"].as_u64().unwrap(),
        sampler,
        scheduler,
    }
}

fn generate(model: &StableDiffusion<CandleBackend>, params: &Txt2ImgParams) -> Vec<GeneratedImage> {
    let b = CandleBackend::cpu();
    block_on(txt2img(&b, model, params, Vec::new(), &mut |_, _, _| {})).unwrap()
}

#[test]
fn default_schedule_matches_k_diffusion() {
    let store = open_tensor_store(&models_dir().join("Stable-diffusion/tiny.ckpt")).unwrap();
    let schedule =
        DiscreteSchedule::from_alphas_cumprod(&store.read_f32("alphas_cumprod").unwrap());
    for case in cases("sigmas.json") {
        let steps = case["steps"].as_u64().unwrap() as usize;
        let want: Vec<f32> = case["sigmas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got = schedule.default_sigmas(steps);
        // Same f32 arithmetic as torch; only exp/ln rounding may differ.
        assert!(
            max_rel_diff(&got, &want) < 1e-6,
            "steps {steps}: {got:?} vs {want:?}"
        );
        let want_t: Vec<f32> = case["timesteps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let got_t: Vec<f32> = got[..want_t.len()]
            .iter()
            .map(|&s| schedule.sigma_to_t(s))
            .collect();
        assert!(
            max_abs_diff(&got_t, &want_t) < 2e-3,
            "steps {steps}: t {got_t:?} vs {want_t:?}"
        );
    }
}

#[test]
fn sampler_latents_match_k_diffusion() {
    let model = load("tiny.ckpt");
    let store = golden("samplers.safetensors");
    for case in cases("samplers.json") {
        let name = case["name"].as_str().unwrap();
        let images = generate(&model, &params_of(&case));
        let got: Vec<f32> = images
            .iter()
            .flat_map(|i| i.latent.iter().copied())
            .collect();
        let want = store.read_f32(name).unwrap();
        // Same noise to the bit; f32 UNet differences (~1e-6) grow over 6 steps (measured:
        // 4e-6..3e-5 relative to the largest latent value).
        let rel = max_rel_diff(&got, &want);
        eprintln!("{name}: latent max relative difference {rel:.2e}");
        assert!(rel < 1e-4, "{name}: relative difference {rel}");
    }
}

#[test]
fn txt2img_pixels_match_reference() {
    let store = golden("txt2img.safetensors");
    for case in cases("txt2img.json") {
        let name = case["name"].as_str().unwrap();
        let model = load(case["model"].as_str().unwrap());
        let images = generate(&model, &params_of(&case));
        let got: Vec<u8> = images.iter().flat_map(|i| i.rgb.iter().copied()).collect();
        let (_, want) = store.read_raw(name).unwrap();
        assert_eq!(got.len(), want.len(), "{name}: pixel count");
        // Truncation to u8 turns tiny float differences into an occasional off-by-one
        // (measured: 0.02-0.07% of values).
        let diffs: Vec<i32> = got
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .collect();
        let max = diffs.iter().copied().max().unwrap_or(0);
        let off = diffs.iter().filter(|&&d| d != 0).count() as f64 / diffs.len() as f64;
        eprintln!(
            "{name}: max pixel diff {max}, {:.3}% of values differ",
            off * 100.0
        );
        assert!(
            max <= 1 && off < 0.005,
            "{name}: max pixel diff {max}, {:.2}% differ",
            off * 100.0
        );
    }
}

#[test]
fn png_infotext_reads_back_to_the_same_parameters() {
    let model = load("tiny.ckpt");
    let mut params = params_of(&cases("txt2img.json")[0]);
    params.steps = 2;
    params.prompt = "a (red:1.2) fox, snow\nsecond line".into();
    params.negative_prompt = "lowres, bad anatomy".into();
    params.clip_skip = 2;
    params.rng = RngKind::Cpu;
    let img = generate(&model, &params).remove(0);
    let text = txt2img_infotext(&params, &model.info, img.seed).format();
    let dir = std::env::temp_dir().join(format!("easel-infotext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("out.png");
    write_png(
        &path,
        img.width as u32,
        img.height as u32,
        &img.rgb,
        Some(&text),
    )
    .unwrap();
    let back = Infotext::parse(&read_parameters(&path).unwrap().unwrap());
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(back.prompt, params.prompt);
    assert_eq!(back.negative_prompt, params.negative_prompt);
    assert_eq!(back.steps().unwrap(), Some(2));
    assert_eq!(back.sampler(), Some("Euler"));
    assert_eq!(back.cfg_scale().unwrap(), Some(7.5));
    assert_eq!(back.seed().unwrap(), Some(params.seed));
    assert_eq!(
        back.size().unwrap(),
        Some((params.width as u32, params.height as u32))
    );
    assert_eq!(back.model(), Some("tiny"));
    assert_eq!(back.model_hash(), Some(model.info.hash.as_str()));
    assert_eq!(back.clip_skip().unwrap(), 2);
    assert_eq!(back.rng(), "CPU");
}

#[test]
fn invalid_settings_are_refused_with_a_clear_message() {
    let model = load("tiny.ckpt");
    let b = CandleBackend::cpu();
    let base = params_of(&cases("txt2img.json")[0]);
    let run = |p: &Txt2ImgParams| {
        block_on(txt2img(&b, &model, p, Vec::new(), &mut |_, _, _| {}))
            .unwrap_err()
            .to_string()
    };
    let mut p = base.clone();
    p.width = 100;
    assert!(
        run(&p).contains("width 100 is not a positive multiple of 8"),
        "{}",
        run(&p)
    );
    let mut p = base.clone();
    p.steps = 0;
    assert!(run(&p).contains("steps"), "{}", run(&p));
    let mut p = base.clone();
    p.batch_size = 0;
    assert!(run(&p).contains("batch size"), "{}", run(&p));
    let err = registry().get("euler_b").err().unwrap().to_string();
    assert!(
        err.contains("unknown sampler `euler_b`") && err.contains("Euler a"),
        "{err}"
    );
}

#[test]
fn prompt_conditioning_matches_a1111() {
    // Every text case: emphasis with mean restoration, 2-3 chunk prompts, BREAK, empty
    // prompts and clip skip 1-3, through the loaded model's text encoder.
    let model = load("tiny.ckpt");
    let b = CandleBackend::cpu();
    let store = golden("text.safetensors");
    for case in cases("text.json") {
        let name = case["name"].as_str().unwrap();
        let prompt = case["prompt"].as_str().unwrap();
        let skip = case["clip_skip"].as_u64().unwrap() as usize;
        let cond = block_on(easel_core::pipeline::encode_prompt(
            &b,
            &model.clip,
            prompt,
            skip,
        ))
        .unwrap();
        let want = store.read_f32(name).unwrap();
        assert_eq!(cond.data.len(), want.len(), "{name}: token count");
        let rel = max_rel_diff(&cond.data, &want);
        eprintln!("{name}: conditioning max relative difference {rel:.2e}");
        // f32 CLIP vs torch: a few ulps per layer.
        assert!(rel < 1e-5, "{name}: relative difference {rel}");
    }
}

#[test]
fn ckpt_and_safetensors_of_the_same_model_give_identical_images() {
    let b = CandleBackend::cpu();
    let make = |file: &str| {
        let path = models_dir().join("Stable-diffusion").join(file);
        let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Builtin).unwrap();
        StableDiffusion::load(&b, &files).unwrap()
    };
    let mut params = params_of(&cases("txt2img.json")[0]);
    params.steps = 3;
    let a = generate(&make("tiny.ckpt"), &params).remove(0);
    let c = generate(&make("tiny-st.safetensors"), &params).remove(0);
    assert_eq!(a.latent, c.latent);
    assert_eq!(a.rgb, c.rgb);
}

#[test]
fn prompt_editing_alternation_and_and_match_a1111() {
    // `[a:b:n]`, `[a|b]`, `AND` weights, scheduled negative prompts, `#` comments and A1111's
    // emphasis modes through the whole sampler, against A1111's CFGDenoiser semantics (one
    // schedule tick per model call; the texts of a schedule encoded as one batch).
    let model = load("tiny.ckpt");
    let store = golden("prompt_features.safetensors");
    let b = CandleBackend::cpu();
    for case in cases("prompt_features.json") {
        let name = case["name"].as_str().unwrap();
        let emphasis = case
            .get("emphasis")
            .and_then(Value::as_str)
            .unwrap_or("Original");
        let options = PromptOptions {
            emphasis: EmphasisMode::from_a1111_name(emphasis).unwrap(),
            ..PromptOptions::default()
        };
        let images = block_on(txt2img_with_options(
            &b,
            &model,
            &params_of(&case),
            &options,
            Vec::new(),
            &mut |_, _, _| {},
        ))
        .unwrap();
        let want = store.read_f32(name).unwrap();
        let rel = max_rel_diff(&images[0].latent, &want);
        eprintln!("{name}: latent max relative difference {rel:.2e}");
        assert!(rel < 1e-4, "{name}: relative difference {rel}");
    }
}

/// `--precision bf16` on the CPU: the products' inputs are rounded to bf16 (sums stay f32;
/// on a CPU without bf16 arithmetic only the weights are), so the final latents drift from
/// the f32 reference over the steps (measured 2.2e-2 to 4.6e-2 of the largest value after
/// 6 steps at CFG 7.5 with bf16 products on Zen 5, 0.9e-2 to 2.1e-2 with bf16 weights
/// alone on an AVX2-only Zen 1; one UNet pass stays within
/// PyTorch's own bf16 deviation, see networks.rs) but no further: a wrong kernel or
/// layout gives differences of order 1. Runs on every CPU.
#[test]
fn bf16_products_stay_close_to_the_f32_reference() {
    let b = easel_tests::bf16_backend();
    let path = models_dir().join("Stable-diffusion/tiny.ckpt");
    let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Auto).unwrap();
    let model = StableDiffusion::load(&b, &files).unwrap();
    let store = golden("samplers.safetensors");
    for case in cases("samplers.json") {
        let name = case["name"].as_str().unwrap();
        let images = block_on(txt2img(
            &b,
            &model,
            &params_of(&case),
            Vec::new(),
            &mut |_, _, _| {},
        ))
        .unwrap();
        let got: Vec<f32> = images.iter().flat_map(|i| i.latent.clone()).collect();
        let rel = max_rel_diff(&got, &store.read_f32(name).unwrap());
        eprintln!("{name}: bf16 latent max relative difference {rel:.2e}");
        assert!(rel < 1e-1, "{name}: {rel}");
        // Far above f32's agreement (≤ 3e-5), so bf16 (weights at least) really applied.
        assert!(rel > 1e-4, "{name}: {rel} — bf16 products not used?");
    }
}

/// One case of the preview fixtures: a latent, the network's float output and A1111's bytes.
struct PreviewCase {
    h: usize,
    w: usize,
    latent: Vec<f32>,
    output: Vec<f32>,
    rgb: Vec<u8>,
}

fn preview_cases(file: &str) -> Vec<PreviewCase> {
    let path = easel_tests::fixtures_dir().join("preview").join(file);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let numbers = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let shape = numbers(&case["shape"]);
            PreviewCase {
                h: shape[1] as usize,
                w: shape[2] as usize,
                latent: numbers(&case["latent"]).iter().map(|&v| v as f32).collect(),
                output: numbers(&case["output"]).iter().map(|&v| v as f32).collect(),
                rgb: numbers(&case["rgb"]).iter().map(|&v| v as u8).collect(),
            }
        })
        .collect()
}

fn max_byte_diff(a: &[u8], b: &[u8]) -> i32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as i32 - *y as i32).abs())
        .max()
        .unwrap_or(0)
}

/// A1111's "Approx NN" preview network, read from the tiny folder's `VAE-approx/model.pt`,
/// against the fixture script's torch run of the same module (`preview/vae_approx.json`):
/// the network's output within f32 rounding, the preview bytes within 1 (truncation of
/// values that land on an integer).
#[test]
fn vae_approx_preview_matches_a1111s_network() {
    let b = CandleBackend::cpu();
    let net =
        easel_core::nn::VaeApprox::load(&b, &models_dir().join("VAE-approx/model.pt")).unwrap();
    for c in preview_cases("vae_approx.json") {
        let out = block_on(net.forward(&b, &c.latent, c.h, c.w)).unwrap();
        assert!(
            max_abs_diff(&out, &c.output) < 1e-4,
            "{}x{}: output differs",
            c.h,
            c.w
        );
        let rgb = block_on(net.preview_rgb(&b, &c.latent, c.h, c.w)).unwrap();
        let worst = max_byte_diff(&rgb, &c.rgb);
        assert!(
            worst <= 1,
            "{}x{}: preview bytes differ by {worst}",
            c.h,
            c.w
        );
    }
    // Not the network: a clear error naming the file and key.
    let err =
        easel_core::nn::VaeApprox::load(&b, &models_dir().join("Stable-diffusion/tiny.vae.pt"))
            .err()
            .unwrap()
            .to_string();
    assert!(
        err.contains("tiny.vae.pt") && err.contains("conv1.weight"),
        "{err}"
    );
}

/// TAESD's decoder, read from the tiny folder's `VAE-approx/taesd_decoder.pth`, against the
/// fixture script's torch run of taesd's module (`preview/taesd.json`).
#[test]
fn taesd_decoder_matches_its_torch_module() {
    let b = CandleBackend::cpu();
    let net =
        easel_core::nn::TaesdDecoder::load(&b, &models_dir().join("VAE-approx/taesd_decoder.pth"))
            .unwrap();
    for c in preview_cases("taesd.json") {
        let out = block_on(net.forward(&b, &c.latent, c.h, c.w)).unwrap();
        assert!(
            max_abs_diff(&out, &c.output) < 1e-4,
            "{}x{}: output differs",
            c.h,
            c.w
        );
        let rgb = block_on(net.decode_rgb(&b, &c.latent, c.h, c.w)).unwrap();
        let worst = max_byte_diff(&rgb, &c.rgb);
        assert!(worst <= 1, "{}x{}: bytes differ by {worst}", c.h, c.w);
    }
    let err = easel_core::nn::TaesdDecoder::load(&b, &models_dir().join("VAE-approx/model.pt"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model.pt") && err.contains("1.weight"),
        "{err}"
    );
}

/// TAESD's encoder, read from the tiny folder's `VAE-approx/taesd_encoder.pth`, against the
/// fixture script's torch run of taesd's module on 8-bit images
/// (`preview/taesd_encoder.json`).
#[test]
fn taesd_encoder_matches_its_torch_module() {
    let b = CandleBackend::cpu();
    let net =
        easel_core::nn::TaesdEncoder::load(&b, &models_dir().join("VAE-approx/taesd_encoder.pth"))
            .unwrap();
    let text =
        std::fs::read_to_string(easel_tests::fixtures_dir().join("preview/taesd_encoder.json"))
            .unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    for c in cases["cases"].as_array().unwrap() {
        let (w, h) = (
            c["size"][0].as_u64().unwrap() as usize,
            c["size"][1].as_u64().unwrap() as usize,
        );
        let rgb: Vec<u8> = c["rgb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        let want: Vec<f32> = c["latent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let image = easel_core::pipeline::vae_encode::rgb8_to_unit_chw(&rgb, w, h).unwrap();
        let got = block_on(net.encode(&b, &image, w, h)).unwrap();
        assert_eq!(got.len(), 4 * (w / 8) * (h / 8));
        assert!(max_rel_diff(&got, &want) < 1e-4, "{w}x{h}: latent differs");
    }
    let err =
        easel_core::nn::TaesdEncoder::load(&b, &models_dir().join("VAE-approx/taesd_decoder.pth"))
            .err()
            .unwrap()
            .to_string();
    assert!(
        err.contains("taesd_decoder.pth") && err.contains("encoder"),
        "{err}"
    );
}

/// `--vae-tiling`: the tiled decode of a latent larger than one tile (tiles of 32 latents,
/// the tiny VAE's diffusers tile) against diffusers' `tiled_decode` of the same VAE
/// (`vae/tiling.safetensors`, `make_tiling_fixtures.py`).
#[test]
fn tiled_vae_decode_matches_diffusers() {
    let model = load("tiny.ckpt");
    let b = CandleBackend::cpu();
    let store =
        open_tensor_store(&easel_tests::fixtures_dir().join("vae/tiling.safetensors")).unwrap();
    let z = store.read_f32("z").unwrap();
    let want = store.read_f32("tiled").unwrap();
    let got = block_on(easel_core::pipeline::vae_tiling::decode_tiled(
        &b,
        &model,
        &z,
        [4, 40, 56],
        32,
    ))
    .unwrap();
    assert_eq!(got.len(), want.len());
    let err = max_abs_diff(&got, &want);
    assert!(err < 2e-3, "tiled decode differs from diffusers' by {err}");
}

/// The VAE seam: a plugin's decoder, registered with the service like a sampler, is chosen
/// by its name as the job's `vae_decoder`, makes the image and is written to the infotext
/// as A1111 writes a decode method; a name nothing offers is refused before sampling,
/// listing what is available.
#[test]
fn a_plugin_vae_decoder_is_chosen_by_name() {
    use easel_core::backend::LocalBoxFuture;
    use easel_core::service::{GenerationService, GenerationSettings};
    use easel_core::vae_plugin::{LatentDecoder, VaeMethod, VaeMethods, VaeProvider};
    use std::sync::Arc;

    /// A decoder that paints every pixel one grey.
    struct Grey;
    impl LatentDecoder<CandleBackend> for Grey {
        fn label(&self) -> &str {
            "Flat grey"
        }
        fn decode_rgb<'a>(
            &'a self,
            _: &'a CandleBackend,
            latent: &'a [f32],
            h: usize,
            w: usize,
        ) -> LocalBoxFuture<'a, easel_core::Result<Vec<u8>>> {
            Box::pin(async move {
                assert_eq!(latent.len(), 4 * h * w);
                Ok(vec![77u8; 64 * h * w * 3])
            })
        }
    }
    struct GreyProvider;
    impl VaeProvider<CandleBackend> for GreyProvider {
        fn methods(
            &self,
            _: &CandleBackend,
            _: Option<&std::path::Path>,
        ) -> easel_core::Result<VaeMethods<CandleBackend>> {
            let mut m = VaeMethods::default();
            m.decoders.push(Arc::new(Grey));
            Ok(m)
        }
    }
    let mut samplers = SamplerRegistry::new();
    easel_samplers::register_all(&mut samplers);
    let mut schedulers = easel_core::registry::SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut schedulers);
    let mut svc = GenerationService::new(CandleBackend::cpu(), samplers, schedulers)
        .with_models_folder(models_dir());
    svc.add_vae_provider(Box::new(GreyProvider));
    let mut s = GenerationSettings {
        prompt: "a cat".into(),
        steps: 2,
        width: 64,
        height: 64,
        model: "tiny".into(),
        vae_decoder: VaeMethod::parse("flat grey").unwrap(),
        ..Default::default()
    };
    // Any case finds it; the infotext writes the name as the job gave it.
    let out = svc
        .generate_blocking(&s, &mut |_| {}, &easel_core::pipeline::CancelToken::new())
        .unwrap();
    assert!(out[0].image.rgb.iter().all(|&v| v == 77));
    assert_eq!(out[0].infotext.get("VAE Decoder"), Some("flat grey"));
    s.vae_decoder = VaeMethod::parse("Consistency").unwrap();
    let mut steps = 0;
    let err = svc
        .generate_blocking(
            &s,
            &mut |_| steps += 1,
            &easel_core::pipeline::CancelToken::new(),
        )
        .err()
        .unwrap()
        .to_string();
    assert_eq!(steps, 0, "sampled before refusing");
    assert!(
        err.contains("`Consistency`") && err.contains("Full, TAESD, Flat grey"),
        "{err}"
    );
}

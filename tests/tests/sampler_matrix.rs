//! Every registered sampler with schedule types Automatic and Karras, through the whole
//! txt2img pipeline on the tiny model, against A1111's flow in the reference stack
//! (`golden/sampler_matrix.*`, written by `make_fixtures.py sampler_matrix`): A1111's
//! per-sampler default schedules, discarded next-to-last σ, CFG denoiser, per-image noise
//! through `TorchHijack`, and the SDE samplers' Brownian tree drawn with the generator of
//! the device A1111 ran on (`noise_device`).
//!
//! Tolerances, as the largest absolute difference over the largest reference magnitude:
//! - σ sequences: 1e-6 (the same f32 formulas; only exp/ln/powf rounding differs).
//! - Final latents: 1e-4 for every sampler but DPM adaptive. The stochastic ones get exactly
//!   the reference's noise, so only f32 UNet rounding (~1e-6 per call) grows along the
//!   trajectory, as for the deterministic ones (measured: 3e-6..8e-6 for all of them).
//! - DPM adaptive: 2e-2, and the same number of attempted and accepted steps. Its step sizes
//!   come from an error estimate that is a small difference of two large solutions, so f32
//!   rounding moves every step: perturbing the reference's own UNet output by 1e-6 (relative)
//!   moves its final latent by 5.4e-3 with the same accept/reject sequence. Easel lands 3.9e-3
//!   from it; a wrong formula or noise draw gives differences of order 1.
//!
//! Measured differences are printed per case (`--nocapture`).

use easel_candle::CandleBackend;
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::model::{checkpoint_files, StableDiffusion, VaeChoice};
use easel_core::noise::{RngKind, TorchDevice};
use easel_core::pipeline::{
    txt2img_with_options, CondPadding, CondPaddingMode, PromptOptions, Txt2ImgParams,
};
use easel_core::registry::SamplerRegistry;
use easel_core::sampler::block_on;
use easel_core::scheduler::sampler_sigmas;
use easel_tests::{golden_path, max_rel_diff, models_dir};
use serde_json::Value;

const LATENT_TOLERANCE: f32 = 1e-4;
const DPM_ADAPTIVE_LATENT_TOLERANCE: f32 = 2e-2;
const SIGMA_TOLERANCE: f32 = 1e-6;
const SCHEDULE_TYPES: [&str; 2] = ["Automatic", "Karras"];

fn load_tiny() -> StableDiffusion<CandleBackend> {
    let path = models_dir().join("Stable-diffusion/tiny.ckpt");
    let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Auto).unwrap();
    StableDiffusion::load(&CandleBackend::cpu(), &files).unwrap()
}

fn matrix_cases() -> Vec<Value> {
    let path = golden_path("sampler_matrix.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run make_fixtures.py sampler_matrix)",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("sampler_matrix.json")
}

fn golden() -> TensorStore {
    open_tensor_store(&golden_path("sampler_matrix.safetensors")).unwrap()
}

fn text<'a>(case: &'a Value, key: &str) -> &'a str {
    case[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} of {case}"))
}

fn number(case: &Value, key: &str) -> u64 {
    case[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} of {case}"))
}

fn params_of(case: &Value) -> Txt2ImgParams {
    let rng = match text(case, "rng") {
        "gpu" => RngKind::Gpu,
        "cpu" => RngKind::Cpu,
        other => panic!("rng {other}"),
    };
    let noise_device = match text(case, "noise_device") {
        "cuda" => TorchDevice::Cuda,
        "cpu" => TorchDevice::Cpu,
        other => panic!("noise_device {other}"),
    };
    let (sampler, scheduler) =
        easel_tests::sampler_and_schedule(text(case, "sampler"), Some(text(case, "schedule")));
    Txt2ImgParams {
        downcast_alphas_cumprod: false,
        vae_decoder: Default::default(),
        vae_encoder: Default::default(),
        vae_tiling: false,
        prompt: text(case, "prompt").to_string(),
        negative_prompt: text(case, "negative").to_string(),
        steps: number(case, "steps") as usize,
        cfg_scale: case["cfg"].as_f64().unwrap() as f32,
        seed: number(case, "seed"),
        width: number(case, "width") as usize,
        height: number(case, "height") as usize,
        batch_size: number(case, "batch_size") as usize,
        clip_skip: 1,
        rng,
        noise_device,
        ensd: number(case, "ensd"),
        sampler,
        scheduler,
    }
}

/// One line of the report: what was compared and how far apart it was.
struct Outcome {
    line: String,
    passed: bool,
}

fn check_case(
    model: &StableDiffusion<CandleBackend>,
    store: &TensorStore,
    case: &Value,
) -> Outcome {
    let name = text(case, "name");
    let params = params_of(case);
    let mut line = format!(
        "{name}: {} / {} (noise {}, device {}, rng {}, batch {})",
        text(case, "sampler"),
        text(case, "schedule"),
        text(case, "noise"),
        text(case, "noise_device"),
        text(case, "rng"),
        params.batch_size
    );
    let mut passed = true;
    // The σ walk first: a wrong schedule explains a wrong latent. Timestep samplers have
    // none in the reference (A1111 ignores the schedule type for them).
    if let Some(want) = case["sigmas"].as_array() {
        let want: Vec<f32> = want.iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let got = sampler_sigmas(
            params.sampler.as_ref(),
            params.scheduler.as_ref(),
            &model.schedule,
            params.steps,
        )
        .unwrap();
        if got.len() == want.len() {
            let rel = max_rel_diff(&got, &want);
            line += &format!("; σ rel diff {rel:.1e}");
            passed &= rel <= SIGMA_TOLERANCE;
        } else {
            line += &format!("; σ {got:?} vs reference {want:?}");
            passed = false;
        }
    }
    let b = CandleBackend::cpu();
    // Every latent the sampler reports (DPM adaptive reports rejected attempts too, with x
    // unchanged).
    let mut reported: Vec<Vec<f32>> = Vec::new();
    let mut progress = |_: usize, _: usize, x: &[f32]| reported.push(x.to_vec());
    // A1111's cond/uncond padding options (cases with prompts of different lengths).
    let mode = match case["pad"].as_str() {
        None => CondPaddingMode::Off,
        Some("v0") => CondPaddingMode::LastVector,
        Some("empty") => CondPaddingMode::EmptyChunks,
        Some(other) => panic!("pad {other}"),
    };
    let options = PromptOptions {
        cond_padding: CondPadding::new(mode),
        ..PromptOptions::default()
    };
    let images = block_on(txt2img_with_options(
        &b,
        model,
        &params,
        &options,
        Vec::new(),
        &mut progress,
    ))
    .unwrap();
    // A1111 writes `Pad conds` / `Pad conds v0` exactly when the option padded.
    if options.cond_padding.was_applied() != (mode != CondPaddingMode::Off) {
        line += "; padding not reported as applied";
        passed = false;
    }
    let got: Vec<f32> = images
        .iter()
        .flat_map(|i| i.latent.iter().copied())
        .collect();
    let want = store.read_f32(name).unwrap();
    let mut tolerance = LATENT_TOLERANCE;
    if let Some(attempts) = case["attempts"].as_u64() {
        tolerance = DPM_ADAPTIVE_LATENT_TOLERANCE;
        let sigma0 = sampler_sigmas(
            params.sampler.as_ref(),
            params.scheduler.as_ref(),
            &model.schedule,
            params.steps,
        )
        .unwrap()[0];
        let start: Vec<f32> = images
            .iter()
            .flat_map(|i| i.noise.iter().map(|v| v * sigma0))
            .collect();
        let accepted = std::iter::once(&start)
            .chain(&reported)
            .zip(&reported)
            .filter(|(before, after)| before != after)
            .count();
        line += &format!(
            "; {} attempts, {accepted} accepted (reference {attempts}, {})",
            reported.len(),
            number(case, "accepted")
        );
        passed &= reported.len() as u64 == attempts && accepted as u64 == number(case, "accepted");
    }
    if got.len() == want.len() {
        let rel = max_rel_diff(&got, &want);
        line += &format!("; latent rel diff {rel:.2e} (tolerance {tolerance:.0e})");
        passed &= rel <= tolerance;
    } else {
        line += &format!(
            "; {} latent values vs {} in the reference",
            got.len(),
            want.len()
        );
        passed = false;
    }
    Outcome { line, passed }
}

/// Run the cases `select` picks, print every outcome, fail listing the ones out of tolerance.
fn check_cases(select: impl Fn(&Value) -> bool) {
    let model = load_tiny();
    let store = golden();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in matrix_cases().iter().filter(|c| select(c)) {
        let outcome = check_case(&model, &store, case);
        eprintln!(
            "{}{}",
            outcome.line,
            if outcome.passed { "" } else { "  FAILED" }
        );
        if !outcome.passed {
            failures.push(outcome.line);
        }
        checked += 1;
    }
    assert!(checked > 0, "no cases selected");
    assert!(
        failures.is_empty(),
        "{} of {checked} cases out of tolerance:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn uses_brownian_noise(case: &Value) -> bool {
    text(case, "noise") == "brownian"
}

#[test]
fn every_registered_sampler_has_cases_for_both_schedule_types() {
    let mut reg = SamplerRegistry::new();
    easel_samplers::register_all(&mut reg);
    let cases = matrix_cases();
    for sampler in reg.samplers() {
        for schedule in SCHEDULE_TYPES {
            assert!(
                cases
                    .iter()
                    .any(|c| text(c, "sampler") == sampler.label()
                        && text(c, "schedule") == schedule),
                "no sampler_matrix case for {} / {schedule}",
                sampler.label()
            );
        }
    }
}

#[test]
fn samplers_without_brownian_noise_match_a1111() {
    check_cases(|c| !uses_brownian_noise(c));
}

#[test]
fn sde_samplers_with_brownian_noise_match_a1111() {
    check_cases(uses_brownian_noise);
}

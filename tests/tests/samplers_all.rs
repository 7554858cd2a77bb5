//! Every sampler and schedule against `fixtures/samplers/samplers.json`, written by
//! `fixtures/samplers/make_sampler_fixtures.py` from the installed k-diffusion and
//! A1111's formulas, on an analytic stand-in for the UNet (defined identically below).
//!
//! Tolerances:
//! - Schedules: 2e-6 relative to the sequence's largest σ (f32 rounding of the same
//!   formulas; Beta's quantiles come from scipy there and from bisection here).
//! - Final latents: 1e-5 relative to the reference's largest magnitude (observed ≤ 2e-6), for deterministic
//!   samplers and for stochastic ones fed the reference's noise sequence.

use std::collections::VecDeque;

use easel_core::backend::LocalBoxFuture;
use easel_core::noise::{ImageRng, RngKind, TorchCpuGenerator};
use easel_core::registry::{SamplerChoice, SamplerRegistry, SchedulerRegistry};
use easel_core::sampler::{block_on, Denoiser, NoiseRequest, NoiseSampler, SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::schedule::DiscreteSchedule;
use easel_core::scheduler::sampler_sigmas;
use easel_core::Result;
use easel_tests::{fixtures_dir, max_rel_diff};
use serde_json::Value;

const LATENT_TOLERANCE: f32 = 1e-5;
const SCHEDULE_TOLERANCE: f32 = 2e-6;

struct Fixture {
    json: Value,
    model: DiscreteSchedule,
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("a list of numbers")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn fixture() -> Fixture {
    let path = fixtures_dir().join("samplers/samplers.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_sampler_fixtures.py)", path.display()));
    let json: Value = serde_json::from_str(&text).expect("samplers.json");
    let model = DiscreteSchedule::from_alphas_cumprod(&floats(&json["alphas_cumprod"]));
    Fixture { json, model }
}

fn registries() -> (SamplerRegistry, SchedulerRegistry) {
    let mut samplers = SamplerRegistry::new();
    easel_samplers::register_all(&mut samplers);
    let mut schedulers = SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut schedulers);
    (samplers, schedulers)
}

/// The fixture script's `eps_model` behind k-diffusion's ε-DDPM wrapping:
/// u = x/√(σ²+1), t = t(σ), ε = (0.6 + 0.3t/1000)·u + 0.4·tanh(1.5u + 0.3·u_next + 0.1·sin(t/100)),
/// denoised = x − σ·ε.
struct AnalyticDenoiser<'s> {
    model: &'s DiscreteSchedule,
    calls: usize,
}

impl Denoiser for AnalyticDenoiser<'_> {
    fn denoise<'a>(&'a mut self, x: &'a [f32], sigma: f32) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        self.calls += 1;
        let c_in = 1.0 / (sigma * sigma + 1.0).sqrt();
        let t = self.model.sigma_to_t(sigma);
        Box::pin(async move {
            let u: Vec<f32> = x.iter().map(|v| v * c_in).collect();
            let a = 0.6 + 0.3 * t / 1000.0;
            let phase = 0.1 * (t / 100.0).sin();
            let n = u.len();
            Ok((0..n)
                .map(|k| {
                    let eps = a * u[k] + 0.4 * (1.5 * u[k] + 0.3 * u[(k + 1) % n] + phase).tanh();
                    x[k] + eps * -sigma
                })
                .collect())
        })
    }
}

/// The reference's fixed noise sequence, consumed in order.
struct QueueNoise {
    items: VecDeque<Vec<f32>>,
    used: usize,
}

impl NoiseSampler for QueueNoise {
    fn noise(&mut self, _sigma: f32, _sigma_next: f32) -> Vec<f32> {
        self.used += 1;
        self.items
            .pop_front()
            .expect("the reference noise sequence ran out")
    }
}

fn run(
    sampler: &dyn Sampler,
    model: &DiscreteSchedule,
    x0: &[f32],
    sigmas: &[f32],
    noise: &mut dyn NoiseSampler,
) -> Vec<f32> {
    let mut denoiser = AnalyticDenoiser { model, calls: 0 };
    let mut on_step = |_: usize, _: usize, _: &[f32], _: &[f32]| {};
    let ctx = SampleContext {
        denoiser: &mut denoiser,
        noise,
        schedule: model,
        on_step: &mut on_step,
        timesteps: None,
    };
    let x: Vec<f32> = x0.iter().map(|v| v * sigmas[0]).collect();
    block_on(sampler.sample(x, sigmas, ctx)).expect("sampling")
}

/// Samplers whose reference draws noise it then multiplies by 0 (k-diffusion's churn
/// draw with `s_churn` 0, A1111's DDIM noise with eta 0); Easel skips those draws.
fn draws_unused_noise(case: &str, sampler: &str) -> bool {
    matches!(sampler, "euler" | "heun" | "dpm2" | "ddim" | "restart")
        && !case.ends_with("churn")
        && case != "ddim_eta"
}

#[test]
fn every_sampler_matches_the_reference_latent() {
    let fx = fixture();
    let (samplers, schedulers) = registries();
    let x0 = floats(&fx.json["x0"]);
    let noise: Vec<Vec<f32>> = fx.json["noise"]
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in fx.json["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let sampler_name = case["sampler"].as_str().unwrap();
        let steps = case["steps"].as_u64().unwrap() as usize;
        let registered = samplers.get(sampler_name).unwrap();
        // Cases with A1111's tunable parameters go through `with_params`, as the CLI does.
        let sampler = match case.get("params") {
            Some(p) => {
                let value = |key: &str| p.get(key).map(|v| v.as_f64().unwrap() as f32);
                let params = SamplerParams {
                    eta: value("eta"),
                    eta_ddim: value("eta_ddim"),
                    s_churn: value("s_churn"),
                    s_tmin: value("s_tmin"),
                    s_tmax: value("s_tmax"),
                    s_noise: value("s_noise"),
                    ..Default::default()
                };
                registered
                    .with_params(&params)
                    .unwrap_or_else(|| panic!("{name}: {sampler_name} takes {params:?}"))
            }
            None => registered,
        };
        let scheduler = schedulers.get(case["schedule"].as_str().unwrap()).unwrap();
        let sigmas =
            sampler_sigmas(sampler.as_ref(), scheduler.as_ref(), &fx.model, steps).unwrap();
        let reference_sigmas = floats(&case["sigmas"]);
        assert_eq!(sigmas.len(), reference_sigmas.len(), "{name}: σ count");
        let sigma_err = max_rel_diff(&sigmas, &reference_sigmas);
        assert!(
            sigma_err <= SCHEDULE_TOLERANCE,
            "{name}: σ differ by {sigma_err:e}"
        );

        let mut queue = QueueNoise {
            items: noise.iter().cloned().collect(),
            used: 0,
        };
        let latent = run(sampler.as_ref(), &fx.model, &x0, &sigmas, &mut queue);
        let reference = floats(&case["latent"]);
        let err = max_rel_diff(&latent, &reference);
        let reference_used = case["noise_used"].as_u64().unwrap() as usize;
        let draws_ok = if draws_unused_noise(name, sampler_name) {
            queue.used <= reference_used
        } else {
            queue.used == reference_used
        };
        // Where the reference's own last-bit rounding (torch's CPU square root, amplified
        // by σ_down's cancellation in very short ancestral runs) moves it by more than the
        // tolerance, allow twice that measured spread (the fixture records it per case).
        let spread = case["rounding_spread"].as_f64().unwrap_or(0.0) as f32;
        let tolerance = LATENT_TOLERANCE.max(2.0 * spread);
        if err > tolerance || !draws_ok || latent.iter().any(|v| !v.is_finite()) {
            failures.push(format!(
                "{name}: rel err {err:e}, noise draws {} (reference {reference_used})",
                queue.used
            ));
        }
        eprintln!("{name}: rel err {err:.2e}, noise draws {}", queue.used);
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} cases");
    assert!(
        failures.is_empty(),
        "{} of {checked} cases off:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_schedule_matches_a1111() {
    let fx = fixture();
    let (_, schedulers) = registries();
    let mut failures = Vec::new();
    for case in fx.json["schedules"].as_array().unwrap() {
        let name = case["schedule"].as_str().unwrap();
        let steps = case["steps"].as_u64().unwrap() as usize;
        let registered = schedulers.get(name).unwrap();
        // Cases with A1111's schedule settings go through `with_params`, as the CLI does.
        let scheduler = match case.get("params") {
            Some(p) => {
                let value = |key: &str| p.get(key).map(|v| v.as_f64().unwrap() as f32);
                let params = SamplerParams {
                    schedule_sigma_min: value("sigma_min"),
                    schedule_sigma_max: value("sigma_max"),
                    schedule_rho: value("rho"),
                    beta_alpha: value("beta_alpha"),
                    beta_beta: value("beta_beta"),
                    ..Default::default()
                };
                registered
                    .with_params(&params)
                    .unwrap_or_else(|| panic!("{name} takes {params:?}"))
            }
            None => registered,
        };
        let ours = scheduler.sigmas(&fx.model, steps).unwrap();
        let reference = floats(&case["sigmas"]);
        if ours.len() != reference.len() {
            failures.push(format!(
                "{name} {steps}: {} σ, reference {}",
                ours.len(),
                reference.len()
            ));
            continue;
        }
        let err = max_rel_diff(&ours, &reference);
        if err > SCHEDULE_TOLERANCE {
            failures.push(format!(
                "{name} {steps}: rel err {err:e}\n  ours {ours:?}\n  ref  {reference:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A1111's "Downcast alphas_cumprod": the σ table k-diffusion builds from the fp16 ᾱ in
/// fp16 arithmetic, and the Automatic and Karras schedules and timesteps read off it, against
/// `samplers/downcast.json` (`make_downcast_fixtures.py`, k-diffusion on torch).
#[test]
fn downcast_schedule_matches_k_diffusion_on_fp16_alphas() {
    let path = fixtures_dir().join("samplers/downcast.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let model = DiscreteSchedule::scaled_linear(0.00085, 0.012, 1000).downcast_f16();
    // The tables are fp16 values: equal to the bit.
    assert_eq!(model.sigmas(), floats(&json["sigmas"]).as_slice());
    let (_, schedulers) = registries();
    for (name, key) in [("automatic", "default"), ("karras", "karras")] {
        let scheduler = schedulers.get(name).unwrap();
        for (steps, reference) in json[key].as_object().unwrap() {
            let steps: usize = steps.parse().unwrap();
            let ours = scheduler.sigmas(&model, steps).unwrap();
            let reference = floats(reference);
            assert_eq!(ours.len(), reference.len(), "{name} {steps}");
            let err = max_rel_diff(&ours, &reference);
            assert!(
                err <= SCHEDULE_TOLERANCE,
                "{name} {steps}: rel err {err:e}\n  ours {ours:?}\n  ref  {reference:?}"
            );
        }
    }
    let probe = floats(&json["sigma_to_t"]["sigmas"]);
    let want = floats(&json["sigma_to_t"]["t"]);
    for (s, t) in probe.iter().zip(&want) {
        let ours = model.sigma_to_t(*s);
        assert!(
            (ours - t).abs() <= 1e-4 * t.max(1.0),
            "sigma_to_t({s}) = {ours}, k-diffusion {t}"
        );
    }
}

#[test]
fn labels_and_schedules_round_trip() {
    let (samplers, schedulers) = registries();
    let labels = samplers.labels();
    for expected in [
        "Euler a",
        "Euler",
        "LMS",
        "Heun",
        "DPM2",
        "DPM2 a",
        "DPM++ 2S a",
        "DPM++ 2M",
        "DPM++ SDE",
        "DPM++ 2M SDE",
        "DPM++ 3M SDE",
        "DPM fast",
        "DPM adaptive",
        "Restart",
        "DDIM",
        "PLMS",
        "UniPC",
    ] {
        assert!(
            labels.iter().any(|l| l == expected),
            "{expected} not registered: {labels:?}"
        );
    }
    for sampler in samplers.samplers() {
        for scheduler in schedulers.schedulers() {
            // New infotext form: `Sampler: X, Schedule type: Y`.
            let choice = SamplerChoice::parse(
                &samplers,
                &schedulers,
                sampler.label(),
                Some(scheduler.label()),
            )
            .unwrap();
            assert_eq!(choice.sampler.name(), sampler.name());
            assert_eq!(choice.scheduler.name(), scheduler.name());
            // Old form: the schedule appended to the sampler label.
            let old = format!("{} {}", sampler.label(), scheduler.label());
            let choice = SamplerChoice::parse(&samplers, &schedulers, &old, None).unwrap();
            assert_eq!(
                (choice.sampler.name(), choice.scheduler.name()),
                (sampler.name(), scheduler.name()),
                "{old}"
            );
            assert_eq!(choice.infotext_sampler(), sampler.label());
        }
    }
}

#[test]
fn a1111_names_parse_to_sampler_and_schedule() {
    let (samplers, schedulers) = registries();
    let parse = |s: &str, t: Option<&str>| {
        let c = SamplerChoice::parse(&samplers, &schedulers, s, t).unwrap();
        (
            c.sampler.label().to_string(),
            c.infotext_schedule_type(&schedulers).unwrap(),
        )
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(parse("DPM++ 2M Karras", None), pair("DPM++ 2M", "Karras"));
    assert_eq!(
        parse("DPM++ 2M", Some("Karras")),
        pair("DPM++ 2M", "Karras")
    );
    // Automatic resolves to the sampler's own default, as A1111 writes it.
    assert_eq!(parse("DPM++ 2M", None), pair("DPM++ 2M", "Karras"));
    assert_eq!(
        parse("DPM++ 2M SDE", Some("Automatic")),
        pair("DPM++ 2M SDE", "Exponential")
    );
    assert_eq!(parse("Euler a", None), pair("Euler a", "Automatic"));
    assert_eq!(parse("Euler", Some("Uniform")), pair("Euler", "Uniform"));
    assert_eq!(parse("k_euler_a", None), pair("Euler a", "Automatic"));
    assert_eq!(parse("euler_a", None), pair("Euler a", "Automatic"));
    assert_eq!(parse("k_dpm_2_a_ka", None), pair("DPM2 a", "Karras"));
    assert_eq!(parse("k_dpmpp_2m_ka", None), pair("DPM++ 2M", "Karras"));
    assert_eq!(
        parse("dpmpp_2m_sde_karras", None),
        pair("DPM++ 2M SDE", "Karras")
    );
    assert_eq!(
        parse("DPM++ 3M SDE Exponential", None),
        pair("DPM++ 3M SDE", "Exponential")
    );
    assert_eq!(
        parse("DPM++ 2M SDE Heun", None),
        pair("DPM++ 2M SDE Heun", "Exponential")
    );
    assert_eq!(parse("DDIM", None), pair("DDIM", "Automatic"));
    assert_eq!(
        parse("Euler SGMUniform", None),
        pair("Euler", "SGM Uniform")
    );
    assert_eq!(
        parse("Euler a Align Your Steps", None),
        pair("Euler a", "Align Your Steps")
    );

    // ENSD is recorded for the samplers A1111 flags.
    for sampler in samplers.samplers() {
        let expected = matches!(
            sampler.label(),
            "Euler a" | "DPM2 a" | "DPM++ 2S a" | "DPM fast" | "DPM adaptive"
        );
        assert_eq!(sampler.uses_ensd(), expected, "{}", sampler.label());
    }
}

#[test]
fn bad_names_and_step_counts_are_clear_errors() {
    let (samplers, schedulers) = registries();
    let err = SamplerChoice::parse(&samplers, &schedulers, "Euler b", None)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("`Euler b`") && err.contains("Euler a") && err.contains("DPM++ 2M"),
        "{err}"
    );
    let err = SamplerChoice::parse(&samplers, &schedulers, "Euler", Some("Karas"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("`Karas`") && err.contains("Karras") && err.contains("Align Your Steps"),
        "{err}"
    );
    let err = schedulers.get("cosine").err().unwrap().to_string();
    assert!(err.contains("unknown schedule type `cosine`"), "{err}");

    let model = DiscreteSchedule::scaled_linear(0.00085, 0.012, 1000);
    let euler = samplers.get("Euler").unwrap();
    for scheduler in schedulers.schedulers() {
        for steps in [0usize, 1001, usize::MAX] {
            let err = sampler_sigmas(euler.as_ref(), scheduler.as_ref(), &model, steps)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("steps must be between 1 and 1000"),
                "{}: {err}",
                scheduler.label()
            );
        }
        let ok = sampler_sigmas(euler.as_ref(), scheduler.as_ref(), &model, 1000).unwrap();
        assert!(ok.iter().all(|s| s.is_finite()), "{}", scheduler.label());
    }
}

/// The noise an ancestral sampler draws through the pipeline's per-image generators.
struct RngNoise {
    rng: ImageRng,
    shape: Vec<usize>,
}

impl NoiseSampler for RngNoise {
    fn noise(&mut self, _: f32, _: f32) -> Vec<f32> {
        self.rng.next(&self.shape)
    }
}

#[test]
fn ensd_reseeds_the_sampler_noise() {
    let fx = fixture();
    let (samplers, schedulers) = registries();
    let sampler = samplers.get("Euler a").unwrap();
    let sigmas = sampler_sigmas(
        sampler.as_ref(),
        schedulers.get("automatic").unwrap().as_ref(),
        &fx.model,
        8,
    )
    .unwrap();
    let shape = vec![4usize, 4, 4];
    let latent_with = |ensd: u64| {
        let mut rng = ImageRng::new(RngKind::Cpu, &[7], ensd);
        let x0 = rng.first(&shape);
        let mut noise = RngNoise {
            rng,
            shape: shape.clone(),
        };
        (
            x0.clone(),
            run(sampler.as_ref(), &fx.model, &x0, &sigmas, &mut noise),
        )
    };
    let (x0, plain) = latent_with(0);
    let (x0_ensd, with_ensd) = latent_with(31337);
    assert_eq!(x0, x0_ensd, "ENSD must not change the initial noise");
    assert!(
        max_rel_diff(&plain, &with_ensd) > 1e-2,
        "ENSD had no effect"
    );

    // With ENSD the step noise is the stream of a generator seeded seed + ENSD.
    let mut reseeded = TorchCpuGenerator::new(7 + 31337);
    let mut queue = QueueNoise {
        items: (0..8).map(|_| reseeded.randn(64)).collect(),
        used: 0,
    };
    let expected = run(sampler.as_ref(), &fx.model, &x0, &sigmas, &mut queue);
    assert_eq!(with_ensd, expected);
}

#[test]
fn brownian_noise_is_seeded_and_consistent() {
    let (samplers, _) = registries();
    let sde = samplers.get("DPM++ 2M SDE").unwrap();
    let sigmas = [14.6f32, 5.0, 1.0, 0.3, 0.03, 0.0];
    let shape = [4usize, 16, 16];
    let request = |seeds: &'static [u64]| NoiseRequest {
        rng: RngKind::Nv,
        device: Default::default(),
        seeds,
        shape: &shape,
        sigmas: &sigmas,
    };
    let mut a = sde
        .custom_noise(&request(&[3]))
        .expect("SDE samplers bring a Brownian tree");
    let mut b = sde.custom_noise(&request(&[3])).unwrap();
    let mut c = sde.custom_noise(&request(&[4])).unwrap();
    // Same seed → same increments whatever was asked before.
    let later = a.noise(1.0, 0.3);
    let _ = b.noise(14.6, 5.0);
    assert_eq!(b.noise(1.0, 0.3), later);
    assert_ne!(c.noise(1.0, 0.3), later);
    // Increments add up: W(0.3)−W(5) = (W(1)−W(5)) + (W(0.3)−W(1)).
    let whole: Vec<f32> = a
        .noise(5.0, 0.3)
        .iter()
        .map(|v| v * 4.7f32.sqrt())
        .collect();
    let first = a.noise(5.0, 1.0);
    let second = a.noise(1.0, 0.3);
    for k in 0..whole.len() {
        let sum = first[k] * 4.0f32.sqrt() + second[k] * 0.7f32.sqrt();
        assert!((sum - whole[k]).abs() < 1e-4, "{k}: {sum} vs {}", whole[k]);
    }
    // Standard normal per element.
    let n = later.len() as f32;
    let mean = later.iter().sum::<f32>() / n;
    let var = later.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    assert!(
        mean.abs() < 0.1 && (var - 1.0).abs() < 0.15,
        "mean {mean} var {var}"
    );
    // Batches are the per-image trees side by side.
    let mut batch = sde.custom_noise(&request(&[3, 4])).unwrap();
    let both = batch.noise(1.0, 0.3);
    assert_eq!(&both[..later.len()], &later[..]);
    assert!(samplers
        .get("Euler a")
        .unwrap()
        .custom_noise(&request(&[3]))
        .is_none());
}

/// Which sampler takes which tunable parameter, as A1111's `initialize` decides: `Eta` for
/// every k-diffusion function with an `eta` argument, `Eta DDIM` for DDIM, the churn set
/// for Euler, Heun and DPM2 (`sampler_extra_params`), nothing for the rest. A tuned sampler
/// reports the non-default values under A1111's infotext keys.
#[test]
fn tunable_parameters_follow_a1111s_sampler_table() {
    let (samplers, _) = registries();
    let all = SamplerParams {
        eta: Some(0.5),
        eta_ddim: Some(0.25),
        s_churn: Some(1.0),
        s_tmin: Some(0.1),
        s_tmax: Some(10.0),
        s_noise: Some(0.9),
        ..Default::default()
    };
    let eta = ["Eta"];
    let churn = ["Sigma churn", "Sigma tmin", "Sigma tmax", "Sigma noise"];
    let expected: &[(&str, &[&str])] = &[
        ("Euler a", &eta),
        ("DPM2 a", &eta),
        ("DPM++ 2S a", &eta),
        ("DPM++ SDE", &eta),
        ("DPM++ 2M SDE", &eta),
        ("DPM++ 2M SDE Heun", &eta),
        ("DPM++ 3M SDE", &eta),
        ("DPM fast", &eta),
        ("DPM adaptive", &eta),
        ("DDIM", &["Eta DDIM"]),
        ("Euler", &churn),
        ("Heun", &churn),
        ("DPM2", &churn),
        ("LMS", &[]),
        ("DPM++ 2M", &[]),
        ("Restart", &[]),
        ("PLMS", &[]),
        ("UniPC", &[]),
    ];
    for (label, keys) in expected {
        let sampler = samplers.get(label).unwrap();
        assert!(sampler.params_infotext().is_empty(), "{label} at defaults");
        let tuned = sampler.with_params(&all);
        let written: Vec<&str> = tuned
            .as_ref()
            .map(|t| t.params_infotext().into_iter().map(|(k, _)| k).collect())
            .unwrap_or_default();
        assert_eq!(&written, keys, "{label}");
        if let Some(t) = tuned {
            assert_eq!(t.label(), *label);
        }
    }
    // Values equal to the defaults are not written; s_tmax 0 means "no limit".
    let defaults = SamplerParams {
        eta: Some(1.0),
        s_churn: Some(0.0),
        s_tmax: Some(0.0),
        s_noise: Some(1.0),
        ..Default::default()
    };
    for label in ["Euler a", "Euler"] {
        let tuned = samplers.get(label).unwrap().with_params(&defaults).unwrap();
        assert!(tuned.params_infotext().is_empty(), "{label}");
    }
}

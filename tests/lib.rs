//! Shared helpers for the integration tests in `tests/tests/`: where the committed tiny
//! model and the golden outputs written by `tests/fixtures/make_fixtures.py` live, and
//! small comparison utilities with tolerances stated by each test.

pub mod fuzz;
mod img2img_cases;
pub mod tiny_networks;

pub use img2img_cases::{img2img_cases, img2img_golden, tiny_model, txt2img_params_of};
use std::path::PathBuf;

/// `tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `tests/fixtures/models` (an A1111-style models folder holding the tiny model).
pub fn models_dir() -> PathBuf {
    fixtures_dir().join("models")
}

/// `tests/fixtures/golden/<name>`.
pub fn golden_path(name: &str) -> PathBuf {
    fixtures_dir().join("golden").join(name)
}

/// The CPU backend in bf16: bf16 products where the CPU has bf16 arithmetic, bf16 weights
/// in f32 products elsewhere; the kernel is named on stderr so that a test log says which
/// of the two its bf16 results came from.
pub fn bf16_backend() -> easel_candle::CandleBackend {
    use easel_candle::{gemm, CandleBackend, Precision};
    eprintln!("bf16 products on {}", gemm::kernel_name(Precision::Bf16));
    CandleBackend::cpu().with_precision(Precision::Bf16)
}

/// Largest absolute difference between two equally long slices.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Largest absolute difference divided by the largest magnitude in `reference`.
pub fn max_rel_diff(actual: &[f32], reference: &[f32]) -> f32 {
    let scale = reference
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1e-12);
    max_abs_diff(actual, reference) / scale
}

/// A sampler by A1111 name and the schedule it actually uses for `schedule_type`
/// (`None` = Automatic), from the bundled sampler plugin.
pub fn sampler_and_schedule(
    sampler: &str,
    schedule_type: Option<&str>,
) -> (
    std::sync::Arc<dyn easel_core::sampler::Sampler>,
    std::sync::Arc<dyn easel_core::scheduler::Scheduler>,
) {
    use easel_core::registry::{SamplerChoice, SamplerRegistry, SchedulerRegistry};
    let mut samplers = SamplerRegistry::new();
    easel_samplers::register_all(&mut samplers);
    let mut schedulers = SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut schedulers);
    let choice = SamplerChoice::parse(&samplers, &schedulers, sampler, schedule_type).unwrap();
    let effective = schedulers
        .effective(choice.sampler.as_ref(), &choice.scheduler)
        .unwrap();
    (choice.sampler, effective)
}

/// Deterministic pseudo-random values in [-scale, scale) (64-bit LCG), for operation tests
/// that compare two backends on the same inputs.
pub fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

/// A scratch folder named from `prefix`, removed with what the test wrote when the returned
/// guard drops (pass or fail), so runs leave nothing in the temp dir.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{prefix}-"))
        .tempdir()
        .unwrap()
}

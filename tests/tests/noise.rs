//! Noise generators against `golden/noise.json` + `golden/noise.safetensors`, written by
//! `make_fixtures.py` from PyPI torch (`rng: "cpu"`, `torch.randn` with a seeded
//! `torch.Generator`) and from A1111's numpy Philox (`rng: "philox"`).
//!
//! Tolerances:
//! - CPU, 16 or more elements: bit-exact (the fixture machine's torch takes the AVX2
//!   Box–Muller kernel, which `TorchCpuGenerator::new` imitates).
//! - CPU, fewer than 16 elements: 1e-6 (double-precision normals rounded to f32; they
//!   depend on libm `log1p`/`sin`/`cos`).
//! - Philox: 1e-6 (A1111 computes in float64 with numpy's `log`/`sin`, which may round a
//!   last double bit differently from this platform's libm).

use std::collections::BTreeMap;

use easel_core::noise::{ImageRng, NoiseSource, PhiloxGenerator, RngKind, TorchCpuGenerator};
use easel_tests::golden_path;
use serde_json::Value;

struct Case {
    name: String,
    rng: String,
    seed: u64,
    shape: Vec<usize>,
    draw: usize,
}

fn cases() -> Vec<Case> {
    let path = golden_path("noise.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_fixtures.py noise)", path.display()));
    let json: Value = serde_json::from_str(&text).expect("noise.json");
    json.as_array()
        .expect("noise.json: a list of cases")
        .iter()
        .map(|case| Case {
            name: case["name"].as_str().expect("name").to_owned(),
            rng: case["rng"].as_str().expect("rng").to_owned(),
            seed: case["seed"].as_u64().expect("seed"),
            shape: case["shape"]
                .as_array()
                .expect("shape")
                .iter()
                .map(|d| d.as_u64().expect("dim") as usize)
                .collect(),
            draw: case["draw"].as_u64().expect("draw") as usize,
        })
        .collect()
}

/// The F32 tensors of a safetensors file: 8-byte little-endian header length, JSON
/// header of `{name: {dtype, shape, data_offsets}}`, then the raw data.
fn golden_tensors() -> BTreeMap<String, Vec<f32>> {
    let path = golden_path("noise.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).expect("header");
    let data = &bytes[8 + header_len..];
    header
        .as_object()
        .expect("header object")
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .map(|(name, info)| {
            assert_eq!(info["dtype"], "F32", "{name}");
            let offsets = &info["data_offsets"];
            let (begin, end) = (
                offsets[0].as_u64().unwrap() as usize,
                offsets[1].as_u64().unwrap() as usize,
            );
            let values = data[begin..end]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (name.clone(), values)
        })
        .collect()
}

fn generator_for(case: &Case) -> Box<dyn NoiseSource> {
    match case.rng.as_str() {
        "cpu" => Box::new(TorchCpuGenerator::new(case.seed)),
        "philox" | "gpu" | "nv" => Box::new(PhiloxGenerator::new(case.seed)),
        other => panic!("{}: unknown rng `{other}`", case.name),
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn every_golden_draw_matches() {
    let tensors = golden_tensors();
    let cases = cases();
    assert!(!cases.is_empty());
    for case in &cases {
        let want = &tensors[&case.name];
        let n: usize = case.shape.iter().product();
        assert_eq!(want.len(), n, "{}", case.name);
        let mut generator = generator_for(case);
        let mut got = generator.randn(n);
        for _ in 0..case.draw {
            got = generator.randn(n);
        }
        if case.rng == "cpu" && n >= 16 {
            let mismatched = got
                .iter()
                .zip(want)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            assert_eq!(mismatched, 0, "{}: {mismatched} of {n} differ", case.name);
        } else {
            let diff = max_abs_diff(&got, want);
            assert!(diff <= 1e-6, "{}: max abs diff {diff}", case.name);
        }
    }
}

/// `ImageRng` with one seed per image reproduces the per-seed draws, concatenated.
#[test]
fn image_rng_concatenates_per_seed_draws() {
    let tensors = golden_tensors();
    for (kind, prefix) in [(RngKind::Cpu, "cpu"), (RngKind::Nv, "philox")] {
        let mut rng = ImageRng::new(kind, &[0, 1, 42], 0);
        for draw in 0..2 {
            let got = rng.next(&[4, 8, 8]);
            let want: Vec<f32> = [0, 1, 42]
                .iter()
                .flat_map(|seed| tensors[&format!("{prefix}_s{seed}_4x8x8_d{draw}")].clone())
                .collect();
            assert!(max_abs_diff(&got, &want) <= 1e-6, "{prefix} draw {draw}");
            if kind == RngKind::Cpu {
                assert_eq!(got, want, "{prefix} draw {draw}: CPU noise is bit-exact");
            }
        }
    }
}

/// With ENSD, the draw after the first comes from a generator seeded `seed + ENSD`.
#[test]
fn ensd_reseeds_with_seed_plus_delta() {
    let tensors = golden_tensors();
    // 3007891423 = 0 + ENSD is one of the golden seeds.
    let mut rng = ImageRng::new(RngKind::Cpu, &[0], 3_007_891_423);
    assert_eq!(rng.first(&[4, 8, 8]), tensors["cpu_s0_4x8x8_d0"]);
    assert_eq!(rng.next(&[4, 8, 8]), tensors["cpu_s3007891423_4x8x8_d0"]);
    assert_eq!(rng.next(&[4, 8, 8]), tensors["cpu_s3007891423_4x8x8_d1"]);
}

//! Upscaler models against spandrel (the library A1111 ≥ 1.8 runs them with) and A1111's
//! tiling, on the tiny random networks `tests/fixtures/upscalers/make_upscaler_fixtures.py`
//! writes: every architecture and key layout (ESRGAN's original names, Real-ESRGAN's
//! BasicSR names with pixel unshuffle for x2 and x1, the compact SRVGGNet, SwinIR's
//! real-world and lightweight heads), from `.pth` and `.safetensors`.
//!
//! Tolerances: the raw network output (floats in [0, 1]) within 2e-5 of spandrel's (f32
//! summation order only; observed ≤ 1.4e-6). The 8-bit A1111 results may differ by one step
//! where a value sits within that float noise of a rounding boundary: at most 1 per byte,
//! on at most 0.5% of the bytes (observed: at most 2 bytes in a case).
//!
//! The same checks run on a backend that has only the required operations, so the trait's
//! default (host) versions of the upscaler operations — what the wgpu backend runs — are
//! checked too; and on the wgpu backend itself (set `EASEL_SKIP_WGPU=1` on a machine
//! without Vulkan/Metal/DX12).

use easel_candle::CandleBackend;
use easel_core::backend::Backend;
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::Result;
use easel_tests::fixtures_dir;
use easel_upscalers::pixels::rgb8_to_bgr;
use easel_upscalers::{
    find_upscaler, list_upscalers, ModelUpscaler, Rgb8, TileSettings, Tiling, UpscalerFolder,
    UpscalerModel,
};
use std::path::PathBuf;

const RAW_TOL: f32 = 2e-5;

fn dir() -> PathBuf {
    fixtures_dir().join("upscalers")
}

fn expected() -> (serde_json::Value, TensorStore) {
    let json = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    let store = open_tensor_store(&dir().join("expected.safetensors")).unwrap();
    (serde_json::from_str(&json).unwrap(), store)
}

fn image(store: &TensorStore, key: &str) -> Rgb8 {
    let info = store.info(key).unwrap();
    let (h, w) = (info.shape[0], info.shape[1]);
    let data = store
        .read_f32(key)
        .unwrap()
        .iter()
        .map(|&v| v as u8)
        .collect();
    Rgb8 {
        width: w,
        height: h,
        data,
    }
}

fn cases(json: &serde_json::Value) -> Vec<serde_json::Value> {
    json["cases"].as_array().unwrap().clone()
}

fn folder(name: &str) -> UpscalerFolder {
    match name {
        "ESRGAN" => UpscalerFolder::Esrgan,
        "RealESRGAN" => UpscalerFolder::RealEsrgan,
        "SwinIR" => UpscalerFolder::SwinIr,
        other => panic!("folder {other}"),
    }
}

/// Raw outputs (spandrel's descriptor call) for every case on backend `b`.
fn check_raw<B: Backend>(b: &B, what: &str) {
    let (json, store) = expected();
    let input = image(&store, "input_a");
    let x = rgb8_to_bgr(&input);
    for case in cases(&json) {
        let name = case["name"].as_str().unwrap();
        let path = dir().join("models").join(case["file"].as_str().unwrap());
        let model = UpscalerModel::load(b, &path).unwrap();
        assert_eq!(model.architecture().name(), case["architecture"], "{name}");
        assert_eq!(
            model.scale() as u64,
            case["scale"].as_u64().unwrap(),
            "{name}"
        );
        let got = model.run(b, &x, input.height, input.width).unwrap();
        let want = store.read_f32(&format!("{name}.raw")).unwrap();
        let diff = easel_tests::max_abs_diff(&got, &want);
        eprintln!("{what} {name}: raw max diff {diff:e}");
        assert!(
            diff <= RAW_TOL,
            "{what} {name}: raw output differs by {diff}"
        );
    }
}

fn check_bytes(got: &Rgb8, want: &Rgb8, what: &str) {
    assert_eq!(
        (got.width, got.height),
        (want.width, want.height),
        "{what}: size"
    );
    let mut off = 0usize;
    for (a, b) in got.data.iter().zip(&want.data) {
        let d = a.abs_diff(*b);
        assert!(d <= 1, "{what}: a byte differs by {d}");
        off += usize::from(d != 0);
    }
    eprintln!("{what}: {off} of {} bytes off by one", got.data.len());
    assert!(off * 200 <= got.data.len(), "{what}: {off} bytes differ");
}

/// A1111's 8-bit results: untiled, small tiles, and the default 192/8 on a small image.
fn check_pipeline<B: Backend + Clone>(b: &B, what: &str) {
    let (json, store) = expected();
    let (a, small) = (image(&store, "input_a"), image(&store, "input_b"));
    for case in cases(&json) {
        let name = case["name"].as_str().unwrap();
        let path = dir().join("models").join(case["file"].as_str().unwrap());
        let f = folder(case["folder"].as_str().unwrap());
        let tiled = TileSettings {
            tile: case["tiled"]["tile"].as_u64().unwrap() as usize,
            overlap: case["tiled"]["overlap"].as_u64().unwrap() as usize,
        };
        for (label, settings, input) in [
            (
                "untiled",
                TileSettings {
                    tile: 0,
                    overlap: 0,
                },
                &a,
            ),
            ("tiled", tiled, &a),
            ("default", TileSettings::A1111, &small),
        ] {
            let model = UpscalerModel::load(b, &path).unwrap();
            let up = ModelUpscaler::new(name, b.clone(), model, Tiling::for_folder(f, settings));
            let got = up.upscale_rgb(input).unwrap();
            let want = image(&store, &format!("{name}.{label}"));
            check_bytes(&got, &want, &format!("{what} {name} {label}"));
        }
    }
}

#[test]
fn every_architecture_matches_spandrel_on_the_cpu() {
    check_raw(&CandleBackend::cpu(), "cpu");
}

#[test]
fn a1111_tiling_matches_on_the_cpu() {
    check_pipeline(&CandleBackend::cpu(), "cpu");
}

/// The CPU backend with only the trait's required operations: the upscaler operations
/// run through their default (host round-trip) versions.
#[derive(Clone)]
struct DefaultsOnly(CandleBackend);

type T = <CandleBackend as Backend>::Tensor;

impl Backend for DefaultsOnly {
    type Tensor = T;
    fn name(&self) -> String {
        "defaults".into()
    }
    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<T> {
        self.0.upload(data, shape)
    }
    fn download(&self, t: &T) -> Result<Vec<f32>> {
        self.0.download(t)
    }
    fn shape(&self, t: &T) -> Vec<usize> {
        self.0.shape(t)
    }
    fn reshape(&self, t: &T, shape: &[usize]) -> Result<T> {
        self.0.reshape(t, shape)
    }
    fn nchw_to_nlc(&self, x: &T) -> Result<T> {
        self.0.nchw_to_nlc(x)
    }
    fn nlc_to_nchw(&self, x: &T, h: usize, w: usize) -> Result<T> {
        self.0.nlc_to_nchw(x, h, w)
    }
    fn concat(&self, xs: &[&T], dim: usize) -> Result<T> {
        self.0.concat(xs, dim)
    }
    fn narrow(&self, x: &T, dim: usize, start: usize, len: usize) -> Result<T> {
        self.0.narrow(x, dim, start, len)
    }
    fn add(&self, a: &T, b: &T) -> Result<T> {
        self.0.add(a, b)
    }
    fn mul(&self, a: &T, b: &T) -> Result<T> {
        self.0.mul(a, b)
    }
    fn scale(&self, a: &T, s: f32) -> Result<T> {
        self.0.scale(a, s)
    }
    fn add_channel_vector(&self, x: &T, v: &T) -> Result<T> {
        self.0.add_channel_vector(x, v)
    }
    fn silu(&self, x: &T) -> Result<T> {
        self.0.silu(x)
    }
    fn gelu(&self, x: &T) -> Result<T> {
        self.0.gelu(x)
    }
    fn quick_gelu(&self, x: &T) -> Result<T> {
        self.0.quick_gelu(x)
    }
    fn geglu(&self, x: &T) -> Result<T> {
        self.0.geglu(x)
    }
    fn linear(&self, x: &T, w: &T, b: Option<&T>) -> Result<T> {
        self.0.linear(x, w, b)
    }
    fn conv2d(&self, x: &T, w: &T, b: Option<&T>, stride: usize, padding: usize) -> Result<T> {
        self.0.conv2d(x, w, b, stride, padding)
    }
    fn group_norm(&self, x: &T, g: usize, gamma: &T, beta: &T, eps: f32, silu: bool) -> Result<T> {
        self.0.group_norm(x, g, gamma, beta, eps, silu)
    }
    fn layer_norm(&self, x: &T, gamma: &T, beta: &T, eps: f32) -> Result<T> {
        self.0.layer_norm(x, gamma, beta, eps)
    }
    fn attention(&self, q: &T, k: &T, v: &T, heads: usize, causal: bool) -> Result<T> {
        self.0.attention(q, k, v, heads, causal)
    }
    fn upsample_nearest2x(&self, x: &T) -> Result<T> {
        self.0.upsample_nearest2x(x)
    }
    fn embedding(&self, table: &T, ids: &[u32]) -> Result<T> {
        self.0.embedding(table, ids)
    }
}

#[test]
fn default_host_operations_match_spandrel() {
    let b = DefaultsOnly(CandleBackend::cpu());
    check_raw(&b, "defaults");
}

#[test]
fn wgpu_backend_matches_spandrel() {
    if std::env::var("EASEL_SKIP_WGPU").is_ok_and(|v| v == "1") {
        eprintln!("EASEL_SKIP_WGPU=1: skipping the wgpu upscaler test");
        return;
    }
    let b = easel_wgpu::WgpuBackend::new_blocking(easel_wgpu::WgpuOptions::default())
        .unwrap_or_else(|e| {
            panic!("wgpu backend unavailable: {e}\n(set EASEL_SKIP_WGPU=1 to skip these tests)")
        });
    check_raw(&b, "wgpu");
}

#[test]
fn folders_are_listed_and_named_as_a1111_names_them() {
    let models = dir().join("models");
    let names: Vec<String> = list_upscalers(&models)
        .into_iter()
        .map(|e| e.name)
        .collect();
    // RealESRGAN releases under A1111's names, the rest by stem; sorted case-insensitively.
    assert_eq!(
        names,
        [
            "R-ESRGAN 2x+",
            "R-ESRGAN AnimeVideo",
            "tiny-compact-x2",
            "tiny-esrgan-x4",
            "tiny-realesrgan-x1",
            "tiny-swinir-light-x2",
            "tiny-swinir-real-x4",
        ]
    );
    let e = find_upscaler(&models, "R-ESRGAN 2x+").unwrap();
    assert_eq!(e.folder, UpscalerFolder::RealEsrgan);
    assert!(e.path.ends_with("RealESRGAN_x2plus.pth"));
    let err = find_upscaler(&models, "nope").unwrap_err().to_string();
    assert!(
        err.contains("`nope`") && err.contains("tiny-esrgan-x4"),
        "{err}"
    );
}

fn load_err(file: &str) -> String {
    let path = dir().join("bad").join(file);
    match UpscalerModel::load(&CandleBackend::cpu(), &path) {
        Ok(_) => panic!("{file} loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_files_are_clear_errors() {
    let (json, _) = expected();
    // spandrel refuses every one of them too.
    for f in [
        "unknown-arch.pth",
        "truncated.pth",
        "forbidden-global.pth",
        "wrong-shape.safetensors",
    ] {
        assert!(json["bad"][f].is_string(), "spandrel accepted {f}");
    }
    let e = load_err("unknown-arch.pth");
    assert!(
        e.contains("unknown-arch.pth")
            && e.contains("unknown upscaler architecture")
            && e.contains("`decoder.bias`")
            && e.contains("`encoder.weight`"),
        "{e}"
    );
    let e = load_err("truncated.pth");
    assert!(e.contains("truncated.pth"), "{e}");
    let e = load_err("forbidden-global.pth");
    assert!(
        e.contains("forbidden-global.pth") && e.contains("print"),
        "{e}"
    );
    let e = load_err("wrong-shape.safetensors");
    assert!(
        e.contains("wrong-shape.safetensors") && e.contains("body.3.weight"),
        "{e}"
    );
}

#[test]
fn overlap_not_smaller_than_the_tile_is_refused() {
    let b = CandleBackend::cpu();
    let path = dir().join("models/ESRGAN/tiny-compact-x2.safetensors");
    let model = UpscalerModel::load(&b, &path).unwrap();
    let up = ModelUpscaler::new(
        "x",
        b,
        model,
        Tiling::Grid(TileSettings {
            tile: 8,
            overlap: 8,
        }),
    );
    let img = Rgb8::new(20, 20);
    let e = up.upscale_rgb(&img).unwrap_err().to_string();
    assert!(e.contains("overlap 8") && e.contains("tile size 8"), "{e}");
}

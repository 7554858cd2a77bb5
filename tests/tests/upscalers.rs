//! Upscaler models against spandrel (the library A1111 ≥ 1.8 runs them with) and A1111's
//! tiling, on the tiny random networks `tests/fixtures/upscalers/make_upscaler_fixtures.py`
//! writes: every architecture and key layout (ESRGAN's original names, Real-ESRGAN's
//! BasicSR names with pixel unshuffle for x2 and x1, the compact SRVGGNet, SwinIR's
//! real-world and lightweight heads), from `.pth` and `.safetensors`.
//!
//! Tolerances: the raw network output (floats in [0, 1]) within 2e-5 of spandrel's (f32
//! summation order only; observed ≤ 1.4e-6 on the CPU, ≤ 2.1e-6 on wgpu). The 8-bit A1111
//! results may differ by one step where a value sits within that float noise of a rounding
//! boundary: at most 1 per byte, on at most 0.5% of the bytes (observed: at most 2 bytes in
//! a case against spandrel's, 3 between the wgpu and the CPU backend).
//!
//! The same checks run on a backend that has only the required operations, so the trait's
//! default (host) versions of the upscaler operations are checked too; and on the wgpu
//! backend, whose own kernels run them (set `EASEL_SKIP_WGPU=1` on a machine without
//! Vulkan/Metal/DX12).
//!
//! The async path (hires fix's, and the only one a browser's WebGPU backend allows) must
//! give the blocking path's exact bytes, also on a backend whose blocking `download` is
//! refused, and run every architecture on the wgpu backend with its blocking `download`
//! refused (as in the browser); and model files handed in open (the page's picked files)
//! must behave as the same files in a models folder.

use easel_candle::CandleBackend;
use easel_core::backend::{Backend, LocalBoxFuture};
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::image::{upscale, upscale_async, RgbImage, UpscaleTarget};
use easel_core::io::{ByteSource, FileSource, MemorySource};
use easel_core::pipeline::CancelToken;
use easel_core::registry::{SamplerRegistry, SchedulerRegistry};
use easel_core::sampler::block_on;
use easel_core::service::{GenerationService, GenerationSettings};
use easel_core::{ElementwiseFn, Error, Result};
use easel_tests::fixtures_dir;
use easel_upscalers::pixels::rgb8_to_bgr;
use easel_upscalers::{
    find_upscaler, folder_upscalers, list_source_upscalers, list_upscalers, source_upscalers,
    ModelUpscaler, Rgb8, TileSettings, Tiling, UpscalerFolder, UpscalerModel,
};
use easel_wgpu::{WgpuBackend, WgpuOptions};
use std::path::PathBuf;
use std::sync::Arc;

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

/// One network of the fixtures: its name, its model file and its entry in `expected.json`.
struct Case {
    name: String,
    path: PathBuf,
    json: serde_json::Value,
}

impl Case {
    /// Where A1111's 8-bit results are checked: untiled and in the case's small tiles on
    /// `a`, and in the default 192/8 tiles on the `small` image, each in the tiling of the
    /// case's folder.
    fn tilings<'a>(&self, a: &'a Rgb8, small: &'a Rgb8) -> [(&'static str, Tiling, &'a Rgb8); 3] {
        let tiled = TileSettings {
            tile: self.json["tiled"]["tile"].as_u64().unwrap() as usize,
            overlap: self.json["tiled"]["overlap"].as_u64().unwrap() as usize,
        };
        let untiled = TileSettings {
            tile: 0,
            overlap: 0,
        };
        let f = folder(self.json["folder"].as_str().unwrap());
        [
            ("untiled", untiled, a),
            ("tiled", tiled, a),
            ("default", TileSettings::A1111, small),
        ]
        .map(|(label, settings, input)| (label, Tiling::for_folder(f, settings), input))
    }
}

fn cases(json: &serde_json::Value) -> Vec<Case> {
    let cases = json["cases"].as_array().unwrap();
    cases
        .iter()
        .map(|case| Case {
            name: case["name"].as_str().unwrap().to_string(),
            path: dir().join("models").join(case["file"].as_str().unwrap()),
            json: case.clone(),
        })
        .collect()
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
        let name = &case.name;
        let model = UpscalerModel::load(b, &case.path).unwrap();
        assert_eq!(
            model.architecture().name(),
            case.json["architecture"],
            "{name}"
        );
        assert_eq!(
            model.scale() as u64,
            case.json["scale"].as_u64().unwrap(),
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
        let name = &case.name;
        for (label, tiling, input) in case.tilings(&a, &small) {
            let model = UpscalerModel::load(b, &case.path).unwrap();
            let up = ModelUpscaler::new(name, b.clone(), model, tiling);
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

type T = <CandleBackend as Backend>::Tensor;

/// The trait's required tensor operations (all but `name`, `upload` and `download`),
/// passed on to the wrapped CPU backend `self.0`.
macro_rules! delegate_required_ops {
    () => {
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
        fn group_norm(
            &self,
            x: &T,
            g: usize,
            gamma: &T,
            beta: &T,
            eps: f32,
            silu: bool,
        ) -> Result<T> {
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
    };
}

/// The CPU backend with only the trait's required operations: the upscaler operations
/// run through their default (host round-trip) versions.
#[derive(Clone)]
struct DefaultsOnly(CandleBackend);

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
    delegate_required_ops!();
}

#[test]
fn default_host_operations_match_spandrel() {
    let b = DefaultsOnly(CandleBackend::cpu());
    check_raw(&b, "defaults");
}

/// The wgpu backend with `options`, or `None` where `EASEL_SKIP_WGPU=1`.
fn wgpu_backend(options: WgpuOptions) -> Option<WgpuBackend> {
    if std::env::var("EASEL_SKIP_WGPU").is_ok_and(|v| v == "1") {
        eprintln!("EASEL_SKIP_WGPU=1: skipping the wgpu upscaler test");
        return None;
    }
    Some(WgpuBackend::new_blocking(options).unwrap_or_else(|e| {
        panic!("wgpu backend unavailable: {e}\n(set EASEL_SKIP_WGPU=1 to skip these tests)")
    }))
}

#[test]
fn wgpu_backend_matches_spandrel() {
    if let Some(b) = wgpu_backend(WgpuOptions::default()) {
        check_raw(&b, "wgpu");
    }
}

/// Every architecture on the wgpu backend as the browser runs it: the blocking `download`
/// refused (`refuse_blocking_download` does natively what WebGPU does, inside the backend,
/// so an operation left to the trait's host default fails instead of reading back
/// unnoticed, which a wrapper around the backend could not see), results read back only
/// through `run_async` and `upscale_rgb_async`. Raw outputs within `RAW_TOL` of the CPU
/// backend's and of spandrel's (the fixtures' weights are f16, which the wgpu backend
/// stores exactly; observed ≤ 1.6e-6 from the CPU backend, ≤ 2.1e-6 from spandrel), and
/// the 8-bit results, untiled and in both of A1111's tilings, as close to the CPU
/// backend's as `check_bytes` allows (observed: at most 3 bytes off by one in a case).
#[test]
fn wgpu_upscales_without_blocking_read_back() {
    let Some(b) = wgpu_backend(WgpuOptions {
        refuse_blocking_download: true,
        ..Default::default()
    }) else {
        return;
    };
    let cpu = CandleBackend::cpu();
    let (json, store) = expected();
    let (a, small) = (image(&store, "input_a"), image(&store, "input_b"));
    let x = rgb8_to_bgr(&a);
    for case in cases(&json) {
        let (name, path) = (&case.name, &case.path);
        let model = UpscalerModel::load(&b, path).unwrap();
        let e = model.run(&b, &x, a.height, a.width).unwrap_err();
        assert!(e.to_string().contains("download_async"), "{name}: {e}");
        let got = block_on(model.run_async(&b, &x, a.height, a.width)).unwrap();
        let want = UpscalerModel::load(&cpu, path)
            .unwrap()
            .run(&cpu, &x, a.height, a.width)
            .unwrap();
        let spandrel = store.read_f32(&format!("{name}.raw")).unwrap();
        let (diff, ref_diff) = (
            easel_tests::max_abs_diff(&got, &want),
            easel_tests::max_abs_diff(&got, &spandrel),
        );
        eprintln!("wgpu async {name}: raw max diff {diff:e} from cpu, {ref_diff:e} from spandrel");
        assert!(
            diff <= RAW_TOL && ref_diff <= RAW_TOL,
            "{name}: raw output differs by {diff} (cpu), {ref_diff} (spandrel)"
        );
        for (label, tiling, input) in case.tilings(&a, &small) {
            let cpu_model = UpscalerModel::load(&cpu, path).unwrap();
            let want = ModelUpscaler::new(name, cpu.clone(), cpu_model, tiling)
                .upscale_rgb(input)
                .unwrap();
            let wgpu_model = UpscalerModel::load(&b, path).unwrap();
            let up = ModelUpscaler::new(name, b.clone(), wgpu_model, tiling);
            let got = block_on(up.upscale_rgb_async(input)).unwrap();
            check_bytes(&got, &want, &format!("wgpu async {name} {label}"));
        }
    }
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

/// The CPU backend as the browser's WebGPU backend behaves towards the host: `download`
/// is refused and only `download_async` reads a tensor back. Every operation, the upscaler
/// ones included, is the CPU backend's own, so results must equal its results exactly.
#[derive(Clone)]
struct NoSyncDownload(CandleBackend);

const REFUSED: &str = "reads tensors back only with download_async";

impl Backend for NoSyncDownload {
    type Tensor = T;
    fn name(&self) -> String {
        "no blocking read-back".into()
    }
    fn upload(&self, data: &[f32], shape: &[usize]) -> Result<T> {
        self.0.upload(data, shape)
    }
    fn upload_weight(&self, data: &[f32], shape: &[usize]) -> Result<T> {
        self.0.upload_weight(data, shape)
    }
    fn download(&self, _: &T) -> Result<Vec<f32>> {
        Err(Error::Backend(format!("this backend {REFUSED}")))
    }
    fn download_async<'a>(&'a self, t: &'a T) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        self.0.download_async(t)
    }
    delegate_required_ops!();
    fn elementwise(&self, x: &T, f: ElementwiseFn) -> Result<T> {
        self.0.elementwise(x, f)
    }
    fn leaky_relu(&self, x: &T, slope: f32) -> Result<T> {
        self.0.leaky_relu(x, slope)
    }
    fn prelu(&self, x: &T, weight: &T) -> Result<T> {
        self.0.prelu(x, weight)
    }
    fn pixel_shuffle(&self, x: &T, r: usize) -> Result<T> {
        self.0.pixel_shuffle(x, r)
    }
    fn pixel_unshuffle(&self, x: &T, r: usize) -> Result<T> {
        self.0.pixel_unshuffle(x, r)
    }
    fn window_partition(&self, x: &T, h: usize, w: usize, win: usize, shift: usize) -> Result<T> {
        self.0.window_partition(x, h, w, win, shift)
    }
    fn window_merge(&self, x: &T, h: usize, w: usize, win: usize, shift: usize) -> Result<T> {
        self.0.window_merge(x, h, w, win, shift)
    }
    fn window_attention(
        &self,
        q: &T,
        k: &T,
        v: &T,
        heads: usize,
        bias: &T,
        mask: Option<&T>,
    ) -> Result<T> {
        self.0.window_attention(q, k, v, heads, bias, mask)
    }
}

fn rgb_image(img: &Rgb8) -> RgbImage {
    RgbImage::new(img.width, img.height, img.data.clone()).unwrap()
}

/// The async path (what hires fix takes) gives the blocking path's exact result for every
/// architecture, untiled and in both of A1111's tilings, through the model, the tiled
/// upscaler and core's upscale loop; on a backend that refuses the blocking read-back too.
#[test]
fn async_upscaling_matches_blocking_exactly() {
    let cpu = CandleBackend::cpu();
    let refusing = NoSyncDownload(cpu.clone());
    let (json, store) = expected();
    let (a, small) = (image(&store, "input_a"), image(&store, "input_b"));
    let x = rgb8_to_bgr(&a);
    for case in cases(&json) {
        let (name, path) = (&case.name, &case.path);
        let model = UpscalerModel::load(&cpu, path).unwrap();
        let want = model.run(&cpu, &x, a.height, a.width).unwrap();
        let got = block_on(model.run_async(&cpu, &x, a.height, a.width)).unwrap();
        assert_eq!(got, want, "{name}: run_async");
        let model = UpscalerModel::load(&refusing, path).unwrap();
        let got = block_on(model.run_async(&refusing, &x, a.height, a.width)).unwrap();
        assert_eq!(got, want, "{name}: run_async without blocking read-back");
        let e = model.run(&refusing, &x, a.height, a.width).unwrap_err();
        assert!(e.to_string().contains(REFUSED), "{name}: {e}");
        for (label, tiling, input) in case.tilings(&a, &small) {
            let what = format!("{name} {label}");
            let blocking = ModelUpscaler::new(
                name,
                cpu.clone(),
                UpscalerModel::load(&cpu, path).unwrap(),
                tiling,
            );
            let want = blocking.upscale_rgb(input).unwrap();
            let got = block_on(blocking.upscale_rgb_async(input)).unwrap();
            assert_eq!(got, want, "{what}: upscale_rgb_async");
            let up = ModelUpscaler::new(
                name,
                refusing.clone(),
                UpscalerModel::load(&refusing, path).unwrap(),
                tiling,
            );
            let got = block_on(up.upscale_rgb_async(input)).unwrap();
            assert_eq!(got, want, "{what}: without blocking read-back");
            assert!(
                up.upscale_rgb(input).is_err(),
                "{what}: download not refused"
            );
            // A1111's loop (several passes of a small model, then Lanczos), as hires fix
            // and Extras run it.
            let img = rgb_image(input);
            let target = UpscaleTarget::Scale(2.5);
            let want = upscale(&img, target, &blocking).unwrap();
            let got = block_on(upscale_async(&img, target, &up)).unwrap();
            assert_eq!(got, want, "{what}: upscale_async");
        }
    }
}

/// One 64×64 txt2img with hires fix ×2 through `upscaler`, as a front end runs it.
fn hires_with<B>(b: B, upscaler: &str, tiles: TileSettings) -> Vec<u8>
where
    B: Backend + Clone + Send + Sync,
    B::Tensor: Send + Sync,
{
    let mut samplers = SamplerRegistry::new();
    easel_samplers::register_all(&mut samplers);
    let mut schedulers = SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut schedulers);
    let registry = folder_upscalers(&dir().join("models"), &b, tiles);
    let mut svc = GenerationService::new(b, samplers, schedulers)
        .with_models_folder(easel_tests::models_dir());
    svc.set_upscalers(registry);
    let s = GenerationSettings {
        prompt: "a cat".into(),
        steps: 2,
        width: 64,
        height: 64,
        model: "tiny".into(),
        enable_hr: true,
        hr_scale: 2.0,
        hr_upscaler: upscaler.into(),
        denoising_strength: 0.5,
        ..Default::default()
    };
    let out = svc
        .generate_blocking(&s, &mut |_| {}, &CancelToken::new())
        .unwrap_or_else(|e| panic!("hires with {upscaler}: {e}"));
    assert_eq!(out[0].infotext.get("Hires upscaler"), Some(upscaler));
    assert_eq!((out[0].image.width, out[0].image.height), (128, 128));
    out[0].image.rgb.clone()
}

/// Hires fix with an upscaler model on a backend that refuses the blocking read-back, as
/// the browser's WebGPU backend does: the pipeline takes the async passes, tile by tile,
/// and the image is the CPU backend's to the byte (RRDB, compact and SwinIR, tiled).
#[test]
fn hires_fix_upscales_without_blocking_read_back() {
    let tiles = TileSettings {
        tile: 32,
        overlap: 8,
    };
    for name in [
        "tiny-esrgan-x4",
        "R-ESRGAN AnimeVideo",
        "tiny-swinir-light-x2",
    ] {
        let want = hires_with(CandleBackend::cpu(), name, tiles);
        let got = hires_with(NoSyncDownload(CandleBackend::cpu()), name, tiles);
        assert!(got == want, "{name}: hires images differ");
    }
}

/// Files a page hands in (name inside the folder, folder name in any case, open bytes) are
/// named, ordered and loaded as the same files in a models folder; other files are skipped
/// and an unknown folder is named in the error.
#[test]
fn picked_files_are_named_ordered_and_loaded_as_in_a_folder() {
    let models = dir().join("models");
    let listed = list_upscalers(&models);
    let mut files: Vec<(String, String, Arc<dyn ByteSource>)> = listed
        .iter()
        .rev()
        .map(|e| {
            let rel = e
                .path
                .strip_prefix(models.join(e.folder.dir_name()))
                .unwrap();
            (
                rel.to_string_lossy().into_owned(),
                e.folder.dir_name().to_lowercase(),
                FileSource::open_arc(&e.path).unwrap(),
            )
        })
        .collect();
    let notes: Arc<dyn ByteSource> = Arc::new(MemorySource::new("notes.txt", b"hi".to_vec()));
    files.push(("notes.txt".into(), "ESRGAN".into(), notes.clone()));
    let entries = list_source_upscalers(files.clone()).unwrap();
    let got: Vec<_> = entries
        .iter()
        .map(|e| (e.name.as_str(), e.folder))
        .collect();
    let want: Vec<_> = listed.iter().map(|e| (e.name.as_str(), e.folder)).collect();
    assert_eq!(got, want);
    let b = CandleBackend::cpu();
    let tiles = TileSettings {
        tile: 8,
        overlap: 2,
    };
    let picked = source_upscalers(files, &b, tiles).unwrap();
    let folder = folder_upscalers(&models, &b, tiles);
    assert_eq!(picked.names(), folder.names());
    let (_, store) = expected();
    let img = rgb_image(&image(&store, "input_a"));
    let target = UpscaleTarget::Scale(2.0);
    for name in ["R-ESRGAN 2x+", "tiny-swinir-light-x2"] {
        let want = upscale(&img, target, folder.get(name).unwrap().unwrap()).unwrap();
        let lazy = picked.get(name).unwrap().unwrap();
        let got = block_on(upscale_async(&img, target, lazy)).unwrap();
        assert_eq!(got, want, "{name}: picked, lazily loaded");
        let entry = entries.iter().find(|e| e.name == name).unwrap();
        let one = ModelUpscaler::from_source(entry, b.clone(), tiles).unwrap();
        assert_eq!(upscale(&img, target, &one).unwrap(), want, "{name}: picked");
    }
    let e = list_source_upscalers([("x.pth".to_string(), "Lora".to_string(), notes)])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("`x.pth`") && e.contains("`Lora`") && e.contains("ESRGAN, RealESRGAN, SwinIR"),
        "{e}"
    );
}

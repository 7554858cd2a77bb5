//! The wgpu backend against the candle backend (op by op, on random inputs with odd sizes
//! that cross the kernels' 64-wide tiles and 16-deep k-slices), against the reference
//! stack's golden outputs (the three networks of the tiny model) and through one whole
//! txt2img. Natively this runs on any Vulkan/Metal/DX12 adapter; CI uses Mesa's lavapipe.
//!
//! Without an adapter these tests fail with the backend's message; set
//! `EASEL_SKIP_WGPU=1` to skip them instead (machines without any Vulkan driver).
//!
//! Tolerances, relative to the reference's largest magnitude. Weights of rank ≥ 2 are stored
//! in f16. For op tests the candle side gets the same f16-rounded weights, so what differs
//! is f32 summation order and the kernels' exp/erf (erf to 1.5e-7): 1e-5 (observed ≤ 1.2e-6
//! on lavapipe). The tiny model's weights are f16-representable, so the network goldens
//! lose nothing to f16 either: text 1e-5 (observed 5e-7), UNet 5e-5 (1.6e-6), VAE 5e-5
//! (9e-7); a GPU's faster exp leaves room within these. Permutations (the layout ops, the
//! upscalers' pixel (un)shuffle and window partition / merge) must be exact; the upscalers'
//! PReLU and window attention are held to the op tolerance (observed: exact and 6.3e-7). Real SD weights that are not
//! f16-exact would differ by ~1e-3 relative, as any f16 inference does.

use easel_candle::CandleBackend;
use easel_core::model::{checkpoint_files, StableDiffusion, VaeChoice};
use easel_core::nn::{infer_unet_config, infer_vae_config, AutoencoderKl, UNet, Weights};
use easel_core::noise::RngKind;
use easel_core::pipeline::{txt2img, Txt2ImgParams};
use easel_core::registry::{SamplerRegistry, SchedulerRegistry};
use easel_core::sampler::block_on;
use easel_core::Backend;
use easel_tests::random;
use easel_tests::tiny_networks::{
    assert_close, assert_text_cases, golden, model, run_unet_case, tensor, tiny_text_encoder,
};
use easel_tests::{golden_path, models_dir};
use easel_wgpu::{half, wgpu, AdapterChoice, F16Storage, KernelShapes, WgpuBackend, WgpuOptions};
use std::sync::OnceLock;

const OP_TOL: f32 = 1e-5;
const TEXT_TOL: f32 = 1e-5;
const UNET_TOL: f32 = 5e-5;
const VAE_TOL: f32 = 5e-5;

fn skip() -> bool {
    if std::env::var("EASEL_SKIP_WGPU").is_ok_and(|v| v == "1") {
        eprintln!("EASEL_SKIP_WGPU=1: skipping the wgpu backend tests");
        return true;
    }
    false
}

fn open(options: WgpuOptions) -> WgpuBackend {
    WgpuBackend::new_blocking(options).unwrap_or_else(|e| {
        panic!("wgpu backend unavailable: {e}\n(set EASEL_SKIP_WGPU=1 to skip these tests)")
    })
}

/// The default backend (native f16 where the adapter has it), shared by the tests.
fn gpu() -> &'static WgpuBackend {
    static GPU: OnceLock<WgpuBackend> = OnceLock::new();
    GPU.get_or_init(|| {
        let b = open(WgpuOptions::default());
        eprintln!(
            "wgpu tests on {} (native f16: {})",
            b.name(),
            b.native_f16()
        );
        b
    })
}

/// Weights packed two per u32 (the browser path without `shader-f16`) and a 64 KiB storage
/// binding cap, so the windowed embedding and the split paths run too; in a GPU's
/// 256-invocation workgroups, which [`gpu`] leaves for a software adapter's 64 (what
/// lavapipe and SwiftShader run), so that both kernel shapes are checked.
fn packed_gpu() -> &'static WgpuBackend {
    static GPU: OnceLock<WgpuBackend> = OnceLock::new();
    GPU.get_or_init(|| {
        open(WgpuOptions {
            f16: F16Storage::Packed,
            max_storage_binding: Some(64 << 10),
            kernel_shapes: KernelShapes::Gpu,
            ..Default::default()
        })
    })
}

/// `v` rounded to f16, as `upload_weight` stores it.
fn f16_round(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&x| half::f16::from_f32(x).to_f32()).collect()
}

/// Both backends, the candle one as reference.
struct Pair<'a> {
    g: &'a WgpuBackend,
    c: CandleBackend,
}

type GT = <WgpuBackend as Backend>::Tensor;
type CT = <CandleBackend as Backend>::Tensor;

impl Pair<'_> {
    fn new(g: &WgpuBackend) -> Pair<'_> {
        Pair {
            g,
            c: CandleBackend::cpu(),
        }
    }
    fn act(&self, data: &[f32], shape: &[usize]) -> (GT, CT) {
        (
            self.g.upload(data, shape).unwrap(),
            self.c.upload(data, shape).unwrap(),
        )
    }
    /// A weight: f16 on the wgpu side (rank ≥ 2; vectors stay f32), the same rounded
    /// values in f32 on the candle side.
    fn weight(&self, data: &[f32], shape: &[usize]) -> (GT, CT) {
        let stored = if shape.len() >= 2 {
            f16_round(data)
        } else {
            data.to_vec()
        };
        (
            self.g.upload_weight(data, shape).unwrap(),
            self.c.upload(&stored, shape).unwrap(),
        )
    }
    /// A permutation: the reference's values exactly.
    fn check_exact(&self, what: &str, got: &GT, want: &CT) {
        assert_eq!(self.g.shape(got), self.c.shape(want), "{what}: shape");
        let (got, want) = (
            self.g.download(got).unwrap(),
            self.c.download(want).unwrap(),
        );
        assert!(got == want, "{what}: values differ");
        println!("{what}: exact");
    }
    fn check(&self, what: &str, got: &GT, want: &CT) {
        assert_eq!(self.g.shape(got), self.c.shape(want), "{what}: shape");
        assert_close(
            what,
            &self.g.download(got).unwrap(),
            &self.c.download(want).unwrap(),
            OP_TOL,
        );
    }
}

fn check_linear(g: &WgpuBackend, tag: &str) {
    let p = Pair::new(g);
    for (i, &(rows, k, n)) in [(3, 5, 7), (70, 37, 65), (1, 128, 130), (129, 16, 3)]
        .iter()
        .enumerate()
    {
        let seed = 10 * i as u64;
        let x = p.act(&random(rows * k, seed, 1.0), &[1, rows, k]);
        let w = p.weight(&random(n * k, seed + 1, 1.0), &[n, k]);
        let b = p.weight(&random(n, seed + 2, 1.0), &[n]);
        let got = p.g.linear(&x.0, &w.0, Some(&b.0)).unwrap();
        let want = p.c.linear(&x.1, &w.1, Some(&b.1)).unwrap();
        p.check(&format!("{tag} linear {rows}x{k}x{n}"), &got, &want);
        let got = p.g.linear(&x.0, &w.0, None).unwrap();
        let want = p.c.linear(&x.1, &w.1, None).unwrap();
        p.check(&format!("{tag} linear {rows}x{k}x{n} no bias"), &got, &want);
    }
    // An f32 (activation) right-hand side works too.
    let x = p.act(&random(6 * 9, 5, 1.0), &[6, 9]);
    let w = p.act(&random(11 * 9, 6, 1.0), &[11, 9]);
    p.check(
        "linear f32 weight",
        &p.g.linear(&x.0, &w.0, None).unwrap(),
        &p.c.linear(&x.1, &w.1, None).unwrap(),
    );
    assert!(p
        .g
        .linear(&x.0, &p.g.upload_weight(&[0.0; 8], &[2, 4]).unwrap(), None)
        .is_err());
}

fn check_conv(g: &WgpuBackend, tag: &str) {
    let p = Pair::new(g);
    // (n, c, h, w, o, k, stride, pad)
    for (i, &(n, c, h, w, o, k, s, pad)) in [
        (1, 3, 9, 7, 5, 3, 1, 1),
        (2, 5, 11, 10, 70, 3, 2, 1),
        (1, 18, 5, 6, 3, 1, 1, 0),
        (2, 4, 8, 8, 8, 3, 2, 0),
        (1, 7, 13, 9, 66, 1, 1, 0),
    ]
    .iter()
    .enumerate()
    {
        let seed = 100 + 10 * i as u64;
        let x = p.act(&random(n * c * h * w, seed, 1.0), &[n, c, h, w]);
        let wt = p.weight(&random(o * c * k * k, seed + 1, 0.5), &[o, c, k, k]);
        let b = p.weight(&random(o, seed + 2, 1.0), &[o]);
        let got = p.g.conv2d(&x.0, &wt.0, Some(&b.0), s, pad).unwrap();
        let want = p.c.conv2d(&x.1, &wt.1, Some(&b.1), s, pad).unwrap();
        p.check(
            &format!("{tag} conv {k}x{k}/{s} pad {pad} {c}->{o} {h}x{w}"),
            &got,
            &want,
        );
    }
}

#[test]
fn linear_matches_candle() {
    if skip() {
        return;
    }
    check_linear(gpu(), "f16");
    check_linear(packed_gpu(), "packed");
}

#[test]
fn conv2d_matches_candle() {
    if skip() {
        return;
    }
    check_conv(gpu(), "f16");
    check_conv(packed_gpu(), "packed");
}

#[test]
fn norms_match_candle() {
    if skip() {
        return;
    }
    let p = Pair::new(gpu());
    for (n, c, h, w, groups) in [(2, 64, 5, 7, 32), (1, 6, 3, 3, 3), (1, 32, 30, 20, 32)] {
        let x = p.act(
            &random(n * c * h * w, 7, 2.0)
                .iter()
                .map(|v| v + 0.5)
                .collect::<Vec<_>>(),
            &[n, c, h, w],
        );
        let gamma = p.weight(&random(c, 8, 1.0), &[c]);
        let beta = p.weight(&random(c, 9, 1.0), &[c]);
        for silu in [false, true] {
            let got =
                p.g.group_norm(&x.0, groups, &gamma.0, &beta.0, 1e-6, silu)
                    .unwrap();
            let want =
                p.c.group_norm(&x.1, groups, &gamma.1, &beta.1, 1e-6, silu)
                    .unwrap();
            p.check(
                &format!("group_norm {n}x{c}x{h}x{w}/{groups} silu {silu}"),
                &got,
                &want,
            );
        }
    }
    assert!(p
        .g
        .group_norm(
            &p.act(&[0.0; 12], &[1, 6, 2]).0,
            4,
            &p.act(&[1.0; 6], &[6]).0,
            &p.act(&[0.0; 6], &[6]).0,
            1e-5,
            false
        )
        .is_err());
    for (rows, c) in [(3, 7), (77, 128), (5, 300)] {
        let x = p.act(&random(rows * c, 11, 3.0), &[1, rows, c]);
        let gamma = p.weight(&random(c, 12, 1.0), &[c]);
        let beta = p.weight(&random(c, 13, 1.0), &[c]);
        let got = p.g.layer_norm(&x.0, &gamma.0, &beta.0, 1e-5).unwrap();
        let want = p.c.layer_norm(&x.1, &gamma.1, &beta.1, 1e-5).unwrap();
        p.check(&format!("layer_norm {rows}x{c}"), &got, &want);
    }
}

#[test]
fn attention_matches_candle() {
    if skip() {
        return;
    }
    let p = Pair::new(gpu());
    // (n, lq, lk, heads, head dim, causal): tiny-model widths, SD's head dims 40/80/160 and
    // the VAE's 512, a head dim that leaves a partial chunk (20), query counts that leave a
    // partial 32-query block, key counts crossing 64-key blocks; 1024 and 4096 keys at head
    // dim 512 (16 and 64 key blocks of 32 chunks: beyond lavapipe's 65535-iteration loop
    // limit unless the inner loops are unrolled, and its largest allowed shape).
    for (i, &(n, lq, lk, heads, d, causal)) in [
        (1, 77, 77, 2, 64, true),
        (2, 70, 77, 8, 4, false),
        (1, 130, 130, 1, 40, false),
        (1, 65, 9, 2, 80, false),
        (2, 20, 33, 1, 160, false),
        (1, 100, 100, 3, 8, true),
        (1, 70, 130, 1, 512, false),
        (2, 45, 45, 2, 20, true),
        (1, 64, 1024, 1, 512, false),
        (1, 32, 4096, 1, 512, false),
    ]
    .iter()
    .enumerate()
    {
        let seed = 200 + 10 * i as u64;
        let q = p.act(&random(n * lq * heads * d, seed, 2.0), &[n, lq, heads * d]);
        let k = p.act(
            &random(n * lk * heads * d, seed + 1, 2.0),
            &[n, lk, heads * d],
        );
        let v = p.act(
            &random(n * lk * heads * d, seed + 2, 1.0),
            &[n, lk, heads * d],
        );
        let got = p.g.attention(&q.0, &k.0, &v.0, heads, causal).unwrap();
        let want = p.c.attention(&q.1, &k.1, &v.1, heads, causal).unwrap();
        p.check(
            &format!("attention n{n} q{lq} k{lk} h{heads} d{d} causal {causal}"),
            &got,
            &want,
        );
    }
}

/// On llvmpipe (lavapipe), attention beyond what its loop limiter lets the kernel run is
/// a clear error, not a wrong result.
#[test]
fn attention_beyond_llvmpipe_loop_limit_is_a_clear_error() {
    if skip() || !gpu().name().contains("llvmpipe") {
        return;
    }
    let b = gpu();
    let q = b.upload(&vec![0.1; 32 * 512], &[1, 32, 512]).unwrap();
    let kv = b.upload(&vec![0.1; 8192 * 512], &[1, 8192, 512]).unwrap();
    let err = b.attention(&q, &kv, &kv, 1, false).unwrap_err().to_string();
    assert!(
        err.contains("llvmpipe") && err.contains("65535") && err.contains("8192 keys"),
        "{err}"
    );
}

/// The hypernetworks' activations on the device against their host definitions (which
/// `tests/hypernetwork.rs` checks against torch's modules), on random values and on the
/// points where a naive formula overflows or changes branch (±20, ±88, ±0.5, 0, -3, 3).
#[test]
fn hypernetwork_activations_match_their_definitions() {
    if skip() {
        return;
    }
    let p = Pair::new(gpu());
    let mut values = random(200, 311, 6.0);
    values.extend([
        -100.0, -88.0, -20.5, -20.0, -3.0, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 3.0, 19.9, 20.0,
        20.5, 88.0, 100.0,
    ]);
    let shape = [values.len()];
    let x = p.act(&values, &shape);
    for f in easel_core::ElementwiseFn::ALL {
        let got = p.g.download(&p.g.elementwise(&x.0, f).unwrap()).unwrap();
        let want = easel_core::backend_host::elementwise(&values, f);
        // Absolute, scaled by the output's size: exp/log/tanh differ by a few ulps.
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let tol = 2e-6 * w.abs().max(1.0);
            assert!(
                (g - w).abs() <= tol,
                "{f:?}({}): wgpu {g}, host {w}",
                values[i]
            );
        }
    }
}

#[test]
fn elementwise_and_layout_ops_match_candle() {
    if skip() {
        return;
    }
    let p = Pair::new(gpu());
    let shape = [2, 3, 5, 7];
    let n: usize = shape.iter().product();
    let a = p.act(&random(n, 301, 4.0), &shape);
    let b = p.act(&random(n, 302, 4.0), &shape);
    p.check(
        "add",
        &p.g.add(&a.0, &b.0).unwrap(),
        &p.c.add(&a.1, &b.1).unwrap(),
    );
    p.check(
        "mul",
        &p.g.mul(&a.0, &b.0).unwrap(),
        &p.c.mul(&a.1, &b.1).unwrap(),
    );
    p.check(
        "scale",
        &p.g.scale(&a.0, -0.37).unwrap(),
        &p.c.scale(&a.1, -0.37).unwrap(),
    );
    p.check("silu", &p.g.silu(&a.0).unwrap(), &p.c.silu(&a.1).unwrap());
    for slope in [0.0, 0.2] {
        p.check(
            &format!("leaky_relu {slope}"),
            &p.g.leaky_relu(&a.0, slope).unwrap(),
            &p.c.leaky_relu(&a.1, slope).unwrap(),
        );
    }
    p.check("gelu", &p.g.gelu(&a.0).unwrap(), &p.c.gelu(&a.1).unwrap());
    p.check(
        "quick_gelu",
        &p.g.quick_gelu(&a.0).unwrap(),
        &p.c.quick_gelu(&a.1).unwrap(),
    );
    let x = p.act(&random(3 * 5 * 18, 303, 4.0), &[3, 5, 18]);
    p.check(
        "geglu",
        &p.g.geglu(&x.0).unwrap(),
        &p.c.geglu(&x.1).unwrap(),
    );
    let v = p.act(&random(6, 304, 1.0), &[2, 3]);
    p.check(
        "add_channel_vector",
        &p.g.add_channel_vector(&a.0, &v.0).unwrap(),
        &p.c.add_channel_vector(&a.1, &v.1).unwrap(),
    );
    p.check(
        "upsample",
        &p.g.upsample_nearest2x(&a.0).unwrap(),
        &p.c.upsample_nearest2x(&a.1).unwrap(),
    );
    let nlc = (
        p.g.nchw_to_nlc(&a.0).unwrap(),
        p.c.nchw_to_nlc(&a.1).unwrap(),
    );
    p.check("nchw_to_nlc", &nlc.0, &nlc.1);
    p.check(
        "nlc_to_nchw",
        &p.g.nlc_to_nchw(&nlc.0, 5, 7).unwrap(),
        &p.c.nlc_to_nchw(&nlc.1, 5, 7).unwrap(),
    );
    let big = p.act(&random(2 * 37 * 41 * 19, 305, 1.0), &[2, 37, 41, 19]);
    let t = (
        p.g.nchw_to_nlc(&big.0).unwrap(),
        p.c.nchw_to_nlc(&big.1).unwrap(),
    );
    p.check("nchw_to_nlc 37x41x19", &t.0, &t.1);
    for (dim, &size) in shape.iter().enumerate() {
        p.check(
            &format!("concat dim {dim}"),
            &p.g.concat(&[&a.0, &b.0, &a.0], dim).unwrap(),
            &p.c.concat(&[&a.1, &b.1, &a.1], dim).unwrap(),
        );
        let len = size - 1;
        p.check(
            &format!("narrow dim {dim}"),
            &p.g.narrow(&a.0, dim, 1, len).unwrap(),
            &p.c.narrow(&a.1, dim, 1, len).unwrap(),
        );
    }
    // A weight used where an activation is expected is widened from f16.
    let w = p.weight(&random(n, 306, 1.0), &shape);
    p.check(
        "add of an f16 weight",
        &p.g.add(&a.0, &w.0).unwrap(),
        &p.c.add(&a.1, &w.1).unwrap(),
    );
    p.check("download of an f16 weight", &w.0, &w.1);
    // Bad shapes are errors, not panics.
    assert!(p.g.add(&a.0, &x.0).is_err());
    assert!(p.g.narrow(&a.0, 1, 2, 2).is_err());
    assert!(p.g.nlc_to_nchw(&nlc.0, 4, 7).is_err());
    assert!(p.g.upload(&[1.0; 3], &[2, 2]).is_err());
}

#[test]
fn embedding_matches_candle_including_windowed_tables() {
    if skip() {
        return;
    }
    let ids = [3u32, 0, 499, 17, 17, 256];
    for (tag, g) in [("whole", gpu()), ("windowed", packed_gpu())] {
        let p = Pair::new(g);
        // 500 x 77: 77 KB in f16, above the packed backend's 64 KiB binding cap.
        let table = p.weight(&random(500 * 77, 401, 1.0), &[500, 77]);
        p.check(
            &format!("embedding {tag}"),
            &p.g.embedding(&table.0, &ids).unwrap(),
            &p.c.embedding(&table.1, &ids).unwrap(),
        );
        let table32 = p.act(&random(500 * 77, 402, 1.0), &[500, 77]);
        p.check(
            &format!("embedding f32 {tag}"),
            &p.g.embedding(&table32.0, &ids).unwrap(),
            &p.c.embedding(&table32.1, &ids).unwrap(),
        );
        let err = p.g.embedding(&table.0, &[500]).unwrap_err().to_string();
        assert!(err.contains("id 500"), "{err}");
    }
}

/// Swin's shifted-window mask pattern on random windows: 0 where two tokens may attend,
/// -100 where not (SwinIR's value), a token always seeing itself.
fn window_mask(windows: usize, l: usize, seed: u64) -> Vec<f32> {
    let r = random(windows * l * l, seed, 1.0);
    (0..windows * l * l)
        .map(|i| {
            let (row, col) = (i / l % l, i % l);
            if row == col || r[i] > -0.3 {
                0.0
            } else {
                -100.0
            }
        })
        .collect()
}

/// The upscaler networks' operations against candle's own versions: PReLU (one slope per
/// channel and a single one, f32 and f16 slopes) at the op tolerance, pixel (un)shuffle
/// (r = 2 and 4) and Swin's window partition and merge (shifted and not) exactly, window
/// attention (several heads, odd head dims, with and without the mask, an f16 bias as
/// SwinIR uploads it) at the op tolerance. `big` adds shapes over a 64 KiB binding
/// (the split paths of the capped backends).
fn check_upscaler_ops(g: &WgpuBackend, tag: &str) {
    let p = Pair::new(g);
    // PReLU: (shape, slopes).
    for (i, (shape, slopes)) in [
        (vec![2, 5, 7, 3], 5),
        (vec![2, 5, 7, 3], 1),
        (vec![3, 4], 4),
        (vec![1, 64, 33, 31], 64),
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 700 + 10 * i as u64;
        let n: usize = shape.iter().product();
        let x = p.act(&random(n, seed, 2.0), &shape);
        let w = p.weight(&random(slopes, seed + 1, 0.5), &[slopes]);
        p.check(
            &format!("{tag} prelu {shape:?} {slopes} slopes"),
            &p.g.prelu(&x.0, &w.0).unwrap(),
            &p.c.prelu(&x.1, &w.1).unwrap(),
        );
    }
    // Slopes stored in f16 (a weight of rank 2), against the host definition.
    let xs = random(2 * 6 * 5, 750, 2.0);
    let slopes = random(6, 751, 0.5);
    let x = p.g.upload(&xs, &[2, 6, 5]).unwrap();
    let w = p.g.upload_weight(&slopes, &[6, 1]).unwrap();
    assert_eq!(w.dtype(), easel_wgpu::DType::F16);
    let want = easel_core::backend_host::prelu(&xs, &[2, 6, 5], &f16_round(&slopes)).unwrap();
    assert_close(
        &format!("{tag} prelu f16 slopes"),
        &p.g.download(&p.g.prelu(&x, &w).unwrap()).unwrap(),
        &want,
        OP_TOL,
    );
    assert!(p
        .g
        .prelu(&x, &p.g.upload(&[0.1; 4], &[4]).unwrap())
        .is_err());

    // Pixel shuffle (n, c out, h, w, r) and unshuffle (n, c in, h out, w out, r).
    for (i, &(n, c, h, w, r)) in [
        (2, 3, 5, 7, 2),
        (1, 2, 3, 5, 4),
        (1, 1, 9, 11, 4),
        (1, 16, 20, 20, 2),
        (2, 3, 4, 4, 1),
    ]
    .iter()
    .enumerate()
    {
        let seed = 760 + 10 * i as u64;
        let x = p.act(
            &random(n * c * r * r * h * w, seed, 1.0),
            &[n, c * r * r, h, w],
        );
        p.check_exact(
            &format!("{tag} pixel_shuffle {n}x{}x{h}x{w} r{r}", c * r * r),
            &p.g.pixel_shuffle(&x.0, r).unwrap(),
            &p.c.pixel_shuffle(&x.1, r).unwrap(),
        );
        let y = p.act(
            &random(n * c * r * r * h * w, seed + 1, 1.0),
            &[n, c, h * r, w * r],
        );
        p.check_exact(
            &format!("{tag} pixel_unshuffle {n}x{c}x{}x{} r{r}", h * r, w * r),
            &p.g.pixel_unshuffle(&y.0, r).unwrap(),
            &p.c.pixel_unshuffle(&y.1, r).unwrap(),
        );
    }
    let odd = p.g.upload(&[0.0; 2 * 3 * 5], &[1, 2, 3, 5]).unwrap();
    assert!(p.g.pixel_shuffle(&odd, 2).is_err());
    assert!(p.g.pixel_unshuffle(&odd, 2).is_err());

    // Window partition and merge: (n, h, w, c, window, shift).
    for (i, &(n, h, w, c, win, shift)) in [
        (2, 8, 12, 5, 4, 0),
        (2, 8, 12, 5, 4, 2),
        (1, 15, 10, 3, 5, 2),
        (3, 16, 16, 7, 8, 4),
        (1, 48, 48, 16, 8, 0),
        (3, 24, 24, 16, 8, 4),
    ]
    .iter()
    .enumerate()
    {
        let seed = 820 + 10 * i as u64;
        let what = format!("{tag} {n}x{h}x{w}x{c} window {win} shift {shift}");
        let x = p.act(&random(n * h * w * c, seed, 1.0), &[n, h * w, c]);
        let parts = (
            p.g.window_partition(&x.0, h, w, win, shift).unwrap(),
            p.c.window_partition(&x.1, h, w, win, shift).unwrap(),
        );
        p.check_exact(&format!("{what} partition"), &parts.0, &parts.1);
        p.check_exact(
            &format!("{what} merge of the partition"),
            &p.g.window_merge(&parts.0, h, w, win, shift).unwrap(),
            &x.1,
        );
        let windows = n * (h / win) * (w / win);
        let y = p.act(
            &random(n * h * w * c, seed + 1, 1.0),
            &[windows, win * win, c],
        );
        p.check_exact(
            &format!("{what} merge"),
            &p.g.window_merge(&y.0, h, w, win, shift).unwrap(),
            &p.c.window_merge(&y.1, h, w, win, shift).unwrap(),
        );
    }
    let x = p.g.upload(&[0.0; 6 * 6 * 2], &[1, 36, 2]).unwrap();
    assert!(p.g.window_partition(&x, 6, 6, 4, 0).is_err());
    assert!(p.g.window_partition(&x, 6, 6, 3, 3).is_err());
    assert!(p.g.window_merge(&x, 6, 6, 3, 1).is_err());

    // Window attention: (windows, window, heads, head dim, windows per mask or none).
    // L = 16, 49, 64 (SwinIR's 8x8) and 100 (crossing the kernel's 32-query and
    // 64-key blocks).
    for (i, &(b, win, heads, d, nw)) in [
        (6, 4, 3, 5, Some(3)),
        (6, 4, 3, 5, None),
        (4, 7, 2, 16, Some(2)),
        (8, 8, 3, 12, Some(4)),
        (8, 8, 3, 12, None),
        (2, 10, 1, 8, Some(1)),
    ]
    .iter()
    .enumerate()
    {
        let seed = 900 + 10 * i as u64;
        let l = win * win;
        let width = heads * d;
        let q = p.act(&random(b * l * width, seed, 2.0), &[b, l, width]);
        let k = p.act(&random(b * l * width, seed + 1, 2.0), &[b, l, width]);
        let v = p.act(&random(b * l * width, seed + 2, 1.0), &[b, l, width]);
        let bias = p.weight(&random(heads * l * l, seed + 3, 3.0), &[heads, l, l]);
        let mask = nw.map(|nw| p.act(&window_mask(nw, l, seed + 4), &[nw, l, l]));
        p.check(
            &format!("{tag} window_attention b{b} L{l} h{heads} d{d} mask {nw:?}"),
            &p.g.window_attention(
                &q.0,
                &k.0,
                &v.0,
                heads,
                &bias.0,
                mask.as_ref().map(|m| &m.0),
            )
            .unwrap(),
            &p.c.window_attention(
                &q.1,
                &k.1,
                &v.1,
                heads,
                &bias.1,
                mask.as_ref().map(|m| &m.1),
            )
            .unwrap(),
        );
    }
    // An f32 bias (an activation) works too; mismatched shapes are errors.
    let (b, l, heads, d) = (4, 9, 2, 3);
    let q = p.act(&random(b * l * heads * d, 990, 2.0), &[b, l, heads * d]);
    let bias = p.act(&random(heads * l * l, 991, 1.0), &[heads, l, l]);
    let mask = p.act(&window_mask(2, l, 992), &[2, l, l]);
    p.check(
        &format!("{tag} window_attention f32 bias"),
        &p.g.window_attention(&q.0, &q.0, &q.0, heads, &bias.0, Some(&mask.0))
            .unwrap(),
        &p.c.window_attention(&q.1, &q.1, &q.1, heads, &bias.1, Some(&mask.1))
            .unwrap(),
    );
    let three = p.g.upload(&vec![0.0; 3 * l * l], &[3, l, l]).unwrap();
    assert!(p
        .g
        .window_attention(&q.0, &q.0, &q.0, heads, &bias.0, Some(&three))
        .is_err());
    assert!(p
        .g
        .window_attention(&q.0, &q.0, &q.0, 3, &bias.0, None)
        .is_err());
}

#[test]
fn upscaler_ops_match_candle() {
    if skip() {
        return;
    }
    check_upscaler_ops(gpu(), "f16");
    // More windows x heads than one dispatch dimension holds (65535 workgroups).
    let p = Pair::new(gpu());
    let (b, l, heads, d, nw) = (11_000, 16, 6, 2, 8);
    let q = p.act(&random(b * l * heads * d, 995, 2.0), &[b, l, heads * d]);
    let k = p.act(&random(b * l * heads * d, 996, 2.0), &[b, l, heads * d]);
    let bias = p.weight(&random(heads * l * l, 997, 1.0), &[heads, l, l]);
    let mask = p.act(&window_mask(nw, l, 998), &[nw, l, l]);
    p.check(
        &format!("window_attention {b} windows x {heads} heads"),
        &p.g.window_attention(&q.0, &k.0, &q.0, heads, &bias.0, Some(&mask.0))
            .unwrap(),
        &p.c.window_attention(&q.1, &k.1, &q.1, heads, &bias.1, Some(&mask.1))
            .unwrap(),
    );
}

/// The same under a 64 KiB binding cap (whole images, rows of windows, planes and query
/// ranges per dispatch), with packed and native f16 weights; and a shifted partition
/// whose image does not fit one binding is a clear error.
#[test]
fn upscaler_ops_split_over_binding_windows_match_candle() {
    if skip() {
        return;
    }
    check_upscaler_ops(split_gpu(), "split f16");
    check_upscaler_ops(packed_gpu(), "split packed");
    let b = split_gpu();
    let x = b
        .upload(&vec![0.5; 48 * 48 * 16], &[1, 48 * 48, 16])
        .unwrap();
    let err = b
        .window_partition(&x, 48, 48, 8, 4)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("window_partition") && err.contains("max_storage_buffer_binding_size"),
        "{err}"
    );
}

/// Native f16 weights (where the adapter has them) and the same 64 KiB binding cap and GPU
/// workgroups as [`packed_gpu`]: with tensors of a few hundred KiB every op runs its split
/// paths.
fn split_gpu() -> &'static WgpuBackend {
    static GPU: OnceLock<WgpuBackend> = OnceLock::new();
    GPU.get_or_init(|| {
        open(WgpuOptions {
            max_storage_binding: Some(64 << 10),
            kernel_shapes: KernelShapes::Gpu,
            ..Default::default()
        })
    })
}

/// Every op with operands larger than the 64 KiB binding cap (split over images, channels,
/// rows, groups, segments of a group, query ranges, transpose blocks or elements) against
/// candle, at the op tolerance.
fn check_split_ops(g: &WgpuBackend, tag: &str) {
    let p = Pair::new(g);
    // conv (n, c, h, w, o, k, stride, pad): channel ranges within an image (x 150 KiB per
    // image), whole-image pieces, weight row windows (130 x 40 x 9 in f16 is 94 KB).
    for (i, &(n, c, h, w, o, k, s, pad)) in [
        (2, 24, 40, 40, 20, 3, 1, 1),
        (1, 24, 41, 39, 70, 3, 2, 1),
        (4, 4, 40, 40, 6, 3, 1, 1),
        (1, 40, 12, 12, 130, 3, 1, 1),
        (1, 30, 33, 31, 9, 1, 1, 0),
    ]
    .iter()
    .enumerate()
    {
        let seed = 500 + 10 * i as u64;
        let x = p.act(&random(n * c * h * w, seed, 1.0), &[n, c, h, w]);
        let wt = p.weight(&random(o * c * k * k, seed + 1, 0.5), &[o, c, k, k]);
        let b = p.weight(&random(o, seed + 2, 1.0), &[o]);
        p.check(
            &format!("{tag} split conv {k}x{k}/{s} {c}->{o} {n}x{h}x{w}"),
            &p.g.conv2d(&x.0, &wt.0, Some(&b.0), s, pad).unwrap(),
            &p.c.conv2d(&x.1, &wt.1, Some(&b.1), s, pad).unwrap(),
        );
    }
    let x = p.act(&random(700 * 40, 600, 1.0), &[1, 700, 40]);
    let w = p.weight(&random(50 * 40, 601, 1.0), &[50, 40]);
    let b = p.weight(&random(50, 602, 1.0), &[50]);
    p.check(
        &format!("{tag} split linear 700x40x50"),
        &p.g.linear(&x.0, &w.0, Some(&b.0)).unwrap(),
        &p.c.linear(&x.1, &w.1, Some(&b.1)).unwrap(),
    );
    // Group norm: many groups per piece, and groups of 200 KB (statistics over segments).
    for (n, c, h, w, groups) in [(2, 64, 30, 30, 32), (1, 64, 40, 40, 2)] {
        let x = p.act(
            &random(n * c * h * w, 603, 2.0)
                .iter()
                .map(|v| v + 0.5)
                .collect::<Vec<_>>(),
            &[n, c, h, w],
        );
        let gamma = p.weight(&random(c, 604, 1.0), &[c]);
        let beta = p.weight(&random(c, 605, 1.0), &[c]);
        for silu in [false, true] {
            p.check(
                &format!("{tag} split group_norm {n}x{c}x{h}x{w}/{groups} silu {silu}"),
                &p.g.group_norm(&x.0, groups, &gamma.0, &beta.0, 1e-6, silu)
                    .unwrap(),
                &p.c.group_norm(&x.1, groups, &gamma.1, &beta.1, 1e-6, silu)
                    .unwrap(),
            );
        }
    }
    let x = p.act(&random(400 * 100, 606, 3.0), &[1, 400, 100]);
    let gamma = p.weight(&random(100, 607, 1.0), &[100]);
    let beta = p.weight(&random(100, 608, 1.0), &[100]);
    p.check(
        &format!("{tag} split layer_norm 400x100"),
        &p.g.layer_norm(&x.0, &gamma.0, &beta.0, 1e-5).unwrap(),
        &p.c.layer_norm(&x.1, &gamma.1, &beta.1, 1e-5).unwrap(),
    );
    // Attention: query ranges of one image (80 KB of queries per image), and whole images
    // one at a time with a causal mask.
    for (n, lq, lk, heads, d, causal) in [(2, 500, 77, 2, 20, false), (2, 250, 250, 3, 16, true)] {
        let q = p.act(&random(n * lq * heads * d, 609, 2.0), &[n, lq, heads * d]);
        let k = p.act(&random(n * lk * heads * d, 610, 2.0), &[n, lk, heads * d]);
        let v = p.act(&random(n * lk * heads * d, 611, 1.0), &[n, lk, heads * d]);
        p.check(
            &format!("{tag} split attention n{n} q{lq} k{lk} causal {causal}"),
            &p.g.attention(&q.0, &k.0, &v.0, heads, causal).unwrap(),
            &p.c.attention(&q.1, &k.1, &v.1, heads, causal).unwrap(),
        );
    }
    // Elementwise and layout ops on 96-320 KiB tensors.
    let shape = [2, 30, 20, 20];
    let n: usize = shape.iter().product();
    let a = p.act(&random(n, 612, 4.0), &shape);
    let b = p.act(&random(n, 613, 4.0), &shape);
    p.check(
        &format!("{tag} split add"),
        &p.g.add(&a.0, &b.0).unwrap(),
        &p.c.add(&a.1, &b.1).unwrap(),
    );
    p.check(
        &format!("{tag} split mul"),
        &p.g.mul(&a.0, &b.0).unwrap(),
        &p.c.mul(&a.1, &b.1).unwrap(),
    );
    p.check(
        &format!("{tag} split silu"),
        &p.g.silu(&a.0).unwrap(),
        &p.c.silu(&a.1).unwrap(),
    );
    p.check(
        &format!("{tag} split gelu"),
        &p.g.gelu(&a.0).unwrap(),
        &p.c.gelu(&a.1).unwrap(),
    );
    let v = p.act(&random(60, 614, 1.0), &[2, 30]);
    p.check(
        &format!("{tag} split add_channel_vector"),
        &p.g.add_channel_vector(&a.0, &v.0).unwrap(),
        &p.c.add_channel_vector(&a.1, &v.1).unwrap(),
    );
    p.check(
        &format!("{tag} split upsample"),
        &p.g.upsample_nearest2x(&a.0).unwrap(),
        &p.c.upsample_nearest2x(&a.1).unwrap(),
    );
    let ff = p.act(&random(300 * 160, 615, 3.0), &[1, 300, 160]);
    p.check(
        &format!("{tag} split geglu"),
        &p.g.geglu(&ff.0).unwrap(),
        &p.c.geglu(&ff.1).unwrap(),
    );
    let big = p.act(&random(40 * 30 * 30, 616, 1.0), &[1, 40, 30, 30]);
    let nlc = (
        p.g.nchw_to_nlc(&big.0).unwrap(),
        p.c.nchw_to_nlc(&big.1).unwrap(),
    );
    p.check(&format!("{tag} split nchw_to_nlc"), &nlc.0, &nlc.1);
    p.check(
        &format!("{tag} split nlc_to_nchw"),
        &p.g.nlc_to_nchw(&nlc.0, 30, 30).unwrap(),
        &p.c.nlc_to_nchw(&nlc.1, 30, 30).unwrap(),
    );
    for (dim, &size) in shape.iter().enumerate() {
        p.check(
            &format!("{tag} split concat dim {dim}"),
            &p.g.concat(&[&a.0, &b.0], dim).unwrap(),
            &p.c.concat(&[&a.1, &b.1], dim).unwrap(),
        );
        p.check(
            &format!("{tag} split narrow dim {dim}"),
            &p.g.narrow(&a.0, dim, 1, size - 1).unwrap(),
            &p.c.narrow(&a.1, dim, 1, size - 1).unwrap(),
        );
    }
    let w = p.weight(&random(n, 617, 1.0), &shape);
    p.check(
        &format!("{tag} split add of an f16 weight"),
        &p.g.add(&a.0, &w.0).unwrap(),
        &p.c.add(&a.1, &w.1).unwrap(),
    );
}

#[test]
fn ops_split_over_binding_windows_match_candle() {
    if skip() {
        return;
    }
    check_split_ops(split_gpu(), "f16");
    check_split_ops(packed_gpu(), "packed");
}

/// A tensor over `max_buffer_size` cannot be split (it lives in one buffer): a clear error
/// naming the limit, from uploads and from ops whose output is too large alike.
#[test]
fn tensors_over_max_buffer_size_are_clear_errors() {
    if skip() {
        return;
    }
    let b = open(WgpuOptions {
        max_storage_binding: Some(64 << 10),
        max_buffer_size: Some(1 << 20),
        ..Default::default()
    });
    let err = b
        .upload(&vec![0.5; 300_000], &[3, 100_000])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_buffer_size") && err.contains("[3, 100000]"),
        "{err}"
    );
    let x = b.upload(&vec![0.5; 200_000], &[1, 2, 400, 250]).unwrap();
    let err = b.upsample_nearest2x(&x).unwrap_err().to_string();
    assert!(err.contains("max_buffer_size"), "{err}");
}

#[test]
fn missing_adapter_and_short_limits_are_clear_errors() {
    if skip() {
        return;
    }
    let err = WgpuBackend::new_blocking(WgpuOptions {
        adapter: AdapterChoice::Named("no adapter is called this".into()),
        ..Default::default()
    })
    .err()
    .expect("no such adapter")
    .to_string();
    assert!(
        err.contains("no wgpu adapter") && err.contains("no adapter is called this"),
        "{err}"
    );
    let small = wgpu::Limits {
        max_compute_invocations_per_workgroup: 128,
        ..wgpu::Limits::default()
    };
    let err = easel_wgpu::check_limits("toy", &small)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("max_compute_invocations_per_workgroup") && err.contains("toy"),
        "{err}"
    );
    easel_wgpu::check_limits("webgpu defaults", &wgpu::Limits::default()).unwrap();
}

// ---- the networks against the golden outputs ------------------------------------------

#[test]
fn text_encoder_matches_golden() {
    if skip() {
        return;
    }
    let b = gpu();
    let clip = tiny_text_encoder(b);
    let cases = [
        ("plain_skip1", "a photo of a cat", 1),
        ("plain_skip2", "a photo of a cat", 2),
        ("empty_skip1", "", 1),
    ];
    assert_text_cases(b, &clip, &cases, TEXT_TOL);
}

#[test]
fn unet_matches_golden_and_allocates_nothing_on_repeat() {
    if skip() {
        return;
    }
    // A backend of its own: the shared one allocates for tests running beside this one.
    let b = &open(WgpuOptions::default());
    let store = model("tiny.ckpt");
    let w = Weights::new(&store, "model.diffusion_model");
    let unet = UNet::load(b, &w, &infer_unet_config(&w).unwrap()).unwrap();
    let g = golden("unet.safetensors");
    let run = || run_unet_case(b, &unet, &[]);
    assert_close("unet eps", &run(), &tensor(&g, "eps").0, UNET_TOL);
    let before = b.buffers_created();
    let again = run();
    assert_eq!(
        b.buffers_created(),
        before,
        "a repeated UNet step created buffers"
    );
    assert_close("unet eps (repeat)", &again, &tensor(&g, "eps").0, UNET_TOL);
}

#[test]
fn vae_decode_matches_golden() {
    if skip() {
        return;
    }
    let b = gpu();
    let store = model("tiny.ckpt");
    let w = Weights::new(&store, "first_stage_model");
    let vae = AutoencoderKl::load(b, &w, &infer_vae_config(&w).unwrap()).unwrap();
    let g = golden("vae.safetensors");
    let (z, zs) = tensor(&g, "z");
    let decoded = vae.decode(b, &b.upload(&z, &zs).unwrap()).unwrap();
    let (want, ws) = tensor(&g, "decoded");
    assert_eq!(b.shape(&decoded), ws);
    assert_close(
        "vae decoded",
        &b.download(&decoded).unwrap(),
        &want,
        VAE_TOL,
    );
}

/// One whole txt2img (Euler, CPU noise, 64x64, 6 steps) on wgpu against the reference
/// stack's pixels: at most 2 levels off and under 2% of values differing, as for candle.
#[test]
fn txt2img_on_wgpu_matches_reference_pixels() {
    if skip() {
        return;
    }
    let b = gpu();
    let text = std::fs::read_to_string(golden_path("txt2img.json")).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let case = cases.iter().find(|c| c["name"] == "euler_cpu").unwrap();
    let path = models_dir()
        .join("Stable-diffusion")
        .join(case["model"].as_str().unwrap());
    let files = checkpoint_files(&models_dir(), &path, &VaeChoice::Auto).unwrap();
    let model = StableDiffusion::load(b, &files).unwrap();
    let mut reg = SamplerRegistry::new();
    easel_samplers::register_all(&mut reg);
    let mut schedulers = SchedulerRegistry::new();
    easel_samplers::register_schedulers(&mut schedulers);
    let sampler = reg.get(case["sampler"].as_str().unwrap()).unwrap();
    // The schedule `Automatic` resolves to for this sampler.
    let scheduler = schedulers.get(sampler.default_scheduler()).unwrap();
    let params = Txt2ImgParams {
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
        batch_size: 1,
        clip_skip: 1,
        rng: RngKind::Cpu,
        noise_device: Default::default(),
        ensd: case["ensd"].as_u64().unwrap(),
        sampler,
        scheduler,
    };
    let images = block_on(txt2img(b, &model, &params, Vec::new(), &mut |_, _, _| {})).unwrap();
    let got: Vec<u8> = images.iter().flat_map(|i| i.rgb.iter().copied()).collect();
    let (_, want) = golden("txt2img.safetensors").read_raw("euler_cpu").unwrap();
    assert_eq!(got.len(), want.len());
    let diffs: Vec<i32> = got
        .iter()
        .zip(&want)
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let off = diffs.iter().filter(|&&d| d != 0).count() as f64 / diffs.len() as f64;
    println!(
        "txt2img on wgpu: max pixel diff {max}, {:.2}% differ",
        off * 100.0
    );
    assert!(
        max <= 2 && off < 0.02,
        "max pixel diff {max}, {:.2}% differ",
        off * 100.0
    );
}

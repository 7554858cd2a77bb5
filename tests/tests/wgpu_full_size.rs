//! The wgpu backend at the shapes of the real SD1.5 networks, against the CPU backend
//! (candle): one test per operation, at the channel counts, head counts and head dims of
//! the full-size UNet, VAE and text encoder, and one whole txt2img with full-size random
//! weights (made on demand by `easel_core::nn::random_weights`, nothing stored).
//!
//! Spatial sizes: where a software adapter (lavapipe, CI) makes an op at the 512x512
//! generation's size too slow for every run, the test uses a smaller latent with the same
//! channels and heads (the kernels do not depend on the token count but for the number of
//! blocks). The largest shapes of a 512x512 step with CFG (batch 2) and of the VAE at
//! 512x512 run in `largest_shapes_run_within_the_limits`, gated by `EASEL_WGPU_LARGEST=1`
//! because on lavapipe they take many minutes. The whole full-size txt2img is gated by
//! `EASEL_WGPU_FULL_SIZE=1`: on a (busy) 2-core machine like CI's, with lavapipe, it took
//! 7-8.5 minutes (loading the synthetic weights 53-85 s + 27-47 s, wgpu 322-379 s, CPU
//! 14-16 s), over the ~3 minutes a test on every change may take; run it on changes to
//! plugins/wgpu.
//!
//! Tolerances, relative to the reference's largest magnitude: weights of rank ≥ 2 are
//! stored in f16 and the candle side gets the same f16-rounded values, so what differs is
//! f32 summation order over up to 4608-term reductions and the kernels' exp/erf: 2e-5
//! (the largest seen on lavapipe is listed with each op in plugins/wgpu/README.md).
//!
//! Set `EASEL_SKIP_WGPU=1` to skip on a machine without any Vulkan/Metal/DX12 driver.

use easel_candle::CandleBackend;
use easel_core::formats::TensorStore;
use easel_core::io::ByteSource;
use easel_core::model::StableDiffusion;
use easel_core::nn::{random_weights, ClipConfig, UNetConfig, VaeConfig};
use easel_core::noise::RngKind;
use easel_core::pipeline::{txt2img, Txt2ImgParams};
use easel_core::sampler::block_on;
use easel_core::Backend;
use easel_tests::random;
use easel_tests::{max_rel_diff, sampler_and_schedule};
use easel_wgpu::{half, KernelShapes, WgpuBackend, WgpuOptions};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

const OP_TOL: f32 = 2e-5;

fn skip() -> bool {
    if std::env::var("EASEL_SKIP_WGPU").is_ok_and(|v| v == "1") {
        eprintln!("EASEL_SKIP_WGPU=1: skipping the wgpu backend tests");
        return true;
    }
    false
}

fn gpu() -> &'static WgpuBackend {
    static GPU: OnceLock<WgpuBackend> = OnceLock::new();
    GPU.get_or_init(|| {
        // A GPU's workgroup shapes: what a real checkpoint runs on a real GPU (the gated
        // txt2img below and the page's full-size run keep the software adapter's own).
        let options = WgpuOptions {
            kernel_shapes: KernelShapes::Gpu,
            ..Default::default()
        };
        let b = WgpuBackend::new_blocking(options).unwrap_or_else(|e| {
            panic!("wgpu backend unavailable: {e}\n(set EASEL_SKIP_WGPU=1 to skip these tests)")
        });
        eprintln!("wgpu full-size tests on {}", b.name());
        b
    })
}

type GT = <WgpuBackend as Backend>::Tensor;
type CT = <CandleBackend as Backend>::Tensor;

/// Both backends, the candle one as reference.
struct Pair {
    g: &'static WgpuBackend,
    c: CandleBackend,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            g: gpu(),
            c: CandleBackend::cpu(),
        }
    }
    fn act(&self, shape: &[usize], seed: u64, scale: f32) -> (GT, CT) {
        let data = random(shape.iter().product(), seed, scale);
        (
            self.g.upload(&data, shape).unwrap(),
            self.c.upload(&data, shape).unwrap(),
        )
    }
    /// A weight: f16 on the wgpu side (rank ≥ 2), the same rounded values on candle's.
    fn weight(&self, shape: &[usize], seed: u64, scale: f32) -> (GT, CT) {
        let data = random(shape.iter().product(), seed, scale);
        let stored: Vec<f32> = if shape.len() >= 2 {
            data.iter()
                .map(|&x| half::f16::from_f32(x).to_f32())
                .collect()
        } else {
            data.clone()
        };
        (
            self.g.upload_weight(&data, shape).unwrap(),
            self.c.upload(&stored, shape).unwrap(),
        )
    }
    /// Times the wgpu side (including its read-back) and checks it against candle's.
    fn check(&self, what: &str, got: impl FnOnce() -> GT, want: &CT) {
        let start = Instant::now();
        let got = got();
        let got_host = self.g.download(&got).unwrap();
        let ms = start.elapsed().as_secs_f64() * 1e3;
        assert_eq!(self.g.shape(&got), self.c.shape(want), "{what}: shape");
        let want = self.c.download(want).unwrap();
        assert_eq!(got_host.len(), want.len(), "{what}: length");
        // (The relative difference alone would pass NaN.)
        assert!(got_host.iter().all(|v| v.is_finite()), "{what}: not finite");
        let rel = max_rel_diff(&got_host, &want);
        println!("{what}: max relative difference {rel:.2e} (wgpu {ms:.0} ms)");
        assert!(
            rel < OP_TOL,
            "{what}: max relative difference {rel} > {OP_TOL}"
        );
    }
}

fn attention(p: &Pair, what: &str, n: usize, lq: usize, lk: usize, heads: usize, d: usize) {
    attention_masked(p, what, n, lq, lk, heads, d, false)
}

#[allow(clippy::too_many_arguments)]
fn attention_masked(
    p: &Pair,
    what: &str,
    n: usize,
    lq: usize,
    lk: usize,
    heads: usize,
    d: usize,
    causal: bool,
) {
    let w = heads * d;
    // Scores of a few units, as after the networks' projections.
    let q = p.act(&[n, lq, w], 1, 1.5);
    let k = p.act(&[n, lk, w], 2, 1.5);
    let v = p.act(&[n, lk, w], 3, 1.0);
    let want = p.c.attention(&q.1, &k.1, &v.1, heads, causal).unwrap();
    p.check(
        &format!("{what}: attention [{n}, {lq}, {w}] x {lk} keys, {heads} heads of {d}"),
        || p.g.attention(&q.0, &k.0, &v.0, heads, causal).unwrap(),
        &want,
    );
}

/// UNet self-attention at each level (8 heads of 40, 80, 160) for a 256x256 image with CFG
/// (latent 32x32: 1024, 256 and 64 tokens per image).
#[test]
fn unet_self_attention() {
    if skip() {
        return;
    }
    let p = Pair::new();
    for (tokens, d) in [(1024, 40), (256, 80), (64, 160)] {
        attention(&p, "UNet self", 2, tokens, tokens, 8, d);
    }
}

/// UNet cross-attention over the 77 context tokens at a 512x512 generation's token counts.
#[test]
fn unet_cross_attention() {
    if skip() {
        return;
    }
    let p = Pair::new();
    for (tokens, d) in [(4096, 40), (1024, 80), (256, 160)] {
        attention(&p, "UNet cross", 2, tokens, 77, 8, d);
    }
}

/// The text encoder's causal self-attention: 77 tokens, 12 heads of 64, cond and uncond.
#[test]
fn text_encoder_attention() {
    if skip() {
        return;
    }
    attention_masked(&Pair::new(), "CLIP", 2, 77, 77, 12, 64, true);
}

/// The VAE's single-head attention over 512 channels, at the latent of a 256x256 image
/// (1024 tokens) and of a 64x64 one (64 tokens).
#[test]
fn vae_attention() {
    if skip() {
        return;
    }
    let p = Pair::new();
    for tokens in [1024, 64] {
        attention(&p, "VAE mid", 1, tokens, tokens, 1, 512);
    }
}

fn conv(p: &Pair, what: &str, x: [usize; 4], o: usize, k: usize, stride: usize) {
    let [n, c, h, w] = x;
    let xs = p.act(&x, 10, 1.0);
    // Weights of the scale PyTorch's default init gives (1/sqrt(fan_in)).
    let ws = p.weight(&[o, c, k, k], 11, 1.0 / ((c * k * k) as f32).sqrt());
    let bs = p.weight(&[o], 12, 0.1);
    let pad = k / 2;
    let want = p.c.conv2d(&xs.1, &ws.1, Some(&bs.1), stride, pad).unwrap();
    p.check(
        &format!("{what}: conv {k}x{k}/{stride} {c}->{o} on [{n}, {c}, {h}, {w}]"),
        || p.g.conv2d(&xs.0, &ws.0, Some(&bs.0), stride, pad).unwrap(),
        &want,
    );
}

/// The VAE decoder's convolutions (512 channels at the latent, 512->512 and 512->256
/// after upsampling, 128 channels at the image, 3 out) at the sizes of a 64x64 image (a
/// 128x128 one for the last), and the encoder's stride-2 downsampling.
#[test]
fn vae_convolutions() {
    if skip() {
        return;
    }
    let p = Pair::new();
    conv(&p, "VAE conv_in", [1, 4, 16, 16], 512, 3, 1);
    conv(&p, "VAE mid", [1, 512, 8, 8], 512, 3, 1);
    conv(&p, "VAE up.2 upsample", [1, 512, 32, 32], 512, 3, 1);
    conv(&p, "VAE up.1 block", [1, 512, 32, 32], 256, 3, 1);
    conv(&p, "VAE up.1 shortcut", [1, 512, 32, 32], 256, 1, 1);
    conv(&p, "VAE conv_out", [1, 128, 128, 128], 3, 3, 1);
    conv(&p, "VAE encoder down", [1, 256, 32, 32], 256, 3, 2);
}

/// The UNet's convolutions for a 256x256 image with CFG: 320 channels at the latent's
/// full size, 1280 at the deepest level, the stride-2 downsamplers, the skip merges.
#[test]
fn unet_convolutions() {
    if skip() {
        return;
    }
    let p = Pair::new();
    conv(&p, "UNet conv_in", [2, 4, 32, 32], 320, 3, 1);
    conv(&p, "UNet level 0", [2, 320, 32, 32], 320, 3, 1);
    conv(&p, "UNet downsample", [2, 640, 16, 16], 640, 3, 2);
    conv(&p, "UNet level 3", [2, 1280, 4, 4], 1280, 3, 1);
    conv(&p, "UNet skip merge", [2, 2560, 4, 4], 1280, 3, 1);
    conv(&p, "UNet skip_connection", [2, 960, 32, 32], 320, 1, 1);
    conv(&p, "UNet conv_out", [2, 320, 32, 32], 4, 3, 1);
}

fn linear(p: &Pair, what: &str, rows: usize, k: usize, n: usize) {
    let x = p.act(&[2, rows, k], 20, 1.0);
    let w = p.weight(&[n, k], 21, 1.0 / (k as f32).sqrt());
    let b = p.weight(&[n], 22, 0.1);
    let want = p.c.linear(&x.1, &w.1, Some(&b.1)).unwrap();
    p.check(
        &format!("{what}: linear [2, {rows}, {k}] -> {n}"),
        || p.g.linear(&x.0, &w.0, Some(&b.0)).unwrap(),
        &want,
    );
}

/// Every linear layer shape of the UNet's transformers (512x512 generation with CFG at
/// the deepest levels, 256x256 at level 0), the time embedding and the text encoder.
#[test]
fn linear_layers() {
    if skip() {
        return;
    }
    let p = Pair::new();
    linear(&p, "UNet q/k/v/out", 1024, 320, 320);
    linear(&p, "UNet context k/v", 77, 768, 1280);
    linear(&p, "UNet geglu proj", 1024, 320, 2560);
    linear(&p, "UNet ff out", 1024, 1280, 320);
    linear(&p, "UNet level 3 ff", 64, 1280, 10240);
    linear(&p, "UNet level 3 ff out", 64, 5120, 1280);
    linear(&p, "UNet time embedding", 1, 1280, 1280);
    linear(&p, "CLIP mlp fc1", 77, 768, 3072);
    linear(&p, "CLIP mlp fc2", 77, 3072, 768);
}

fn group_norm(p: &Pair, what: &str, x: [usize; 4], silu: bool) {
    let c = x[1];
    // Off-centre values, as activations are.
    let data: Vec<f32> = random(x.iter().product(), 30, 2.0)
        .iter()
        .map(|v| v + 0.7)
        .collect();
    let xs = (
        p.g.upload(&data, &x).unwrap(),
        p.c.upload(&data, &x).unwrap(),
    );
    let gamma = p.weight(&[c], 31, 1.0);
    let beta = p.weight(&[c], 32, 1.0);
    let want =
        p.c.group_norm(&xs.1, 32, &gamma.1, &beta.1, 1e-6, silu)
            .unwrap();
    p.check(
        &format!("{what}: group_norm 32 groups on {x:?} silu {silu}"),
        || {
            p.g.group_norm(&xs.0, 32, &gamma.0, &beta.0, 1e-6, silu)
                .unwrap()
        },
        &want,
    );
}

/// Group norms over 128..1280 channels: the VAE at a 256x256 image (128 channels there,
/// 512 at its latent), the UNet with CFG at a 512x512 image.
#[test]
fn group_norms() {
    if skip() {
        return;
    }
    let p = Pair::new();
    group_norm(&p, "VAE mid", [1, 512, 32, 32], true);
    group_norm(&p, "VAE up.1", [1, 256, 128, 128], true);
    group_norm(&p, "VAE norm_out", [1, 128, 256, 256], true);
    group_norm(&p, "UNet level 0", [2, 320, 64, 64], true);
    group_norm(&p, "UNet level 3", [2, 1280, 8, 8], false);
    group_norm(&p, "UNet skip merge", [2, 2560, 8, 8], true);
}

/// Layer norms of the UNet's transformers (512x512 with CFG) and of the text encoder,
/// GEGLU at the UNet's level 0, the elementwise activations.
#[test]
fn layer_norm_geglu_and_activations() {
    if skip() {
        return;
    }
    let p = Pair::new();
    for (rows, c) in [(4096, 320), (1024, 640), (64, 1280), (77, 768)] {
        let x = p.act(&[2, rows, c], 40, 3.0);
        let gamma = p.weight(&[c], 41, 1.0);
        let beta = p.weight(&[c], 42, 1.0);
        let want = p.c.layer_norm(&x.1, &gamma.1, &beta.1, 1e-5).unwrap();
        p.check(
            &format!("layer_norm [2, {rows}, {c}]"),
            || p.g.layer_norm(&x.0, &gamma.0, &beta.0, 1e-5).unwrap(),
            &want,
        );
    }
    let ff = p.act(&[2, 4096, 2560], 43, 3.0);
    let want = p.c.geglu(&ff.1).unwrap();
    p.check("geglu [2, 4096, 2560]", || p.g.geglu(&ff.0).unwrap(), &want);
    let x = p.act(&[2, 320, 64, 64], 44, 4.0);
    let want = p.c.silu(&x.1).unwrap();
    p.check("silu [2, 320, 64, 64]", || p.g.silu(&x.0).unwrap(), &want);
    let x = p.act(&[2, 77, 3072], 45, 4.0);
    let want = p.c.quick_gelu(&x.1).unwrap();
    p.check(
        "quick_gelu [2, 77, 3072]",
        || p.g.quick_gelu(&x.0).unwrap(),
        &want,
    );
}

/// Layout ops at the largest tensors they see in a 512x512 step with CFG and in the VAE
/// at a 256x256 image: transposes, upsampling, the skip concat, the CFG split, the token
/// and position embeddings of the full vocabulary.
#[test]
fn layout_ops_and_embedding() {
    if skip() {
        return;
    }
    let p = Pair::new();
    let x = p.act(&[2, 320, 64, 64], 50, 1.0);
    let want = p.c.nchw_to_nlc(&x.1).unwrap();
    let nlc = (p.g.nchw_to_nlc(&x.0).unwrap(), want);
    p.check("nchw_to_nlc [2, 320, 64, 64]", || nlc.0.clone(), &nlc.1);
    let want = p.c.nlc_to_nchw(&nlc.1, 64, 64).unwrap();
    p.check(
        "nlc_to_nchw [2, 4096, 320]",
        || p.g.nlc_to_nchw(&nlc.0, 64, 64).unwrap(),
        &want,
    );
    let y = p.act(&[2, 640, 64, 64], 51, 1.0);
    let want = p.c.concat(&[&x.1, &y.1], 1).unwrap();
    p.check(
        "concat [2, 320 + 640, 64, 64]",
        || p.g.concat(&[&x.0, &y.0], 1).unwrap(),
        &want,
    );
    let want = p.c.narrow(&y.1, 0, 1, 1).unwrap();
    p.check(
        "narrow the uncond half of [2, 640, 64, 64]",
        || p.g.narrow(&y.0, 0, 1, 1).unwrap(),
        &want,
    );
    let v = p.act(&[1, 256, 128, 128], 52, 1.0);
    let want = p.c.upsample_nearest2x(&v.1).unwrap();
    p.check(
        "upsample [1, 256, 128, 128]",
        || p.g.upsample_nearest2x(&v.0).unwrap(),
        &want,
    );
    let e = p.act(&[2, 1280], 53, 1.0);
    let h = p.act(&[2, 1280, 8, 8], 54, 1.0);
    let want = p.c.add_channel_vector(&h.1, &e.1).unwrap();
    p.check(
        "add_channel_vector [2, 1280, 8, 8]",
        || p.g.add_channel_vector(&h.0, &e.0).unwrap(),
        &want,
    );
    let table = p.weight(&[49408, 768], 55, 0.1);
    let ids: Vec<u32> = (0..77).map(|i| (i * 641 + 49406) % 49408).collect();
    let want = p.c.embedding(&table.1, &ids).unwrap();
    p.check(
        "token embedding 49408 x 768",
        || p.g.embedding(&table.0, &ids).unwrap(),
        &want,
    );
}

// ---- the largest shapes of a 512x512 generation (gated) -------------------------------

fn largest() -> bool {
    if std::env::var("EASEL_WGPU_LARGEST").is_ok_and(|v| v == "1") {
        return true;
    }
    eprintln!("set EASEL_WGPU_LARGEST=1 to run the largest shapes (minutes on lavapipe)");
    false
}

/// Attention where a full reference is costly: every query runs on wgpu; queries
/// `rows` are compared with candle's attention of those queries alone (queries are
/// independent without a causal mask).
fn attention_rows(p: &Pair, what: &str, x: [usize; 3], lk: usize, heads: usize) {
    let [n, lq, w] = x;
    let q = p.act(&x, 1, 1.5);
    let k = p.act(&[n, lk, w], 2, 1.5);
    let v = p.act(&[n, lk, w], 3, 1.0);
    let out = p.g.attention(&q.0, &k.0, &v.0, heads, false).unwrap();
    for rows in [0..64, lq - 64..lq] {
        let qr = p.c.narrow(&q.1, 1, rows.start, rows.len()).unwrap();
        let want = p.c.attention(&qr, &k.1, &v.1, heads, false).unwrap();
        p.check(
            &format!("{what}: attention {x:?} x {lk} keys, {heads} heads, queries {rows:?}"),
            || p.g.narrow(&out, 1, rows.start, rows.len()).unwrap(),
            &want,
        );
    }
}

/// A convolution where a full reference is costly: all of it on wgpu, the last 8 output
/// channels (the last piece of any split) compared with candle's convolution of those.
fn conv_channels(p: &Pair, what: &str, x: [usize; 4], o: usize, k: usize) {
    let [n, c, h, w] = x;
    let xs = p.act(&x, 10, 1.0);
    let ws = p.weight(&[o, c, k, k], 11, 1.0 / ((c * k * k) as f32).sqrt());
    let bs = p.weight(&[o], 12, 0.1);
    let out = p.g.conv2d(&xs.0, &ws.0, Some(&bs.0), 1, k / 2).unwrap();
    let last = o.min(8);
    let wr = p.c.narrow(&ws.1, 0, o - last, last).unwrap();
    let br = p.c.narrow(&bs.1, 0, o - last, last).unwrap();
    let want = p.c.conv2d(&xs.1, &wr, Some(&br), 1, k / 2).unwrap();
    p.check(
        &format!("{what}: conv {k}x{k} {c}->{o} on [{n}, {c}, {h}, {w}], last {last} outputs"),
        || p.g.narrow(&out, 1, o - last, last).unwrap(),
        &want,
    );
}

/// The largest shape of each op in a 512x512 UNet step with CFG (batch 2) and in the VAE
/// decoder at 512x512 (256 MiB activations: over a 128 MiB storage binding, so the split
/// paths run), plus the VAE's attention at a 1024x1024 image's 16384 tokens. Gated by
/// `EASEL_WGPU_LARGEST=1`: meant for a real GPU, and minutes on lavapipe.
#[test]
fn largest_shapes_run_within_the_limits() {
    if skip() || !largest() {
        return;
    }
    let p = Pair::new();
    println!(
        "limits: max_storage_buffer_binding_size {}, max_buffer_size {}",
        p.g.limits().max_storage_buffer_binding_size,
        p.g.limits().max_buffer_size
    );
    // UNet, 512x512 with CFG.
    for (tokens, d) in [(4096, 40), (1024, 80), (256, 160)] {
        attention_rows(&p, "UNet self 512", [2, tokens, 8 * d], tokens, 8);
        attention(&p, "UNet cross 512", 2, tokens, 77, 8, d);
    }
    conv_channels(&p, "UNet level 0 512", [2, 320, 64, 64], 320, 3);
    conv_channels(&p, "UNet output merge 512", [2, 640, 64, 64], 320, 3);
    linear(&p, "UNet geglu proj 512", 4096, 320, 2560);
    linear(&p, "UNet ff out 512", 4096, 1280, 320);
    group_norm(&p, "UNet output merge 512", [2, 640, 64, 64], true);
    // VAE decoder at 512x512.
    attention_rows(&p, "VAE mid 512", [1, 4096, 512], 4096, 1);
    conv_channels(&p, "VAE up.2 512", [1, 512, 256, 256], 512, 3);
    conv_channels(&p, "VAE up.1 block 512", [1, 512, 256, 256], 256, 3);
    conv_channels(&p, "VAE up.1 upsample 512", [1, 256, 512, 512], 256, 3);
    conv_channels(&p, "VAE up.0 block 512", [1, 256, 512, 512], 128, 3);
    conv_channels(&p, "VAE conv_out 512", [1, 128, 512, 512], 3, 3);
    group_norm(&p, "VAE up.0 512", [1, 256, 512, 512], true);
    let v = p.act(&[1, 256, 256, 256], 52, 1.0);
    let want = p.c.upsample_nearest2x(&v.1).unwrap();
    p.check(
        "VAE upsample 512: [1, 256, 256, 256]",
        || p.g.upsample_nearest2x(&v.0).unwrap(),
        &want,
    );
    // The VAE's attention at a 1024x1024 image (refused on llvmpipe, whose loop limiter
    // allows 4096 keys at head dim 512).
    if !p.g.name().contains("llvmpipe") {
        attention_rows(&p, "VAE mid 1024", [1, 16384, 512], 16384, 1);
    }
}

// ---- one whole generation with full-size weights ----------------------------------------

/// The synthetic weights' bytes with every f32 rounded to the nearest f16, so that both
/// backends compute with the same weights (wgpu stores rank ≥ 2 weights in f16).
struct F16Rounded(Arc<dyn ByteSource>);

impl ByteSource for F16Rounded {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn len(&self) -> u64 {
        self.0.len()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> easel_core::Result<()> {
        let start = offset / 4 * 4;
        let end = (offset + buf.len() as u64).div_ceil(4) * 4;
        let mut words = vec![0u8; (end - start) as usize];
        self.0.read_at(start, &mut words)?;
        for w in words.chunks_exact_mut(4) {
            let v = f32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            w.copy_from_slice(&half::f16::from_f32(v).to_f32().to_le_bytes());
        }
        let skip = (offset - start) as usize;
        buf.copy_from_slice(&words[skip..skip + buf.len()]);
        Ok(())
    }
}

fn generate<B: Backend>(b: &B, store: &TensorStore) -> (Vec<u8>, f64, f64) {
    let start = Instant::now();
    let model = StableDiffusion::load_from_stores(
        b,
        store,
        None,
        None,
        "sd15-random.safetensors",
        ("0000000000".into(), None),
    )
    .unwrap();
    let loaded = start.elapsed().as_secs_f64();
    let (sampler, scheduler) = sampler_and_schedule("Euler", None);
    let params = Txt2ImgParams {
        downcast_alphas_cumprod: false,
        vae_decoder: Default::default(),
        vae_encoder: Default::default(),
        vae_tiling: false,
        prompt: "a lighthouse on a cliff at dusk".into(),
        negative_prompt: "blurry".into(),
        steps: 1,
        cfg_scale: 7.0,
        seed: 42,
        width: 64,
        height: 64,
        batch_size: 1,
        clip_skip: 1,
        rng: RngKind::Cpu,
        noise_device: Default::default(),
        ensd: 0,
        sampler,
        scheduler,
    };
    let start = Instant::now();
    let images = block_on(txt2img(b, &model, &params, Vec::new(), &mut |_, _, _| {})).unwrap();
    let rgb = images.into_iter().flat_map(|i| i.rgb).collect();
    (rgb, loaded, start.elapsed().as_secs_f64())
}

/// txt2img with full-size SD1.5 weights (random, LDM keys) at 64x64, 1 Euler step, CFG 7:
/// on wgpu the text encoder, a UNet step with CFG and the VAE decoder run every op at the
/// real networks' widths and head dims, incl. the VAE's 512-wide single-head attention.
/// The image matches the CPU backend's: at most 2 levels off, under 1% of values differing
/// (seen: identical). Gated by `EASEL_WGPU_FULL_SIZE=1` (minutes on lavapipe).
#[test]
fn full_size_txt2img_matches_cpu() {
    if skip() {
        return;
    }
    if !std::env::var("EASEL_WGPU_FULL_SIZE").is_ok_and(|v| v == "1") {
        eprintln!(
            "set EASEL_WGPU_FULL_SIZE=1 to run the full-size txt2img (5-7 minutes on lavapipe)"
        );
        return;
    }
    let synthetic = random_weights(
        Some(&UNetConfig::sd15()),
        Some(&VaeConfig::sd15()),
        Some(&ClipConfig::vit_l14()),
        7,
    );
    let store = TensorStore::new(
        Arc::new(F16Rounded(synthetic.source().clone())),
        synthetic.tensors().clone(),
        Default::default(),
    );
    // In the workgroup shapes the adapter picks for itself (a software adapter's here; the
    // op checks above run a GPU's).
    let own = WgpuBackend::new_blocking(WgpuOptions::default()).expect("wgpu backend");
    let (got, load_g, run_g) = generate(&own, &store);
    println!("wgpu: loaded in {load_g:.1} s, generated in {run_g:.1} s");
    let (want, load_c, run_c) = generate(&CandleBackend::cpu(), &store);
    println!("cpu: loaded in {load_c:.1} s, generated in {run_c:.1} s");
    assert_eq!(got.len(), 64 * 64 * 3);
    assert_eq!(got.len(), want.len());
    let diffs: Vec<i32> = got
        .iter()
        .zip(&want)
        .map(|(&a, &b)| (a as i32 - b as i32).abs())
        .collect();
    let max = diffs.iter().copied().max().unwrap_or(0);
    let off = diffs.iter().filter(|&&d| d != 0).count() as f64 / diffs.len() as f64;
    let (lo, hi) = (want.iter().min().unwrap(), want.iter().max().unwrap());
    println!(
        "full-size txt2img: max pixel diff {max}, {:.2}% differ; CPU image spans {lo}..{hi}",
        off * 100.0
    );
    assert!(
        max <= 2 && off < 0.01,
        "max pixel diff {max}, {:.2}% differ",
        off * 100.0
    );
}

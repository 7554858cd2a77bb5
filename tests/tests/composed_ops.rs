//! The three networks with the candle backend's CPU kernels off: every operation runs as
//! the composition of candle operations that a CUDA device runs (`--backend cuda`), checked
//! against the same golden outputs of the reference stack as `networks.rs`, on any machine.
//! Its own test binary: the switch is process-wide.

use easel_candle::ops::cpu_kernel::set_cpu_kernels;
use easel_candle::CandleBackend;
use easel_core::Backend;
use easel_tests::tiny_networks::{
    assert_close, assert_text_cases, golden, run_unet_case, tensor, tiny_text_encoder, tiny_unet,
    tiny_vae, TEXT_TOL, UNET_TOL, VAE_TOL,
};

/// The CPU backend with its kernels off (every test of this binary turns them off).
fn composed() -> CandleBackend {
    set_cpu_kernels(false);
    CandleBackend::cpu()
}

#[test]
fn unet_matches_golden_eps() {
    let b = composed();
    let unet = tiny_unet(&b);
    let run = |b: &CandleBackend| run_unet_case(b, &unet, &[]);
    let want = tensor(&golden("unet.safetensors"), "eps").0;
    assert_close("eps (composed)", &run(&b), &want, UNET_TOL);
    // Chunked attention: the query blocks of the composed attention.
    let chunked = b.clone().with_attention_block_bytes(4096);
    assert_close("eps (composed, chunked)", &run(&chunked), &want, UNET_TOL);
}

#[test]
fn vae_matches_golden_decode_and_encode() {
    let b = composed();
    let g = golden("vae.safetensors");
    let vae = tiny_vae(&b);
    let (z, zs) = tensor(&g, "z");
    let decoded = vae.decode(&b, &b.upload(&z, &zs).unwrap()).unwrap();
    let (want, ws) = tensor(&g, "decoded");
    assert_eq!(b.shape(&decoded), ws);
    assert_close(
        "decoded (composed)",
        &b.download(&decoded).unwrap(),
        &want,
        VAE_TOL,
    );
    let (img, is) = tensor(&g, "image");
    let mean = vae.encode(&b, &b.upload(&img, &is).unwrap()).unwrap();
    let want = tensor(&g, "encoded_mean").0;
    assert_close(
        "encoded_mean (composed)",
        &b.download(&mean).unwrap(),
        &want,
        VAE_TOL,
    );
}

#[test]
fn clip_text_encoder_matches_golden() {
    let b = composed();
    let clip = tiny_text_encoder(&b);
    let cases = [
        ("plain_skip1", "a photo of a cat", 1),
        ("plain_skip2", "a photo of a cat", 2),
        ("empty_skip1", "", 1),
    ];
    assert_text_cases(&b, &clip, &cases, TEXT_TOL);
}

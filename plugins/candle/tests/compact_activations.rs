//! Activations the CPU backend keeps compact (bf16, with bf16 weights, from a size on):
//! which tensors it compacts, and the convolutions and group norms that read and write them
//! against f64 references of the widened inputs, each result rounded to bf16 once.

use candle_core::{DType, Tensor};
use easel_candle::{CandleBackend, Precision};
use easel_core::backend::Backend;

/// bf16's unit roundoff (8 significant bits).
const BF16_ROUNDOFF: f64 = 1.0 / 256.0;

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

/// `v` rounded to bf16 (so that bf16 products, where the CPU has them, round nothing more).
fn bf16_exact(v: Vec<f32>) -> Vec<f32> {
    v.into_iter()
        .map(|x| half::bf16::from_f32(x).to_f32())
        .collect()
}

fn compacting() -> CandleBackend {
    CandleBackend::cpu()
        .with_precision(Precision::Bf16)
        .with_compact_from_bytes(0)
}

fn download(b: &CandleBackend, t: &Tensor) -> Vec<f32> {
    b.download(t).unwrap()
}

#[test]
fn only_large_activations_on_the_bf16_path_are_compacted() {
    let x = |n: usize| CandleBackend::cpu().upload(&values(n, 1), &[n]).unwrap();
    let bf16 = CandleBackend::cpu()
        .with_precision(Precision::Bf16)
        .with_compact_from_bytes(1024);
    assert_eq!(bf16.compact(x(256)).unwrap().dtype(), DType::BF16);
    assert_eq!(bf16.compact(x(255)).unwrap().dtype(), DType::F32);
    let fp32 = CandleBackend::cpu().with_compact_from_bytes(0);
    assert_eq!(fp32.compact(x(256)).unwrap().dtype(), DType::F32);
    // The default keeps everything below 64 MiB in f32.
    let default = CandleBackend::cpu().with_precision(Precision::Bf16);
    assert_eq!(default.compact(x(1 << 20)).unwrap().dtype(), DType::F32);
    // Compacting rounds each value once; widening is exact.
    let values = values(256, 1);
    let round_trip = bf16.widen(bf16.compact(x(256)).unwrap()).unwrap();
    assert_eq!(round_trip.dtype(), DType::F32);
    assert_eq!(download(&bf16, &round_trip), bf16_exact(values));
}

/// A direct convolution in f64 and each output's sum of term magnitudes.
#[allow(clippy::too_many_arguments)]
fn direct_conv(
    x: &[f32],
    [n, c, h, w]: [usize; 4],
    wt: &[f32],
    [cout, k]: [usize; 2],
    bias: &[f32],
    stride: usize,
    pad: usize,
) -> (Vec<f64>, Vec<f64>) {
    let ho = (h + 2 * pad - k) / stride + 1;
    let wo = (w + 2 * pad - k) / stride + 1;
    let (mut y, mut mag) = (Vec::new(), Vec::new());
    for i in 0..n {
        for o in 0..cout {
            for oy in 0..ho {
                for ox in 0..wo {
                    let (mut acc, mut m) = (bias[o] as f64, bias[o].abs() as f64);
                    for ci in 0..c {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * stride + ky).wrapping_sub(pad);
                                let ix = (ox * stride + kx).wrapping_sub(pad);
                                if iy >= h || ix >= w {
                                    continue;
                                }
                                let p = x[((i * c + ci) * h + iy) * w + ix] as f64
                                    * wt[((o * c + ci) * k + ky) * k + kx] as f64;
                                acc += p;
                                m += p.abs();
                            }
                        }
                    }
                    y.push(acc);
                    mag.push(m);
                }
            }
        }
    }
    (y, mag)
}

/// Convolutions over compact images through the matrix products (a 1×1 and a strided 3×3,
/// each over more output pixels than one window of f32 results holds, and a 3×3 through
/// Winograd's transform): the output is compact, and each value is the exact convolution
/// of the widened image up to f32 sums and one bf16 rounding.
#[test]
fn convolutions_of_compact_images_round_once() {
    let b = compacting();
    // (image dims, out channels, kernel, stride, padding)
    let cases = [
        ([1, 8, 64, 64], 512, 1, 1, 0),
        ([2, 3, 90, 94], 512, 3, 2, 1),
        ([1, 4, 48, 50], 6, 3, 1, 1),
    ];
    for (i, &(dims, cout, k, stride, pad)) in cases.iter().enumerate() {
        let n: usize = dims.iter().product();
        let x = b
            .compact(b.upload(&values(n, 10 + i as u32), &dims).unwrap())
            .unwrap();
        assert_eq!(x.dtype(), DType::BF16);
        let wide = download(&b, &x);
        let wt = bf16_exact(values(cout * dims[1] * k * k, 20 + i as u32));
        let bias = values(cout, 30 + i as u32);
        let w = b.upload(&wt, &[cout, dims[1], k, k]).unwrap();
        let bt = b.upload(&bias, &[cout]).unwrap();
        let y = b.conv2d(&x, &w, Some(&bt), stride, pad).unwrap();
        assert_eq!(y.dtype(), DType::BF16, "case {i}");
        let got = download(&b, &y);
        let (want, mag) = direct_conv(&wide, dims, &wt, [cout, k], &bias, stride, pad);
        assert_eq!(got.len(), want.len());
        for (j, ((&g, &w), &m)) in got.iter().zip(&want).zip(&mag).enumerate() {
            let bound = 1e-5 * m + BF16_ROUNDOFF * (w.abs() + 1e-5 * m);
            assert!(
                (g as f64 - w).abs() <= bound + 1e-30,
                "case {i} element {j}: {g}, the direct convolution gives {w}"
            );
        }
    }
}

/// Group norm (with SiLU) of a compact activation, out of place and in place: compact
/// results equal to each other, each the f64 group norm of the widened input rounded once.
#[test]
fn group_norms_of_compact_activations_round_once() {
    let b = compacting();
    let (n, c, h, w, groups) = (2, 8, 12, 10, 4);
    let x = b
        .compact(b.upload(&values(n * c * h * w, 5), &[n, c, h, w]).unwrap())
        .unwrap();
    let wide = download(&b, &x);
    let gamma = values(c, 6);
    let beta = values(c, 7);
    let (g, bt) = (
        b.upload(&gamma, &[c]).unwrap(),
        b.upload(&beta, &[c]).unwrap(),
    );
    let eps = 1e-6;
    let out_of_place = b.group_norm(&x, groups, &g, &bt, eps, true).unwrap();
    assert_eq!(out_of_place.dtype(), DType::BF16);
    let copy = b.compact(b.upload(&wide, &[n, c, h, w]).unwrap()).unwrap();
    let in_place = b
        .group_norm_owned(copy, groups, &g, &bt, eps, true)
        .unwrap();
    assert_eq!(in_place.dtype(), DType::BF16);
    let got = download(&b, &out_of_place);
    assert_eq!(got, download(&b, &in_place));
    let per_group = c / groups * h * w;
    for (gi, (xs, ys)) in wide
        .chunks(per_group)
        .zip(got.chunks(per_group))
        .enumerate()
    {
        let mean = xs.iter().map(|&v| v as f64).sum::<f64>() / per_group as f64;
        let var = xs.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / per_group as f64;
        for (j, (&xv, &yv)) in xs.iter().zip(ys).enumerate() {
            let ch = (gi % groups) * (c / groups) + j / (h * w);
            let t =
                (xv as f64 - mean) / (var + eps as f64).sqrt() * gamma[ch] as f64 + beta[ch] as f64;
            let want = t / (1.0 + (-t).exp());
            let bound = 1e-5 * (1.0 + t.abs()) + BF16_ROUNDOFF * want.abs();
            assert!(
                (yv as f64 - want).abs() <= bound,
                "group {gi} value {j}: {yv}, f64 gives {want}"
            );
        }
    }
}

//! Every operation of the candle backend against a naive f64 reference written out here,
//! on small random shapes with odd sizes. Tolerance: 1e-5 relative to the output's largest
//! magnitude (f32 compute with a different summation order; the activations use vectorised
//! exp/erf approximations accurate to a few 1e-7).

use easel_candle::CandleBackend;
use easel_core::Backend;
use easel_tests::max_rel_diff;
use easel_tests::random;

const TOL: f32 = 1e-5;

fn check(name: &str, got: &[f32], want: &[f64]) {
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_eq!(got.len(), want.len(), "{name}: length");
    let rel = max_rel_diff(got, &want);
    assert!(rel < TOL, "{name}: max relative difference {rel}");
}

fn up(b: &CandleBackend, data: &[f32], shape: &[usize]) -> <CandleBackend as Backend>::Tensor {
    b.upload(data, shape).unwrap()
}

fn erf_series(x: f64) -> f64 {
    // Maclaurin series; converges to f64 precision for |x| <= 4 in < 100 terms.
    let mut sum = 0.0;
    let mut term = x;
    for n in 0..200 {
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-17 {
            break;
        }
        term *= -x * x / (n + 1) as f64;
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

fn gelu_ref(x: f64) -> f64 {
    0.5 * x * (1.0 + erf_series(x / 2f64.sqrt()))
}

fn sigmoid_ref(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn linear_matches_reference() {
    let b = CandleBackend::cpu();
    let (n, l, i, o) = (2, 3, 5, 7);
    let x = random(n * l * i, 1, 1.0);
    let w = random(o * i, 2, 1.0);
    let bias = random(o, 3, 1.0);
    let mut want = vec![0f64; n * l * o];
    for r in 0..n * l {
        for oc in 0..o {
            let mut s = bias[oc] as f64;
            for ic in 0..i {
                s += x[r * i + ic] as f64 * w[oc * i + ic] as f64;
            }
            want[r * o + oc] = s;
        }
    }
    let y = b
        .linear(
            &up(&b, &x, &[n, l, i]),
            &up(&b, &w, &[o, i]),
            Some(&up(&b, &bias, &[o])),
        )
        .unwrap();
    assert_eq!(b.shape(&y), vec![n, l, o]);
    check("linear", &b.download(&y).unwrap(), &want);
    let y = b
        .linear(&up(&b, &x, &[n * l, i]), &up(&b, &w, &[o, i]), None)
        .unwrap();
    let no_bias: Vec<f64> = want
        .iter()
        .enumerate()
        .map(|(k, v)| v - bias[k % o] as f64)
        .collect();
    check("linear without bias", &b.download(&y).unwrap(), &no_bias);
}

fn conv_ref(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    k: &[f32],
    (o, ks): (usize, usize),
    bias: &[f32],
    stride: usize,
    pad: usize,
) -> (Vec<f64>, usize, usize) {
    let oh = (h + 2 * pad - ks) / stride + 1;
    let ow = (w + 2 * pad - ks) / stride + 1;
    let mut out = vec![0f64; n * o * oh * ow];
    for ni in 0..n {
        for oc in 0..o {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut s = bias[oc] as f64;
                    for ic in 0..c {
                        for ky in 0..ks {
                            for kx in 0..ks {
                                let iy = (y * stride + ky) as isize - pad as isize;
                                let ix = (xx * stride + kx) as isize - pad as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let xv = x[((ni * c + ic) * h + iy as usize) * w + ix as usize];
                                let kv = k[((oc * c + ic) * ks + ky) * ks + kx];
                                s += xv as f64 * kv as f64;
                            }
                        }
                    }
                    out[((ni * o + oc) * oh + y) * ow + xx] = s;
                }
            }
        }
    }
    (out, oh, ow)
}

#[test]
fn conv2d_matches_reference() {
    let b = CandleBackend::cpu();
    let (n, c, h, w) = (2, 3, 7, 9);
    let x = random(n * c * h * w, 4, 1.0);
    for (o, ks, stride, pad) in [(4, 3, 1, 1), (5, 3, 2, 1), (4, 1, 1, 0), (3, 3, 2, 0)] {
        let k = random(o * c * ks * ks, 5 + o as u64, 1.0);
        let bias = random(o, 6, 1.0);
        let (want, oh, ow) = conv_ref(&x, (n, c, h, w), &k, (o, ks), &bias, stride, pad);
        let y = b
            .conv2d(
                &up(&b, &x, &[n, c, h, w]),
                &up(&b, &k, &[o, c, ks, ks]),
                Some(&up(&b, &bias, &[o])),
                stride,
                pad,
            )
            .unwrap();
        assert_eq!(b.shape(&y), vec![n, o, oh, ow]);
        check(
            &format!("conv2d k{ks} s{stride} p{pad}"),
            &b.download(&y).unwrap(),
            &want,
        );
    }
}

#[test]
fn group_norm_matches_reference() {
    let b = CandleBackend::cpu();
    for (n, c, h, w, groups, eps) in [(2, 64, 5, 3, 32, 1e-5f32), (1, 12, 7, 1, 4, 1e-6)] {
        // Offset mean so a one-pass variance would lose precision.
        let x: Vec<f32> = random(n * c * h * w, 7, 2.0)
            .iter()
            .map(|v| v + 3.0)
            .collect();
        let gamma = random(c, 8, 1.0);
        let beta = random(c, 9, 1.0);
        let s = h * w;
        let per = c / groups;
        let mut want = vec![0f64; x.len()];
        let mut want_silu = vec![0f64; x.len()];
        for ni in 0..n {
            for g in 0..groups {
                let start = (ni * c + g * per) * s;
                let vals = &x[start..start + per * s];
                let mean = vals.iter().map(|&v| v as f64).sum::<f64>() / vals.len() as f64;
                let var = vals.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>()
                    / vals.len() as f64;
                for (j, &v) in vals.iter().enumerate() {
                    let ch = g * per + j / s;
                    let y = (v as f64 - mean) / (var + eps as f64).sqrt() * gamma[ch] as f64
                        + beta[ch] as f64;
                    want[start + j] = y;
                    want_silu[start + j] = y * sigmoid_ref(y);
                }
            }
        }
        let xt = up(&b, &x, &[n, c, h, w]);
        let (gt, bt) = (up(&b, &gamma, &[c]), up(&b, &beta, &[c]));
        let y = b.group_norm(&xt, groups, &gt, &bt, eps, false).unwrap();
        check("group_norm", &b.download(&y).unwrap(), &want);
        let y = b.group_norm(&xt, groups, &gt, &bt, eps, true).unwrap();
        check("group_norm+silu", &b.download(&y).unwrap(), &want_silu);
        // In the input's own storage: the same values, in the same buffer.
        for (silu, want) in [(false, &want), (true, &want_silu)] {
            let owned = up(&b, &x, &[n, c, h, w]);
            let id = owned.id();
            let y = b
                .group_norm_owned(owned, groups, &gt, &bt, eps, silu)
                .unwrap();
            assert_eq!(y.id(), id, "normalised in place");
            check("group_norm_owned", &b.download(&y).unwrap(), want);
        }
        // A transposed view (strided where both spatial sizes exceed 1) as group_norm.
        let view = |t: &<CandleBackend as Backend>::Tensor| t.transpose(2, 3).unwrap();
        let expect = b
            .group_norm(&view(&xt), groups, &gt, &bt, eps, false)
            .unwrap();
        let owned = view(&up(&b, &x, &[n, c, h, w]));
        let y = b
            .group_norm_owned(owned, groups, &gt, &bt, eps, false)
            .unwrap();
        assert_eq!(b.download(&y).unwrap(), b.download(&expect).unwrap());
    }
}

#[test]
fn layer_norm_matches_reference() {
    let b = CandleBackend::cpu();
    let (rows, width) = (7, 33);
    let x: Vec<f32> = random(rows * width, 10, 1.5)
        .iter()
        .map(|v| v - 2.0)
        .collect();
    let gamma = random(width, 11, 1.0);
    let beta = random(width, 12, 1.0);
    let mut want = vec![0f64; x.len()];
    for r in 0..rows {
        let row = &x[r * width..(r + 1) * width];
        let mean = row.iter().map(|&v| v as f64).sum::<f64>() / width as f64;
        let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / width as f64;
        for j in 0..width {
            want[r * width + j] =
                (row[j] as f64 - mean) / (var + 1e-5).sqrt() * gamma[j] as f64 + beta[j] as f64;
        }
    }
    let y = b
        .layer_norm(
            &up(&b, &x, &[1, rows, width]),
            &up(&b, &gamma, &[width]),
            &up(&b, &beta, &[width]),
            1e-5,
        )
        .unwrap();
    check("layer_norm", &b.download(&y).unwrap(), &want);
}

fn attention_ref(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    (n, lq, lk, heads, d): (usize, usize, usize, usize, usize),
    causal: bool,
) -> Vec<f64> {
    let width = heads * d;
    let mut out = vec![0f64; n * lq * width];
    for ni in 0..n {
        for h in 0..heads {
            for i in 0..lq {
                let visible = if causal { (i + 1).min(lk) } else { lk };
                let scores: Vec<f64> = (0..visible)
                    .map(|j| {
                        (0..d)
                            .map(|e| {
                                q[(ni * lq + i) * width + h * d + e] as f64
                                    * k[(ni * lk + j) * width + h * d + e] as f64
                            })
                            .sum::<f64>()
                            / (d as f64).sqrt()
                    })
                    .collect();
                let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for dd in 0..d {
                    out[(ni * lq + i) * width + h * d + dd] = (0..visible)
                        .map(|j| e[j] / z * v[(ni * lk + j) * width + h * d + dd] as f64)
                        .sum();
                }
            }
        }
    }
    out
}

#[test]
fn attention_matches_reference_chunked_or_not() {
    let full = CandleBackend::cpu();
    // A budget of a few rows forces several query chunks (and a ragged last one).
    let chunked = CandleBackend::cpu().with_attention_block_bytes(3 * 2 * 3 * 11 * 4);
    for (n, lq, lk, heads, d, causal) in [
        (2, 13, 11, 3, 5, false),
        (1, 9, 9, 2, 4, true),
        (2, 17, 17, 1, 7, true),
    ] {
        let width = heads * d;
        // Large scores check the softmax's max subtraction.
        let q = random(n * lq * width, 13, 4.0);
        let k = random(n * lk * width, 14, 4.0);
        let v = random(n * lk * width, 15, 1.0);
        let want = attention_ref(&q, &k, &v, (n, lq, lk, heads, d), causal);
        for (label, b) in [("unchunked", &full), ("chunked", &chunked)] {
            let y = b
                .attention(
                    &up(b, &q, &[n, lq, width]),
                    &up(b, &k, &[n, lk, width]),
                    &up(b, &v, &[n, lk, width]),
                    heads,
                    causal,
                )
                .unwrap();
            assert_eq!(b.shape(&y), vec![n, lq, width]);
            check(
                &format!("attention {label} causal={causal} lq={lq}"),
                &b.download(&y).unwrap(),
                &want,
            );
        }
    }
}

#[test]
fn activations_match_reference() {
    let b = CandleBackend::cpu();
    // 3 × 37 × 2·19 values in [-4, 4): odd sizes, and longer than one SIMD lane group.
    let x = random(3 * 37 * 38, 16, 4.0);
    let xt = up(&b, &x, &[3, 37, 38]);
    let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let silu: Vec<f64> = xs.iter().map(|&v| v * sigmoid_ref(v)).collect();
    check("silu", &b.download(&b.silu(&xt).unwrap()).unwrap(), &silu);
    let qg: Vec<f64> = xs.iter().map(|&v| v * sigmoid_ref(1.702 * v)).collect();
    check(
        "quick_gelu",
        &b.download(&b.quick_gelu(&xt).unwrap()).unwrap(),
        &qg,
    );
    let gelu: Vec<f64> = xs.iter().map(|&v| gelu_ref(v)).collect();
    check("gelu", &b.download(&b.gelu(&xt).unwrap()).unwrap(), &gelu);
    let geglu: Vec<f64> = xs
        .chunks(38)
        .flat_map(|row| {
            let (a, g) = row.split_at(19);
            a.iter()
                .zip(g)
                .map(|(&a, &g)| a * gelu_ref(g))
                .collect::<Vec<_>>()
        })
        .collect();
    let y = b.geglu(&xt).unwrap();
    assert_eq!(b.shape(&y), vec![3, 37, 19]);
    check("geglu", &b.download(&y).unwrap(), &geglu);
}

#[test]
fn layout_and_elementwise_ops_match_reference() {
    let b = CandleBackend::cpu();
    let (n, c, h, w) = (2, 3, 5, 7);
    let x = random(n * c * h * w, 17, 1.0);
    let y = random(n * c * h * w, 18, 1.0);
    let xt = up(&b, &x, &[n, c, h, w]);
    let yt = up(&b, &y, &[n, c, h, w]);
    let at = |i: usize, j: usize, k: usize, l: usize| x[((i * c + j) * h + k) * w + l] as f64;

    let sum: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(&a, &b)| a as f64 + b as f64)
        .collect();
    check("add", &b.download(&b.add(&xt, &yt).unwrap()).unwrap(), &sum);
    let prod: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(&a, &b)| a as f64 * b as f64)
        .collect();
    check(
        "mul",
        &b.download(&b.mul(&xt, &yt).unwrap()).unwrap(),
        &prod,
    );
    let scaled: Vec<f64> = x.iter().map(|&a| a as f64 * -0.3).collect();
    check(
        "scale",
        &b.download(&b.scale(&xt, -0.3).unwrap()).unwrap(),
        &scaled,
    );

    let vec = random(n * c, 19, 1.0);
    let mut want = Vec::new();
    for i in 0..n {
        for j in 0..c {
            for k in 0..h {
                for l in 0..w {
                    want.push(at(i, j, k, l) + vec[i * c + j] as f64);
                }
            }
        }
    }
    let r = b.add_channel_vector(&xt, &up(&b, &vec, &[n, c])).unwrap();
    check("add_channel_vector", &b.download(&r).unwrap(), &want);

    // NCHW → NLC and back.
    let mut nlc = Vec::new();
    for i in 0..n {
        for k in 0..h {
            for l in 0..w {
                for j in 0..c {
                    nlc.push(at(i, j, k, l));
                }
            }
        }
    }
    let t = b.nchw_to_nlc(&xt).unwrap();
    assert_eq!(b.shape(&t), vec![n, h * w, c]);
    check("nchw_to_nlc", &b.download(&t).unwrap(), &nlc);
    let back = b.nlc_to_nchw(&t, h, w).unwrap();
    assert_eq!(b.download(&back).unwrap(), x);

    // Nearest ×2 upsampling.
    let mut upsampled = Vec::new();
    for i in 0..n {
        for j in 0..c {
            for k in 0..2 * h {
                for l in 0..2 * w {
                    upsampled.push(at(i, j, k / 2, l / 2));
                }
            }
        }
    }
    let u = b.upsample_nearest2x(&xt).unwrap();
    assert_eq!(b.shape(&u), vec![n, c, 2 * h, 2 * w]);
    check("upsample", &b.download(&u).unwrap(), &upsampled);

    // Concat along channels, then narrow back to each part (also along a spatial dim).
    let cat = b.concat(&[&xt, &yt], 1).unwrap();
    assert_eq!(b.shape(&cat), vec![n, 2 * c, h, w]);
    assert_eq!(b.download(&b.narrow(&cat, 1, 0, c).unwrap()).unwrap(), x);
    assert_eq!(b.download(&b.narrow(&cat, 1, c, c).unwrap()).unwrap(), y);
    let cols = b.narrow(&xt, 3, 2, 3).unwrap();
    let mut want_cols = Vec::new();
    for i in 0..n {
        for j in 0..c {
            for k in 0..h {
                for l in 2..5 {
                    want_cols.push(at(i, j, k, l));
                }
            }
        }
    }
    check("narrow", &b.download(&cols).unwrap(), &want_cols);
    let r = b.reshape(&xt, &[n, c * h * w]).unwrap();
    assert_eq!(b.shape(&r), vec![n, c * h * w]);

    // Embedding rows.
    let table = random(11 * 4, 20, 1.0);
    let e = b
        .embedding(&up(&b, &table, &[11, 4]), &[3, 0, 10, 3])
        .unwrap();
    let want: Vec<f64> = [3usize, 0, 10, 3]
        .iter()
        .flat_map(|&r| table[r * 4..r * 4 + 4].iter().map(|&v| v as f64))
        .collect();
    assert_eq!(b.shape(&e), vec![4, 4]);
    check("embedding", &b.download(&e).unwrap(), &want);
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let b = CandleBackend::cpu();
    let table = up(&b, &random(20, 21, 1.0), &[5, 4]);
    assert!(b.embedding(&table, &[5]).is_err());
    let a = up(&b, &random(6, 22, 1.0), &[2, 3]);
    let c = up(&b, &random(6, 23, 1.0), &[3, 2]);
    assert!(b.add(&a, &c).is_err());
    assert!(b.upload(&[1.0, 2.0], &[3]).is_err());
    let x = up(&b, &random(2 * 4 * 6, 24, 1.0), &[2, 4, 6]);
    assert!(
        b.attention(&x, &x, &x, 4, false).is_err(),
        "6 does not split into 4 heads"
    );
    let g = up(&b, &random(6, 25, 1.0), &[6]);
    let img = up(&b, &random(6 * 4, 26, 1.0), &[1, 6, 2, 2]);
    assert!(b.group_norm(&img, 4, &g, &g, 1e-5, false).is_err());
    let err = b.embedding(&table, &[9]).unwrap_err().to_string();
    assert!(err.contains('9'), "{err}");
}

//! Weights resident in bf16 (the CPU backend's bf16 path) give exactly the products of the
//! same weights rounded to bf16 and uploaded as f32, whichever kernel runs them (bf16
//! products, or f32 products where the CPU has no bf16 arithmetic), and embedding rows are
//! the rounded rows.

use candle_core::DType;
use easel_candle::gemm::bf16::to_bf16_bits;
use easel_candle::{CandleBackend, Precision};
use easel_core::backend::Backend;

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
        .map(|x| x * 1.337)
        .collect()
}

/// `w` rounded to bf16, as f32.
fn rounded(w: &[f32]) -> Vec<f32> {
    w.iter()
        .map(|&x| f32::from_bits(u32::from(to_bf16_bits(x)) << 16))
        .collect()
}

fn bf16_backend() -> CandleBackend {
    CandleBackend::cpu().with_precision(Precision::Bf16)
}

#[test]
fn bf16_resident_weights_match_rounded_f32_weights_exactly() {
    let b = bf16_backend();
    // A 3×3 convolution (im2col) and a 1×1 convolution, with biases.
    let x = b.upload(&values(2 * 5 * 9 * 7, 1), &[2, 5, 9, 7]).unwrap();
    for (shape, outs) in [([6, 5, 3, 3], 6), ([4, 5, 1, 1], 4)] {
        let n: usize = shape.iter().product();
        let w = values(n, 2 + shape[2] as u32);
        let bias = b.upload(&values(outs, 3), &[outs]).unwrap();
        let resident = b.upload_weight(&w, &shape).unwrap();
        assert_eq!(resident.dtype(), DType::BF16);
        let plain = b.upload(&rounded(&w), &shape).unwrap();
        assert_eq!(plain.dtype(), DType::F32);
        let pad = shape[2] / 2;
        let got = b.conv2d(&x, &resident, Some(&bias), 1, pad).unwrap();
        let want = b.conv2d(&x, &plain, Some(&bias), 1, pad).unwrap();
        assert_eq!(
            b.download(&got).unwrap(),
            b.download(&want).unwrap(),
            "conv {shape:?}"
        );
    }
    // A linear layer.
    let x = b.upload(&values(3 * 37, 4), &[3, 37]).unwrap();
    let w = values(19 * 37, 5);
    let bias = b.upload(&values(19, 6), &[19]).unwrap();
    let resident = b.upload_weight(&w, &[19, 37]).unwrap();
    let plain = b.upload(&rounded(&w), &[19, 37]).unwrap();
    let got = b.linear(&x, &resident, Some(&bias)).unwrap();
    let want = b.linear(&x, &plain, Some(&bias)).unwrap();
    assert_eq!(
        b.download(&got).unwrap(),
        b.download(&want).unwrap(),
        "linear"
    );
    // Vectors stay f32.
    assert_eq!(
        b.upload_weight(&values(7, 7), &[7]).unwrap().dtype(),
        DType::F32
    );
}

#[test]
fn bf16_resident_embedding_rows_are_the_rounded_rows() {
    let b = bf16_backend();
    let table = values(11 * 8, 8);
    let rows = b
        .embedding(&b.upload_weight(&table, &[11, 8]).unwrap(), &[3, 0, 10])
        .unwrap();
    let got = b.download(&rows).unwrap();
    let want: Vec<f32> = [3, 0, 10]
        .iter()
        .flat_map(|&r| rounded(&table[r * 8..(r + 1) * 8]))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn f32_backend_keeps_weights_f32() {
    let b = CandleBackend::cpu();
    assert_eq!(
        b.upload_weight(&values(6, 9), &[2, 3]).unwrap().dtype(),
        DType::F32
    );
}

//! The transformer's GEGLU feed-forward, `geglu(x · W1ᵀ + b1) · W2ᵀ + b2`, in one pass over
//! blocks of rows on the CPU (f32).
//!
//! Layer by layer, the first product's output is `rows × 2·inner` (at a 512² image's 64²
//! level, 8192 × 2560 floats: 84 MiB) and the GEGLU's half that: blocks that large are
//! mapped fresh from the system on every call, and faulting in and zeroing their pages
//! took about 4 % of a 512² step on the 2-core Zen 5. Here each task takes [`ROWS`] rows
//! through both products and the GEGLU in buffers of its own (a few MiB, reused), with
//! both weights packed once per call. The sums are the blocked GEMM's, in the same order
//! as the layer-by-layer path, so the result is the same to the bit.
//!
//! With bf16 products the packed weights would be re-laid as bf16 pairs for every block
//! of rows, so that precision (and every other device) takes the layer-by-layer path; bf16
//! weights on a CPU without bf16 arithmetic (f32 products) are packed as f32 once here.

use super::activation::geglu;
use super::cpu_kernel::{cpu_kernel_operands, with_f32_data, with_weight_data, zip_map_over};
use super::fast_math;
use super::linear::linear;
use crate::gemm::{
    matmul_batched_in, matmul_in, Bias, Dims, Element, Output, PackedB, Precision, RowMajor,
    Transposed,
};
use candle_core::{bail, Device, Result, Tensor};
use rayon::prelude::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

/// Rows per task: enough for the GEMM to stream the packed weights efficiently, few
/// enough that a 64²-level image splits into dozens of tasks.
const ROWS: usize = 256;

thread_local! {
    /// A task's first product and GEGLU output, kept between calls.
    static BLOCK_BUFFER: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// `geglu(x · w1ᵀ + b1) · w2ᵀ + b2` with `x: [..., in]`, `w1: [2·inner, in]`,
/// `w2: [out, inner]`, biases optional.
pub fn feed_forward_geglu(
    x: &Tensor,
    [w1, w2]: [&Tensor; 2],
    [b1, b2]: [Option<&Tensor>; 2],
    precision: Precision,
) -> Result<Tensor> {
    let (wide, width) = w1.dims2()?;
    let (out, inner) = w2.dims2()?;
    let dims = x.dims();
    let Some((&last, lead)) = dims.split_last() else {
        bail!("feed-forward: input is a scalar");
    };
    if last != width || wide != 2 * inner {
        bail!(
            "feed-forward: input {dims:?}, first weight {:?} and second weight {:?} do not fit (want [2·inner, {last}] and [out, inner])",
            w1.dims(),
            w2.dims()
        );
    }
    for (b, n) in [(b1, wide), (b2, out)] {
        if let Some(b) = b {
            if b.dims() != [n] {
                bail!("feed-forward: bias {:?} is not [{n}]", b.dims());
            }
        }
    }
    let mut others = vec![x];
    others.extend(b1);
    others.extend(b2);
    let fused = !precision.rounds_products()
        && cpu_kernel_operands(w1, &others)
        && cpu_kernel_operands(w2, &others);
    if !fused {
        let h = geglu(&linear(x, w1, b1, precision)?)?;
        return linear(&h, w2, b2, precision);
    }
    let rows: usize = lead.iter().product();
    let bias = |b: Option<&Tensor>| -> Result<Option<Vec<f32>>> {
        b.map(|b| with_f32_data(b, "feed-forward", |v| v.to_vec()))
            .transpose()
    };
    let (b1, b2) = (bias(b1)?, bias(b2)?);
    let shape = Shape {
        rows,
        width,
        inner,
        out,
    };
    let mut y = Vec::with_capacity(rows * out);
    with_f32_data(x, "feed-forward", |xs| {
        with_weight_data(w1, "feed-forward", |w1| {
            with_weight_data(w2, "feed-forward", |w2| {
                let biases = [b1.as_deref(), b2.as_deref()];
                use super::cpu_kernel::CpuElements::{Bf16, F32};
                let y = &mut y.spare_capacity_mut()[..rows * out];
                match (w1, w2) {
                    (F32(w1), F32(w2)) => rows_through(shape, xs, (w1, w2), biases, y),
                    (F32(w1), Bf16(w2)) => rows_through(shape, xs, (w1, w2), biases, y),
                    (Bf16(w1), F32(w2)) => rows_through(shape, xs, (w1, w2), biases, y),
                    (Bf16(w1), Bf16(w2)) => rows_through(shape, xs, (w1, w2), biases, y),
                }
            })
        })
    })???;
    // SAFETY: `rows_through` wrote all of it (every block of rows, all `out` columns).
    unsafe { y.set_len(rows * out) };
    let mut out_dims = lead.to_vec();
    out_dims.push(out);
    Tensor::from_vec(y, out_dims, &Device::Cpu)
}

/// The sizes of one feed-forward: `rows` of `width` in, `inner` after the GEGLU, `out` out.
#[derive(Clone, Copy)]
struct Shape {
    rows: usize,
    width: usize,
    inner: usize,
    out: usize,
}

/// The fused feed-forward on the CPU, [`ROWS`] rows per task, into `y` (all of which it
/// writes; it need not be initialised).
fn rows_through<T: Element, U: Element>(
    s: Shape,
    xs: &[f32],
    (w1, w2): (&[T], &[U]),
    [b1, b2]: [Option<&[f32]>; 2],
    y: &mut [MaybeUninit<f32>],
) {
    assert_eq!(xs.len(), s.rows * s.width, "feed-forward: input");
    assert_eq!(y.len(), s.rows * s.out, "feed-forward: output");
    let wide = 2 * s.inner;
    let w1t = PackedB::new(
        &Transposed {
            data: w1,
            ld: s.width,
        },
        s.width,
        wide,
    );
    let w2t = PackedB::new(
        &Transposed {
            data: w2,
            ld: s.inner,
        },
        s.inner,
        s.out,
    );
    let (b1, b2) = (
        b1.map_or(Bias::None, Bias::PerColumn),
        b2.map_or(Bias::None, Bias::PerColumn),
    );
    y.par_chunks_mut(ROWS * s.out)
        .zip(xs.par_chunks(ROWS * s.width))
        .for_each(|(y, x)| {
            let rows = x.len() / s.width;
            BLOCK_BUFFER.with(|buffer| {
                let mut buffer = buffer.borrow_mut();
                let (h_len, g_len) = (rows * wide, rows * s.inner);
                if buffer.len() < h_len + g_len {
                    buffer.resize(h_len + g_len, 0.0);
                }
                let (h, g) = buffer.split_at_mut(h_len);
                let g = &mut g[..g_len];
                let first = Dims {
                    m: rows,
                    n: wide,
                    k: s.width,
                };
                let x = RowMajor {
                    data: x,
                    ld: s.width,
                };
                matmul_in(Precision::F32, first, &x, &w1t, h, wide, b1, false);
                for (g, h) in g.chunks_exact_mut(s.inner).zip(h.chunks_exact(wide)) {
                    let (a, gate) = h.split_at(s.inner);
                    zip_map_over(g, a, gate, |a, gate| a * fast_math::gelu(gate));
                }
                let second = Dims {
                    m: rows,
                    n: s.out,
                    k: s.inner,
                };
                let g = RowMajor {
                    data: &*g,
                    ld: s.inner,
                };
                let y = Output::uninit(y, s.out, 0);
                matmul_batched_in(Precision::F32, second, 1, &g, |_| &w2t, y, b2, false);
            })
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(shape: &[usize], seed: u32) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i as u32).wrapping_mul(2654435761) ^ seed) as f32 / u32::MAX as f32 - 0.5)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The fused pass is the layer-by-layer composition to the bit (the same GEMM sums in
    /// the same order), over a row count that leaves a partial block and with and without
    /// biases; the composition itself is checked against PyTorch by the UNet fixtures.
    #[test]
    fn fused_feed_forward_equals_the_layers_one_by_one() {
        let (width, inner, out) = (40, 48, 36);
        let x = tensor(&[2, 300, width], 1);
        let (w1, w2) = (tensor(&[2 * inner, width], 2), tensor(&[out, inner], 3));
        let (b1, b2) = (tensor(&[2 * inner], 4), tensor(&[out], 5));
        for biases in [[Some(&b1), Some(&b2)], [None, None]] {
            let fused = feed_forward_geglu(&x, [&w1, &w2], biases, Precision::F32).unwrap();
            let h = geglu(&linear(&x, &w1, biases[0], Precision::F32).unwrap()).unwrap();
            let layers = linear(&h, &w2, biases[1], Precision::F32).unwrap();
            assert_eq!(fused.dims(), [2, 300, out]);
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(flat(&fused), flat(&layers));
        }
        let wrong = tensor(&[2 * inner + 1, width], 6);
        let err = feed_forward_geglu(&x, [&wrong, &w2], [None, None], Precision::F32);
        assert!(err.unwrap_err().to_string().contains("do not fit"));
    }
}

//! Numerically stable softmax over the last dim of attention scores, with the attention
//! scale and an optional causal mask folded in: `softmax(scale · s)` where keys after the
//! query position get probability 0. On the CPU it overwrites the score buffer in place
//! (one parallel task per block of rows); elsewhere it is a composition of candle ops.

use super::cpu_kernel::{f32_slice_mut, on_kernel_cpu};
use super::fast_math;
use candle_core::{bail, CpuStorage, DType, InplaceOp1, Layout, Result, Tensor, D};
use rayon::prelude::*;

/// Which keys each score row may see: row `r` of every `[rows, Lk]` matrix is query
/// `first_query + r`, and only keys `0..=first_query + r` are visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CausalRows {
    pub rows: usize,
    pub first_query: usize,
}

struct SoftmaxCpu {
    scale: f32,
    causal: Option<CausalRows>,
}

/// Largest value of a slice, in eight lanes so it vectorises.
fn row_max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = if v > *l { v } else { *l };
        }
    }
    lanes
        .iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
}

/// Softmax of `scale · row` in place.
fn softmax_row(row: &mut [f32], scale: f32) {
    if row.is_empty() {
        return;
    }
    let shift = row_max(row) * scale;
    for v in row.iter_mut() {
        *v = fast_math::exp(*v * scale - shift);
    }
    let mut lanes = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    let sum: f32 = lanes.iter().sum::<f32>() + tail.iter().sum::<f32>();
    let inv = 1.0 / sum;
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// Softmax of `scale · row` for each `width`-long row of `rows`, sequentially. With
/// `causal_first = Some(q0)`, row `r` is query `q0 + r` and sees keys `0..=q0 + r` only.
pub fn softmax_rows_in_place(
    rows: &mut [f32],
    width: usize,
    scale: f32,
    causal_first: Option<usize>,
) {
    if width == 0 {
        return;
    }
    for (r, row) in rows.chunks_exact_mut(width).enumerate() {
        match causal_first {
            None => softmax_row(row, scale),
            Some(q0) => {
                let visible = (q0 + r + 1).min(width);
                let (keep, masked) = row.split_at_mut(visible);
                softmax_row(keep, scale);
                masked.fill(0.0);
            }
        }
    }
}

impl InplaceOp1 for SoftmaxCpu {
    fn name(&self) -> &'static str {
        "softmax_last_dim"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        let width = *layout.dims().last().unwrap_or(&0);
        let data = f32_slice_mut(storage, layout, "softmax")?;
        if width == 0 {
            return Ok(());
        }
        let rows_per_task = (8192 / width).max(1);
        let scale = self.scale;
        let causal = self.causal;
        data.par_chunks_mut(rows_per_task * width)
            .enumerate()
            .for_each(|(task, block)| {
                for (i, row) in block.chunks_exact_mut(width).enumerate() {
                    match causal {
                        None => softmax_row(row, scale),
                        Some(c) => {
                            let r = (task * rows_per_task + i) % c.rows.max(1);
                            let visible = (c.first_query + r + 1).min(width);
                            let (keep, masked) = row.split_at_mut(visible);
                            softmax_row(keep, scale);
                            masked.fill(0.0);
                        }
                    }
                }
            });
        Ok(())
    }
}

/// Softmax of `scale · scores` over the last dim. `scores` is consumed: on the CPU its
/// buffer is reused for the result (the caller must hold no other handle to it).
pub fn scaled_softmax(scores: Tensor, scale: f32, causal: Option<CausalRows>) -> Result<Tensor> {
    if let Some(c) = causal {
        let dims = scores.dims();
        if dims.len() < 2 || dims[dims.len() - 2] != c.rows {
            bail!(
                "softmax: causal rows {} do not match scores {dims:?}",
                c.rows
            );
        }
    }
    if on_kernel_cpu(&scores) && scores.dtype() == DType::F32 {
        let scores = if scores.is_contiguous() {
            scores
        } else {
            scores.contiguous()?
        };
        scores.inplace_op1(&SoftmaxCpu { scale, causal })?;
        return Ok(scores);
    }
    let mut s = scores.affine(scale as f64, 0.0)?;
    if let Some(c) = causal {
        let lk = s.dim(D::Minus1)?;
        let mask: Vec<f32> = (0..c.rows)
            .flat_map(|r| {
                (0..lk).map(move |k| {
                    if k > c.first_query + r {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        let mask = Tensor::from_vec(mask, (c.rows, lk), s.device())?;
        s = s.broadcast_add(&mask)?;
    }
    let max = s.max_keepdim(D::Minus1)?;
    let e = s.broadcast_sub(&max)?.exp()?;
    let sum = e.sum_keepdim(D::Minus1)?;
    e.broadcast_div(&sum)
}

//! Swapping the last two dims, `[N, R, S] → [N, S, R]`: the move between the UNet's image
//! layout `[N, C, H·W]` and the transformer blocks' token layout `[N, H·W, C]`. On the CPU
//! it is a tiled transpose spread over the cores (candle's strided copy is one thread
//! walking the destination element by element); elsewhere candle's transpose and copy.

use super::cpu_kernel::{all_cpu_f32, with_f32_data};
use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

/// Side of the square tiles: a 32 × 32 tile of source rows and destination rows stays in
/// L1 while it is turned around.
const TILE: usize = 32;

/// `x: [N, R, S]` → `[N, S, R]`, contiguous.
pub fn swap_last_two(x: &Tensor) -> Result<Tensor> {
    let (n, r, s) = x.dims3()?;
    if !all_cpu_f32(&[x]) {
        return x.transpose(1, 2)?.contiguous();
    }
    let mut out = vec![0f32; n * r * s];
    with_f32_data(x, "transpose", |src| {
        if r * s == 0 {
            return;
        }
        for (src, dst) in src.chunks_exact(r * s).zip(out.chunks_exact_mut(r * s)) {
            transpose(src, r, s, dst);
        }
    })?;
    Tensor::from_vec(out, (n, s, r), &Device::Cpu)
}

/// `dst[j·rows + i] = src[i·cols + j]`, one task per band of `TILE` destination rows.
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    dst.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(band, out)| {
            let j0 = band * TILE;
            let width = out.len() / rows;
            for i0 in (0..rows).step_by(TILE) {
                for i in i0..(i0 + TILE).min(rows) {
                    let row = &src[i * cols + j0..][..width];
                    for (j, &v) in row.iter().enumerate() {
                        out[j * rows + i] = v;
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ragged sizes (not multiples of the tile) against candle's transpose.
    #[test]
    fn matches_candle_transpose() -> Result<()> {
        for (n, r, s) in [(2, 37, 70), (1, 1, 5), (3, 64, 33), (1, 0, 4)] {
            let data: Vec<f32> = (0..n * r * s).map(|i| i as f32).collect();
            let x = Tensor::from_vec(data, (n, r, s), &Device::Cpu)?;
            let want = x
                .transpose(1, 2)?
                .contiguous()?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let got = swap_last_two(&x)?;
            assert_eq!(got.dims(), [n, s, r]);
            assert_eq!(got.flatten_all()?.to_vec1::<f32>()?, want);
        }
        Ok(())
    }
}

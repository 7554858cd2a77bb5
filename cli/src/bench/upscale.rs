//! `easel bench --upscale`: ESRGAN 4× of a square image with a full-size RRDBNet (23
//! blocks, 64 features, seeded random weights made in memory), the way A1111 runs a model
//! from `models/ESRGAN`: 192-pixel tiles with an 8-pixel overlap (`--tile` to change, 0 for
//! one pass). `tests/bench/bench_upscale.py` is the PyTorch/spandrel counterpart.

use easel_core::{Backend, Result};
use easel_upscalers::synthetic::random_rrdb;
use easel_upscalers::{ModelUpscaler, Rgb8, TileSettings, Tiling, UpscalerModel};
use std::time::Instant;

pub fn run<B: Backend + Clone>(b: &B, sizes: &[usize], tile: usize) -> Result<()> {
    let t0 = Instant::now();
    let store = random_rrdb(64, 23, 4, super::WEIGHT_SEED);
    let model = UpscalerModel::from_store(b, &store)?;
    println!(
        "loaded {} (random weights) in {:.1}s",
        model.architecture().describe(),
        t0.elapsed().as_secs_f32()
    );
    let settings = TileSettings { tile, overlap: 8 };
    let up = ModelUpscaler::new("bench", b.clone(), model, Tiling::Grid(settings));
    for &side in sizes {
        let mut img = Rgb8::new(side, side);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i.wrapping_mul(2654435761) >> 13) as u8;
        }
        let t = Instant::now();
        let out = up.upscale_rgb(&img)?;
        println!(
            "ESRGAN 4x {side}x{side} -> {}x{} (tile {tile}/8): {:.1} s",
            out.width,
            out.height,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

//! Tiled VAE decode (`--vae-tiling`): a large image decoded in tiles so the decoder's
//! activations stay the size of one tile (a 2048² decode in a few GB instead of tens), the
//! way diffusers' `AutoencoderKL.tiled_decode` does it, so a tiled image here is the image
//! diffusers' `enable_vae_tiling()` gives:
//!
//! - latent tiles of `tile` pixels, starting every `int(tile · 0.75)` pixels (the last ones
//!   in a row or column are cut short by the edge);
//! - each decoded tile blended into the one above and the one to its left over
//!   `int(8 · tile · 0.25)` image pixels, linearly, in place and in row order (a tile's
//!   upper neighbour is already blended with its own neighbours when it is used);
//! - each tile kept to its first `8 · tile − blend` rows and columns, then all joined.
//!
//! The seams are blended, not exact: a tiled decode differs from a whole one near them.

use super::txt2img::chw_to_rgb8;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::StableDiffusion;

/// diffusers' tile for SD1.x (`sample_size` 512 over the VAE's factor 8).
pub const SD1_TILE_LATENT: usize = 64;
const OVERLAP_FACTOR: f64 = 0.25;

/// A decoded tile, `[3, h, w]` row-major.
struct Tile {
    data: Vec<f32>,
    h: usize,
    w: usize,
}

impl Tile {
    fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.h + y) * self.w + x]
    }
}

/// diffusers' `blend_v`: the top rows of `b` faded in from the bottom rows of `a`.
fn blend_v(a: &Tile, b: &mut Tile, extent: usize) {
    let e = extent.min(a.h).min(b.h);
    for c in 0..3 {
        for y in 0..e {
            let t = (y as f64 / extent as f64) as f32;
            let s = (1.0 - y as f64 / extent as f64) as f32;
            for x in 0..b.w {
                let i = (c * b.h + y) * b.w + x;
                b.data[i] = a.at(c, (a.h + y).saturating_sub(extent), x) * s + b.data[i] * t;
            }
        }
    }
}

/// diffusers' `blend_h`: the left columns of `b` faded in from the right columns of `a`.
fn blend_h(a: &Tile, b: &mut Tile, extent: usize) {
    let e = extent.min(a.w).min(b.w);
    for c in 0..3 {
        for y in 0..b.h {
            for x in 0..e {
                let t = (x as f64 / extent as f64) as f32;
                let s = (1.0 - x as f64 / extent as f64) as f32;
                let i = (c * b.h + y) * b.w + x;
                b.data[i] = a.at(c, y, (a.w + x).saturating_sub(extent)) * s + b.data[i] * t;
            }
        }
    }
}

/// The decoder's output `[3, 8h, 8w]` for `z` (`[c, h, w]`, already divided by the scale
/// factor), decoded in tiles of `tile` latent pixels. A latent no larger than one tile is
/// decoded whole, as diffusers does.
pub async fn decode_tiled<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    z: &[f32],
    shape: [usize; 3],
    tile: usize,
) -> Result<Vec<f32>> {
    let [c, h, w] = shape;
    if z.len() != c * h * w || tile < 4 {
        return Err(Error::Invalid(format!(
            "tiled VAE decode: {} values for {shape:?}, tile {tile}",
            z.len()
        )));
    }
    let decode = |data: Vec<f32>, th: usize, tw: usize| async move {
        let t = b.upload(&data, &[1, c, th, tw])?;
        let out = b.download_async(&model.vae.decode(b, &t)?).await?;
        Ok::<_, Error>(Tile {
            data: out,
            h: th * 8,
            w: tw * 8,
        })
    };
    if h <= tile && w <= tile {
        return Ok(decode(z.to_vec(), h, w).await?.data);
    }
    let step = (tile as f64 * (1.0 - OVERLAP_FACTOR)) as usize;
    let blend = (tile as f64 * 8.0 * OVERLAP_FACTOR) as usize;
    let limit = tile * 8 - blend;
    let mut rows: Vec<Vec<Tile>> = Vec::new();
    for i in (0..h).step_by(step) {
        let mut row = Vec::new();
        for j in (0..w).step_by(step) {
            let (th, tw) = ((i + tile).min(h) - i, (j + tile).min(w) - j);
            let mut data = Vec::with_capacity(c * th * tw);
            for ch in 0..c {
                for y in i..i + th {
                    let at = (ch * h + y) * w + j;
                    data.extend_from_slice(&z[at..at + tw]);
                }
            }
            row.push(decode(data, th, tw).await?);
        }
        rows.push(row);
    }
    for i in 0..rows.len() {
        for j in 0..rows[i].len() {
            if i > 0 {
                let (above, below) = rows.split_at_mut(i);
                blend_v(&above[i - 1][j], &mut below[0][j], blend);
            }
            if j > 0 {
                let (left, right) = rows[i].split_at_mut(j);
                blend_h(&left[j - 1], &mut right[0], blend);
            }
        }
    }
    let (out_h, out_w) = (h * 8, w * 8);
    let mut out = vec![0f32; 3 * out_h * out_w];
    let mut y0 = 0;
    for row in &rows {
        let mut x0 = 0;
        let row_w: usize = row.iter().map(|t| t.w.min(limit)).sum();
        if row_w != out_w {
            return Err(Error::Invalid(format!(
                "tiled VAE decode joined {row_w} columns of {out_w}"
            )));
        }
        let keep_h = row[0].h.min(limit);
        for t in row {
            let keep_w = t.w.min(limit);
            for ch in 0..3 {
                for y in 0..keep_h {
                    let src = &t.data[(ch * t.h + y) * t.w..(ch * t.h + y) * t.w + keep_w];
                    let at = (ch * out_h + y0 + y) * out_w + x0;
                    out[at..at + keep_w].copy_from_slice(src);
                }
            }
            x0 += keep_w;
        }
        y0 += keep_h;
    }
    if y0 != out_h {
        return Err(Error::Invalid(format!(
            "tiled VAE decode joined {y0} rows of {out_h}"
        )));
    }
    Ok(out)
}

/// [`decode_tiled`] of a latent as the sampler leaves it, as RGB bytes (A1111's
/// conversion).
pub async fn decode_tiled_rgb<B: Backend>(
    b: &B,
    model: &StableDiffusion<B>,
    latent: &[f32],
    shape: [usize; 3],
    tile: usize,
) -> Result<Vec<u8>> {
    let inv = (1.0 / model.config.scale_factor as f64) as f32;
    let z: Vec<f32> = latent.iter().map(|v| v * inv).collect();
    let img = decode_tiled(b, model, &z, shape, tile).await?;
    Ok(chw_to_rgb8(&img, shape[1] * 8, shape[2] * 8))
}

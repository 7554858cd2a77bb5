//! A1111's two ways of running an upscaler over a large image in tiles, reproduced
//! exactly because they shape the output:
//!
//! - [`upscale_grid`] — `upscaler_utils.upscale_with_model`, used for the `ESRGAN` and
//!   `RealESRGAN` folders (options `ESRGAN_tile` = 192, `ESRGAN_tile_overlap` = 8): the
//!   8-bit image is cut by `images.split_grid` into `tile×tile` crops (a crop reaching past
//!   the image — when the image is smaller than a tile — is filled with black, as PIL's
//!   `crop` does), each crop is upscaled and rounded to 8 bits on its own, and
//!   `images.combine_grid` pastes them back, blending each overlap with a linear ramp mask
//!   (PIL's `paste` with an `L` mask: `(dst·(255−m) + src·m + 128) / 255` in integers).
//! - [`upscale_tensor_tiles`] — `upscaler_utils.tiled_upscale_2`, used for the `SwinIR`
//!   folder (`SWIN_tile` = 192, `SWIN_tile_overlap` = 8): float tiles of
//!   `min(tile, h, w)` at a stride of `tile − overlap` (the last one flush with the edge),
//!   summed into a float canvas and divided by how many tiles covered each pixel.
//!
//! Either way only one tile is in the network at a time, so memory is bounded by the tile
//! size, not the image size. A tile size of 0 runs the whole image at once.
//!
//! Each loop is written once, over an async tile function ([`upscale_grid_async`],
//! [`upscale_tensor_tiles_async`]), so a backend that reads results back only
//! asynchronously (WebGPU in a browser) tiles exactly as the native ones do; the blocking
//! versions hand it tile functions that are ready at once and drive it with `block_on`.

use easel_core::sampler::block_on;
use easel_core::{Error, Result};
use std::future::{ready, Future};

/// An 8-bit RGB image, row-major, 3 bytes per pixel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rgb8 {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl Rgb8 {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0; width * height * 3],
        }
    }

    /// PIL's `crop((x, y, x + w, y + h))`: pixels outside the image are black.
    pub fn crop(&self, x: i64, y: i64, w: usize, h: usize) -> Self {
        let mut out = Self::new(w, h);
        for ty in 0..h {
            let sy = y + ty as i64;
            if sy < 0 || sy >= self.height as i64 {
                continue;
            }
            for tx in 0..w {
                let sx = x + tx as i64;
                if sx < 0 || sx >= self.width as i64 {
                    continue;
                }
                let s = (sy as usize * self.width + sx as usize) * 3;
                let d = (ty * w + tx) * 3;
                out.data[d..d + 3].copy_from_slice(&self.data[s..s + 3]);
            }
        }
        out
    }

    /// PIL's `paste(src, (x, y), mask)`, clipped to this image; with a mask (same size as
    /// `src`) each byte becomes `(dst·(255−m) + src·m + 128)` divided by 255 the way PIL
    /// rounds it.
    pub fn paste(&mut self, src: &Rgb8, x: i64, y: i64, mask: Option<&[u8]>) {
        for sy in 0..src.height {
            let dy = y + sy as i64;
            if dy < 0 || dy >= self.height as i64 {
                continue;
            }
            for sx in 0..src.width {
                let dx = x + sx as i64;
                if dx < 0 || dx >= self.width as i64 {
                    continue;
                }
                let s = (sy * src.width + sx) * 3;
                let d = (dy as usize * self.width + dx as usize) * 3;
                match mask {
                    None => self.data[d..d + 3].copy_from_slice(&src.data[s..s + 3]),
                    Some(m) => {
                        let a = u32::from(m[sy * src.width + sx]);
                        for k in 0..3 {
                            let v = u32::from(self.data[d + k]) * (255 - a)
                                + u32::from(src.data[s + k]) * a
                                + 128;
                            self.data[d + k] = (((v >> 8) + v) >> 8) as u8;
                        }
                    }
                }
            }
        }
    }
}

/// One tile of `images.split_grid`: its position (may be negative) and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridTile {
    pub x: i64,
    pub y: i64,
}

/// The tile origins of `images.split_grid(image, tile, tile, overlap)`, row by row.
pub fn split_grid(
    width: usize,
    height: usize,
    tile: usize,
    overlap: usize,
) -> Result<Vec<Vec<GridTile>>> {
    if overlap >= tile {
        return Err(Error::Invalid(format!(
            "tile overlap {overlap} must be smaller than the tile size {tile}"
        )));
    }
    let step = (tile - overlap) as f64;
    let count = |size: usize| (((size as f64 - overlap as f64) / step).ceil() as i64).max(0);
    let (cols, rows) = (count(width), count(height));
    let delta = |size: usize, n: i64| {
        if n > 1 {
            (size as f64 - tile as f64) / (n - 1) as f64
        } else {
            0.0
        }
    };
    let (dx, dy) = (delta(width, cols), delta(height, rows));
    let (w, h, t) = (width as i64, height as i64, tile as i64);
    let mut out = Vec::with_capacity(rows as usize);
    for row in 0..rows {
        let mut y = (row as f64 * dy) as i64;
        if y + t >= h {
            y = h - t;
        }
        let mut line = Vec::with_capacity(cols as usize);
        for col in 0..cols {
            let mut x = (col as f64 * dx) as i64;
            if x + t >= w {
                x = w - t;
            }
            line.push(GridTile { x, y });
        }
        out.push(line);
    }
    Ok(out)
}

/// `upscaler_utils.upscale_with_model`: `upscale` runs one 8-bit tile (returning it
/// `scale×` larger); a `tile` of 0 runs the whole image.
pub fn upscale_grid(
    img: &Rgb8,
    tile: usize,
    overlap: usize,
    mut upscale: impl FnMut(&Rgb8) -> Result<Rgb8>,
) -> Result<Rgb8> {
    block_on(upscale_grid_async(img, tile, overlap, |t| {
        ready(upscale(&t))
    }))
}

/// [`upscale_grid`] with a tile function that may wait (for a read-back from the device);
/// it gets each tile by value, so its future owns what it works on.
pub async fn upscale_grid_async<F, Fut>(
    img: &Rgb8,
    tile: usize,
    overlap: usize,
    mut upscale: F,
) -> Result<Rgb8>
where
    F: FnMut(Rgb8) -> Fut,
    Fut: Future<Output = Result<Rgb8>>,
{
    if tile == 0 {
        return upscale(img.clone()).await;
    }
    let grid = split_grid(img.width, img.height, tile, overlap)?;
    if grid.first().is_none_or(|row| row.is_empty()) {
        return Err(Error::Invalid(format!(
            "a {}×{} image is too small for tiles of {tile} with an overlap of {overlap} \
             (A1111 fails on it too); use a tile size of 0",
            img.width, img.height
        )));
    }
    let mut rows = Vec::with_capacity(grid.len());
    let mut scale = 1usize;
    for line in &grid {
        let mut tiles = Vec::with_capacity(line.len());
        for t in line {
            let out = upscale(img.crop(t.x, t.y, tile, tile)).await?;
            scale = out.width / tile;
            tiles.push((t.x, out));
        }
        rows.push((line.first().map_or(0, |t| t.y), tiles));
    }
    // `combine_grid` on the grid scaled by the last tile's factor.
    let s = scale as i64;
    let (tile_h, overlap) = (tile * scale, overlap * scale);
    let (image_w, image_h) = (img.width * scale, img.height * scale);
    let ramp = |i: usize| ((i as f32 * 255.0) / overlap as f32) as u8;
    let mask_w: Vec<u8> = (0..tile_h).flat_map(|_| (0..overlap).map(ramp)).collect();
    let mask_h: Vec<u8> = (0..overlap)
        .flat_map(|i| std::iter::repeat_n(ramp(i), image_w))
        .collect();
    let mut combined = Rgb8::new(image_w, image_h);
    for (y, tiles) in rows {
        let y = y * s;
        let mut row = Rgb8::new(image_w, tile_h);
        for (x, t) in tiles {
            let x = x * s;
            if x == 0 {
                row.paste(&t, 0, 0, None);
                continue;
            }
            row.paste(&t.crop(0, 0, overlap, tile_h), x, 0, Some(&mask_w));
            row.paste(
                &t.crop(overlap as i64, 0, t.width - overlap, tile_h),
                x + overlap as i64,
                0,
                None,
            );
        }
        if y == 0 {
            combined.paste(&row, 0, 0, None);
            continue;
        }
        combined.paste(&row.crop(0, 0, image_w, overlap), 0, y, Some(&mask_h));
        combined.paste(
            &row.crop(0, overlap as i64, image_w, tile_h - overlap),
            0,
            y + overlap as i64,
            None,
        );
    }
    Ok(combined)
}

/// `upscaler_utils.tiled_upscale_2` on a `[3, h, w]` float image: `upscale` runs one
/// `[3, t, t]` tile and returns it `scale×` larger.
pub fn upscale_tensor_tiles(
    img: &[f32],
    h: usize,
    w: usize,
    tile: usize,
    overlap: usize,
    scale: usize,
    mut upscale: impl FnMut(&[f32], usize, usize) -> Result<Vec<f32>>,
) -> Result<Vec<f32>> {
    block_on(upscale_tensor_tiles_async(
        img,
        h,
        w,
        tile,
        overlap,
        scale,
        |p, th, tw| ready(upscale(&p, th, tw)),
    ))
}

/// [`upscale_tensor_tiles`] with a tile function that may wait (for a read-back from the
/// device); it gets each `[3, t, t]` tile by value, so its future owns what it works on.
pub async fn upscale_tensor_tiles_async<F, Fut>(
    img: &[f32],
    h: usize,
    w: usize,
    tile: usize,
    overlap: usize,
    scale: usize,
    mut upscale: F,
) -> Result<Vec<f32>>
where
    F: FnMut(Vec<f32>, usize, usize) -> Fut,
    Fut: Future<Output = Result<Vec<f32>>>,
{
    let c = 3;
    let tile = tile.min(h).min(w);
    if tile == 0 {
        return upscale(img.to_vec(), h, w).await;
    }
    if overlap >= tile {
        return Err(Error::Invalid(format!(
            "tile overlap {overlap} must be smaller than the tile size {tile}"
        )));
    }
    let stride = tile - overlap;
    let starts = |size: usize| {
        let mut v: Vec<usize> = (0..size - tile).step_by(stride).collect();
        v.push(size - tile);
        v
    };
    let (ys, xs) = (starts(h), starts(w));
    let (oh, ow) = (h * scale, w * scale);
    let mut result = vec![0f32; c * oh * ow];
    let mut weights = vec![0f32; c * oh * ow];
    let ot = tile * scale;
    for &y0 in &ys {
        for &x0 in &xs {
            let mut patch = vec![0f32; c * tile * tile];
            for ci in 0..c {
                for y in 0..tile {
                    let src = &img[(ci * h + y0 + y) * w + x0..][..tile];
                    patch[(ci * tile + y) * tile..][..tile].copy_from_slice(src);
                }
            }
            let out = upscale(patch, tile, tile).await?;
            if out.len() != c * ot * ot {
                return Err(Error::Invalid(format!(
                    "upscaler returned {} values for a {ot}×{ot} tile",
                    out.len()
                )));
            }
            for ci in 0..c {
                for y in 0..ot {
                    let d = (ci * oh + y0 * scale + y) * ow + x0 * scale;
                    let s = (ci * ot + y) * ot;
                    for k in 0..ot {
                        result[d + k] += out[s + k];
                        weights[d + k] += 1.0;
                    }
                }
            }
        }
    }
    for (r, wt) in result.iter_mut().zip(&weights) {
        *r /= *wt;
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_of_a_small_image_reaches_back_past_its_origin() {
        // An image smaller than one tile gets one tile that starts before the image.
        let g = split_grid(100, 80, 192, 8).unwrap();
        assert_eq!(g, vec![vec![GridTile { x: -92, y: -112 }]]);
        // 400 wide, tile 192, overlap 8: ceil(392 / 184) = 3 columns, dx = 104.
        let g = split_grid(400, 192, 192, 8).unwrap();
        let xs: Vec<i64> = g[0].iter().map(|t| t.x).collect();
        assert_eq!(xs, [0, 104, 208]);
        assert!(split_grid(10, 10, 8, 8).is_err());
    }

    #[test]
    fn tensor_tiles_average_an_identity_exactly() {
        let (h, w) = (7, 9);
        let img: Vec<f32> = (0..3 * h * w).map(|v| v as f32).collect();
        let out = upscale_tensor_tiles(&img, h, w, 4, 1, 1, |p, _, _| Ok(p.to_vec())).unwrap();
        assert_eq!(out, img);
    }
}

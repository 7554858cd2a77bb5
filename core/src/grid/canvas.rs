//! A plain RGB8 image to lay grid cells and labels out on.

use crate::{Error, Result};

/// Row-major RGB, 3 bytes a pixel (the layout of `GeneratedImage::rgb` and PNG RGB8).
#[derive(Clone, Debug, PartialEq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

pub const WHITE: [u8; 3] = [255, 255, 255];
pub const BLACK: [u8; 3] = [0, 0, 0];

impl RgbImage {
    pub fn filled(width: usize, height: usize, color: [u8; 3]) -> RgbImage {
        let mut data = Vec::with_capacity(width * height * 3);
        for _ in 0..width * height {
            data.extend_from_slice(&color);
        }
        RgbImage {
            width,
            height,
            data,
        }
    }

    /// Wraps RGB bytes, checking their length.
    pub fn from_rgb(width: usize, height: usize, data: Vec<u8>) -> Result<RgbImage> {
        if data.len() != width * height * 3 {
            return Err(Error::Invalid(format!(
                "image data is {} bytes, expected {width}x{height}x3",
                data.len()
            )));
        }
        Ok(RgbImage {
            width,
            height,
            data,
        })
    }

    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Copies `src` with its top-left corner at (`x`, `y`), clipped to this image.
    pub fn paste(&mut self, src: &RgbImage, x: usize, y: usize) {
        if x >= self.width || y >= self.height {
            return;
        }
        let w = src.width.min(self.width - x);
        for row in 0..src.height.min(self.height - y) {
            let s = row * src.width * 3;
            let d = ((y + row) * self.width + x) * 3;
            self.data[d..d + w * 3].copy_from_slice(&src.data[s..s + w * 3]);
        }
    }

    /// Blends `color` over the pixel at (`x`, `y`) with coverage `alpha` in 0..=1;
    /// positions outside the image are ignored.
    pub fn blend(&mut self, x: i64, y: i64, color: [u8; 3], alpha: f32) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height {
            return;
        }
        let a = alpha.clamp(0.0, 1.0);
        let i = (y as usize * self.width + x as usize) * 3;
        for (c, target) in color.iter().enumerate() {
            let old = self.data[i + c] as f32;
            self.data[i + c] = (old + (*target as f32 - old) * a).round() as u8;
        }
    }

    /// The `w`×`h` region at (`x`, `y`).
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> RgbImage {
        let mut out = RgbImage::filled(w, h, BLACK);
        for row in 0..h {
            let s = ((y + row) * self.width + x) * 3;
            out.data[row * w * 3..(row + 1) * w * 3].copy_from_slice(&self.data[s..s + w * 3]);
        }
        out
    }
}

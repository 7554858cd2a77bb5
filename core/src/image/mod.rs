//! The 8-bit image layer under img2img, inpainting, hires fix and the upscalers.
//!
//! A1111 does all of this with PIL (and OpenCV for the mask blur) on 8-bit pixels before
//! anything becomes a tensor, so every rounding there shows up in the init latent. This
//! module reproduces those operations exactly: Pillow's resize filters, A1111's four resize
//! modes, the inpainting mask pipeline (binary mask, OpenCV Gaussian blur, crop region for
//! "only masked", the "fill" pre-fill, the latent mask) and the final composite, plus the
//! upscaler loop. `docs/images.md` lists what is exact and what is not (JPEG decoding).
//!
//! Images are plain interleaved bytes so the web build (wasm32) and the native CLI share
//! the code; decoding user files goes through the pure-Rust `image` crate.

mod blur;
mod composite;
mod decode;
mod mask;
mod resample;
mod resize_mode;
mod upscale;

pub use blur::{box_gaussian_blur, mask_blur, mask_blur_kernel, opencv_gaussian_blur, BlurAxis};
pub use composite::{alpha_composite, apply_overlay, flatten, masked_overlay, uncrop};
pub use decode::{create_binary_mask, decode_image, decode_mask, decode_rgba, DecodedImage};
pub use mask::{
    expand_crop_region, fill, get_crop_region, get_crop_region_v2, latent_mask, prepare_init_image,
    prepare_mask, CropRegion, InpaintingFill, LatentMask, MaskSettings, PreparedInit, PreparedMask,
};
pub use resample::{Filter, SourceBox};
pub use resize_mode::{resize_image, resize_image_async, ResizeMode};
pub use upscale::{
    upscale, upscale_async, ImageUpscaler, LanczosUpscaler, NearestUpscaler, UpscaleTarget,
    UpscalerRegistry,
};

use crate::{Error, Result};

/// The largest width or height any operation here will produce (A1111's UI stops at 8192
/// for generation and 16384 for Extras); bigger requests are errors naming the value.
pub const MAX_SIDE: usize = 16384;

/// Interleaved 8-bit pixels with any channel count: what the PIL ports work on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pixels {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn new(width: usize, height: usize, channels: usize) -> Pixels {
        Pixels {
            width,
            height,
            channels,
            data: vec![0; width * height * channels],
        }
    }

    /// The `w`×`h` rectangle at (`x`, `y`), which must lie inside the image.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Pixels {
        let ch = self.channels;
        let mut data = Vec::with_capacity(w * h * ch);
        for row in y..y + h {
            let start = (row * self.width + x) * ch;
            data.extend_from_slice(&self.data[start..start + w * ch]);
        }
        Pixels {
            width: w,
            height: h,
            channels: ch,
            data,
        }
    }

    /// PIL `Image.crop((x1, y1, x2, y2))`: the box may reach outside the image; pixels
    /// there are zero.
    pub fn crop_box(&self, x1: i64, y1: i64, x2: i64, y2: i64) -> Pixels {
        let w = (x2 - x1).max(0) as usize;
        let h = (y2 - y1).max(0) as usize;
        let mut out = Pixels::new(w, h, self.channels);
        out.paste(self, -x1, -y1);
        out
    }

    /// PIL `Image.paste(im, (x, y))` without a mask: copies the overlapping part.
    pub fn paste(&mut self, src: &Pixels, x: i64, y: i64) {
        debug_assert_eq!(self.channels, src.channels);
        let ch = self.channels;
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + src.width as i64).min(self.width as i64);
        let y1 = (y + src.height as i64).min(self.height as i64);
        if x1 <= x0 || y1 <= y0 {
            return;
        }
        let n = (x1 - x0) as usize * ch;
        for dy in y0..y1 {
            let sy = (dy - y) as usize;
            let sx = (x0 - x) as usize;
            let s = (sy * src.width + sx) * ch;
            let d = (dy as usize * self.width + x0 as usize) * ch;
            self.data[d..d + n].copy_from_slice(&src.data[s..s + n]);
        }
    }

    /// PIL `resize`, see [`resample`].
    pub fn resize(
        &self,
        w: usize,
        h: usize,
        filter: Filter,
        bx: Option<SourceBox>,
    ) -> Result<Pixels> {
        resample::resize_pixels(self, w, h, filter, bx)
    }
}

macro_rules! image_type {
    ($(#[$doc:meta])* $name:ident, $ch:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $name {
            pub width: usize,
            pub height: usize,
            pub data: Vec<u8>,
        }

        impl $name {
            /// Bytes per pixel.
            pub const CHANNELS: usize = $ch;

            /// Wraps interleaved bytes, checking their length.
            pub fn new(width: usize, height: usize, data: Vec<u8>) -> Result<Self> {
                if data.len() != width * height * $ch {
                    return Err(Error::Invalid(format!(
                        "{}: {} bytes do not make a {width}x{height} image of {} bytes a pixel",
                        stringify!($name),
                        data.len(),
                        $ch
                    )));
                }
                Ok($name { width, height, data })
            }

            /// An image of one colour.
            pub fn filled(width: usize, height: usize, pixel: [u8; $ch]) -> Self {
                $name { width, height, data: pixel.repeat(width * height) }
            }

            /// The pixel at (x, y).
            pub fn pixel(&self, x: usize, y: usize) -> [u8; $ch] {
                let i = (y * self.width + x) * $ch;
                self.data[i..i + $ch].try_into().expect("pixel size")
            }

            /// PIL `Image.crop((x1, y1, x2, y2))` (outside the image is black / zero).
            pub fn crop(&self, x1: i64, y1: i64, x2: i64, y2: i64) -> Self {
                self.as_pixels().crop_box(x1, y1, x2, y2).into()
            }

            pub(crate) fn as_pixels(&self) -> Pixels {
                Pixels { width: self.width, height: self.height, channels: $ch, data: self.data.clone() }
            }
        }

        impl From<Pixels> for $name {
            fn from(p: Pixels) -> Self {
                debug_assert_eq!(p.channels, $ch);
                $name { width: p.width, height: p.height, data: p.data }
            }
        }
    };
}

macro_rules! resizable {
    ($name:ident) => {
        impl $name {
            /// PIL `Image.resize((w, h), filter)`, byte-exact.
            pub fn resize(&self, w: usize, h: usize, filter: Filter) -> Result<Self> {
                Ok(self.as_pixels().resize(w, h, filter, None)?.into())
            }

            /// PIL `Image.resize((w, h), filter, box=...)`.
            pub fn resize_box(
                &self,
                w: usize,
                h: usize,
                filter: Filter,
                bx: SourceBox,
            ) -> Result<Self> {
                Ok(self.as_pixels().resize(w, h, filter, Some(bx))?.into())
            }
        }
    };
}

image_type!(
    /// RGB, 3 bytes a pixel, row-major (PIL mode "RGB").
    RgbImage,
    3
);
image_type!(
    /// One byte a pixel (PIL mode "L"): masks.
    GrayImage,
    1
);
image_type!(
    /// RGBA with straight (not premultiplied) alpha (PIL mode "RGBA"): overlays.
    RgbaImage,
    4
);

resizable!(RgbImage);
resizable!(GrayImage);

impl GrayImage {
    /// PIL `ImageOps.invert`: 255 - v.
    pub fn invert(&self) -> GrayImage {
        GrayImage {
            width: self.width,
            height: self.height,
            data: self.data.iter().map(|v| 255 - v).collect(),
        }
    }

    /// PIL `convert('RGB')` of an L image.
    pub fn to_rgb(&self) -> RgbImage {
        RgbImage {
            width: self.width,
            height: self.height,
            data: self.data.iter().flat_map(|&v| [v, v, v]).collect(),
        }
    }
}

impl RgbImage {
    /// PIL `convert('L')`: ITU-R 601-2 luma in 16-bit fixed point.
    pub fn to_gray(&self) -> GrayImage {
        GrayImage {
            width: self.width,
            height: self.height,
            data: self.data.chunks_exact(3).map(luma).collect(),
        }
    }

    /// PIL `convert('RGBA')`: alpha 255.
    pub fn to_rgba(&self) -> RgbaImage {
        RgbaImage {
            width: self.width,
            height: self.height,
            data: self
                .data
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
        }
    }
}

impl RgbaImage {
    /// PIL `convert('RGB')`: drops alpha.
    pub fn to_rgb(&self) -> RgbImage {
        RgbImage {
            width: self.width,
            height: self.height,
            data: self
                .data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect(),
        }
    }
}

/// PIL's `L24(rgb) >> 16`.
pub(crate) fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
}

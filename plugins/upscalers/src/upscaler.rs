//! An upscaler model from a models folder, ready to upscale images the way A1111's
//! upscaler class for its folder does (`Upscaler.do_upscale`): one pass of the network over
//! the image in tiles, at the model's own scale.

use crate::library::{UpscalerEntry, UpscalerFolder};
use crate::model::UpscalerModel;
use crate::pixels::{bgr_to_rgb8, rgb8_to_bgr};
use crate::tiling::{upscale_grid, upscale_tensor_tiles, Rgb8};
use easel_core::backend::Backend;
use easel_core::Result;

/// Tile size and overlap, in input pixels; a tile of 0 runs the whole image at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileSettings {
    pub tile: usize,
    pub overlap: usize,
}

impl TileSettings {
    /// A1111's defaults for every folder: `ESRGAN_tile`/`SWIN_tile` 192, overlaps 8.
    pub const A1111: TileSettings = TileSettings {
        tile: 192,
        overlap: 8,
    };
}

/// How tiles are cut and joined (see [`crate::tiling`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tiling {
    /// `upscale_with_model`: 8-bit tiles, ramp-blended overlaps (ESRGAN, RealESRGAN).
    Grid(TileSettings),
    /// `tiled_upscale_2`: float tiles averaged where they overlap (SwinIR).
    Tensor(TileSettings),
}

impl Tiling {
    /// The tiling A1111 uses for models in `folder`.
    pub fn for_folder(folder: UpscalerFolder, settings: TileSettings) -> Self {
        match folder {
            UpscalerFolder::Esrgan | UpscalerFolder::RealEsrgan => Self::Grid(settings),
            UpscalerFolder::SwinIr => Self::Tensor(settings),
        }
    }
}

/// A loaded model with its name, backend and tiling.
pub struct ModelUpscaler<B: Backend> {
    name: String,
    backend: B,
    model: UpscalerModel<B>,
    tiling: Tiling,
}

impl<B: Backend> ModelUpscaler<B> {
    pub fn new(
        name: impl Into<String>,
        backend: B,
        model: UpscalerModel<B>,
        tiling: Tiling,
    ) -> Self {
        Self {
            name: name.into(),
            backend,
            model,
            tiling,
        }
    }

    /// Loads a listed model with the tiling of its folder.
    pub fn open(entry: &UpscalerEntry, backend: B, settings: TileSettings) -> Result<Self> {
        let model = UpscalerModel::load(&backend, &entry.path)?;
        Ok(Self::new(
            entry.name.clone(),
            backend,
            model,
            Tiling::for_folder(entry.folder, settings),
        ))
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn model(&self) -> &UpscalerModel<B> {
        &self.model
    }
    pub fn scale(&self) -> usize {
        self.model.scale()
    }

    /// One pass of the model over `img`: the result is `scale×` larger.
    pub fn upscale_rgb(&self, img: &Rgb8) -> Result<Rgb8> {
        let b = &self.backend;
        let s = self.model.scale();
        match self.tiling {
            Tiling::Grid(t) => upscale_grid(img, t.tile, t.overlap, |tile| {
                let out = self
                    .model
                    .run(b, &rgb8_to_bgr(tile), tile.height, tile.width)?;
                Ok(bgr_to_rgb8(&out, tile.width * s, tile.height * s))
            }),
            Tiling::Tensor(t) => {
                let x = rgb8_to_bgr(img);
                let out = upscale_tensor_tiles(
                    &x,
                    img.height,
                    img.width,
                    t.tile,
                    t.overlap,
                    s,
                    |p, h, w| self.model.run(b, p, h, w),
                )?;
                Ok(bgr_to_rgb8(&out, img.width * s, img.height * s))
            }
        }
    }
}

/// The seam hires fix and `easel upscale` look upscalers up through: one pass at the model's
/// own scale (A1111's upscale loop and final Lanczos resize live in core).
impl<B> easel_core::image::ImageUpscaler for ModelUpscaler<B>
where
    B: Backend + Send + Sync,
    B::Tensor: Send + Sync,
{
    fn name(&self) -> &str {
        &self.name
    }
    fn native_scale(&self) -> u32 {
        self.model.scale() as u32
    }
    fn upscale_once(
        &self,
        img: &easel_core::image::RgbImage,
    ) -> Result<easel_core::image::RgbImage> {
        let input = Rgb8 {
            width: img.width,
            height: img.height,
            data: img.data.clone(),
        };
        let out = self.upscale_rgb(&input)?;
        Ok(easel_core::image::RgbImage {
            width: out.width,
            height: out.height,
            data: out.data,
        })
    }
}

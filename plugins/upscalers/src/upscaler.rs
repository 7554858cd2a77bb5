//! An upscaler model from a models folder, ready to upscale images the way A1111's
//! upscaler class for its folder does (`Upscaler.do_upscale`): one pass of the network over
//! the image in tiles, at the model's own scale.

use crate::library::{UpscalerEntry, UpscalerFolder};
use crate::model::UpscalerModel;
use crate::pixels::{bgr_to_rgb8, rgb8_to_bgr};
use crate::sources::SourceEntry;
use crate::tiling::{upscale_grid_async, upscale_tensor_tiles_async, Rgb8};
use easel_core::backend::{Backend, LocalBoxFuture};
use easel_core::image::RgbImage;
use easel_core::sampler::block_on;
use easel_core::Result;
use std::future::{ready, Future};

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

    /// Loads a model from a file the front end already opened (a browser's picked file),
    /// with the tiling of the folder it was picked for.
    pub fn from_source(entry: &SourceEntry, backend: B, settings: TileSettings) -> Result<Self> {
        let model = UpscalerModel::load_source(&backend, &entry.file_name, entry.source.clone())?;
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
        let (model, b) = (&self.model, &self.backend);
        // The tile function is ready at once, so `block_on` never waits.
        block_on(self.upscale_tiles(img, |x, h, w| ready(model.run(b, &x, h, w))))
    }

    /// [`Self::upscale_rgb`] reading each tile back with `Backend::download_async`, so it
    /// runs on a backend that refuses the blocking read-back (WebGPU in a browser).
    pub async fn upscale_rgb_async(&self, img: &Rgb8) -> Result<Rgb8> {
        let (model, b) = (&self.model, &self.backend);
        self.upscale_tiles(
            img,
            |x, h, w| async move { model.run_async(b, &x, h, w).await },
        )
        .await
    }

    /// The tiling of [`Self::upscale_rgb`] around `run`, which takes a `[3, h, w]` BGR
    /// tile and gives the network's `[3, h·s, w·s]` result.
    async fn upscale_tiles<F, Fut>(&self, img: &Rgb8, mut run: F) -> Result<Rgb8>
    where
        F: FnMut(Vec<f32>, usize, usize) -> Fut,
        Fut: Future<Output = Result<Vec<f32>>>,
    {
        let s = self.model.scale();
        match self.tiling {
            Tiling::Grid(t) => {
                upscale_grid_async(img, t.tile, t.overlap, |tile| {
                    let out = run(rgb8_to_bgr(&tile), tile.height, tile.width);
                    async move { Ok(bgr_to_rgb8(&out.await?, tile.width * s, tile.height * s)) }
                })
                .await
            }
            Tiling::Tensor(t) => {
                let x = rgb8_to_bgr(img);
                let (h, w) = (img.height, img.width);
                let out =
                    upscale_tensor_tiles_async(&x, h, w, t.tile, t.overlap, s, &mut run).await?;
                Ok(bgr_to_rgb8(&out, w * s, h * s))
            }
        }
    }
}

/// Core's 8-bit image as this crate's (the same interleaved bytes): the tiling works on
/// [`Rgb8`], which does not depend on core's image layer.
fn to_rgb8(img: &RgbImage) -> Rgb8 {
    Rgb8 {
        width: img.width,
        height: img.height,
        data: img.data.clone(),
    }
}

/// The inverse of [`to_rgb8`].
fn to_rgb_image(img: Rgb8) -> RgbImage {
    RgbImage {
        width: img.width,
        height: img.height,
        data: img.data,
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
    fn upscale_once(&self, img: &RgbImage) -> Result<RgbImage> {
        Ok(to_rgb_image(self.upscale_rgb(&to_rgb8(img))?))
    }
    /// Hires fix comes here (the pipeline is async): the tiles are read back without
    /// blocking, as the browser's WebGPU backend requires.
    fn upscale_pass_async<'a>(
        &'a self,
        img: &'a RgbImage,
        _scale: f64,
    ) -> LocalBoxFuture<'a, Result<RgbImage>> {
        Box::pin(async move { Ok(to_rgb_image(self.upscale_rgb_async(&to_rgb8(img)).await?)) })
    }
}

//! A models folder's upscaler models as entries of core's [`UpscalerRegistry`], so hires fix
//! (and any front end that goes through the generation service) can name them as A1111's
//! `hr_upscaler` does. A folder may hold dozens of models of 16–70 MB while a job uses one,
//! so each is read the first time it is used and then kept; a file that fails to load is
//! tried again next time (the user may have replaced it), and the error names the file.
//! Files the front end opened itself (the browser's picked files, [`crate::sources`]) are
//! loaded the same way.

use crate::library::{list_upscalers, UpscalerEntry};
use crate::sources::SourceEntry;
use crate::upscaler::{ModelUpscaler, TileSettings};
use easel_core::backend::{Backend, LocalBoxFuture};
use easel_core::image::{ImageUpscaler, RgbImage, UpscalerRegistry};
use easel_core::Result;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Where a model's bytes are.
enum ModelFile {
    /// A file in a models folder.
    Folder(UpscalerEntry),
    /// A file the front end already opened.
    Source(SourceEntry),
}

/// An upscaler model that is loaded on its first use.
pub struct LazyModelUpscaler<B: Backend> {
    file: ModelFile,
    backend: B,
    tiles: TileSettings,
    loaded: Mutex<Option<Arc<ModelUpscaler<B>>>>,
}

impl<B: Backend + Clone> LazyModelUpscaler<B> {
    pub fn new(entry: UpscalerEntry, backend: B, tiles: TileSettings) -> Self {
        Self::with_file(ModelFile::Folder(entry), backend, tiles)
    }

    /// A model in an already open file, read from it on first use.
    pub fn from_source(entry: SourceEntry, backend: B, tiles: TileSettings) -> Self {
        Self::with_file(ModelFile::Source(entry), backend, tiles)
    }

    fn with_file(file: ModelFile, backend: B, tiles: TileSettings) -> Self {
        Self {
            file,
            backend,
            tiles,
            loaded: Mutex::new(None),
        }
    }

    /// The model, loading it now if this is its first use.
    pub fn model(&self) -> Result<Arc<ModelUpscaler<B>>> {
        let mut slot = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let backend = self.backend.clone();
        let m = Arc::new(match &self.file {
            ModelFile::Folder(e) => ModelUpscaler::open(e, backend, self.tiles)?,
            ModelFile::Source(e) => ModelUpscaler::from_source(e, backend, self.tiles)?,
        });
        *slot = Some(m.clone());
        Ok(m)
    }
}

impl<B> ImageUpscaler for LazyModelUpscaler<B>
where
    B: Backend + Clone + Send + Sync,
    B::Tensor: Send + Sync,
{
    fn name(&self) -> &str {
        match &self.file {
            ModelFile::Folder(e) => &e.name,
            ModelFile::Source(e) => &e.name,
        }
    }
    /// The model's scale; 4 (what nearly every model in these folders is) while the file
    /// cannot be read. Nothing in the upscale loop depends on it.
    fn native_scale(&self) -> u32 {
        self.model().map_or(4, |m| m.scale() as u32)
    }
    fn upscale_once(&self, img: &RgbImage) -> Result<RgbImage> {
        self.model()?.upscale_once(img)
    }
    fn upscale_pass_async<'a>(
        &'a self,
        img: &'a RgbImage,
        scale: f64,
    ) -> LocalBoxFuture<'a, Result<RgbImage>> {
        Box::pin(async move { self.model()?.upscale_pass_async(img, scale).await })
    }
}

/// The built-in upscalers (Lanczos, Nearest) and every model under `models`'
/// `ESRGAN`, `RealESRGAN` and `SwinIR` folders, in A1111's order; where two files have the
/// same name the first one is used, as A1111's lookup by name does.
pub fn folder_upscalers<B>(models: &Path, backend: &B, tiles: TileSettings) -> UpscalerRegistry
where
    B: Backend + Clone + Send + Sync + 'static,
    B::Tensor: Send + Sync,
{
    registry_of(
        list_upscalers(models)
            .into_iter()
            .map(|entry| LazyModelUpscaler::new(entry, backend.clone(), tiles)),
    )
}

/// The built-ins followed by `models` in their order.
pub(crate) fn registry_of<B>(
    models: impl IntoIterator<Item = LazyModelUpscaler<B>>,
) -> UpscalerRegistry
where
    B: Backend + Clone + Send + Sync + 'static,
    B::Tensor: Send + Sync,
{
    let mut registry = UpscalerRegistry::with_builtins();
    for model in models {
        // A duplicate name (or a model named like a built-in) is skipped: first wins.
        let _ = registry.register(Box::new(model));
    }
    registry
}

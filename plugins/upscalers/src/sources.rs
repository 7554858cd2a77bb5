//! Upscaler models handed in as open files rather than found in a models folder: the
//! browser has no folder to list, only the files its user picked (each an
//! `Arc<dyn ByteSource>`), with the name of the folder each came from. They are named and
//! ordered exactly as [`crate::list_upscalers`] names and orders the same files in a folder,
//! so a job that names an upscaler finds the same model in the page as in the CLI.

use crate::folder::{registry_of, LazyModelUpscaler};
use crate::library::{is_model_file, sort_a1111, upscaler_name, UpscalerFolder};
use crate::upscaler::TileSettings;
use easel_core::backend::Backend;
use easel_core::image::UpscalerRegistry;
use easel_core::io::ByteSource;
use easel_core::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// An upscaler model file that is already open, with A1111's name for it.
#[derive(Clone)]
pub struct SourceEntry {
    /// A1111's name (see [`upscaler_name`]).
    pub name: String,
    /// The file's path inside its folder, or just its name: it orders the listing and its
    /// extension is the format hint.
    pub file_name: String,
    pub folder: UpscalerFolder,
    pub source: Arc<dyn ByteSource>,
}

impl SourceEntry {
    /// `file_name` from `folder`, named as A1111 names that file there.
    pub fn new(
        file_name: impl Into<String>,
        folder: UpscalerFolder,
        source: Arc<dyn ByteSource>,
    ) -> Self {
        let file_name = file_name.into();
        Self {
            name: upscaler_name(folder, Path::new(&file_name)),
            file_name,
            folder,
            source,
        }
    }
}

/// The model files among `files` — (file name, folder name as under `models/`: "ESRGAN",
/// "RealESRGAN" or "SwinIR", the open file) — in A1111's order. A file whose extension a
/// folder listing would skip is skipped here too; any other folder name is an error
/// naming it, since the front end meant the file for an upscaler folder.
pub fn list_source_upscalers(
    files: impl IntoIterator<Item = (String, String, Arc<dyn ByteSource>)>,
) -> Result<Vec<SourceEntry>> {
    let mut out = Vec::new();
    for (file_name, folder_name, source) in files {
        let folder = UpscalerFolder::from_dir_name(&folder_name).ok_or_else(|| {
            let known: Vec<&str> = UpscalerFolder::ALL.iter().map(|f| f.dir_name()).collect();
            Error::Invalid(format!(
                "`{file_name}`: `{folder_name}` is not an upscaler folder (known: {})",
                known.join(", ")
            ))
        })?;
        if is_model_file(Path::new(&file_name)) {
            out.push(SourceEntry::new(file_name, folder, source));
        }
    }
    sort_a1111(&mut out, |e| (e.folder, Path::new(&e.file_name), &e.name));
    Ok(out)
}

/// The built-in upscalers (Lanczos, Nearest) and the models among `files` (as
/// [`list_source_upscalers`] takes them), each read on its first use: the registry a front
/// end without a models folder hands the generation service. As with a folder, the first
/// of two models with the same name is the one used.
pub fn source_upscalers<B>(
    files: impl IntoIterator<Item = (String, String, Arc<dyn ByteSource>)>,
    backend: &B,
    tiles: TileSettings,
) -> Result<UpscalerRegistry>
where
    B: Backend + Clone + Send + Sync + 'static,
    B::Tensor: Send + Sync,
{
    let entries = list_source_upscalers(files)?;
    Ok(registry_of(entries.into_iter().map(|e| {
        LazyModelUpscaler::from_source(e, backend.clone(), tiles)
    })))
}

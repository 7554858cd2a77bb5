//! The upscaler models of an A1111 models folder and the names A1111 gives them.
//!
//! - `ESRGAN/` and `SwinIR/`: every `.pth`/`.pt` file (recursively), named by its stem
//!   (`modelloader.friendly_name`). Easel also takes `.safetensors` there.
//! - `RealESRGAN/`: A1111 only uses the six Real-ESRGAN releases it knows, found by file
//!   name and shown under its own names (`RealESRGAN_x4plus.pth` is "R-ESRGAN 4x+");
//!   Easel lists those under A1111's names (all six, where A1111 shows only those enabled
//!   in its settings, by default "R-ESRGAN 4x+" and "R-ESRGAN 4x+ Anime6B"), and any other
//!   file there by its stem.
//!
//! The list is sorted by lower-cased name, as A1111's `shared.sd_upscalers`; a name is
//! looked up exactly, the first entry winning, as A1111's hires fix and Extras tab do.
//! How a folder's models are tiled follows A1111's upscaler class for it (see
//! [`crate::tiling`]).

use easel_core::model::files::walk_files;
use easel_core::{Error, Result};
use std::path::{Path, PathBuf};

/// The A1111 upscaler class whose folder a model sits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UpscalerFolder {
    Esrgan,
    RealEsrgan,
    SwinIr,
}

impl UpscalerFolder {
    pub const ALL: [UpscalerFolder; 3] = [Self::Esrgan, Self::RealEsrgan, Self::SwinIr];

    /// The folder's name under `models/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Esrgan => "ESRGAN",
            Self::RealEsrgan => "RealESRGAN",
            Self::SwinIr => "SwinIR",
        }
    }

    /// The folder whose [`Self::dir_name`] is `name`, in any case: a front end that gets the
    /// folder from a user's picked directory may see it spelled as the file system kept it.
    pub fn from_dir_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|f| f.dir_name().eq_ignore_ascii_case(name))
    }

    /// Where the folder comes in A1111's listing before the names are sorted.
    fn position(self) -> usize {
        Self::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// Real-ESRGAN releases A1111 knows: (file stem, A1111's name).
pub const REAL_ESRGAN_RELEASES: [(&str, &str); 6] = [
    ("realesr-general-x4v3", "R-ESRGAN General 4xV3"),
    ("realesr-general-wdn-x4v3", "R-ESRGAN General WDN 4xV3"),
    ("realesr-animevideov3", "R-ESRGAN AnimeVideo"),
    ("RealESRGAN_x4plus", "R-ESRGAN 4x+"),
    ("RealESRGAN_x4plus_anime_6B", "R-ESRGAN 4x+ Anime6B"),
    ("RealESRGAN_x2plus", "R-ESRGAN 2x+"),
];

/// An upscaler model file and its A1111 name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpscalerEntry {
    pub name: String,
    pub path: PathBuf,
    pub folder: UpscalerFolder,
}

/// Whether A1111 (and Easel) would list `p` as an upscaler model, by its extension.
pub fn is_model_file(p: &Path) -> bool {
    p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        ["pth", "pt", "safetensors"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    })
}

/// A1111's name for the model file `path` in `folder`: its stem, or for a Real-ESRGAN
/// release A1111 knows, A1111's own name for it.
pub fn upscaler_name(folder: UpscalerFolder, path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match folder {
        UpscalerFolder::RealEsrgan => REAL_ESRGAN_RELEASES
            .iter()
            .find(|(file, _)| stem.ends_with(file))
            .map_or(stem, |(_, name)| name.to_string()),
        _ => stem,
    }
}

/// Puts upscalers in A1111's order (`shared.sd_upscalers`): folder by folder, each folder's
/// files by path, then stably by lower-cased name. `key` gives an item's folder, path and
/// name; models from a folder and models handed in as open files are ordered alike.
pub fn sort_a1111<T>(items: &mut [T], key: impl Fn(&T) -> (UpscalerFolder, &Path, &str)) {
    items.sort_by(|a, b| {
        let ((fa, pa, _), (fb, pb, _)) = (key(a), key(b));
        (fa.position(), pa).cmp(&(fb.position(), pb))
    });
    items.sort_by_cached_key(|e| key(e).2.to_lowercase());
}

/// Every upscaler model under `models/{ESRGAN,RealESRGAN,SwinIR}`, sorted by A1111's rule.
pub fn list_upscalers(models: &Path) -> Vec<UpscalerEntry> {
    let mut out = Vec::new();
    for folder in UpscalerFolder::ALL {
        for path in walk_files(&models.join(folder.dir_name()), true, &is_model_file) {
            let name = upscaler_name(folder, &path);
            out.push(UpscalerEntry { name, path, folder });
        }
    }
    sort_a1111(&mut out, |e| (e.folder, &e.path, &e.name));
    out
}

/// The upscaler A1111 would pick for `name` (exact match, first in list order).
pub fn find_upscaler(models: &Path, name: &str) -> Result<UpscalerEntry> {
    let all = list_upscalers(models);
    if let Some(e) = all.iter().find(|e| e.name == name) {
        return Ok(e.clone());
    }
    let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    Err(Error::Invalid(format!(
        "no upscaler named `{name}` in {} (ESRGAN, RealESRGAN, SwinIR; available: {})",
        models.display(),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )))
}

//! LoRAs from files a user picked (the browser has `File`s, not a models folder): named,
//! aliased, hashed and read exactly as [`crate::FolderLoras`] does for `models/Lora`, from
//! byte sources.

use crate::file::LoraFile;
use crate::library::{LoraEntry, EXTENSIONS};
use crate::provider::LoraLibrary;
use easel_core::formats::open_tensor_store_named;
use easel_core::io::ByteSource;
use easel_core::model::{safetensors_data_sha256_of, sha256_of};
use easel_core::Result;
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Picked {
    entry: LoraEntry,
    source: Arc<dyn ByteSource>,
    file: Option<Arc<LoraFile>>,
    short_hash: Option<String>,
}

/// The picked LoRA files, each read on first use and kept.
pub struct PickedLoras {
    files: Vec<Picked>,
}

fn extension(name: &str) -> &str {
    name.rsplit_once('.').map(|(_, e)| e).unwrap_or("")
}

impl PickedLoras {
    /// The files `(file name, source)` with a LoRA extension, in the order given (A1111's
    /// order is the folder's: give them sorted). Safetensors metadata is read for the alias
    /// (`ss_output_name`) and the stored hash (`sshs_model_hash`); other files are skipped.
    pub fn new(files: Vec<(String, Arc<dyn ByteSource>)>) -> Result<Self> {
        let mut out = Vec::new();
        for (name, source) in files {
            let ext = extension(&name).to_ascii_lowercase();
            if !EXTENSIONS.contains(&ext.as_str()) {
                continue;
            }
            let stem = name
                .rsplit_once('.')
                .map(|(s, _)| s)
                .unwrap_or(&name)
                .to_string();
            let meta = if ext == "safetensors" {
                open_tensor_store_named(&name, source.clone())?
                    .metadata()
                    .clone()
            } else {
                Default::default()
            };
            out.push(Picked {
                entry: LoraEntry::new(stem, PathBuf::from(&name), &meta),
                source,
                file: None,
                short_hash: None,
            });
        }
        Ok(Self { files: out })
    }

    /// The picked files as A1111 names them (file stems).
    pub fn names(&self) -> Vec<String> {
        self.files.iter().map(|p| p.entry.name.clone()).collect()
    }

    fn picked(&mut self, entry: &LoraEntry) -> Option<&mut Picked> {
        self.files.iter_mut().find(|p| p.entry.path == entry.path)
    }
}

/// A1111's full hash of a LoRA file: the stored one, else the safetensors data's sha256,
/// else the whole file's.
fn full_hash(entry: &LoraEntry, source: &dyn ByteSource) -> Result<String> {
    if let Some(h) = &entry.metadata_hash {
        return Ok(h.clone());
    }
    if extension(&entry.path.to_string_lossy()).eq_ignore_ascii_case("safetensors") {
        safetensors_data_sha256_of(source)
    } else {
        sha256_of(source)
    }
}

impl LoraLibrary for PickedLoras {
    fn entries(&mut self) -> Vec<LoraEntry> {
        self.files.iter().map(|p| p.entry.clone()).collect()
    }
    fn file(&mut self, entry: &LoraEntry) -> Result<Arc<LoraFile>> {
        let Some(p) = self.picked(entry) else {
            return Err(easel_core::Error::Invalid(format!(
                "LoRA `{}` was not picked",
                entry.path.display()
            )));
        };
        if let Some(f) = &p.file {
            return Ok(f.clone());
        }
        let name = p.entry.path.to_string_lossy().to_string();
        let store = open_tensor_store_named(&name, p.source.clone())?;
        let f = Arc::new(LoraFile::from_store(&store, Path::new(&name))?);
        p.file = Some(f.clone());
        Ok(f)
    }
    fn short_hash(&mut self, entry: &LoraEntry) -> String {
        let Some(p) = self.picked(entry) else {
            return String::new();
        };
        if p.short_hash.is_none() {
            let h = full_hash(&p.entry, p.source.as_ref()).unwrap_or_default();
            p.short_hash = Some(h.chars().take(12).collect());
        }
        p.short_hash.clone().unwrap_or_default()
    }
    fn version(&self, _: &LoraEntry) -> String {
        // A picked file does not change; picking again makes a new provider.
        String::new()
    }
}

crate::provider::library_weight_patches!(PickedLoras);

//! LoRAs for the generation service from an A1111 models folder (`models/Lora`,
//! `models/LyCORIS`): tags and requests are resolved by A1111's names and aliases, each file
//! is read once (again when it changes on disk), and the set becomes one [`LoraPatch`].
//!
//! As in A1111, a name that is not found, a file that cannot be read or is for another
//! architecture, and a tag with a malformed number are warnings, and the image is generated
//! without those networks. A1111 activates the networks kind by kind (`lora` tags, then
//! `lyco` tags, in the order the kinds first appear); the front end's own requests
//! (`--lora`) come last, as A1111's "add network to prompt" option appends them, and they
//! are written into the infotext's prompt as tags so the PNG reads back the same.

use crate::file::LoraFile;
use crate::infotext::lora_hashes_field;
use crate::library::{list_loras, resolve, LoraEntry};
use crate::patch::{AppliedLora, LoraPatch};
use crate::request::LoraRequest;
use easel_core::service::{NetworkSetting, PreparedPatch};
use easel_core::text::{kinds_in_order, ExtraNetworkTag};
use easel_core::Result;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The tag kinds this provider reads (`lyco` is A1111's alias of `lora`).
pub const KINDS: [&str; 2] = ["lora", "lyco"];

pub struct FolderLoras {
    models: PathBuf,
    files: HashMap<PathBuf, (Option<SystemTime>, Arc<LoraFile>)>,
    hashes: HashMap<PathBuf, (Option<SystemTime>, String)>,
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl FolderLoras {
    pub fn new(models: impl Into<PathBuf>) -> Self {
        Self {
            models: models.into(),
            files: HashMap::new(),
            hashes: HashMap::new(),
        }
    }

    /// The file at `path`, read now or taken from the cache if unchanged.
    pub fn file(&mut self, path: &Path) -> Result<Arc<LoraFile>> {
        let t = mtime(path);
        if let Some((seen, f)) = self.files.get(path) {
            if *seen == t {
                return Ok(f.clone());
            }
        }
        let f = Arc::new(LoraFile::read(path)?);
        self.files.insert(path.to_path_buf(), (t, f.clone()));
        Ok(f)
    }

    fn short_hash(&mut self, entry: &crate::library::LoraEntry) -> String {
        let t = mtime(&entry.path);
        if let Some((seen, h)) = self.hashes.get(&entry.path) {
            if *seen == t {
                return h.clone();
            }
        }
        let h = entry.short_hash().unwrap_or_default();
        self.hashes.insert(entry.path.clone(), (t, h.clone()));
        h
    }

    /// The requests of `tags` (grouped by kind in A1111's order) and then of `requested`
    /// whose names no tag already has. A malformed tag makes A1111 skip all of them.
    fn requests(
        tags: &[ExtraNetworkTag],
        requested: &[NetworkSetting],
        warnings: &mut Vec<String>,
    ) -> (Vec<LoraRequest>, Vec<LoraRequest>) {
        let mut from_tags = Vec::new();
        for kind in kinds_in_order(tags) {
            for t in tags.iter().filter(|t| t.kind == kind) {
                match LoraRequest::from_tag(t) {
                    Ok(r) => from_tags.push(r),
                    Err(e) => {
                        warnings.push(format!(
                            "LoRA tags not applied: {e} (A1111 then applies none of the prompt's LoRAs)"
                        ));
                        return (Vec::new(), Vec::new());
                    }
                }
            }
        }
        let extra = requested
            .iter()
            .filter(|s| !from_tags.iter().any(|r| r.name == s.name))
            .map(LoraRequest::from_setting)
            .collect();
        (from_tags, extra)
    }
}

/// Where a provider's LoRA files come from: a models folder, or files picked in a browser.
pub trait LoraLibrary {
    /// Every file, in A1111's order, named as A1111 names them.
    fn entries(&mut self) -> Vec<LoraEntry>;
    /// The file of `entry`, read (or taken from the cache).
    fn file(&mut self, entry: &LoraEntry) -> Result<Arc<LoraFile>>;
    /// A1111's short hash of `entry` (`Lora hashes`); empty when it cannot be computed.
    fn short_hash(&mut self, entry: &LoraEntry) -> String;
    /// What tells this file's contents apart in the patch key (a changed file reloads).
    fn version(&self, entry: &LoraEntry) -> String;
}

impl LoraLibrary for FolderLoras {
    fn entries(&mut self) -> Vec<LoraEntry> {
        list_loras(&self.models)
    }
    fn file(&mut self, entry: &LoraEntry) -> Result<Arc<LoraFile>> {
        FolderLoras::file(self, &entry.path)
    }
    fn short_hash(&mut self, entry: &LoraEntry) -> String {
        FolderLoras::short_hash(self, entry)
    }
    fn version(&self, entry: &LoraEntry) -> String {
        format!("{:?}", mtime(&entry.path))
    }
}

/// The weight-patch provider of a [`LoraLibrary`]: `<lora:…>` / `<lyco:…>` tags and
/// requested LoRAs, prepared by [`prepare_from`] (one impl for the folder and for picked files).
macro_rules! library_weight_patches {
    ($library:ty) => {
        impl easel_core::service::WeightPatchProvider for $library {
            fn kinds(&self) -> Vec<String> {
                $crate::provider::KINDS
                    .iter()
                    .map(|k| k.to_string())
                    .collect()
            }

            fn prepare(
                &mut self,
                tags: &[easel_core::text::ExtraNetworkTag],
                requested: &[easel_core::service::NetworkSetting],
            ) -> easel_core::Result<easel_core::service::PreparedPatch> {
                $crate::provider::prepare_from(self, tags, requested)
            }
        }
    };
}
pub(crate) use library_weight_patches;

library_weight_patches!(FolderLoras);

/// A provider's answer for one job from `library`: the requests of the prompt's tags and
/// of `requested`, resolved by A1111's names, read, hashed and made into one patch.
pub fn prepare_from(
    library: &mut dyn LoraLibrary,
    tags: &[ExtraNetworkTag],
    requested: &[NetworkSetting],
) -> Result<PreparedPatch> {
    let mut warnings = Vec::new();
    let (from_tags, extra) = FolderLoras::requests(tags, requested, &mut warnings);
    if from_tags.is_empty() && extra.is_empty() {
        return Ok(PreparedPatch {
            warnings,
            ..PreparedPatch::none()
        });
    }
    let entries = library.entries();
    let mut applied = Vec::new();
    let mut hashes = Vec::new();
    let mut key = String::new();
    let mut missing = Vec::new();
    for r in from_tags.iter().chain(&extra) {
        let Some(entry) = resolve(&entries, &r.name).cloned() else {
            missing.push(r.name.clone());
            continue;
        };
        let file = match library.file(&entry) {
            Ok(f) => f,
            Err(e) => {
                warnings.push(format!("LoRA `{}` skipped: {e}", r.name));
                continue;
            }
        };
        hashes.push((r.name.clone(), library.short_hash(&entry)));
        key.push_str(&format!(
            "{}|{}|{}|{}|{:?};",
            entry.path.display(),
            library.version(&entry),
            r.te_multiplier,
            r.unet_multiplier,
            r.dyn_dim
        ));
        applied.push(AppliedLora {
            name: r.name.clone(),
            file,
            te_multiplier: r.te_multiplier,
            unet_multiplier: r.unet_multiplier,
            dyn_dim: r.dyn_dim,
        });
    }
    if !missing.is_empty() {
        warnings.push(format!("Lora not found: {}", missing.join(", ")));
    }
    let prompt_tags: String = extra.iter().map(LoraRequest::tag_text).collect();
    if applied.is_empty() {
        return Ok(PreparedPatch {
            warnings,
            prompt_tags,
            ..PreparedPatch::none()
        });
    }
    let infotext = lora_hashes_field(&hashes)
        .map(|v| vec![("Lora hashes".to_string(), v)])
        .unwrap_or_default();
    Ok(PreparedPatch {
        key,
        patch: Some(Arc::new(LoraPatch::new(applied))),
        infotext,
        warnings,
        prompt_tags,
    })
}

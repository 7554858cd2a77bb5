//! The LoRA files of a models folder and how A1111 names them.
//!
//! A1111 lists `.pt`, `.ckpt` and `.safetensors` files under `models/Lora` and then
//! `models/LyCORIS` (recursively). A file's name is its stem; its alias is the
//! `ss_output_name` of its metadata (else the name). A prompt names a file by name or alias;
//! where an alias is shared by several files, that alias (lower-cased) only matches a name.
//! A later file with the same name or alias wins, as in A1111's dictionaries.
//!
//! The hash A1111 shows and writes (`Lora hashes`) is the metadata's `sshs_model_hash` when
//! present, else for a safetensors file the sha256 of everything after its header (kohya's
//! "addnet" hash), for other files the sha256 of the file; the short hash is its first 12
//! hex digits.

use easel_core::formats::open_tensor_store;
use easel_core::model::files::{stem, walk_files};
use easel_core::model::hash_file;
use easel_core::{Error, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// The folders A1111 reads LoRAs from, in order.
pub const LORA_FOLDERS: [&str; 2] = ["Lora", "LyCORIS"];
pub(crate) const EXTENSIONS: [&str; 3] = ["pt", "ckpt", "safetensors"];

#[derive(Clone, Debug, PartialEq)]
pub struct LoraEntry {
    pub name: String,
    pub alias: String,
    pub path: PathBuf,
    /// `sshs_model_hash` from the metadata, if the file carries one.
    pub metadata_hash: Option<String>,
}

impl LoraEntry {
    /// The entry of file `path` named `name` (its stem), with the alias (`ss_output_name`)
    /// and stored hash (`sshs_model_hash`) its safetensors metadata carries.
    pub fn new(name: String, path: PathBuf, meta: &BTreeMap<String, String>) -> Self {
        Self {
            alias: meta
                .get("ss_output_name")
                .cloned()
                .unwrap_or_else(|| name.clone()),
            metadata_hash: meta
                .get("sshs_model_hash")
                .cloned()
                .filter(|h| !h.is_empty()),
            name,
            path,
        }
    }

    fn is_safetensors(&self) -> bool {
        self.path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
    }

    /// The full hash A1111 uses for this file (see the module doc).
    pub fn hash(&self) -> Result<String> {
        if let Some(h) = &self.metadata_hash {
            return Ok(h.clone());
        }
        let h = hash_file(&self.path, &mut |_, _| {})?;
        Ok(if self.is_safetensors() {
            h.autov3.ok_or_else(|| {
                Error::format(
                    self.path.display().to_string(),
                    "not a readable safetensors file",
                )
            })?
        } else {
            h.sha256
        })
    }

    /// The first 12 hex digits of [`Self::hash`].
    pub fn short_hash(&self) -> Result<String> {
        Ok(self.hash()?.chars().take(12).collect())
    }
}

/// Every LoRA file under `models/Lora` and `models/LyCORIS`, in A1111's order.
pub fn list_loras(models: &Path) -> Vec<LoraEntry> {
    let mut out = Vec::new();
    for folder in LORA_FOLDERS {
        let mut files = walk_files(&models.join(folder), true, &|p: &Path| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        });
        files.sort();
        for path in files {
            let name = stem(&path);
            let meta = if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
            {
                open_tensor_store(&path)
                    .map(|s| s.metadata().clone())
                    .unwrap_or_default()
            } else {
                Default::default()
            };
            out.push(LoraEntry::new(name, path, &meta));
        }
    }
    out
}

/// The entry `name` means, as A1111's `load_networks` looks it up; `None` if none.
pub fn resolve<'a>(entries: &'a [LoraEntry], name: &str) -> Option<&'a LoraEntry> {
    let mut by_name: HashMap<&str, &LoraEntry> = HashMap::new();
    let mut by_alias: HashMap<&str, &LoraEntry> = HashMap::new();
    let mut forbidden: HashSet<String> = HashSet::new();
    for e in entries {
        by_name.insert(&e.name, e);
        if by_alias.contains_key(e.alias.as_str()) {
            forbidden.insert(e.alias.to_lowercase());
        }
        by_alias.insert(&e.name, e);
        by_alias.insert(&e.alias, e);
    }
    if forbidden.contains(&name.to_lowercase()) {
        by_name.get(name).copied()
    } else {
        by_alias.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, alias: &str) -> LoraEntry {
        LoraEntry {
            name: name.into(),
            alias: alias.into(),
            path: PathBuf::from(format!("{name}.safetensors")),
            metadata_hash: None,
        }
    }

    #[test]
    fn names_and_aliases() {
        let entries = vec![e("a", "style"), e("b", "b"), e("c", "style")];
        assert_eq!(resolve(&entries, "a").unwrap().name, "a");
        assert_eq!(resolve(&entries, "b").unwrap().name, "b");
        // `style` is shared: it only matches a file named `style`, and there is none.
        assert!(resolve(&entries, "style").is_none());
        let entries = vec![e("a", "nice")];
        assert_eq!(resolve(&entries, "nice").unwrap().name, "a");
        assert!(resolve(&entries, "A").is_none());
    }
}

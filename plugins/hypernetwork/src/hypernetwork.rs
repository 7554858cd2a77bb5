//! A hypernetwork file (`.pt`) read into host memory: for each context width it covers, a
//! pair of modules (key path, value path), plus A1111's metadata.
//!
//! The file is a pickled dict keyed by Python ints (the widths) whose values are two module
//! state dicts; the checkpoint reader flattens it to names like `320.0.linear.0.weight`
//! (`320.1.…` for the value path) and keeps the other entries (`name`, `step`,
//! `layer_structure`, …) as metadata text. Nothing in the file is executed.

use crate::module::HypernetworkModule;
use crate::structure::ModuleStructure;
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Which program wrote the file, judged by its tensor names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HypernetworkFormat {
    /// `linear1`/`linear2` modules (NovelAI's release, early A1111).
    NovelAi,
    /// `linear.N` modules built from `layer_structure` (A1111's trainer).
    A1111,
}

/// The key-path and value-path modules for one width.
#[derive(Clone, Debug, PartialEq)]
pub struct ModulePair {
    pub key: HypernetworkModule,
    pub value: HypernetworkModule,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hypernetwork {
    /// The file's `name` entry, else the file stem — what A1111 writes as `Hypernet`.
    pub name: String,
    /// The file it was read from, when it came from a path.
    pub path: Option<PathBuf>,
    pub format: HypernetworkFormat,
    /// Training step (`step`), when recorded.
    pub step: Option<i64>,
    /// Hash of the checkpoint it was trained on (`sd_checkpoint`), when recorded.
    pub sd_checkpoint: Option<String>,
    /// Name of that checkpoint (`sd_checkpoint_name`), when recorded.
    pub sd_checkpoint_name: Option<String>,
    pub structure: ModuleStructure,
    /// Modules by context width.
    pub modules: BTreeMap<usize, ModulePair>,
}

impl Hypernetwork {
    /// Reads a hypernetwork file. Errors name the file and, for weights, the tensor.
    pub fn load(path: &Path) -> Result<Self> {
        let store = open_tensor_store(path)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut hn = Self::from_store(&store, &stem)?;
        hn.path = Some(path.to_path_buf());
        Ok(hn)
    }

    /// Reads a hypernetwork from an opened file (e.g. a browser `Blob`); `stem` is the name
    /// used when the file has no `name` entry.
    pub fn from_store(store: &TensorStore, stem: &str) -> Result<Self> {
        let file = store.name();
        let meta = store.metadata();
        let structure = ModuleStructure::from_metadata(meta, file)?;

        // Top-level int keys are widths; their entries are `<width>.<0|1>.<param>`.
        let mut widths = BTreeSet::new();
        for key in store.keys() {
            let first = key.split('.').next().unwrap_or("");
            if let Ok(w) = first.parse::<usize>() {
                widths.insert(w);
            }
        }
        if widths.is_empty() {
            return Err(Error::format(
                file,
                "not a hypernetwork: no modules keyed by context width (e.g. `768`) in the file",
            ));
        }
        let mut legacy = false;
        let mut modules = BTreeMap::new();
        for &w in &widths {
            if w == 0 {
                return Err(Error::format(file, "hypernetwork module for width 0"));
            }
            legacy |= store.contains(&format!("{w}.0.linear1.weight"));
            let key = HypernetworkModule::read(store, &format!("{w}.0"), w, &structure)?;
            let value = HypernetworkModule::read(store, &format!("{w}.1"), w, &structure)?;
            if let Some(extra) = store.keys().find(|k| {
                k.strip_prefix(&format!("{w}."))
                    .is_some_and(|rest| !rest.starts_with("0.") && !rest.starts_with("1."))
            }) {
                return Err(Error::format(
                    file,
                    format!("hypernetwork tensor `{extra}`: width {w} must hold exactly two modules (key, value)"),
                ));
            }
            modules.insert(w, ModulePair { key, value });
        }

        let text = |k: &str| {
            meta.get(k)
                .filter(|v| v.as_str() != "null" && !v.is_empty())
                .cloned()
        };
        Ok(Self {
            name: text("name").unwrap_or_else(|| stem.to_string()),
            path: None,
            format: if legacy {
                HypernetworkFormat::NovelAi
            } else {
                HypernetworkFormat::A1111
            },
            step: text("step").and_then(|s| s.parse().ok()),
            sd_checkpoint: text("sd_checkpoint"),
            sd_checkpoint_name: text("sd_checkpoint_name"),
            structure,
            modules,
        })
    }

    /// Context widths this hypernetwork has modules for.
    pub fn widths(&self) -> Vec<usize> {
        self.modules.keys().copied().collect()
    }
}

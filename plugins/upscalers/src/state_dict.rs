//! A weight file's tensors under the names the network code uses, as spandrel's
//! `canonicalize_state_dict` sees them: the real state dict may sit under a wrapper key
//! (`params_ema` in Real-ESRGAN and SwinIR releases, `params`, `model`, `net`, ...) and
//! its keys may carry a `module.` (DataParallel) or `netG.` prefix.
//!
//! The checkpoint reader flattens nested dicts into dotted names, so a wrapper and a key
//! that merely starts with the same word (old ESRGAN's `model.0.weight`) look alike. The
//! candidates are therefore tried in order — the names as stored, then each wrapper
//! spandrel unwraps (in its order), then a lone top-level name — and the first one an
//! architecture recognises is used; for every real release this is the dict spandrel
//! would pick.

use easel_core::formats::TensorStore;
use easel_core::nn::loader::KeyMap;
use easel_core::nn::Weights;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The wrapper keys spandrel unwraps, in its order (`state_dict` is already removed by the
/// checkpoint reader).
const WRAPPERS: [&str; 6] = [
    "model_state_dict",
    "params_ema",
    "params-ema",
    "params",
    "model",
    "net",
];

/// Prefixes spandrel strips when every key has them, in its order.
const COMMON_PREFIXES: [&str; 2] = ["module.", "netG."];

/// Canonical name → stored key, over one opened file.
#[derive(Clone)]
pub struct StateDict<'a> {
    store: &'a TensorStore,
    names: BTreeMap<String, String>,
}

impl<'a> StateDict<'a> {
    /// The candidate views of `store`, in the order they are tried.
    pub fn candidates(store: &'a TensorStore) -> Vec<StateDict<'a>> {
        let all: Vec<&str> = store.keys().collect();
        let mut out = vec![Self::from_pairs(store, all.iter().map(|k| (*k, *k)))];
        for wrapper in WRAPPERS {
            let prefix = format!("{wrapper}.");
            let inner: Vec<(&str, &str)> = all
                .iter()
                .filter_map(|k| k.strip_prefix(prefix.as_str()).map(|rest| (rest, *k)))
                .collect();
            if !inner.is_empty() {
                out.push(Self::from_pairs(store, inner));
            }
        }
        // A lone top-level entry holding the real dict.
        if let Some(first) = all.first().and_then(|k| k.split_once('.')).map(|(a, _)| a) {
            let prefix = format!("{first}.");
            if all.iter().all(|k| k.starts_with(prefix.as_str())) {
                out.push(Self::from_pairs(
                    store,
                    all.iter().map(|k| (&k[prefix.len()..], *k)),
                ));
            }
        }
        out
    }

    fn from_pairs<'k>(
        store: &'a TensorStore,
        pairs: impl IntoIterator<Item = (&'k str, &'k str)>,
    ) -> Self {
        let mut names: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(n, k)| (n.to_string(), k.to_string()))
            .collect();
        for prefix in COMMON_PREFIXES {
            if !names.is_empty() && names.keys().all(|k| k.starts_with(prefix)) {
                names = names
                    .into_iter()
                    .map(|(n, k)| (n[prefix.len()..].to_string(), k))
                    .collect();
            }
        }
        Self { store, names }
    }

    /// The same file under other canonical names (`renamed`: new name → current name).
    pub fn renamed(&self, renamed: BTreeMap<String, String>) -> Self {
        let names = renamed
            .into_iter()
            .filter_map(|(new, old)| self.names.get(&old).map(|k| (new, k.clone())))
            .collect();
        Self {
            store: self.store,
            names,
        }
    }

    pub fn file(&self) -> &str {
        self.store.name()
    }
    pub fn store(&self) -> &'a TensorStore {
        self.store
    }
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }
    /// Stored shape of the tensor named `name`.
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        let key = self.names.get(name)?;
        self.store.get(key).map(|i| i.shape.as_slice())
    }
    /// Dimension `dim` of `name`'s shape, or a missing-key error naming the stored key.
    pub fn dim(&self, name: &str, dim: usize) -> easel_core::Result<usize> {
        let shape = self
            .shape(name)
            .ok_or_else(|| easel_core::Error::MissingKey {
                file: self.file().to_string(),
                key: name.to_string(),
            })?;
        shape.get(dim).copied().ok_or_else(|| {
            easel_core::Error::format(
                self.file(),
                format!("tensor `{name}` has shape {shape:?}, with no dimension {dim}"),
            )
        })
    }
    /// spandrel's `get_seq_len`: one more than the largest `i` with a key `{seq}.{i}.…`.
    pub fn seq_len(&self, seq: &str) -> usize {
        let prefix = format!("{seq}.");
        self.keys()
            .filter_map(|k| k.strip_prefix(prefix.as_str()))
            .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
            .max()
            .map_or(0, |m| m + 1)
    }
    /// Shape-checked loading by canonical name (errors name the stored key).
    pub fn weights(&self) -> Weights<'a> {
        let names = Arc::new(self.names.clone());
        let map: KeyMap =
            Arc::new(move |k: &str| names.get(k).cloned().unwrap_or_else(|| k.to_string()));
        Weights::new(self.store, "").with_key_map(map)
    }
}

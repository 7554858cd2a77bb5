//! A LoRA/LyCORIS file read into modules, grouped by the layer each names.
//!
//! As A1111's `load_network`: every key is split at its first `.` into the layer's network
//! key and the tensor's name within the module (`lora_down.weight`, `alpha`, `hada_w1_a`, …);
//! the network key is converted to A1111's module name ([`crate::key_map`]); the tensors of
//! one layer form a module of the first type that accepts their names. A key that names no
//! SD1 layer is kept in [`LoraFile::unmatched`] for the warning. A file made for another
//! architecture (SDXL, SD2) is refused with an error naming the file. `.pt`/`.ckpt` files go
//! through core's whitelist pickle reader: nothing in them is executed.

use crate::key_map::module_name;
use crate::module::{NetworkModule, Tensor};
use easel_core::formats::{open_tensor_store, TensorStore};
use easel_core::{Error, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct LoraFile {
    pub path: PathBuf,
    /// safetensors `__metadata__` (kohya's `ss_*` training facts), empty for pickles.
    pub metadata: BTreeMap<String, String>,
    /// Modules by A1111 module name (`diffusion_model_input_blocks_1_1_proj_in`).
    pub modules: BTreeMap<String, NetworkModule>,
    /// For each module, the network key it was written under (for messages).
    pub network_keys: BTreeMap<String, String>,
    /// Keys that name no SD1 layer at all.
    pub unmatched: Vec<String>,
}

fn err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::format(path.display().to_string(), msg.to_string())
}

/// Why a file is not an SD1 network, if its metadata or keys say so.
fn other_architecture(store: &TensorStore) -> Option<String> {
    let meta = store.metadata();
    if let Some(v) = meta.get("ss_base_model_version") {
        if v.starts_with("sdxl_") {
            return Some(format!("an SDXL LoRA (ss_base_model_version `{v}`)"));
        }
    }
    if meta.get("ss_v2").map(String::as_str) == Some("True") {
        return Some("an SD 2.x LoRA (ss_v2 True)".into());
    }
    if let Some(arch) = meta.get("modelspec.architecture") {
        if !arch.starts_with("stable-diffusion-v1") {
            return Some(format!("a LoRA for `{arch}`"));
        }
    }
    if let Some(k) = store.keys().find(|k| k.starts_with("lora_te2_")) {
        return Some(format!(
            "an SDXL LoRA (key `{k}` is for SDXL's second text encoder)"
        ));
    }
    None
}

impl LoraFile {
    pub fn read(path: &Path) -> Result<Self> {
        Self::from_store(&open_tensor_store(path)?, path)
    }

    /// The file already opened as `store`; `path` names it in messages.
    pub fn from_store(store: &TensorStore, path: &Path) -> Result<Self> {
        if let Some(why) = other_architecture(store) {
            return Err(err(
                path,
                format!("{why}: it does not fit this SD 1.x model"),
            ));
        }
        let mut groups: BTreeMap<String, BTreeMap<String, Tensor>> = BTreeMap::new();
        let mut network_keys = BTreeMap::new();
        let mut unmatched = Vec::new();
        for key in store.keys() {
            let Some((network_key, part)) = key.split_once('.') else {
                unmatched.push(key.to_string());
                continue;
            };
            if network_key == "bundle_emb" {
                unmatched.push(key.to_string());
                continue;
            }
            let Some(module) = module_name(network_key) else {
                unmatched.push(key.to_string());
                continue;
            };
            let info = store.info(key)?;
            let data = store.read_f32(key)?;
            if let Some(i) = data.iter().position(|v| !v.is_finite()) {
                return Err(err(
                    path,
                    format!("tensor `{key}` holds {} at element {i}", data[i]),
                ));
            }
            network_keys
                .entry(module.clone())
                .or_insert_with(|| network_key.to_string());
            groups.entry(module).or_default().insert(
                part.to_string(),
                Tensor {
                    shape: info.shape.clone(),
                    data,
                },
            );
        }
        let mut modules = BTreeMap::new();
        for (name, parts) in groups {
            let names: Vec<String> = parts.keys().cloned().collect();
            let key = network_keys[&name].clone();
            match NetworkModule::from_parts(parts) {
                Ok(Some(m)) => {
                    modules.insert(name, m);
                }
                Ok(None) => {
                    return Err(err(
                        path,
                        format!(
                            "layer `{key}`: no supported network type (LoRA, LoHa, LoKr, (IA)³, full, norm) has the tensors {}",
                            names.join(", ")
                        ),
                    ))
                }
                Err(e) => return Err(err(path, format!("layer `{key}`: {e}"))),
            }
        }
        if modules.is_empty() {
            return Err(err(
                path,
                "no key names a layer of an SD 1.x model (a LoRA for another architecture?)",
            ));
        }
        Ok(Self {
            path: path.to_path_buf(),
            metadata: store.metadata().clone(),
            modules,
            network_keys,
            unmatched,
        })
    }
}

//! Loading a checkpoint from byte sources rather than paths: the browser has `File`s, not a
//! filesystem. The networks are built by the same code as [`StableDiffusion::load`]; only
//! where the bytes, the yaml text and the names come from differs.

use super::files::CheckpointFiles;
use super::hash::short_hash_of;
use super::ldm_yaml::LdmYaml;
use super::stable_diffusion::{ModelInfo, StableDiffusion};
use crate::backend::Backend;
use crate::error::Result;
use crate::formats::{open_tensor_store_from, TensorStore};
use crate::io::ByteSource;
use crate::nn::SharedWeightPatch;
use std::path::PathBuf;
use std::sync::Arc;

/// File-name extension used to pick the container parser (`model.ckpt` → `ckpt`).
fn extension(name: &str) -> &str {
    name.rsplit_once('.').map(|(_, e)| e).unwrap_or("")
}

/// The part of a file name before its last `.` (A1111's `Model:` field).
fn stem(name: &str) -> &str {
    name.rsplit_once('.').map(|(s, _)| s).unwrap_or(name)
}

/// A checkpoint given as byte sources: the checkpoint itself, its yaml config's text and
/// a VAE override, each named as the user's file is (the names go into the infotext).
#[derive(Clone)]
pub struct CheckpointSources {
    pub checkpoint: Arc<dyn ByteSource>,
    /// File name of the checkpoint, e.g. `tiny.ckpt`.
    pub checkpoint_name: String,
    /// `(file name, text)` of the LDM yaml, if one was given.
    pub config: Option<(String, String)>,
    /// `(file name, source)` of the VAE override, if one was given.
    pub vae: Option<(String, Arc<dyn ByteSource>)>,
}

impl<B: Backend> StableDiffusion<B> {
    /// [`StableDiffusion::load`] for byte sources: opens the containers (by extension),
    /// parses the yaml, computes A1111's short hashes and builds the networks.
    pub fn load_from_sources(b: &B, sources: &CheckpointSources) -> Result<Self> {
        Self::load_from_sources_patched(b, sources, None)
    }

    /// [`Self::load_from_sources`] with `patch` applied to the text encoder's and UNet's
    /// weights as they load (LoRA).
    pub fn load_from_sources_patched(
        b: &B,
        sources: &CheckpointSources,
        patch: Option<SharedWeightPatch>,
    ) -> Result<Self> {
        let store = open_tensor_store_from(
            sources.checkpoint.clone(),
            extension(&sources.checkpoint_name),
        )?;
        let vae_store = match &sources.vae {
            Some((name, src)) => Some(open_tensor_store_from(src.clone(), extension(name))?),
            None => None,
        };
        let yaml_text = sources
            .config
            .as_ref()
            .map(|(n, t)| (t.as_str(), n.as_str()));
        let hash = short_hash_of(sources.checkpoint.as_ref())?;
        let vae_hash = match &sources.vae {
            Some((_, src)) => Some(short_hash_of(src.as_ref())?),
            None => None,
        };
        let parsed = match yaml_text {
            Some((text, file)) => LdmYaml::parse(text, file)?,
            None => LdmYaml::default(),
        };
        let vae = vae_store.as_ref().map(|s| (sources.vae_name(), s));
        let info = source_info(yaml_text, vae, &sources.checkpoint_name, (hash, vae_hash));
        Self::assemble(b, &store, parsed, vae.map(|(_, s)| s), info, patch)
    }

    /// Builds the model from already opened stores. `yaml` is `(text, file name)`; `vae` is
    /// `(file name, store)`; `checkpoint_name` is the checkpoint's file name and `hashes` the
    /// short hashes of the checkpoint and the VAE file (all for the infotext).
    pub fn load_from_stores(
        b: &B,
        store: &TensorStore,
        yaml: Option<(&str, &str)>,
        vae: Option<(&str, &TensorStore)>,
        checkpoint_name: &str,
        hashes: (String, Option<String>),
    ) -> Result<Self> {
        let parsed = match yaml {
            Some((text, file)) => LdmYaml::parse(text, file)?,
            None => LdmYaml::default(),
        };
        let info = source_info(yaml, vae, checkpoint_name, hashes);
        Self::assemble(b, store, parsed, vae.map(|(_, s)| s), info, None)
    }
}

/// The infotext names and hashes of a model given by file names.
fn source_info(
    yaml: Option<(&str, &str)>,
    vae: Option<(&str, &TensorStore)>,
    checkpoint_name: &str,
    (hash, vae_hash): (String, Option<String>),
) -> ModelInfo {
    ModelInfo {
        files: CheckpointFiles {
            checkpoint: PathBuf::from(checkpoint_name),
            config: yaml.map(|(_, f)| PathBuf::from(f)),
            vae: vae.map(|(n, _)| PathBuf::from(n)),
        },
        name: stem(checkpoint_name).to_string(),
        hash,
        vae_name: vae.map(|(n, _)| n.to_string()),
        vae_hash,
    }
}

impl CheckpointSources {
    fn vae_name(&self) -> &str {
        self.vae.as_ref().map(|(n, _)| n.as_str()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemorySource;
    use crate::model::legacy_model_hash_of;

    /// The short hash covers every byte, across read chunks: Python's
    /// `hashlib.sha256(b"\0" * (9 << 20) + b"easel").hexdigest()` starts `5e95a05f59`.
    #[test]
    fn short_hash_reads_the_whole_file() {
        let mut bytes = vec![0u8; 9 << 20];
        bytes.extend(b"easel");
        let src = MemorySource::new("m.safetensors", bytes);
        assert_eq!(short_hash_of(&src).unwrap(), "5e95a05f59");
    }

    /// The legacy hash covers bytes 0x100000..0x110000: sha256 of 64 KiB of zeros starts
    /// `de2f256064a0af797747c2b97505dc0b9f3df0de4f489eac731c23ae9ca9cc31` (coreutils
    /// `head -c 65536 /dev/zero | sha256sum`).
    #[test]
    fn legacy_hash_reads_the_window_at_one_mebibyte() {
        let mut bytes = vec![7u8; 0x100000];
        bytes.extend(vec![0u8; 0x10000]);
        bytes.extend(vec![9u8; 100]);
        let src = MemorySource::new("m.ckpt", bytes);
        assert_eq!(legacy_model_hash_of(&src).unwrap(), "de2f2560");
    }

    /// A file shorter than 1 MiB hashes the empty string (sha256("") = e3b0c442…).
    #[test]
    fn legacy_hash_of_a_short_file_is_the_empty_digest() {
        let src = MemorySource::new("m.ckpt", vec![1u8; 1000]);
        assert_eq!(legacy_model_hash_of(&src).unwrap(), "e3b0c442");
    }

    #[test]
    fn names_split_at_the_last_dot() {
        assert_eq!(stem("tiny.vae.pt"), "tiny.vae");
        assert_eq!(extension("tiny.vae.pt"), "pt");
        assert_eq!(stem("model"), "model");
        assert_eq!(extension("model"), "");
    }
}

//! What a models folder holds, as `easel models` shows it: each checkpoint with its hash,
//! the config and VAE it will use, and whether it still carries training weights.

use super::files::{checkpoint_files, list_checkpoints, stem, VaeChoice};
use super::hash::legacy_model_hash;
use crate::error::Result;
use crate::formats::open_tensor_store;
use std::path::{Path, PathBuf};

/// Which UNet weights a checkpoint carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnetWeights {
    /// Only `model.diffusion_model.*` (a pruned inference checkpoint).
    Inference,
    /// Only `model_ema.*`.
    EmaOnly,
    /// Both: a full training checkpoint (~7 GB for SD1.x) worth pruning.
    EmaAndTraining,
    /// Neither (not an SD checkpoint, or a UNet-less file).
    None,
}

#[derive(Clone, Debug)]
pub struct CheckpointEntry {
    pub path: PathBuf,
    pub name: String,
    pub legacy_hash: String,
    pub size: u64,
    pub config: Option<PathBuf>,
    pub vae: Option<PathBuf>,
    pub unet: UnetWeights,
    /// Why the file could not be inspected, if it could not.
    pub error: Option<String>,
}

/// Inspect every checkpoint under `models/Stable-diffusion` (reads only file indexes).
pub fn list_folder(models: &Path) -> Vec<CheckpointEntry> {
    list_checkpoints(models)
        .into_iter()
        .map(|p| inspect(models, &p))
        .collect()
}

fn inspect(models: &Path, path: &Path) -> CheckpointEntry {
    let mut entry = CheckpointEntry {
        path: path.to_path_buf(),
        name: stem(path),
        legacy_hash: String::new(),
        size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        config: None,
        vae: None,
        unet: UnetWeights::None,
        error: None,
    };
    let r: Result<()> = (|| {
        entry.legacy_hash = legacy_model_hash(path)?;
        let files = checkpoint_files(models, path, &VaeChoice::Auto)?;
        entry.config = files.config;
        entry.vae = files.vae;
        let store = open_tensor_store(path)?;
        let training = store
            .keys()
            .any(|k| k.starts_with("model.diffusion_model."));
        let ema = store.keys().any(|k| {
            k.starts_with("model_ema.") && k != "model_ema.decay" && k != "model_ema.num_updates"
        });
        entry.unet = match (ema, training) {
            (true, true) => UnetWeights::EmaAndTraining,
            (true, false) => UnetWeights::EmaOnly,
            (false, true) => UnetWeights::Inference,
            (false, false) => UnetWeights::None,
        };
        Ok(())
    })();
    entry.error = r.err().map(|e| e.to_string());
    entry
}

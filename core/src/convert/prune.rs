//! Which tensors an EMA prune keeps, and under which names.
//!
//! A training checkpoint holds the UNet twice: the trained weights under
//! `model.diffusion_model.*` and their exponential moving average (the better weights for
//! inference) under LitEma's flattened names, `model_ema.` + the key without `model.` and
//! with every `.` removed (`model_ema.diffusion_modelinput_blocks10in_layers0weight`),
//! plus `model_ema.decay` and `model_ema.num_updates`. Pruning writes each EMA value under
//! the *normal* key (so every loader finds it) and drops the rest of `model_ema.*`; the
//! VAE, the text encoder and the schedule buffers are kept as they are.

use crate::error::{Error, Result};
use crate::formats::TensorStore;

const UNET_PREFIX: &str = "model.diffusion_model.";
const EMA_PREFIX: &str = "model_ema.";

/// Which UNet a prune keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EmaMode {
    /// The EMA weights, under the normal keys (the default, as in A1111-era prune scripts).
    #[default]
    EmaOnly,
    /// The training weights; every `model_ema.*` tensor is dropped.
    NoEma,
}

/// One output tensor: its name in the new file and the key it is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedTensor {
    pub name: String,
    pub source: String,
}

/// The result of planning a prune.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrunePlan {
    pub tensors: Vec<PlannedTensor>,
    /// Whether the input had EMA weights at all (a file without them is already pruned).
    pub ema_found: bool,
    /// UNet tensors whose values were taken from their EMA copies.
    pub ema_used: usize,
    /// Input tensors left out.
    pub dropped: usize,
}

/// LitEma's name for the EMA copy of a UNet key: `model.diffusion_model.a.b` →
/// `model_ema.diffusion_modelab`. `None` for keys outside `model.`.
pub fn ema_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix("model.")?;
    Some(format!("{EMA_PREFIX}{}", rest.replace('.', "")))
}

/// The EMA names a UNet key may have: LitEma's, and the one some Dreambooth trainers write
/// without `diffusion_model`.
fn ema_candidates(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(k) = ema_key(key) {
        out.push(k);
    }
    if let Some(rest) = key.strip_prefix(UNET_PREFIX) {
        out.push(format!("{EMA_PREFIX}{}", rest.replace('.', "")));
    }
    out
}

/// Plans the prune of `store`. Errors name the file and key: a UNet tensor without an EMA
/// copy while others have one, an EMA copy of another shape, or a file with no UNet.
pub fn prune_plan(store: &TensorStore, mode: EmaMode) -> Result<PrunePlan> {
    let file = store.name();
    let is_ema = |k: &str| k.starts_with(EMA_PREFIX);
    let has_unet = store.keys().any(|k| k.starts_with(UNET_PREFIX));
    let ema_found = store
        .keys()
        .any(|k| is_ema(k) && k != "model_ema.decay" && k != "model_ema.num_updates");
    if !has_unet {
        let why = if ema_found {
            "it has EMA weights (`model_ema.*`) but no `model.diffusion_model.*` keys to name them"
        } else {
            "it has no `model.diffusion_model.*` (UNet) tensors: not a Stable Diffusion checkpoint"
        };
        return Err(Error::format(file, format!("cannot prune: {why}")));
    }
    let mut tensors = Vec::new();
    let mut ema_used = 0;
    for key in store.keys() {
        if is_ema(key) {
            continue;
        }
        let mut source = key.to_string();
        if mode == EmaMode::EmaOnly && ema_found && key.starts_with(UNET_PREFIX) {
            let found = ema_candidates(key).into_iter().find(|c| store.contains(c));
            let Some(ema) = found else {
                return Err(Error::MissingKey {
                    file: file.to_string(),
                    key: format!(
                        "{} (EMA copy of `{key}`; other UNet tensors have one — pass --no-ema to keep the training weights)",
                        ema_key(key).unwrap_or_default()
                    ),
                });
            };
            let (want, got) = (&store.info(key)?.shape, &store.info(&ema)?.shape);
            if want != got {
                return Err(Error::Shape {
                    file: file.to_string(),
                    key: ema,
                    got: got.clone(),
                    expected: want.clone(),
                });
            }
            source = ema;
            ema_used += 1;
        }
        tensors.push(PlannedTensor {
            name: key.to_string(),
            source,
        });
    }
    let dropped = store.len() - tensors.len();
    Ok(PrunePlan {
        tensors,
        ema_found,
        ema_used,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{DType, TensorInfo};
    use crate::io::MemorySource;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn store(keys: &[(&str, usize)]) -> TensorStore {
        let tensors = keys
            .iter()
            .map(|&(k, n)| {
                let info = TensorInfo {
                    dtype: DType::F32,
                    shape: vec![n],
                    strides: vec![1],
                    offset: 0,
                    storage_start: 0,
                    storage_len: 4 * n as u64,
                };
                (k.to_string(), info)
            })
            .collect();
        TensorStore::new(
            Arc::new(MemorySource::new("t.ckpt", vec![0; 64])),
            tensors,
            BTreeMap::new(),
        )
    }

    #[test]
    fn ema_naming_matches_litema() {
        assert_eq!(
            ema_key("model.diffusion_model.input_blocks.1.0.in_layers.0.weight").unwrap(),
            "model_ema.diffusion_modelinput_blocks10in_layers0weight"
        );
        assert_eq!(ema_key("first_stage_model.x"), None);
    }

    #[test]
    fn ema_values_go_under_normal_keys() {
        let s = store(&[
            ("model.diffusion_model.out.0.weight", 2),
            ("model_ema.diffusion_modelout0weight", 2),
            ("model_ema.decay", 1),
            ("model_ema.num_updates", 1),
            ("first_stage_model.decoder.conv_in.weight", 3),
            ("betas", 4),
        ]);
        let p = prune_plan(&s, EmaMode::EmaOnly).unwrap();
        let got: Vec<(&str, &str)> = p
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.source.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("betas", "betas"),
                (
                    "first_stage_model.decoder.conv_in.weight",
                    "first_stage_model.decoder.conv_in.weight"
                ),
                (
                    "model.diffusion_model.out.0.weight",
                    "model_ema.diffusion_modelout0weight"
                ),
            ]
        );
        assert_eq!((p.ema_found, p.ema_used, p.dropped), (true, 1, 3));
        let p = prune_plan(&s, EmaMode::NoEma).unwrap();
        assert!(p.tensors.iter().all(|t| t.name == t.source));
        assert_eq!(p.dropped, 3);
    }

    #[test]
    fn partial_or_misshaped_ema_is_refused() {
        let s = store(&[
            ("model.diffusion_model.a.weight", 2),
            ("model.diffusion_model.b.weight", 2),
            ("model_ema.diffusion_modelaweight", 2),
        ]);
        let e = prune_plan(&s, EmaMode::EmaOnly).unwrap_err().to_string();
        assert!(
            e.contains("model_ema.diffusion_modelbweight") && e.contains("t.ckpt"),
            "{e}"
        );
        let s = store(&[
            ("model.diffusion_model.a.weight", 2),
            ("model_ema.diffusion_modelaweight", 3),
        ]);
        assert!(matches!(
            prune_plan(&s, EmaMode::EmaOnly),
            Err(Error::Shape { .. })
        ));
        let s = store(&[("first_stage_model.x", 2)]);
        let e = prune_plan(&s, EmaMode::EmaOnly).unwrap_err().to_string();
        assert!(e.contains("no `model.diffusion_model"), "{e}");
    }

    #[test]
    fn dreambooth_ema_names_without_diffusion_model() {
        let s = store(&[
            ("model.diffusion_model.a.weight", 2),
            ("model_ema.aweight", 2),
        ]);
        let p = prune_plan(&s, EmaMode::EmaOnly).unwrap();
        assert_eq!(p.tensors[0].source, "model_ema.aweight");
    }
}

//! How a hypernetwork file describes its modules: the metadata A1111 writes beside the
//! weights (`layer_structure`, `activation_func`, `is_layer_norm`, `activate_output`, the
//! dropout settings) and the sequence of layers it implies.
//!
//! A1111 builds each module as a `torch.nn.Sequential` in which every element takes an
//! index, parameter-free ones included: for each step `i` of `layer_structure` a Linear
//! (`int(width·m_i) → int(width·m_{i+1})`), then the activation (none for `linear`/`None`,
//! and none after the last Linear unless `activate_output`), then a LayerNorm if
//! `is_layer_norm`, then a Dropout where the dropout structure is non-zero. So the tensor
//! names `linear.N.weight` count activations and dropouts too, and must be derived exactly
//! this way. NovelAI files carry no metadata and are the defaults: `[1, 2, 1]`, no
//! activation, no layer norm, no dropout.

use crate::activation::ActivationKind;
use easel_core::{Error, Result};
use std::collections::BTreeMap;

/// Most Linear layers a module may have (A1111's UI offers a handful; 1, 2, 1 is usual).
pub const MAX_LAYERS: usize = 32;
/// Largest width multiplier in `layer_structure` (A1111's UI offers up to 4).
pub const MAX_WIDTH_MULTIPLIER: f64 = 64.0;

/// The module description read from a file's metadata, with A1111's defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleStructure {
    /// Width multipliers, first and last 1 (`[1, 2, 1]` when absent).
    pub layer_structure: Vec<f64>,
    /// `activation_func` as written (`None` when absent or null).
    pub activation_func: Option<String>,
    pub activation: ActivationKind,
    /// `is_layer_norm`: a LayerNorm after every Linear.
    pub layer_norm: bool,
    /// `activate_output`: the activation also follows the last Linear (default true).
    pub activate_output: bool,
    /// Dropout probability after each layer (`dropout_structure`, or derived from
    /// `use_dropout`/`last_layer_dropout`). Inert at inference, but a dropout takes an index.
    pub dropout: Vec<f64>,
}

/// One element of a module's sequence, with the index that names its tensors.
#[derive(Clone, Debug, PartialEq)]
pub enum PlannedLayer {
    Linear {
        index: usize,
        in_dim: usize,
        out_dim: usize,
    },
    /// A parameter-free activation, or PReLU (whose slope is `linear.{index}.weight`).
    Activation {
        index: usize,
    },
    LayerNorm {
        index: usize,
        dim: usize,
    },
}

impl ModuleStructure {
    /// Reads the metadata text of a flattened checkpoint (see
    /// `easel_core::formats::flatten`: strings as they are, other values as JSON-like
    /// text), applying A1111's defaults for absent entries.
    pub fn from_metadata(meta: &BTreeMap<String, String>, file: &str) -> Result<Self> {
        let layer_structure = match meta_value(meta, "layer_structure") {
            None => vec![1.0, 2.0, 1.0],
            Some(text) => parse_number_list(text)
                .ok_or_else(|| bad(file, "layer_structure", text, "a list of numbers"))?,
        };
        if layer_structure.len() > MAX_LAYERS + 1
            || layer_structure
                .iter()
                .any(|m| m.is_finite() && *m > MAX_WIDTH_MULTIPLIER)
        {
            return Err(Error::format(
                file,
                format!(
                    "hypernetwork layer_structure has {} entries (at most {}) or a multiplier above {MAX_WIDTH_MULTIPLIER}: \
                     {:?}",
                    layer_structure.len(),
                    MAX_LAYERS + 1,
                    &layer_structure[..layer_structure.len().min(8)]
                ),
            ));
        }
        if layer_structure.len() < 2
            || layer_structure[0] != 1.0
            || *layer_structure.last().unwrap_or(&0.0) != 1.0
            || layer_structure.iter().any(|m| !m.is_finite() || *m <= 0.0)
        {
            return Err(Error::format(
                file,
                format!(
                    "hypernetwork layer_structure {layer_structure:?} must start and end with 1 and hold positive numbers"
                ),
            ));
        }
        let activation_func = meta_value(meta, "activation_func").map(str::to_string);
        let activation = ActivationKind::parse(activation_func.as_deref(), file)?;
        let layer_norm = parse_flag(meta, "is_layer_norm", false, file)?;
        let activate_output = parse_flag(meta, "activate_output", true, file)?;
        let dropout = match meta_value(meta, "dropout_structure") {
            Some(text) => parse_number_list(text)
                .ok_or_else(|| bad(file, "dropout_structure", text, "a list of numbers"))?,
            None => {
                let use_dropout = parse_flag(meta, "use_dropout", false, file)?;
                let last = parse_flag(meta, "last_layer_dropout", false, file)?;
                default_dropout(layer_structure.len(), use_dropout, last)
            }
        };
        if dropout.len() < layer_structure.len() {
            return Err(Error::format(
                file,
                format!(
                    "hypernetwork dropout_structure {dropout:?} is shorter than layer_structure {layer_structure:?}"
                ),
            ));
        }
        Ok(Self {
            layer_structure,
            activation_func,
            activation,
            layer_norm,
            activate_output,
            dropout,
        })
    }

    /// The sequence of layers of the module for `width`, indexed as A1111's Sequential.
    pub fn plan(&self, width: usize) -> Vec<PlannedLayer> {
        let dims: Vec<usize> = self
            .layer_structure
            .iter()
            // Python's int() truncates toward zero.
            .map(|m| (width as f64 * m) as usize)
            .collect();
        let steps = dims.len() - 1;
        let mut out = Vec::new();
        let mut index = 0;
        for i in 0..steps {
            out.push(PlannedLayer::Linear {
                index,
                in_dim: dims[i],
                out_dim: dims[i + 1],
            });
            index += 1;
            let last = i + 1 == steps;
            if self.activation != ActivationKind::None && (self.activate_output || !last) {
                out.push(PlannedLayer::Activation { index });
                index += 1;
            }
            if self.layer_norm {
                out.push(PlannedLayer::LayerNorm {
                    index,
                    dim: dims[i + 1],
                });
                index += 1;
            }
            if self.dropout[i + 1] > 0.0 {
                index += 1;
            }
        }
        out
    }
}

/// A1111's dropout structure for files that predate `dropout_structure`: 0.3 after every
/// hidden layer but the last, which gets it only with `last_layer_dropout`.
fn default_dropout(len: usize, use_dropout: bool, last_layer_dropout: bool) -> Vec<f64> {
    if !use_dropout {
        return vec![0.0; len];
    }
    let mut d = vec![0.0];
    d.extend(std::iter::repeat_n(0.3, len.saturating_sub(3)));
    d.push(if last_layer_dropout { 0.3 } else { 0.0 });
    d.push(0.0);
    d
}

/// A metadata entry, `None` when absent or Python `None`.
fn meta_value<'a>(meta: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    meta.get(key).map(String::as_str).filter(|v| *v != "null")
}

fn bad(file: &str, key: &str, text: &str, want: &str) -> Error {
    Error::format(
        file,
        format!("hypernetwork metadata `{key}` is `{text}`, expected {want}"),
    )
}

fn parse_flag(
    meta: &BTreeMap<String, String>,
    key: &str,
    default: bool,
    file: &str,
) -> Result<bool> {
    match meta_value(meta, key) {
        None => Ok(default),
        Some("true" | "True" | "1") => Ok(true),
        Some("false" | "False" | "0") => Ok(false),
        Some(other) => Err(bad(file, key, other, "true or false")),
    }
}

/// `[1, 2.0, 1]` → numbers (the JSON-like text the checkpoint flattener writes).
fn parse_number_list(text: &str) -> Option<Vec<f64>> {
    let inner = text.trim().strip_prefix('[')?.strip_suffix(']')?;
    if inner.trim().is_empty() {
        return Some(Vec::new());
    }
    inner
        .split(',')
        .map(|s| match s.trim() {
            "true" => Some(1.0),
            "false" => Some(0.0),
            n => n.parse::<f64>().ok(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Activation;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn novelai_defaults_are_two_linears() {
        let s = ModuleStructure::from_metadata(&BTreeMap::new(), "f").unwrap();
        assert_eq!(
            s.plan(32),
            vec![
                PlannedLayer::Linear {
                    index: 0,
                    in_dim: 32,
                    out_dim: 64
                },
                PlannedLayer::Linear {
                    index: 1,
                    in_dim: 64,
                    out_dim: 32
                },
            ]
        );
    }

    #[test]
    fn indices_count_activations_norms_and_dropouts() {
        let s = ModuleStructure::from_metadata(
            &meta(&[
                ("layer_structure", "[1, 2, 1]"),
                ("activation_func", "relu"),
                ("is_layer_norm", "true"),
                ("activate_output", "false"),
                ("dropout_structure", "[0, 0.3, 0]"),
            ]),
            "f",
        )
        .unwrap();
        assert_eq!(s.activation, ActivationKind::Fixed(Activation::Relu));
        // Linear 0, ReLU 1, LayerNorm 2, Dropout 3, Linear 4, LayerNorm 5.
        assert_eq!(
            s.plan(8),
            vec![
                PlannedLayer::Linear {
                    index: 0,
                    in_dim: 8,
                    out_dim: 16
                },
                PlannedLayer::Activation { index: 1 },
                PlannedLayer::LayerNorm { index: 2, dim: 16 },
                PlannedLayer::Linear {
                    index: 4,
                    in_dim: 16,
                    out_dim: 8
                },
                PlannedLayer::LayerNorm { index: 5, dim: 8 },
            ]
        );
    }

    #[test]
    fn old_files_derive_dropout_and_activate_output() {
        let s = ModuleStructure::from_metadata(
            &meta(&[
                ("layer_structure", "[1, 1.5, 2, 1]"),
                ("activation_func", "swish"),
                ("use_dropout", "true"),
                ("last_layer_dropout", "false"),
            ]),
            "f",
        )
        .unwrap();
        assert_eq!(s.dropout, vec![0.0, 0.3, 0.0, 0.0]);
        let plan = s.plan(10);
        let indices: Vec<usize> = plan
            .iter()
            .map(|l| match l {
                PlannedLayer::Linear { index, .. }
                | PlannedLayer::Activation { index }
                | PlannedLayer::LayerNorm { index, .. } => *index,
            })
            .collect();
        // L0 A1 D2 L3 A4 L5 A6 (activate_output defaults to true).
        assert_eq!(indices, vec![0, 1, 3, 4, 5, 6]);
        assert_eq!(
            plan[0],
            PlannedLayer::Linear {
                index: 0,
                in_dim: 10,
                out_dim: 15
            }
        );
    }

    #[test]
    fn bad_metadata_is_named() {
        let err = ModuleStructure::from_metadata(&meta(&[("layer_structure", "[2, 1]")]), "x.pt")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.pt") && err.contains("layer_structure"),
            "{err}"
        );
        let err = ModuleStructure::from_metadata(&meta(&[("is_layer_norm", "maybe")]), "x.pt")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is_layer_norm"), "{err}");
    }
}

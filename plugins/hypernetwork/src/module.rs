//! One hypernetwork module (the key-path or the value-path MLP for one width) with its
//! weights in host memory, read from a file by the names its [`ModuleStructure`] implies.

use crate::activation::{Activation, ActivationKind};
use crate::structure::{ModuleStructure, PlannedLayer};
use easel_core::formats::TensorStore;
use easel_core::{Error, Result};
use std::collections::BTreeSet;

/// One layer with host weights (torch layout: Linear weight `[out, in]`).
#[derive(Clone, Debug, PartialEq)]
pub enum Layer {
    Linear {
        weight: Vec<f32>,
        bias: Vec<f32>,
        in_dim: usize,
        out_dim: usize,
    },
    Activation(Activation),
    /// torch's LayerNorm over the last dim, eps 1e-5.
    LayerNorm {
        weight: Vec<f32>,
        bias: Vec<f32>,
    },
}

/// `f(x) = x + mlp(x) · strength` for contexts of one width.
#[derive(Clone, Debug, PartialEq)]
pub struct HypernetworkModule {
    pub width: usize,
    pub layers: Vec<Layer>,
}

/// torch's LayerNorm default epsilon.
pub const LAYER_NORM_EPS: f32 = 1e-5;

impl HypernetworkModule {
    /// Reads the module stored under `prefix` (e.g. `320.0`). NovelAI's `linear1`/`linear2`
    /// names stand for `linear.0`/`linear.1`, as A1111 renames them on load. Every tensor
    /// under the prefix must be used: a tensor the metadata does not account for means
    /// the metadata is wrong, and guessing would compute something else.
    pub fn read(
        store: &TensorStore,
        prefix: &str,
        width: usize,
        structure: &ModuleStructure,
    ) -> Result<Self> {
        let legacy = store.contains(&format!("{prefix}.linear1.weight"));
        let name = |index: usize, param: &str| -> String {
            match (legacy, index) {
                (true, 0) => format!("{prefix}.linear1.{param}"),
                (true, 1) => format!("{prefix}.linear2.{param}"),
                _ => format!("{prefix}.linear.{index}.{param}"),
            }
        };
        let mut used = BTreeSet::new();
        let mut read = |key: String, shape: &[usize]| -> Result<Vec<f32>> {
            let info = store.info(&key)?;
            if info.shape != shape {
                return Err(Error::Shape {
                    file: store.name().to_string(),
                    key,
                    got: info.shape.clone(),
                    expected: shape.to_vec(),
                });
            }
            let data = store.read_f32(&key)?;
            used.insert(key);
            Ok(data)
        };
        let mut layers = Vec::new();
        for planned in structure.plan(width) {
            layers.push(match planned {
                PlannedLayer::Linear {
                    index,
                    in_dim,
                    out_dim,
                } => Layer::Linear {
                    weight: read(name(index, "weight"), &[out_dim, in_dim])?,
                    bias: read(name(index, "bias"), &[out_dim])?,
                    in_dim,
                    out_dim,
                },
                PlannedLayer::Activation { index } => match structure.activation {
                    ActivationKind::Fixed(a) => Layer::Activation(a),
                    ActivationKind::Prelu => {
                        Layer::Activation(Activation::Prelu(read(name(index, "weight"), &[1])?[0]))
                    }
                    // `plan` only places activations when there is one.
                    ActivationKind::None => Layer::Activation(Activation::Identity),
                },
                PlannedLayer::LayerNorm { index, dim } => Layer::LayerNorm {
                    weight: read(name(index, "weight"), &[dim])?,
                    bias: read(name(index, "bias"), &[dim])?,
                },
            });
        }
        let dotted = format!("{prefix}.");
        if let Some(extra) = store
            .keys()
            .find(|k| k.starts_with(&dotted) && !used.contains(*k))
        {
            return Err(Error::format(
                store.name(),
                format!(
                    "hypernetwork tensor `{extra}` is not part of the module its metadata describes \
                     (layer_structure {:?}, activation_func {:?}, is_layer_norm {})",
                    structure.layer_structure, structure.activation_func, structure.layer_norm
                ),
            ));
        }
        Ok(Self { width, layers })
    }

    /// The module on host data `x: [.., width]` (f32, for tests and reference use).
    pub fn forward_host(&self, x: &[f32], strength: f32) -> Vec<f32> {
        let mut h = x.to_vec();
        for layer in &self.layers {
            h = match layer {
                Layer::Linear {
                    weight,
                    bias,
                    in_dim,
                    out_dim,
                } => h
                    .chunks_exact(*in_dim)
                    .flat_map(|row| {
                        (0..*out_dim).map(move |o| {
                            let w = &weight[o * in_dim..(o + 1) * in_dim];
                            bias[o] + row.iter().zip(w).map(|(a, b)| a * b).sum::<f32>()
                        })
                    })
                    .collect(),
                Layer::Activation(a) => h.iter().map(|&v| a.apply_scalar(v)).collect(),
                Layer::LayerNorm { weight, bias } => {
                    let n = weight.len();
                    h.chunks_exact(n)
                        .flat_map(|row| {
                            let mean = row.iter().sum::<f32>() / n as f32;
                            let var =
                                row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n as f32;
                            let inv = 1.0 / (var + LAYER_NORM_EPS).sqrt();
                            row.iter()
                                .enumerate()
                                .map(move |(i, v)| (v - mean) * inv * weight[i] + bias[i])
                                .collect::<Vec<_>>()
                        })
                        .collect()
                }
            };
        }
        x.iter().zip(&h).map(|(a, d)| a + d * strength).collect()
    }
}

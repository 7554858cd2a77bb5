//! Hypernetworks on a backend: weights uploaded once ([`LoadedHypernetwork`]), and a chain
//! of them with strengths ([`HypernetworkStack`]) that is the UNet's [`AttentionHook`].
//!
//! A1111 applies the loaded hypernetworks in every attention layer (self-attention too, where
//! the context is the layer's own input): the key-path context goes through each
//! hypernetwork's key module for the context's width in turn, the value-path context
//! through the value modules, `x + mlp(x) · strength` each time; a hypernetwork without a
//! module for that width is skipped.

use crate::activation::Activation;
use crate::hypernetwork::Hypernetwork;
use crate::module::{HypernetworkModule, Layer, LAYER_NORM_EPS};
use easel_core::nn::AttentionHook;
use easel_core::{Backend, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

enum DeviceLayer<B: Backend> {
    Linear { weight: B::Tensor, bias: B::Tensor },
    Activation(Activation),
    LayerNorm { weight: B::Tensor, bias: B::Tensor },
}

/// One module with its weights on the device.
pub struct DeviceModule<B: Backend> {
    layers: Vec<DeviceLayer<B>>,
}

impl<B: Backend> DeviceModule<B> {
    fn upload(b: &B, m: &HypernetworkModule) -> Result<Self> {
        let layers = m
            .layers
            .iter()
            .map(|layer| {
                Ok(match layer {
                    Layer::Linear {
                        weight,
                        bias,
                        in_dim,
                        out_dim,
                    } => DeviceLayer::Linear {
                        weight: b.upload_weight(weight, &[*out_dim, *in_dim])?,
                        bias: b.upload_weight(bias, &[*out_dim])?,
                    },
                    Layer::Activation(a) => DeviceLayer::Activation(*a),
                    Layer::LayerNorm { weight, bias } => DeviceLayer::LayerNorm {
                        weight: b.upload_weight(weight, &[weight.len()])?,
                        bias: b.upload_weight(bias, &[bias.len()])?,
                    },
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// `x + mlp(x) · strength` for `x: [N, L, width]`.
    pub fn forward(&self, b: &B, x: &B::Tensor, strength: f32) -> Result<B::Tensor> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = match layer {
                DeviceLayer::Linear { weight, bias } => b.linear(&h, weight, Some(bias))?,
                DeviceLayer::Activation(a) => a.apply(b, &h)?,
                DeviceLayer::LayerNorm { weight, bias } => {
                    b.layer_norm(&h, weight, bias, LAYER_NORM_EPS)?
                }
            };
        }
        b.add(x, &b.scale(&h, strength)?)
    }
}

/// A hypernetwork whose weights live on the backend. Load once, then use it in any number
/// of [`HypernetworkStack`]s with different strengths.
pub struct LoadedHypernetwork<B: Backend> {
    name: String,
    modules: BTreeMap<usize, (DeviceModule<B>, DeviceModule<B>)>,
}

impl<B: Backend> LoadedHypernetwork<B> {
    pub fn upload(b: &B, hn: &Hypernetwork) -> Result<Self> {
        let modules = hn
            .modules
            .iter()
            .map(|(&w, pair)| {
                Ok((
                    w,
                    (
                        DeviceModule::upload(b, &pair.key)?,
                        DeviceModule::upload(b, &pair.value)?,
                    ),
                ))
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            name: hn.name.clone(),
            modules,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The (key, value) modules for contexts of `width`, if the file has them.
    pub fn modules(&self, width: usize) -> Option<(&DeviceModule<B>, &DeviceModule<B>)> {
        self.modules.get(&width).map(|(k, v)| (k, v))
    }
}

/// Several hypernetworks with their strengths, applied in order: the [`AttentionHook`] to
/// pass to the UNet (`txt2img(.., vec![&stack], ..)`).
pub struct HypernetworkStack<B: Backend> {
    entries: Vec<(Arc<LoadedHypernetwork<B>>, f32)>,
}

impl<B: Backend> HypernetworkStack<B> {
    pub fn new(entries: Vec<(Arc<LoadedHypernetwork<B>>, f32)>) -> Self {
        Self { entries }
    }

    pub fn entries(&self) -> &[(Arc<LoadedHypernetwork<B>>, f32)] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key-path and value-path contexts for `ctx: [N, L, width]`, `None` when no
    /// hypernetwork of the stack covers `width`.
    pub fn apply(
        &self,
        b: &B,
        ctx: &B::Tensor,
        width: usize,
    ) -> Result<Option<(B::Tensor, B::Tensor)>> {
        let mut paths: Option<(B::Tensor, B::Tensor)> = None;
        for (hn, strength) in &self.entries {
            let Some((key_module, value_module)) = hn.modules(width) else {
                continue;
            };
            let (k_in, v_in) = match &paths {
                Some((k, v)) => (k, v),
                None => (ctx, ctx),
            };
            let k = key_module.forward(b, k_in, *strength)?;
            let v = value_module.forward(b, v_in, *strength)?;
            paths = Some((k, v));
        }
        Ok(paths)
    }
}

impl<B: Backend> AttentionHook<B> for HypernetworkStack<B> {
    fn transform(
        &self,
        b: &B,
        ctx: &B::Tensor,
        width: usize,
    ) -> Result<Option<(B::Tensor, B::Tensor)>> {
        self.apply(b, ctx, width)
    }
}

//! The CLIP text transformer (HF `CLIPTextModel` names under `text_model.`): token and
//! position embeddings, pre-norm encoder layers with causal self-attention and quick-GELU
//! MLPs, and the final layer norm — with A1111's "clip skip" choice of layer.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::nn::config::ClipConfig;
use crate::nn::layers::{LayerNorm, Linear};
use crate::nn::loader::Weights;

struct EncoderLayer<B: Backend> {
    layer_norm1: LayerNorm<B>,
    q_proj: Linear<B>,
    k_proj: Linear<B>,
    v_proj: Linear<B>,
    out_proj: Linear<B>,
    layer_norm2: LayerNorm<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    heads: usize,
}

impl<B: Backend> EncoderLayer<B> {
    fn load(b: &B, w: &Weights, cfg: &ClipConfig) -> Result<Self> {
        let h = cfg.hidden;
        let a = w.pp("self_attn");
        Ok(Self {
            layer_norm1: LayerNorm::load(b, &w.pp("layer_norm1"), h)?,
            q_proj: Linear::load(b, &a.pp("q_proj"), h, h)?,
            k_proj: Linear::load(b, &a.pp("k_proj"), h, h)?,
            v_proj: Linear::load(b, &a.pp("v_proj"), h, h)?,
            out_proj: Linear::load(b, &a.pp("out_proj"), h, h)?,
            layer_norm2: LayerNorm::load(b, &w.pp("layer_norm2"), h)?,
            fc1: Linear::load(b, &w.pp("mlp.fc1"), h, cfg.intermediate)?,
            fc2: Linear::load(b, &w.pp("mlp.fc2"), cfg.intermediate, h)?,
            heads: cfg.heads,
        })
    }

    fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let t = self.layer_norm1.forward(b, x)?;
        let q = self.q_proj.forward(b, &t)?;
        let k = self.k_proj.forward(b, &t)?;
        let v = self.v_proj.forward(b, &t)?;
        let a = b.attention(&q, &k, &v, self.heads, true)?;
        let x = b.add(x, &self.out_proj.forward(b, &a)?)?;
        let t = self.layer_norm2.forward(b, &x)?;
        let t = b.quick_gelu(&self.fc1.forward(b, &t)?)?;
        b.add(&x, &self.fc2.forward(b, &t)?)
    }
}

pub struct ClipTextEncoder<B: Backend> {
    cfg: ClipConfig,
    token_embedding: B::Tensor,
    position_embedding: B::Tensor,
    layers: Vec<EncoderLayer<B>>,
    final_layer_norm: LayerNorm<B>,
}

impl<B: Backend> ClipTextEncoder<B> {
    /// Build from weights scoped to the text model (`…transformer.text_model`). The stored
    /// `embeddings.position_ids` buffer is ignored: positions are always 0, 1, 2, ….
    pub fn load(b: &B, w: &Weights, cfg: &ClipConfig) -> Result<Self> {
        if cfg.heads == 0 || !cfg.hidden.is_multiple_of(cfg.heads) {
            return Err(Error::Invalid(format!(
                "CLIP config: hidden {} does not split into {} heads",
                cfg.hidden, cfg.heads
            )));
        }
        let e = w.pp("embeddings");
        let layers = (0..cfg.layers)
            .map(|i| EncoderLayer::load(b, &w.pp(format!("encoder.layers.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            cfg: cfg.clone(),
            token_embedding: e.load(b, "token_embedding.weight", &[cfg.vocab_size, cfg.hidden])?,
            position_embedding: e.load(
                b,
                "position_embedding.weight",
                &[cfg.max_positions, cfg.hidden],
            )?,
            layers,
            final_layer_norm: LayerNorm::load(b, &w.pp("final_layer_norm"), cfg.hidden)?,
        })
    }

    pub fn config(&self) -> &ClipConfig {
        &self.cfg
    }

    /// Hidden states `[1, tokens.len(), hidden]` of one token sequence (77 ids with BOS,
    /// EOS and padding, as A1111 builds a chunk). `clip_skip` 1 (or 0) is the last layer's
    /// output; `n > 1` is `hidden_states[-n]` (the output of layer `layers - n + 1`,
    /// counting the embeddings as state 0); either way `final_layer_norm` is applied.
    pub fn forward(&self, b: &B, tokens: &[u32], clip_skip: usize) -> Result<B::Tensor> {
        self.forward_with_replacements(b, tokens, &[], clip_skip)
    }

    /// [`Self::forward`] with some token embeddings replaced before the position embeddings
    /// are added (A1111's `EmbeddingsWithFixes`, how textual-inversion vectors enter):
    /// `(position, rows)` puts the `hidden`-wide vectors of `rows` at `position`,
    /// `position + 1`, …, cut at the end of the sequence; later entries overwrite earlier ones.
    pub fn forward_with_replacements(
        &self,
        b: &B,
        tokens: &[u32],
        replacements: &[(usize, &[f32])],
        clip_skip: usize,
    ) -> Result<B::Tensor> {
        let len = tokens.len();
        if len == 0 || len > self.cfg.max_positions {
            return Err(Error::Invalid(format!(
                "CLIP takes 1 to {} tokens, got {len}",
                self.cfg.max_positions
            )));
        }
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= self.cfg.vocab_size) {
            return Err(Error::Invalid(format!(
                "token id {bad} is outside the CLIP vocabulary of {}",
                self.cfg.vocab_size
            )));
        }
        let skip = clip_skip.max(1);
        if skip > self.layers.len() + 1 {
            return Err(Error::Invalid(format!(
                "clip skip {clip_skip} is more than the {} layers of the text encoder (+1)",
                self.layers.len()
            )));
        }
        let positions: Vec<u32> = (0..len as u32).collect();
        let mut tok = b.embedding(&self.token_embedding, tokens)?;
        let hidden = self.cfg.hidden;
        for &(position, rows) in replacements {
            if rows.is_empty() || !rows.len().is_multiple_of(hidden) {
                return Err(Error::Invalid(format!(
                    "embedding vectors of {} floats do not make rows of the text encoder's width {hidden}",
                    rows.len()
                )));
            }
            if position >= len {
                continue;
            }
            let n = (rows.len() / hidden).min(len - position);
            let vectors = b.upload(&rows[..n * hidden], &[n, hidden])?;
            let mut parts = Vec::with_capacity(3);
            let head = (position > 0)
                .then(|| b.narrow(&tok, 0, 0, position))
                .transpose()?;
            let rest = len - position - n;
            let tail = (rest > 0)
                .then(|| b.narrow(&tok, 0, position + n, rest))
                .transpose()?;
            parts.extend(head.as_ref());
            parts.push(&vectors);
            parts.extend(tail.as_ref());
            tok = b.concat(&parts, 0)?;
        }
        let pos = b.embedding(&self.position_embedding, &positions)?;
        let mut x = b.reshape(&b.add(&tok, &pos)?, &[1, len, self.cfg.hidden])?;
        for layer in &self.layers[..self.layers.len() + 1 - skip] {
            x = layer.forward(b, &x)?;
        }
        self.final_layer_norm.forward(b, &x)
    }
}

//! LDM's `SpatialTransformer` and its parts: cross-attention (with [`AttentionHook`]s on
//! the key/value contexts), the GEGLU feed-forward and `BasicTransformerBlock`.
//!
//! `proj_in`/`proj_out` are applied as linear maps on `[N, H·W, C]` tokens: a 1×1 conv
//! (SD1.x, 4-D weights) and a linear layer (SD2.x) are the same map per pixel, so one
//! code path serves both layouts.

use crate::backend::Backend;
use crate::error::Result;
use crate::nn::hook::AttentionHook;
use crate::nn::layers::{GroupNorm, LayerNorm, Linear};
use crate::nn::loader::Weights;

/// Multi-head attention of LDM's `CrossAttention`: `to_q/k/v` without bias, `to_out.0`
/// with bias.
pub struct CrossAttention<B: Backend> {
    to_q: Linear<B>,
    to_k: Linear<B>,
    to_v: Linear<B>,
    to_out: Linear<B>,
    heads: usize,
}

impl<B: Backend> CrossAttention<B> {
    /// `query_dim` is the layer's width, `context_dim` the width of what keys/values are
    /// computed from (equal to `query_dim` for self-attention), `inner` = heads · head width.
    pub fn load(
        b: &B,
        w: &Weights,
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        inner: usize,
    ) -> Result<Self> {
        Ok(Self {
            to_q: Linear::load_no_bias(b, &w.pp("to_q"), query_dim, inner)?,
            to_k: Linear::load_no_bias(b, &w.pp("to_k"), context_dim, inner)?,
            to_v: Linear::load_no_bias(b, &w.pp("to_v"), context_dim, inner)?,
            to_out: Linear::load(b, &w.pp("to_out.0"), inner, query_dim)?,
            heads,
        })
    }

    /// `x: [N, L, query_dim]`; `context: [N, Lc, context_dim]`, or `None` for
    /// self-attention. Hooks rewrite the key and value contexts in order, as A1111 applies
    /// hypernetworks: the key chain and the value chain are threaded separately.
    pub fn forward(
        &self,
        b: &B,
        x: &B::Tensor,
        context: Option<&B::Tensor>,
        hooks: &[&dyn AttentionHook<B>],
    ) -> Result<B::Tensor> {
        let ctx = context.unwrap_or(x);
        let paths = apply_hooks(b, ctx, hooks)?;
        let q = self.to_q.forward(b, x)?;
        let k = self.to_k.forward(b, paths.key().unwrap_or(ctx))?;
        let v = self.to_v.forward(b, paths.value().unwrap_or(ctx))?;
        let out = b.attention(&q, &k, &v, self.heads, false)?;
        self.to_out.forward(b, &out)
    }
}

/// The key and value contexts while hooks are applied: one tensor until a hook splits
/// them (`None` = the layer's original context).
enum HookPaths<T> {
    Shared(Option<T>),
    Split { key: T, value: T },
}

/// Threads `ctx` through the hooks and returns the final key and value contexts. While both paths hold the same tensor one call serves
/// both; once they differ each path goes through the next hook on its own and only that
/// path's output is kept (A1111 `apply_hypernetworks`).
fn apply_hooks<B: Backend>(
    b: &B,
    ctx: &B::Tensor,
    hooks: &[&dyn AttentionHook<B>],
) -> Result<HookPaths<B::Tensor>> {
    if hooks.is_empty() {
        return Ok(HookPaths::Shared(None));
    }
    let width = *b.shape(ctx).last().unwrap_or(&0);
    let mut paths = HookPaths::Shared(None);
    for hook in hooks {
        paths = match paths {
            HookPaths::Shared(current) => {
                match hook.transform(b, current.as_ref().unwrap_or(ctx), width)? {
                    Some((key, value)) => HookPaths::Split { key, value },
                    None => HookPaths::Shared(current),
                }
            }
            HookPaths::Split { key, value } => {
                let key = match hook.transform(b, &key, width)? {
                    Some((k, _)) => k,
                    None => key,
                };
                let value = match hook.transform(b, &value, width)? {
                    Some((_, v)) => v,
                    None => value,
                };
                HookPaths::Split { key, value }
            }
        };
    }
    Ok(paths)
}

impl<T> HookPaths<T> {
    /// The key-path context, `None` when no hook changed it.
    fn key(&self) -> Option<&T> {
        match self {
            HookPaths::Shared(t) => t.as_ref(),
            HookPaths::Split { key, .. } => Some(key),
        }
    }
    /// The value-path context, `None` when no hook changed it.
    fn value(&self) -> Option<&T> {
        match self {
            HookPaths::Shared(t) => t.as_ref(),
            HookPaths::Split { value, .. } => Some(value),
        }
    }
}

/// `ff.net.0.proj` (to 2 × inner for GEGLU) then `ff.net.2`; inner = 4 × width.
pub struct FeedForward<B: Backend> {
    proj_in: Linear<B>,
    proj_out: Linear<B>,
}

impl<B: Backend> FeedForward<B> {
    pub fn load(b: &B, w: &Weights, dim: usize) -> Result<Self> {
        let inner = 4 * dim;
        Ok(Self {
            proj_in: Linear::load(b, &w.pp("net.0.proj"), dim, 2 * inner)?,
            proj_out: Linear::load(b, &w.pp("net.2"), inner, dim)?,
        })
    }
    pub fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let (proj_in, proj_out) = (&self.proj_in, &self.proj_out);
        b.feed_forward_geglu(
            x,
            proj_in.weight(),
            proj_in.bias(),
            proj_out.weight(),
            proj_out.bias(),
        )
    }
}

/// Self-attention, cross-attention and feed-forward, each pre-normed and residual.
pub struct BasicTransformerBlock<B: Backend> {
    norm1: LayerNorm<B>,
    attn1: CrossAttention<B>,
    norm2: LayerNorm<B>,
    attn2: CrossAttention<B>,
    norm3: LayerNorm<B>,
    ff: FeedForward<B>,
}

impl<B: Backend> BasicTransformerBlock<B> {
    pub fn load(b: &B, w: &Weights, dim: usize, heads: usize, context_dim: usize) -> Result<Self> {
        Ok(Self {
            norm1: LayerNorm::load(b, &w.pp("norm1"), dim)?,
            attn1: CrossAttention::load(b, &w.pp("attn1"), dim, dim, heads, dim)?,
            norm2: LayerNorm::load(b, &w.pp("norm2"), dim)?,
            attn2: CrossAttention::load(b, &w.pp("attn2"), dim, context_dim, heads, dim)?,
            norm3: LayerNorm::load(b, &w.pp("norm3"), dim)?,
            ff: FeedForward::load(b, &w.pp("ff"), dim)?,
        })
    }

    pub fn forward(
        &self,
        b: &B,
        x: &B::Tensor,
        context: &B::Tensor,
        hooks: &[&dyn AttentionHook<B>],
    ) -> Result<B::Tensor> {
        let h = self
            .attn1
            .forward(b, &self.norm1.forward(b, x)?, None, hooks)?;
        let x = b.add(x, &h)?;
        let h = self
            .attn2
            .forward(b, &self.norm2.forward(b, &x)?, Some(context), hooks)?;
        let x = b.add(&x, &h)?;
        let h = self.ff.forward(b, &self.norm3.forward(b, &x)?)?;
        b.add(&x, &h)
    }
}

/// GroupNorm (eps 1e-6) → `proj_in` → transformer blocks on `[N, H·W, C]` → `proj_out`,
/// plus the input.
pub struct SpatialTransformer<B: Backend> {
    norm: GroupNorm<B>,
    proj_in: Linear<B>,
    blocks: Vec<BasicTransformerBlock<B>>,
    proj_out: Linear<B>,
}

impl<B: Backend> SpatialTransformer<B> {
    /// `channels` wide, `heads` heads of `channels / heads`, `depth` blocks.
    pub fn load(
        b: &B,
        w: &Weights,
        channels: usize,
        heads: usize,
        depth: usize,
        context_dim: usize,
    ) -> Result<Self> {
        let blocks = (0..depth)
            .map(|i| {
                BasicTransformerBlock::load(
                    b,
                    &w.pp(format!("transformer_blocks.{i}")),
                    channels,
                    heads,
                    context_dim,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            norm: GroupNorm::load(b, &w.pp("norm"), channels, 1e-6)?,
            proj_in: Linear::load(b, &w.pp("proj_in"), channels, channels)?,
            blocks,
            proj_out: Linear::load(b, &w.pp("proj_out"), channels, channels)?,
        })
    }

    /// `x: [N, C, H, W]`, `context: [N, L, context_dim]`.
    pub fn forward(
        &self,
        b: &B,
        x: &B::Tensor,
        context: &B::Tensor,
        hooks: &[&dyn AttentionHook<B>],
    ) -> Result<B::Tensor> {
        let shape = b.shape(x);
        let (h, w) = (shape[2], shape[3]);
        let t = b.nchw_to_nlc(&self.norm.forward(b, x)?)?;
        let mut t = self.proj_in.forward(b, &t)?;
        for block in &self.blocks {
            t = block.forward(b, &t, context, hooks)?;
        }
        let t = self.proj_out.forward(b, &t)?;
        b.add(x, &b.nlc_to_nchw(&t, h, w)?)
    }
}

//! `AttentionHook`: a plugin that rewrites the context entering the key and value
//! projections of a UNet attention layer (hypernetworks are the first such plugin).

use crate::backend::Backend;
use crate::error::Result;

pub trait AttentionHook<B: Backend> {
    /// `ctx` is `[N, L, width]` (for self-attention it is the layer's own input). Return
    /// `None` to leave this layer alone, or the (key-path, value-path) contexts.
    fn transform(
        &self,
        b: &B,
        ctx: &B::Tensor,
        width: usize,
    ) -> Result<Option<(B::Tensor, B::Tensor)>>;
}

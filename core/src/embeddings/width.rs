//! The width embeddings must have for a checkpoint, read from the shape of its CLIP token
//! embedding table alone (A1111 asks the loaded text encoder; listing and tokenizing should
//! not need a whole model load).

use crate::formats::open_tensor_store;
use std::path::Path;

/// Where SD1 checkpoints keep the CLIP token embedding table.
const TOKEN_EMBEDDING_KEY: &str =
    "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight";

/// SD1's CLIP width.
pub const SD1_WIDTH: usize = 768;

/// The hidden size of `checkpoint`'s text encoder, or `None` when the file cannot be read or
/// has no SD1 text encoder.
pub fn text_encoder_width(checkpoint: &Path) -> Option<usize> {
    let store = open_tensor_store(checkpoint).ok()?;
    store.get(TOKEN_EMBEDDING_KEY)?.shape.get(1).copied()
}

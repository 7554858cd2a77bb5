//! Prompt language and CLIP tokenization.

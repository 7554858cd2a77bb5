//! Prompt language and CLIP tokenization: emphasis syntax ([`attention`]), CLIP's BPE
//! tokenizer with its vocabulary built in ([`tokenizer`]), and the 77-token chunks the text
//! encoder reads ([`chunks`]).

pub mod attention;
pub mod chunks;
mod clean;
mod html;
mod html_entities;
mod pretokenize;
pub mod tokenizer;
mod unicode_classes;

pub use attention::{parse_attention, parse_prompt_attention, AttentionSegment, AttentionSyntax};
pub use chunks::{
    prompt_chunks, tokenize_prompt, ChunkOptions, PromptChunk, TokenizedPrompt, CHUNK_CONTENT,
    CHUNK_TOKENS,
};
pub use tokenizer::{decode, token_text, tokenize, BOS, COMMA, EOS, VOCAB_SIZE};

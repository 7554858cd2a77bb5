//! Prompt language and CLIP tokenization: emphasis syntax ([`attention`]), CLIP's BPE
//! tokenizer with its vocabulary built in ([`tokenizer`]), and the 77-token chunks the text
//! encoder reads ([`chunks`]).

pub mod attention;
pub mod chunks;
mod clean;
pub mod emphasis;
pub mod extra_networks;
mod ftfy;
mod html;
mod html_entities;
pub mod limits;
pub mod multicond;
mod pretokenize;
pub mod prompt_schedule;
pub mod token_counter;
pub mod tokenizer;
mod unicode_classes;

pub use attention::{parse_attention, parse_prompt_attention, AttentionSegment, AttentionSyntax};
pub use chunks::{
    prompt_chunks, tokenize_prompt, tokenize_prompt_with_embeddings, ChunkOptions, EmbeddingFix,
    PromptChunk, TokenizedPrompt, CHUNK_CONTENT, CHUNK_TOKENS,
};
pub use emphasis::{apply_emphasis, emphasis_infotext, EmphasisMode};
pub use extra_networks::{
    extract_extra_networks, kinds_in_order, parse_extra_networks, ExtraNetworkTag,
};
pub use ftfy::fix_text;
pub use limits::{
    check_prompt_length, MAX_AND_PARTS, MAX_PROMPT_CHARS, MAX_PROMPT_CHUNKS, MAX_PROMPT_NESTING,
};
pub use multicond::{split_and, strip_comments, SubPrompt};
pub use prompt_schedule::{
    check_schedule_nesting, check_schedule_syntax, prompt_schedule, prompt_schedule_with,
    schedule_index, ScheduleOptions, ScheduledPrompt,
};
pub use token_counter::{part_schedules, ui_token_count, PartSchedule, TokenCounter};
pub use tokenizer::{decode, token_text, tokenize, BOS, COMMA, EOS, VOCAB_SIZE};

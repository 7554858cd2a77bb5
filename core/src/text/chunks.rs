//! A prompt as the 77-token chunks the CLIP text encoder reads, following A1111's
//! `tokenize_line`: each emphasis segment is tokenized on its own, tokens are packed 75 to a
//! chunk (plus BOS and EOS), `BREAK` starts a new chunk, and a chunk that fills up shortly
//! after a comma moves the words after that comma to the next chunk so a phrase is not cut
//! in two. Each token carries its emphasis weight; BOS, EOS and padding carry 1.0.
//!
//! With an [`EmbeddingDatabase`], a run of tokens that spells an embedding's name becomes
//! that embedding's vectors (one placeholder token 0 per vector, carrying the run's
//! weight), never split across chunks: when they do not fit, the chunk closes first. As in
//! A1111, the comma backtrack can still move placeholders into the next chunk while their
//! [`EmbeddingFix`] stays with the chunk they were placed in.

use crate::embeddings::{Embedding, EmbeddingDatabase};
use crate::error::{Error, Result};
use std::sync::Arc;

use super::attention::{parse_attention, AttentionSyntax};
use super::tokenizer::{tokenize, BOS, COMMA, EOS};

/// Prompt tokens per chunk (A1111's `chunk_length`).
pub const CHUNK_CONTENT: usize = 75;
/// Tokens per chunk as the encoder sees them: BOS + 75 + EOS.
pub const CHUNK_TOKENS: usize = CHUNK_CONTENT + 2;
/// A1111's default `comma_padding_backtrack`.
pub const DEFAULT_COMMA_BACKTRACK: usize = 20;

/// One encoder input: 77 token ids and the emphasis multiplier of each.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptChunk {
    pub tokens: [u32; CHUNK_TOKENS],
    pub multipliers: [f32; CHUNK_TOKENS],
    /// Embeddings whose vectors replace the token embeddings of this chunk.
    pub fixes: Vec<EmbeddingFix>,
}

/// An embedding placed in a chunk: its vectors replace the token embeddings from
/// `position` on (an index into the 77 tokens, BOS being 0), as many as fit before the
/// chunk's end (A1111's `PromptChunkFix`, whose offset is `position - 1`).
#[derive(Clone, Debug, PartialEq)]
pub struct EmbeddingFix {
    pub position: usize,
    pub embedding: Arc<Embedding>,
}

impl PromptChunk {
    /// The token embeddings that replace the looked-up ones, as `(position, rows)` with
    /// `rows` holding whole vectors, cut where the chunk ends.
    pub fn replacements(&self) -> Vec<(usize, &[f32])> {
        self.fixes
            .iter()
            .map(|f| {
                let e = &f.embedding;
                let n = e.vectors.min(CHUNK_TOKENS.saturating_sub(f.position));
                (f.position, &e.data[..n * e.width])
            })
            .collect()
    }
}

/// How a prompt is turned into chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Emphasis syntax of the prompt.
    pub syntax: AttentionSyntax,
    /// How far back (in tokens) a full chunk may look for a comma to break at; 0 disables.
    pub comma_backtrack: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            syntax: AttentionSyntax::A1111,
            comma_backtrack: DEFAULT_COMMA_BACKTRACK,
        }
    }
}

/// A tokenized prompt: its chunks and the token count A1111 reports.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenizedPrompt {
    pub chunks: Vec<PromptChunk>,
    /// 75 for every chunk but the last, plus the prompt tokens of the last (A1111's
    /// `token_count`, the `N` of the `N/75` counter).
    pub token_count: usize,
}

impl TokenizedPrompt {
    /// The embeddings placed in the chunks, each once, in order of first placement.
    pub fn used_embeddings(&self) -> Vec<Arc<Embedding>> {
        let mut out: Vec<Arc<Embedding>> = Vec::new();
        for f in self.chunks.iter().flat_map(|c| &c.fixes) {
            if !out.iter().any(|e| e.name == f.embedding.name) {
                out.push(f.embedding.clone());
            }
        }
        out
    }

    /// The `/75`, `/150`, ... denominator A1111 shows next to [`Self::token_count`]: the
    /// capacity of the chunks a prompt of that many tokens needs.
    pub fn token_capacity(&self) -> usize {
        self.token_count.max(1).div_ceil(CHUNK_CONTENT) * CHUNK_CONTENT
    }
}

/// The chunk being filled: prompt tokens only, no BOS/EOS yet.
#[derive(Default)]
struct OpenChunk {
    tokens: Vec<u32>,
    multipliers: Vec<f32>,
    fixes: Vec<EmbeddingFix>,
}

struct ChunkBuilder {
    chunks: Vec<PromptChunk>,
    current: OpenChunk,
    token_count: usize,
    /// Index in `current` of the most recent comma, if any.
    last_comma: Option<usize>,
}

impl ChunkBuilder {
    /// Closes the current chunk (padding it with EOS) and starts an empty one.
    fn finish_chunk(&mut self, is_last: bool) {
        let current = std::mem::take(&mut self.current);
        self.token_count += if is_last {
            current.tokens.len()
        } else {
            CHUNK_CONTENT
        };
        let mut tokens = [EOS; CHUNK_TOKENS];
        let mut multipliers = [1.0f32; CHUNK_TOKENS];
        tokens[0] = BOS;
        tokens[1..=current.tokens.len()].copy_from_slice(&current.tokens);
        multipliers[1..=current.multipliers.len()].copy_from_slice(&current.multipliers);
        self.chunks.push(PromptChunk {
            tokens,
            multipliers,
            fixes: current.fixes,
        });
        self.last_comma = None;
    }

    /// What A1111 does at each prompt position before placing anything: note a comma, move
    /// the words after a recent comma out of a full chunk, close a full chunk.
    fn prepare(&mut self, token: u32, comma_backtrack: usize) {
        let len = self.current.tokens.len();
        if token == COMMA {
            self.last_comma = Some(len);
        } else if let Some(comma) = self.last_comma {
            if comma_backtrack != 0 && len == CHUNK_CONTENT && len - comma <= comma_backtrack {
                let tokens = self.current.tokens.split_off(comma + 1);
                let multipliers = self.current.multipliers.split_off(comma + 1);
                self.finish_chunk(false);
                self.current = OpenChunk {
                    tokens,
                    multipliers,
                    fixes: Vec::new(),
                };
            }
        }
        if self.current.tokens.len() == CHUNK_CONTENT {
            self.finish_chunk(false);
        }
    }

    fn push(&mut self, token: u32, weight: f32) {
        self.current.tokens.push(token);
        self.current.multipliers.push(weight);
    }

    /// Places an embedding's vectors, closing the chunk first if they would not fit.
    fn push_embedding(&mut self, embedding: &Arc<Embedding>, weight: f32) -> Result<()> {
        let n = embedding.vectors;
        if n > CHUNK_CONTENT {
            return Err(Error::Invalid(format!(
                "embedding `{}` has {n} vectors; at most {CHUNK_CONTENT} fit in a prompt chunk",
                embedding.name
            )));
        }
        if self.current.tokens.len() + n > CHUNK_CONTENT {
            self.finish_chunk(false);
        }
        self.current.fixes.push(EmbeddingFix {
            position: self.current.tokens.len() + 1,
            embedding: embedding.clone(),
        });
        for _ in 0..n {
            self.push(0, weight);
        }
        Ok(())
    }
}

/// Tokenizes a prompt into encoder chunks with the given options.
///
/// Fails only when the prompt's emphasis syntax is malformed in a way A1111 rejects too
/// (an explicit weight that is not a number).
pub fn tokenize_prompt(prompt: &str, options: ChunkOptions) -> Result<TokenizedPrompt> {
    tokenize_prompt_with_embeddings(prompt, options, None)
}

/// [`tokenize_prompt`] with textual-inversion embeddings: a run of tokens spelling an
/// embedding's name (longest match first, as A1111's `find_embedding_at_position`) becomes
/// its vectors. Fails also when an embedding has more vectors than a chunk holds.
pub fn tokenize_prompt_with_embeddings(
    prompt: &str,
    options: ChunkOptions,
    embeddings: Option<&EmbeddingDatabase>,
) -> Result<TokenizedPrompt> {
    let segments = parse_attention(prompt, options.syntax)?;
    let mut builder = ChunkBuilder {
        chunks: Vec::new(),
        current: OpenChunk::default(),
        token_count: 0,
        last_comma: None,
    };
    for segment in &segments {
        if segment.is_break() {
            builder.finish_chunk(false);
            continue;
        }
        // A1111 keeps weights as Python floats and hands them to torch as float32.
        let weight = segment.weight as f32;
        let tokens = tokenize(&segment.text);
        let mut position = 0;
        while position < tokens.len() {
            let token = tokens[position];
            builder.prepare(token, options.comma_backtrack);
            match embeddings.and_then(|db| db.find_at(&tokens, position)) {
                Some((embedding, spelled)) => {
                    builder.push_embedding(embedding, weight)?;
                    position += spelled;
                }
                None => {
                    builder.push(token, weight);
                    position += 1;
                }
            }
        }
    }
    if !builder.current.tokens.is_empty() || builder.chunks.is_empty() {
        builder.finish_chunk(true);
    }
    Ok(TokenizedPrompt {
        chunks: builder.chunks,
        token_count: builder.token_count,
    })
}

/// The encoder chunks of a prompt in A1111 syntax with A1111's default comma backtrack.
pub fn prompt_chunks(prompt: &str) -> Result<Vec<PromptChunk>> {
    Ok(tokenize_prompt(prompt, ChunkOptions::default())?.chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_prompt_is_one_padding_chunk() {
        let tokenized = tokenize_prompt("", ChunkOptions::default()).unwrap();
        assert_eq!(tokenized.chunks.len(), 1);
        assert_eq!(tokenized.token_count, 0);
        assert_eq!(tokenized.token_capacity(), 75);
        let chunk = &tokenized.chunks[0];
        assert_eq!(chunk.tokens[0], BOS);
        assert!(chunk.tokens[1..].iter().all(|&t| t == EOS));
        assert!(chunk.multipliers.iter().all(|&m| m == 1.0));
    }

    #[test]
    fn short_prompt_with_emphasis() {
        // Ids of "a photo of a cat" from REFERENCE.md §7; weights from A1111's parser.
        let chunks = prompt_chunks("a (photo) of a [cat]").unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].tokens[..7], [BOS, 320, 1125, 539, 320, 2368, EOS]);
        assert_eq!(chunks[0].tokens[7], EOS);
        let expected = [1.0, 1.0, 1.1, 1.0, 1.0, (1.0 / 1.1) as f32, 1.0, 1.0];
        assert_eq!(chunks[0].multipliers[..8], expected);
    }

    #[test]
    fn break_starts_a_new_chunk() {
        let tokenized = tokenize_prompt("a cat BREAK a dog", ChunkOptions::default()).unwrap();
        assert_eq!(tokenized.chunks.len(), 2);
        assert_eq!(tokenized.token_count, 77);
        assert_eq!(tokenized.chunks[1].tokens[..3], [BOS, 320, 1929]);
    }

    #[test]
    fn comma_backtrack_moves_the_tail() {
        // 70 one-token words, a comma, 10 more: the chunk fills 4 tokens after the comma, so
        // those 4 move and the second chunk holds 10 tokens (the rule A1111's code states).
        let prompt = format!("{}, {}", ["cat"; 70].join(" "), ["dog"; 10].join(" "));
        let tokenized = tokenize_prompt(&prompt, ChunkOptions::default()).unwrap();
        assert_eq!(tokenized.chunks.len(), 2);
        let first = &tokenized.chunks[0].tokens;
        assert_eq!(first[70], 2368);
        assert_eq!(first[71], COMMA);
        assert!(first[72..].iter().all(|&t| t == EOS));
        let second = &tokenized.chunks[1].tokens;
        assert!(second[1..11].iter().all(|&t| t == 1929));
        assert_eq!(second[11], EOS);
        assert_eq!(tokenized.token_count, 75 + 10);

        let no_backtrack = ChunkOptions {
            comma_backtrack: 0,
            ..ChunkOptions::default()
        };
        let tokenized = tokenize_prompt(&prompt, no_backtrack).unwrap();
        assert_eq!(tokenized.chunks[0].tokens[75], 1929);
        assert_eq!(tokenized.token_count, 75 + 6);
    }
}

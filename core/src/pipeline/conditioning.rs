//! Prompt → CLIP conditioning the way A1111 builds it.
//!
//! A prompt is split on `AND` into weighted parts (composable diffusion); each part has a
//! schedule of texts over the sampling steps (`[a:b:n]` editing, `[a|b]` alternation).
//! All texts of one part are encoded as one batch, as A1111 does: each is split into
//! 75-token chunks (shorter texts padded with empty chunks), chunk i of every text is
//! encoded alone, emphasis multiplies each token's hidden state and the mean over the
//! batch is restored, and the chunks are concatenated along the sequence. Textual-inversion
//! embeddings of the [`PromptOptions`] database replace token embeddings inside the encoder.

use crate::backend::Backend;
use crate::embeddings::EmbeddingDatabase;
use crate::error::Result;
use crate::nn::clip::ClipTextEncoder;
use crate::text::limits::{check_and_parts, check_prompt_chunks, check_prompt_length};
use crate::text::{
    apply_emphasis, check_schedule_nesting, prompt_schedule_with, schedule_index, split_and,
    tokenize_prompt_with_embeddings, AttentionSyntax, ChunkOptions, EmphasisMode, PromptChunk,
    ScheduleOptions, ScheduledPrompt, BOS, CHUNK_TOKENS, EOS,
};
use std::sync::Arc;

/// One text's conditioning, kept on the host (`[77·chunks, hidden]`, row-major) so cond
/// and uncond can be batched or run separately as their lengths dictate.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditioning {
    pub data: Vec<f32>,
    pub tokens: usize,
    pub hidden: usize,
}

impl Conditioning {
    /// Pad to `tokens` rows by repeating the last row (A1111's rule for AND parts of
    /// different lengths).
    pub fn padded_to(&self, tokens: usize) -> Conditioning {
        let mut data = self.data.clone();
        let last = self.data[self.data.len() - self.hidden..].to_vec();
        for _ in self.tokens..tokens {
            data.extend_from_slice(&last);
        }
        Conditioning {
            data,
            tokens: tokens.max(self.tokens),
            hidden: self.hidden,
        }
    }
}

/// A prompt's conditioning over a sampling run: its schedule of encoded texts.
#[derive(Clone, Debug)]
pub struct ScheduledConditioning {
    pub schedule: Vec<ScheduledPrompt>,
    /// One conditioning per schedule entry.
    pub conds: Vec<Conditioning>,
}

impl ScheduledConditioning {
    /// The conditioning in force at denoiser call `step` (A1111 counts model calls).
    pub fn at(&self, step: usize) -> &Conditioning {
        &self.conds[schedule_index(&self.schedule, step)]
    }
}

/// A full prompt: weighted `AND` parts, each scheduled.
#[derive(Clone, Debug)]
pub struct PromptConditioning {
    pub parts: Vec<(f32, ScheduledConditioning)>,
}

/// How prompt text is read: A1111's emphasis mode, the bracket syntax and the
/// textual-inversion embeddings names can refer to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PromptOptions {
    pub emphasis: EmphasisMode,
    /// `A1111` (default) or the opt-in NovelAI braces; `None` emphasis forces plain text.
    pub syntax: AttentionSyntax,
    /// Embeddings usable by name in prompts (none when `None`).
    pub embeddings: Option<Arc<EmbeddingDatabase>>,
    /// How `[a:b:when]` values are read: A1111's old timelines, and the hires pass's steps.
    pub schedule: ScheduleOptions,
}

impl PromptOptions {
    /// How prompts are cut into chunks under these options.
    pub fn chunk_options(&self) -> ChunkOptions {
        let syntax = if self.emphasis.parses_brackets() {
            self.syntax
        } else {
            AttentionSyntax::Plain
        };
        ChunkOptions {
            syntax,
            ..ChunkOptions::default()
        }
    }
}

/// A1111's empty chunk: BOS then EOS padding, weights 1.
fn empty_chunk() -> PromptChunk {
    let mut tokens = [EOS; CHUNK_TOKENS];
    tokens[0] = BOS;
    PromptChunk {
        tokens,
        multipliers: [1.0; CHUNK_TOKENS],
        fixes: Vec::new(),
    }
}

/// Encode a batch of texts (one schedule) as A1111's `FrozenCLIPEmbedderWithCustomWords`.
async fn encode_texts<B: Backend>(
    b: &B,
    clip: &ClipTextEncoder<B>,
    texts: &[&str],
    clip_skip: usize,
    options: &PromptOptions,
) -> Result<Vec<Conditioning>> {
    let db = options.embeddings.as_deref();
    let mut chunked: Vec<Vec<PromptChunk>> = texts
        .iter()
        .map(|t| tokenize_prompt_with_embeddings(t, options.chunk_options(), db).map(|p| p.chunks))
        .collect::<Result<_>>()?;
    let chunk_count = chunked.iter().map(Vec::len).max().unwrap_or(1);
    check_prompt_chunks(chunk_count)?;
    for c in &mut chunked {
        c.resize(chunk_count, empty_chunk());
    }
    let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
    let mut hidden = 0;
    for i in 0..chunk_count {
        // Chunk i of every text, stacked: emphasis restores the mean over the whole stack.
        let mut stacked = Vec::new();
        let mut multipliers = Vec::new();
        for c in &chunked {
            let z =
                clip.forward_with_replacements(b, &c[i].tokens, &c[i].replacements(), clip_skip)?;
            stacked.extend(b.download_async(&z).await?);
            multipliers.extend_from_slice(&c[i].multipliers);
        }
        hidden = stacked.len() / multipliers.len();
        apply_emphasis(options.emphasis, &mut stacked, hidden, &multipliers)?;
        for (t, rows) in stacked.chunks(CHUNK_TOKENS * hidden).enumerate() {
            out[t].extend_from_slice(rows);
        }
    }
    Ok(out
        .into_iter()
        .map(|data| Conditioning {
            tokens: chunk_count * CHUNK_TOKENS,
            hidden,
            data,
        })
        .collect())
}

/// Conditioning of one scheduled text (no `AND` splitting): the negative prompt's form.
pub async fn encode_scheduled<B: Backend>(
    b: &B,
    clip: &ClipTextEncoder<B>,
    prompt: &str,
    steps: usize,
    clip_skip: usize,
    options: &PromptOptions,
) -> Result<ScheduledConditioning> {
    check_prompt_length(prompt, "prompt")?;
    check_schedule_nesting(prompt)?;
    let schedule = prompt_schedule_with(prompt, steps, &options.schedule);
    let texts: Vec<&str> = schedule.iter().map(|s| s.text.as_str()).collect();
    let conds = encode_texts(b, clip, &texts, clip_skip.max(1), options).await?;
    Ok(ScheduledConditioning { schedule, conds })
}

/// Conditioning of a positive prompt: `AND` parts with their weights, each scheduled.
pub async fn encode_prompt_parts<B: Backend>(
    b: &B,
    clip: &ClipTextEncoder<B>,
    prompt: &str,
    steps: usize,
    clip_skip: usize,
    options: &PromptOptions,
) -> Result<PromptConditioning> {
    check_prompt_length(prompt, "prompt")?;
    let split = split_and(prompt);
    check_and_parts(split.len())?;
    let mut parts = Vec::new();
    for part in split {
        parts.push((
            part.weight,
            encode_scheduled(b, clip, &part.text, steps, clip_skip, options).await?,
        ));
    }
    Ok(PromptConditioning { parts })
}

/// Conditioning of one plain text (no scheduling): emphasis, BREAK and long prompts.
pub async fn encode_prompt<B: Backend>(
    b: &B,
    clip: &ClipTextEncoder<B>,
    prompt: &str,
    clip_skip: usize,
) -> Result<Conditioning> {
    check_prompt_length(prompt, "prompt")?;
    let options = PromptOptions::default();
    let mut conds = encode_texts(b, clip, &[prompt], clip_skip.max(1), &options).await?;
    Ok(conds.remove(0))
}

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

    /// The first `tokens` rows.
    pub fn truncated_to(&self, tokens: usize) -> Conditioning {
        let tokens = tokens.min(self.tokens);
        Conditioning {
            data: self.data[..tokens * self.hidden].to_vec(),
            tokens,
            hidden: self.hidden,
        }
    }

    /// This conditioning followed by `count` copies of `chunk`.
    pub fn extended_with(&self, chunk: &Conditioning, count: usize) -> Conditioning {
        let mut data = self.data.clone();
        for _ in 0..count {
            data.extend_from_slice(&chunk.data);
        }
        Conditioning {
            data,
            tokens: self.tokens + count * chunk.tokens,
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
    /// What to do when the prompt and the negative prompt encode to different lengths.
    pub cond_padding: CondPadding,
}

/// A1111's options for a prompt and negative prompt of different token lengths (more than
/// 75 tokens in one of them). [`CondPadding::Off`] runs them as separate UNet calls, which
/// changes nothing; the two others change the image, and A1111 records them in the
/// infotext (`Pad conds`, `Pad conds v0`) when they applied.
#[derive(Clone, Debug, Default)]
pub struct CondPadding {
    pub mode: CondPaddingMode,
    /// Set when the last model call of a sampling pass padded (what A1111 records).
    pub applied: Arc<std::sync::atomic::AtomicBool>,
}

/// Two paddings are the same option; where they report to does not matter.
impl PartialEq for CondPadding {
    fn eq(&self, other: &Self) -> bool {
        self.mode == other.mode
    }
}

impl CondPadding {
    pub fn new(mode: CondPaddingMode) -> Self {
        Self {
            mode,
            applied: Default::default(),
        }
    }
    /// Whether a pass so far padded at its last model call.
    pub fn was_applied(&self) -> bool {
        self.applied.load(std::sync::atomic::Ordering::Relaxed)
    }
    /// The infotext key A1111 writes when this padding applied.
    pub fn infotext_key(&self) -> Option<&'static str> {
        match self.mode {
            CondPaddingMode::Off => None,
            CondPaddingMode::EmptyChunks => Some("Pad conds"),
            CondPaddingMode::LastVector => Some("Pad conds v0"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CondPaddingMode {
    /// Separate UNet calls (A1111's default).
    #[default]
    Off,
    /// "Pad conds" (`pad_cond_uncond`): the shorter side gets copies of the empty prompt's
    /// 77-token encoding appended.
    EmptyChunks,
    /// "Pad conds v0" (`pad_cond_uncond_v0`, A1111 before 1.6 for DDIM and PLMS): the
    /// negative prompt repeats its last vector up to the prompt's length, or is cut to it.
    LastVector,
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

/// The empty prompt's encoding when `options` pads conds with it (A1111's
/// `cond_stage_model_empty_prompt`), else `None`.
pub async fn padding_chunk<B: Backend>(
    b: &B,
    clip: &ClipTextEncoder<B>,
    clip_skip: usize,
    options: &PromptOptions,
) -> Result<Option<Conditioning>> {
    if options.cond_padding.mode != CondPaddingMode::EmptyChunks {
        return Ok(None);
    }
    let empty = encode_scheduled(b, clip, "", 1, clip_skip, options).await?;
    Ok(Some(empty.at(0).clone()))
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

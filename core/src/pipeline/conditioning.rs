//! Prompt → CLIP conditioning the way A1111 builds it: the prompt is split into 75-token
//! chunks, each chunk is encoded alone, emphasis multiplies each token's hidden state and
//! the chunk's mean is then restored, and the chunks are concatenated along the sequence.

use crate::backend::Backend;
use crate::error::Result;
use crate::nn::clip::ClipTextEncoder;
use crate::text::{prompt_chunks, PromptChunk};

/// A prompt's conditioning, kept on the host (`[77·chunks, hidden]`, row-major) so cond and
/// uncond can be batched or run separately as their lengths dictate.
#[derive(Clone, Debug, PartialEq)]
pub struct Conditioning {
    pub data: Vec<f32>,
    pub tokens: usize,
    pub hidden: usize,
}

/// Encode one chunk and apply its emphasis multipliers with A1111's mean restoration.
fn encode_chunk<B: Backend>(
    b: &B,
    clip: &ClipTextEncoder<B>,
    chunk: &PromptChunk,
    clip_skip: usize,
) -> Result<Vec<f32>> {
    let z = clip.forward(b, &chunk.tokens, clip_skip)?;
    let mut z = b.download(&z)?;
    let hidden = z.len() / chunk.multipliers.len();
    if chunk.multipliers.iter().all(|&m| m == 1.0) {
        return Ok(z);
    }
    let mean = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
    let before = mean(&z);
    for (row, &m) in z.chunks_mut(hidden).zip(&chunk.multipliers) {
        row.iter_mut().for_each(|x| *x *= m);
    }
    let after = mean(&z);
    let restore = (before / after) as f32;
    z.iter_mut().for_each(|x| *x *= restore);
    Ok(z)
}

/// Conditioning for `prompt` (A1111 emphasis syntax, BREAK, long prompts).
pub fn encode_prompt<B: Backend>(
    b: &B,
    clip: &ClipTextEncoder<B>,
    prompt: &str,
    clip_skip: usize,
) -> Result<Conditioning> {
    let chunks = prompt_chunks(prompt)?;
    let mut data = Vec::new();
    let mut tokens = 0;
    for chunk in &chunks {
        data.extend(encode_chunk(b, clip, chunk, clip_skip.max(1))?);
        tokens += chunk.tokens.len();
    }
    let hidden = data.len() / tokens.max(1);
    Ok(Conditioning {
        data,
        tokens,
        hidden,
    })
}

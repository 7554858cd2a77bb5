//! Budgets for prompt text, so that no prompt — typed, pasted from a PNG's infotext or sent
//! in a request — can exhaust the stack, the memory or the time of a generation.
//!
//! A1111 sets no limits of its own; these are far above anything a person writes (the
//! longest prompts shared in practice are a few thousand characters, nested a few levels)
//! and low enough that the work they allow is bounded:
//!
//! - [`MAX_PROMPT_CHARS`]: characters in one prompt (positive or negative).
//! - [`MAX_PROMPT_NESTING`]: brackets open at once, in the emphasis syntax and in prompt
//!   editing; the parsers keep an explicit stack or recurse at most this deep.
//! - [`MAX_AND_PARTS`]: `AND`-separated sub-prompts, each encoded on its own.
//! - [`MAX_PROMPT_CHUNKS`]: 75-token chunks of one text (with `BREAK`s), which sets the
//!   length of the cross-attention context the UNet attends to at every step.

use crate::error::{Error, Result};

/// Characters one prompt may hold.
pub const MAX_PROMPT_CHARS: usize = 32 * 1024;
/// Brackets a prompt may have open at once.
pub const MAX_PROMPT_NESTING: usize = 100;
/// `AND` parts one prompt may have.
pub const MAX_AND_PARTS: usize = 64;
/// 75-token chunks one prompt text may fill.
pub const MAX_PROMPT_CHUNKS: usize = 64;

/// Refuses a prompt longer than [`MAX_PROMPT_CHARS`]; `what` names it in the message
/// (`prompt`, `negative prompt`).
pub fn check_prompt_length(prompt: &str, what: &str) -> Result<()> {
    // Counting stops at the limit, so a huge text is not walked twice.
    if prompt.len() > MAX_PROMPT_CHARS && prompt.chars().nth(MAX_PROMPT_CHARS).is_some() {
        return Err(Error::Invalid(format!(
            "{what}: {} characters; the limit is {MAX_PROMPT_CHARS}",
            prompt.chars().count()
        )));
    }
    Ok(())
}

/// The error for brackets nested past [`MAX_PROMPT_NESTING`] at `char_index` (0-based).
pub(crate) fn nesting_error(char_index: usize) -> Error {
    Error::Invalid(format!(
        "prompt: brackets nest deeper than {MAX_PROMPT_NESTING} levels at character {}",
        char_index + 1
    ))
}

/// Refuses a prompt with more than [`MAX_AND_PARTS`] `AND` parts.
pub fn check_and_parts(parts: usize) -> Result<()> {
    if parts > MAX_AND_PARTS {
        return Err(Error::Invalid(format!(
            "prompt: {parts} AND-separated parts; the limit is {MAX_AND_PARTS}"
        )));
    }
    Ok(())
}

/// Refuses a text that fills more than [`MAX_PROMPT_CHUNKS`] chunks.
pub fn check_prompt_chunks(chunks: usize) -> Result<()> {
    if chunks > MAX_PROMPT_CHUNKS {
        return Err(Error::Invalid(format!(
            "prompt: {chunks} chunks of 75 tokens (long text or many BREAKs); the limit is {MAX_PROMPT_CHUNKS}"
        )));
    }
    Ok(())
}

//! The `N/75` counter A1111's UI shows under the prompt (`ui.update_token_counter`), which is
//! not the count of the prompt as written: A1111 splits the prompt at `AND`, makes each
//! part's prompt-editing schedule for the steps in the UI, and shows the largest chunker
//! count (`token_count`, 75 per full chunk) among all the texts those schedules use, with the
//! chunk capacity that count needs. Comments and extra-network tags (`<lora:…>`) are removed
//! before that; the caller does this (tags are read by the network plugins).

use crate::error::Result;

use super::chunks::{tokenize_prompt, ChunkOptions, CHUNK_CONTENT};
use super::multicond::split_and;
use super::prompt_schedule::{prompt_schedule_with, ScheduleOptions, ScheduledPrompt};

/// A1111's UI counter for a prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenCounter {
    /// The largest `token_count` over every `AND` part and scheduled text.
    pub token_count: usize,
    /// The `/75`, `/150`, … A1111 shows next to it.
    pub capacity: usize,
}

/// One `AND` part of a prompt with its prompt-editing schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct PartSchedule {
    /// The part's text as A1111 passes it on (weight suffix removed).
    pub text: String,
    /// The part's weight in the CFG sum.
    pub weight: f32,
    /// The texts the part is encoded as, and up to which step each is used.
    pub schedule: Vec<ScheduledPrompt>,
}

/// The schedule of every `AND` part of a positive prompt, as A1111's
/// `get_multicond_learned_conditioning` makes them (`options.hires_steps` for the hires pass).
pub fn part_schedules(prompt: &str, steps: usize, options: &ScheduleOptions) -> Vec<PartSchedule> {
    split_and(prompt)
        .into_iter()
        .map(|part| PartSchedule {
            schedule: prompt_schedule_with(&part.text, steps, options),
            text: part.text,
            weight: part.weight,
        })
        .collect()
}

/// The counter A1111's UI shows for a positive prompt (comments and extra-network tags
/// already removed) with `steps` sampling steps. Fails only where A1111's chunker fails too
/// (an emphasis weight that is not a number).
///
/// ```
/// use easel_core::text::ui_token_count;
/// // The UI counts the longer `AND` part, not the whole prompt.
/// let counter = ui_token_count("a cat AND a dog:0.5", 20).unwrap();
/// assert_eq!((counter.token_count, counter.capacity), (2, 75));
/// ```
pub fn ui_token_count(prompt: &str, steps: usize) -> Result<TokenCounter> {
    let mut token_count = 0;
    for part in part_schedules(prompt, steps, &ScheduleOptions::default()) {
        for entry in &part.schedule {
            let count = tokenize_prompt(&entry.text, ChunkOptions::default())?.token_count;
            token_count = token_count.max(count);
        }
    }
    Ok(TokenCounter {
        token_count,
        capacity: token_count.max(1).div_ceil(CHUNK_CONTENT) * CHUNK_CONTENT,
    })
}

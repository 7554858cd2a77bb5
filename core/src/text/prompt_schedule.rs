//! Prompt editing and alternation: which text the encoder sees at which sampling step,
//! following A1111's `get_learned_conditioning_prompt_schedules`.
//!
//! - `[from:to:when]` uses `from` up to step `when`, then `to`; `[to:when]` adds `to` after
//!   `when`; `[from::when]` removes `from` after `when`. Nesting is allowed.
//! - `when` written with a `.` is a fraction of the steps (`0.25`, `.5`, `1.5`); without it, a
//!   step number (`3`, `+3`, `1e1`). With hires steps (and new scheduling) integers count from
//!   the start of the first pass and fractions from `1.0`, so `[a:b:1.5]` switches halfway
//!   through the hires pass. "Old scheduling" reads every value below 1 as a fraction instead.
//! - `[a|b|c]` cycles through its options, one per step; options may be empty (`[fe|]male`).
//! - Round and square brackets that are emphasis (`(a)`, `(a:1.2)`, `[a]`) stay in the text:
//!   they are handled later by the emphasis parser. Brackets that close nothing are plain text.
//! - Constructs nest at most [`MAX_PROMPT_NESTING`] deep; a deeper prompt is used as written
//!   by [`prompt_schedule`] and refused by [`check_schedule_nesting`].
//! - A prompt A1111's grammar rejects — a `|` outside any `[a|b]`, a `\` at the very end or
//!   before a line break — is used as written for every step, with no editing at all.
//!
//! A1111 parses with lark's Earley parser. Its grammar reads some prompts two ways (an
//! edit directly followed by two or more stray brackets, e.g. `[a:2]))`), and lark 1.1.2
//! picks one by the order of a hash set, so A1111 itself differs between launches there;
//! Easel always takes the reading that applies the edit. Everywhere else the results match.

use std::cell::Cell;
use std::collections::BTreeSet;

use crate::error::{Error, Result};

use super::clean::is_python_space;
use super::limits::{nesting_error, MAX_PROMPT_NESTING};

/// One entry of a prompt's schedule: `text` is used up to and including step `end_at_step`
/// (A1111's `ScheduledPromptConditioning`, before encoding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledPrompt {
    pub end_at_step: usize,
    pub text: String,
}

/// A1111's settings that change how `when` values are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScheduleOptions {
    /// Steps of the hires-fix pass, when the schedule is made for that pass. Integers then
    /// count on from the first pass's steps and fractions from 1.0 (A1111 1.6+).
    pub hires_steps: Option<usize>,
    /// A1111's "Use old prompt editing timelines" compatibility option: any value below 1 is a
    /// fraction of the steps, anything else a step number, and hires steps are ignored.
    pub use_old_scheduling: bool,
}

/// The schedule of `prompt` for a pass of `steps` sampling steps, in step order; the last
/// entry always ends at `steps`.
///
/// ```
/// use easel_core::text::prompt_schedule;
/// let s = prompt_schedule("a [cat:dog:0.5]", 10);
/// assert_eq!((s[0].end_at_step, s[0].text.as_str()), (5, "a cat"));
/// assert_eq!((s[1].end_at_step, s[1].text.as_str()), (10, "a dog"));
/// ```
pub fn prompt_schedule(prompt: &str, steps: usize) -> Vec<ScheduledPrompt> {
    prompt_schedule_with(prompt, steps, &ScheduleOptions::default())
}

/// [`prompt_schedule`] with A1111's hires-steps and old-scheduling options. `base_steps` is
/// the first pass's step count; with `options.hires_steps` set (and new scheduling) the
/// schedule is for the hires pass and ends at `hires_steps`.
pub fn prompt_schedule_with(
    prompt: &str,
    base_steps: usize,
    options: &ScheduleOptions,
) -> Vec<ScheduledPrompt> {
    let timeline = Timeline::new(base_steps, options);
    let Ok(items) = parse_prompt(prompt) else {
        return vec![ScheduledPrompt {
            end_at_step: timeline.steps,
            text: prompt.to_string(),
        }];
    };
    let mut boundaries = BTreeSet::from([timeline.steps]);
    collect_boundaries(&items, &timeline, &mut boundaries);
    boundaries
        .into_iter()
        .map(|step| {
            let mut text = String::new();
            render(&items, step, &timeline, &mut text);
            ScheduledPrompt {
                end_at_step: step,
                text,
            }
        })
        .collect()
}

/// Why A1111 would use `prompt` as written, ignoring its `[a:b:n]` and `[a|b]` syntax; `Ok`
/// when it parses. A1111 says nothing in that case; a front end can show this as a warning.
pub fn check_schedule_syntax(prompt: &str) -> Result<()> {
    parse_prompt(prompt).map(|_| ()).map_err(|failure| {
        Error::Invalid(format!(
            "prompt: {} at character {}; prompt editing and alternation are ignored for this prompt",
            failure.reason,
            failure.position + 1
        ))
    })
}

/// Refuses a prompt whose editing/alternation brackets nest deeper than
/// [`MAX_PROMPT_NESTING`], naming the character where the limit is passed. (Such a prompt
/// would otherwise be used as written, which the emphasis parser then refuses less
/// precisely.)
pub fn check_schedule_nesting(prompt: &str) -> Result<()> {
    match parse_prompt(prompt) {
        Err(failure) if failure.too_deep => Err(nesting_error(failure.position)),
        _ => Ok(()),
    }
}

/// Index of the entry A1111 conditions on at denoiser call `current_step` (its `CFGDenoiser`
/// step counter, starting at 0): the first entry with `current_step <= end_at_step`, and the
/// first entry when the counter has run past the end (A1111's fallback, reached by samplers
/// that call the model more than once per step).
pub fn schedule_index(schedule: &[ScheduledPrompt], current_step: usize) -> usize {
    schedule
        .iter()
        .position(|entry| current_step <= entry.end_at_step)
        .unwrap_or(0)
}

/// How `when` numbers map to steps for one pass.
struct Timeline {
    /// Steps of the pass the schedule is for.
    steps: usize,
    /// Subtracted from integer `when`s (the first pass's steps, for the hires pass).
    int_offset: f64,
    /// Subtracted from fractional `when`s (1.0 for the hires pass).
    fraction_offset: f64,
    old_scheduling: bool,
}

impl Timeline {
    fn new(base_steps: usize, options: &ScheduleOptions) -> Self {
        match options.hires_steps {
            Some(hires_steps) if !options.use_old_scheduling => Timeline {
                steps: hires_steps,
                int_offset: base_steps as f64,
                fraction_offset: 1.0,
                old_scheduling: false,
            },
            _ => Timeline {
                steps: base_steps,
                int_offset: 0.0,
                fraction_offset: 0.0,
                old_scheduling: options.use_old_scheduling,
            },
        }
    }

    /// The last step that still uses the "before" text, as A1111 computes it: the value in
    /// f64, truncated toward zero, capped at `steps`. May be zero or negative (never before).
    fn switch_step(&self, number: &str) -> i64 {
        // The grammar only admits decimal numbers, which always parse.
        let written: f64 = number.parse().unwrap_or(0.0);
        let steps = self.steps as f64;
        let value = if self.old_scheduling {
            if written < 1.0 {
                written * steps
            } else {
                written
            }
        } else if number.contains('.') {
            (written - self.fraction_offset) * steps
        } else {
            written - self.int_offset
        };
        // `as` truncates toward zero like Python's int(); infinities saturate where Python
        // would raise.
        (value as i64).min(self.steps as i64)
    }
}

/// A prompt as the schedule grammar reads it.
#[derive(Debug)]
enum Item {
    /// Text used at every step, brackets of emphasis and stray brackets included.
    Text(String),
    /// `[before:after:when]`; `before` is `None` for `[after:when]`.
    Edit {
        before: Option<Vec<Item>>,
        after: Vec<Item>,
        when: String,
    },
    /// `[a|b|...]`.
    Alternate(Vec<Vec<Item>>),
}

fn collect_boundaries(items: &[Item], timeline: &Timeline, boundaries: &mut BTreeSet<usize>) {
    for item in items {
        match item {
            Item::Text(_) => {}
            Item::Edit {
                before,
                after,
                when,
            } => {
                if let Some(before) = before {
                    collect_boundaries(before, timeline, boundaries);
                }
                collect_boundaries(after, timeline, boundaries);
                let step = timeline.switch_step(when);
                if step >= 1 {
                    boundaries.insert(step as usize);
                }
            }
            Item::Alternate(options) => {
                boundaries.extend(1..=timeline.steps);
                for option in options {
                    collect_boundaries(option, timeline, boundaries);
                }
            }
        }
    }
}

fn render(items: &[Item], step: usize, timeline: &Timeline, out: &mut String) {
    for item in items {
        match item {
            Item::Text(text) => out.push_str(text),
            Item::Edit {
                before,
                after,
                when,
            } => {
                if step as i64 <= timeline.switch_step(when) {
                    if let Some(before) = before {
                        render(before, step, timeline, out);
                    }
                } else {
                    render(after, step, timeline, out);
                }
            }
            Item::Alternate(options) => {
                // Python's `(step - 1) % len`, never negative.
                let index = (step as i64 - 1).rem_euclid(options.len() as i64) as usize;
                render(&options[index], step, timeline, out);
            }
        }
    }
}

/// Why and where the grammar rejected a prompt.
#[derive(Debug)]
struct SyntaxFailure {
    position: usize,
    reason: &'static str,
    /// Brackets nested past [`MAX_PROMPT_NESTING`]: the whole prompt is refused instead of
    /// the bracket being read as text (which would parse the same nest again from the next
    /// character, in quadratic time).
    too_deep: bool,
}

type Parsed<T> = std::result::Result<T, SyntaxFailure>;

/// Characters that end plain text.
fn is_special(c: char) -> bool {
    matches!(c, '[' | ']' | '(' | ')' | ':' | '|')
}

/// Reads the whole prompt: a sequence of sub-prompts and stray brackets/colons. An opening
/// bracket starts a construct when one parses there, and is plain text otherwise.
fn parse_prompt(prompt: &str) -> Parsed<Vec<Item>> {
    let chars: Vec<char> = prompt.chars().collect();
    let parser = Parser {
        chars: &chars,
        depth: Cell::new(0),
    };
    let mut items = Vec::new();
    let mut pos = 0;
    while pos < chars.len() {
        match chars[pos] {
            '[' | '(' => match parser.construct(pos) {
                Ok((construct, end)) => {
                    push_all(&mut items, construct);
                    pos = end;
                }
                Err(failure) if failure.too_deep => return Err(failure),
                Err(_) => {
                    push_text(&mut items, &chars[pos..pos + 1]);
                    pos += 1;
                }
            },
            ']' | ')' | ':' => {
                push_text(&mut items, &chars[pos..pos + 1]);
                pos += 1;
            }
            '|' => {
                return Err(SyntaxFailure {
                    position: pos,
                    reason: "`|` outside an [a|b] alternation",
                    too_deep: false,
                })
            }
            _ => {
                let end = parser.plain_end(pos)?;
                push_text(&mut items, &chars[pos..end]);
                pos = end;
            }
        }
    }
    Ok(items)
}

fn push_text(items: &mut Vec<Item>, chars: &[char]) {
    if let Some(Item::Text(last)) = items.last_mut() {
        last.extend(chars);
    } else {
        items.push(Item::Text(chars.iter().collect()));
    }
}

fn push_all(items: &mut Vec<Item>, more: Vec<Item>) {
    for item in more {
        match item {
            Item::Text(text) => {
                let chars: Vec<char> = text.chars().collect();
                push_text(items, &chars);
            }
            other => items.push(other),
        }
    }
}

struct Parser<'a> {
    chars: &'a [char],
    /// Constructs being parsed (the recursion depth of `construct`).
    depth: Cell<usize>,
}

impl Parser<'_> {
    fn at(&self, pos: usize) -> Option<char> {
        self.chars.get(pos).copied()
    }

    fn fail(&self, position: usize, reason: &'static str) -> SyntaxFailure {
        SyntaxFailure {
            position,
            reason,
            too_deep: false,
        }
    }

    /// End of the plain text starting at `pos`: up to the next special character; `\x`
    /// keeps any `x` but a line break.
    fn plain_end(&self, mut pos: usize) -> Parsed<usize> {
        while let Some(c) = self.at(pos) {
            if c == '\\' {
                match self.at(pos + 1) {
                    Some(next) if next != '\n' => pos += 2,
                    _ => return Err(self.fail(pos, "`\\` with nothing to escape")),
                }
            } else if is_special(c) {
                break;
            } else {
                pos += 1;
            }
        }
        Ok(pos)
    }

    /// A sub-prompt inside brackets: text and nested constructs, up to the first `]`, `)`,
    /// `:` or `|` at its own level. Inside brackets every opening bracket must start a
    /// construct.
    fn inner(&self, mut pos: usize) -> Parsed<(Vec<Item>, usize)> {
        let mut items = Vec::new();
        while let Some(c) = self.at(pos) {
            match c {
                '[' | '(' => {
                    let (construct, end) = self.construct(pos)?;
                    push_all(&mut items, construct);
                    pos = end;
                }
                ']' | ')' | ':' | '|' => break,
                _ => {
                    let end = self.plain_end(pos)?;
                    push_text(&mut items, &self.chars[pos..end]);
                    pos = end;
                }
            }
        }
        Ok((items, pos))
    }

    /// The construct opening at `pos` (`(a)`, `(a:b)`, `[a]`, an edit or an alternation) and
    /// the position after it. Emphasis comes back as text with its brackets.
    fn construct(&self, open: usize) -> Parsed<(Vec<Item>, usize)> {
        if self.depth.get() >= MAX_PROMPT_NESTING {
            return Err(SyntaxFailure {
                position: open,
                reason: "brackets nest too deep",
                too_deep: true,
            });
        }
        self.depth.set(self.depth.get() + 1);
        let result = self.construct_at_depth(open);
        self.depth.set(self.depth.get() - 1);
        result
    }

    fn construct_at_depth(&self, open: usize) -> Parsed<(Vec<Item>, usize)> {
        let unclosed = || self.fail(open, "unclosed bracket");
        let (first, pos) = self.inner(open + 1)?;
        let closer = self.at(pos).ok_or_else(unclosed)?;
        if self.chars[open] == '(' {
            let mut items = vec![Item::Text("(".into())];
            items.extend(first);
            match closer {
                ')' => {
                    items.push(Item::Text(")".into()));
                    return Ok((items, pos + 1));
                }
                ':' => {
                    let (second, end) = self.inner(pos + 1)?;
                    if self.at(end) == Some(')') {
                        items.push(Item::Text(":".into()));
                        items.extend(second);
                        items.push(Item::Text(")".into()));
                        return Ok((items, end + 1));
                    }
                }
                _ => {}
            }
            return Err(unclosed());
        }
        match closer {
            ']' => {
                let mut items = vec![Item::Text("[".into())];
                items.extend(first);
                items.push(Item::Text("]".into()));
                Ok((items, pos + 1))
            }
            '|' => {
                let mut options = vec![first];
                let mut pos = pos;
                while self.at(pos) == Some('|') {
                    let (option, end) = self.inner(pos + 1)?;
                    options.push(option);
                    pos = end;
                }
                if self.at(pos) == Some(']') {
                    Ok((vec![Item::Alternate(options)], pos + 1))
                } else {
                    Err(unclosed())
                }
            }
            ':' => {
                if let Some((when, end)) = self.when_and_close(pos + 1) {
                    let edit = Item::Edit {
                        before: None,
                        after: first,
                        when,
                    };
                    return Ok((vec![edit], end));
                }
                let (second, colon) = self.inner(pos + 1)?;
                if self.at(colon) == Some(':') {
                    if let Some((when, end)) = self.when_and_close(colon + 1) {
                        let edit = Item::Edit {
                            before: Some(first),
                            after: second,
                            when,
                        };
                        return Ok((vec![edit], end));
                    }
                }
                Err(unclosed())
            }
            _ => Err(unclosed()),
        }
    }

    /// `[whitespace] NUMBER [whitespace] ]` at `pos`: the number as written and the position
    /// after the `]`.
    fn when_and_close(&self, pos: usize) -> Option<(String, usize)> {
        let pos = self.skip_space(pos);
        let end = self.number_end(pos)?;
        let close = self.skip_space(end);
        (self.at(close) == Some(']')).then(|| (self.chars[pos..end].iter().collect(), close + 1))
    }

    fn skip_space(&self, mut pos: usize) -> usize {
        while self.at(pos).is_some_and(is_python_space) {
            pos += 1;
        }
        pos
    }

    fn digits_end(&self, mut pos: usize) -> usize {
        while self.at(pos).is_some_and(|c| c.is_ascii_digit()) {
            pos += 1;
        }
        pos
    }

    /// End of lark's `SIGNED_NUMBER` at `pos` (longest match): an optional sign, then
    /// `123`, `1.`, `1.5`, `.5`, each with an optional exponent (`1e3`, `.5E-2`).
    fn number_end(&self, pos: usize) -> Option<usize> {
        let mut pos = pos;
        if matches!(self.at(pos), Some('+' | '-')) {
            pos += 1;
        }
        let int_end = self.digits_end(pos);
        let mut end = int_end;
        let has_int = int_end > pos;
        if self.at(end) == Some('.') {
            let frac_end = self.digits_end(end + 1);
            if has_int || frac_end > end + 1 {
                end = frac_end;
            }
        }
        if end == pos {
            return None;
        }
        if matches!(self.at(end), Some('e' | 'E')) {
            let mut exp = end + 1;
            if matches!(self.at(exp), Some('+' | '-')) {
                exp += 1;
            }
            let exp_end = self.digits_end(exp);
            if exp_end > exp {
                end = exp_end;
            }
        }
        Some(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(prompt: &str) -> Vec<(usize, String)> {
        prompt_schedule(prompt, 10)
            .into_iter()
            .map(|s| (s.end_at_step, s.text))
            .collect()
    }

    fn v(entries: &[(usize, &str)]) -> Vec<(usize, String)> {
        entries.iter().map(|&(s, t)| (s, t.to_string())).collect()
    }

    // REFERENCE.md §6 (A1111's doctests), verbatim.
    #[test]
    fn reference_vectors() {
        assert_eq!(g("test"), v(&[(10, "test")]));
        assert_eq!(g("a [b:3]"), v(&[(3, "a "), (10, "a b")]));
        assert_eq!(g("a [b: 3]"), v(&[(3, "a "), (10, "a b")]));
        assert_eq!(g("a [[[b]]:2]"), v(&[(2, "a "), (10, "a [[b]]")]));
        assert_eq!(g("[(a:2):3]"), v(&[(3, ""), (10, "(a:2)")]));
        assert_eq!(g("a [b : c : 1] d"), v(&[(1, "a b  d"), (10, "a  c  d")]));
        assert_eq!(
            g("a[b:[c:d:2]:1]e"),
            v(&[(1, "abe"), (2, "ace"), (10, "ade")])
        );
        assert_eq!(g("a [unbalanced"), v(&[(10, "a [unbalanced")]));
        assert_eq!(g("a [b:.5] c"), v(&[(5, "a  c"), (10, "a b c")]));
        assert_eq!(
            g("((a][:b:c [d:3]"),
            v(&[(3, "((a][:b:c "), (10, "((a][:b:c d")])
        );
        let alternating: Vec<(usize, String)> = (1..=10)
            .map(|s| (s, if s % 2 == 1 { "a" } else { "(b:1.1)" }.to_string()))
            .collect();
        assert_eq!(g("[a|(b:1.1)]"), alternating);
        let female: Vec<(usize, String)> = (1..=10)
            .map(|s| (s, if s % 2 == 1 { "female" } else { "male" }.to_string()))
            .collect();
        assert_eq!(g("[fe|]male"), female);
        let every_fourth: Vec<(usize, String)> = (1..=10)
            .map(|s| (s, if s % 4 == 1 { "female" } else { "male" }.to_string()))
            .collect();
        assert_eq!(g("[fe|||]male"), every_fourth);

        let hires = ScheduleOptions {
            hires_steps: Some(10),
            use_old_scheduling: false,
        };
        let h = |p: &str| -> Vec<(usize, String)> {
            prompt_schedule_with(p, 10, &hires)
                .into_iter()
                .map(|s| (s.end_at_step, s.text))
                .collect()
        };
        assert_eq!(h("a [b:.5] c"), v(&[(10, "a b c")]));
        assert_eq!(h("a [b:1.5] c"), v(&[(5, "a  c"), (10, "a b c")]));
    }

    #[test]
    fn rejected_prompts_are_used_as_written() {
        assert_eq!(g("a | b [c:3]"), v(&[(10, "a | b [c:3]")]));
        assert_eq!(g("a \\"), v(&[(10, "a \\")]));
        assert!(check_schedule_syntax("a | b").is_err());
        assert!(check_schedule_syntax("a [b|c] [d:e:3]").is_ok());
    }

    #[test]
    fn old_scheduling_reads_values_below_one_as_fractions() {
        let old = ScheduleOptions {
            hires_steps: Some(10),
            use_old_scheduling: true,
        };
        let s = prompt_schedule_with("[a:b:1.5]", 10, &old);
        assert_eq!(s[0].end_at_step, 1);
        // New scheduling: 1.5 of 10 steps caps at 10, so "a" is used throughout.
        assert_eq!(g("[a:b:1.5]"), v(&[(10, "a")]));
    }

    #[test]
    fn schedule_index_follows_a1111() {
        let s = prompt_schedule("a [b:3]", 10);
        let picks: Vec<usize> = (0..12).map(|step| schedule_index(&s, step)).collect();
        // Steps 0..=3 use the first entry, 4..=10 the second, past the end the first again.
        assert_eq!(picks, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0]);
    }

    #[test]
    fn nesting_is_bounded_and_names_the_position() {
        for open in ["[", "(", "[a:", "[a|"] {
            let deep = open.repeat(17_000);
            let err = check_schedule_nesting(&deep).unwrap_err().to_string();
            let at = open.len() * 100 + 1;
            assert!(
                err.contains(&format!("deeper than 100 levels at character {at}")),
                "{open}: {err}"
            );
            // The schedule falls back to the text as written, without recursing 17k deep.
            let s = prompt_schedule(&deep, 4);
            assert_eq!(s.len(), 1);
            assert_eq!(s[0].text, deep);
        }
        // 99 nested edits are still read: [a:[a:...[a:b:1]...:1]:1] switches at step 1.
        let mut p = "b".to_string();
        for _ in 0..99 {
            p = format!("[a:{p}:1]");
        }
        assert!(check_schedule_nesting(&p).is_ok());
        assert_eq!(g(&p), v(&[(1, "a"), (10, "b")]));
    }
}

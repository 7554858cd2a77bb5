//! Composable diffusion (`a cat AND a dog:0.5`) and prompt comments, as A1111 reads them.
//!
//! `AND` (the upper-case word) splits a positive prompt into sub-prompts that are encoded
//! separately; each may end in `:weight` (default 1). The sampler then combines them in the
//! CFG step: `denoised = uncond + Σᵢ (condᵢ − uncond) · weightᵢ · cfg_scale`. A1111 splits
//! before prompt editing, so each sub-prompt has its own schedule. Negative prompts are not
//! split (`AND` in them is just a word).
//!
//! `#` starts a comment that runs to the end of the line (A1111's "Enable comments" option,
//! on by default); comments are removed before anything else reads the prompt.

use super::clean::is_python_space;
use super::pretokenize::{is_letter, is_number};

/// One `AND`-separated part of a prompt and its weight in the CFG sum.
#[derive(Clone, Debug, PartialEq)]
pub struct SubPrompt {
    /// The part's text, trailing whitespace and the `:weight` suffix removed, leading
    /// whitespace kept (as A1111 passes it on).
    pub text: String,
    pub weight: f32,
}

/// Splits `prompt` at every `AND` that stands as a word of its own and reads each part's
/// `:weight` suffix, as A1111's `get_multicond_prompt_list` does. Always at least one part.
///
/// ```
/// use easel_core::text::split_and;
/// let parts = split_and("a cat AND a dog:0.5");
/// assert_eq!((parts[0].text.as_str(), parts[0].weight), ("a cat", 1.0));
/// assert_eq!((parts[1].text.as_str(), parts[1].weight), (" a dog", 0.5));
/// ```
pub fn split_and(prompt: &str) -> Vec<SubPrompt> {
    split_at_and_words(prompt)
        .into_iter()
        .map(|part| {
            let (text, weight) = split_weight(part);
            SubPrompt {
                text: text.to_string(),
                weight,
            }
        })
        .collect()
}

/// Python's `\w`: letters, numbers and `_`.
fn is_word_char(c: char) -> bool {
    c == '_' || is_letter(c) || is_number(c)
}

/// `re.split(r"\bAND\b", prompt)`.
fn split_at_and_words(prompt: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut part_start = 0;
    let mut previous: Option<char> = None;
    let mut indices = prompt.char_indices().peekable();
    while let Some((i, c)) = indices.next() {
        let at_word_start = !previous.is_some_and(is_word_char);
        if c == 'A' && at_word_start && prompt[i..].starts_with("AND") {
            let after = prompt[i + 3..].chars().next();
            if !after.is_some_and(is_word_char) {
                parts.push(&prompt[part_start..i]);
                part_start = i + 3;
                // Skip "ND"; the character before what follows is 'D', a word character.
                indices.next();
                indices.next();
                previous = Some('D');
                continue;
            }
        }
        previous = Some(c);
    }
    parts.push(&prompt[part_start..]);
    parts
}

/// A1111's `^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$`: the text without
/// trailing whitespace, and the number after the last `:` when all that follows that colon is
/// a plain decimal number (`2`, `1.`, `.5`, `-0.5`; no exponent) and whitespace.
fn split_weight(part: &str) -> (&str, f32) {
    let trimmed = part.trim_end_matches(is_python_space);
    if let Some(colon) = trimmed.rfind(':') {
        let number = trimmed[colon + 1..].trim_start_matches(is_python_space);
        if is_plain_decimal(number) {
            if let Ok(weight) = number.parse::<f64>() {
                let text = trimmed[..colon].trim_end_matches(is_python_space);
                return (text, weight as f32);
            }
        }
    }
    (trimmed, 1.0)
}

/// `[-+]?(?:\d+\.?|\d*\.\d+)` matching all of `s` (ASCII digits).
fn is_plain_decimal(s: &str) -> bool {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    match frac {
        None => !int.is_empty() && digits(int),
        Some(frac) => digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()),
    }
}

/// Removes `#` comments as A1111's `strip_comments` does: a line that starts with `#`
/// disappears together with its line break, and a `#` later in a line removes the rest of
/// that line (the line break stays).
pub fn strip_comments(prompt: &str) -> String {
    remove_inline_comments(&remove_comment_lines(prompt))
}

/// `re.sub('(^|\n)#[^\n]*(\n|$)', '\n', text)`: each match — a comment line with the line
/// break before it (or the start of the text) and after it — becomes one line break. Matches
/// do not overlap, so a comment line right after a removed one is left to the second pass.
fn remove_comment_lines(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut pos = 0;
    while pos < bytes.len() {
        let hash = if pos == 0 && bytes[0] == b'#' {
            Some(0)
        } else if bytes[pos] == b'\n' && bytes.get(pos + 1) == Some(&b'#') {
            Some(pos + 1)
        } else {
            None
        };
        let Some(hash) = hash else {
            pos += 1;
            continue;
        };
        let line_end = text[hash..].find('\n').map_or(text.len(), |n| hash + n);
        let match_end = (line_end + 1).min(text.len());
        out.push_str(&text[copied..pos]);
        out.push('\n');
        copied = match_end;
        pos = match_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// `re.sub('#[^\n]*(\n|$)', '\n', text)`: from each `#` through the end of its line.
fn remove_inline_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(hash) = rest.find('#') {
        out.push_str(&rest[..hash]);
        out.push('\n');
        rest = match rest[hash..].find('\n') {
            Some(n) => &rest[hash + n + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(prompt: &str) -> Vec<(String, f32)> {
        split_and(prompt)
            .into_iter()
            .map(|p| (p.text, p.weight))
            .collect()
    }

    #[test]
    fn and_with_weights() {
        assert_eq!(
            parts("a cat AND a dog:0.5"),
            [("a cat".to_string(), 1.0), (" a dog".to_string(), 0.5)]
        );
        assert_eq!(parts("ANDROID"), [("ANDROID".to_string(), 1.0)]);
        assert_eq!(parts("a_AND_b"), [("a_AND_b".to_string(), 1.0)]);
        assert_eq!(parts("a (b:1.2)"), [("a (b:1.2)".to_string(), 1.0)]);
        assert_eq!(parts("x:1e3"), [("x:1e3".to_string(), 1.0)]);
        assert_eq!(parts("a:1 :2"), [("a:1".to_string(), 2.0)]);
    }

    #[test]
    fn comments() {
        assert_eq!(strip_comments("a cat # not this"), "a cat \n");
        assert_eq!(strip_comments("# whole line\na cat"), "\na cat");
        assert_eq!(strip_comments("a\n# c\nb"), "a\nb");
        assert_eq!(strip_comments("#a\n#b\nc"), "\n\nc");
        assert_eq!(strip_comments("no comment"), "no comment");
    }
}

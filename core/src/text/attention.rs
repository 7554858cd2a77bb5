//! Emphasis syntax of prompts: which parts of the text get how much attention weight.
//!
//! The default follows A1111's `parse_prompt_attention` exactly, quirks included, because the
//! same prompt must give the same picture: `(a)` ×1.1, `[a]` ÷1.1, `(a:1.3)` ×1.3, `\(` etc.
//! for literal brackets, unclosed brackets applying to the end of the prompt, `BREAK` (as a
//! word) forcing a new 75-token chunk, weights multiplied as `f64` in parse order, and
//! neighbours with equal weight merged. NovelAI's own syntax (`{a}` ×1.05, `[a]` ÷1.05,
//! round brackets as plain text) is available as an opt-in [`AttentionSyntax::NovelAi`].

use crate::error::{Error, Result};

use super::clean::is_python_space;
use super::limits::{nesting_error, MAX_PROMPT_NESTING};
use super::pretokenize::{is_letter, is_number};

/// Text of the segment that marks a chunk break (with weight [`BREAK_WEIGHT`]).
pub const BREAK_TEXT: &str = "BREAK";
/// Weight of the segment that marks a chunk break.
pub const BREAK_WEIGHT: f64 = -1.0;

/// Which emphasis syntax a prompt is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttentionSyntax {
    /// A1111: `(a)` ×1.1, `[a]` ÷1.1, `(a:w)` ×w; `{a}` is plain text.
    #[default]
    A1111,
    /// NovelAI: `{a}` ×1.05, `[a]` ÷1.05; `(a)` and `:` are plain text.
    NovelAi,
    /// A1111's emphasis mode "None": the whole text is one segment of weight 1, brackets
    /// and `BREAK` included.
    Plain,
}

/// A piece of prompt text and the weight its tokens get.
///
/// A chunk break is the segment `("BREAK", -1.0)`, represented as A1111 does because A1111
/// multiplies it like any other segment: a `BREAK` inside brackets gets a weight other than
/// -1 and is then encoded as the word "break" (with a negative weight). Keeping the same
/// representation keeps that behaviour identical.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionSegment {
    pub text: String,
    pub weight: f64,
}

impl AttentionSegment {
    fn new(text: impl Into<String>, weight: f64) -> Self {
        AttentionSegment {
            text: text.into(),
            weight,
        }
    }

    /// True for the marker that starts a new chunk.
    pub fn is_break(&self) -> bool {
        self.text == BREAK_TEXT && self.weight == BREAK_WEIGHT
    }
}

/// One lexeme of the emphasis syntax.
#[derive(Debug, PartialEq)]
enum Lexeme {
    /// Escaped or plain text, kept as is (BREAK is looked for in plain text only).
    Literal(String),
    Text(String),
    OpenEmphasis,
    CloseEmphasis,
    OpenDeemphasis,
    CloseDeemphasis,
    /// `:weight)` closing an emphasis with an explicit weight: the number as written, and
    /// the whole lexeme (plain text when no bracket is open).
    CloseWithWeight {
        number: String,
        raw: String,
    },
}

struct Brackets {
    open_emphasis: char,
    close_emphasis: char,
    emphasis: f64,
    deemphasis: f64,
    explicit_weights: bool,
}

impl AttentionSyntax {
    fn brackets(self) -> Brackets {
        match self {
            AttentionSyntax::A1111 => Brackets {
                open_emphasis: '(',
                close_emphasis: ')',
                emphasis: 1.1,
                deemphasis: 1.0 / 1.1,
                explicit_weights: true,
            },
            AttentionSyntax::NovelAi => Brackets {
                open_emphasis: '{',
                close_emphasis: '}',
                emphasis: 1.05,
                deemphasis: 1.0 / 1.05,
                explicit_weights: false,
            },
            // Handled before lexing; no bracket is special.
            AttentionSyntax::Plain => Brackets {
                open_emphasis: '\0',
                close_emphasis: '\0',
                emphasis: 1.0,
                deemphasis: 1.0,
                explicit_weights: false,
            },
        }
    }
}

/// `:\s*([+-]?[.\d]+)\s*\)` at the start of `rest`: the number and the chars used.
/// (Digits are ASCII only; Python's `\d` would also take other scripts' decimal digits.)
fn explicit_weight(rest: &[char]) -> Option<(String, usize)> {
    if rest.first() != Some(&':') {
        return None;
    }
    let mut i = 1;
    while rest.get(i).is_some_and(|&c| is_python_space(c)) {
        i += 1;
    }
    let number_start = i;
    if matches!(rest.get(i), Some('+' | '-')) {
        i += 1;
    }
    let digits_start = i;
    while rest.get(i).is_some_and(|&c| c == '.' || c.is_ascii_digit()) {
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    let number: String = rest[number_start..i].iter().collect();
    while rest.get(i).is_some_and(|&c| is_python_space(c)) {
        i += 1;
    }
    (rest.get(i) == Some(&')')).then_some((number, i + 1))
}

/// The lexemes of `text`, each with the index of its first character.
fn lex(text: &str, brackets: &Brackets) -> Vec<(usize, Lexeme)> {
    let chars: Vec<char> = text.chars().collect();
    let specials = [
        '\\',
        brackets.open_emphasis,
        brackets.close_emphasis,
        '[',
        ']',
    ];
    let is_text = |c: char| !(specials.contains(&c) || (brackets.explicit_weights && c == ':'));
    let mut lexemes = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let (lexeme, used) = if c == '\\' {
            match chars.get(i + 1) {
                Some(&next) if next == '\\' || (specials.contains(&next)) => {
                    (Lexeme::Literal(next.to_string()), 2)
                }
                _ => (Lexeme::Literal(String::new()), 1),
            }
        } else if c == brackets.open_emphasis {
            (Lexeme::OpenEmphasis, 1)
        } else if c == '[' {
            (Lexeme::OpenDeemphasis, 1)
        } else if let Some((number, used)) = brackets
            .explicit_weights
            .then(|| explicit_weight(&chars[i..]))
            .flatten()
        {
            let raw = chars[i..i + used].iter().collect();
            (Lexeme::CloseWithWeight { number, raw }, used)
        } else if c == brackets.close_emphasis {
            (Lexeme::CloseEmphasis, 1)
        } else if c == ']' {
            (Lexeme::CloseDeemphasis, 1)
        } else if is_text(c) {
            let len = chars[i..].iter().take_while(|&&c| is_text(c)).count();
            (Lexeme::Text(chars[i..i + len].iter().collect()), len)
        } else {
            // A lone `:` (A1111 syntax): text of its own.
            (Lexeme::Text(c.to_string()), 1)
        };
        lexemes.push((i, lexeme));
        i += used;
    }
    lexemes
}

/// Python's `\w` for `str` patterns: letters, digits and `_`.
fn is_word_char(c: char) -> bool {
    c == '_' || is_letter(c) || is_number(c)
}

/// `re.split(r"\s*\bBREAK\b\s*", text)`: the pieces of a plain-text lexeme around each
/// standalone word `BREAK` (surrounding whitespace is swallowed by the break).
fn split_on_break(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let word: Vec<char> = BREAK_TEXT.chars().collect();
    let mut pieces = Vec::new();
    let mut piece_start = 0;
    let mut i = 0;
    while i + word.len() <= chars.len() {
        let at_word = chars[i..i + word.len()] == word[..]
            && (i == 0 || !is_word_char(chars[i - 1]))
            && chars.get(i + word.len()).is_none_or(|&c| !is_word_char(c));
        if !at_word {
            i += 1;
            continue;
        }
        // The leading `\s*` starts as early as possible, but not before the previous split.
        let mut start = i;
        while start > piece_start && is_python_space(chars[start - 1]) {
            start -= 1;
        }
        let mut end = i + word.len();
        while end < chars.len() && is_python_space(chars[end]) {
            end += 1;
        }
        pieces.push(chars[piece_start..start].iter().collect());
        piece_start = end;
        i = end;
    }
    pieces.push(chars[piece_start..].iter().collect());
    pieces
}

/// A1111's `parse_prompt_attention`: the prompt as segments of text with their weights.
///
/// Fails on an explicit weight that is not a number (e.g. `(a:1.2.3)`), which A1111
/// rejects too, and on brackets open more than [`MAX_PROMPT_NESTING`] deep.
pub fn parse_prompt_attention(text: &str) -> Result<Vec<AttentionSegment>> {
    parse_attention(text, AttentionSyntax::A1111)
}

/// Parses emphasis in the given syntax; see [`parse_prompt_attention`].
pub fn parse_attention(text: &str, syntax: AttentionSyntax) -> Result<Vec<AttentionSegment>> {
    if syntax == AttentionSyntax::Plain {
        return Ok(vec![AttentionSegment::new(text, 1.0)]);
    }
    let brackets = syntax.brackets();
    let mut segments: Vec<AttentionSegment> = Vec::new();
    let mut open_emphasis: Vec<usize> = Vec::new();
    let mut open_deemphasis: Vec<usize> = Vec::new();
    let scale_from = |segments: &mut Vec<AttentionSegment>, start: usize, factor: f64| {
        for segment in &mut segments[start..] {
            segment.weight *= factor;
        }
    };

    for (at, lexeme) in lex(text, &brackets) {
        if matches!(lexeme, Lexeme::OpenEmphasis | Lexeme::OpenDeemphasis)
            && open_emphasis.len() + open_deemphasis.len() >= MAX_PROMPT_NESTING
        {
            // Each close rescales the segments inside, so the depth bounds the work too.
            return Err(nesting_error(at));
        }
        match lexeme {
            Lexeme::Literal(text) => segments.push(AttentionSegment::new(text, 1.0)),
            Lexeme::OpenEmphasis => open_emphasis.push(segments.len()),
            Lexeme::OpenDeemphasis => open_deemphasis.push(segments.len()),
            Lexeme::CloseWithWeight { number, .. } if !open_emphasis.is_empty() => {
                let weight: f64 = number.parse().map_err(|_| {
                    Error::Invalid(format!(
                        "prompt: emphasis weight `{number}` is not a number"
                    ))
                })?;
                let start = open_emphasis.pop().unwrap_or(0);
                scale_from(&mut segments, start, weight);
            }
            Lexeme::CloseEmphasis if !open_emphasis.is_empty() => {
                let start = open_emphasis.pop().unwrap_or(0);
                scale_from(&mut segments, start, brackets.emphasis);
            }
            Lexeme::CloseDeemphasis if !open_deemphasis.is_empty() => {
                let start = open_deemphasis.pop().unwrap_or(0);
                scale_from(&mut segments, start, brackets.deemphasis);
            }
            other => {
                let text = match other {
                    Lexeme::Text(text) => text,
                    Lexeme::CloseWithWeight { raw, .. } => raw,
                    Lexeme::CloseEmphasis => brackets.close_emphasis.to_string(),
                    Lexeme::CloseDeemphasis => "]".to_string(),
                    _ => String::new(),
                };
                for (i, piece) in split_on_break(&text).into_iter().enumerate() {
                    if i > 0 {
                        segments.push(AttentionSegment::new(BREAK_TEXT, BREAK_WEIGHT));
                    }
                    segments.push(AttentionSegment::new(piece, 1.0));
                }
            }
        }
    }

    // Brackets never closed apply to the end of the prompt.
    for start in open_emphasis {
        scale_from(&mut segments, start, brackets.emphasis);
    }
    for start in open_deemphasis {
        scale_from(&mut segments, start, brackets.deemphasis);
    }

    if segments.is_empty() {
        segments.push(AttentionSegment::new("", 1.0));
    }
    Ok(merge_equal_neighbours(segments))
}

/// Joins consecutive segments whose weights are exactly equal.
fn merge_equal_neighbours(segments: Vec<AttentionSegment>) -> Vec<AttentionSegment> {
    let mut merged: Vec<AttentionSegment> = Vec::with_capacity(segments.len());
    for segment in segments {
        match merged.last_mut() {
            Some(last) if last.weight == segment.weight => last.text.push_str(&segment.text),
            _ => merged.push(segment),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, f64)> {
        parse_prompt_attention(text)
            .unwrap()
            .into_iter()
            .map(|s| (s.text, s.weight))
            .collect()
    }

    fn expect(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(t, w)| (t.to_string(), *w)).collect()
    }

    /// REFERENCE.md §6, verbatim; weights compared exactly (A1111 multiplies f64 in order).
    #[test]
    fn reference_vectors() {
        assert_eq!(parsed("normal text"), expect(&[("normal text", 1.0)]));
        assert_eq!(
            parsed("an (important) word"),
            expect(&[("an ", 1.0), ("important", 1.1), (" word", 1.0)])
        );
        assert_eq!(parsed("(unbalanced"), expect(&[("unbalanced", 1.1)]));
        assert_eq!(parsed("\\(literal\\]"), expect(&[("(literal]", 1.0)]));
        assert_eq!(
            parsed("(unnecessary)(parens)"),
            expect(&[("unnecessaryparens", 1.1)])
        );
        assert_eq!(
            parsed("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."),
            expect(&[
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ])
        );
    }

    // The following expectations were produced by running A1111's parse_prompt_attention
    // (current `re_attention`, with `\s*` around explicit weights) in CPython.
    #[test]
    fn empty_and_breaks() {
        assert_eq!(parsed(""), expect(&[("", 1.0)]));
        assert_eq!(
            parsed("a BREAK b"),
            expect(&[("a", 1.0), ("BREAK", -1.0), ("b", 1.0)])
        );
        assert_eq!(
            parsed("BREAK"),
            expect(&[("", 1.0), ("BREAK", -1.0), ("", 1.0)])
        );
        assert_eq!(parsed("aBREAK b"), expect(&[("aBREAK b", 1.0)]));
        assert_eq!(
            parsed("(x BREAK y)"),
            expect(&[("x", 1.1), ("BREAK", -1.1), ("y", 1.1)])
        );
        assert!(parse_prompt_attention("a BREAK b").unwrap()[1].is_break());
        assert!(!parse_prompt_attention("(x BREAK y)").unwrap()[1].is_break());
    }

    #[test]
    fn weights_and_escapes() {
        assert_eq!(parsed("(a: 1.5 )"), expect(&[("a", 1.5)]));
        assert_eq!(parsed("a:1.5)"), expect(&[("a:1.5)", 1.0)]));
        assert_eq!(parsed("a: 1.5 )"), expect(&[("a: 1.5 )", 1.0)]));
        assert_eq!(parsed("[a:b]"), expect(&[("a:b", 1.0 / 1.1)]));
        assert_eq!(parsed("a\\b\\\\c"), expect(&[("ab\\c", 1.0)]));
        assert_eq!(parsed("{a}"), expect(&[("{a}", 1.0)]));
        assert_eq!(parsed("a)]"), expect(&[("a)]", 1.0)]));
        assert!(parse_prompt_attention("(a:1.2.3)").is_err());
        assert_eq!(parsed("a:1.2.3)"), expect(&[("a:1.2.3)", 1.0)]));
    }

    #[test]
    fn novelai_braces() {
        let parsed = parse_attention("a {b} [c] {{d}} (e)", AttentionSyntax::NovelAi).unwrap();
        let pairs: Vec<(String, f64)> = parsed.into_iter().map(|s| (s.text, s.weight)).collect();
        assert_eq!(
            pairs,
            expect(&[
                ("a ", 1.0),
                ("b", 1.05),
                (" ", 1.0),
                ("c", 1.0 / 1.05),
                (" ", 1.0),
                ("d", 1.05 * 1.05),
                (" (e)", 1.0),
            ])
        );
    }

    #[test]
    fn nesting_is_bounded_and_names_the_position() {
        for open in ["(", "[", "{"] {
            let syntax = if open == "{" {
                AttentionSyntax::NovelAi
            } else {
                AttentionSyntax::A1111
            };
            let deep = format!("a {}", open.repeat(17_000));
            let err = parse_attention(&deep, syntax).unwrap_err().to_string();
            // The 101st bracket, after "a ", is character 103.
            assert!(
                err.contains("deeper than 100 levels at character 103"),
                "{err}"
            );
        }
        // At the limit: 100 open brackets weigh 1.1^100, computed by repeated products.
        let weight = (0..100).fold(1.0f64, |w, _| w * 1.1);
        let ok = parse_prompt_attention(&format!("{}x", "(".repeat(100))).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].text, "x");
        assert!(
            (ok[0].weight - weight).abs() <= weight * 1e-12,
            "{}",
            ok[0].weight
        );
    }
}

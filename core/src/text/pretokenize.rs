//! Splitting cleaned text into the words BPE works on, as CLIP's regex
//! `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`
//! (case-insensitive) finds them, written out by hand so core needs no regex engine: at each
//! position the first alternative that matches wins, and characters no alternative matches
//! are skipped.

use super::clean::is_python_space;
use super::unicode_classes::{LETTER_RANGES, NUMBER_RANGES};

/// The two special tokens, which survive pre-tokenization as whole words.
pub(crate) const SPECIAL_WORDS: [&str; 2] = ["<|startoftext|>", "<|endoftext|>"];

/// Which branch of the regex a character can take part in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CharClass {
    /// `[\p{L}]`: runs of these form one word.
    Letter,
    /// `[\p{N}]`: each one is a word of its own.
    Number,
    /// Whitespace: separates words, never part of one.
    Space,
    /// Anything else: runs of these form one word.
    Symbol,
    /// Matched by no branch (U+0345, whose case fold is a letter, falls out of both the letter
    /// class and its complement under case-insensitive matching): dropped.
    Unmatched,
}

fn in_ranges(ranges: &[(u32, u32)], c: char) -> bool {
    let cp = c as u32;
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// True for letters as the reference regex sees them (`[\p{L}]`).
pub(crate) fn is_letter(c: char) -> bool {
    in_ranges(LETTER_RANGES, c)
}

/// True for numbers as the reference regex sees them (`[\p{N}]`).
pub(crate) fn is_number(c: char) -> bool {
    in_ranges(NUMBER_RANGES, c)
}

fn class_of(c: char) -> CharClass {
    if c.is_ascii_alphabetic() {
        CharClass::Letter
    } else if c.is_ascii_digit() {
        CharClass::Number
    } else if is_python_space(c) {
        CharClass::Space
    } else if is_letter(c) {
        CharClass::Letter
    } else if is_number(c) {
        CharClass::Number
    } else if c == '\u{345}' {
        CharClass::Unmatched
    } else {
        CharClass::Symbol
    }
}

/// Case-insensitive equality of one pattern letter (ASCII lowercase) with a text char, using
/// simple case folding as the reference engine does (`ſ` folds to `s`).
fn folds_to(c: char, pattern: char) -> bool {
    c.to_ascii_lowercase() == pattern || (pattern == 's' && c == '\u{17F}')
}

/// Length in chars of the contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) at the
/// start of `rest`, if any.
fn contraction_len(rest: &[char]) -> Option<usize> {
    const SUFFIXES: [&str; 7] = ["s", "t", "re", "ve", "m", "ll", "d"];
    if rest.first() != Some(&'\'') {
        return None;
    }
    SUFFIXES.iter().find_map(|suffix| {
        let n = suffix.len();
        let matches = rest.len() > n
            && suffix
                .chars()
                .zip(&rest[1..=n])
                .all(|(p, &c)| folds_to(c, p));
        matches.then_some(n + 1)
    })
}

fn special_len(rest: &[char]) -> Option<usize> {
    SPECIAL_WORDS.iter().find_map(|word| {
        let n = word.chars().count();
        let matches = rest.len() >= n && word.chars().zip(rest).all(|(p, &c)| folds_to(c, p));
        matches.then_some(n)
    })
}

/// The words of already cleaned text, in order.
pub(crate) fn pretokenize(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let classes: Vec<CharClass> = chars.iter().map(|&c| class_of(c)).collect();
    let run_len = |start: usize, class: CharClass| {
        classes[start..].iter().take_while(|&&k| k == class).count()
    };
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let rest = &chars[i..];
        let len = if let Some(n) = special_len(rest).or_else(|| contraction_len(rest)) {
            n
        } else {
            match classes[i] {
                CharClass::Letter => run_len(i, CharClass::Letter),
                CharClass::Number => 1,
                CharClass::Symbol => run_len(i, CharClass::Symbol),
                CharClass::Space | CharClass::Unmatched => {
                    i += 1;
                    continue;
                }
            }
        };
        words.push(chars[i..i + len].iter().collect());
        i += len;
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_tables_are_sorted_and_disjoint() {
        for table in [LETTER_RANGES, NUMBER_RANGES] {
            assert!(table.iter().all(|(lo, hi)| lo <= hi));
            assert!(table.windows(2).all(|w| w[0].1 < w[1].0));
        }
        assert!(!LETTER_RANGES.iter().any(|&(lo, hi)| {
            NUMBER_RANGES
                .iter()
                .any(|&(nlo, nhi)| lo <= nhi && nlo <= hi)
        }));
    }

    // Expected splits are what `regex.findall` returns with CLIP's pattern (regex 2026.5).
    #[test]
    fn splits_like_the_reference_regex() {
        let cases: &[(&str, &[&str])] = &[
            ("it's a dog's life", &["it", "'s", "a", "dog", "'s", "life"]),
            ("''s", &["''", "s"]),
            ("'\u{17F}", &["'\u{17F}"]),
            ("a\u{345}b", &["a", "b"]),
            ("!<|endoftext|>x", &["!<|", "endoftext", "|>", "x"]),
            ("a<|endoftext|>b", &["a", "<|endoftext|>", "b"]),
            (
                "1920s, 4k!!",
                &["1", "9", "2", "0", "s", ",", "4", "k", "!!"],
            ),
            (
                "caf\u{E9} \u{65E5}\u{672C}",
                &["caf\u{E9}", "\u{65E5}\u{672C}"],
            ),
            ("\u{2167}x", &["\u{2167}", "x"]),
        ];
        for (text, words) in cases {
            assert_eq!(pretokenize(text), *words, "{text:?}");
        }
    }
}

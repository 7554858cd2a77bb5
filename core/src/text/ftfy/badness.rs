//! ftfy's mojibake detector (`badness.is_bad`): text is "bad" when it holds one of a few
//! dozen short character sequences that are rare in real text and common when UTF-8 was
//! decoded with a single-byte code page (an accented capital before a currency sign, a box
//! drawing next to a lowercase accented letter, `Ã` before a no-break space, ...). The
//! sequences are generated from ftfy's own pattern (see `gen_tables.py`).

use super::in_ranges;
use super::tables::{Elem, BADNESS};

/// True when `text` contains any of ftfy's mojibake sequences.
pub(super) fn is_bad(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (0..=chars.len()).any(|start| {
        BADNESS
            .iter()
            .any(|pattern| matches_at(pattern, &chars, start))
    })
}

/// Whether `pattern` matches `chars` from `pos` (an optional element may match or be skipped).
fn matches_at(pattern: &[Elem], chars: &[char], pos: usize) -> bool {
    let Some((first, rest)) = pattern.split_first() else {
        return true;
    };
    match *first {
        Elem::Start => pos == 0 && matches_at(rest, chars, pos),
        Elem::Set {
            set,
            negated,
            optional,
        } => {
            let here = chars
                .get(pos)
                .is_some_and(|&c| in_ranges(set, c) != negated);
            (here && matches_at(rest, chars, pos + 1)) || (optional && matches_at(rest, chars, pos))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are `ftfy.badness.is_bad` (ftfy 6.3.1) on the same strings.
    #[test]
    fn detects_mojibake() {
        assert!(is_bad("caf\u{C3}\u{A9}"));
        assert!(is_bad("\u{C3}\u{A0} "));
        assert!(!is_bad("\u{2019}\u{20AC}\u{2122}"));
        assert!(!is_bad("caf\u{E9} latte"));
        assert!(!is_bad("plain ascii"));
        assert!(!is_bad("\u{65E5}\u{672C}\u{8A9E}"));
    }
}

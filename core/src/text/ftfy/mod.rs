//! ftfy's `fix_text` with its default settings (ftfy 6.3.1), the first step of the text
//! cleaning that A1111's tokenizer (transformers' slow `CLIPTokenizer`) applies to prompts.
//!
//! Hand-written because no Rust crate reproduces ftfy, and token ids change wherever the
//! cleaned text differs by one character. The steps and their order follow ftfy: the text is
//! cut into lines (at most a million characters each); once a line holds `<`, HTML references
//! are left alone from there on (ftfy then assumes real HTML). Each line is fixed repeatedly
//! until nothing changes: HTML references with a semicolon, mojibake repair (text such as
//! `cafÃ©` that was UTF-8 read through a single-byte code page, see [`encoding`]), C1
//! controls read as Windows-1252, Latin ligatures split, full-width forms narrowed, curly
//! quotes straightened, line breaks unified, terminal escapes and invisible control
//! characters removed, NFC.
//!
//! The character sets and codec tables come from `gen_tables.py` (run against CPython's
//! codecs, Unicode 14.0 `unicodedata` and ftfy's own regular expressions). ftfy's surrogate
//! fix has nothing to do here: a Rust string cannot hold a lone surrogate. NFC comes from
//! the `unicode-normalization` crate, which follows a newer Unicode version than CPython
//! 3.11 (14.0); the two differ only on characters assigned after 14.0.

mod badness;
mod codecs;
mod encoding;
mod fixes;
#[rustfmt::skip]
mod tables;

use unicode_normalization::UnicodeNormalization;

/// Longest piece ftfy fixes at once (`TextFixerConfig.max_decode_length`), in characters.
const MAX_DECODE_LENGTH: usize = 1_000_000;

/// True when `c` lies in one of the sorted inclusive `ranges`.
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

/// `ftfy.fix_text(text)` with ftfy 6's default configuration: the first step of the text
/// cleaning A1111's tokenizer does (see the module docs of `text::ftfy` for what it fixes).
///
/// ```
/// assert_eq!(easel_core::text::fix_text("caf\u{C3}\u{A9} latte"), "caf\u{E9} latte");
/// ```
pub fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape_html = true;
    for line in text.split_inclusive('\n') {
        for segment in max_length_pieces(line) {
            if segment.contains('<') {
                unescape_html = false;
            }
            out.push_str(&fix_segment(segment, unescape_html));
        }
    }
    out
}

/// `line` cut into pieces of at most [`MAX_DECODE_LENGTH`] characters.
fn max_length_pieces(line: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = line;
    loop {
        match rest.char_indices().nth(MAX_DECODE_LENGTH) {
            Some((cut, _)) => {
                pieces.push(&rest[..cut]);
                rest = &rest[cut..];
            }
            None => {
                pieces.push(rest);
                return pieces;
            }
        }
    }
}

/// ftfy's `fix_and_explain` on one segment: every fixer in order, until the text is stable.
fn fix_segment(segment: &str, unescape_html: bool) -> String {
    let mut text = segment.to_string();
    loop {
        let before = text.clone();
        if unescape_html {
            text = super::html::ftfy_unescape_html(&text);
        }
        text = encoding::fix_encoding(&text);
        text = fixes::fix_c1_controls(&text);
        text = fixes::fix_latin_ligatures(&text);
        text = fixes::fix_character_width(&text);
        text = fixes::uncurl_quotes(&text);
        text = fixes::fix_line_breaks(&text);
        text = fixes::remove_terminal_escapes(&text);
        text = fixes::remove_control_chars(&text);
        text = text.nfc().collect();
        if text == before {
            return text;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings are what ftfy 6.3.1 `fix_text` returns for the same inputs; the
    // fixture corpus in tests/fixtures/text covers many more.
    #[test]
    fn examples() {
        assert_eq!(fix_text("caf\u{C3}\u{A9} latte"), "caf\u{E9} latte");
        assert_eq!(fix_text("salt &amp pepper"), "salt &amp pepper");
        assert_eq!(fix_text("salt &amp; pepper"), "salt & pepper");
        assert_eq!(fix_text("a <tag> &amp; b"), "a <tag> &amp; b");
        assert_eq!(fix_text("&amp;\na <b>\n&amp;"), "&\na <b>\n&amp;");
        assert_eq!(fix_text("\u{FB01}ne \u{FF21}\u{3000}x"), "fine A x");
        assert_eq!(fix_text("\u{201C}hi\u{201D}\r\n"), "\"hi\"\n");
    }

    #[test]
    fn long_lines_are_cut() {
        let line = "a".repeat(MAX_DECODE_LENGTH + 5);
        let pieces = max_length_pieces(&line);
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1].len(), 5);
    }
}

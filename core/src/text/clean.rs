//! Text cleaning that A1111's tokenizer (transformers' slow `CLIPTokenizer`, which SD 1.x
//! checkpoints load) applies before splitting a prompt into words:
//! `whitespace_clean(ftfy.fix_text(text)).lower()`. Unlike open_clip's `basic_clean`, it
//! does not run `html.unescape`: only ftfy's own cautious reference decoding applies.

use super::ftfy::fix_text;

/// The cleaned, lowercased text the pre-tokenizer splits into words.
pub(crate) fn clean_text(text: &str) -> String {
    whitespace_clean(&fix_text(text)).to_lowercase()
}

/// Python's `str.isspace`: Unicode `White_Space` plus the four ASCII information separators.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// transformers' `whitespace_clean`: `regex.sub(r"\s+", " ", text).strip()`. The `regex`
/// module's `\s` leaves out the information separators U+001C..U+001F that `str.strip` removes
/// (ftfy has dropped them already; kept exact anyway).
fn whitespace_clean(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if is_python_space(c) && !('\u{1C}'..='\u{1F}').contains(&c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out.trim_matches(is_python_space).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings are what ftfy 6.3.1 `fix_text` returns for the same inputs.
    #[test]
    fn ftfy_subset() {
        assert_eq!(
            fix_text("\u{201C}hi\u{201D} \u{2018}x\u{2019}"),
            "\"hi\" 'x'"
        );
        assert_eq!(
            fix_text("\u{FF2C}\u{FF2F}\u{FF35}\u{FF24}\u{3000}\u{FF4E}\u{FF11}"),
            "LOUD n1"
        );
        assert_eq!(fix_text("\u{FB01}ne"), "fine");
        assert_eq!(fix_text("&amp;lsquo;"), "'");
        assert_eq!(fix_text("a < b &amp; c"), "a < b &amp; c");
        assert_eq!(fix_text("x\u{85}y"), "x\u{2026}y");
        assert_eq!(fix_text("e\u{301}"), "\u{E9}");
        assert_eq!(fix_text("\u{1B}[31mred"), "red");
        assert_eq!(fix_text("\u{FF76}\u{FF9E}"), "\u{30AC}");
        assert_eq!(fix_text("\u{FEFF}a"), "a");
        assert_eq!(fix_text("\u{149}"), "'n");
    }

    #[test]
    fn whitespace_and_case() {
        assert_eq!(
            clean_text("  A\t\tPhoto\u{A0}OF\n a CAT  "),
            "a photo of a cat"
        );
        assert_eq!(clean_text("&amp;amp; x"), "& x");
    }
}

//! Text cleaning that CLIP's tokenizer applies before splitting a prompt into words:
//! `ftfy.fix_text`, `html.unescape` twice, whitespace collapsed, lowercase.
//!
//! ftfy is reproduced for everything except its mojibake detection (`fix_encoding`:
//! re-decoding text such as `Ã©` that was decoded with the wrong codec), which needs ftfy's
//! statistical heuristics; prompts typed or pasted by people practically never contain it.
//! What is reproduced, in ftfy's order and repeated until the text stops changing: HTML
//! references, C1 controls read as Windows-1252, Latin ligatures split, full-width and
//! half-width forms to normal width, curly quotes straightened, line breaks unified, terminal
//! escapes and invisible control characters removed, NFC normalization.

use unicode_normalization::UnicodeNormalization;

use super::html::{ftfy_unescape_html, html_unescape};

/// The cleaned, lowercased text the pre-tokenizer splits into words.
pub(crate) fn clean_text(text: &str) -> String {
    let fixed = fix_text(text);
    let unescaped = html_unescape(&html_unescape(&fixed));
    collapse_whitespace(&unescaped).to_lowercase()
}

/// Python's `str.isspace`: Unicode `White_Space` plus the four ASCII information separators.
pub(crate) fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

/// `" ".join(text.split())`: runs of whitespace become one space, ends trimmed.
fn collapse_whitespace(text: &str) -> String {
    text.split(is_python_space)
        .filter(|word| !word.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ftfy.fix_text` with default settings, less mojibake repair (see the module docs).
/// ftfy fixes line by line, and stops decoding HTML references for good once a line holds
/// `<` (it then assumes real HTML, whose references are meant literally).
pub(crate) fn fix_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    for line in text.split_inclusive('\n') {
        if line.contains('<') {
            unescape = false;
        }
        out.push_str(&fix_segment(line, unescape));
    }
    out
}

fn fix_segment(segment: &str, unescape: bool) -> String {
    let mut text = segment.to_string();
    loop {
        let before = text.clone();
        if unescape {
            text = ftfy_unescape_html(&text);
        }
        text = fix_c1_controls(&text);
        text = fix_latin_ligatures(&text);
        text = fix_character_width(&text);
        text = uncurl_quotes(&text);
        text = fix_line_breaks(&text);
        text = remove_terminal_escapes(&text);
        text = remove_control_chars(&text);
        text = text.nfc().collect();
        if text == before {
            return text;
        }
    }
}

/// Windows-1252 characters for the C1 range; the five bytes 1252 leaves undefined stay.
fn windows_1252(c: char) -> char {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}',
        '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}',
        '\u{178}',
    ];
    match c {
        '\u{80}'..='\u{9F}' => HIGH[c as usize - 0x80],
        _ => c,
    }
}

fn fix_c1_controls(text: &str) -> String {
    text.chars().map(windows_1252).collect()
}

/// Latin typographic ligatures and legacy digraphs, split as ftfy does (æ, œ are kept).
fn fix_latin_ligatures(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let replacement = match c {
            '\u{132}' => "IJ",
            '\u{133}' => "ij",
            '\u{149}' => "\u{2BC}n",
            '\u{1F1}' => "DZ",
            '\u{1F2}' => "Dz",
            '\u{1F3}' => "dz",
            '\u{1C4}' => "D\u{17D}",
            '\u{1C5}' => "D\u{17E}",
            '\u{1C6}' => "d\u{17E}",
            '\u{1C7}' => "LJ",
            '\u{1C8}' => "Lj",
            '\u{1C9}' => "lj",
            '\u{1CA}' => "NJ",
            '\u{1CB}' => "Nj",
            '\u{1CC}' => "nj",
            '\u{FB00}' => "ff",
            '\u{FB01}' => "fi",
            '\u{FB02}' => "fl",
            '\u{FB03}' => "ffi",
            '\u{FB04}' => "ffl",
            '\u{FB05}' => "\u{17F}t",
            '\u{FB06}' => "st",
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push_str(replacement);
    }
    out
}

/// Full-width and half-width forms (U+FF01..U+FFEF) become their NFKC equivalents, and the
/// ideographic space a plain space.
fn fix_character_width(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{3000}' => out.push(' '),
            '\u{FF01}'..='\u{FFEF}' => out.extend(std::iter::once(c).nfkc()),
            _ => out.push(c),
        }
    }
    out
}

fn uncurl_quotes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{2BC}' | '\u{2018}'..='\u{201B}' => '\'',
            '\u{201C}'..='\u{201F}' => '"',
            _ => c,
        })
        .collect()
}

fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// Removes ANSI colour/cursor sequences `ESC [ digits-and-semicolons letter`.
fn remove_terminal_escapes(text: &str) -> String {
    if !text.contains('\u{1B}') {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\u{1B}' && chars.get(i + 1) == Some(&'[') {
            let params = chars[i + 2..]
                .iter()
                .take_while(|c| c.is_ascii_digit() || **c == ';')
                .count();
            let end = i + 2 + params;
            if chars.get(end).is_some_and(|c| c.is_ascii_alphabetic()) {
                i = end + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Control characters nobody means to type (ASCII controls other than whitespace, deprecated
/// Arabic format controls, interlinear annotations, the object replacement character, BOM).
fn remove_control_chars(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !matches!(c,
                '\u{00}'..='\u{08}'
                | '\u{0B}'
                | '\u{0E}'..='\u{1F}'
                | '\u{7F}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFC}')
        })
        .collect()
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

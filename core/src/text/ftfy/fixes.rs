//! ftfy's character-level fixers (`ftfy.fixes`): each maps text to text on its own, without
//! guessing.

use super::codecs::SLOPPY_WINDOWS_1252;
use super::in_ranges;
use super::tables::{DIGIT, WIDTH_MAP};

/// C1 control characters (U+0080..U+009F) read as the Windows-1252 bytes they most likely
/// were; the five bytes Windows-1252 leaves undefined stay as they are.
pub(super) fn fix_c1_controls(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{80}'..='\u{9F}' => SLOPPY_WINDOWS_1252.decode[c as usize],
            _ => c,
        })
        .collect()
}

/// Latin typographic ligatures and the digraphs made for converting Cyrillic, spelled out.
pub(super) fn fix_latin_ligatures(text: &str) -> String {
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

/// Full-width and half-width forms (and the ideographic space) to their usual width.
pub(super) fn fix_character_width(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match WIDTH_MAP.binary_search_by_key(&c, |&(from, _)| from) {
            Ok(i) => out.push_str(WIDTH_MAP[i].1),
            Err(_) => out.push(c),
        }
    }
    out
}

/// Curly single quotes (and U+02BC) to `'`, curly double quotes to `"`.
pub(super) fn uncurl_quotes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{2BC}' | '\u{2018}'..='\u{201B}' => '\'',
            '\u{201C}'..='\u{201F}' => '"',
            _ => c,
        })
        .collect()
}

/// CRLF, CR, LINE SEPARATOR, PARAGRAPH SEPARATOR and NEL all become `\n`.
pub(super) fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

/// Removes ANSI terminal sequences: ESC `[`, any run of digits (any script's decimal digits,
/// as Python's `\d`) and `;`, then an ASCII letter.
pub(super) fn remove_terminal_escapes(text: &str) -> String {
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
                .take_while(|&&c| c == ';' || in_ranges(DIGIT, c))
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

/// Drops control characters nobody means to type: ASCII controls other than tab, line feed,
/// form feed and carriage return, DEL, the deprecated Arabic/format controls U+206A..U+206F,
/// the byte-order mark and the interlinear annotation characters U+FFF9..U+FFFC.
pub(super) fn remove_control_chars(text: &str) -> String {
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

    // Expected values are what the same ftfy 6.3.1 fixers return.
    #[test]
    fn fixers() {
        assert_eq!(fix_c1_controls("a\u{80}b\u{81}"), "a\u{20AC}b\u{81}");
        assert_eq!(
            fix_latin_ligatures("\u{FB03}x\u{1C6}"),
            "ffix d\u{17E}".replace(' ', "")
        );
        assert_eq!(
            fix_character_width("\u{FF28}\u{FF49}\u{3000}\u{FF76}"),
            "Hi \u{30AB}"
        );
        assert_eq!(uncurl_quotes("\u{2018}a\u{201D}"), "'a\"");
        assert_eq!(fix_line_breaks("a\r\nb\rc\u{2028}"), "a\nb\nc\n");
        assert_eq!(remove_terminal_escapes("\u{1B}[1;31mred\u{1B}[0m"), "red");
        assert_eq!(remove_terminal_escapes("\u{1B}[\u{663}m!"), "!");
        assert_eq!(remove_terminal_escapes("\u{1B}[31"), "\u{1B}[31");
        assert_eq!(remove_control_chars("a\u{0}\tb\u{7F}\u{FEFF}"), "a\tb");
    }
}

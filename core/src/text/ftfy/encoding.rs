//! ftfy's mojibake repair (`fix_encoding`): text that looks bad (see [`super::badness`]) is
//! encoded back to bytes with the first single-byte code page that can hold all of it, and
//! decoded as UTF-8; where that fails, runs that look like UTF-8 read as single bytes are
//! fixed one by one, then C1 controls are read as Windows-1252. Repeated until stable.
//!
//! Before decoding, two byte-level repairs undo damage that commonly happens on the way:
//! no-break spaces (byte A0) that became plain spaces (`restore_byte_a0`), and bytes lost to
//! `?` or the substitute character 0x1A (`replace_lossy_sequences`, which turns such broken
//! sequences into U+FFFD).

use super::badness::is_bad;
use super::codecs::{decode_utf8, decode_utf8_variants, SLOPPY_WINDOWS_1252};
use super::fixes::fix_c1_controls;
use super::in_ranges;
use super::tables::{
    CHARMAPS, UTF8_CONTINUATION, UTF8_CONTINUATION_STRICT, UTF8_FIRST_OF_2, UTF8_FIRST_OF_3,
    UTF8_FIRST_OF_4,
};

/// `ftfy.fix_encoding` with the default configuration.
pub(super) fn fix_encoding(text: &str) -> String {
    let mut text = text.to_string();
    loop {
        let fixed = fix_encoding_step(&text);
        if fixed == text {
            return text;
        }
        text = fixed;
    }
}

fn fix_encoding_step(text: &str) -> String {
    if text.is_empty() || text.is_ascii() || !is_bad(text) {
        return text.to_string();
    }
    let mut latin1_possible = false;
    for (i, charmap) in CHARMAPS.iter().enumerate() {
        if !charmap.can_encode(text) {
            continue;
        }
        latin1_possible |= i == 0;
        let Some(mut bytes) = charmap.encode(text) else {
            continue;
        };
        if charmap.name != "macroman" && find_altered_utf8(&bytes, 0).is_some() {
            bytes = restore_byte_a0(&bytes);
        }
        if charmap.name.starts_with("sloppy") {
            bytes = replace_lossy_sequences(&bytes);
        }
        let decoded = if bytes.contains(&0xED) || bytes.contains(&0xC0) {
            decode_utf8_variants(&bytes)
        } else {
            decode_utf8(&bytes)
        };
        if let Some(fixed) = decoded {
            return fixed;
        }
    }
    if has_utf8_run(text) {
        let fixed = decode_inconsistent_utf8(text);
        if fixed != text {
            return fixed;
        }
    }
    // ftfy compares against the name "windows-1252", which is never in its list of sloppy
    // code pages, so this branch always tries strict Windows-1252.
    if latin1_possible {
        if let Some(fixed) = latin1_as_windows_1252(text) {
            if fixed != text {
                return fixed;
            }
        }
    }
    if text.chars().any(|c| ('\u{80}'..='\u{9F}').contains(&c)) {
        return fix_c1_controls(text);
    }
    text.to_string()
}

/// `text.encode("latin-1").decode("windows-1252")`; `None` where strict Windows-1252 has no
/// character for a byte (81, 8D, 8F, 90, 9D).
fn latin1_as_windows_1252(text: &str) -> Option<String> {
    text.chars()
        .map(|c| match c {
            '\u{81}' | '\u{8D}' | '\u{8F}' | '\u{90}' | '\u{9D}' => None,
            '\u{80}'..='\u{9F}' => Some(SLOPPY_WINDOWS_1252.decode[c as usize]),
            _ => Some(c),
        })
        .collect()
}

/// A byte set given as inclusive ranges.
type ByteSet = &'static [(u8, u8)];

fn byte_in(set: ByteSet, byte: u8) -> bool {
    set.iter().any(|&(lo, hi)| (lo..=hi).contains(&byte))
}

/// Length of the first of `patterns` (fixed-length byte sequences) that matches at `pos`.
fn match_first(patterns: &[&[ByteSet]], bytes: &[u8], pos: usize) -> Option<usize> {
    patterns.iter().find_map(|pattern| {
        let fits = bytes.len() - pos >= pattern.len()
            && pattern
                .iter()
                .zip(&bytes[pos..])
                .all(|(set, &b)| byte_in(set, b));
        fits.then_some(pattern.len())
    })
}

/// Python's `pattern.sub`: each leftmost match (first alternative that fits) is replaced by
/// `replace(matched bytes)`; the scan continues after it.
fn substitute(
    bytes: &[u8],
    patterns: &[&[ByteSet]],
    replace: impl Fn(&[u8]) -> Vec<u8>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut pos = 0;
    while pos < bytes.len() {
        match match_first(patterns, bytes, pos) {
            Some(len) => {
                out.extend(replace(&bytes[pos..pos + len]));
                pos += len;
            }
            None => {
                out.push(bytes[pos]);
                pos += 1;
            }
        }
    }
    out
}

const SPACE: ByteSet = &[(b' ', b' ')];
const CONT: ByteSet = &[(0x80, 0xBF)];
/// Continuation bytes except 85 and A0, which a code page may have turned into whitespace.
const CONT_NOT_SPACE: ByteSet = &[(0x80, 0x84), (0x86, 0x9F), (0xA1, 0xBF)];

/// UTF-8 sequences whose A0 byte seems to have become a space (`chardata.ALTERED_UTF8_RE`).
const ALTERED_UTF8: &[&[ByteSet]] = &[
    &[
        &[
            (0xC2, 0xC3),
            (0xC5, 0xC5),
            (0xCE, 0xCE),
            (0xD0, 0xD0),
            (0xD9, 0xD9),
        ],
        SPACE,
    ],
    &[&[(0xE2, 0xE3)], SPACE, CONT_NOT_SPACE],
    &[&[(0xE0, 0xE3)], CONT_NOT_SPACE, SPACE],
    &[&[(0xF0, 0xF0)], SPACE, CONT, CONT],
    &[&[(0xF0, 0xF0)], CONT, SPACE, CONT],
    &[&[(0xF0, 0xF0)], CONT, CONT, SPACE],
];

fn find_altered_utf8(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&pos| match_first(ALTERED_UTF8, bytes, pos).is_some())
}

/// `fixes.restore_byte_a0`: `Ã ` before a word becomes `à ` (C3 A0, then the space), except
/// before a second space or Portuguese `quele`/`quela`/`quilo`/`s `; then every space inside
/// an altered UTF-8 sequence becomes A0.
fn restore_byte_a0(bytes: &[u8]) -> Vec<u8> {
    const EXCEPTIONS: [&[u8]; 5] = [b" ", b"quele", b"quela", b"quilo", b"s "];
    let mut grave = Vec::with_capacity(bytes.len() + 8);
    let mut pos = 0;
    while pos < bytes.len() {
        if bytes[pos] == 0xC3
            && bytes.get(pos + 1) == Some(&b' ')
            && !EXCEPTIONS.iter().any(|e| bytes[pos + 2..].starts_with(e))
        {
            grave.extend_from_slice(b"\xC3\xA0 ");
            pos += 2;
        } else {
            grave.push(bytes[pos]);
            pos += 1;
        }
    }
    substitute(&grave, ALTERED_UTF8, |m| {
        m.iter()
            .map(|&b| if b == b' ' { 0xA0 } else { b })
            .collect()
    })
}

const SUB: ByteSet = &[(0x1A, 0x1A)];
const SUB_OR_QUESTION: ByteSet = &[(0x1A, 0x1A), (b'?', b'?')];
const SUB_OR_CONT: ByteSet = &[(0x1A, 0x1A), (0x80, 0xBF)];
const SUB_QUESTION_OR_CONT: ByteSet = &[(0x1A, 0x1A), (b'?', b'?'), (0x80, 0xBF)];
const ED: ByteSet = &[(0xED, 0xED)];

/// UTF-8 sequences with a byte lost to `?` or 0x1A (`chardata.LOSSY_UTF8_RE`), and 0x1A.
const LOSSY_UTF8: &[&[ByteSet]] = &[
    &[&[(0xC2, 0xDF)], SUB],
    &[&[(0xC2, 0xC3)], &[(b'?', b'?')]],
    &[
        ED,
        &[(0xA0, 0xAF)],
        SUB_OR_QUESTION,
        ED,
        &[(0xB0, 0xBF)],
        SUB_QUESTION_OR_CONT,
    ],
    &[
        ED,
        &[(0xA0, 0xAF)],
        SUB_QUESTION_OR_CONT,
        ED,
        &[(0xB0, 0xBF)],
        SUB_OR_QUESTION,
    ],
    &[&[(0xE0, 0xEF)], SUB_OR_QUESTION, SUB_OR_CONT],
    &[&[(0xE0, 0xEF)], SUB_OR_CONT, SUB_OR_QUESTION],
    &[&[(0xF0, 0xF4)], SUB_OR_QUESTION, SUB_OR_CONT, SUB_OR_CONT],
    &[&[(0xF0, 0xF4)], SUB_OR_CONT, SUB_OR_QUESTION, SUB_OR_CONT],
    &[&[(0xF0, 0xF4)], SUB_OR_CONT, SUB_OR_CONT, SUB_OR_QUESTION],
    &[SUB],
];

/// `fixes.replace_lossy_sequences`: each such sequence becomes U+FFFD's UTF-8 bytes.
fn replace_lossy_sequences(bytes: &[u8]) -> Vec<u8> {
    substitute(bytes, LOSSY_UTF8, |_| "\u{FFFD}".as_bytes().to_vec())
}

/// End of the run of UTF-8-looking characters (`chardata.UTF8_DETECTOR_RE`) that starts at
/// `pos`, if one does: one or more lead characters each followed by enough continuation
/// characters, not preceded by a strict continuation character.
fn utf8_run_end(chars: &[char], pos: usize) -> Option<usize> {
    if pos > 0 && in_ranges(UTF8_CONTINUATION_STRICT, chars[pos - 1]) {
        return None;
    }
    let continued = |from: usize, count: usize| {
        chars.len() >= from + count
            && chars[from..from + count]
                .iter()
                .all(|&c| in_ranges(UTF8_CONTINUATION, c))
    };
    let mut end = pos;
    while let Some(&lead) = chars.get(end) {
        let step = [
            (UTF8_FIRST_OF_2, 1),
            (UTF8_FIRST_OF_3, 2),
            (UTF8_FIRST_OF_4, 3),
        ]
        .iter()
        .find(|&&(set, count)| in_ranges(set, lead) && continued(end + 1, count))
        .map(|&(_, count)| count + 1);
        match step {
            Some(len) => end += len,
            None => break,
        }
    }
    (end > pos).then_some(end)
}

fn has_utf8_run(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len()).any(|pos| utf8_run_end(&chars, pos).is_some())
}

/// `fixes.decode_inconsistent_utf8`: each UTF-8-looking run that is shorter than the whole
/// text and looks bad on its own is fixed on its own.
fn decode_inconsistent_utf8(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    while pos < chars.len() {
        match utf8_run_end(&chars, pos) {
            Some(end) => {
                let run: String = chars[pos..end].iter().collect();
                if end - pos < chars.len() && is_bad(&run) {
                    out.push_str(&fix_encoding(&run));
                } else {
                    out.push_str(&run);
                }
                pos = end;
            }
            None => {
                out.push(chars[pos]);
                pos += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are what ftfy 6.3.1 returns for the same inputs.
    #[test]
    fn repairs_mojibake() {
        assert_eq!(fix_encoding("caf\u{C3}\u{A9} latte"), "caf\u{E9} latte");
        assert_eq!(fix_encoding("caf\u{E9} latte"), "caf\u{E9} latte");
        assert_eq!(restore_byte_a0(b"\xC3 la"), b"\xC3\xA0 la".to_vec());
        assert_eq!(restore_byte_a0(b"\xC3 s "), b"\xC3\xA0s ".to_vec());
        assert_eq!(
            replace_lossy_sequences(b"a\xE2?\x80b\x1A"),
            b"a\xEF\xBF\xBDb\xEF\xBF\xBD".to_vec()
        );
    }
}

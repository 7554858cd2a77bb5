//! The byte-level codecs ftfy's mojibake repair goes through: the single-byte code pages it
//! re-encodes text with (tables generated from CPython's codecs, with ftfy's "sloppy"
//! Windows code pages that keep undefined bytes as Latin-1), strict UTF-8, and ftfy's
//! `utf-8-variants` decoder, which also accepts Java's modified UTF-8 (`C0 80` for NUL) and
//! CESU-8 (a supplementary character written as two encoded surrogates).

use std::collections::HashMap;
use std::sync::OnceLock;

use super::in_ranges;
use super::tables::{Charmap, CHARMAPS};

/// ftfy's `sloppy-windows-1252`, also used to read C1 controls.
pub(super) static SLOPPY_WINDOWS_1252: &Charmap = &CHARMAPS[1];

impl Charmap {
    /// True when every character of `text` is one ftfy would encode with this code page
    /// (`chardata.possible_encoding`).
    pub(super) fn can_encode(&self, text: &str) -> bool {
        text.chars().all(|c| in_ranges(self.possible, c))
    }

    /// The bytes of `text` in this code page; `None` when a character has no byte.
    pub(super) fn encode(&self, text: &str) -> Option<Vec<u8>> {
        let inverse = CHARMAP_INVERSES
            .get_or_init(build_inverses)
            .get(self.name)?;
        text.chars()
            .map(|c| {
                if in_ranges(self.possible, c) {
                    inverse.get(&c).copied()
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Character → byte for each code page, by codec name.
static CHARMAP_INVERSES: OnceLock<HashMap<&'static str, HashMap<char, u8>>> = OnceLock::new();

fn build_inverses() -> HashMap<&'static str, HashMap<char, u8>> {
    CHARMAPS
        .iter()
        .map(|map| {
            // No character appears twice among the encodable ones (gen_tables.py checks
            // each against Python's encoder); for the others the first byte is kept.
            let mut inverse = HashMap::with_capacity(256);
            for (byte, &c) in map.decode.iter().enumerate() {
                inverse.entry(c).or_insert(byte as u8);
            }
            (map.name, inverse)
        })
        .collect()
}

/// Python's `$` in a bytes pattern: at the end, or before a final `\n`.
fn at_end(bytes: &[u8], pos: usize) -> bool {
    pos == bytes.len() || (pos + 1 == bytes.len() && bytes[pos] == b'\n')
}

/// Strict UTF-8 (Python's `bytes.decode("utf-8")`); `None` on any invalid sequence.
pub(super) fn decode_utf8(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_string)
}

/// ftfy's `utf-8-variants` decoder. `C0 80` (or `C0` before the end) is NUL; `ED` followed
/// by a surrogate range byte must start a six-byte CESU-8 pair, and everything between such
/// spots must be strict UTF-8. `None` where Python raises `UnicodeDecodeError`.
pub(super) fn decode_utf8_variants(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len());
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let Some(special) = find_special(rest) else {
            out.push_str(std::str::from_utf8(rest).ok()?);
            break;
        };
        out.push_str(std::str::from_utf8(&rest[..special]).ok()?);
        let rest = &rest[special..];
        pos += special;
        if rest[0] == 0xC0 {
            // A lone C0 at the very end is not valid UTF-8.
            if rest.len() < 2 {
                return None;
            }
            out.push('\0');
            pos += 2;
        } else {
            if rest.len() < 6 || !is_cesu8_pair(rest) {
                return None;
            }
            let code = (u32::from(rest[1] & 0x0F) << 16)
                + (u32::from(rest[2] & 0x3F) << 10)
                + (u32::from(rest[4] & 0x0F) << 6)
                + u32::from(rest[5] & 0x3F)
                + 0x10000;
            out.push(char::from_u32(code)?);
            pos += 6;
        }
    }
    Some(out)
}

/// Where the first special spot of `utf-8-variants` starts: `C0` then `80` or the end, or
/// `ED` then a byte in A0..BF (or the end) then a continuation byte (or the end).
fn find_special(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find(|&i| match bytes[i] {
        0xC0 => bytes.get(i + 1) == Some(&0x80) || at_end(bytes, i + 1),
        0xED => {
            let second = at_end(bytes, i + 1)
                .then_some(i + 1)
                .or_else(|| (0xA0..=0xBF).contains(bytes.get(i + 1)?).then_some(i + 2));
            match second {
                Some(next) => {
                    at_end(bytes, next)
                        || bytes.get(next).is_some_and(|b| (0x80..=0xBF).contains(b))
                }
                None => false,
            }
        }
        _ => false,
    })
}

/// Whether `bytes` starts with `ED [A0-AF] [80-BF] ED [B0-BF] [80-BF]`, where each position
/// after the first may also be Python's `$`.
fn is_cesu8_pair(bytes: &[u8]) -> bool {
    let ranges: [(u8, u8); 6] = [
        (0xED, 0xED),
        (0xA0, 0xAF),
        (0x80, 0xBF),
        (0xED, 0xED),
        (0xB0, 0xBF),
        (0x80, 0xBF),
    ];
    // Each element is `(X|$)`; `$` consumes nothing, which can only succeed at the end.
    let mut pos = 0;
    for (i, &(lo, hi)) in ranges.iter().enumerate() {
        match bytes.get(pos) {
            Some(&b) if (lo..=hi).contains(&b) => pos += 1,
            _ if i > 0 && at_end(bytes, pos) => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are what CPython with ftfy's codecs registered returns.
    #[test]
    fn code_pages() {
        assert_eq!(CHARMAPS[0].name, "latin-1");
        assert_eq!(SLOPPY_WINDOWS_1252.name, "sloppy-windows-1252");
        assert_eq!(SLOPPY_WINDOWS_1252.decode[0x80], '\u{20AC}');
        assert_eq!(SLOPPY_WINDOWS_1252.decode[0x81], '\u{81}');
        assert_eq!(SLOPPY_WINDOWS_1252.decode[0x1A], '\u{FFFD}');
        assert_eq!(
            SLOPPY_WINDOWS_1252.encode("caf\u{C3}\u{A9}\u{20AC}"),
            Some(b"caf\xC3\xA9\x80".to_vec())
        );
        assert!(!SLOPPY_WINDOWS_1252.can_encode("\u{65E5}"));
        assert_eq!(SLOPPY_WINDOWS_1252.encode("\u{65E5}"), None);
    }

    #[test]
    fn utf8_variants() {
        assert_eq!(decode_utf8_variants(b"a\xC0\x80b").as_deref(), Some("a\0b"));
        assert_eq!(
            decode_utf8_variants(b"\xED\xA0\xBD\xED\xB8\x8D").as_deref(),
            Some("\u{1F60D}")
        );
        assert_eq!(decode_utf8_variants(b"\xED\xA0\xBD"), None);
        assert_eq!(
            decode_utf8_variants(b"caf\xC3\xA9").as_deref(),
            Some("caf\u{E9}")
        );
        assert_eq!(decode_utf8_variants(b"\xC0"), None);
        assert_eq!(decode_utf8_variants(b"\xC0\n").as_deref(), Some("\0"));
    }
}

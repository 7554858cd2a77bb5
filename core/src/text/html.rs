//! HTML character references as ftfy's `unescape_html` decodes them (the first fixer of
//! `fix_text`, see [`super::ftfy`]): only `&name;` / `&#...;` with a semicolon, plus
//! all-caps names such as `&EACUTE;`. ftfy leans on Python's `html.unescape` (HTML5 rules,
//! including the legacy names that need no semicolon, e.g. `&amp` or `&copy`) for numeric
//! references and to rule out capitalised names HTML already knows, so that is here too.
//! Prompts copied from web pages carry such references, and token ids change when they are
//! not decoded exactly like the reference.

use super::html_entities::HTML5_ENTITIES;

/// Looks a name (with its `;` when it has one) up in the HTML5 table.
fn entity(name: &str) -> Option<&'static str> {
    HTML5_ENTITIES
        .binary_search_by(|(key, _)| (*key).cmp(name))
        .ok()
        .map(|i| HTML5_ENTITIES[i].1)
}

/// What HTML5 substitutes for numeric references to code points it forbids (NUL, CR and the
/// C1 range, which browsers read as Windows-1252).
fn invalid_charref(code: u32) -> Option<&'static str> {
    Some(match code {
        0x00 => "\u{FFFD}",
        0x0D => "\r",
        0x80 => "\u{20AC}",
        0x81 => "\u{81}",
        0x82 => "\u{201A}",
        0x83 => "\u{192}",
        0x84 => "\u{201E}",
        0x85 => "\u{2026}",
        0x86 => "\u{2020}",
        0x87 => "\u{2021}",
        0x88 => "\u{2C6}",
        0x89 => "\u{2030}",
        0x8A => "\u{160}",
        0x8B => "\u{2039}",
        0x8C => "\u{152}",
        0x8D => "\u{8D}",
        0x8E => "\u{17D}",
        0x8F => "\u{8F}",
        0x90 => "\u{90}",
        0x91 => "\u{2018}",
        0x92 => "\u{2019}",
        0x93 => "\u{201C}",
        0x94 => "\u{201D}",
        0x95 => "\u{2022}",
        0x96 => "\u{2013}",
        0x97 => "\u{2014}",
        0x98 => "\u{2DC}",
        0x99 => "\u{2122}",
        0x9A => "\u{161}",
        0x9B => "\u{203A}",
        0x9C => "\u{153}",
        0x9D => "\u{9D}",
        0x9E => "\u{17E}",
        0x9F => "\u{178}",
        _ => return None,
    })
}

/// Code points a numeric reference may not produce; HTML5 drops them.
fn is_dropped_code_point(code: u32) -> bool {
    matches!(code, 0x01..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F..=0x9F | 0xFDD0..=0xFDEF)
        || (code & 0xFFFE) == 0xFFFE
}

/// The text a numeric reference to `code` stands for (`code` saturates on overflow).
fn numeric_reference(code: u32) -> String {
    if let Some(s) = invalid_charref(code) {
        return s.to_string();
    }
    if (0xD800..=0xDFFF).contains(&code) || code > 0x10FFFF {
        return "\u{FFFD}".to_string();
    }
    if is_dropped_code_point(code) {
        return String::new();
    }
    char::from_u32(code).map(String::from).unwrap_or_default()
}

fn parse_saturating(digits: &str, radix: u32) -> u32 {
    digits.chars().fold(0u32, |acc, c| {
        acc.saturating_mul(radix)
            .saturating_add(c.to_digit(radix).unwrap_or(0))
    })
}

/// Python's `html.unescape`: decodes every character reference the HTML5 parser would.
pub(crate) fn html_unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '&' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match unescape_reference(&chars[i + 1..]) {
            Some((replacement, consumed)) => {
                out.push_str(&replacement);
                i += 1 + consumed;
            }
            None => {
                out.push('&');
                i += 1;
            }
        }
    }
    out
}

/// Decodes the reference that follows an `&` (`rest` starts right after it). Returns the
/// replacement and how many chars of `rest` it used, or `None` when nothing matches there.
fn unescape_reference(rest: &[char]) -> Option<(String, usize)> {
    if rest.first() == Some(&'#') {
        let hex = matches!(rest.get(1), Some('x' | 'X'));
        let start = if hex { 2 } else { 1 };
        let radix = if hex { 16 } else { 10 };
        let len = rest[start..]
            .iter()
            .take_while(|c| c.is_digit(radix))
            .count();
        if len == 0 {
            return None;
        }
        let digits: String = rest[start..start + len].iter().collect();
        let mut consumed = start + len;
        if rest.get(consumed) == Some(&';') {
            consumed += 1;
        }
        return Some((
            numeric_reference(parse_saturating(&digits, radix)),
            consumed,
        ));
    }
    let name_len = rest
        .iter()
        .take(32)
        .take_while(|c| !matches!(c, '\t' | '\n' | '\x0C' | ' ' | '<' | '&' | '#' | ';'))
        .count();
    if name_len == 0 {
        return None;
    }
    let mut consumed = name_len;
    if rest.get(consumed) == Some(&';') {
        consumed += 1;
    }
    let name = &rest[..consumed];
    let whole: String = name.iter().collect();
    if let Some(value) = entity(&whole) {
        return Some((value.to_string(), consumed));
    }
    // HTML5: the longest prefix that is a (legacy, semicolon-free) name, rest kept as text.
    for cut in (2..name.len()).rev() {
        let prefix: String = name[..cut].iter().collect();
        if let Some(value) = entity(&prefix) {
            let tail: String = name[cut..].iter().collect();
            return Some((format!("{value}{tail}"), consumed));
        }
    }
    Some((format!("&{whole}"), consumed))
}

/// ftfy's `unescape_html`: only references of the form `&#?[0-9A-Za-z]{1,24};` are decoded,
/// named ones through the HTML5 table or, when written all in capitals, through the table's
/// lowercase name (`&NTILDE;` → `Ñ`); numeric ones only when `html.unescape` uses the `;`.
pub(crate) fn ftfy_unescape_html(text: &str) -> String {
    if !text.contains('&') {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '&' {
            if let Some(end) = ftfy_reference_end(&chars, i) {
                let reference: String = chars[i..end].iter().collect();
                out.push_str(&ftfy_decode_reference(&reference));
                i = end;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// End (exclusive) of a `&#?[0-9A-Za-z]{1,24};` match starting at `start`.
fn ftfy_reference_end(chars: &[char], start: usize) -> Option<usize> {
    let try_from = |body_start: usize| -> Option<usize> {
        let len = chars[body_start..]
            .iter()
            .take(24)
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        (len > 0 && chars.get(body_start + len) == Some(&';')).then_some(body_start + len + 1)
    };
    if chars.get(start + 1) == Some(&'#') {
        if let Some(end) = try_from(start + 2) {
            return Some(end);
        }
    }
    try_from(start + 1)
}

fn ftfy_decode_reference(reference: &str) -> String {
    let name = &reference[1..];
    if let Some(value) = entity(name) {
        return value.to_string();
    }
    if reference.starts_with("&#") {
        let decoded = html_unescape(reference);
        return if decoded.contains(';') {
            reference.to_string()
        } else {
            decoded
        };
    }
    let lower = name.to_ascii_lowercase();
    if name == name.to_ascii_uppercase() && lower != name && html_unescape(reference) == reference {
        if let Some(value) = entity(&lower) {
            return value.to_uppercase();
        }
    }
    reference.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are what CPython 3.11's html.unescape and ftfy 6.3's unescape_html return.
    #[test]
    fn python_html_unescape() {
        assert_eq!(html_unescape("a &amp; b"), "a & b");
        assert_eq!(html_unescape("&amp;amp;"), "&amp;");
        assert_eq!(html_unescape("&ampxyz"), "&xyz");
        assert_eq!(html_unescape("&notit;"), "\u{AC}it;");
        assert_eq!(html_unescape("&#65;&#x42;&#X43"), "ABC");
        assert_eq!(html_unescape("&#150;"), "\u{2013}");
        assert_eq!(html_unescape("&#0;&#1;&#xD800;"), "\u{FFFD}\u{FFFD}");
        assert_eq!(html_unescape("&#99999999999;"), "\u{FFFD}");
        assert_eq!(html_unescape("&# &x &;"), "&# &x &;");
        assert_eq!(html_unescape("&checkmark;"), "\u{2713}");
    }

    #[test]
    fn entity_table_is_sorted_for_binary_search() {
        assert!(HTML5_ENTITIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(HTML5_ENTITIES.len(), 2231);
    }

    #[test]
    fn ftfy_unescape() {
        assert_eq!(ftfy_unescape_html("&amp;lsquo;"), "&lsquo;");
        assert_eq!(ftfy_unescape_html("P&EACUTE;REZ"), "P\u{C9}REZ");
        assert_eq!(ftfy_unescape_html("STRA&SZLIG;E"), "STRASSE");
        assert_eq!(
            ftfy_unescape_html("&nTILDE; &amp &#x2019;"),
            "&nTILDE; &amp \u{2019}"
        );
        assert_eq!(ftfy_unescape_html("&#65a;"), "&#65a;");
    }
}

//! The syntax of A1111's parameter line, `Steps: 20, Sampler: Euler a, Size: 512x512, ...`.
//!
//! A1111 reads the line with the Python regex
//! `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)` applied with `re.findall`. This file
//! reproduces that regex's matches by hand (the workspace has no regex crate, and the pattern
//! is simple enough that its backtracking collapses to a linear scan), together with the
//! JSON quoting A1111 uses for values that contain `,`, `:` or a newline, and Python's notion of
//! whitespace, which decides what `str.strip()` and `\s` remove.
//!
//! Known difference from Python: `\w` is approximated by [`char::is_alphanumeric`], which also
//! accepts a few combining marks that Python's `str.isalnum` rejects; keys in practice are
//! ASCII, so this never shows.

/// Python's `str.isspace` (and what `\s` matches in a `str` regex): Unicode White_Space plus the
/// four ASCII information separators U+001C..U+001F, which Python counts as whitespace.
pub fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
pub fn python_strip(s: &str) -> &str {
    s.trim_matches(is_python_space)
}

/// `\w` in a Python `str` regex: letters, digits and other numerics, and `_`.
fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The character class `[\w \-/]` that continues a key after its first character.
fn is_key_char(c: char) -> bool {
    is_word(c) || c == ' ' || c == '-' || c == '/'
}

/// One match of the parameter regex: the key and the value exactly as written (still quoted
/// if it was quoted; possibly empty, possibly with trailing spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawParam<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

/// Every match of A1111's parameter regex in `line`, in order, as `re.findall` finds them.
///
/// `line` is one line of text (A1111 only ever scans the text after the last `\n`).
pub fn scan(line: &str) -> Vec<RawParam<'_>> {
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let scanner = Scanner {
        line,
        chars: &chars,
    };
    let mut found = Vec::new();
    let mut pos = 0;
    while pos < chars.len() {
        match scanner.match_at(pos) {
            Ok((param, end)) => {
                found.push(param);
                pos = end;
            }
            // Every start inside the same failed key fails the same way, so skip past it;
            // this keeps the scan linear on long lines without a colon.
            Err(next) => pos = next.max(pos + 1),
        }
    }
    found
}

/// The line and its characters with their byte offsets (two lifetimes: the matches borrow
/// the line, not the scratch vector of characters).
struct Scanner<'a, 'c> {
    line: &'a str,
    chars: &'c [(usize, char)],
}

impl<'a> Scanner<'a, '_> {
    fn char(&self, i: usize) -> Option<char> {
        self.chars.get(i).map(|&(_, c)| c)
    }

    /// Byte offset of char index `i` (the line length at the end).
    fn byte(&self, i: usize) -> usize {
        self.chars.get(i).map_or(self.line.len(), |&(b, _)| b)
    }

    /// Tries the regex at char index `start`. On success returns the match and the char
    /// index where the next search starts; on failure, the first index worth trying next.
    fn match_at(&self, start: usize) -> Result<(RawParam<'a>, usize), usize> {
        let n = self.chars.len();
        // `\s*` cannot give anything back: whitespace is never `\w`, which must follow.
        let mut i = start;
        while self.char(i).is_some_and(is_python_space) {
            i += 1;
        }
        // `(\w[\w \-/]+):` — the greedy class never contains `:`, so the key is the whole run
        // and must be followed by the colon directly.
        let key_start = i;
        if !self.char(i).is_some_and(is_word) {
            return Err(i + 1);
        }
        i += 1;
        while self.char(i).is_some_and(is_key_char) {
            i += 1;
        }
        if i - key_start < 2 || self.char(i) != Some(':') {
            return Err(i);
        }
        let key = &self.line[self.byte(key_start)..self.byte(i)];
        i += 1;
        while self.char(i).is_some_and(is_python_space) {
            i += 1;
        }
        let value_start = i;
        // First alternative: a quoted value, which only counts when `,` or the end follows.
        if let Some(end) = self.quoted_end(value_start) {
            match self.char(end) {
                None => return Ok((self.param(key, value_start, end), n)),
                Some(',') => return Ok((self.param(key, value_start, end), end + 1)),
                Some(_) => {}
            }
        }
        // Second alternative: everything up to the next comma; it always matches.
        let mut end = value_start;
        while self.char(end).is_some_and(|c| c != ',') {
            end += 1;
        }
        let next = if end < n { end + 1 } else { n };
        Ok((self.param(key, value_start, end), next))
    }

    fn param(&self, key: &'a str, from: usize, to: usize) -> RawParam<'a> {
        RawParam {
            key,
            value: &self.line[self.byte(from)..self.byte(to)],
        }
    }

    /// `"(?:\\.|[^\\"])+"` at char index `i`: the index just past the closing quote.
    ///
    /// The repetition is deterministic: a backslash always pairs with the next character
    /// (any but a newline), and a bare `"` can only end it, so giving back repetitions can
    /// never expose another closing quote.
    fn quoted_end(&self, mut i: usize) -> Option<usize> {
        if self.char(i) != Some('"') {
            return None;
        }
        i += 1;
        let body_start = i;
        loop {
            match (self.char(i), self.char(i + 1)) {
                (Some('\\'), Some(next)) if next != '\n' => i += 2,
                (Some(c), _) if c != '\\' && c != '"' => i += 1,
                _ => break,
            }
        }
        (i > body_start && self.char(i) == Some('"')).then_some(i + 1)
    }
}

/// A1111's `quote`: a value containing `,`, `:` or a newline is written as a JSON string
/// (non-ASCII kept as is), anything else verbatim.
pub fn quote(value: &str) -> String {
    if value.contains([',', ':', '\n']) {
        // Serialising a string cannot fail; the fallback is unreachable but keeps this total.
        serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
    } else {
        value.to_string()
    }
}

/// A1111's `unquote`: a value in double quotes that is a valid JSON string is decoded;
/// anything else (including invalid JSON such as `"bad \q"`) is returned unchanged.
pub fn unquote(value: &str) -> String {
    if value.starts_with('"') && value.ends_with('"') {
        if let Ok(decoded) = serde_json::from_str::<String>(value) {
            return decoded;
        }
    }
    value.to_string()
}

/// A1111's image-size pattern `^(\d+)x(\d+)$` (Python's `$` also matches before one final
/// newline): the two numbers as written. Only ASCII digits are accepted.
pub fn split_size(value: &str) -> Option<(&str, &str)> {
    let value = value.strip_suffix('\n').unwrap_or(value);
    let (w, h) = value.split_once('x')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(w) && digits(h)).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(line: &str) -> Vec<(&str, &str)> {
        scan(line).into_iter().map(|p| (p.key, p.value)).collect()
    }

    #[test]
    fn scans_plain_and_quoted_values() {
        assert_eq!(
            pairs(r#"Steps: 20, Template: "a, b", Size: 512x512"#),
            vec![
                ("Steps", "20"),
                ("Template", r#""a, b""#),
                ("Size", "512x512")
            ]
        );
    }

    #[test]
    fn quoted_value_needs_comma_or_end_after_it() {
        assert_eq!(
            pairs(r#"Ka: "q" y, Kb: 1"#),
            vec![("Ka", r#""q" y"#), ("Kb", "1")]
        );
    }

    #[test]
    fn single_character_keys_do_not_match() {
        assert!(pairs("A: 1, B: 2").is_empty());
    }

    #[test]
    fn long_lines_without_colons_scan_quickly() {
        let line = "a".repeat(200_000);
        assert!(scan(&line).is_empty());
    }
}

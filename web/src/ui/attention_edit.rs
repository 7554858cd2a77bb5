//! Ctrl+Up / Ctrl+Down in a prompt, as A1111's `edit-attention.js` does it with its default
//! settings: with nothing selected, the enclosing `<…>`, `(…)` or `[…]` block or else the
//! word at the cursor is taken; its weight goes up or down by 0.1 (0.05 for an
//! extra-network tag's multiplier), written as `(text:1.1)`; old-style `((text))` and
//! `[text]` become their explicit weight first; a weight back at 1 drops the brackets.
//! Works on UTF-16 offsets, as a textarea's selection is.

/// A1111's `keyedit_delimiters` default, plus its whitespace delimiters (tab, CR, LF).
const DELIMITERS: &str = ".,\\/!?%^*;:{}=`~() \t\r\n";

/// The prompt after the edit, with the new selection; `None` when nothing changes.
pub fn edit_attention(
    text: &str,
    start: usize,
    end: usize,
    up: bool,
) -> Option<(String, usize, usize)> {
    let mut t: Vec<u16> = text.encode_utf16().collect();
    let (mut s, mut e) = (start.min(t.len()), end.min(t.len()));
    let ch = |t: &[u16], i: isize| -> Option<char> {
        (i >= 0 && (i as usize) < t.len())
            .then(|| char::from_u32(t[i as usize] as u32).unwrap_or('\u{fffd}'))
    };
    let find = |t: &[u16], from: usize, to: usize, c: char, last: bool| -> Option<usize> {
        let mut it = (from..to).filter(|&i| t[i] == c as u16);
        if last {
            it.next_back()
        } else {
            it.next()
        }
    };
    // The enclosing block of OPEN…CLOSE around the cursor, minus a `:weight` suffix.
    let block = |t: &[u16], s: &mut usize, e: &mut usize, open: char, close: char| -> bool {
        if s != e {
            return false;
        }
        let Some(before_open) = find(t, 0, *s, open, true) else {
            return false;
        };
        if find(t, 0, *s, close, true).is_some_and(|c| c > before_open) {
            return false;
        }
        let Some(after_close) = find(t, *s, t.len(), close, false) else {
            return false;
        };
        if find(t, *s, t.len(), open, false).is_some_and(|o| o < after_close) {
            return false;
        }
        let content = String::from_utf16_lossy(&t[before_open + 1..after_close]);
        // A1111 tests the block for `:` followed by a number anywhere, then cuts at the last `:`.
        let weighted = content.match_indices(':').any(|(c, _)| {
            let w = content[c + 1..]
                .strip_prefix('-')
                .unwrap_or(&content[c + 1..]);
            w.starts_with(|ch: char| ch == '.' || ch.is_ascii_digit())
        });
        *s = before_open + 1;
        *e = if weighted {
            *s + content[..content.rfind(':').unwrap_or(0)]
                .encode_utf16()
                .count()
        } else {
            after_close
        };
        true
    };
    if !block(&t, &mut s, &mut e, '<', '>')
        && !block(&t, &mut s, &mut e, '(', ')')
        && !block(&t, &mut s, &mut e, '[', ']')
        && s == e
    {
        let delim = |c: Option<char>| c.is_some_and(|c| DELIMITERS.contains(c));
        while s > 0 && !delim(ch(&t, s as isize - 1)) {
            s -= 1;
        }
        while e < t.len() && !delim(ch(&t, e as isize)) {
            e += 1;
        }
        while s < e && ch(&t, s as isize) == Some(' ') {
            s += 1;
        }
        while e > s && ch(&t, e as isize - 1) == Some(' ') {
            e -= 1;
        }
    }
    let mut close = ')';
    let mut delta = 0.1;
    let before = if s > 0 { ch(&t, s as isize - 1) } else { None };
    let after = ch(&t, e as isize);
    let utf16 = |x: &str| x.encode_utf16().collect::<Vec<u16>>();
    if before == Some('<') {
        close = '>';
        delta = 0.05;
    } else if (before == Some('(') && after == Some(')'))
        || (before == Some('[') && after == Some(']'))
    {
        let (open_c, close_c) = (before.unwrap_or('('), after.unwrap_or(')'));
        let mut n = 0usize;
        while s > n
            && ch(&t, (s - n - 1) as isize) == Some(open_c)
            && ch(&t, (e + n) as isize) == Some(close_c)
        {
            n += 1;
        }
        let w = if open_c == '[' {
            (1.0f64 / 1.1).powi(n as i32)
        } else {
            1.1f64.powi(n as i32)
        };
        let w = (w / 0.1).round() * 0.1;
        let mut out = t[..s - n].to_vec();
        out.extend(utf16("("));
        out.extend_from_slice(&t[s..e]);
        out.extend(utf16(&format!(":{})", js_number(w))));
        out.extend_from_slice(&t[e + n..]);
        t = out;
        s = s + 1 - n;
        e = e + 1 - n;
    } else if before != Some('(') {
        while e > s && ch(&t, e as isize - 1) == Some(' ') {
            e -= 1;
        }
        if s == e {
            return None;
        }
        let mut out = t[..s].to_vec();
        out.extend(utf16("("));
        out.extend_from_slice(&t[s..e]);
        out.extend(utf16(":1.0)"));
        out.extend_from_slice(&t[e..]);
        t = out;
        s += 1;
        e += 1;
    }
    if ch(&t, e as isize) != Some(':') {
        return None;
    }
    let weight_len = find(&t, e + 1, t.len(), close, false).map(|c| c - e)?;
    let weight: f64 = String::from_utf16_lossy(&t[e + 1..e + weight_len])
        .trim()
        .parse()
        .ok()?;
    let w = weight + if up { delta } else { -delta };
    let w: f64 = format!("{w:.11e}").parse().unwrap_or(w);
    let mut out;
    if close == ')' && w == 1.0 {
        out = t[..s - 1].to_vec();
        out.extend_from_slice(&t[s..e]);
        out.extend_from_slice(&t[e + weight_len + 1..]);
        s -= 1;
        e -= 1;
    } else {
        out = t[..e + 1].to_vec();
        out.extend(utf16(&js_weight(w)));
        out.extend_from_slice(&t[e + weight_len..]);
    }
    Some((String::from_utf16_lossy(&out), s, e))
}

/// A number as JavaScript prints it (shortest round-trip form).
fn js_number(v: f64) -> String {
    format!("{v}")
}

/// A weight as A1111 writes it: a whole number gets `.0`.
fn js_weight(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::edit_attention;

    fn at(text: &str, cursor: usize, up: bool) -> String {
        edit_attention(text, cursor, cursor, up)
            .map(|r| r.0)
            .unwrap_or_else(|| text.to_string())
    }

    #[test]
    fn a_word_gets_a_weight_and_loses_it_at_one() {
        assert_eq!(at("a red cube", 4, true), "a (red:1.1) cube");
        assert_eq!(at("a (red:1.1) cube", 5, true), "a (red:1.2) cube");
        assert_eq!(at("a (red:1.1) cube", 5, false), "a red cube");
        assert_eq!(at("a red cube", 4, false), "a (red:0.9) cube");
    }

    #[test]
    fn old_style_brackets_and_tags() {
        assert_eq!(at("((red)) cube", 3, true), "(red:1.3) cube");
        // `[red]` is ×1/1.1, rounded to 0.9; one step up is 1, which drops the brackets.
        assert_eq!(at("[red] cube", 2, true), "red cube");
        assert_eq!(at("[red] cube", 2, false), "(red:0.8) cube");
        assert_eq!(at("<lora:x:0.5>", 3, true), "<lora:x:0.55>");
        let (text, s, e) = edit_attention("a red cube", 2, 5, true).unwrap();
        assert_eq!((text.as_str(), s, e), ("a (red:1.1) cube", 3, 6));
    }
}

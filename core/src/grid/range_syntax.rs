//! A1111's range syntax for numeric axes, matched as its regular expressions match
//! (backtracking included) and expanded as its `range` / numpy calls expand:
//!
//! | text          | whole numbers (`Seed`, `Steps`, ...)  | real numbers (`CFG Scale`, ...)        |
//! |---------------|----------------------------------------|----------------------------------------|
//! | `1-5`         | 1, 2, 3, 4, 5                          | 1.0, 2.0, 3.0, 4.0, 5.0                |
//! | `1-5 (+2)`    | 1, 3, 5 (`range(a, b + 1, s)`)         | `arange(a, b + s, s)`                  |
//! | `1-10 [5]`    | 1, 3, 5, 7, 10 (`linspace`, truncated) | `linspace(a, b, n)`                    |
//!
//! The step needs its sign (`(+2)`, `(-1)`); the patterns' unescaped `.` lets any
//! character stand where a decimal point goes (`1e2-2e2 [3]` is 100, 150, 200 and
//! `1e-05` is the malformed range `1e`..`05`). A field that is not a range must be a plain
//! number. Whatever Python rejects is an [`Error::Invalid`] naming the field.

use crate::{Error, Result};

/// Which numbers an axis takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NumberKind {
    Int,
    Float,
}

/// The groups of a matched range: start, end and the step or count text.
struct RangeMatch {
    start: String,
    end: String,
    extra: Option<String>,
}

/// Which bracket follows the range: `(step)` or `[count]`.
#[derive(Clone, Copy, PartialEq)]
enum Suffix {
    Step,
    Count,
}

/// Most values one axis may expand to (a grid has at most
/// [`MAX_GRID_CELLS`](super::layout::MAX_GRID_CELLS) cells in all).
pub const MAX_AXIS_VALUES: usize = 1024;
/// Longest field read as a number or range; longer text is no number anyone means.
const MAX_NUMBER_FIELD: usize = 256;

fn too_many(field: &str) -> Error {
    bad(
        field,
        &format!("the axis expands to more than {MAX_AXIS_VALUES} values"),
    )
}

fn check_field(field: &str) -> Result<()> {
    if field.len() > MAX_NUMBER_FIELD {
        return Err(bad(
            &format!("{}…", field.chars().take(40).collect::<String>()),
            &format!("longer than {MAX_NUMBER_FIELD} characters"),
        ));
    }
    Ok(())
}

/// `linspace`'s count, refused when negative or above [`MAX_AXIS_VALUES`].
fn count(n: i64, field: &str) -> Result<usize> {
    match usize::try_from(n) {
        Ok(n) if n <= MAX_AXIS_VALUES => Ok(n),
        Ok(_) => Err(too_many(field)),
        Err(_) => Err(bad(field, "the count of a range must not be negative")),
    }
}

/// Appends `values` to `out`, refusing to grow past [`MAX_AXIS_VALUES`].
fn push_all<T>(out: &mut Vec<T>, values: Vec<T>, field: &str) -> Result<()> {
    if out.len() + values.len() > MAX_AXIS_VALUES {
        return Err(too_many(field));
    }
    out.extend(values);
    Ok(())
}

/// Expands a whole-number axis' fields.
pub fn int_values(fields: &[String]) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for field in fields {
        check_field(field)?;
        if let Some(m) = match_range(field, NumberKind::Int, Suffix::Step) {
            let start = python_int(&m.start, field)?;
            let end = python_int(&m.end, field)?
                .checked_add(1)
                .ok_or_else(|| bad(field, "the end of the range is out of range"))?;
            let step = m
                .extra
                .as_deref()
                .map(|s| python_int(s, field))
                .transpose()?;
            let step = step.unwrap_or(1);
            if step == 0 {
                return Err(bad(field, "the step of a range must not be zero"));
            }
            let mut v = start;
            while (step > 0 && v < end) || (step < 0 && v > end) {
                if out.len() >= MAX_AXIS_VALUES {
                    return Err(too_many(field));
                }
                out.push(v);
                match v.checked_add(step) {
                    Some(next) => v = next,
                    None => break,
                }
            }
        } else if let Some(m) = match_range(field, NumberKind::Int, Suffix::Count) {
            let start = python_int(&m.start, field)? as f64;
            let end = python_int(&m.end, field)? as f64;
            let num = match &m.extra {
                Some(n) => count(python_int(n, field)?, field)?,
                None => 1,
            };
            let values = linspace(start, end, num)
                .into_iter()
                .map(|x| x as i64)
                .collect();
            push_all(&mut out, values, field)?;
        } else {
            push_all(&mut out, vec![python_int(field, field)?], field)?;
        }
    }
    Ok(out)
}

/// Expands a real-number axis' fields.
pub fn float_values(fields: &[String]) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for field in fields {
        check_field(field)?;
        if let Some(m) = match_range(field, NumberKind::Float, Suffix::Step) {
            let start = python_float(&m.start, field)?;
            let end = python_float(&m.end, field)?;
            let step = match &m.extra {
                Some(s) => python_float(s, field)?,
                None => 1.0,
            };
            if step == 0.0 {
                return Err(bad(field, "the step of a range must not be zero"));
            }
            let len = ((end + step - start) / step).ceil();
            if len > MAX_AXIS_VALUES as f64 {
                return Err(too_many(field));
            }
            push_all(&mut out, arange(start, end + step, step), field)?;
        } else if let Some(m) = match_range(field, NumberKind::Float, Suffix::Count) {
            let start = python_float(&m.start, field)?;
            let end = python_float(&m.end, field)?;
            let num = match &m.extra {
                Some(n) => count(python_int(n, field)?, field)?,
                None => 1,
            };
            push_all(&mut out, linspace(start, end, num), field)?;
        } else {
            push_all(&mut out, vec![python_float(field, field)?], field)?;
        }
    }
    Ok(out)
}

fn bad(field: &str, why: &str) -> Error {
    Error::Invalid(format!("grid value `{field}`: {why}"))
}

/// `numpy.arange(start, stop, step)` for floats: `ceil((stop - start) / step)` values,
/// the i-th being `start + i * ((start + step) - start)` as numpy fills them.
fn arange(start: f64, stop: f64, step: f64) -> Vec<f64> {
    let len = ((stop - start) / step).ceil();
    if len.is_nan() || len <= 0.0 {
        return Vec::new();
    }
    // A range this long is a typo; numpy would try to allocate it.
    let len = len.min(1e6) as usize;
    let delta = (start + step) - start;
    (0..len)
        .map(|i| {
            if i == 0 {
                start
            } else {
                start + i as f64 * delta
            }
        })
        .collect()
}

/// `numpy.linspace(start, stop, num)`: `i * step + start`, the last value exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    let num = num.min(1_000_000);
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let div = (num - 1) as f64;
    let delta = stop - start;
    let step = delta / div;
    let mut v: Vec<f64> = (0..num)
        .map(|i| {
            if step == 0.0 {
                i as f64 / div * delta + start
            } else {
                i as f64 * step + start
            }
        })
        .collect();
    v[num - 1] = stop;
    v
}

/// Python's `int(text)`: surrounding whitespace, an optional sign, then digits.
fn python_int(text: &str, field: &str) -> Result<i64> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(field, &format!("`{text}` is not a whole number")));
    }
    t.parse::<i64>()
        .map_err(|_| bad(field, &format!("`{text}` is out of range")))
}

/// Python's `float(text)` for the forms people type (`1`, `1.5`, `.5`, `1e3`, `inf`).
fn python_float(text: &str, field: &str) -> Result<f64> {
    let t = text.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let plausible = !body.is_empty()
        && !body.starts_with(['+', '-'])
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '+' || c == '-');
    match t.parse::<f64>() {
        Ok(v) if plausible => Ok(v),
        _ => Err(bad(field, &format!("`{text}` is not a number"))),
    }
}

// ---- the matcher ----------------------------------------------------------------------
// Each piece returns every end position it can reach from `pos`, in the order a
// backtracking regex engine tries them (greedy: longest first), so the first complete
// match found is the one Python's `re.fullmatch` reports.

/// `\s*`
fn spaces(s: &[char], pos: usize) -> Vec<usize> {
    let mut end = pos;
    while end < s.len() && s[end].is_whitespace() {
        end += 1;
    }
    (pos..=end).rev().collect()
}

/// `\d+`
fn digits(s: &[char], pos: usize) -> Vec<usize> {
    let mut end = pos;
    while end < s.len() && s[end].is_ascii_digit() {
        end += 1;
    }
    (pos + 1..=end).rev().collect()
}

/// `\d+` for whole numbers, `\d+(?:.\d*)?` for reals (`.` is any character but a newline).
fn unsigned(s: &[char], pos: usize, kind: NumberKind) -> Vec<usize> {
    let mut ends = Vec::new();
    for d in digits(s, pos) {
        if kind == NumberKind::Float && d < s.len() && s[d] != '\n' {
            let mut frac = digits(s, d + 1);
            frac.push(d + 1);
            ends.extend(frac);
        }
        ends.push(d);
    }
    ends
}

/// `[+-]?\s*` followed by [`unsigned`]: a range's start or end.
fn bound(s: &[char], pos: usize, kind: NumberKind) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut starts = Vec::new();
    if pos < s.len() && (s[pos] == '+' || s[pos] == '-') {
        starts.push(pos + 1);
    }
    starts.push(pos);
    for after_sign in starts {
        for after_space in spaces(s, after_sign) {
            ends.extend(unsigned(s, after_space, kind));
        }
    }
    ends
}

/// `\s*\(([+-]NUM)\s*\)` or `\s*\[(NUM)\s*]`: end position and the group's span.
fn suffix(s: &[char], pos: usize, kind: NumberKind, which: Suffix) -> Vec<(usize, usize, usize)> {
    let (open, close) = match which {
        Suffix::Step => ('(', ')'),
        Suffix::Count => ('[', ']'),
    };
    let mut out = Vec::new();
    for a in spaces(s, pos) {
        if a >= s.len() || s[a] != open {
            continue;
        }
        let g0 = a + 1;
        let num_start = match which {
            Suffix::Step if g0 < s.len() && (s[g0] == '+' || s[g0] == '-') => g0 + 1,
            Suffix::Step => continue,
            Suffix::Count => g0,
        };
        for g1 in unsigned(s, num_start, kind) {
            for b in spaces(s, g1) {
                if b < s.len() && s[b] == close {
                    out.push((b + 1, g0, g1));
                }
            }
        }
    }
    out
}

/// `re.fullmatch` of A1111's range patterns against `field`.
fn match_range(field: &str, kind: NumberKind, which: Suffix) -> Option<RangeMatch> {
    let s: Vec<char> = field.chars().collect();
    let text = |a: usize, b: usize| s[a..b].iter().collect::<String>();
    for e0 in spaces(&s, 0) {
        for e1 in bound(&s, e0, kind) {
            for e2 in spaces(&s, e1) {
                if e2 >= s.len() || s[e2] != '-' {
                    continue;
                }
                for e3 in spaces(&s, e2 + 1) {
                    for e4 in bound(&s, e3, kind) {
                        // The optional group is tried present first, then absent.
                        let mut tails: Vec<(usize, Option<(usize, usize)>)> =
                            suffix(&s, e4, kind, which)
                                .into_iter()
                                .map(|(end, g0, g1)| (end, Some((g0, g1))))
                                .collect();
                        tails.push((e4, None));
                        for (e5, group) in tails {
                            if spaces(&s, e5).first() == Some(&s.len()) {
                                return Some(RangeMatch {
                                    start: text(e0, e1),
                                    end: text(e3, e4),
                                    extra: group.map(|(a, b)| text(a, b)),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ints(t: &str) -> Result<Vec<i64>> {
        int_values(&crate::grid::csv_fields::split_fields(t))
    }
    fn floats(t: &str) -> Result<Vec<f64>> {
        float_values(&crate::grid::csv_fields::split_fields(t))
    }

    // Expected values restate Python's `range` / numpy on the same input (see
    // tests/fixtures/grid/make_grid_fixtures.py for the full vector set).
    #[test]
    fn ranges_expand_as_a1111() {
        assert_eq!(ints("1-5").unwrap(), [1, 2, 3, 4, 5]);
        assert_eq!(ints("1-5 (+2)").unwrap(), [1, 3, 5]);
        assert_eq!(ints("5-1 (-1)").unwrap(), [5, 4, 3]);
        assert_eq!(ints("1-10 [5]").unwrap(), [1, 3, 5, 7, 10]);
        assert_eq!(ints("-3--1").unwrap(), [-3, -2, -1]);
        assert_eq!(
            floats("0.5-1.5 (+0.25)").unwrap(),
            [0.5, 0.75, 1.0, 1.25, 1.5]
        );
        assert_eq!(floats("1.0-2.0 [5]").unwrap(), [1.0, 1.25, 1.5, 1.75, 2.0]);
        assert_eq!(floats("1e2-2e2 [3]").unwrap(), [100.0, 150.0, 200.0]);
    }

    #[test]
    fn malformed_fields_are_errors_naming_the_field() {
        for t in [
            "1 - 5 ( +2 )",
            "1-5 (+0)",
            "abc",
            "1.5",
            "- 5-3",
            "1-2-3",
            "1,,2",
        ] {
            let e = ints(t).unwrap_err().to_string();
            assert!(e.contains("grid value"), "{t}: {e}");
        }
        for t in ["1e-05", "0-1 [2.0]", "x", "1-2 (0.5)"] {
            assert!(floats(t).is_err(), "{t}");
        }
    }
}

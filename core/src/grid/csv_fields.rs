//! Splitting an axis' value text into fields the way A1111 does: Python's `csv.reader`
//! (default "excel" dialect, not strict) over the text's lines, every record flattened
//! into one list, every field stripped afterwards.
//!
//! The dialect's quirks are kept on purpose so that a values string copied from A1111
//! gives the same cells: a quote only opens a quoted field as the field's very first
//! character (`a, "b, c"` splits into `a`, `"b`, `c"`; write `a,"b, c"`), `""` inside
//! quotes is one quote, text after a closing quote is appended, and a quote left open at
//! the end closes silently.

/// The stripped fields of `text`, as A1111's `csv_string_to_list_strip`.
pub fn split_fields(text: &str) -> Vec<String> {
    parse_records(text)
        .into_iter()
        .flatten()
        .map(|f| f.trim_matches(is_python_space).to_string())
        .collect()
}

/// What `str.strip()` with no argument removes.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// Python's csv state machine for delimiter `,`, quote `"`, doubled quotes, no escape.
fn parse_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut state = State::StartRecord;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let newline = c == '\n' || c == '\r';
        if newline && c == '\r' && chars.peek() == Some(&'\n') && state != State::InQuoted {
            chars.next();
        }
        match state {
            State::StartRecord | State::StartField => {
                if newline {
                    if state == State::StartField {
                        record.push(std::mem::take(&mut field));
                    }
                    records.push(std::mem::take(&mut record));
                    state = State::StartRecord;
                } else if c == '"' {
                    state = State::InQuoted;
                } else if c == ',' {
                    record.push(std::mem::take(&mut field));
                    state = State::StartField;
                } else {
                    field.push(c);
                    state = State::InField;
                }
            }
            State::InField => {
                if newline {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                    state = State::StartRecord;
                } else if c == ',' {
                    record.push(std::mem::take(&mut field));
                    state = State::StartField;
                } else {
                    field.push(c);
                }
            }
            State::InQuoted => {
                if c == '"' {
                    state = State::QuoteInQuoted;
                } else {
                    field.push(c);
                }
            }
            State::QuoteInQuoted => {
                if c == '"' {
                    field.push('"');
                    state = State::InQuoted;
                } else if c == ',' {
                    record.push(std::mem::take(&mut field));
                    state = State::StartField;
                } else if newline {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                    state = State::StartRecord;
                } else {
                    field.push(c);
                    state = State::InField;
                }
            }
        }
    }
    // The end of the text ends the last line (and, not being strict, an open quote).
    if state != State::StartRecord {
        record.push(field);
        records.push(record);
    }
    // An empty line is a record without fields.
    records.retain(|r| !r.is_empty());
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values are what CPython's csv module returns for the same text.
    #[test]
    fn quirks_of_the_excel_dialect() {
        assert_eq!(split_fields("a,b"), ["a", "b"]);
        assert_eq!(split_fields("a,"), ["a", ""]);
        assert_eq!(split_fields(r#""a,b",c"#), ["a,b", "c"]);
        assert_eq!(split_fields(r#" "a,b""#), [r#""a"#, r#"b""#]);
        assert_eq!(split_fields(r#""ab"cd,e"#), ["abcd", "e"]);
        assert_eq!(split_fields(r#""a""b""#), [r#"a"b"#]);
        assert_eq!(split_fields(r#""abc"#), ["abc"]);
        assert_eq!(split_fields("a\nb"), ["a", "b"]);
        assert_eq!(split_fields("\"a\nb\",c"), ["a\nb", "c"]);
        assert_eq!(split_fields("a\r\nb"), ["a", "b"]);
        assert!(split_fields("").is_empty());
        assert!(split_fields("\n").is_empty());
        assert_eq!(split_fields("a,,b"), ["a", "", "b"]);
        assert_eq!(split_fields(r#""a" ,b"#), ["a", "b"]);
    }
}

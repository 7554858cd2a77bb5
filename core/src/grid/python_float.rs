//! Python's `repr(float)` (shortest round-trip digits, `7.0`, `1e-05`, `1e+16`), so grid
//! labels read exactly as A1111 draws them.

/// The text Python prints for `x`.
pub fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, as Python's repr does.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            let (a, b) = digits.split_at(point as usize);
            format!("{a}.{b}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::python_float_repr as r;

    // Expected strings are CPython's `repr` of the same doubles.
    #[test]
    fn matches_cpython_repr() {
        assert_eq!(r(7.0), "7.0");
        assert_eq!(r(0.75), "0.75");
        assert_eq!(r(-1.5), "-1.5");
        assert_eq!(r(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(r(1e-5), "1e-05");
        assert_eq!(r(0.0001), "0.0001");
        assert_eq!(r(1e16), "1e+16");
        assert_eq!(r(123456789012345.0), "123456789012345.0");
        assert_eq!(r(1.5e-7), "1.5e-07");
        assert_eq!(r(0.0), "0.0");
    }
}

//! What emphasis weights do to the text encoder's output: A1111's "Emphasis mode" setting.
//!
//! - `Original` (default): multiply each token's vectors by its weight, then scale the whole
//!   tensor so its mean is what it was before (keeps heavy emphasis from washing the image
//!   out; the mean spans every row encoded together).
//! - `No norm`: multiply, no mean restoration.
//! - `Ignore`: brackets are still parsed (and removed from the text), weights are not applied.
//! - `None`: no emphasis syntax at all: brackets, `:1.2` and `BREAK` stay plain text and every
//!   token has weight 1.
//!
//! A1111 writes `Emphasis: <mode>` into the infotext when the mode is not `Original` and a
//! prompt holds `(` or `[` (see [`emphasis_infotext`]).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// A1111's emphasis modes, by their setting names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EmphasisMode {
    /// "Original": multiply, then restore the mean.
    #[default]
    Original,
    /// "No norm": multiply only.
    NoNorm,
    /// "Ignore": parse brackets, apply no weights.
    Ignore,
    /// "None": no emphasis syntax; brackets are text.
    None,
}

impl EmphasisMode {
    /// Every mode, in A1111's menu order.
    pub const ALL: [EmphasisMode; 4] = [
        EmphasisMode::None,
        EmphasisMode::Ignore,
        EmphasisMode::Original,
        EmphasisMode::NoNorm,
    ];

    /// The name A1111 shows and writes into infotext.
    pub fn a1111_name(self) -> &'static str {
        match self {
            EmphasisMode::Original => "Original",
            EmphasisMode::NoNorm => "No norm",
            EmphasisMode::Ignore => "Ignore",
            EmphasisMode::None => "None",
        }
    }

    /// The mode named `name`: A1111's names, any case, with `-` or `_` accepted for the
    /// space of "No norm" (so `no-norm` works on a command line).
    pub fn from_a1111_name(name: &str) -> Result<Self> {
        let wanted = name.trim().replace(['-', '_'], " ");
        Self::ALL
            .into_iter()
            .find(|mode| mode.a1111_name().eq_ignore_ascii_case(&wanted))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown emphasis mode `{name}` (expected one of: Original, No norm, Ignore, None)"
                ))
            })
    }

    /// Whether prompts are read with emphasis syntax (`(a)`, `[a]`, `(a:1.2)`, `BREAK`).
    /// With `None` the whole prompt is one segment of weight 1, as A1111's `tokenize_line`.
    pub fn parses_brackets(self) -> bool {
        self != EmphasisMode::None
    }
}

impl fmt::Display for EmphasisMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.a1111_name())
    }
}

impl FromStr for EmphasisMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::from_a1111_name(s)
    }
}

/// The infotext value A1111 writes under `Emphasis`: the mode's name when it is not
/// `Original` and some prompt text contains `(` or `[`; nothing otherwise.
pub fn emphasis_infotext<'a>(
    mode: EmphasisMode,
    prompts: impl IntoIterator<Item = &'a str>,
) -> Option<&'static str> {
    let bracketed = prompts
        .into_iter()
        .any(|p| p.contains('(') || p.contains('['));
    (mode != EmphasisMode::Original && bracketed).then(|| mode.a1111_name())
}

/// Applies emphasis to encoder output in place.
///
/// `z` is row-major `[tokens, hidden]` (one or more 77-token chunks, or several prompts'
/// chunks stacked) and `multipliers` holds one weight per token. For `Original`, the mean is
/// taken over all of `z`: to match A1111 exactly, pass what it encodes in one batch — chunk
/// `i` of every text of one prompt's schedule together.
///
/// The means are accumulated in f64 and rounded to f32 (torch sums f32 with its own
/// blocking; the results agree to within f32 rounding of the mean).
pub fn apply_emphasis(
    mode: EmphasisMode,
    z: &mut [f32],
    hidden: usize,
    multipliers: &[f32],
) -> Result<()> {
    if hidden == 0 || z.len() != multipliers.len() * hidden {
        return Err(Error::Invalid(format!(
            "emphasis: encoder output of {} values does not hold {} tokens of width {hidden}",
            z.len(),
            multipliers.len()
        )));
    }
    match mode {
        EmphasisMode::Ignore | EmphasisMode::None => {}
        EmphasisMode::NoNorm => multiply_rows(z, hidden, multipliers),
        EmphasisMode::Original => {
            let original_mean = mean(z);
            multiply_rows(z, hidden, multipliers);
            let new_mean = mean(z);
            let scale = original_mean / new_mean;
            for value in z.iter_mut() {
                *value *= scale;
            }
        }
    }
    Ok(())
}

fn multiply_rows(z: &mut [f32], hidden: usize, multipliers: &[f32]) {
    for (row, &weight) in z.chunks_exact_mut(hidden).zip(multipliers) {
        for value in row {
            *value *= weight;
        }
    }
}

fn mean(values: &[f32]) -> f32 {
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    (sum / values.len() as f64) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for mode in EmphasisMode::ALL {
            assert_eq!(
                EmphasisMode::from_a1111_name(mode.a1111_name()).unwrap(),
                mode
            );
        }
        assert_eq!(
            "no-norm".parse::<EmphasisMode>().unwrap(),
            EmphasisMode::NoNorm
        );
        assert!(EmphasisMode::from_a1111_name("strong").is_err());
    }

    #[test]
    fn original_restores_the_mean() {
        let mut z = vec![1.0, 2.0, 3.0, 4.0];
        apply_emphasis(EmphasisMode::Original, &mut z, 2, &[2.0, 1.0]).unwrap();
        // After ×[2,2,1,1]: [2,4,3,4], mean 3.25; scaled by 2.5/3.25.
        let s = 2.5f32 / 3.25;
        let expected = [2.0 * s, 4.0 * s, 3.0 * s, 4.0 * s];
        for (a, b) in z.iter().zip(expected) {
            assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn modes_without_weights_leave_z_alone() {
        for mode in [EmphasisMode::Ignore, EmphasisMode::None] {
            let mut z = vec![1.0, 2.0];
            apply_emphasis(mode, &mut z, 1, &[3.0, 4.0]).unwrap();
            assert_eq!(z, [1.0, 2.0]);
        }
        let mut z = vec![1.0, 2.0];
        assert!(apply_emphasis(EmphasisMode::NoNorm, &mut z, 2, &[1.0, 1.0]).is_err());
    }

    #[test]
    fn infotext_only_for_non_default_modes_with_brackets() {
        assert_eq!(
            emphasis_infotext(EmphasisMode::NoNorm, ["a (b)"]),
            Some("No norm")
        );
        assert_eq!(emphasis_infotext(EmphasisMode::NoNorm, ["a b"]), None);
        assert_eq!(emphasis_infotext(EmphasisMode::Original, ["a (b)"]), None);
    }
}

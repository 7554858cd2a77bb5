//! The axis types `easel grid` can vary, named as in A1111's X/Y/Z plot, and turning an
//! axis' value text into typed values and the labels drawn for them.

use super::csv_fields::split_fields;
use super::python_float::python_float_repr;
use super::range_syntax::{float_values, int_values, MAX_AXIS_VALUES};
use crate::{Error, Result};

/// One kind of axis. The label is A1111's (`Seed`, `CFG Scale`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisKind {
    /// No axis: a single cell along this direction.
    Nothing,
    Seed,
    Steps,
    CfgScale,
    Sampler,
    ScheduleType,
    Checkpoint,
    Vae,
    Hypernetwork,
    HypernetStrength,
    ClipSkip,
    PromptSr,
    /// A1111's `p.eta`: overrides both "Eta for ancestral samplers" and "Eta for DDIM".
    Eta,
    SigmaChurn,
    /// `s_tmin`.
    SigmaMin,
    /// `s_tmax`.
    SigmaMax,
    SigmaNoise,
    ScheduleMinSigma,
    ScheduleMaxSigma,
    ScheduleRho,
    /// `denoising_strength`: img2img's strength, or hires fix's second pass.
    Denoising,
    /// `hr_upscaler` (A1111 offers it on txt2img grids; it acts with hires fix on).
    HiresUpscaler,
    /// `hr_second_pass_steps`.
    HiresSteps,
}

/// How an axis' fields become values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    Int,
    Float,
    Text,
}

/// One value along an axis.
#[derive(Clone, Debug, PartialEq)]
pub enum AxisValue {
    Int(i64),
    Float(f64),
    Text(String),
    /// The single value of a [`AxisKind::Nothing`] axis.
    None,
}

impl AxisKind {
    /// Every kind a user can choose, in the order `easel grid --help` lists them.
    pub const ALL: [AxisKind; 23] = [
        AxisKind::Nothing,
        AxisKind::Seed,
        AxisKind::Steps,
        AxisKind::CfgScale,
        AxisKind::Sampler,
        AxisKind::ScheduleType,
        AxisKind::Checkpoint,
        AxisKind::Vae,
        AxisKind::Hypernetwork,
        AxisKind::HypernetStrength,
        AxisKind::ClipSkip,
        AxisKind::PromptSr,
        AxisKind::Eta,
        AxisKind::SigmaChurn,
        AxisKind::SigmaMin,
        AxisKind::SigmaMax,
        AxisKind::SigmaNoise,
        AxisKind::ScheduleMinSigma,
        AxisKind::ScheduleMaxSigma,
        AxisKind::ScheduleRho,
        AxisKind::Denoising,
        AxisKind::HiresUpscaler,
        AxisKind::HiresSteps,
    ];

    /// A1111's name for the axis (also the `X Type` infotext value).
    pub fn label(self) -> &'static str {
        match self {
            AxisKind::Nothing => "Nothing",
            AxisKind::Seed => "Seed",
            AxisKind::Steps => "Steps",
            AxisKind::CfgScale => "CFG Scale",
            AxisKind::Sampler => "Sampler",
            AxisKind::ScheduleType => "Schedule type",
            AxisKind::Checkpoint => "Checkpoint name",
            AxisKind::Vae => "VAE",
            AxisKind::Hypernetwork => "Hypernetwork",
            AxisKind::HypernetStrength => "Hypernet str.",
            AxisKind::ClipSkip => "Clip skip",
            AxisKind::PromptSr => "Prompt S/R",
            AxisKind::Eta => "Eta",
            AxisKind::SigmaChurn => "Sigma Churn",
            AxisKind::SigmaMin => "Sigma min",
            AxisKind::SigmaMax => "Sigma max",
            AxisKind::SigmaNoise => "Sigma noise",
            AxisKind::ScheduleMinSigma => "Schedule min sigma",
            AxisKind::ScheduleMaxSigma => "Schedule max sigma",
            AxisKind::ScheduleRho => "Schedule rho",
            AxisKind::Denoising => "Denoising",
            AxisKind::HiresUpscaler => "Hires upscaler",
            AxisKind::HiresSteps => "Hires steps",
        }
    }

    /// Further names accepted besides the label (compared after [`normalize`]).
    fn aliases(self) -> &'static [&'static str] {
        match self {
            AxisKind::Nothing => &["none"],
            AxisKind::Seed => &["seeds"],
            AxisKind::Steps => &["step"],
            AxisKind::CfgScale => &["cfg", "guidance"],
            AxisKind::Sampler => &["samplers"],
            AxisKind::ScheduleType => &["schedule", "scheduler"],
            AxisKind::Checkpoint => &["checkpoint", "model", "ckpt"],
            AxisKind::Vae => &[],
            AxisKind::Hypernetwork => &["hypernet", "hn"],
            AxisKind::HypernetStrength => {
                &["hypernetstrength", "hypernetworkstrength", "hnstrength"]
            }
            AxisKind::ClipSkip => &[],
            AxisKind::PromptSr => &["sr", "promptsearchreplace", "searchreplace"],
            AxisKind::Eta => &[],
            AxisKind::SigmaChurn => &["schurn"],
            AxisKind::SigmaMin => &["stmin", "sigmatmin"],
            AxisKind::SigmaMax => &["stmax", "sigmatmax"],
            AxisKind::SigmaNoise => &["snoise"],
            AxisKind::ScheduleMinSigma => &[],
            AxisKind::ScheduleMaxSigma => &[],
            AxisKind::ScheduleRho => &["rho"],
            AxisKind::Denoising => &["denoisingstrength", "strength"],
            AxisKind::HiresUpscaler => &["hrupscaler"],
            AxisKind::HiresSteps => &["hrsteps", "hrsecondpasssteps"],
        }
    }

    /// Finds a kind by its label or an alias, ignoring case, spaces, `_`, `-`, `.` and `/`
    /// (`CFG Scale`, `cfg_scale`, `cfg`; `Prompt S/R`, `prompt_sr`).
    pub fn parse(name: &str) -> Result<AxisKind> {
        let key = normalize(name);
        AxisKind::ALL
            .into_iter()
            .find(|k| normalize(k.label()) == key || k.aliases().contains(&key.as_str()))
            .ok_or_else(|| {
                let names: Vec<&str> = AxisKind::ALL.iter().map(|k| k.label()).collect();
                Error::Invalid(format!(
                    "unknown grid axis type `{name}` (valid: {})",
                    names.join(", ")
                ))
            })
    }

    pub fn value_type(self) -> ValueType {
        match self {
            AxisKind::Seed | AxisKind::Steps | AxisKind::ClipSkip | AxisKind::HiresSteps => {
                ValueType::Int
            }
            AxisKind::CfgScale
            | AxisKind::HypernetStrength
            | AxisKind::Eta
            | AxisKind::SigmaChurn
            | AxisKind::SigmaMin
            | AxisKind::SigmaMax
            | AxisKind::SigmaNoise
            | AxisKind::ScheduleMinSigma
            | AxisKind::ScheduleMaxSigma
            | AxisKind::ScheduleRho
            | AxisKind::Denoising => ValueType::Float,
            _ => ValueType::Text,
        }
    }

    /// A1111's relative cost of switching this axis' value; the costliest axis is the
    /// outermost loop so a checkpoint or VAE is swapped as rarely as possible.
    pub fn cost(self) -> f64 {
        match self {
            AxisKind::Checkpoint => 1.0,
            AxisKind::Vae => 0.7,
            _ => 0.0,
        }
    }

    /// The text drawn in the grid's header for `value`, as A1111 formats it: bare for
    /// samplers, hypernetworks and prompt replacements, the file name for checkpoints,
    /// `Label: value` for the rest (reals rounded to 8 decimals, Python's float text).
    pub fn format_label(self, value: &AxisValue) -> String {
        let bare = match value {
            AxisValue::Int(v) => v.to_string(),
            AxisValue::Float(v) => python_float_repr(round8(*v)),
            AxisValue::Text(t) => t.clone(),
            AxisValue::None => String::new(),
        };
        match self {
            AxisKind::Nothing => String::new(),
            AxisKind::Sampler | AxisKind::Hypernetwork | AxisKind::PromptSr => bare,
            AxisKind::Checkpoint => bare.rsplit(['/', '\\']).next().unwrap_or("").to_string(),
            _ => format!("{}: {bare}", self.label()),
        }
    }
}

/// Python's `round(x, 8)`.
fn round8(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.8}").parse().unwrap_or(x)
}

/// Lower case without spaces, `_`, `-`, `.` or `/`.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.' | '/'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// One axis of a grid: its kind, the text the user gave and the values it expands to.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub kind: AxisKind,
    /// The values text as given (the `X Values` infotext entry).
    pub text: String,
    pub values: Vec<AxisValue>,
}

impl Axis {
    /// The axis that is not there: one cell, no label.
    pub fn nothing() -> Axis {
        Axis {
            kind: AxisKind::Nothing,
            text: String::new(),
            values: vec![AxisValue::None],
        }
    }

    /// Parses `text` for an axis of `kind` with A1111's CSV and range syntax. An axis
    /// without values is an error (A1111 would draw an empty grid).
    pub fn parse(kind: AxisKind, text: &str) -> Result<Axis> {
        if kind == AxisKind::Nothing {
            return Ok(Axis::nothing());
        }
        let fields = split_fields(text);
        let values: Vec<AxisValue> = match kind.value_type() {
            ValueType::Int => int_values(&fields)?
                .into_iter()
                .map(AxisValue::Int)
                .collect(),
            ValueType::Float => float_values(&fields)?
                .into_iter()
                .map(AxisValue::Float)
                .collect(),
            ValueType::Text => {
                if fields.len() > MAX_AXIS_VALUES {
                    return Err(Error::Invalid(format!(
                        "grid axis `{}` has {} values; the limit is {MAX_AXIS_VALUES}",
                        kind.label(),
                        fields.len()
                    )));
                }
                fields.into_iter().map(AxisValue::Text).collect()
            }
        };
        if values.is_empty() {
            return Err(Error::Invalid(format!(
                "grid axis `{}` has no values (`{text}`)",
                kind.label()
            )));
        }
        let axis = Axis {
            kind,
            text: text.to_string(),
            values,
        };
        axis.check()?;
        Ok(axis)
    }

    /// Value checks that need no models folder: counts that must be positive, the
    /// prompt S/R search text.
    fn check(&self) -> Result<()> {
        let label = self.kind.label();
        for v in &self.values {
            match (self.kind, v) {
                (AxisKind::Steps, AxisValue::Int(n)) if *n < 1 => {
                    return Err(Error::Invalid(format!("grid axis `{label}`: {n} steps")))
                }
                (AxisKind::ClipSkip, AxisValue::Int(n)) if *n < 1 => {
                    return Err(Error::Invalid(format!(
                        "grid axis `{label}`: clip skip {n} (1 = the last layer)"
                    )))
                }
                (AxisKind::Seed, AxisValue::Int(n)) if *n < -1 || *n > u32::MAX as i64 => {
                    return Err(Error::Invalid(format!(
                        "grid axis `{label}`: seed {n} is outside 0..=4294967295 (-1 = random)"
                    )))
                }
                _ => {}
            }
        }
        if self.kind == AxisKind::PromptSr {
            if let Some(AxisValue::Text(first)) = self.values.first() {
                if first.is_empty() {
                    return Err(Error::Invalid(
                        "grid axis `Prompt S/R`: the first value is the text to search for and must not be empty".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The labels drawn along this axis.
    pub fn labels(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|v| self.kind.format_label(v))
            .collect()
    }

    /// A1111 replaces a seed of -1 by a random seed once, before any cell runs, so the
    /// whole column (or row) shares it and the infotext records the real one.
    pub fn fix_random_seeds(&mut self, mut random_seed: impl FnMut() -> u64) {
        if self.kind != AxisKind::Seed {
            return;
        }
        for v in &mut self.values {
            if *v == AxisValue::Int(-1) {
                *v = AxisValue::Int(random_seed() as i64);
            }
        }
    }
}

/// A1111's prompt search/replace: the axis' first value is searched for in the prompt and
/// the negative prompt and every occurrence replaced by `value`; finding it in neither is
/// an error naming it.
pub fn prompt_search_replace(
    prompt: &str,
    negative: &str,
    search: &str,
    value: &str,
) -> Result<(String, String)> {
    if !prompt.contains(search) && !negative.contains(search) {
        return Err(Error::Invalid(format!(
            "Prompt S/R did not find `{search}` in the prompt or the negative prompt"
        )));
    }
    Ok((
        prompt.replace(search, value),
        negative.replace(search, value),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_aliases() {
        assert_eq!(AxisKind::parse("CFG Scale").unwrap(), AxisKind::CfgScale);
        assert_eq!(AxisKind::parse("cfg_scale").unwrap(), AxisKind::CfgScale);
        assert_eq!(AxisKind::parse("prompt_sr").unwrap(), AxisKind::PromptSr);
        assert_eq!(AxisKind::parse("Prompt S/R").unwrap(), AxisKind::PromptSr);
        assert_eq!(
            AxisKind::parse("hypernet_str").unwrap(),
            AxisKind::HypernetStrength
        );
        assert_eq!(
            AxisKind::parse("Hypernet str.").unwrap(),
            AxisKind::HypernetStrength
        );
        assert_eq!(
            AxisKind::parse("checkpoint_name").unwrap(),
            AxisKind::Checkpoint
        );
        assert_eq!(
            AxisKind::parse("SCHEDULE TYPE").unwrap(),
            AxisKind::ScheduleType
        );
        assert_eq!(
            AxisKind::parse("sigma_churn").unwrap(),
            AxisKind::SigmaChurn
        );
        assert_eq!(AxisKind::parse("Sigma max").unwrap(), AxisKind::SigmaMax);
        assert_eq!(AxisKind::parse("rho").unwrap(), AxisKind::ScheduleRho);
        assert_eq!(
            AxisKind::parse("schedule_min_sigma").unwrap(),
            AxisKind::ScheduleMinSigma
        );
        let e = AxisKind::parse("denoise").unwrap_err().to_string();
        assert!(
            e.contains("`denoise`") && e.contains("Hypernet str."),
            "{e}"
        );
    }

    #[test]
    fn labels_follow_a1111_formatting() {
        let l = |k: AxisKind, v: AxisValue| k.format_label(&v);
        assert_eq!(l(AxisKind::Seed, AxisValue::Int(42)), "Seed: 42");
        assert_eq!(
            l(AxisKind::CfgScale, AxisValue::Float(12.0)),
            "CFG Scale: 12.0"
        );
        assert_eq!(
            l(AxisKind::CfgScale, AxisValue::Float(0.1 + 0.2)),
            "CFG Scale: 0.3"
        );
        assert_eq!(
            l(AxisKind::Sampler, AxisValue::Text("Euler".into())),
            "Euler"
        );
        assert_eq!(l(AxisKind::Eta, AxisValue::Float(0.5)), "Eta: 0.5");
        assert_eq!(
            l(AxisKind::SigmaChurn, AxisValue::Float(1.0)),
            "Sigma Churn: 1.0"
        );
        assert_eq!(
            l(AxisKind::Hypernetwork, AxisValue::Text("anime".into())),
            "anime"
        );
        assert_eq!(
            l(
                AxisKind::Checkpoint,
                AxisValue::Text("sub/final-pruned.ckpt".into())
            ),
            "final-pruned.ckpt"
        );
        assert_eq!(l(AxisKind::ClipSkip, AxisValue::Int(2)), "Clip skip: 2");
        assert_eq!(l(AxisKind::Nothing, AxisValue::None), "");
    }

    #[test]
    fn random_seeds_are_drawn_once_per_value() {
        let mut a = Axis::parse(AxisKind::Seed, "-1, 5, -1").unwrap();
        let mut next = 100;
        a.fix_random_seeds(|| {
            next += 1;
            next
        });
        assert_eq!(
            a.values,
            [AxisValue::Int(101), AxisValue::Int(5), AxisValue::Int(102)]
        );
    }

    #[test]
    fn prompt_sr_replaces_in_both_prompts() {
        let (p, n) = prompt_search_replace("a cat, cat ears", "cat", "cat", "dog").unwrap();
        assert_eq!((p.as_str(), n.as_str()), ("a dog, dog ears", "dog"));
        let e = prompt_search_replace("a cat", "", "bird", "dog").unwrap_err();
        assert!(e.to_string().contains("`bird`"));
    }

    #[test]
    fn empty_and_bad_axes_are_errors() {
        assert!(Axis::parse(AxisKind::Seed, "").is_err());
        assert!(Axis::parse(AxisKind::Steps, "0-2").is_err());
        assert!(Axis::parse(AxisKind::PromptSr, ",a").is_err());
    }
}

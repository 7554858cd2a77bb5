//! A1111's user-tunable sampler parameters ("Settings → Sampler parameters"), which an
//! image's infotext records when they differ from a sampler's defaults, so pasting the
//! infotext must bring them back.
//!
//! Which sampler takes which (A1111's `initialize`): every k-diffusion sampler whose
//! function has an `eta` argument takes `Eta` (default 1); DDIM takes `Eta DDIM` (default
//! 0); Euler, Heun and DPM2 take the churn set `Sigma churn`/`tmin`/`tmax`/`noise`
//! (defaults 0, 0, ∞, 1). A sampler applies them in [`crate::sampler::Sampler::with_params`].

use crate::infotext::Infotext;
use crate::{Error, Result};

/// Values the user set; `None` leaves the sampler's own default.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SamplerParams {
    /// "Eta for ancestral samplers" (infotext `Eta`).
    pub eta: Option<f32>,
    /// "Eta for DDIM" (infotext `Eta DDIM`).
    pub eta_ddim: Option<f32>,
    /// Infotext `Sigma churn`.
    pub s_churn: Option<f32>,
    /// Infotext `Sigma tmin`.
    pub s_tmin: Option<f32>,
    /// Infotext `Sigma tmax`; 0 means no upper limit, as in A1111's settings.
    pub s_tmax: Option<f32>,
    /// Infotext `Sigma noise`.
    pub s_noise: Option<f32>,
}

/// Infotext key and flag name of each parameter, in A1111's order.
pub const SAMPLER_PARAM_KEYS: [(&str, &str); 6] = [
    ("Eta", "--eta"),
    ("Eta DDIM", "--eta-ddim"),
    ("Sigma churn", "--s-churn"),
    ("Sigma tmin", "--s-tmin"),
    ("Sigma tmax", "--s-tmax"),
    ("Sigma noise", "--s-noise"),
];

impl SamplerParams {
    fn slots(&mut self) -> [&mut Option<f32>; 6] {
        [
            &mut self.eta,
            &mut self.eta_ddim,
            &mut self.s_churn,
            &mut self.s_tmin,
            &mut self.s_tmax,
            &mut self.s_noise,
        ]
    }

    /// The parameters an infotext records (absent keys stay `None`).
    pub fn from_infotext(info: &Infotext) -> Result<Self> {
        let mut params = SamplerParams::default();
        for ((key, _), slot) in SAMPLER_PARAM_KEYS.iter().zip(params.slots()) {
            if let Some(text) = info.get(key) {
                *slot = Some(text.trim().parse().map_err(|_| {
                    Error::Invalid(format!("infotext: `{key}: {text}` is not a number"))
                })?);
            }
        }
        params.validate()?;
        Ok(params)
    }

    /// Fill every parameter not set here from `other` (flags over a pasted infotext).
    pub fn or(mut self, mut other: SamplerParams) -> Self {
        for (mine, theirs) in self.slots().into_iter().zip(other.slots()) {
            if mine.is_none() {
                *mine = *theirs;
            }
        }
        self
    }

    /// Every value finite and not negative; the error names the setting.
    pub fn validate(&self) -> Result<()> {
        let mut copy = *self;
        for ((key, flag), slot) in SAMPLER_PARAM_KEYS.iter().zip(copy.slots()) {
            if let Some(v) = *slot {
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::Invalid(format!(
                        "{key} ({flag}) must be a finite number ≥ 0, not {v}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// `s_tmax` as the sampler uses it: 0 (or unset) is no limit.
    pub fn s_tmax_or_infinity(&self) -> Option<f32> {
        self.s_tmax
            .map(|v| if v == 0.0 { f32::INFINITY } else { v })
    }
}

/// A number the user typed as A1111's infotext shows it: whole numbers without a
/// fraction (`7`, `0`), others in their shortest form (`7.5`, `0.67`).
pub fn format_param(v: f32) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_infotext_fields_and_rejects_bad_ones() {
        let info = Infotext::parse(
            "a cat\nSteps: 20, Sampler: Euler a, Eta: 0.67, Sigma churn: 2, Sigma tmax: 0",
        );
        let p = SamplerParams::from_infotext(&info).unwrap();
        assert_eq!(p.eta, Some(0.67));
        assert_eq!(p.s_churn, Some(2.0));
        assert_eq!(p.s_tmax_or_infinity(), Some(f32::INFINITY));
        assert_eq!(p.eta_ddim, None);
        let bad = Infotext::parse("a cat\nSteps: 20, Seed: 1, Eta: lots");
        let err = SamplerParams::from_infotext(&bad).unwrap_err().to_string();
        assert!(err.contains("Eta: lots"), "{err}");
        let negative = SamplerParams {
            s_noise: Some(-1.0),
            ..Default::default()
        };
        let err = negative.validate().unwrap_err().to_string();
        assert!(err.contains("--s-noise"), "{err}");
    }

    #[test]
    fn flags_win_over_pasted_values() {
        let flags = SamplerParams {
            eta: Some(0.5),
            ..Default::default()
        };
        let pasted = SamplerParams {
            eta: Some(0.9),
            s_churn: Some(1.0),
            ..Default::default()
        };
        let merged = flags.or(pasted);
        assert_eq!(merged.eta, Some(0.5));
        assert_eq!(merged.s_churn, Some(1.0));
        assert_eq!(format_param(0.67), "0.67");
        assert_eq!(format_param(2.0), "2");
    }
}

//! A1111's user-tunable sampler parameters ("Settings → Sampler parameters"), which an
//! image's infotext records when they differ from a sampler's defaults, so pasting the
//! infotext must bring them back.
//!
//! Which sampler takes which (A1111's `initialize`): every k-diffusion sampler whose
//! function has an `eta` argument takes `Eta` (default 1); DDIM takes `Eta DDIM` (default
//! 0); Euler, Heun and DPM2 take the churn set `Sigma churn`/`tmin`/`tmax`/`noise`
//! (defaults 0, 0, ∞, 1). A sampler applies them in [`crate::sampler::Sampler::with_params`].
//!
//! The same settings page holds the schedule parameters (A1111's `get_sigmas`): `Schedule
//! min sigma` / `max sigma` replace the model's σ range for the schedules that span one
//! (0 = the model's), `Schedule rho` replaces the Karras (7) or Polyexponential (1)
//! exponent, and the Beta schedule's `alpha`/`beta` (0.6 each). A schedule applies them in
//! [`crate::scheduler::Scheduler::with_params`].

use crate::infotext::Infotext;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// Values the user set; `None` leaves the sampler's own default. As JSON (the web page's
/// settings) the fields carry the CLI's flag names without dashes (`eta`, `sigma_min`, ...).
#[derive(Clone, Copy, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
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
    /// Infotext `Schedule min sigma`; 0 = the model's.
    #[serde(rename = "sigma_min")]
    pub schedule_sigma_min: Option<f32>,
    /// Infotext `Schedule max sigma`; 0 = the model's.
    #[serde(rename = "sigma_max")]
    pub schedule_sigma_max: Option<f32>,
    /// Infotext `Schedule rho`; 0 = the schedule's own.
    #[serde(rename = "rho")]
    pub schedule_rho: Option<f32>,
    /// Infotext `Beta schedule alpha`.
    pub beta_alpha: Option<f32>,
    /// Infotext `Beta schedule beta`.
    pub beta_beta: Option<f32>,
}

/// Infotext key and flag name of each parameter, in A1111's order.
pub const SAMPLER_PARAM_KEYS: [(&str, &str); 11] = [
    ("Eta", "--eta"),
    ("Eta DDIM", "--eta-ddim"),
    ("Sigma churn", "--s-churn"),
    ("Sigma tmin", "--s-tmin"),
    ("Sigma tmax", "--s-tmax"),
    ("Sigma noise", "--s-noise"),
    ("Schedule min sigma", "--sigma-min"),
    ("Schedule max sigma", "--sigma-max"),
    ("Schedule rho", "--rho"),
    ("Beta schedule alpha", "--beta-alpha"),
    ("Beta schedule beta", "--beta-beta"),
];

impl SamplerParams {
    fn slots(&mut self) -> [&mut Option<f32>; 11] {
        [
            &mut self.eta,
            &mut self.eta_ddim,
            &mut self.s_churn,
            &mut self.s_tmin,
            &mut self.s_tmax,
            &mut self.s_noise,
            &mut self.schedule_sigma_min,
            &mut self.schedule_sigma_max,
            &mut self.schedule_rho,
            &mut self.beta_alpha,
            &mut self.beta_beta,
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
        for (key, flag, value) in [
            ("Beta schedule alpha", "--beta-alpha", self.beta_alpha),
            ("Beta schedule beta", "--beta-beta", self.beta_beta),
        ] {
            if value == Some(0.0) {
                return Err(Error::Invalid(format!(
                    "{key} ({flag}) must be above 0 (a Beta distribution's parameter)"
                )));
            }
        }
        Ok(())
    }

    /// A setting where A1111 reads 0 as "the default": `None` then.
    pub fn nonzero(value: Option<f32>) -> Option<f32> {
        value.filter(|v| *v != 0.0)
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

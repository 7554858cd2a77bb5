//! A1111's schedule types ("Schedule type" in the infotext), one file each. Every
//! schedule follows `modules/sd_schedulers.py` and the k-diffusion `get_sigmas_*`
//! functions it calls, with torch's f32 arithmetic where torch does the work.

mod align_your_steps;
mod automatic;
mod beta;
mod ddim;
mod exponential;
mod karras;
mod kl_optimal;
mod normal;
mod polyexponential;
mod sgm_uniform;
mod simple;
mod uniform;

pub use align_your_steps::AlignYourSteps;
pub use automatic::Automatic;
pub use beta::Beta;
pub use ddim::DdimSchedule;
pub use exponential::Exponential;
pub use karras::{karras_sigmas, Karras};
pub use kl_optimal::KlOptimal;
pub use normal::Normal;
pub use polyexponential::Polyexponential;
pub use sgm_uniform::SgmUniform;
pub use simple::Simple;
pub use uniform::Uniform;

use easel_core::sampler_params::SamplerParams;
use easel_core::schedule::DiscreteSchedule;

/// σ_min and σ_max of the model as A1111 passes them (`sigmas[0].item()`, f64).
pub(crate) fn model_range(model: &DiscreteSchedule) -> (f64, f64) {
    (model.sigma_min() as f64, model.sigma_max() as f64)
}

/// A1111's "Schedule min/max sigma" settings for the schedules that span a σ range
/// (Karras, Exponential, Polyexponential, KL Optimal, Beta); unset = the model's.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SigmaRange {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl SigmaRange {
    /// The range these settings give for `model`, as (σ_min, σ_max).
    pub fn of(&self, model: &DiscreteSchedule) -> (f64, f64) {
        let (lo, hi) = model_range(model);
        (self.min.unwrap_or(lo), self.max.unwrap_or(hi))
    }

    /// The user's range over this one (0 = keep).
    pub(crate) fn with_params(&self, params: &SamplerParams) -> SigmaRange {
        SigmaRange {
            min: SamplerParams::nonzero(params.schedule_sigma_min)
                .map(f64::from)
                .or(self.min),
            max: SamplerParams::nonzero(params.schedule_sigma_max)
                .map(f64::from)
                .or(self.max),
        }
    }

    /// Whether the user set any range or ρ parameter (the schedules only change then).
    pub(crate) fn touched(params: &SamplerParams) -> bool {
        SamplerParams::nonzero(params.schedule_sigma_min).is_some()
            || SamplerParams::nonzero(params.schedule_sigma_max).is_some()
    }

    pub(crate) fn infotext(&self) -> Vec<(&'static str, f32)> {
        let mut out = Vec::new();
        if let Some(v) = self.min {
            out.push(("Schedule min sigma", v as f32));
        }
        if let Some(v) = self.max {
            out.push(("Schedule max sigma", v as f32));
        }
        out
    }
}

//! The `Scheduler` seam: how the σ values a sampler walks are spaced ("Schedule type" in
//! A1111: Karras, Exponential, Align Your Steps, ...). A scheduler only produces numbers
//! from the model's discrete schedule, so it is plain Rust in any crate, like a sampler.

use crate::error::{Error, Result};
use crate::sampler::Sampler;
use crate::sampler_params::SamplerParams;
use crate::schedule::DiscreteSchedule;
use std::sync::Arc;

/// Most sampling steps accepted; beyond the model's 1000 training timesteps several
/// schedules would repeat σ values and DDIM-style samplers cannot space their timesteps.
pub const MAX_STEPS: usize = 1000;

/// Name of the schedule that stands for "the sampler's own default" (A1111's `Automatic`).
pub const AUTOMATIC: &str = "automatic";

pub trait Scheduler: Send + Sync {
    /// Registry name, e.g. `karras`, `sgm_uniform`.
    fn name(&self) -> &str;
    /// A1111's label, e.g. `Karras`, `SGM Uniform` (written as `Schedule type:`).
    fn label(&self) -> &str;
    /// `steps` decreasing σ values followed by a final 0 (`steps + 1` values).
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>>;
    /// This schedule with the user's schedule parameters applied (σ range, ρ, Beta's α
    /// and β; see [`SamplerParams`]). `None`: none applies, use `self` as it is.
    fn with_params(&self, _params: &SamplerParams) -> Option<Arc<dyn Scheduler>> {
        None
    }
    /// The infotext fields A1111 writes for this schedule's parameters.
    fn params_infotext(&self) -> Vec<(&'static str, f32)> {
        Vec::new()
    }
}

/// Reject step counts no schedule can serve, with a message naming the setting.
pub fn check_steps(steps: usize) -> Result<()> {
    if steps == 0 || steps > MAX_STEPS {
        return Err(Error::Invalid(format!(
            "steps must be between 1 and {MAX_STEPS}, got {steps}"
        )));
    }
    Ok(())
}

/// The σ sequence `sampler` walks for `steps` steps with `scheduler`, as A1111's
/// `get_sigmas`: samplers that discard the next-to-last σ (DPM2, DPM2 a, DPM++ 3M SDE)
/// get a schedule one step longer with that σ removed, so they still take `steps` steps
/// but never evaluate the model at the schedule's smallest nonzero σ.
pub fn sampler_sigmas(
    sampler: &dyn Sampler,
    scheduler: &dyn Scheduler,
    model: &DiscreteSchedule,
    steps: usize,
) -> Result<Vec<f32>> {
    check_steps(steps)?;
    let discard = sampler.discard_next_to_last_sigma();
    let n = steps + usize::from(discard);
    let own_table = sampler.sigma_table(model);
    let table = own_table.as_ref().unwrap_or(model);
    let own = if scheduler.name() == AUTOMATIC {
        sampler.automatic_sigmas(table, n)
    } else {
        None
    };
    let mut sigmas = match own {
        Some(s) => s,
        None => scheduler.sigmas(table, n)?,
    };
    if sigmas.len() < 2 || sigmas.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return Err(Error::Invalid(format!(
            "schedule `{}` gave an unusable σ sequence for {steps} steps",
            scheduler.label()
        )));
    }
    if discard {
        let n = sigmas.len();
        sigmas.remove(n - 2);
    }
    Ok(sigmas)
}

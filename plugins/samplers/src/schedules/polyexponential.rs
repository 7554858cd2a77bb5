//! `Polyexponential`: log σ on a polynomial ramp of degree ρ (A1111 default ρ = 1, which
//! equals `Exponential` up to rounding); k-diffusion `get_sigmas_polyexponential`.

use super::SigmaRange;
use easel_core::sampler_params::SamplerParams;
use easel_core::schedule::{linspace_f32, DiscreteSchedule};
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone, Copy)]
pub struct Polyexponential {
    pub rho: f32,
    pub range: SigmaRange,
}

/// A1111's default ρ for this schedule.
const DEFAULT_RHO: f32 = 1.0;

impl Default for Polyexponential {
    fn default() -> Self {
        Polyexponential {
            rho: DEFAULT_RHO,
            range: SigmaRange::default(),
        }
    }
}

impl Scheduler for Polyexponential {
    fn name(&self) -> &str {
        "polyexponential"
    }
    fn label(&self) -> &str {
        "Polyexponential"
    }
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Scheduler>> {
        let rho = SamplerParams::nonzero(params.schedule_rho);
        (rho.is_some() || SigmaRange::touched(params)).then(|| {
            Arc::new(Polyexponential {
                rho: rho.unwrap_or(self.rho),
                range: self.range.with_params(params),
            }) as Arc<dyn Scheduler>
        })
    }
    fn params_infotext(&self) -> Vec<(&'static str, f32)> {
        let mut out = self.range.infotext();
        if self.rho != DEFAULT_RHO {
            out.push(("Schedule rho", self.rho));
        }
        out
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let (lo, hi) = self.range.of(model);
        let span = (hi.ln() - lo.ln()) as f32;
        let offset = lo.ln() as f32;
        let mut out: Vec<f32> = linspace_f32(1.0, 0.0, steps)
            .into_iter()
            .map(|r| (r.powf(self.rho) * span + offset).exp())
            .collect();
        out.push(0.0);
        Ok(out)
    }
}

//! `Exponential`: log σ evenly from the model's σ_max to σ_min (k-diffusion
//! `get_sigmas_exponential`), then 0.

use super::SigmaRange;
use easel_core::sampler_params::SamplerParams;
use easel_core::schedule::{linspace_f32, DiscreteSchedule};
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone, Copy, Default)]
pub struct Exponential {
    pub range: SigmaRange,
}

impl Scheduler for Exponential {
    fn name(&self) -> &str {
        "exponential"
    }
    fn label(&self) -> &str {
        "Exponential"
    }
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Scheduler>> {
        SigmaRange::touched(params).then(|| {
            Arc::new(Exponential {
                range: self.range.with_params(params),
            }) as Arc<dyn Scheduler>
        })
    }
    fn params_infotext(&self) -> Vec<(&'static str, f32)> {
        self.range.infotext()
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let (lo, hi) = self.range.of(model);
        let mut out: Vec<f32> = linspace_f32(hi.ln() as f32, lo.ln() as f32, steps)
            .into_iter()
            .map(f32::exp)
            .collect();
        out.push(0.0);
        Ok(out)
    }
}

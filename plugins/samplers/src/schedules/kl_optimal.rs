//! `KL Optimal` (Align Your Steps paper, appendix): σ = tan of arctan σ interpolated
//! linearly from σ_max to σ_min. As in A1111 the sequence ends at σ_min, not 0.

use super::SigmaRange;
use easel_core::sampler_params::SamplerParams;
use easel_core::schedule::DiscreteSchedule;
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone, Copy, Default)]
pub struct KlOptimal {
    pub range: SigmaRange,
}

impl Scheduler for KlOptimal {
    fn name(&self) -> &str {
        "kl_optimal"
    }
    fn label(&self) -> &str {
        "KL Optimal"
    }
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Scheduler>> {
        SigmaRange::touched(params).then(|| {
            Arc::new(KlOptimal {
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
        let (a_min, a_max) = ((lo as f32).atan(), (hi as f32).atan());
        Ok((0..=steps)
            .map(|i| {
                let f = i as f32 / steps as f32;
                (f * a_min + (1.0 - f) * a_max).tan()
            })
            .collect())
    }
}

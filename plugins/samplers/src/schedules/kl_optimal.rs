//! `KL Optimal` (Align Your Steps paper, appendix): σ = tan of arctan σ interpolated
//! linearly from σ_max to σ_min. As in A1111 the sequence ends at σ_min, not 0.

use super::model_range;
use easel_core::schedule::DiscreteSchedule;
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;

pub struct KlOptimal;

impl Scheduler for KlOptimal {
    fn name(&self) -> &str {
        "kl_optimal"
    }
    fn label(&self) -> &str {
        "KL Optimal"
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let (lo, hi) = model_range(model);
        let (a_min, a_max) = ((lo as f32).atan(), (hi as f32).atan());
        Ok((0..=steps)
            .map(|i| {
                let f = i as f32 / steps as f32;
                (f * a_min + (1.0 - f) * a_max).tan()
            })
            .collect())
    }
}

//! `Normal`: `steps` timesteps evenly from t(σ_max) to t(σ_min), then 0 (A1111's
//! `normal_scheduler`; practically the same as `Uniform`).

use super::model_range;
use easel_core::schedule::{linspace_f32, DiscreteSchedule};
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;

pub struct Normal;

impl Scheduler for Normal {
    fn name(&self) -> &str {
        "normal"
    }
    fn label(&self) -> &str {
        "Normal"
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let (lo, hi) = model_range(model);
        let start = model.sigma_to_t(hi as f32);
        let end = model.sigma_to_t(lo as f32);
        let mut out: Vec<f32> = linspace_f32(start, end, steps)
            .into_iter()
            .map(|t| model.t_to_sigma(t))
            .collect();
        out.push(0.0);
        Ok(out)
    }
}

//! `SGM Uniform`: `steps + 1` timesteps evenly from t(σ_max) to t(σ_min), the last one
//! dropped and replaced by σ = 0 (the spacing SGM/SDXL samplers use).

use super::model_range;
use easel_core::schedule::{linspace_f32, DiscreteSchedule};
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;

pub struct SgmUniform;

impl Scheduler for SgmUniform {
    fn name(&self) -> &str {
        "sgm_uniform"
    }
    fn label(&self) -> &str {
        "SGM Uniform"
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let (lo, hi) = model_range(model);
        let start = model.sigma_to_t(hi as f32);
        let end = model.sigma_to_t(lo as f32);
        let mut out: Vec<f32> = linspace_f32(start, end, steps + 1)[..steps]
            .iter()
            .map(|&t| model.t_to_sigma(t))
            .collect();
        out.push(0.0);
        Ok(out)
    }
}

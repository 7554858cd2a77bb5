//! `Uniform`: timesteps evenly from the last to the first, σ by log-σ interpolation
//! (k-diffusion `DiscreteSchedule.get_sigmas`), then 0.

use easel_core::schedule::DiscreteSchedule;
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;

pub struct Uniform;

impl Scheduler for Uniform {
    fn name(&self) -> &str {
        "uniform"
    }
    fn label(&self) -> &str {
        "Uniform"
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        Ok(model.default_sigmas(steps))
    }
}

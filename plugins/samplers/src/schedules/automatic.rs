//! `Automatic`: stands for the sampler's own default schedule. On its own (a sampler
//! without a default, e.g. Euler) it is the model's evenly spaced timesteps, which is
//! what A1111 falls back to (`model_wrap.get_sigmas`).

use easel_core::schedule::DiscreteSchedule;
use easel_core::scheduler::{check_steps, Scheduler, AUTOMATIC};
use easel_core::Result;

pub struct Automatic;

impl Scheduler for Automatic {
    fn name(&self) -> &str {
        AUTOMATIC
    }
    fn label(&self) -> &str {
        "Automatic"
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        Ok(model.default_sigmas(steps))
    }
}

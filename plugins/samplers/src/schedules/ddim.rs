//! `DDIM` schedule: training σ at timesteps 1, 1 + 1000/steps, ... (integer stride),
//! highest first, then 0. Like A1111, a stride that does not divide 1000 gives one
//! value more than `steps` (e.g. 7 steps → 8 σ before the 0).

use easel_core::schedule::DiscreteSchedule;
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;

pub struct DdimSchedule;

impl Scheduler for DdimSchedule {
    fn name(&self) -> &str {
        "ddim"
    }
    fn label(&self) -> &str {
        "DDIM"
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let table = model.sigmas();
        let stride = (table.len() / steps).max(1);
        let mut out: Vec<f32> = (1..table.len()).step_by(stride).map(|t| table[t]).collect();
        out.reverse();
        out.push(0.0);
        Ok(out)
    }
}

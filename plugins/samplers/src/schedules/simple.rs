//! `Simple`: every (1000/steps)-th training σ counted down from the last, then 0.

use easel_core::schedule::DiscreteSchedule;
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;

pub struct Simple;

impl Scheduler for Simple {
    fn name(&self) -> &str {
        "simple"
    }
    fn label(&self) -> &str {
        "Simple"
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let table = model.sigmas();
        let stride = table.len() as f64 / steps as f64;
        let mut out: Vec<f32> = (0..steps)
            .map(|i| table[table.len() - 1 - (i as f64 * stride) as usize])
            .collect();
        out.push(0.0);
        Ok(out)
    }
}

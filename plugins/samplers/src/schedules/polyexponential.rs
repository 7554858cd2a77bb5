//! `Polyexponential`: log σ on a polynomial ramp of degree ρ (A1111 default ρ = 1, which
//! equals `Exponential` up to rounding); k-diffusion `get_sigmas_polyexponential`.

use super::model_range;
use easel_core::schedule::{linspace_f32, DiscreteSchedule};
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;

pub struct Polyexponential {
    pub rho: f32,
}

impl Default for Polyexponential {
    fn default() -> Self {
        Polyexponential { rho: 1.0 }
    }
}

impl Scheduler for Polyexponential {
    fn name(&self) -> &str {
        "polyexponential"
    }
    fn label(&self) -> &str {
        "Polyexponential"
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let (lo, hi) = model_range(model);
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

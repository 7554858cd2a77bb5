//! `Karras`: Karras et al. (2022) spacing, σ^(1/ρ) evenly between the model's σ_max and
//! σ_min with ρ = 7 (k-diffusion `get_sigmas_karras`), then 0.

use super::model_range;
use easel_core::schedule::{linspace_f32, DiscreteSchedule};
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;

pub struct Karras {
    pub rho: f64,
}

impl Default for Karras {
    fn default() -> Self {
        Karras { rho: 7.0 }
    }
}

/// Karras spacing between explicit bounds (Restart uses it for its own σ lists).
/// The ρ-th roots are taken in f64 as Python does; the ramp is f32 as in torch.
pub fn karras_sigmas(steps: usize, sigma_min: f64, sigma_max: f64, rho: f64) -> Vec<f32> {
    let max_inv = sigma_max.powf(1.0 / rho);
    let span = (sigma_min.powf(1.0 / rho) - max_inv) as f32;
    let mut out: Vec<f32> = linspace_f32(0.0, 1.0, steps)
        .into_iter()
        .map(|r| (max_inv as f32 + r * span).powf(rho as f32))
        .collect();
    out.push(0.0);
    out
}

impl Scheduler for Karras {
    fn name(&self) -> &str {
        "karras"
    }
    fn label(&self) -> &str {
        "Karras"
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let (lo, hi) = model_range(model);
        Ok(karras_sigmas(steps, lo, hi, self.rho))
    }
}

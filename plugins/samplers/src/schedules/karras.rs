//! `Karras`: Karras et al. (2022) spacing, σ^(1/ρ) evenly between the model's σ_max and
//! σ_min with ρ = 7 (k-diffusion `get_sigmas_karras`), then 0.

use super::SigmaRange;
use easel_core::sampler_params::SamplerParams;
use easel_core::schedule::{linspace_f32, DiscreteSchedule};
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone, Copy)]
pub struct Karras {
    pub rho: f64,
    pub range: SigmaRange,
}

/// k-diffusion's (and A1111's default) ρ.
const DEFAULT_RHO: f64 = 7.0;

impl Default for Karras {
    fn default() -> Self {
        Karras {
            rho: DEFAULT_RHO,
            range: SigmaRange::default(),
        }
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
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Scheduler>> {
        let rho = SamplerParams::nonzero(params.schedule_rho);
        (rho.is_some() || SigmaRange::touched(params)).then(|| {
            Arc::new(Karras {
                rho: rho.map_or(self.rho, f64::from),
                range: self.range.with_params(params),
            }) as Arc<dyn Scheduler>
        })
    }
    fn params_infotext(&self) -> Vec<(&'static str, f32)> {
        let mut out = self.range.infotext();
        if self.rho != DEFAULT_RHO {
            out.push(("Schedule rho", self.rho as f32));
        }
        out
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let (lo, hi) = self.range.of(model);
        Ok(karras_sigmas(steps, lo, hi, self.rho))
    }
}

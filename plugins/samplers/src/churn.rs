//! The "churn" parameters A1111 passes to Euler, Heun and DPM2 (Karras et al. 2022,
//! Algorithm 2): before a step, noise is added to raise σ to σ̂ = σ·(1 + γ).

use crate::math::{add_scaled, churn};
use easel_core::sampler::NoiseSampler;

/// `s_churn`, `s_tmin`, `s_tmax`, `s_noise` (A1111 defaults 0, 0, ∞, 1: no churn).
#[derive(Clone, Copy, Debug)]
pub struct Churn {
    pub s_churn: f32,
    pub s_tmin: f32,
    pub s_tmax: f32,
    pub s_noise: f32,
}

impl Default for Churn {
    fn default() -> Self {
        Churn {
            s_churn: 0.0,
            s_tmin: 0.0,
            s_tmax: f32::INFINITY,
            s_noise: 1.0,
        }
    }
}

impl Churn {
    /// Raise `x` from `sigmas[i]` to σ̂ and return σ̂. k-diffusion draws the noise every
    /// step; with `s_churn` 0 it is never used, so no draw is made then.
    pub fn apply(
        &self,
        x: &mut [f32],
        sigmas: &[f32],
        i: usize,
        noise: &mut dyn NoiseSampler,
    ) -> f32 {
        if self.s_churn <= 0.0 {
            return sigmas[i];
        }
        let n = sigmas.len() - 1;
        let eps = noise.noise(sigmas[i], sigmas[i + 1]);
        let (sigma_hat, gamma) = churn(sigmas[i], n, self.s_churn, self.s_tmin, self.s_tmax);
        if gamma > 0.0 {
            let scale = (sigma_hat * sigma_hat - sigmas[i] * sigmas[i]).sqrt() * self.s_noise;
            add_scaled(x, scale, &eps);
        }
        sigma_hat
    }
}

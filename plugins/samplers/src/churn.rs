//! The "churn" parameters A1111 passes to Euler, Heun and DPM2 (Karras et al. 2022,
//! Algorithm 2): before a step, noise is added to raise σ to σ̂ = σ·(1 + γ).

use crate::math::{add_scaled, churn};
use easel_core::sampler::NoiseSampler;
use easel_core::sampler_params::SamplerParams;

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
    /// These settings with the user's churn parameters over them; `None` when the user
    /// set none of the four.
    pub fn with_params(&self, params: &SamplerParams) -> Option<Churn> {
        if params.s_churn.is_none()
            && params.s_tmin.is_none()
            && params.s_tmax.is_none()
            && params.s_noise.is_none()
        {
            return None;
        }
        Some(Churn {
            s_churn: params.s_churn.unwrap_or(self.s_churn),
            s_tmin: params.s_tmin.unwrap_or(self.s_tmin),
            s_tmax: params.s_tmax_or_infinity().unwrap_or(self.s_tmax),
            s_noise: params.s_noise.unwrap_or(self.s_noise),
        })
    }

    /// The `Sigma …` fields A1111 writes: those that differ from its defaults.
    pub fn infotext(&self) -> Vec<(&'static str, f32)> {
        let default = Churn::default();
        [
            ("Sigma churn", self.s_churn, default.s_churn),
            ("Sigma tmin", self.s_tmin, default.s_tmin),
            ("Sigma tmax", self.s_tmax, default.s_tmax),
            ("Sigma noise", self.s_noise, default.s_noise),
        ]
        .into_iter()
        .filter(|(_, v, d)| v != d)
        .map(|(key, v, _)| (key, v))
        .collect()
    }

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

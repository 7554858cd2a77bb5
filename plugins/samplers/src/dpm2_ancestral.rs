//! DPM2 a, k-diffusion `sample_dpm_2_ancestral`: a DPM2 step down to σ_down, then fresh
//! noise of size σ_up.

use crate::math::{add_scaled, ancestral_step, derivative, lincomb, log_midpoint, step};
use crate::params::{eta_infotext, with_eta};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone)]
pub struct Dpm2Ancestral {
    pub eta: f32,
    pub s_noise: f32,
}

impl Default for Dpm2Ancestral {
    fn default() -> Self {
        Dpm2Ancestral {
            eta: 1.0,
            s_noise: 1.0,
        }
    }
}

impl Sampler for Dpm2Ancestral {
    fn name(&self) -> &str {
        "dpm2_a"
    }
    fn label(&self) -> &str {
        "DPM2 a"
    }
    fn discard_next_to_last_sigma(&self) -> bool {
        true
    }
    fn uses_ensd(&self) -> bool {
        // A1111 leaves ENSD out when eta is 0: no noise is added then.
        self.eta != 0.0
    }
    fn default_scheduler(&self) -> &str {
        "karras"
    }
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Sampler>> {
        with_eta(self, params, |s, eta| s.eta = eta)
    }
    fn params_infotext(&self) -> Vec<(&'static str, f32)> {
        eta_infotext(self.eta)
    }
    fn sample<'a>(
        &'a self,
        mut x: Vec<f32>,
        sigmas: &'a [f32],
        ctx: SampleContext<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let total = sigmas.len().saturating_sub(1);
            for i in 0..total {
                let sigma = sigmas[i];
                let denoised = ctx.denoiser.denoise(&x, sigma).await?;
                let (down, up) = ancestral_step(sigma, sigmas[i + 1], self.eta);
                let d = derivative(&x, &denoised, sigma);
                if down == 0.0 {
                    step(&mut x, &d, down - sigma);
                } else {
                    let sigma_mid = log_midpoint(sigma, down);
                    let x_2 = lincomb(1.0, &x, sigma_mid - sigma, &d);
                    let denoised_2 = ctx.denoiser.denoise(&x_2, sigma_mid).await?;
                    let d_2 = derivative(&x_2, &denoised_2, sigma_mid);
                    step(&mut x, &d_2, down - sigma);
                    let noise = ctx.noise.noise(sigma, sigmas[i + 1]);
                    add_scaled(&mut x, self.s_noise * up, &noise);
                }
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

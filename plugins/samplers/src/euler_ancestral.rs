//! Euler ancestral, k-diffusion `sample_euler_ancestral`: an Euler step down to σ_down,
//! then fresh noise of size σ_up.

use crate::math::{ancestral_step, derivative, step};
use crate::params::{eta_infotext, with_eta};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone)]
pub struct EulerAncestral {
    pub eta: f32,
    pub s_noise: f32,
}

impl Default for EulerAncestral {
    /// A1111's defaults (eta 1, s_noise 1).
    fn default() -> Self {
        Self {
            eta: 1.0,
            s_noise: 1.0,
        }
    }
}

impl Sampler for EulerAncestral {
    fn name(&self) -> &str {
        "euler_a"
    }
    fn label(&self) -> &str {
        "Euler a"
    }
    fn uses_ensd(&self) -> bool {
        // A1111 leaves ENSD out when eta is 0: no noise is added then.
        self.eta != 0.0
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
                let denoised = ctx.denoiser.denoise(&x, sigmas[i]).await?;
                let (down, up) = ancestral_step(sigmas[i], sigmas[i + 1], self.eta);
                let d = derivative(&x, &denoised, sigmas[i]);
                step(&mut x, &d, down - sigmas[i]);
                if sigmas[i + 1] > 0.0 {
                    let noise = ctx.noise.noise(sigmas[i], sigmas[i + 1]);
                    step(&mut x, &noise, self.s_noise * up);
                }
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

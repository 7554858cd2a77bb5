//! DPM++ 2S a, k-diffusion `sample_dpmpp_2s_ancestral`: a single-step second-order
//! DPM-Solver++ step (in t = −ln σ) down to σ_down, then fresh noise of size σ_up.

use crate::math::{add_scaled, ancestral_step, derivative, lincomb, step};
use crate::params::{eta_infotext, with_eta};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone)]
pub struct DpmPp2sAncestral {
    pub eta: f32,
    pub s_noise: f32,
}

impl Default for DpmPp2sAncestral {
    fn default() -> Self {
        DpmPp2sAncestral {
            eta: 1.0,
            s_noise: 1.0,
        }
    }
}

impl Sampler for DpmPp2sAncestral {
    fn name(&self) -> &str {
        "dpmpp_2s_a"
    }
    fn label(&self) -> &str {
        "DPM++ 2S a"
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
                if down == 0.0 {
                    let d = derivative(&x, &denoised, sigma);
                    step(&mut x, &d, down - sigma);
                } else {
                    let (t, t_next) = (-sigma.ln(), -down.ln());
                    let h = t_next - t;
                    let s = t + 0.5 * h;
                    let sigma_s = (-s).exp();
                    let x_2 = lincomb(sigma_s / (-t).exp(), &x, -(-h * 0.5).exp_m1(), &denoised);
                    let denoised_2 = ctx.denoiser.denoise(&x_2, sigma_s).await?;
                    x = lincomb(
                        (-t_next).exp() / (-t).exp(),
                        &x,
                        -(-h).exp_m1(),
                        &denoised_2,
                    );
                }
                if sigmas[i + 1] > 0.0 {
                    let noise = ctx.noise.noise(sigma, sigmas[i + 1]);
                    add_scaled(&mut x, self.s_noise * up, &noise);
                }
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

//! DPM++ SDE, k-diffusion `sample_dpmpp_sde`: a stochastic single-step DPM-Solver++ with
//! an intermediate point halfway in t = −ln σ; noise from a Brownian tree (A1111 seeds it
//! per image, see [`crate::brownian`]). A1111 defaults it to Karras.

use crate::brownian::brownian_noise_for;
use crate::math::{add_scaled, ancestral_step, derivative, lincomb, step};
use crate::params::{eta_infotext, with_eta};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{NoiseRequest, NoiseSampler, SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone)]
pub struct DpmPpSde {
    pub eta: f32,
    pub s_noise: f32,
    /// Where the intermediate point sits, as a fraction of the step in t.
    pub r: f32,
}

impl Default for DpmPpSde {
    fn default() -> Self {
        DpmPpSde {
            eta: 1.0,
            s_noise: 1.0,
            r: 0.5,
        }
    }
}

impl Sampler for DpmPpSde {
    fn name(&self) -> &str {
        "dpmpp_sde"
    }
    fn label(&self) -> &str {
        "DPM++ SDE"
    }
    fn default_scheduler(&self) -> &str {
        "karras"
    }
    fn custom_noise(&self, request: &NoiseRequest<'_>) -> Option<Box<dyn NoiseSampler>> {
        Some(brownian_noise_for(request))
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
            let sigma_of = |t: f32| (-t).exp();
            for i in 0..total {
                let denoised = ctx.denoiser.denoise(&x, sigmas[i]).await?;
                if sigmas[i + 1] == 0.0 {
                    let d = derivative(&x, &denoised, sigmas[i]);
                    step(&mut x, &d, sigmas[i + 1] - sigmas[i]);
                } else {
                    let (t, t_next) = (-sigmas[i].ln(), -sigmas[i + 1].ln());
                    let h = t_next - t;
                    let s = t + h * self.r;
                    let fac = 1.0 / (2.0 * self.r);

                    // Step 1: to the intermediate point s.
                    let (sd, su) = ancestral_step(sigma_of(t), sigma_of(s), self.eta);
                    let s_ = -sd.ln();
                    let mut x_2 = lincomb(
                        sigma_of(s_) / sigma_of(t),
                        &x,
                        -(t - s_).exp_m1(),
                        &denoised,
                    );
                    let noise = ctx.noise.noise(sigma_of(t), sigma_of(s));
                    add_scaled(&mut x_2, self.s_noise * su, &noise);
                    let denoised_2 = ctx.denoiser.denoise(&x_2, sigma_of(s)).await?;

                    // Step 2: to t_next with the blended prediction.
                    let (sd, su) = ancestral_step(sigma_of(t), sigma_of(t_next), self.eta);
                    let t_next_ = -sd.ln();
                    let blended = lincomb(1.0 - fac, &denoised, fac, &denoised_2);
                    x = lincomb(
                        sigma_of(t_next_) / sigma_of(t),
                        &x,
                        -(t - t_next_).exp_m1(),
                        &blended,
                    );
                    let noise = ctx.noise.noise(sigma_of(t), sigma_of(t_next));
                    add_scaled(&mut x, self.s_noise * su, &noise);
                }
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

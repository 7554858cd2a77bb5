//! DPM++ 3M SDE, k-diffusion `sample_dpmpp_3m_sde`: third-order multistep DPM-Solver++
//! with Brownian-tree noise. A1111 drops the next-to-last σ for it and defaults to
//! Exponential.

use crate::brownian::brownian_noise_for;
use crate::math::{add_scaled, lincomb};
use crate::params::{eta_infotext, with_eta};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{NoiseRequest, NoiseSampler, SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone)]
pub struct DpmPp3mSde {
    pub eta: f32,
    pub s_noise: f32,
}

impl Default for DpmPp3mSde {
    fn default() -> Self {
        DpmPp3mSde {
            eta: 1.0,
            s_noise: 1.0,
        }
    }
}

impl Sampler for DpmPp3mSde {
    fn name(&self) -> &str {
        "dpmpp_3m_sde"
    }
    fn label(&self) -> &str {
        "DPM++ 3M SDE"
    }
    fn discard_next_to_last_sigma(&self) -> bool {
        true
    }
    fn default_scheduler(&self) -> &str {
        "exponential"
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
            // Previous two denoised predictions and step sizes (newest first).
            let (mut denoised_1, mut denoised_2): (Option<Vec<f32>>, Option<Vec<f32>>) =
                (None, None);
            let (mut h_1, mut h_2): (Option<f32>, Option<f32>) = (None, None);
            for i in 0..total {
                let denoised = ctx.denoiser.denoise(&x, sigmas[i]).await?;
                let mut h = h_1.unwrap_or(0.0);
                if sigmas[i + 1] == 0.0 {
                    x = denoised.clone();
                } else {
                    let (t, s) = (-sigmas[i].ln(), -sigmas[i + 1].ln());
                    h = s - t;
                    let h_eta = h * (self.eta + 1.0);
                    x = lincomb((-h_eta).exp(), &x, -(-h_eta).exp_m1(), &denoised);
                    match (&denoised_1, &denoised_2, h_1, h_2) {
                        (Some(d_1), Some(d_2), Some(h1), Some(h2)) => {
                            let (r0, r1) = (h1 / h, h2 / h);
                            let phi_2 = (-h_eta).exp_m1() / h_eta + 1.0;
                            let phi_3 = phi_2 / h_eta - 0.5;
                            for k in 0..x.len() {
                                let d1_0 = (denoised[k] - d_1[k]) / r0;
                                let d1_1 = (d_1[k] - d_2[k]) / r1;
                                let d1 = d1_0 + (d1_0 - d1_1) * r0 / (r0 + r1);
                                let d2 = (d1_0 - d1_1) / (r0 + r1);
                                x[k] = x[k] + phi_2 * d1 - phi_3 * d2;
                            }
                        }
                        (Some(d_1), _, Some(h1), _) => {
                            let r = h1 / h;
                            let phi_2 = (-h_eta).exp_m1() / h_eta + 1.0;
                            for k in 0..x.len() {
                                x[k] += phi_2 * ((denoised[k] - d_1[k]) / r);
                            }
                        }
                        _ => {}
                    }
                    if self.eta != 0.0 {
                        let noise = ctx.noise.noise(sigmas[i], sigmas[i + 1]);
                        let scale =
                            sigmas[i + 1] * (-(-2.0 * h * self.eta).exp_m1()).sqrt() * self.s_noise;
                        add_scaled(&mut x, scale, &noise);
                    }
                }
                (ctx.on_step)(i, total, &x, &denoised);
                denoised_2 = denoised_1.take();
                denoised_1 = Some(denoised);
                h_2 = h_1;
                h_1 = Some(h);
            }
            Ok(x)
        })
    }
}

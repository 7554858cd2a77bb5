//! DPM++ 2M SDE, k-diffusion `sample_dpmpp_2m_sde` (midpoint solver; `heun` selectable):
//! the multistep DPM-Solver++ with noise from a Brownian tree. A1111 defaults it to
//! Exponential.

use crate::brownian::brownian_noise_for;
use crate::math::{add_scaled, lincomb};
use crate::params::{eta_infotext, with_eta};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{NoiseRequest, NoiseSampler, SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

/// How the second-order correction is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SolverType {
    Midpoint,
    Heun,
}

#[derive(Clone)]
pub struct DpmPp2mSde {
    pub eta: f32,
    pub s_noise: f32,
    pub solver: SolverType,
}

impl Default for DpmPp2mSde {
    fn default() -> Self {
        DpmPp2mSde {
            eta: 1.0,
            s_noise: 1.0,
            solver: SolverType::Midpoint,
        }
    }
}

impl Sampler for DpmPp2mSde {
    fn name(&self) -> &str {
        match self.solver {
            SolverType::Midpoint => "dpmpp_2m_sde",
            SolverType::Heun => "dpmpp_2m_sde_heun",
        }
    }
    fn label(&self) -> &str {
        match self.solver {
            SolverType::Midpoint => "DPM++ 2M SDE",
            SolverType::Heun => "DPM++ 2M SDE Heun",
        }
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
            let mut old_denoised: Option<Vec<f32>> = None;
            let mut h_last = 0f32;
            for i in 0..total {
                let denoised = ctx.denoiser.denoise(&x, sigmas[i]).await?;
                if sigmas[i + 1] == 0.0 {
                    x = denoised.clone();
                } else {
                    let (t, s) = (-sigmas[i].ln(), -sigmas[i + 1].ln());
                    let h = s - t;
                    let eta_h = self.eta * h;
                    let gain = -(-h - eta_h).exp_m1();
                    x = lincomb(
                        sigmas[i + 1] / sigmas[i] * (-eta_h).exp(),
                        &x,
                        gain,
                        &denoised,
                    );
                    if let Some(old) = &old_denoised {
                        let r = h_last / h;
                        let coeff = match self.solver {
                            SolverType::Heun => (gain / (-h - eta_h) + 1.0) * (1.0 / r),
                            SolverType::Midpoint => 0.5 * gain * (1.0 / r),
                        };
                        let diff: Vec<f32> = denoised.iter().zip(old).map(|(a, b)| a - b).collect();
                        add_scaled(&mut x, coeff, &diff);
                    }
                    if self.eta != 0.0 {
                        let noise = ctx.noise.noise(sigmas[i], sigmas[i + 1]);
                        let scale =
                            sigmas[i + 1] * (-(-2.0 * eta_h).exp_m1()).sqrt() * self.s_noise;
                        add_scaled(&mut x, scale, &noise);
                    }
                    h_last = h;
                }
                (ctx.on_step)(i, total, &x, &denoised);
                old_denoised = Some(denoised);
            }
            Ok(x)
        })
    }
}

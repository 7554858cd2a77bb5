//! DPM fast, k-diffusion `sample_dpm_fast`: DPM-Solver with fixed steps evenly spaced in
//! t = −ln σ over the model's whole σ range, orders 3,3,…,(2,1) spending exactly `steps`
//! model evaluations. A1111 runs it with eta 1 (ancestral noise after every step).

use crate::dpm_solver::{ancestral_target, eps, midpoint, sigma_of, step_1, step_2, step_3, t_of};
use crate::math::add_scaled;
use crate::params::{eta_infotext, with_eta};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::schedule::linspace_f32;
use easel_core::{Error, Result};
use std::sync::Arc;

#[derive(Clone)]
pub struct DpmFast {
    pub eta: f32,
    pub s_noise: f32,
}

impl Default for DpmFast {
    fn default() -> Self {
        DpmFast {
            eta: 1.0,
            s_noise: 1.0,
        }
    }
}

impl Sampler for DpmFast {
    fn name(&self) -> &str {
        "dpm_fast"
    }
    fn label(&self) -> &str {
        "DPM fast"
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
            let nfe = sigmas.len().saturating_sub(1);
            if nfe == 0 {
                return Err(Error::Invalid("DPM fast needs at least 1 step".into()));
            }
            let (t_start, t_end) = (
                t_of(ctx.schedule.sigma_max()),
                t_of(ctx.schedule.sigma_min()),
            );
            let m = nfe / 3 + 1;
            let ts = linspace_f32(t_start, t_end, m + 1);
            let orders: Vec<usize> = if nfe.is_multiple_of(3) {
                std::iter::repeat_n(3, m - 2).chain([2, 1]).collect()
            } else {
                std::iter::repeat_n(3, m - 1).chain([nfe % 3]).collect()
            };
            for (i, &order) in orders.iter().enumerate() {
                let (t, t_next) = (ts[i], ts[i + 1]);
                let (target, up) = ancestral_target(t, t_next, t_end, self.eta);
                let (eps_t, denoised) = eps(ctx.denoiser, &x, t).await?;
                x = match order {
                    1 => step_1(&x, &eps_t, t, target),
                    2 => {
                        let (_, eps_r1) =
                            midpoint(ctx.denoiser, &x, &eps_t, t, target, 0.5).await?;
                        step_2(&x, &eps_t, &eps_r1, t, target, 0.5)
                    }
                    _ => {
                        let (_, eps_r1) =
                            midpoint(ctx.denoiser, &x, &eps_t, t, target, 1.0 / 3.0).await?;
                        step_3(ctx.denoiser, &x, &eps_t, &eps_r1, t, target).await?
                    }
                };
                let noise = ctx.noise.noise(sigma_of(t), sigma_of(t_next));
                add_scaled(&mut x, up * self.s_noise, &noise);
                (ctx.on_step)(i, orders.len(), &x, &denoised);
            }
            Ok(x)
        })
    }
}

//! DPM adaptive, k-diffusion `sample_dpm_adaptive`: DPM-Solver-23 with step sizes chosen
//! by an error controller over the model's whole σ range, so the step count is ignored
//! (as in A1111). A1111 runs it with eta 1.

use crate::dpm_solver::{ancestral_target, eps, midpoint, sigma_of, step_2, step_3, t_of};
use crate::math::add_scaled;
use crate::params::{eta_infotext, with_eta};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::{Error, Result};
use std::sync::Arc;

#[derive(Clone)]
pub struct DpmAdaptive {
    pub eta: f32,
    pub s_noise: f32,
    pub rtol: f32,
    pub atol: f32,
    pub h_init: f64,
    pub accept_safety: f64,
    /// Safety cap on attempted steps (the controller normally needs a few dozen).
    pub max_attempts: usize,
}

impl Default for DpmAdaptive {
    fn default() -> Self {
        DpmAdaptive {
            eta: 1.0,
            s_noise: 1.0,
            rtol: 0.05,
            atol: 0.0078,
            h_init: 0.05,
            accept_safety: 0.81,
            max_attempts: 10_000,
        }
    }
}

/// k-diffusion's `PIDStepSizeController` with its defaults (pure integral control).
struct StepController {
    h: f64,
    b1: f64,
    errs: Option<[f64; 3]>,
    accept_safety: f64,
}

impl StepController {
    fn propose(&mut self, error: f64) -> bool {
        let inv = 1.0 / (error + 1e-8);
        let errs = self.errs.get_or_insert([inv; 3]);
        errs[0] = inv;
        // p = d = 0: the b2 and b3 factors are powers with exponent 0.
        let factor = errs[0].powf(self.b1);
        let factor = 1.0 + (factor - 1.0).atan();
        let accept = factor >= self.accept_safety;
        if accept {
            errs[2] = errs[1];
            errs[1] = errs[0];
        }
        self.h *= factor;
        accept
    }
}

impl Sampler for DpmAdaptive {
    fn name(&self) -> &str {
        "dpm_adaptive"
    }
    fn label(&self) -> &str {
        "DPM adaptive"
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
            let nominal = sigmas.len().saturating_sub(1);
            let (t_start, t_end) = (
                t_of(ctx.schedule.sigma_max()),
                t_of(ctx.schedule.sigma_min()),
            );
            let order = if self.eta != 0.0 { 1.5 } else { 3.0 };
            let mut pid = StepController {
                h: self.h_init,
                b1: 1.0 / order,
                errs: None,
                accept_safety: self.accept_safety,
            };
            let mut s = t_start;
            let mut x_prev = x.clone();
            let mut attempts = 0usize;
            let root_n = (x.len() as f64).sqrt();
            while s < t_end - 1e-5 {
                attempts += 1;
                if attempts > self.max_attempts {
                    return Err(Error::Invalid(format!(
                        "DPM adaptive did not converge in {} steps",
                        self.max_attempts
                    )));
                }
                let t = t_end.min(s + pid.h as f32);
                let (target, up) = ancestral_target(s, t, t_end, self.eta);
                let (eps_s, denoised) = eps(ctx.denoiser, &x, s).await?;
                let (_, eps_r1) = midpoint(ctx.denoiser, &x, &eps_s, s, target, 1.0 / 3.0).await?;
                let x_low = step_2(&x, &eps_s, &eps_r1, s, target, 1.0 / 3.0);
                let x_high = step_3(ctx.denoiser, &x, &eps_s, &eps_r1, s, target).await?;
                let mut sum = 0f64;
                for k in 0..x.len() {
                    let delta = self
                        .atol
                        .max(self.rtol * x_low[k].abs().max(x_prev[k].abs()));
                    let e = ((x_low[k] - x_high[k]) / delta) as f64;
                    sum += e * e;
                }
                let error = (sum.sqrt() as f32) as f64 / root_n;
                if pid.propose(error) {
                    x_prev = x_low;
                    x = x_high;
                    let noise = ctx.noise.noise(sigma_of(s), sigma_of(t));
                    add_scaled(&mut x, up * self.s_noise, &noise);
                    s = t;
                }
                (ctx.on_step)(attempts - 1, nominal, &x, &denoised);
            }
            Ok(x)
        })
    }
}

//! DDIM (Song et al. 2021) as A1111's `sd_samplers_timesteps_impl.ddim`: eta 0 by
//! default (deterministic), A1111's timestep spacing (which runs one step fewer than
//! asked for when the stride divides 1000). The σ sequence only tells it the step count
//! and σ₀ (to undo the pipeline's scaling); it returns the VP latent, as A1111 decodes.
//!
//! With `cfgpp` it is A1111's `ddim_cfgpp` ("DDIM CFG++", Chung et al. 2024): the CFG
//! scale is divided by 12.5 and the step towards x_{t−1} follows the unconditional ε
//! instead of the guided one.

/// A1111's CFG++ scale mapping: CFG 12.5 is full guidance.
const CFGPP_SCALE: f64 = 1.0 / 12.5;

use crate::timesteps::{
    a1111_timesteps, alpha_cumprod, eps_at_sigma, guided_and_uncond_eps_at_sigma,
};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

#[derive(Default)]
pub struct Ddim {
    /// A1111's "Eta for DDIM" (0 = deterministic).
    pub eta: f64,
    /// DDIM CFG++ rather than plain DDIM.
    pub cfgpp: bool,
}

impl Ddim {
    /// A1111's `DDIM CFG++`.
    pub fn cfgpp() -> Self {
        Self {
            eta: 0.0,
            cfgpp: true,
        }
    }
}

impl Sampler for Ddim {
    fn name(&self) -> &str {
        if self.cfgpp {
            "ddim_cfgpp"
        } else {
            "ddim"
        }
    }
    fn label(&self) -> &str {
        if self.cfgpp {
            "DDIM CFG++"
        } else {
            "DDIM"
        }
    }
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Sampler>> {
        let eta = params.eta_ddim?;
        Some(Arc::new(Ddim {
            eta: eta as f64,
            cfgpp: self.cfgpp,
        }))
    }
    fn walks_timesteps(&self) -> bool {
        true
    }
    fn params_infotext(&self) -> Vec<(&'static str, f32)> {
        if self.eta == 0.0 {
            Vec::new()
        } else {
            vec![("Eta DDIM", self.eta as f32)]
        }
    }
    fn sample<'a>(
        &'a self,
        x: Vec<f32>,
        sigmas: &'a [f32],
        ctx: SampleContext<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let schedule = ctx.schedule;
            let (ts, mut x) = match ctx.timesteps {
                Some(ts) => (ts.to_vec(), x),
                None => {
                    let steps = sigmas.len().saturating_sub(1);
                    if steps == 0 {
                        return Ok(x);
                    }
                    let x: Vec<f32> = x.iter().map(|v| v / sigmas[0]).collect();
                    (a1111_timesteps(schedule.len(), steps), x)
                }
            };
            if ts.len() < 2 {
                return Ok(x);
            }
            let total = ts.len() - 1;
            for i in 0..total {
                let index = ts.len() - 1 - i;
                let sigma_model = schedule.sigmas()[ts[index]];
                let (e_t, e_dir) = if self.cfgpp {
                    let (guided, uncond) =
                        guided_and_uncond_eps_at_sigma(ctx.denoiser, &x, sigma_model, CFGPP_SCALE)
                            .await?;
                    (guided, Some(uncond))
                } else {
                    (eps_at_sigma(ctx.denoiser, &x, sigma_model).await?, None)
                };
                let a_t64 = alpha_cumprod(schedule, ts[index]) as f32 as f64;
                let a_prev64 = alpha_cumprod(schedule, ts[index - 1]);
                let sigma_t = (self.eta
                    * ((1.0 - a_prev64) / (1.0 - a_t64) * (1.0 - a_t64 / a_prev64)).sqrt())
                    as f32;
                let (a_t, a_prev) = (a_t64 as f32, a_prev64 as f32);
                let sqrt_one_minus_at = (1.0 - a_t).sqrt();
                let dir_scale = (1.0 - a_prev - sigma_t * sigma_t).sqrt();
                let pred_x0: Vec<f32> = x
                    .iter()
                    .zip(&e_t)
                    .map(|(x, e)| (x - sqrt_one_minus_at * e) / a_t.sqrt())
                    .collect();
                let noise = if self.eta != 0.0 {
                    Some(
                        ctx.noise
                            .noise(sigma_model, schedule.sigmas()[ts[index - 1]]),
                    )
                } else {
                    None
                };
                for k in 0..x.len() {
                    let n = noise.as_ref().map_or(0.0, |n| sigma_t * n[k]);
                    let dir = e_dir.as_ref().map_or(e_t[k], |u| u[k]);
                    x[k] = a_prev.sqrt() * pred_x0[k] + dir_scale * dir + n;
                }
                (ctx.on_step)(i, total, &x, &pred_x0);
            }
            Ok(x)
        })
    }
}

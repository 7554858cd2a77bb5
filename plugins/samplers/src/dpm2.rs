//! DPM2, k-diffusion `sample_dpm_2`: a DPM-Solver-2 step through the geometric midpoint
//! σ. A1111 drops the schedule's next-to-last σ for it and defaults to Karras.

use crate::churn::Churn;
use crate::math::{derivative, lincomb, log_midpoint, step};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

#[derive(Default)]
pub struct Dpm2 {
    pub churn: Churn,
}

impl Sampler for Dpm2 {
    fn name(&self) -> &str {
        "dpm2"
    }
    fn label(&self) -> &str {
        "DPM2"
    }
    fn discard_next_to_last_sigma(&self) -> bool {
        true
    }
    fn default_scheduler(&self) -> &str {
        "karras"
    }
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Sampler>> {
        let churn = self.churn.with_params(params)?;
        Some(Arc::new(Dpm2 { churn }))
    }
    fn params_infotext(&self) -> Vec<(&'static str, f32)> {
        self.churn.infotext()
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
                let sigma_hat = self.churn.apply(&mut x, sigmas, i, ctx.noise);
                let denoised = ctx.denoiser.denoise(&x, sigma_hat).await?;
                let d = derivative(&x, &denoised, sigma_hat);
                if sigmas[i + 1] == 0.0 {
                    step(&mut x, &d, sigmas[i + 1] - sigma_hat);
                } else {
                    let sigma_mid = log_midpoint(sigma_hat, sigmas[i + 1]);
                    let x_2 = lincomb(1.0, &x, sigma_mid - sigma_hat, &d);
                    let denoised_2 = ctx.denoiser.denoise(&x_2, sigma_mid).await?;
                    let d_2 = derivative(&x_2, &denoised_2, sigma_mid);
                    step(&mut x, &d_2, sigmas[i + 1] - sigma_hat);
                }
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

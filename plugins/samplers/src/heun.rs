//! Heun (Karras et al. 2022 Algorithm 2), k-diffusion `sample_heun`: an Euler step, then
//! the average of the slopes at both ends (plain Euler into σ = 0).

use crate::churn::Churn;
use crate::math::{derivative, lincomb, step};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

#[derive(Default)]
pub struct Heun {
    pub churn: Churn,
}

impl Sampler for Heun {
    fn name(&self) -> &str {
        "heun"
    }
    fn label(&self) -> &str {
        "Heun"
    }
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Sampler>> {
        let churn = self.churn.with_params(params)?;
        Some(Arc::new(Heun { churn }))
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
                let dt = sigmas[i + 1] - sigma_hat;
                if sigmas[i + 1] == 0.0 {
                    step(&mut x, &d, dt);
                } else {
                    let x_2 = lincomb(1.0, &x, dt, &d);
                    let denoised_2 = ctx.denoiser.denoise(&x_2, sigmas[i + 1]).await?;
                    let d_2 = derivative(&x_2, &denoised_2, sigmas[i + 1]);
                    let d_prime: Vec<f32> =
                        d.iter().zip(&d_2).map(|(a, b)| (a + b) / 2.0).collect();
                    step(&mut x, &d_prime, dt);
                }
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

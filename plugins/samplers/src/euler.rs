//! Euler (Karras et al. 2022 Algorithm 2), k-diffusion `sample_euler`, with A1111's churn
//! parameters (no churn by default).

use crate::churn::Churn;
use crate::math::{derivative, step};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::sampler_params::SamplerParams;
use easel_core::Result;
use std::sync::Arc;

#[derive(Default)]
pub struct Euler {
    pub churn: Churn,
}

impl Sampler for Euler {
    fn name(&self) -> &str {
        "euler"
    }
    fn label(&self) -> &str {
        "Euler"
    }
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Sampler>> {
        let churn = self.churn.with_params(params)?;
        Some(Arc::new(Euler { churn }))
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
                step(&mut x, &d, sigmas[i + 1] - sigma_hat);
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

//! A third-party sampler for Easel, as small as one can be: the midpoint method (second
//! order, deterministic). Copy this crate, change the update, register it. It depends on
//! nothing but `easel-core`'s plugin traits and sees only host `f32` latents.

use easel_core::backend::LocalBoxFuture;
use easel_core::registry::SamplerRegistry;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::Result;
use std::sync::Arc;

/// Midpoint ODE sampler: half an Euler step, re-evaluate, take the full step with the
/// slope from the middle.
pub struct Midpoint;

impl Sampler for Midpoint {
    fn name(&self) -> &str {
        "midpoint"
    }
    fn label(&self) -> &str {
        "Midpoint"
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
                let (sigma, next) = (sigmas[i], sigmas[i + 1]);
                let denoised = ctx.denoiser.denoise(&x, sigma).await?;
                // dx/dσ = (x − denoised)/σ, k-diffusion's `to_d`.
                let slope: Vec<f32> = x
                    .iter()
                    .zip(&denoised)
                    .map(|(x, d)| (x - d) / sigma)
                    .collect();
                if next == 0.0 {
                    x.iter_mut()
                        .zip(&slope)
                        .for_each(|(x, d)| *x += d * (next - sigma));
                } else {
                    let mid = 0.5 * (sigma + next);
                    let x_mid: Vec<f32> = x
                        .iter()
                        .zip(&slope)
                        .map(|(x, d)| x + d * (mid - sigma))
                        .collect();
                    let denoised_mid = ctx.denoiser.denoise(&x_mid, mid).await?;
                    for k in 0..x.len() {
                        x[k] += (x_mid[k] - denoised_mid[k]) / mid * (next - sigma);
                    }
                }
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

/// Make the sampler available under its name, label and aliases.
pub fn register(reg: &mut SamplerRegistry) {
    reg.register(Arc::new(Midpoint), &["k_midpoint"]);
}

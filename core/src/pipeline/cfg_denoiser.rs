//! Classifier-free guidance over the UNet, as k-diffusion's `CompVisDenoiser` wrapped by
//! A1111's `CFGDenoiser`: scale the input by c_in, run the UNet at t(σ) for cond and uncond,
//! turn ε into denoised x₀ = x − σ·ε, and mix uncond + (cond − uncond)·scale.
//! Cond and uncond share one UNet batch when their token lengths agree; otherwise they run
//! as separate calls, as A1111 does by default (no padding).

use super::conditioning::Conditioning;
use crate::backend::{Backend, LocalBoxFuture};
use crate::error::Result;
use crate::nn::hook::AttentionHook;
use crate::nn::unet::UNet;
use crate::sampler::Denoiser;
use crate::schedule::DiscreteSchedule;

pub struct CfgDenoiser<'m, B: Backend> {
    pub backend: &'m B,
    pub unet: &'m UNet<B>,
    pub schedule: &'m DiscreteSchedule,
    pub hooks: Vec<&'m dyn AttentionHook<B>>,
    /// Images in the batch; each gets the same cond/uncond.
    pub batch: usize,
    /// Latent shape of one image `[4, h, w]`.
    pub latent_shape: [usize; 3],
    pub cond: B::Tensor,
    pub uncond: B::Tensor,
    pub cfg_scale: f32,
    /// Whether cond and uncond have the same token count (one batched UNet call).
    same_length: bool,
}

impl<'m, B: Backend> CfgDenoiser<'m, B> {
    /// Upload the conditionings once (repeated per image) for the whole sampling run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        backend: &'m B,
        unet: &'m UNet<B>,
        schedule: &'m DiscreteSchedule,
        hooks: Vec<&'m dyn AttentionHook<B>>,
        batch: usize,
        latent_shape: [usize; 3],
        cond: &Conditioning,
        uncond: &Conditioning,
        cfg_scale: f32,
    ) -> Result<Self> {
        let repeat = |c: &Conditioning| -> Result<B::Tensor> {
            let data: Vec<f32> = (0..batch).flat_map(|_| c.data.iter().copied()).collect();
            backend.upload(&data, &[batch, c.tokens, c.hidden])
        };
        Ok(Self {
            backend,
            unet,
            schedule,
            hooks,
            batch,
            latent_shape,
            cond: repeat(cond)?,
            uncond: repeat(uncond)?,
            cfg_scale,
            same_length: cond.tokens == uncond.tokens,
        })
    }

    /// ε for `x_in` (`n` images) with `context` (`n` rows).
    async fn eps(&self, x_in: &[f32], n: usize, t: f32, context: &B::Tensor) -> Result<Vec<f32>> {
        let b = self.backend;
        let [c, h, w] = self.latent_shape;
        let x = b.upload(x_in, &[n, c, h, w])?;
        let out = self
            .unet
            .forward(b, &x, &vec![t; n], context, &self.hooks)?;
        b.download_async(&out).await
    }
}

impl<B: Backend> Denoiser for CfgDenoiser<'_, B> {
    fn denoise<'a>(&'a mut self, x: &'a [f32], sigma: f32) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let c_in = 1.0 / (sigma * sigma + 1.0).sqrt();
            let t = self.schedule.sigma_to_t(sigma);
            let scaled: Vec<f32> = x.iter().map(|v| v * c_in).collect();
            let n = self.batch;
            let (eps_cond, eps_uncond) = if self.same_length {
                let both: Vec<f32> = scaled.iter().chain(scaled.iter()).copied().collect();
                let ctx = self.backend.concat(&[&self.cond, &self.uncond], 0)?;
                let mut eps = self.eps(&both, 2 * n, t, &ctx).await?;
                let uncond = eps.split_off(x.len());
                (eps, uncond)
            } else {
                let cond = self.eps(&scaled, n, t, &self.cond).await?;
                let uncond = self.eps(&scaled, n, t, &self.uncond).await?;
                (cond, uncond)
            };
            let scale = self.cfg_scale;
            Ok(x.iter()
                .zip(eps_cond.iter().zip(&eps_uncond))
                .map(|(&xv, (&ec, &eu))| {
                    let dc = xv + ec * -sigma;
                    let du = xv + eu * -sigma;
                    du + (dc - du) * scale
                })
                .collect())
        })
    }
}

//! Classifier-free guidance over the UNet, as k-diffusion's `CompVisDenoiser` wrapped by
//! A1111's `CFGDenoiser`: scale the input by c_in, run the UNet at t(σ) for every `AND`
//! part and for the negative prompt, turn ε into denoised x₀ = x − σ·ε, and mix
//! `uncond + Σ (cond_j − uncond)·w_j·scale`.
//!
//! Conditionings follow their prompt schedules by A1111's counter: one tick per denoiser
//! call. Cond parts of different lengths are padded by repeating their last vector; cond
//! and uncond share one UNet batch when their token lengths agree, otherwise they run as
//! separate calls, as A1111 does by default (no padding).

use super::conditioning::{Conditioning, PromptConditioning, ScheduledConditioning};
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
    pub cond: PromptConditioning,
    pub uncond: ScheduledConditioning,
    pub cfg_scale: f32,
    /// Denoiser calls so far (A1111's `CFGDenoiser.step`).
    calls: usize,
}

impl<'m, B: Backend> CfgDenoiser<'m, B> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        backend: &'m B,
        unet: &'m UNet<B>,
        schedule: &'m DiscreteSchedule,
        hooks: Vec<&'m dyn AttentionHook<B>>,
        batch: usize,
        latent_shape: [usize; 3],
        cond: PromptConditioning,
        uncond: ScheduledConditioning,
        cfg_scale: f32,
    ) -> Self {
        Self {
            backend,
            unet,
            schedule,
            hooks,
            batch,
            latent_shape,
            cond,
            uncond,
            cfg_scale,
            calls: 0,
        }
    }

    /// Context rows for `conds`, each repeated for every image: `[n·batch, tokens, hidden]`.
    fn context(&self, conds: &[&Conditioning]) -> Result<B::Tensor> {
        let (tokens, hidden) = (conds[0].tokens, conds[0].hidden);
        let data: Vec<f32> = conds
            .iter()
            .flat_map(|c| (0..self.batch).flat_map(move |_| c.data.iter().copied()))
            .collect();
        self.backend
            .upload(&data, &[conds.len() * self.batch, tokens, hidden])
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
            let step = self.calls;
            self.calls += 1;
            let c_in = 1.0 / (sigma * sigma + 1.0).sqrt();
            let t = self.schedule.sigma_to_t(sigma);
            let scaled: Vec<f32> = x.iter().map(|v| v * c_in).collect();
            let per_batch = x.len();

            // AND parts at this step, padded to one length.
            let parts: Vec<&Conditioning> =
                self.cond.parts.iter().map(|(_, s)| s.at(step)).collect();
            let longest = parts.iter().map(|c| c.tokens).max().unwrap_or(0);
            let padded: Vec<Conditioning> = parts.iter().map(|c| c.padded_to(longest)).collect();
            let uncond = self.uncond.at(step).clone();
            let n_parts = padded.len();

            let repeat =
                |k: usize| -> Vec<f32> { (0..k).flat_map(|_| scaled.iter().copied()).collect() };
            let (eps_cond, eps_uncond) = if longest == uncond.tokens {
                let mut all: Vec<&Conditioning> = padded.iter().collect();
                all.push(&uncond);
                let ctx = self.context(&all)?;
                let mut eps = self
                    .eps(&repeat(n_parts + 1), (n_parts + 1) * self.batch, t, &ctx)
                    .await?;
                let u = eps.split_off(n_parts * per_batch);
                (eps, u)
            } else {
                let refs: Vec<&Conditioning> = padded.iter().collect();
                let cond_ctx = self.context(&refs)?;
                let c = self
                    .eps(&repeat(n_parts), n_parts * self.batch, t, &cond_ctx)
                    .await?;
                let uncond_ctx = self.context(&[&uncond])?;
                let u = self.eps(&scaled, self.batch, t, &uncond_ctx).await?;
                (c, u)
            };
            let mut out: Vec<f32> = x
                .iter()
                .zip(&eps_uncond)
                .map(|(&xv, &eu)| xv + eu * -sigma)
                .collect();
            let du = out.clone();
            for (j, (weight, _)) in self.cond.parts.iter().enumerate() {
                let w = weight * self.cfg_scale;
                let ec = &eps_cond[j * per_batch..(j + 1) * per_batch];
                for ((o, (&xv, &e)), &u) in out.iter_mut().zip(x.iter().zip(ec)).zip(&du) {
                    let dc = xv + e * -sigma;
                    *o += (dc - u) * w;
                }
            }
            Ok(out)
        })
    }
}

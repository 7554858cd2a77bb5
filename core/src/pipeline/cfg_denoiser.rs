//! Classifier-free guidance over the UNet, as k-diffusion's `CompVisDenoiser` wrapped by
//! A1111's `CFGDenoiser`: scale the input by c_in, run the UNet at t(σ) for every `AND`
//! part and for the negative prompt, turn ε into denoised x₀ = x − σ·ε, and mix
//! `uncond + Σ (cond_j − uncond)·w_j·scale`.
//!
//! Conditionings follow their prompt schedules by A1111's counter: one tick per denoiser
//! call. Cond parts of different lengths are padded by repeating their last vector; cond
//! and uncond share one UNet batch when their token lengths agree, otherwise they run as
//! separate calls, as A1111 does by default (no padding).

use super::conditioning::{
    CondPadding, CondPaddingMode, Conditioning, PromptConditioning, ScheduledConditioning,
};
use crate::backend::{Backend, LocalBoxFuture};
use crate::error::Result;
use crate::nn::hook::AttentionHook;
use crate::nn::unet::UNet;
use crate::sampler::{DenoiseCall, Denoised, Denoiser};
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
    /// Inpainting: the per-step blend of the original latent (see [`LatentBlend`]).
    pub blend: Option<LatentBlend>,
    /// Inpainting checkpoints (UNet input = latent + 5 channels): A1111's `image_cond`
    /// `[batch, 5, h, w]` (mask, masked-image latent), appended to every UNet input row
    /// of its image, for cond and uncond alike.
    pub image_cond: Option<Vec<f32>>,
    /// Denoiser calls so far (A1111's `CFGDenoiser.step`).
    calls: usize,
    /// A1111's cond/uncond padding option, and the empty prompt's encoding it pads with.
    padding: CondPadding,
    empty_chunk: Option<Conditioning>,
    /// Whether the latest call padded; reported to `padding` when the pass ends.
    last_padded: bool,
}

impl<B: Backend> Drop for CfgDenoiser<'_, B> {
    /// A1111 records the padding of a sampling pass's last model call.
    fn drop(&mut self) {
        if self.last_padded {
            self.padding
                .applied
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A1111's inpainting blend in its CFG denoiser: `x·nmask + init·mask`, where `mask` is 1
/// where the original is kept. k-diffusion samplers blend the denoised output; DDIM, PLMS
/// and UniPC (`mask_before_denoising`) blend the model's input instead, in their
/// variance-preserving latent, with the un-noised init latent as A1111 does.
pub struct LatentBlend {
    /// Init latents of the batch `[batch, c, h, w]`.
    pub init: Vec<f32>,
    /// Keep-mask of one image `[c, h, w]` (shared by the batch); `nmask = 1 − mask`.
    pub mask: Vec<f32>,
    pub nmask: Vec<f32>,
    /// Blend the input (timestep samplers) instead of the output.
    pub before: bool,
}

impl LatentBlend {
    /// `x·nmask + init·mask·init_scale` over a whole batch.
    pub fn apply(&self, x: &[f32], init_scale: f32) -> Vec<f32> {
        let per = self.mask.len();
        x.iter()
            .zip(&self.init)
            .enumerate()
            .map(|(i, (&v, &o))| {
                let k = i % per;
                v * self.nmask[k] + o * init_scale * self.mask[k]
            })
            .collect()
    }
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
            blend: None,
            image_cond: None,
            calls: 0,
            padding: CondPadding::default(),
            empty_chunk: None,
            last_padded: false,
        }
    }

    /// With A1111's cond/uncond padding; `empty_chunk` is the empty prompt's encoding,
    /// which [`CondPaddingMode::EmptyChunks`] needs.
    pub fn with_padding(mut self, padding: CondPadding, empty_chunk: Option<Conditioning>) -> Self {
        self.padding = padding;
        self.empty_chunk = empty_chunk;
        self
    }

    /// The AND parts (all of one length) and the uncond after A1111's padding option, and
    /// whether it changed anything.
    fn pad(
        &self,
        parts: Vec<Conditioning>,
        uncond: Conditioning,
    ) -> (Vec<Conditioning>, Conditioning, bool) {
        let longest = parts.first().map_or(0, |c| c.tokens);
        if longest == uncond.tokens {
            return (parts, uncond, false);
        }
        match (self.padding.mode, &self.empty_chunk) {
            (CondPaddingMode::LastVector, _) => {
                let uncond = if uncond.tokens < longest {
                    uncond.padded_to(longest)
                } else {
                    uncond.truncated_to(longest)
                };
                (parts, uncond, true)
            }
            (CondPaddingMode::EmptyChunks, Some(empty)) if empty.tokens > 0 => {
                // Python's floor division: a negative count pads the cond side.
                let diff = longest as isize - uncond.tokens as isize;
                let repeats = diff.div_euclid(empty.tokens as isize);
                if repeats < 0 {
                    let n = repeats.unsigned_abs();
                    let parts = parts.iter().map(|c| c.extended_with(empty, n)).collect();
                    (parts, uncond, true)
                } else if repeats > 0 {
                    let uncond = uncond.extended_with(empty, repeats as usize);
                    (parts, uncond, true)
                } else {
                    (parts, uncond, false)
                }
            }
            _ => (parts, uncond, false),
        }
    }

    /// With the inpainting blend.
    pub fn with_blend(mut self, blend: Option<LatentBlend>) -> Self {
        self.blend = blend;
        self
    }

    /// With an inpainting checkpoint's image conditioning `[batch, 5, h, w]`.
    pub fn with_image_cond(mut self, image_cond: Option<Vec<f32>>) -> Self {
        self.image_cond = image_cond;
        self
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
        let x = match &self.image_cond {
            None => b.upload(x_in, &[n, c, h, w])?,
            Some(ic) => {
                // Row r is image r mod batch: [latent channels, then its 5 extra].
                let (per, extra) = (c * h * w, ic.len() / self.batch);
                let mut data = Vec::with_capacity(n * (per + extra));
                for r in 0..n {
                    data.extend_from_slice(&x_in[r * per..(r + 1) * per]);
                    let i = r % self.batch;
                    data.extend_from_slice(&ic[i * extra..(i + 1) * extra]);
                }
                b.upload(&data, &[n, c + extra / (h * w), h, w])?
            }
        };
        let out = self
            .unet
            .forward(b, &x, &vec![t; n], context, &self.hooks)?;
        b.download_async(&out).await
    }
}

impl<B: Backend> Denoiser for CfgDenoiser<'_, B> {
    fn denoise<'a>(&'a mut self, x: &'a [f32], sigma: f32) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let out = self.denoise_call(x, sigma, DenoiseCall::default()).await?;
            Ok(out.denoised)
        })
    }

    fn denoise_call<'a>(
        &'a mut self,
        x: &'a [f32],
        sigma: f32,
        call: DenoiseCall,
    ) -> LocalBoxFuture<'a, Result<Denoised>> {
        Box::pin(async move {
            let step = self.calls;
            self.calls += 1;
            let c_in = 1.0 / (sigma * sigma + 1.0).sqrt();
            let t = call
                .timestep
                .unwrap_or_else(|| self.schedule.sigma_to_t(sigma));
            let blended_input = match &self.blend {
                // In the VP latent x·c_in: the init latent scaled back by 1/c_in.
                Some(blend) if blend.before => Some(blend.apply(x, 1.0 / c_in)),
                _ => None,
            };
            let model_x = blended_input.as_deref().unwrap_or(x);
            let scaled: Vec<f32> = model_x.iter().map(|v| v * c_in).collect();
            let per_batch = x.len();

            // AND parts at this step, padded to one length.
            let parts: Vec<&Conditioning> =
                self.cond.parts.iter().map(|(_, s)| s.at(step)).collect();
            let longest = parts.iter().map(|c| c.tokens).max().unwrap_or(0);
            let padded: Vec<Conditioning> = parts.iter().map(|c| c.padded_to(longest)).collect();
            let (padded, uncond, did_pad) = self.pad(padded, self.uncond.at(step).clone());
            self.last_padded = did_pad;
            let longest = padded.first().map_or(longest, |c| c.tokens);
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
            let mut du = out.clone();
            // A1111 scales in Python floats (double), then the tensor op rounds to f32.
            let scale = self.cfg_scale as f64 * call.cfg_scale_multiplier;
            for (j, (weight, _)) in self.cond.parts.iter().enumerate() {
                let w = if call.cfg_scale_multiplier == 1.0 {
                    weight * self.cfg_scale
                } else {
                    (*weight as f64 * scale) as f32
                };
                let ec = &eps_cond[j * per_batch..(j + 1) * per_batch];
                for ((o, (&xv, &e)), &u) in out.iter_mut().zip(x.iter().zip(ec)).zip(&du) {
                    let dc = xv + e * -sigma;
                    *o += (dc - u) * w;
                }
            }
            if let Some((c_skip, c_out)) = call.skip_out {
                let skip = |v: &mut Vec<f32>| {
                    for (o, &xv) in v.iter_mut().zip(x) {
                        *o = c_out * *o + c_skip * xv;
                    }
                };
                skip(&mut out);
                if call.want_uncond {
                    skip(&mut du);
                }
            }
            let denoised = match &self.blend {
                Some(blend) if !blend.before => blend.apply(&out, 1.0),
                _ => out,
            };
            Ok(Denoised {
                denoised,
                uncond: call.want_uncond.then_some(du),
            })
        })
    }
}

//! The `Sampler` seam. A sampler walks a σ sequence on host f32 latents, calling a
//! [`Denoiser`] for the denoised prediction and a [`NoiseSampler`] for fresh noise; it never
//! sees backend tensors, so a third-party sampler is plain Rust in its own crate.
//!
//! Denoising is async because in the browser reading the GPU result cannot block; native
//! front ends drive the future with [`block_on`].

use crate::backend::LocalBoxFuture;
use crate::error::{Error, Result};
use crate::noise::{RngKind, TorchDevice};
use crate::sampler_params::SamplerParams;
use crate::schedule::DiscreteSchedule;
use std::sync::Arc;

/// The model with classifier-free guidance folded in: x (σ-scaled latent, a batch of
/// images laid out one after another) → denoised x₀ prediction, same layout.
pub trait Denoiser {
    fn denoise<'a>(&'a mut self, x: &'a [f32], sigma: f32) -> LocalBoxFuture<'a, Result<Vec<f32>>>;

    /// One evaluation the way `call` asks (LCM's timesteps, CFG++'s scale and
    /// unconditional prediction). This default serves only the plain call, which is all a
    /// stand-in without a UNet or CFG of its own can honour.
    fn denoise_call<'a>(
        &'a mut self,
        x: &'a [f32],
        sigma: f32,
        call: DenoiseCall,
    ) -> LocalBoxFuture<'a, Result<Denoised>> {
        Box::pin(async move {
            if call != DenoiseCall::default() {
                return Err(Error::Invalid(format!(
                    "this denoiser cannot evaluate the model as {call:?} asks"
                )));
            }
            let denoised = self.denoise(x, sigma).await?;
            Ok(Denoised {
                denoised,
                uncond: None,
            })
        })
    }
}

/// How a sampler wants one model evaluation made, where it differs from k-diffusion's
/// `CompVisDenoiser` under A1111's CFG (the [`Default`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DenoiseCall {
    /// The UNet's timestep; `None` is t(σ) on the model's schedule. LCM runs the UNet at
    /// timesteps of its own 50-entry table.
    pub timestep: Option<f32>,
    /// `(c_skip, c_out)`: the prediction becomes `c_skip·x + c_out·denoised` before
    /// inpainting's blend (LCM's consistency parameterisation). A1111 applies it to the
    /// cond and uncond predictions before mixing them, which is the same thing, as the
    /// mixing weights sum to one.
    pub skip_out: Option<(f32, f32)>,
    /// Multiplies the CFG scale (A1111's `cond_scale_miltiplier`; DDIM CFG++ uses 1/12.5).
    pub cfg_scale_multiplier: f64,
    /// Also return the unconditional prediction alone (A1111's `last_noise_uncond`).
    pub want_uncond: bool,
}

impl Default for DenoiseCall {
    fn default() -> Self {
        Self {
            timestep: None,
            skip_out: None,
            cfg_scale_multiplier: 1.0,
            want_uncond: false,
        }
    }
}

/// What [`Denoiser::denoise_call`] returns: the guided prediction and, when asked for,
/// the unconditional one (both denoised x₀ in the layout of `x`, before any blend).
pub struct Denoised {
    pub denoised: Vec<f32>,
    pub uncond: Option<Vec<f32>>,
}

/// Fresh standard-normal noise shaped like the latent, for ancestral and SDE samplers.
/// A1111 draws it from the same per-image generators as the initial noise.
pub trait NoiseSampler {
    fn noise(&mut self, sigma: f32, sigma_next: f32) -> Vec<f32>;
}

/// What a sampler may use to build its own noise source (see
/// [`Sampler::custom_noise`]), e.g. a Brownian tree for SDE samplers.
pub struct NoiseRequest<'a> {
    /// The generator the run uses for its initial noise.
    pub rng: RngKind,
    /// The device of the A1111 run being reproduced; noise A1111 creates on the latent's
    /// device (the Brownian tree) comes from its generator.
    pub device: TorchDevice,
    /// One seed per image of the batch (A1111: `seed + i`).
    pub seeds: &'a [u64],
    /// Shape of one image's latent, e.g. `[4, h/8, w/8]`.
    pub shape: &'a [usize],
    /// The σ sequence the sampler will walk (ending in 0).
    pub sigmas: &'a [f32],
}

/// Progress report after each step: (step index from 0, total steps, current x, denoised).
pub type StepCallback<'a> = &'a mut dyn FnMut(usize, usize, &[f32], &[f32]);

/// What a sampler gets to work with besides the starting latent and σ sequence.
pub struct SampleContext<'a> {
    pub denoiser: &'a mut dyn Denoiser,
    pub noise: &'a mut dyn NoiseSampler,
    /// The model's discrete schedule (for samplers that step in timestep space).
    pub schedule: &'a DiscreteSchedule,
    pub on_step: StepCallback<'a>,
    /// For samplers that [walk timesteps](Sampler::walks_timesteps): the ascending
    /// training timesteps to walk instead of their own spacing, with `x` then already the
    /// variance-preserving latent at the timestep above the last one (img2img, A1111's
    /// `timesteps[:t_enc]`). `None` for txt2img and for σ-space samplers.
    pub timesteps: Option<&'a [usize]>,
}

pub trait Sampler: Send + Sync {
    /// Registry name, e.g. `euler_a`.
    fn name(&self) -> &str;
    /// A1111's label, e.g. `Euler a` (written to the infotext).
    fn label(&self) -> &str;
    /// A1111 drops the next-to-last σ of the schedule for this sampler (DPM2, DPM2 a,
    /// DPM++ 3M SDE); see [`crate::scheduler::sampler_sigmas`].
    fn discard_next_to_last_sigma(&self) -> bool {
        false
    }
    /// Whether the eta noise seed delta changes this sampler's result, i.e. whether
    /// A1111 writes `ENSD:` into the infotext for it.
    fn uses_ensd(&self) -> bool {
        false
    }
    /// The schedule `Automatic` stands for with this sampler (a scheduler registry name;
    /// `automatic` = the model's own evenly spaced timesteps).
    fn default_scheduler(&self) -> &str {
        crate::scheduler::AUTOMATIC
    }
    /// A noise source of the sampler's own instead of further draws from the per-image
    /// generators (A1111 gives SDE samplers a Brownian tree). `None` = the generators.
    fn custom_noise(&self, _request: &NoiseRequest<'_>) -> Option<Box<dyn NoiseSampler>> {
        None
    }
    /// This sampler with the user's tunable parameters applied (see [`SamplerParams`] for
    /// which sampler takes which). `None`: no parameter applies, use `self` as it is.
    fn with_params(&self, _params: &SamplerParams) -> Option<Arc<dyn Sampler>> {
        None
    }
    /// The infotext fields A1111 writes for this sampler's parameters that differ from
    /// its defaults (e.g. `("Eta", 0.67)`).
    fn params_infotext(&self) -> Vec<(&'static str, f32)> {
        Vec::new()
    }
    /// The σ table schedules are spaced over for this sampler, when it is not the model's
    /// own (LCM walks 50 of the 1000 training timesteps). `None` = the model's.
    fn sigma_table(&self, _model: &DiscreteSchedule) -> Option<DiscreteSchedule> {
        None
    }
    /// The σ sequence `Automatic` gives this sampler when it is not the plain spacing of
    /// its table (LCM spaces its timesteps, not table positions). `table` is
    /// [`Sampler::sigma_table`]'s, else the model's.
    fn automatic_sigmas(&self, _table: &DiscreteSchedule, _steps: usize) -> Option<Vec<f32>> {
        None
    }
    /// Whether A1111 runs this sampler on training timesteps (DDIM, PLMS, UniPC) rather
    /// than on a σ schedule; img2img then starts it from [`SampleContext::timesteps`].
    fn walks_timesteps(&self) -> bool {
        false
    }
    /// Run from `x` (already multiplied by σ₀) along `sigmas` (ending in 0).
    fn sample<'a>(
        &'a self,
        x: Vec<f32>,
        sigmas: &'a [f32],
        ctx: SampleContext<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<f32>>>;
}

/// Drive a future to completion on the current thread. Native denoisers never suspend, so
/// most futures are ready at the first poll. One that is pending is a device read-back
/// (wgpu): its mapping completes only inside a device poll, which the read-back's own
/// `poll` makes, so nothing else would wake this thread and the waker can be a no-op; the
/// future is polled again after a short sleep (50 µs, doubling to 1 ms). Sleeping instead of
/// spinning leaves the cores to the device: a software Vulkan driver (lavapipe) computes on
/// the same cores as the waiting thread.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = std::pin::pin!(fut);
    #[cfg(not(target_arch = "wasm32"))]
    let mut nap = std::time::Duration::from_micros(50);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        // A browser's event loop cannot be waited for here: there the loop only re-polls.
        #[cfg(not(target_arch = "wasm32"))]
        {
            std::thread::sleep(nap);
            nap = (nap * 2).min(std::time::Duration::from_millis(1));
        }
    }
}

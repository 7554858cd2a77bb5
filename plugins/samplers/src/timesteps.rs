//! What DDIM, PLMS and UniPC share: A1111 runs them on the variance-preserving latent
//! x_t = √ᾱ·x₀ + √(1−ᾱ)·ε at training timesteps, asking the model for ε. Through the
//! σ-space [`Denoiser`] seam that is x_σ = x_t·√(1+σ²) (so the model's input x_σ·c_in is
//! x_t again) and ε = (x_σ − denoised)/σ.

use easel_core::sampler::{DenoiseCall, Denoiser};
use easel_core::schedule::DiscreteSchedule;
use easel_core::Result;

pub use easel_core::schedule::a1111_timesteps;

/// ᾱ_t recovered from the schedule's σ_t (σ² = (1−ᾱ)/ᾱ).
pub fn alpha_cumprod(schedule: &DiscreteSchedule, t: usize) -> f64 {
    let s = schedule.sigmas()[t] as f64;
    1.0 / (1.0 + s * s)
}

/// The model's ε for the VP latent `x` at noise level σ.
pub async fn eps_at_sigma(denoiser: &mut dyn Denoiser, x: &[f32], sigma: f32) -> Result<Vec<f32>> {
    let scale = (1.0 + sigma * sigma).sqrt();
    let x_sigma: Vec<f32> = x.iter().map(|v| v * scale).collect();
    let denoised = denoiser.denoise(&x_sigma, sigma).await?;
    Ok(x_sigma
        .iter()
        .zip(&denoised)
        .map(|(a, d)| (a - d) / sigma)
        .collect())
}

/// The guided ε with the CFG scale times `scale_multiplier`, and the unconditional ε
/// alone, for the VP latent `x` at noise level σ (what CFG++ steps with).
pub async fn guided_and_uncond_eps_at_sigma(
    denoiser: &mut dyn Denoiser,
    x: &[f32],
    sigma: f32,
    scale_multiplier: f64,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let scale = (1.0 + sigma * sigma).sqrt();
    let x_sigma: Vec<f32> = x.iter().map(|v| v * scale).collect();
    let call = DenoiseCall {
        cfg_scale_multiplier: scale_multiplier,
        want_uncond: true,
        ..DenoiseCall::default()
    };
    let out = denoiser.denoise_call(&x_sigma, sigma, call).await?;
    let eps = |d: &[f32]| -> Vec<f32> {
        x_sigma
            .iter()
            .zip(d)
            .map(|(a, d)| (a - d) / sigma)
            .collect()
    };
    let uncond = out.uncond.as_deref().ok_or_else(|| {
        easel_core::Error::Invalid("the denoiser gave no unconditional prediction".into())
    })?;
    Ok((eps(&out.denoised), eps(uncond)))
}

/// The model's ε for the VP latent `x` at a (possibly fractional) timestep.
pub async fn eps_at_timestep(
    denoiser: &mut dyn Denoiser,
    schedule: &DiscreteSchedule,
    x: &[f32],
    t: f32,
) -> Result<Vec<f32>> {
    let t = t.clamp(0.0, (schedule.len() - 1) as f32);
    eps_at_sigma(denoiser, x, schedule.t_to_sigma(t)).await
}

//! LCM, A1111's sampler for latent consistency models (`sd_samplers_lcm`, since v1.8):
//! each step asks the consistency model for x₀ and re-noises it to the next σ with fresh
//! noise from the per-image generators.
//!
//! The model is wrapped differently from the k-diffusion samplers: A1111 keeps only 50 of
//! the 1000 training timesteps (every 20th, ending at 999), runs the UNet at the table
//! timestep nearest to σ, and mixes its x₀ prediction with the input by the consistency
//! boundary condition (σ_data 0.5, timestep scaled by 10). Schedules are spaced over that
//! 50-entry table; `Automatic` spaces the timesteps 999 → 19 evenly.

use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{DenoiseCall, SampleContext, Sampler};
use easel_core::schedule::{linspace_f32, DiscreteSchedule};
use easel_core::Result;

/// The training timesteps A1111 assumes (SD's).
const TIMESTEPS: usize = 1000;
/// The timesteps LCM was distilled on (A1111's "LCM Original Timesteps").
const ORIGINAL_STEPS: usize = 50;
/// Stride between LCM's timesteps.
const SKIP: usize = TIMESTEPS / ORIGINAL_STEPS;
/// σ_data of the consistency parameterisation.
const SIGMA_DATA: f32 = 0.5;
/// LCM scales the timestep by this in c_skip / c_out.
const TIMESTEP_SCALING: f32 = 10.0;

#[derive(Default)]
pub struct Lcm;

/// LCM's table: ᾱ at timesteps 19, 39, …, 999; `None` for a model without SD's 1000.
fn lcm_table(model: &DiscreteSchedule) -> Option<DiscreteSchedule> {
    let acp = model.alphas_cumprod();
    if acp.len() != TIMESTEPS {
        return None;
    }
    let mut valid = vec![0f32; ORIGINAL_STEPS];
    for x in 0..ORIGINAL_STEPS {
        valid[ORIGINAL_STEPS - 1 - x] = acp[TIMESTEPS - 1 - x * SKIP];
    }
    Some(DiscreteSchedule::from_alphas_cumprod(&valid))
}

/// The UNet timestep LCM runs at for σ: the nearest table entry, as a training timestep.
fn lcm_timestep(table: &DiscreteSchedule, sigma: f32) -> f32 {
    (table.nearest_index(sigma) * SKIP + (SKIP - 1)) as f32
}

/// (c_skip, c_out) of the boundary condition at UNet timestep `t`, in f32 as torch has it.
fn skip_out(t: f32) -> (f32, f32) {
    let scaled = t * TIMESTEP_SCALING;
    let d = scaled * scaled + SIGMA_DATA * SIGMA_DATA;
    (SIGMA_DATA * SIGMA_DATA / d, scaled / d.sqrt())
}

impl Sampler for Lcm {
    fn name(&self) -> &str {
        "lcm"
    }
    fn label(&self) -> &str {
        "LCM"
    }
    fn sigma_table(&self, model: &DiscreteSchedule) -> Option<DiscreteSchedule> {
        lcm_table(model)
    }
    fn automatic_sigmas(&self, table: &DiscreteSchedule, steps: usize) -> Option<Vec<f32>> {
        // Timesteps from the largest table entry's down to the smallest's, evenly, then
        // back to fractional table positions.
        let (skip, first) = (SKIP as f32, (SKIP - 1) as f32);
        let max_index = (table.len() - 1) as f32;
        let last = max_index * skip + first;
        let mut sigmas: Vec<f32> = linspace_f32(last, first, steps)
            .into_iter()
            .map(|t| table.t_to_sigma(((t - first) / skip).clamp(0.0, max_index)))
            .collect();
        sigmas.push(0.0);
        Some(sigmas)
    }
    fn sample<'a>(
        &'a self,
        mut x: Vec<f32>,
        sigmas: &'a [f32],
        ctx: SampleContext<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let table = lcm_table(ctx.schedule).ok_or_else(|| {
                easel_core::Error::Invalid(format!(
                    "LCM needs SD's {TIMESTEPS} training timesteps; this model has {}",
                    ctx.schedule.len()
                ))
            })?;
            let total = sigmas.len().saturating_sub(1);
            for i in 0..total {
                let t = lcm_timestep(&table, sigmas[i]);
                let call = DenoiseCall {
                    timestep: Some(t),
                    skip_out: Some(skip_out(t)),
                    ..DenoiseCall::default()
                };
                let denoised = ctx
                    .denoiser
                    .denoise_call(&x, sigmas[i], call)
                    .await?
                    .denoised;
                x.copy_from_slice(&denoised);
                if sigmas[i + 1] > 0.0 {
                    let noise = ctx.noise.noise(sigmas[i], sigmas[i + 1]);
                    for (v, n) in x.iter_mut().zip(&noise) {
                        *v += sigmas[i + 1] * n;
                    }
                }
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A1111 keeps ᾱ at 19, 39, …, 999 of SD's 1000 timesteps, so its table's σ are the
    /// model's σ there.
    #[test]
    fn table_is_every_twentieth_timestep_ending_at_999() {
        let model = DiscreteSchedule::scaled_linear(0.00085, 0.012, 1000);
        let table = lcm_table(&model).unwrap();
        assert_eq!(table.len(), 50);
        for j in 0..50 {
            assert_eq!(table.sigmas()[j], model.sigmas()[19 + 20 * j]);
        }
        assert_eq!(lcm_timestep(&table, model.sigmas()[999]), 999.0);
        assert_eq!(lcm_timestep(&table, model.sigmas()[0]), 19.0);
    }
}

//! Restart (Xu et al. 2023), A1111's `restart_sampler`: Heun steps along a Karras
//! schedule; at 20+ steps part of the budget goes to jumping back up from σ ≈ 0.1 to
//! σ ≈ 2 with fresh noise and descending again (twice from 36 steps).

use crate::math::{add_scaled, derivative, lincomb, step};
use crate::schedules::karras_sigmas;
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::Result;

pub struct Restart {
    pub s_noise: f32,
}

impl Default for Restart {
    fn default() -> Self {
        Restart { s_noise: 1.0 }
    }
}

/// Index of the σ closest to `target` (first one on ties, as `argmin`).
fn nearest(sigmas: &[f32], target: f32) -> usize {
    let mut best = 0;
    for (i, s) in sigmas.iter().enumerate() {
        if (s - target).abs() < (sigmas[best] - target).abs() {
            best = i;
        }
    }
    best
}

/// The (from, to) σ pairs Restart walks, restart segments included.
pub fn restart_plan(sigmas: &[f32]) -> Vec<(f32, f32)> {
    let steps = sigmas.len() - 1;
    // (index the restart starts from, (restart steps, times, σ to jump up to))
    let mut own_sigmas = sigmas.to_vec();
    let mut restart: Option<(f32, usize, usize, f32)> = None;
    if steps >= 20 {
        let (restart_steps, times) = if steps >= 36 { (steps / 4, 2) } else { (9, 1) };
        own_sigmas = karras_sigmas(
            steps - restart_steps * times,
            sigmas[sigmas.len() - 2] as f64,
            sigmas[0] as f64,
            7.0,
        );
        restart = Some((0.1, restart_steps + 1, times, 2.0));
    }
    let restart_at =
        restart.map(|(key, steps, times, max)| (nearest(&own_sigmas, key), steps, times, max));
    let mut plan = Vec::new();
    for i in 0..own_sigmas.len() - 1 {
        plan.push((own_sigmas[i], own_sigmas[i + 1]));
        if let Some((at, restart_steps, times, max)) = restart_at {
            if i + 1 == at {
                let max_idx = nearest(&own_sigmas, max);
                if max_idx < at {
                    let up = karras_sigmas(
                        restart_steps,
                        own_sigmas[at] as f64,
                        own_sigmas[max_idx] as f64,
                        7.0,
                    );
                    let up = &up[..up.len() - 1];
                    for _ in 0..times {
                        plan.extend(up.windows(2).map(|w| (w[0], w[1])));
                    }
                }
            }
        }
    }
    plan
}

impl Sampler for Restart {
    fn name(&self) -> &str {
        "restart"
    }
    fn label(&self) -> &str {
        "Restart"
    }
    fn default_scheduler(&self) -> &str {
        "karras"
    }
    fn sample<'a>(
        &'a self,
        mut x: Vec<f32>,
        sigmas: &'a [f32],
        ctx: SampleContext<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            if sigmas.len() < 2 {
                return Ok(x);
            }
            let plan = restart_plan(sigmas);
            let total = plan.len();
            let mut last: Option<f32> = None;
            for (i, &(old, new)) in plan.iter().enumerate() {
                if let Some(last) = last {
                    if last < old {
                        let noise = ctx.noise.noise(old, new);
                        add_scaled(
                            &mut x,
                            self.s_noise * (old * old - last * last).sqrt(),
                            &noise,
                        );
                    }
                }
                let denoised = ctx.denoiser.denoise(&x, old).await?;
                let d = derivative(&x, &denoised, old);
                let dt = new - old;
                if new == 0.0 {
                    step(&mut x, &d, dt);
                } else {
                    let x_2 = lincomb(1.0, &x, dt, &d);
                    let denoised_2 = ctx.denoiser.denoise(&x_2, new).await?;
                    let d_2 = derivative(&x_2, &denoised_2, new);
                    let d_prime: Vec<f32> =
                        d.iter().zip(&d_2).map(|(a, b)| (a + b) / 2.0).collect();
                    step(&mut x, &d_prime, dt);
                }
                (ctx.on_step)(i, total, &x, &denoised);
                last = Some(new);
            }
            Ok(x)
        })
    }
}

//! PLMS (pseudo linear multistep, Liu et al. 2022) as A1111's
//! `sd_samplers_timesteps_impl.plms`: a pseudo improved-Euler first step, then
//! Adams–Bashforth combinations of up to four ε predictions. Same timesteps and latent
//! conventions as [`crate::Ddim`].

use crate::timesteps::{a1111_timesteps, alpha_cumprod, eps_at_sigma};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::schedule::DiscreteSchedule;
use easel_core::Result;

pub struct Plms;

/// (x_prev, predicted x₀) for a DDIM-style step with ε `e` from timestep `ts[index]`.
fn ddim_step(
    schedule: &DiscreteSchedule,
    ts: &[usize],
    x: &[f32],
    e: &[f32],
    index: usize,
) -> (Vec<f32>, Vec<f32>) {
    let a_t = alpha_cumprod(schedule, ts[index]) as f32;
    let a_prev = alpha_cumprod(schedule, if index == 0 { 0 } else { ts[index - 1] }) as f32;
    let sqrt_one_minus_at = (1.0 - a_t).sqrt();
    let pred_x0: Vec<f32> = x
        .iter()
        .zip(e)
        .map(|(x, e)| (x - sqrt_one_minus_at * e) / a_t.sqrt())
        .collect();
    let dir = (1.0 - a_prev).sqrt();
    let x_prev = pred_x0
        .iter()
        .zip(e)
        .map(|(p, e)| a_prev.sqrt() * p + dir * e)
        .collect();
    (x_prev, pred_x0)
}

impl Sampler for Plms {
    fn name(&self) -> &str {
        "plms"
    }
    fn label(&self) -> &str {
        "PLMS"
    }
    fn walks_timesteps(&self) -> bool {
        true
    }
    fn sample<'a>(
        &'a self,
        x: Vec<f32>,
        sigmas: &'a [f32],
        ctx: SampleContext<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let schedule = ctx.schedule;
            let (ts, mut x) = match ctx.timesteps {
                Some(ts) => (ts.to_vec(), x),
                None => {
                    let steps = sigmas.len().saturating_sub(1);
                    if steps == 0 {
                        return Ok(x);
                    }
                    let x: Vec<f32> = x.iter().map(|v| v / sigmas[0]).collect();
                    (a1111_timesteps(schedule.len(), steps), x)
                }
            };
            if ts.len() < 2 {
                return Ok(x);
            }
            let sigma_at = |t: usize| schedule.sigmas()[t];
            let mut old_eps: Vec<Vec<f32>> = Vec::new();
            let total = ts.len() - 1;
            for i in 0..total {
                let index = ts.len() - 1 - i;
                let t_next = ts[index.saturating_sub(1)];
                let e_t = eps_at_sigma(ctx.denoiser, &x, sigma_at(ts[index])).await?;
                let n = old_eps.len();
                let e_prime: Vec<f32> = match n {
                    0 => {
                        let (x_prev, _) = ddim_step(schedule, &ts, &x, &e_t, index);
                        let e_next = eps_at_sigma(ctx.denoiser, &x_prev, sigma_at(t_next)).await?;
                        e_t.iter()
                            .zip(&e_next)
                            .map(|(a, b)| (a + b) / 2.0)
                            .collect()
                    }
                    1 => (0..x.len())
                        .map(|k| (3.0 * e_t[k] - old_eps[n - 1][k]) / 2.0)
                        .collect(),
                    2 => (0..x.len())
                        .map(|k| {
                            (23.0 * e_t[k] - 16.0 * old_eps[n - 1][k] + 5.0 * old_eps[n - 2][k])
                                / 12.0
                        })
                        .collect(),
                    _ => (0..x.len())
                        .map(|k| {
                            (55.0 * e_t[k] - 59.0 * old_eps[n - 1][k] + 37.0 * old_eps[n - 2][k]
                                - 9.0 * old_eps[n - 3][k])
                                / 24.0
                        })
                        .collect(),
                };
                let (x_prev, pred_x0) = ddim_step(schedule, &ts, &x, &e_prime, index);
                old_eps.push(e_t);
                if old_eps.len() >= 4 {
                    old_eps.remove(0);
                }
                x = x_prev;
                (ctx.on_step)(i, total, &x, &pred_x0);
            }
            Ok(x)
        })
    }
}

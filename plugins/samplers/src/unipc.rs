//! UniPC (Zhao et al. 2023) as A1111 runs it: multistep predictor–corrector of order 3
//! with the B(h) = h variant ("bh1"), data prediction, time-uniform steps from t = 1 to
//! 1/1000 in DPM-Solver's continuous time, lower orders at the end, no corrector after
//! the last step. Timestep count and latent conventions as [`crate::Ddim`].

use crate::timesteps::{a1111_timesteps, eps_at_timestep};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{Denoiser, SampleContext, Sampler};
use easel_core::schedule::{linspace_f32, DiscreteSchedule};
use easel_core::Result;

pub struct UniPc {
    pub order: usize,
    pub lower_order_final: bool,
}

impl Default for UniPc {
    fn default() -> Self {
        UniPc {
            order: 3,
            lower_order_final: true,
        }
    }
}

/// DPM-Solver's discrete VP schedule: log α_t (α = √ᾱ) piecewise linear in continuous
/// t ∈ [1/N, 1], where training timestep n sits at t = (n + 1)/N.
struct VpSchedule {
    t_array: Vec<f32>,
    log_alpha: Vec<f32>,
}

impl VpSchedule {
    fn new(schedule: &DiscreteSchedule) -> Self {
        let n = schedule.len();
        let t_array = linspace_f32(0.0, 1.0, n + 1)[1..].to_vec();
        let log_alpha = schedule
            .sigmas()
            .iter()
            .map(|&s| (0.5 * (1.0 / (1.0 + (s as f64) * (s as f64))).ln()) as f32)
            .collect();
        VpSchedule { t_array, log_alpha }
    }

    /// log α_t, extrapolating the outermost segments beyond the table.
    fn log_mean_coeff(&self, t: f32) -> f32 {
        let xs = &self.t_array;
        let k = xs
            .partition_point(|&p| p < t)
            .saturating_sub(1)
            .min(xs.len() - 2);
        let (x0, x1, y0, y1) = (xs[k], xs[k + 1], self.log_alpha[k], self.log_alpha[k + 1]);
        y0 + (t - x0) * (y1 - y0) / (x1 - x0)
    }

    fn alpha(&self, t: f32) -> f32 {
        self.log_mean_coeff(t).exp()
    }

    fn std(&self, t: f32) -> f32 {
        (1.0 - (2.0 * self.log_mean_coeff(t)).exp()).sqrt()
    }

    fn lambda(&self, t: f32) -> f32 {
        let l = self.log_mean_coeff(t);
        l - 0.5 * (1.0 - (2.0 * l).exp()).ln()
    }
}

/// Solve the small dense system `a·x = b` (Gaussian elimination with partial pivoting).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col].clone();
        for row in col + 1..n {
            let f = a[row][col] / pivot_row[col];
            for (dst, src) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *dst -= f * src;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x
}

/// Earlier model outputs (data predictions) and their times, oldest first.
#[derive(Clone, Copy)]
struct History<'h> {
    models: &'h [Vec<f32>],
    times: &'h [f32],
}

struct Solver<'s> {
    vp: VpSchedule,
    schedule: &'s DiscreteSchedule,
    steps_total: usize,
}

impl Solver<'_> {
    /// Data prediction x₀ at continuous time t.
    async fn model_x0(&self, denoiser: &mut dyn Denoiser, x: &[f32], t: f32) -> Result<Vec<f32>> {
        let t_input = (t - 1.0 / self.steps_total as f32) * self.steps_total as f32;
        let eps = eps_at_timestep(denoiser, self.schedule, x, t_input).await?;
        let (alpha, sigma) = (self.vp.alpha(t), self.vp.std(t));
        Ok(x.iter()
            .zip(&eps)
            .map(|(x, e)| (x - sigma * e) / alpha)
            .collect())
    }

    /// One UniPC-bh1 update from the history to time t; returns the new x and, when the
    /// corrector ran, the model output at the predicted point.
    async fn update(
        &self,
        denoiser: &mut dyn Denoiser,
        x: &[f32],
        history: History<'_>,
        t: f32,
        order: usize,
        use_corrector: bool,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let History { models, times } = history;
        let vp = &self.vp;
        let t_prev_0 = times[times.len() - 1];
        let model_prev_0 = &models[models.len() - 1];
        let (lambda_prev_0, lambda_t) = (vp.lambda(t_prev_0), vp.lambda(t));
        let (sigma_prev_0, sigma_t) = (vp.std(t_prev_0), vp.std(t));
        let alpha_t = vp.log_mean_coeff(t).exp();
        let h = lambda_t - lambda_prev_0;

        let mut rks: Vec<f32> = Vec::new();
        let mut d1s: Vec<Vec<f32>> = Vec::new();
        for i in 1..order {
            let t_prev_i = times[times.len() - 1 - i];
            let model_prev_i = &models[models.len() - 1 - i];
            let rk = (vp.lambda(t_prev_i) - lambda_prev_0) / h;
            rks.push(rk);
            d1s.push(
                model_prev_i
                    .iter()
                    .zip(model_prev_0)
                    .map(|(a, b)| (a - b) / rk)
                    .collect(),
            );
        }
        rks.push(1.0);

        let hh = -h;
        let h_phi_1 = hh.exp_m1();
        let mut h_phi_k = h_phi_1 / hh - 1.0;
        let mut factorial = 1.0f32;
        let b_h = hh;
        let mut r_rows: Vec<Vec<f64>> = Vec::new();
        let mut b: Vec<f64> = Vec::new();
        for i in 1..=order {
            r_rows.push(rks.iter().map(|r| r.powi(i as i32 - 1) as f64).collect());
            b.push((h_phi_k * factorial / b_h) as f64);
            factorial *= (i + 1) as f32;
            h_phi_k = h_phi_k / hh - 1.0 / factorial;
        }

        let x_t_: Vec<f32> = x
            .iter()
            .zip(model_prev_0)
            .map(|(x, m)| (sigma_t / sigma_prev_0) * x - (alpha_t * h_phi_1) * m)
            .collect();
        let weighted = |rhos: &[f64], k: usize| -> f32 {
            rhos.iter().zip(&d1s).map(|(r, d)| *r as f32 * d[k]).sum()
        };
        let mut x_t = x_t_.clone();
        if !d1s.is_empty() {
            let rhos_p: Vec<f64> = if order == 2 {
                vec![0.5]
            } else {
                let sub: Vec<Vec<f64>> = r_rows[..order - 1]
                    .iter()
                    .map(|r| r[..order - 1].to_vec())
                    .collect();
                solve(sub, b[..order - 1].to_vec())
            };
            for k in 0..x_t.len() {
                x_t[k] = x_t_[k] - (alpha_t * b_h) * weighted(&rhos_p, k);
            }
        }
        if !use_corrector {
            return Ok((x_t, None));
        }
        let rhos_c: Vec<f64> = if order == 1 {
            vec![0.5]
        } else {
            solve(r_rows, b)
        };
        let model_t = self.model_x0(denoiser, &x_t, t).await?;
        let last = rhos_c[rhos_c.len() - 1] as f32;
        let corrected = (0..x.len())
            .map(|k| {
                let corr = if d1s.is_empty() {
                    0.0
                } else {
                    weighted(&rhos_c[..rhos_c.len() - 1], k)
                };
                let d1_t = model_t[k] - model_prev_0[k];
                x_t_[k] - (alpha_t * b_h) * (corr + last * d1_t)
            })
            .collect();
        Ok((corrected, Some(model_t)))
    }
}

impl Sampler for UniPc {
    fn name(&self) -> &str {
        "unipc"
    }
    fn label(&self) -> &str {
        "UniPC"
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
            // img2img (A1111's `is_img2img`): as many steps as timesteps, starting just
            // above the last one, from the VP latent as given.
            let (steps, t_start, mut x) = match ctx.timesteps {
                Some(ts) => match ts.last() {
                    Some(&last) => (ts.len(), last as f32 / 1000.0 + 1.0 / 1000.0, x),
                    None => return Ok(x),
                },
                None => {
                    let requested = sigmas.len().saturating_sub(1);
                    if requested == 0 {
                        return Ok(x);
                    }
                    let x: Vec<f32> = x.iter().map(|v| v / sigmas[0]).collect();
                    (a1111_timesteps(schedule.len(), requested).len(), 1.0, x)
                }
            };
            // A1111 refuses fewer steps than the order; a lower order is the useful answer.
            let order = self.order.clamp(1, steps);
            let solver = Solver {
                vp: VpSchedule::new(schedule),
                schedule,
                steps_total: schedule.len(),
            };
            let t_0 = 1.0 / schedule.len() as f32;
            let ts = linspace_f32(t_start, t_0, steps + 1);
            let mut models = vec![solver.model_x0(ctx.denoiser, &x, ts[0]).await?];
            let mut times = vec![ts[0]];
            for (init_order, &t) in ts.iter().enumerate().take(order).skip(1) {
                let history = History {
                    models: &models,
                    times: &times,
                };
                let (next, model_x) = solver
                    .update(ctx.denoiser, &x, history, t, init_order, true)
                    .await?;
                x = next;
                let model_x = match model_x {
                    Some(m) => m,
                    None => solver.model_x0(ctx.denoiser, &x, t).await?,
                };
                (ctx.on_step)(init_order - 1, steps, &x, &model_x);
                models.push(model_x);
                times.push(t);
            }
            for (step, &t) in ts.iter().enumerate().skip(order) {
                let step_order = if self.lower_order_final {
                    order.min(steps + 1 - step)
                } else {
                    order
                };
                let use_corrector = step != steps;
                let history = History {
                    models: &models,
                    times: &times,
                };
                let (next, model_x) = solver
                    .update(ctx.denoiser, &x, history, t, step_order, use_corrector)
                    .await?;
                x = next;
                (ctx.on_step)(
                    step - 1,
                    steps,
                    &x,
                    model_x.as_deref().unwrap_or(&models[models.len() - 1]),
                );
                models.rotate_left(1);
                times.rotate_left(1);
                let last = times.len() - 1;
                times[last] = t;
                if step < steps {
                    models[last] = match model_x {
                        Some(m) => m,
                        None => solver.model_x0(ctx.denoiser, &x, t).await?,
                    };
                }
            }
            Ok(x)
        })
    }
}

//! LMS: linear multistep (Adams–Bashforth in σ) of order 4, k-diffusion `sample_lms`.
//! The coefficients integrate Lagrange basis polynomials over each σ interval.

use crate::math::{add_scaled, derivative};
use easel_core::backend::LocalBoxFuture;
use easel_core::sampler::{SampleContext, Sampler};
use easel_core::Result;

pub struct Lms {
    pub order: usize,
}

impl Default for Lms {
    fn default() -> Self {
        Lms { order: 4 }
    }
}

/// ∫ from t[i] to t[i+1] of the Lagrange basis polynomial for node i−j over nodes
/// i, i−1, …, i−order+1. The integrand is a polynomial of degree < 4, so 4-point
/// Gauss–Legendre is exact (k-diffusion uses scipy's adaptive `quad`).
fn lms_coefficient(order: usize, t: &[f64], i: usize, j: usize) -> f64 {
    let basis = |tau: f64| {
        (0..order)
            .filter(|&k| k != j)
            .map(|k| (tau - t[i - k]) / (t[i - j] - t[i - k]))
            .product::<f64>()
    };
    const NODES: [(f64, f64); 4] = [
        (-0.861_136_311_594_052_6, 0.347_854_845_137_453_9),
        (-0.339_981_043_584_856_3, 0.652_145_154_862_546_1),
        (0.339_981_043_584_856_3, 0.652_145_154_862_546_1),
        (0.861_136_311_594_052_6, 0.347_854_845_137_453_9),
    ];
    let (a, b) = (t[i], t[i + 1]);
    let (half, mid) = ((b - a) / 2.0, (a + b) / 2.0);
    NODES
        .iter()
        .map(|(x, w)| w * basis(mid + half * x))
        .sum::<f64>()
        * half
}

impl Sampler for Lms {
    fn name(&self) -> &str {
        "lms"
    }
    fn label(&self) -> &str {
        "LMS"
    }
    fn sample<'a>(
        &'a self,
        mut x: Vec<f32>,
        sigmas: &'a [f32],
        ctx: SampleContext<'a>,
    ) -> LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let total = sigmas.len().saturating_sub(1);
            let t: Vec<f64> = sigmas.iter().map(|&s| s as f64).collect();
            let mut history: Vec<Vec<f32>> = Vec::new();
            for (i, &sigma) in sigmas[..total].iter().enumerate() {
                let denoised = ctx.denoiser.denoise(&x, sigma).await?;
                history.push(derivative(&x, &denoised, sigma));
                if history.len() > self.order {
                    history.remove(0);
                }
                let order = (i + 1).min(self.order);
                for j in 0..order {
                    let coeff = lms_coefficient(order, &t, i, j) as f32;
                    add_scaled(&mut x, coeff, &history[history.len() - 1 - j]);
                }
                (ctx.on_step)(i, total, &x, &denoised);
            }
            Ok(x)
        })
    }
}

//! `Beta` ("Beta Sampling is All You Need", Lee et al. 2024): timesteps placed at the
//! quantiles of a Beta(α, β) distribution (A1111 defaults α = β = 0.6), mapped linearly
//! onto [σ_min, σ_max], then 0.

use super::SigmaRange;
use easel_core::sampler_params::SamplerParams;
use easel_core::schedule::DiscreteSchedule;
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;
use std::sync::Arc;

#[derive(Clone, Copy)]
pub struct Beta {
    pub alpha: f64,
    pub beta: f64,
    pub range: SigmaRange,
}

impl Default for Beta {
    fn default() -> Self {
        Beta {
            alpha: 0.6,
            beta: 0.6,
            range: SigmaRange::default(),
        }
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, nine terms; ~1e-15 relative).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection keeps the series in its accurate range.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let t = x + 7.5;
    let series = G[1..]
        .iter()
        .enumerate()
        .fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_fraction(a: f64, b: f64, x: f64) -> f64 {
    let tiny = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    d = if d.abs() < tiny { tiny } else { d };
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = m as f64;
        for num in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + num * d;
            d = if d.abs() < tiny { tiny } else { d };
            c = 1.0 + num / c;
            c = if c.abs() < tiny { tiny } else { c };
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-16 {
            break;
        }
    }
    h
}

/// Regularized incomplete beta I_x(a, b), the Beta(a, b) CDF.
fn beta_cdf(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(a, b, x) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(b, a, 1.0 - x) / b
    }
}

/// Beta(a, b) quantile by bisection (the CDF is monotone; 200 halvings reach f64 limits).
pub fn beta_ppf(q: f64, a: f64, b: f64) -> f64 {
    if q <= 0.0 {
        return 0.0;
    }
    if q >= 1.0 {
        return 1.0;
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if beta_cdf(mid, a, b) < q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

impl Scheduler for Beta {
    fn name(&self) -> &str {
        "beta"
    }
    fn label(&self) -> &str {
        "Beta"
    }
    fn with_params(&self, params: &SamplerParams) -> Option<Arc<dyn Scheduler>> {
        let touched = params.beta_alpha.is_some()
            || params.beta_beta.is_some()
            || SigmaRange::touched(params);
        touched.then(|| {
            Arc::new(Beta {
                alpha: params.beta_alpha.map_or(self.alpha, f64::from),
                beta: params.beta_beta.map_or(self.beta, f64::from),
                range: self.range.with_params(params),
            }) as Arc<dyn Scheduler>
        })
    }
    /// A1111 always records the distribution's parameters with this schedule.
    fn params_infotext(&self) -> Vec<(&'static str, f32)> {
        let mut out = self.range.infotext();
        out.push(("Beta schedule alpha", self.alpha as f32));
        out.push(("Beta schedule beta", self.beta as f32));
        out
    }
    fn sigmas(&self, model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        let (lo, hi) = self.range.of(model);
        let mut out: Vec<f32> = (0..steps)
            .map(|i| {
                let ramp = if steps == 1 {
                    0.0
                } else {
                    i as f64 / (steps - 1) as f64
                };
                let q = beta_ppf(1.0 - ramp, self.alpha, self.beta);
                (lo + q * (hi - lo)) as f32
            })
            .collect();
        out.push(0.0);
        Ok(out)
    }
}

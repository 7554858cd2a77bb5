//! `Align Your Steps` (NVIDIA, 2024) for SD1.5: eleven published σ values, stretched to
//! other step counts by linear interpolation of log σ, then 0.

use easel_core::schedule::DiscreteSchedule;
use easel_core::scheduler::{check_steps, Scheduler};
use easel_core::Result;

/// The published SD1.5 schedule, highest σ first.
pub const SD15_SIGMAS: [f64; 11] = [
    14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029,
];

pub struct AlignYourSteps;

/// numpy `linspace(0, 1, n)` in f64.
fn unit_linspace(n: usize) -> Vec<f64> {
    match n {
        1 => vec![0.0],
        _ => (0..n).map(|i| i as f64 / (n - 1) as f64).collect(),
    }
}

impl Scheduler for AlignYourSteps {
    fn name(&self) -> &str {
        "align_your_steps"
    }
    fn label(&self) -> &str {
        "Align Your Steps"
    }
    fn sigmas(&self, _model: &DiscreteSchedule, steps: usize) -> Result<Vec<f32>> {
        check_steps(steps)?;
        if steps == SD15_SIGMAS.len() {
            let mut out: Vec<f32> = SD15_SIGMAS.iter().map(|&s| s as f32).collect();
            out.push(0.0);
            return Ok(out);
        }
        // Interpolate log σ over the ascending list, as numpy's `interp`.
        let ys: Vec<f64> = SD15_SIGMAS.iter().rev().map(|s| s.ln()).collect();
        let xs = unit_linspace(ys.len());
        let mut out: Vec<f32> = unit_linspace(steps)
            .into_iter()
            .map(|x| {
                let k = xs
                    .iter()
                    .rposition(|&p| p <= x)
                    .unwrap_or(0)
                    .min(xs.len() - 2);
                let w = (x - xs[k]) / (xs[k + 1] - xs[k]);
                (ys[k] + w * (ys[k + 1] - ys[k])).exp() as f32
            })
            .collect();
        out.reverse();
        out.push(0.0);
        Ok(out)
    }
}

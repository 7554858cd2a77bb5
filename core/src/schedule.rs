//! The discrete diffusion schedule of an SD1.x checkpoint and the σ sequences samplers
//! walk. Numbers follow k-diffusion's `DiscreteSchedule` as A1111 uses it, computed in f32
//! like torch does, so sampler trajectories line up with the reference.

/// σ_t for the model's 1000 training timesteps, with the log-σ table used for
/// interpolating fractional timesteps.
#[derive(Clone, Debug)]
pub struct DiscreteSchedule {
    alphas_cumprod: Vec<f32>,
    sigmas: Vec<f32>,
    log_sigmas: Vec<f32>,
}

impl DiscreteSchedule {
    /// SD1.x/LDM schedule: β linear in √β from `linear_start` to `linear_end`.
    /// ᾱ is accumulated in f64 and stored as f32, as the LDM buffers are.
    pub fn scaled_linear(linear_start: f64, linear_end: f64, timesteps: usize) -> Self {
        let (a, b) = (linear_start.sqrt(), linear_end.sqrt());
        let n = timesteps.max(2);
        let mut cum = 1f64;
        let alphas_cumprod: Vec<f32> = (0..timesteps)
            .map(|i| {
                let s = a + (b - a) * i as f64 / (n - 1) as f64;
                cum *= 1.0 - s * s;
                cum as f32
            })
            .collect();
        Self::from_alphas_cumprod(&alphas_cumprod)
    }

    /// From a checkpoint's `alphas_cumprod` buffer (f32).
    pub fn from_alphas_cumprod(alphas_cumprod: &[f32]) -> Self {
        let sigmas: Vec<f32> = alphas_cumprod
            .iter()
            .map(|&a| ((1.0 - a) / a).sqrt())
            .collect();
        let log_sigmas = sigmas.iter().map(|s| s.ln()).collect();
        Self {
            alphas_cumprod: alphas_cumprod.to_vec(),
            sigmas,
            log_sigmas,
        }
    }

    /// The schedule A1111's "Downcast alphas_cumprod" option gives (the model as A1111
    /// before v1.7.0-225 kept it, in fp16): ᾱ rounded to fp16, and k-diffusion's σ and log σ
    /// tables computed from it in fp16 arithmetic (each operation rounded to fp16, as torch
    /// does for a half tensor). Everything that reads the tables then works in f32 again.
    pub fn downcast_f16(&self) -> Self {
        use half::f16;
        let h = |v: f32| f16::from_f32(v).to_f32();
        let alphas: Vec<f32> = self.alphas_cumprod.iter().map(|&a| h(a)).collect();
        let sigmas: Vec<f32> = alphas
            .iter()
            .map(|&a| h(h(h(1.0 - a) / a).sqrt()))
            .collect();
        let log_sigmas = sigmas.iter().map(|&s| h(s.ln())).collect();
        Self {
            alphas_cumprod: alphas,
            sigmas,
            log_sigmas,
        }
    }

    pub fn len(&self) -> usize {
        self.sigmas.len()
    }
    pub fn is_empty(&self) -> bool {
        self.sigmas.is_empty()
    }
    pub fn sigmas(&self) -> &[f32] {
        &self.sigmas
    }
    /// ᾱ per timestep, as the table was built from.
    pub fn alphas_cumprod(&self) -> &[f32] {
        &self.alphas_cumprod
    }

    /// The table index whose log σ is nearest to σ's (the first on a tie, as
    /// `torch.argmin`): k-diffusion's quantized `sigma_to_t`.
    pub fn nearest_index(&self, sigma: f32) -> usize {
        let ls = sigma.ln();
        let mut best = (0, f32::INFINITY);
        for (i, &l) in self.log_sigmas.iter().enumerate() {
            let d = (ls - l).abs();
            if d < best.1 {
                best = (i, d);
            }
        }
        best.0
    }
    pub fn sigma_min(&self) -> f32 {
        self.sigmas[0]
    }
    pub fn sigma_max(&self) -> f32 {
        self.sigmas[self.sigmas.len() - 1]
    }

    /// Fractional timestep for σ: log-σ interpolation between the two neighbouring
    /// timesteps, clamped to the table (k-diffusion `sigma_to_t`, unquantized).
    pub fn sigma_to_t(&self, sigma: f32) -> f32 {
        let ls = sigma.ln();
        let n = self.log_sigmas.len();
        // Last index whose log σ is <= ls (0 when σ is below the table), at most n-2.
        let low = self
            .log_sigmas
            .iter()
            .rposition(|&l| ls - l >= 0.0)
            .unwrap_or(0)
            .min(n - 2);
        let (lo, hi) = (self.log_sigmas[low], self.log_sigmas[low + 1]);
        let w = ((lo - ls) / (lo - hi)).clamp(0.0, 1.0);
        (1.0 - w) * low as f32 + w * (low + 1) as f32
    }

    /// σ at a fractional timestep (k-diffusion `t_to_sigma`).
    pub fn t_to_sigma(&self, t: f32) -> f32 {
        let low = t.floor() as usize;
        let high = t.ceil() as usize;
        let w = t - t.floor();
        ((1.0 - w) * self.log_sigmas[low] + w * self.log_sigmas[high]).exp()
    }

    /// A1111's default ("Automatic") schedule for k-diffusion samplers: `steps` timesteps
    /// evenly from the last to 0, converted to σ, then a final 0.
    pub fn default_sigmas(&self, steps: usize) -> Vec<f32> {
        let t_max = (self.len() - 1) as f32;
        let mut out: Vec<f32> = linspace_f32(t_max, 0.0, steps)
            .into_iter()
            .map(|t| self.t_to_sigma(t))
            .collect();
        out.push(0.0);
        out
    }
}

/// The training timesteps A1111's DDIM/PLMS/UniPC walk for `steps` (its `get_timesteps`):
/// 1, 1 + ⌊T/steps⌋, … below T, clipped to the table, ascending. A stride that does not
/// divide T gives one extra timestep. img2img walks a prefix of this list.
pub fn a1111_timesteps(table_len: usize, steps: usize) -> Vec<usize> {
    let stride = (table_len / steps.max(1)).max(1);
    (0..table_len)
        .step_by(stride)
        .map(|t| (t + 1).min(table_len - 1))
        .collect()
}

/// `torch.linspace` in f32: the first half counts up from `start`, the second half down
/// from `end`, so both ends are exact (this matters for the fractional timesteps).
pub fn linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    match steps {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let step = (end - start) / (steps - 1) as f32;
            let half = steps / 2;
            (0..steps)
                .map(|i| {
                    if i < half {
                        start + step * i as f32
                    } else {
                        end - step * (steps - i - 1) as f32
                    }
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_hits_both_ends() {
        let v = linspace_f32(999.0, 0.0, 7);
        assert_eq!(v[0], 999.0);
        assert_eq!(v[6], 0.0);
        assert_eq!(linspace_f32(3.0, 1.0, 1), vec![3.0]);
    }

    #[test]
    fn sd15_sigma_range() {
        // Known SD1.x values: σ_min ≈ 0.0292, σ_max ≈ 14.6146 (k-diffusion with SD1.5).
        let s = DiscreteSchedule::scaled_linear(0.00085, 0.012, 1000);
        assert!((s.sigma_min() - 0.029168).abs() < 1e-4, "{}", s.sigma_min());
        assert!(
            (s.sigma_max() - 14.614642).abs() < 1e-3,
            "{}",
            s.sigma_max()
        );
        // t(σ(t)) round-trips on the table.
        for t in [0.0f32, 1.0, 420.0, 998.0, 999.0] {
            let back = s.sigma_to_t(s.t_to_sigma(t));
            assert!((back - t).abs() < 1e-2, "{t} -> {back}");
        }
    }
}

//! Small vector helpers shared by the samplers (latents are flat f32 slices).

/// `(x - denoised) / σ`: the ODE derivative k-diffusion calls `to_d`.
pub fn derivative(x: &[f32], denoised: &[f32], sigma: f32) -> Vec<f32> {
    x.iter()
        .zip(denoised)
        .map(|(a, d)| (a - d) / sigma)
        .collect()
}

/// `x += d · dt`.
pub fn step(x: &mut [f32], d: &[f32], dt: f32) {
    for (a, b) in x.iter_mut().zip(d) {
        *a += b * dt;
    }
}

/// (σ_down, σ_up) for an ancestral step from `from` to `to` with `eta`.
pub fn ancestral_step(from: f32, to: f32, eta: f32) -> (f32, f32) {
    if eta == 0.0 {
        return (to, 0.0);
    }
    let up = (eta * (to * to * (from * from - to * to) / (from * from)).sqrt()).min(to);
    let down = (to * to - up * up).sqrt();
    (down, up)
}

/// `a·x + b·y`, element by element (the shape of most solver updates).
pub fn lincomb(a: f32, x: &[f32], b: f32, y: &[f32]) -> Vec<f32> {
    x.iter().zip(y).map(|(p, q)| a * p + b * q).collect()
}

/// `x += b·y`.
pub fn add_scaled(x: &mut [f32], b: f32, y: &[f32]) {
    for (p, q) in x.iter_mut().zip(y) {
        *p += b * q;
    }
}

/// `exp(lerp(ln a, ln b, ½))` with torch's `lerp` rounding (weight ≥ ½ counts back from
/// the end): the geometric midpoint DPM2 evaluates at.
pub fn log_midpoint(a: f32, b: f32) -> f32 {
    let (la, lb) = (a.ln(), b.ln());
    (lb - (lb - la) * 0.5).exp()
}

/// Karras et al. "churn": (σ̂, γ) for step `i` of `n`; γ > 0 only inside [s_tmin, s_tmax].
pub fn churn(sigma: f32, n: usize, s_churn: f32, s_tmin: f32, s_tmax: f32) -> (f32, f32) {
    let gamma = if s_tmin <= sigma && sigma <= s_tmax {
        (s_churn / n as f32).min(std::f32::consts::SQRT_2 - 1.0)
    } else {
        0.0
    };
    (sigma * (gamma + 1.0), gamma)
}

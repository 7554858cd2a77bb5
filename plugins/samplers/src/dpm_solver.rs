//! DPM-Solver (Lu et al. 2022) single steps of order 1–3 in t = −ln σ, shared by DPM fast
//! and DPM adaptive (k-diffusion's `DPMSolver` class). Works on the noise prediction
//! ε = (x − denoised)/σ; each step reuses the ε values it already has.

use easel_core::sampler::Denoiser;
use easel_core::Result;

pub fn sigma_of(t: f32) -> f32 {
    (-t).exp()
}

pub fn t_of(sigma: f32) -> f32 {
    -sigma.ln()
}

/// ε at (x, t) from the denoiser, plus the denoised prediction it came from.
pub async fn eps(denoiser: &mut dyn Denoiser, x: &[f32], t: f32) -> Result<(Vec<f32>, Vec<f32>)> {
    let sigma = sigma_of(t);
    let denoised = denoiser.denoise(x, sigma).await?;
    let e = x
        .iter()
        .zip(&denoised)
        .map(|(a, d)| (a - d) / sigma)
        .collect();
    Ok((e, denoised))
}

/// `x − σ(t_next)·expm1(h)·ε`: the first-order step, given ε at t.
pub fn step_1(x: &[f32], eps_t: &[f32], t: f32, t_next: f32) -> Vec<f32> {
    let h = t_next - t;
    let a = sigma_of(t_next) * h.exp_m1();
    x.iter().zip(eps_t).map(|(x, e)| x - a * e).collect()
}

/// The intermediate point at t + r·h and ε there.
pub async fn midpoint(
    denoiser: &mut dyn Denoiser,
    x: &[f32],
    eps_t: &[f32],
    t: f32,
    t_next: f32,
    r: f32,
) -> Result<(f32, Vec<f32>)> {
    let h = t_next - t;
    let s = t + r * h;
    let a = sigma_of(s) * (r * h).exp_m1();
    let u: Vec<f32> = x.iter().zip(eps_t).map(|(x, e)| x - a * e).collect();
    let (eps_s, _) = eps(denoiser, &u, s).await?;
    Ok((s, eps_s))
}

/// Second-order step with the intermediate ε at fraction `r1`.
pub fn step_2(x: &[f32], eps_t: &[f32], eps_r1: &[f32], t: f32, t_next: f32, r1: f32) -> Vec<f32> {
    let h = t_next - t;
    let a = sigma_of(t_next) * h.exp_m1();
    let b = sigma_of(t_next) / (2.0 * r1) * h.exp_m1();
    (0..x.len())
        .map(|k| x[k] - a * eps_t[k] - b * (eps_r1[k] - eps_t[k]))
        .collect()
}

/// Third-order step (r1 = ⅓, r2 = ⅔): needs ε at t and at t + h/3 (`eps_r1`); evaluates
/// the model once more at t + 2h/3.
pub async fn step_3(
    denoiser: &mut dyn Denoiser,
    x: &[f32],
    eps_t: &[f32],
    eps_r1: &[f32],
    t: f32,
    t_next: f32,
) -> Result<Vec<f32>> {
    let (r1, r2) = (1.0f32 / 3.0, 2.0f32 / 3.0);
    let h = t_next - t;
    let s2 = t + r2 * h;
    let a2 = sigma_of(s2) * (r2 * h).exp_m1();
    let b2 = sigma_of(s2) * (r2 / r1) * ((r2 * h).exp_m1() / (r2 * h) - 1.0);
    let u2: Vec<f32> = (0..x.len())
        .map(|k| x[k] - a2 * eps_t[k] - b2 * (eps_r1[k] - eps_t[k]))
        .collect();
    let (eps_r2, _) = eps(denoiser, &u2, s2).await?;
    let a = sigma_of(t_next) * h.exp_m1();
    let b = sigma_of(t_next) / r2 * (h.exp_m1() / h - 1.0);
    Ok((0..x.len())
        .map(|k| x[k] - a * eps_t[k] - b * (eps_r2[k] - eps_t[k]))
        .collect())
}

/// For an ancestral step from t to t_next: (the t actually stepped to, the noise to add),
/// with k-diffusion's clamp of the target to `t_end`.
pub fn ancestral_target(t: f32, t_next: f32, t_end: f32, eta: f32) -> (f32, f32) {
    if eta == 0.0 {
        return (t_next, 0.0);
    }
    let (down, _) = crate::math::ancestral_step(sigma_of(t), sigma_of(t_next), eta);
    let target = t_end.min(t_of(down));
    let up = (sigma_of(t_next).powi(2) - sigma_of(target).powi(2)).sqrt();
    (target, up)
}

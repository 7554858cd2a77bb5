//! The sinusoidal timestep embedding of LDM's `timestep_embedding`, computed on the host in
//! f32 like torch does and uploaded by the UNet.

/// `[timesteps.len(), dim]` row-major: for frequency `fᵢ = exp(-ln(10000)·i/half)`,
/// `[cos(t·f₀..), sin(t·f₀..)]` (cosines first); an odd `dim` gets a trailing zero column.
pub fn timestep_embedding(timesteps: &[f32], dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let neg_log_period = -(10000f64.ln() as f32);
    let freqs: Vec<f32> = (0..half)
        .map(|i| (neg_log_period * i as f32 / half as f32).exp())
        .collect();
    let mut out = Vec::with_capacity(timesteps.len() * dim);
    for &t in timesteps {
        out.extend(freqs.iter().map(|&f| (t * f).cos()));
        out.extend(freqs.iter().map(|&f| (t * f).sin()));
        if !dim.is_multiple_of(2) {
            out.push(0.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_cos_then_sin() {
        let e = timestep_embedding(&[0.0, 1.0], 4);
        // t = 0: cos = 1, sin = 0.
        assert_eq!(&e[..4], &[1.0, 1.0, 0.0, 0.0]);
        // t = 1, half = 2: freqs 1 and 1/100.
        let want = [1f32.cos(), 0.01f32.cos(), 1f32.sin(), 0.01f32.sin()];
        for (g, w) in e[4..].iter().zip(want) {
            assert!((g - w).abs() < 1e-6);
        }
        assert_eq!(timestep_embedding(&[3.0], 5).len(), 5);
    }
}

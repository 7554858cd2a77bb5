//! A live preview of a latent without the VAE: SD1.x latents map to RGB almost linearly,
//! so a fixed 4×3 matrix (A1111's "Approx cheap" preview) gives one pixel per latent cell.
//! Cheap enough to run after every sampling step.

/// Latent channel → RGB contribution, per channel of an SD1.x latent.
const COEFS: [[f32; 3]; 4] = [
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
];

/// `[4, h, w]` latent → `h·w` RGB pixels (interleaved bytes). A latent with fewer than 4
/// channels' worth of values gives a black image.
pub fn latent_preview_rgb(latent: &[f32], h: usize, w: usize) -> Vec<u8> {
    let plane = h * w;
    let mut out = vec![0u8; plane * 3];
    if latent.len() < 4 * plane {
        return out;
    }
    for p in 0..plane {
        for (c, px) in out[p * 3..p * 3 + 3].iter_mut().enumerate() {
            let v: f32 = (0..4).map(|l| latent[l * plane + p] * COEFS[l][c]).sum();
            *px = (((v + 1.0) / 2.0).clamp(0.0, 1.0) * 255.0) as u8;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::latent_preview_rgb;

    /// Zero latent → (0+1)/2·255 = 127 in every channel.
    #[test]
    fn zero_latent_is_mid_grey() {
        let px = latent_preview_rgb(&[0.0; 4 * 2 * 3], 2, 3);
        assert_eq!(px.len(), 2 * 3 * 3);
        assert!(px.iter().all(|&v| v == 127));
    }

    /// Channel 0 = 1, others 0: RGB = ((1+0.298)/2, (1+0.207)/2, (1+0.208)/2)·255, truncated.
    #[test]
    fn uses_the_linear_map() {
        let mut lat = vec![0.0f32; 4];
        lat[0] = 1.0;
        assert_eq!(latent_preview_rgb(&lat, 1, 1), vec![165, 153, 154]);
    }
}

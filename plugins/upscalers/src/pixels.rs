//! 8-bit RGB ↔ the float BGR planes upscaler networks take, as A1111's
//! `pil_image_to_torch_bgr` / `torch_bgr_to_pil_image` do it: channels reversed (the
//! ESRGAN family was trained on OpenCV's BGR), `v / 255` computed in double precision and
//! stored as f32; back, clamped to [0, 1], `255 · v` in f32, rounded half to even.

use crate::tiling::Rgb8;

/// `[3, h, w]` BGR planes in [0, 1].
pub fn rgb8_to_bgr(img: &Rgb8) -> Vec<f32> {
    let plane = img.width * img.height;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in img.data.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[(2 - c) * plane + i] = (f64::from(px[c]) / 255.0) as f32;
        }
    }
    out
}

/// The inverse of [`rgb8_to_bgr`] for a `[3, h, w]` result.
pub fn bgr_to_rgb8(x: &[f32], width: usize, height: usize) -> Rgb8 {
    let plane = width * height;
    let mut img = Rgb8::new(width, height);
    for (i, px) in img.data.chunks_exact_mut(3).enumerate() {
        for (c, p) in px.iter_mut().enumerate() {
            let v = x[(2 - c) * plane + i].clamp(0.0, 1.0);
            *p = (255.0f32 * v).round_ties_even() as u8;
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_exact_and_channels_swap() {
        let img = Rgb8 {
            width: 2,
            height: 1,
            data: vec![0, 128, 255, 1, 2, 254],
        };
        let t = rgb8_to_bgr(&img);
        assert_eq!(t[0], 1.0); // blue plane first
        assert_eq!(bgr_to_rgb8(&t, 2, 1), img);
    }
}

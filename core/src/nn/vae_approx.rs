//! A1111's "Approx NN" live preview (`sd_vae_approx.VAEApprox`): eight small convolutions
//! that turn an SD1.x latent into a rough RGB image at twice the latent's size, far cheaper
//! than the VAE decoder. A1111 reads the network from `models/VAE-approx/model.pt`; so does
//! Easel (as data, through the same whitelist loader as checkpoints).
//!
//! The forward pass, as A1111's: nearest ×2 upsampling, 11 pixels of zero padding on
//! every side, then each convolution (no padding of its own) followed by a leaky ReLU of
//! slope 0.1; the shrinking of the eight kernels (7, 5 and six 3s) eats the padding, so
//! the output is exactly twice the latent's size.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::formats::open_tensor_store;
use std::path::Path;

/// Kernel size and output channels of `conv1` … `conv8`.
const LAYERS: [(usize, usize); 8] = [
    (7, 8),
    (5, 16),
    (3, 32),
    (3, 64),
    (3, 32),
    (3, 16),
    (3, 8),
    (3, 3),
];
/// Zero padding A1111 adds around the upsampled latent.
const PAD: usize = 11;
const LATENT_CHANNELS: usize = 4;

/// The network, its weights on a backend.
pub struct VaeApprox<B: Backend> {
    convs: Vec<(B::Tensor, B::Tensor)>,
}

impl<B: Backend> VaeApprox<B> {
    /// Where A1111 keeps the network, relative to the models folder.
    pub const FILE: &'static str = "VAE-approx/model.pt";

    /// The network of the models folder `models`, `None` when it has none.
    pub fn from_models_folder(b: &B, models: &Path) -> Result<Option<Self>> {
        super::load_optional(models, Self::FILE, |file| Self::load(b, file))
    }

    /// Reads `conv1` … `conv8` from A1111's `model.pt` (or a safetensors file with the same
    /// keys); a missing key or a shape that is not the network's is an error naming both.
    pub fn load(b: &B, path: &Path) -> Result<Self> {
        Self::from_store(b, &open_tensor_store(path)?, path)
    }

    /// The network in an opened file; `path` names it in messages.
    pub fn from_store(b: &B, store: &crate::formats::TensorStore, path: &Path) -> Result<Self> {
        let mut convs = Vec::new();
        let mut channels = LATENT_CHANNELS;
        for (i, &(k, out)) in LAYERS.iter().enumerate() {
            let (wk, bk) = (
                format!("conv{}.weight", i + 1),
                format!("conv{}.bias", i + 1),
            );
            for (key, shape) in [(&wk, vec![out, channels, k, k]), (&bk, vec![out])] {
                let info = store.get(key).ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: no `{key}`: not A1111's VAE-approx network",
                        path.display()
                    ))
                })?;
                if info.shape != shape {
                    return Err(Error::Invalid(format!(
                        "{}: `{key}` has shape {:?}, A1111's VAE-approx network has {shape:?}",
                        path.display(),
                        info.shape
                    )));
                }
            }
            convs.push((
                b.upload_weight(&store.read_f32(&wk)?, &[out, channels, k, k])?,
                b.upload_weight(&store.read_f32(&bk)?, &[out])?,
            ));
            channels = out;
        }
        Ok(Self { convs })
    }

    /// The network's output for one `[4, h, w]` latent: `[3, 2h, 2w]`, roughly in [-1, 1].
    pub async fn forward(&self, b: &B, latent: &[f32], h: usize, w: usize) -> Result<Vec<f32>> {
        if latent.len() != LATENT_CHANNELS * h * w || h == 0 || w == 0 {
            return Err(Error::Invalid(format!(
                "VAE-approx: {} latent values are not [4, {h}, {w}]",
                latent.len()
            )));
        }
        let x = b.upload(latent, &[1, LATENT_CHANNELS, h, w])?;
        let up = b.download_async(&b.upsample_nearest2x(&x)?).await?;
        let (uh, uw) = (2 * h, 2 * w);
        let (ph, pw) = (uh + 2 * PAD, uw + 2 * PAD);
        let mut padded = vec![0f32; LATENT_CHANNELS * ph * pw];
        for c in 0..LATENT_CHANNELS {
            for y in 0..uh {
                let src = &up[(c * uh + y) * uw..(c * uh + y + 1) * uw];
                let at = (c * ph + y + PAD) * pw + PAD;
                padded[at..at + uw].copy_from_slice(src);
            }
        }
        let mut x = b.upload(&padded, &[1, LATENT_CHANNELS, ph, pw])?;
        for (weight, bias) in &self.convs {
            x = b.leaky_relu(&b.conv2d(&x, weight, Some(bias), 1, 0)?, 0.1)?;
        }
        b.download_async(&x).await
    }

    /// The preview A1111 shows (`single_sample_to_image`): the output × 0.5 + 0.5, clamped,
    /// × 255 and truncated, as interleaved RGB bytes of `2h × 2w` pixels.
    pub async fn preview_rgb(&self, b: &B, latent: &[f32], h: usize, w: usize) -> Result<Vec<u8>> {
        let out = self.forward(b, latent, h, w).await?;
        let plane = 4 * h * w;
        let mut rgb = vec![0u8; plane * 3];
        for p in 0..plane {
            for c in 0..3 {
                let v = (out[c * plane + p] * 0.5 + 0.5).clamp(0.0, 1.0);
                rgb[p * 3 + c] = (255.0 * v) as u8;
            }
        }
        Ok(rgb)
    }
}

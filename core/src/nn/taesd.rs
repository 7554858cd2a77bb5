//! TAESD's decoder, the tiny autoencoder A1111 offers as its "TAESD" live preview and VAE
//! decode method, read from `models/VAE-approx/taesd_decoder.pth` (the file A1111 uses for
//! SD1.x) as data, through the whitelist loader.
//!
//! The network (taesd's `Decoder`, a `nn.Sequential` whose indices are the state dict's key
//! prefixes): `tanh(x / 3) · 3`; a 3×3 convolution to 64 channels and a ReLU; three times
//! [three residual blocks, a nearest ×2 upsampling and a 3×3 convolution without bias];
//! one more block; a 3×3 convolution to RGB. A block is three 3×3 convolutions with ReLUs
//! between them, added to its input, then a ReLU. The output is the image in [0, 1],
//! eight times the latent's size; the latent goes in as the sampler leaves it (TAESD has
//! the SD scale factor built in).

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::formats::{open_tensor_store, TensorStore};
use std::path::Path;

const WIDTH: usize = 64;
const LATENT_CHANNELS: usize = 4;

/// One 3×3 convolution with padding 1.
struct Conv<B: Backend> {
    weight: B::Tensor,
    bias: Option<B::Tensor>,
}

/// What the `nn.Sequential` holds at each index that has weights.
enum Layer<B: Backend> {
    Conv(Conv<B>),
    Block([Conv<B>; 3]),
    Upsample,
}

pub struct TaesdDecoder<B: Backend> {
    layers: Vec<Layer<B>>,
}

/// The decoder's layout after the clamp (index 0): `(index, layer kind)`.
fn layout() -> Vec<(usize, char)> {
    let mut out = vec![(1, 'c')];
    let mut i = 3;
    for _ in 0..3 {
        for _ in 0..3 {
            out.push((i, 'b'));
            i += 1;
        }
        out.push((i, 'u'));
        out.push((i + 1, 'n'));
        i += 2;
    }
    out.push((i, 'b'));
    out.push((i + 1, 'o'));
    out
}

fn conv<B: Backend>(
    b: &B,
    store: &TensorStore,
    path: &Path,
    prefix: &str,
    (out_ch, in_ch): (usize, usize),
    bias: bool,
) -> Result<Conv<B>> {
    let check = |key: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let info = store.get(key).ok_or_else(|| {
            Error::Invalid(format!(
                "{}: no `{key}`: not an SD1.x TAESD decoder",
                path.display()
            ))
        })?;
        if info.shape != shape {
            return Err(Error::Invalid(format!(
                "{}: `{key}` has shape {:?}, TAESD's decoder has {shape:?}",
                path.display(),
                info.shape
            )));
        }
        store.read_f32(key)
    };
    let w_shape = [out_ch, in_ch, 3, 3];
    let weight = b.upload_weight(&check(&format!("{prefix}.weight"), &w_shape)?, &w_shape)?;
    let bias = if bias {
        Some(b.upload_weight(&check(&format!("{prefix}.bias"), &[out_ch])?, &[out_ch])?)
    } else {
        None
    };
    Ok(Conv { weight, bias })
}

impl<B: Backend> TaesdDecoder<B> {
    /// Where A1111 keeps the SD1.x decoder, relative to the models folder.
    pub const FILE: &'static str = "VAE-approx/taesd_decoder.pth";

    /// The decoder of the models folder `models`, `None` when it has none.
    pub fn from_models_folder(b: &B, models: &Path) -> Result<Option<Self>> {
        let file = models.join(Self::FILE);
        if file.is_file() {
            Self::load(b, &file).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads the decoder from `path` (`taesd_decoder.pth` or a safetensors file with its
    /// keys); a missing key or another shape is an error naming the file and the key.
    pub fn load(b: &B, path: &Path) -> Result<Self> {
        let store = open_tensor_store(path)?;
        let mut layers = Vec::new();
        for (i, kind) in layout() {
            layers.push(match kind {
                'c' => Layer::Conv(conv(
                    b,
                    &store,
                    path,
                    &i.to_string(),
                    (WIDTH, LATENT_CHANNELS),
                    true,
                )?),
                'n' => Layer::Conv(conv(
                    b,
                    &store,
                    path,
                    &i.to_string(),
                    (WIDTH, WIDTH),
                    false,
                )?),
                'o' => Layer::Conv(conv(b, &store, path, &i.to_string(), (3, WIDTH), true)?),
                'u' => Layer::Upsample,
                _ => {
                    let c = |j: usize| {
                        conv(
                            b,
                            &store,
                            path,
                            &format!("{i}.conv.{j}"),
                            (WIDTH, WIDTH),
                            true,
                        )
                    };
                    Layer::Block([c(0)?, c(2)?, c(4)?])
                }
            });
        }
        Ok(Self { layers })
    }

    fn apply(b: &B, c: &Conv<B>, x: &B::Tensor) -> Result<B::Tensor> {
        b.conv2d(x, &c.weight, c.bias.as_ref(), 1, 1)
    }

    /// The decoder's output for one `[4, h, w]` latent: `[3, 8h, 8w]`, the image in about
    /// [0, 1].
    pub async fn forward(&self, b: &B, latent: &[f32], h: usize, w: usize) -> Result<Vec<f32>> {
        if latent.len() != LATENT_CHANNELS * h * w || h == 0 || w == 0 {
            return Err(Error::Invalid(format!(
                "TAESD: {} latent values are not [4, {h}, {w}]",
                latent.len()
            )));
        }
        let clamped: Vec<f32> = latent.iter().map(|v| (v / 3.0).tanh() * 3.0).collect();
        let mut x = b.upload(&clamped, &[1, LATENT_CHANNELS, h, w])?;
        let relu = |t: &B::Tensor| b.leaky_relu(t, 0.0);
        for (n, layer) in self.layers.iter().enumerate() {
            x = match layer {
                // The first convolution is followed by the decoder's own ReLU.
                Layer::Conv(c) if n == 0 => relu(&Self::apply(b, c, &x)?)?,
                Layer::Conv(c) => Self::apply(b, c, &x)?,
                Layer::Upsample => b.upsample_nearest2x(&x)?,
                Layer::Block([c0, c1, c2]) => {
                    let y = relu(&Self::apply(b, c0, &x)?)?;
                    let y = relu(&Self::apply(b, c1, &y)?)?;
                    let y = Self::apply(b, c2, &y)?;
                    relu(&b.add(&y, &x)?)?
                }
            };
        }
        b.download_async(&x).await
    }

    /// The image as A1111 makes it from TAESD's output: clamped to [0, 1], × 255 and
    /// truncated, interleaved RGB bytes of `8h × 8w` pixels.
    pub async fn decode_rgb(&self, b: &B, latent: &[f32], h: usize, w: usize) -> Result<Vec<u8>> {
        let out = self.forward(b, latent, h, w).await?;
        let plane = 64 * h * w;
        let mut rgb = vec![0u8; plane * 3];
        for p in 0..plane {
            for c in 0..3 {
                // A1111 maps the output to [-1, 1] and back before clamping.
                let v = ((out[c * plane + p] * 2.0 - 1.0 + 1.0) / 2.0).clamp(0.0, 1.0);
                rgb[p * 3 + c] = (255.0 * v) as u8;
            }
        }
        Ok(rgb)
    }
}

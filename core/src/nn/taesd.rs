//! TAESD, the tiny autoencoder A1111 offers as its "TAESD" live preview and VAE decode and
//! encode methods, read from `models/VAE-approx/taesd_decoder.pth` and `taesd_encoder.pth`
//! (the files A1111 uses for SD1.x) as data, through the whitelist loader.
//!
//! The network (taesd's `Decoder`, a `nn.Sequential` whose indices are the state dict's key
//! prefixes): `tanh(x / 3) · 3`; a 3×3 convolution to 64 channels and a ReLU; three times
//! [three residual blocks, a nearest ×2 upsampling and a 3×3 convolution without bias];
//! one more block; a 3×3 convolution to RGB. A block is three 3×3 convolutions with ReLUs
//! between them, added to its input, then a ReLU. The output is the image in [0, 1],
//! eight times the latent's size; the latent goes in as the sampler leaves it (TAESD has
//! the SD scale factor built in).
//!
//! The encoder (taesd's `Encoder`): a 3×3 convolution from RGB to 64 channels and a block;
//! three times [a stride-2 3×3 convolution without bias and three blocks]; a 3×3
//! convolution to the 4 latent channels. It takes the image in [0, 1] and gives the scaled
//! latent, an eighth of the image's size.

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
    (path, what): (&Path, &str),
    prefix: &str,
    (out_ch, in_ch): (usize, usize),
    bias: bool,
) -> Result<Conv<B>> {
    let check = |key: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let info = store.get(key).ok_or_else(|| {
            Error::Invalid(format!(
                "{}: no `{key}`: not an SD1.x TAESD {what}",
                path.display()
            ))
        })?;
        if info.shape != shape {
            return Err(Error::Invalid(format!(
                "{}: `{key}` has shape {:?}, TAESD's {what} has {shape:?}",
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
        super::load_optional(models, Self::FILE, |file| Self::load(b, file))
    }

    /// Reads the decoder from `path` (`taesd_decoder.pth` or a safetensors file with its
    /// keys); a missing key or another shape is an error naming the file and the key.
    pub fn load(b: &B, path: &Path) -> Result<Self> {
        Self::from_store(b, &open_tensor_store(path)?, path)
    }

    /// The decoder in an opened file; `path` names it in messages.
    pub fn from_store(b: &B, store: &TensorStore, path: &Path) -> Result<Self> {
        let mut layers = Vec::new();
        for (i, kind) in layout() {
            layers.push(match kind {
                'c' => Layer::Conv(conv(
                    b,
                    store,
                    (path, "decoder"),
                    &i.to_string(),
                    (WIDTH, LATENT_CHANNELS),
                    true,
                )?),
                'n' => Layer::Conv(conv(
                    b,
                    store,
                    (path, "decoder"),
                    &i.to_string(),
                    (WIDTH, WIDTH),
                    false,
                )?),
                'o' => Layer::Conv(conv(
                    b,
                    store,
                    (path, "decoder"),
                    &i.to_string(),
                    (3, WIDTH),
                    true,
                )?),
                'u' => Layer::Upsample,
                _ => {
                    let c = |j: usize| {
                        conv(
                            b,
                            store,
                            (path, "decoder"),
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
                Layer::Block(convs) => block(b, convs, &x)?,
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

/// A block: three 3×3 convolutions with ReLUs between them, added to the input, then a ReLU.
fn block<B: Backend>(b: &B, [c0, c1, c2]: &[Conv<B>; 3], x: &B::Tensor) -> Result<B::Tensor> {
    let relu = |t: &B::Tensor| b.leaky_relu(t, 0.0);
    let y = relu(&b.conv2d(x, &c0.weight, c0.bias.as_ref(), 1, 1)?)?;
    let y = relu(&b.conv2d(&y, &c1.weight, c1.bias.as_ref(), 1, 1)?)?;
    let y = b.conv2d(&y, &c2.weight, c2.bias.as_ref(), 1, 1)?;
    relu(&b.add(&y, x)?)
}

/// One step of the encoder's `nn.Sequential`.
enum EncoderLayer<B: Backend> {
    /// A 3×3 convolution with padding 1 and this stride.
    Conv(Conv<B>, usize),
    Block([Conv<B>; 3]),
}

pub struct TaesdEncoder<B: Backend> {
    layers: Vec<EncoderLayer<B>>,
}

impl<B: Backend> TaesdEncoder<B> {
    /// Where A1111 keeps the SD1.x encoder, relative to the models folder.
    pub const FILE: &'static str = "VAE-approx/taesd_encoder.pth";

    /// The encoder of the models folder `models`, `None` when it has none.
    pub fn from_models_folder(b: &B, models: &Path) -> Result<Option<Self>> {
        super::load_optional(models, Self::FILE, |file| Self::load(b, file))
    }

    /// Reads the encoder from `path` (`taesd_encoder.pth` or a safetensors file with its
    /// keys); a missing key or another shape is an error naming the file and the key.
    pub fn load(b: &B, path: &Path) -> Result<Self> {
        Self::from_store(b, &open_tensor_store(path)?, path)
    }

    /// The encoder in an opened file; `path` names it in messages.
    pub fn from_store(b: &B, store: &TensorStore, path: &Path) -> Result<Self> {
        let at = (path, "encoder");
        let block = |i: usize| -> Result<EncoderLayer<B>> {
            let c = |j: usize| conv(b, store, at, &format!("{i}.conv.{j}"), (WIDTH, WIDTH), true);
            Ok(EncoderLayer::Block([c(0)?, c(2)?, c(4)?]))
        };
        let mut layers = vec![
            EncoderLayer::Conv(conv(b, store, at, "0", (WIDTH, 3), true)?, 1),
            block(1)?,
        ];
        for stage in 0..3 {
            let i = 2 + stage * 4;
            let down = conv(b, store, at, &i.to_string(), (WIDTH, WIDTH), false)?;
            layers.push(EncoderLayer::Conv(down, 2));
            for j in 1..=3 {
                layers.push(block(i + j)?);
            }
        }
        let out = conv(b, store, at, "14", (LATENT_CHANNELS, WIDTH), true)?;
        layers.push(EncoderLayer::Conv(out, 1));
        Ok(Self { layers })
    }

    /// The scaled latent `[4, h/8, w/8]` of one image given as `[3, h, w]` floats in [0, 1]
    /// (`h` and `w` multiples of 8).
    pub async fn encode(
        &self,
        b: &B,
        image: &[f32],
        width: usize,
        height: usize,
    ) -> Result<Vec<f32>> {
        crate::pipeline::vae_encode::check_encode_size("TAESD encode", width, height)?;
        if image.len() != 3 * width * height {
            return Err(Error::Invalid(format!(
                "TAESD encode: {} values are not [3, {height}, {width}]",
                image.len()
            )));
        }
        let mut x = b.upload(image, &[1, 3, height, width])?;
        for layer in &self.layers {
            x = match layer {
                EncoderLayer::Conv(c, stride) => {
                    b.conv2d(&x, &c.weight, c.bias.as_ref(), *stride, 1)?
                }
                EncoderLayer::Block(convs) => block(b, convs, &x)?,
            };
        }
        b.download_async(&x).await
    }
}

impl<B: Backend> crate::vae_plugin::LatentDecoder<B> for TaesdDecoder<B> {
    fn label(&self) -> &str {
        "TAESD"
    }
    fn decode_rgb<'a>(
        &'a self,
        b: &'a B,
        latent: &'a [f32],
        h: usize,
        w: usize,
    ) -> crate::backend::LocalBoxFuture<'a, Result<Vec<u8>>> {
        Box::pin(TaesdDecoder::decode_rgb(self, b, latent, h, w))
    }
}

impl<B: Backend> crate::vae_plugin::LatentEncoder<B> for TaesdEncoder<B> {
    fn label(&self) -> &str {
        "TAESD"
    }
    fn encode_rgb<'a>(
        &'a self,
        b: &'a B,
        rgb: &'a [u8],
        width: usize,
        height: usize,
    ) -> crate::backend::LocalBoxFuture<'a, Result<Vec<f32>>> {
        Box::pin(async move {
            let image = crate::pipeline::vae_encode::rgb8_to_unit_chw(rgb, width, height)?;
            self.encode(b, &image, width, height).await
        })
    }
}

/// TAESD as A1111 finds it: `taesd_decoder.pth` and `taesd_encoder.pth` in the models
/// folder's `VAE-approx/`, each offered when present.
pub struct TaesdFolder;

/// Hints naming the file a missing TAESD half needs.
fn missing_hints<B: Backend>(
    m: &mut crate::vae_plugin::VaeMethods<B>,
    decoder: bool,
    encoder: bool,
) {
    for (missing, what, file) in [
        (decoder, "decoder", TaesdDecoder::<B>::FILE),
        (encoder, "encoder", TaesdEncoder::<B>::FILE),
    ] {
        if missing {
            m.hints.push((
                what.into(),
                "TAESD".into(),
                format!("it needs `{file}` in the models folder"),
            ));
        }
    }
}

impl<B: Backend> crate::vae_plugin::VaeProvider<B> for TaesdFolder {
    fn methods(&self, b: &B, models: Option<&Path>) -> Result<crate::vae_plugin::VaeMethods<B>> {
        let mut m = crate::vae_plugin::VaeMethods::default();
        let Some(models) = models else {
            return Ok(m);
        };
        let decoder = TaesdDecoder::from_models_folder(b, models)?;
        let encoder = TaesdEncoder::from_models_folder(b, models)?;
        missing_hints(&mut m, decoder.is_none(), encoder.is_none());
        if let Some(d) = decoder {
            m.decoders.push(std::sync::Arc::new(d));
        }
        if let Some(e) = encoder {
            m.encoders.push(std::sync::Arc::new(e));
        }
        Ok(m)
    }
}

/// TAESD from files given as byte sources (the page's picked `taesd_decoder.pth` and
/// `taesd_encoder.pth`): `(file name, source)` of each half that was given.
pub struct TaesdFiles {
    pub decoder: Option<(String, std::sync::Arc<dyn crate::io::ByteSource>)>,
    pub encoder: Option<(String, std::sync::Arc<dyn crate::io::ByteSource>)>,
}

fn open_named(
    (name, source): &(String, std::sync::Arc<dyn crate::io::ByteSource>),
) -> Result<TensorStore> {
    crate::formats::open_tensor_store_named(name, source.clone())
}

impl<B: Backend> crate::vae_plugin::VaeProvider<B> for TaesdFiles {
    fn methods(&self, b: &B, _: Option<&Path>) -> Result<crate::vae_plugin::VaeMethods<B>> {
        let mut m = crate::vae_plugin::VaeMethods::default();
        missing_hints(&mut m, self.decoder.is_none(), self.encoder.is_none());
        if let Some(d) = &self.decoder {
            let decoder = TaesdDecoder::from_store(b, &open_named(d)?, Path::new(&d.0))?;
            m.decoders.push(std::sync::Arc::new(decoder));
        }
        if let Some(e) = &self.encoder {
            let encoder = TaesdEncoder::from_store(b, &open_named(e)?, Path::new(&e.0))?;
            m.encoders.push(std::sync::Arc::new(encoder));
        }
        Ok(m)
    }
}

//! An upscaler file loaded onto a backend, called the way spandrel's
//! `ImageModelDescriptor.__call__` calls it (which is what A1111 ≥ 1.8 runs): the input is
//! padded to the architecture's size requirements (reflect, then replicate beyond what
//! reflection can reach), the network runs, the result is clamped to [0, 1] and cropped
//! back to `scale ×` the input size. Images travel as host `[C, H, W]` f32 planes.
//!
//! The architecture is recognised from the tensor names, trying the names as stored, then
//! inside each wrapper spandrel unwraps (see [`crate::state_dict`]), in spandrel's registry
//! order: Real-ESRGAN compact, SwinIR, then RRDBNet (ESRGAN).

use crate::compact::{self, CompactConfig, CompactNet};
use crate::padding::{pad_bottom_right, PadMode};
use crate::rrdb::{self, RrdbConfig, RrdbNet};
use crate::state_dict::StateDict;
use crate::swinir::{self, SwinIr, SwinIrConfig, RGB_MEAN};
use easel_core::backend::Backend;
use easel_core::formats::{open_tensor_store, open_tensor_store_named, TensorStore};
use easel_core::io::ByteSource;
use easel_core::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// The recognised architecture and what the tensors say about it.
#[derive(Clone, Debug, PartialEq)]
pub enum Architecture {
    Esrgan(RrdbConfig),
    Compact(CompactConfig),
    SwinIr(SwinIrConfig),
}

impl Architecture {
    /// spandrel's architecture name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Esrgan(_) => "ESRGAN",
            Self::Compact(_) => "RealESRGAN Compact",
            Self::SwinIr(_) => "SwinIR",
        }
    }
    /// A one-line description (`ESRGAN 4x, 64 features, 23 blocks`), for listings.
    pub fn describe(&self) -> String {
        match self {
            Self::Esrgan(c) => format!(
                "{} {}x, {} features, {} blocks{}",
                if c.plus { "ESRGAN+" } else { "ESRGAN" },
                c.scale(),
                c.features,
                c.blocks,
                match c.shuffle {
                    Some(s) => format!(", pixel unshuffle {s}"),
                    None => String::new(),
                }
            ),
            Self::Compact(c) => format!(
                "RealESRGAN Compact {}x, {} features, {} convolutions",
                c.scale, c.features, c.convs
            ),
            Self::SwinIr(c) => format!(
                "SwinIR {}x, width {}, depths {:?}, window {}",
                c.scale, c.embed_dim, c.depths, c.window
            ),
        }
    }
    pub fn scale(&self) -> usize {
        match self {
            Self::Esrgan(c) => c.scale(),
            Self::Compact(c) => c.scale,
            Self::SwinIr(c) => c.scale,
        }
    }
    fn channels(&self) -> (usize, usize) {
        match self {
            Self::Esrgan(c) => (
                c.in_channels / c.shuffle.map_or(1, |s| s * s),
                c.out_channels,
            ),
            Self::Compact(c) => (c.in_channels, c.out_channels),
            Self::SwinIr(c) => (c.in_channels, c.out_channels),
        }
    }
    /// spandrel's size requirements: (minimum side, multiple of).
    fn size_requirements(&self) -> (usize, usize) {
        match self {
            Self::Esrgan(c) if c.shuffle.is_some() => (4, 4),
            Self::Esrgan(_) => (2, 1),
            Self::Compact(_) => (0, 1),
            Self::SwinIr(_) => (16, 1),
        }
    }
}

/// Which architecture `store` holds, and the canonical view its network reads.
fn recognise(store: &TensorStore) -> Result<(Architecture, StateDict<'_>)> {
    for sd in StateDict::candidates(store) {
        if compact::detect(&sd) {
            return Ok((Architecture::Compact(compact::config(&sd)?), sd));
        }
        if swinir::detect(&sd) {
            return Ok((Architecture::SwinIr(swinir::config(&sd)?), sd));
        }
        if rrdb::detect(&sd) {
            return Ok((Architecture::Esrgan(rrdb::config(&sd)?.0), sd));
        }
    }
    let keys: Vec<&str> = store.keys().collect();
    let shown: Vec<String> = keys.iter().take(8).map(|k| format!("`{k}`")).collect();
    Err(Error::format(
        store.name(),
        format!(
            "unknown upscaler architecture: {} tensors{}{} (Easel runs ESRGAN/Real-ESRGAN \
             RRDBNet, Real-ESRGAN compact SRVGGNet and SwinIR)",
            keys.len(),
            if shown.is_empty() { "" } else { ", e.g. " },
            shown.join(", ")
        ),
    ))
}

/// Reads only the architecture of a file (for listings); no weights are read.
pub fn architecture_of(path: &Path) -> Result<Architecture> {
    let store = open_tensor_store(path)?;
    recognise(&store).map(|(a, _)| a)
}

enum Net<B: Backend> {
    Rrdb(RrdbNet<B>),
    Compact(CompactNet<B>),
    SwinIr(SwinIr<B>),
}

/// A loaded upscaler network.
pub struct UpscalerModel<B: Backend> {
    architecture: Architecture,
    net: Net<B>,
    file: String,
}

impl<B: Backend> UpscalerModel<B> {
    /// Loads a `.pth`/`.pt` (through the whitelist unpickler) or `.safetensors` file.
    pub fn load(b: &B, path: &Path) -> Result<Self> {
        let store = open_tensor_store(path)?;
        Self::from_store(b, &store)
    }

    /// Loads from an already open file (a browser's picked file); `file_name`'s extension
    /// is the format hint, as the path's is for [`Self::load`].
    pub fn load_source(b: &B, file_name: &str, source: Arc<dyn ByteSource>) -> Result<Self> {
        let store = open_tensor_store_named(file_name, source)?;
        Self::from_store(b, &store)
    }

    pub fn from_store(b: &B, store: &TensorStore) -> Result<Self> {
        let (architecture, sd) = recognise(store)?;
        let (cin, cout) = architecture.channels();
        if cin != 3 || cout != 3 {
            return Err(Error::format(
                store.name(),
                format!(
                    "{} takes {cin} and gives {cout} channels; upscaling works on RGB (3)",
                    architecture.name()
                ),
            ));
        }
        let net = match &architecture {
            Architecture::Esrgan(_) => Net::Rrdb(RrdbNet::load(b, &sd)?),
            Architecture::Compact(_) => Net::Compact(CompactNet::load(b, &sd)?),
            Architecture::SwinIr(_) => Net::SwinIr(SwinIr::load(b, &sd)?),
        };
        Ok(Self {
            architecture,
            net,
            file: store.name().to_string(),
        })
    }

    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }
    pub fn scale(&self) -> usize {
        self.architecture.scale()
    }
    pub fn file(&self) -> &str {
        &self.file
    }

    /// One image (or tile) through the network as spandrel's descriptor runs it:
    /// `input` is `[3, h, w]` (BGR, [0, 1]); the result is `[3, h·s, w·s]`, clamped. Reads
    /// the result back with the blocking `Backend::download` (native backends).
    pub fn run(&self, b: &B, input: &[f32], h: usize, w: usize) -> Result<Vec<f32>> {
        let pending = self.start(b, input, h, w)?;
        let y = b.download(&pending.output)?;
        Ok(pending.finish(y))
    }

    /// [`Self::run`] reading the result back with `Backend::download_async`, the only
    /// read-back a browser's WebGPU backend allows; everything else is shared with it.
    pub async fn run_async(&self, b: &B, input: &[f32], h: usize, w: usize) -> Result<Vec<f32>> {
        let pending = self.start(b, input, h, w)?;
        let y = b.download_async(&pending.output).await?;
        Ok(pending.finish(y))
    }

    /// Everything of [`Self::run`] up to the read-back: checks the input, pads it to the
    /// architecture's requirements, uploads it and runs the network.
    fn start(&self, b: &B, input: &[f32], h: usize, w: usize) -> Result<Pending<B::Tensor>> {
        let c = 3;
        if input.len() != c * h * w || h == 0 || w == 0 {
            return Err(Error::Invalid(format!(
                "upscaler input of {} values is not a 3×{h}×{w} image",
                input.len()
            )));
        }
        let s = self.scale();
        let (minimum, multiple) = self.architecture.size_requirements();
        let ceil = |v: usize| v.max(minimum).div_ceil(multiple) * multiple;
        let (ph, pw) = (ceil(h), ceil(w));
        let (x, xh, xw) = if (ph, pw) != (h, w) {
            // Reflection reaches at most size − 1; replicate covers the rest.
            let (rh, rw) = ((ph - h).min(h - 1), (pw - w).min(w - 1));
            let (t, th, tw) = pad_bottom_right(input, c, h, w, rh, rw, PadMode::Reflect)?;
            pad_bottom_right(&t, c, th, tw, ph - th, pw - tw, PadMode::Replicate)?
        } else {
            (input.to_vec(), h, w)
        };
        // Each arm gives the network's output and the input size it ran at (after the
        // architecture's own padding); the output's top-left `h·s × w·s` is the result.
        let (output, (nh, nw), swin_range) = match &self.net {
            Net::Rrdb(net) => {
                let (x, nh, nw) = match net.config.shuffle {
                    Some(r) => pad_bottom_right(
                        &x,
                        c,
                        xh,
                        xw,
                        (r - xh % r) % r,
                        (r - xw % r) % r,
                        PadMode::Reflect,
                    )?,
                    None => (x, xh, xw),
                };
                let t = b.upload(&x, &[1, c, nh, nw])?;
                (net.forward(b, &t)?, (nh, nw), None)
            }
            Net::Compact(net) => {
                let t = b.upload(&x, &[1, c, xh, xw])?;
                let base = nearest(&x, c, xh, xw, s);
                let base = b.upload(&base, &[1, c, xh * s, xw * s])?;
                (net.forward(b, &t, &base)?, (xh, xw), None)
            }
            Net::SwinIr(net) => {
                let win = net.config.window;
                let (mut t, th, tw) = pad_bottom_right(
                    &x,
                    c,
                    xh,
                    xw,
                    (win - xh % win) % win,
                    (win - xw % win) % win,
                    PadMode::Reflect,
                )?;
                let range = net.config.img_range;
                let plane = th * tw;
                for (ci, p) in t.chunks_mut(plane).enumerate() {
                    let mean = RGB_MEAN[ci];
                    for v in p {
                        *v = (*v - mean) * range;
                    }
                }
                let t = b.upload(&t, &[1, c, th, tw])?;
                (net.forward(b, &t)?, (th, tw), Some(range))
            }
        };
        Ok(Pending {
            output,
            full: (nh * s, nw * s),
            size: (h * s, w * s),
            swin_range,
        })
    }
}

/// A network output not yet read back, with what turns it into [`UpscalerModel::run`]'s
/// result; the blocking and the async run differ only in how `output` reaches the host.
struct Pending<T> {
    output: T,
    /// The output's `(height, width)`.
    full: (usize, usize),
    /// The result's `(height, width)`: the input's, times the scale.
    size: (usize, usize),
    /// SwinIR's `img_range`: its output is normalised and is mapped back to [0, 1].
    swin_range: Option<f32>,
}

impl<T> Pending<T> {
    /// Crops the padding away, undoes SwinIR's normalisation and clamps to [0, 1].
    fn finish(&self, y: Vec<f32>) -> Vec<f32> {
        let c = 3;
        let (fh, fw) = self.full;
        let (h, w) = self.size;
        let mut out = crop(y, c, fh, fw, h, w);
        if let Some(range) = self.swin_range {
            for (ci, p) in out.chunks_mut(h * w).enumerate() {
                let mean = RGB_MEAN[ci];
                for v in p {
                    *v = *v / range + mean;
                }
            }
        }
        for v in &mut out {
            *v = v.clamp(0.0, 1.0);
        }
        out
    }
}

/// The top-left `th×tw` of each `[h, w]` plane.
fn crop(x: Vec<f32>, c: usize, h: usize, w: usize, th: usize, tw: usize) -> Vec<f32> {
    if (th, tw) == (h, w) {
        return x;
    }
    let mut out = Vec::with_capacity(c * th * tw);
    for ci in 0..c {
        for y in 0..th {
            out.extend_from_slice(&x[(ci * h + y) * w..][..tw]);
        }
    }
    out
}

/// Nearest-neighbour upscaling by an integer factor (`F.interpolate(mode="nearest")`).
fn nearest(x: &[f32], c: usize, h: usize, w: usize, s: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len() * s * s);
    for ci in 0..c {
        for y in 0..h * s {
            let row = &x[(ci * h + y / s) * w..][..w];
            for xx in 0..w * s {
                out.push(row[xx / s]);
            }
        }
    }
    out
}

//! RRDBNet: ESRGAN's generator, which Real-ESRGAN (and BSRGAN/RealSR) reuse, built as
//! spandrel builds it. Files come in three key layouts — the original ESRGAN one
//! (`model.0`, `model.1.sub.N.RDBm.convk.0`, ...), Real-ESRGAN's BasicSR one
//! (`conv_first`, `body.N.rdbm.convk`, `conv_body`, `conv_up1`, `conv_hr`, `conv_last`)
//! and BSRGAN's (`RRDB_trunk`, `trunk_conv`, `upconv1`, `HRconv`); the latter two are
//! renamed to the first, and everything else is read off the tensors:
//!
//! - the number of `model.N` entries gives the scale: `2^((len − 5) / 3)`;
//! - `model.1.sub` holds the blocks plus one trunk convolution;
//! - the first convolution's width is the feature count, its input the channel count;
//! - an input `4×` or `16×` wider than the output means the net starts with a pixel
//!   unshuffle by 2 or 4 (Real-ESRGAN's x2 and x1 models), which divides the scale;
//! - `conv1x1` tensors mark ESRGAN+ (two extra residual paths per dense block).
//!
//! The growth channel count is 32, as spandrel assumes.

use crate::state_dict::StateDict;
use easel_core::backend::Backend;
use easel_core::nn::layers::Conv2d;
use easel_core::nn::Weights;
use easel_core::{Error, Result};
use std::collections::BTreeMap;

/// Channels each dense-block convolution adds.
pub const GROWTH: usize = 32;
/// The slope of every leaky ReLU in the net.
const SLOPE: f32 = 0.2;

/// What the tensors say about an RRDBNet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrdbConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub features: usize,
    pub blocks: usize,
    /// The scale of the network body (before any pixel unshuffle is taken into account).
    pub body_scale: usize,
    /// ESRGAN+ (`conv1x1` residual paths).
    pub plus: bool,
    /// Pixel-unshuffle factor of the input (2 for x2 models, 4 for x1), if any.
    pub shuffle: Option<usize>,
}

impl RrdbConfig {
    /// The scale of the whole model: the body's divided by the unshuffle factor.
    pub fn scale(&self) -> usize {
        self.body_scale / self.shuffle.unwrap_or(1)
    }
}

/// spandrel's detection rule: any of the four layouts' telltale keys.
pub fn detect(sd: &StateDict) -> bool {
    let all = |keys: &[&str]| keys.iter().all(|k| sd.contains(k));
    all(&["model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"])
        || all(&[
            "conv_first.weight",
            "body.0.rdb1.conv1.weight",
            "conv_body.weight",
            "conv_last.weight",
        ])
        || all(&[
            "conv_first.weight",
            "RRDB_trunk.0.RDB1.conv1.weight",
            "trunk_conv.weight",
            "conv_last.weight",
        ])
        || all(&["model.0.weight", "model.1.sub.0.RDB1.conv1x1.weight"])
}

/// Splits `prefix N sep1 M sep2 K . kind` style names: returns the three numbers and the
/// trailing `weight`/`bias` of a dense-block convolution key in a new layout.
fn parse_block_key(key: &str, trunk: &str, rdb: &str) -> Option<(usize, usize, usize, String)> {
    let rest = key.strip_prefix(trunk)?;
    let (n, rest) = rest.split_once('.')?;
    let rest = rest.strip_prefix(rdb)?;
    let (m, rest) = rest.split_once('.')?;
    let rest = rest.strip_prefix("conv")?;
    let (k, kind) = rest.split_once('.')?;
    if kind != "weight" && kind != "bias" || m.len() != 1 {
        return None;
    }
    Some((
        n.parse().ok()?,
        m.parse().ok()?,
        k.parse().ok()?,
        kind.to_string(),
    ))
}

/// The new-layout (BasicSR / BSRGAN) names mapped to the original ESRGAN ones, as
/// spandrel's `_new_to_old_arch` does; a file already in the old layout is kept as is.
fn to_old_layout<'a>(sd: &StateDict<'a>) -> Result<StateDict<'a>> {
    if !sd.contains("conv_first.weight") {
        return Ok(sd.clone());
    }
    let mut map: BTreeMap<String, String> = BTreeMap::new(); // old name → new name
    let mut blocks = 0usize;
    let mut any_block = false;
    for (trunk, rdb) in [("RRDB_trunk.", "RDB"), ("body.", "rdb")] {
        for key in sd.keys() {
            if let Some((n, m, k, kind)) = parse_block_key(key, trunk, rdb) {
                map.insert(
                    format!("model.1.sub.{n}.RDB{m}.conv{k}.0.{kind}"),
                    key.to_string(),
                );
                blocks = blocks.max(n + 1);
                any_block = true;
            }
        }
        if any_block {
            break;
        }
    }
    if !any_block {
        return Err(Error::format(
            sd.file(),
            "RRDBNet file without dense blocks (`body.N.rdbM.convK` or `RRDB_trunk.N.RDBM.convK`)",
        ));
    }
    for kind in ["weight", "bias"] {
        map.insert(format!("model.0.{kind}"), format!("conv_first.{kind}"));
        for trunk in ["trunk_conv", "conv_body"] {
            if sd.contains(&format!("{trunk}.{kind}")) {
                map.insert(
                    format!("model.1.sub.{blocks}.{kind}"),
                    format!("{trunk}.{kind}"),
                );
            }
        }
    }
    let mut max_up = 0usize;
    for key in sd.keys() {
        for prefix in ["upconv", "conv_up"] {
            let Some(rest) = key.strip_prefix(prefix) else {
                continue;
            };
            let Some((d, kind)) = rest.split_once('.') else {
                continue;
            };
            if d.len() == 1 && (kind == "weight" || kind == "bias") {
                if let Ok(d) = d.parse::<usize>() {
                    map.insert(format!("model.{}.{kind}", d * 3), key.to_string());
                    max_up = max_up.max(d * 3);
                }
            }
        }
    }
    for kind in ["weight", "bias"] {
        for hr in ["HRconv", "conv_hr"] {
            if sd.contains(&format!("{hr}.{kind}")) {
                map.insert(
                    format!("model.{}.{kind}", max_up + 2),
                    format!("{hr}.{kind}"),
                );
            }
        }
        if sd.contains(&format!("conv_last.{kind}")) {
            map.insert(
                format!("model.{}.{kind}", max_up + 4),
                format!("conv_last.{kind}"),
            );
        }
    }
    Ok(sd.renamed(map))
}

/// Reads the configuration off the tensors (after renaming to the original layout).
pub fn config<'a>(sd: &StateDict<'a>) -> Result<(RrdbConfig, StateDict<'a>)> {
    let old = to_old_layout(sd)?;
    let seq = old.seq_len("model");
    if seq < 5 {
        return Err(Error::format(
            sd.file(),
            format!("RRDBNet with {seq} top-level layers (`model.N`); at least 5 expected"),
        ));
    }
    let in_channels = old.dim("model.0.weight", 1)?;
    let features = old.dim("model.0.weight", 0)?;
    let out_channels = old.dim(&format!("model.{}.weight", seq - 1), 0)?;
    let body_scale = 1usize << ((seq - 5) / 3);
    let blocks = old.seq_len("model.1.sub").saturating_sub(1);
    if blocks == 0 {
        return Err(Error::format(sd.file(), "RRDBNet without RRDB blocks"));
    }
    let plus = old.keys().any(|k| k.contains(".conv1x1."));
    let shuffle = if (in_channels == out_channels * 4 || in_channels == out_channels * 16)
        && out_channels > 0
    {
        Some(if in_channels == out_channels * 4 {
            2
        } else {
            4
        })
    } else {
        None
    };
    if let Some(s) = shuffle {
        if body_scale < s {
            return Err(Error::format(
                sd.file(),
                format!(
                    "RRDBNet with a pixel unshuffle by {s} but a body scale of only {body_scale}"
                ),
            ));
        }
    }
    Ok((
        RrdbConfig {
            in_channels,
            out_channels,
            features,
            blocks,
            body_scale,
            plus,
            shuffle,
        },
        old,
    ))
}

/// A convolution without bias (ESRGAN+'s 1×1 paths).
struct ConvNoBias<B: Backend> {
    weight: B::Tensor,
}

/// One residual dense block: five 3×3 convolutions over the growing concatenation.
struct DenseBlock<B: Backend> {
    convs: [Conv2d<B>; 5],
    conv1x1: Option<ConvNoBias<B>>,
}

impl<B: Backend> DenseBlock<B> {
    fn load(b: &B, w: &Weights, nf: usize, plus: bool) -> Result<Self> {
        let gc = GROWTH;
        let conv = |k: usize, cin: usize, cout: usize| {
            Conv2d::load(b, &w.pp(format!("conv{k}.0")), cin, cout, 3)
        };
        Ok(Self {
            convs: [
                conv(1, nf, gc)?,
                conv(2, nf + gc, gc)?,
                conv(3, nf + 2 * gc, gc)?,
                conv(4, nf + 3 * gc, gc)?,
                conv(5, nf + 4 * gc, nf)?,
            ],
            conv1x1: if plus {
                Some(ConvNoBias {
                    weight: w.pp("conv1x1").load(b, "weight", &[gc, nf, 1, 1])?,
                })
            } else {
                None
            },
        })
    }

    fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let act = |t: B::Tensor| b.leaky_relu(&t, SLOPE);
        let x1 = act(self.convs[0].forward(b, x)?)?;
        let mut x2 = act(self.convs[1].forward(b, &b.concat(&[x, &x1], 1)?)?)?;
        if let Some(c) = &self.conv1x1 {
            x2 = b.add(&x2, &b.conv2d(x, &c.weight, None, 1, 0)?)?;
        }
        let x3 = act(self.convs[2].forward(b, &b.concat(&[x, &x1, &x2], 1)?)?)?;
        let mut x4 = act(self.convs[3].forward(b, &b.concat(&[x, &x1, &x2, &x3], 1)?)?)?;
        if self.conv1x1.is_some() {
            x4 = b.add(&x4, &x2)?;
        }
        let x5 = self.convs[4].forward(b, &b.concat(&[x, &x1, &x2, &x3, &x4], 1)?)?;
        b.add(&b.scale(&x5, 0.2)?, x)
    }
}

/// Three dense blocks with a scaled residual around them.
struct Rrdb<B: Backend> {
    rdbs: [DenseBlock<B>; 3],
}

impl<B: Backend> Rrdb<B> {
    fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let mut out = self.rdbs[0].forward(b, x)?;
        out = self.rdbs[1].forward(b, &out)?;
        out = self.rdbs[2].forward(b, &out)?;
        b.add(&b.scale(&out, 0.2)?, x)
    }
}

/// The loaded network.
pub struct RrdbNet<B: Backend> {
    pub config: RrdbConfig,
    conv_first: Conv2d<B>,
    blocks: Vec<Rrdb<B>>,
    trunk_conv: Conv2d<B>,
    upconvs: Vec<Conv2d<B>>,
    hr_conv: Conv2d<B>,
    conv_last: Conv2d<B>,
}

impl<B: Backend> RrdbNet<B> {
    pub fn load(b: &B, sd: &StateDict) -> Result<Self> {
        let (config, old) = config(sd)?;
        let w = old.weights();
        let nf = config.features;
        let nb = config.blocks;
        let blocks = (0..nb)
            .map(|i| {
                let bw = w.pp(format!("model.1.sub.{i}"));
                Ok(Rrdb {
                    rdbs: [
                        DenseBlock::load(b, &bw.pp("RDB1"), nf, config.plus)?,
                        DenseBlock::load(b, &bw.pp("RDB2"), nf, config.plus)?,
                        DenseBlock::load(b, &bw.pp("RDB3"), nf, config.plus)?,
                    ],
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ups = config.body_scale.trailing_zeros() as usize;
        let upconvs = (0..ups)
            .map(|i| Conv2d::load(b, &w.pp(format!("model.{}", 3 + 3 * i)), nf, nf, 3))
            .collect::<Result<Vec<_>>>()?;
        let hr = 2 + 3 * ups;
        Ok(Self {
            conv_first: Conv2d::load(b, &w.pp("model.0"), config.in_channels, nf, 3)?,
            blocks,
            trunk_conv: Conv2d::load(b, &w.pp(format!("model.1.sub.{nb}")), nf, nf, 3)?,
            upconvs,
            hr_conv: Conv2d::load(b, &w.pp(format!("model.{hr}")), nf, nf, 3)?,
            conv_last: Conv2d::load(
                b,
                &w.pp(format!("model.{}", hr + 2)),
                nf,
                config.out_channels,
                3,
            )?,
            config,
        })
    }

    /// `x: [1, C, H, W]` (H, W multiples of the unshuffle factor) → `[1, C, H·s, W·s]`.
    pub fn forward(&self, b: &B, x: &B::Tensor) -> Result<B::Tensor> {
        let x = match self.config.shuffle {
            Some(r) => b.pixel_unshuffle(x, r)?,
            None => x.clone(),
        };
        let fea = self.conv_first.forward(b, &x)?;
        let mut trunk = fea.clone();
        for block in &self.blocks {
            trunk = block.forward(b, &trunk)?;
        }
        let trunk = self.trunk_conv.forward(b, &trunk)?;
        let mut h = b.add(&fea, &trunk)?;
        for up in &self.upconvs {
            h = b.leaky_relu(&up.forward(b, &b.upsample_nearest2x(&h)?)?, SLOPE)?;
        }
        let h = b.leaky_relu(&self.hr_conv.forward(b, &h)?, SLOPE)?;
        self.conv_last.forward(b, &h)
    }
}

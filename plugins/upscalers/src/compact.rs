//! Real-ESRGAN's SRVGGNetCompact (`realesr-general-x4v3`, `realesr-animevideov3`): a plain
//! stack of 3×3 convolutions with PReLU, a pixel shuffle at the end, and the nearest-
//! neighbour upscaled input added back. As spandrel reads it: `body.0` is the first
//! convolution (its input width is the channel count, its output the feature count),
//! `body.1` a PReLU, then convolution/PReLU pairs, and the last `body.N` convolution's
//! bias length is `scale² × out_channels` (out_channels tried as the input's, then 3, 4, 1).

use crate::state_dict::StateDict;
use easel_core::backend::Backend;
use easel_core::nn::layers::Conv2d;
use easel_core::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub features: usize,
    /// Convolutions between the first and the last.
    pub convs: usize,
    pub scale: usize,
}

/// spandrel's detection rule.
pub fn detect(sd: &StateDict) -> bool {
    sd.contains("body.0.weight") && sd.contains("body.1.weight")
}

/// spandrel's `get_scale_and_output_channels`: `x = scale² · out` with `out` tried as the
/// input channel count, then 3, 4 and 1.
fn scale_and_out_channels(x: usize, in_channels: usize) -> Option<(usize, usize)> {
    [in_channels, 3, 4, 1].into_iter().find_map(|c| {
        if c == 0 || !x.is_multiple_of(c) {
            return None;
        }
        let q = x / c;
        let s = (q as f64).sqrt() as usize;
        (s * s == q && s > 0).then_some((s, c))
    })
}

pub fn config(sd: &StateDict) -> Result<CompactConfig> {
    let highest = sd.seq_len("body").saturating_sub(1);
    if highest < 2 {
        return Err(Error::format(
            sd.file(),
            "compact net with fewer than three `body.N` layers",
        ));
    }
    let in_channels = sd.dim("body.0.weight", 1)?;
    let features = sd.dim("body.0.weight", 0)?;
    let convs = (highest - 2) / 2;
    let shuffle = sd.dim(&format!("body.{highest}.bias"), 0)?;
    let (scale, out_channels) = scale_and_out_channels(shuffle, in_channels).ok_or_else(|| {
        Error::format(
            sd.file(),
            format!(
                "compact net: last layer `body.{highest}` has {shuffle} outputs, which is not \
                 scale² × 1, 3 or 4 channels"
            ),
        )
    })?;
    Ok(CompactConfig {
        in_channels,
        out_channels,
        features,
        convs,
        scale,
    })
}

pub struct CompactNet<B: Backend> {
    pub config: CompactConfig,
    /// (convolution, PReLU slopes) pairs, first one included.
    layers: Vec<(Conv2d<B>, B::Tensor)>,
    last: Conv2d<B>,
}

impl<B: Backend> CompactNet<B> {
    pub fn load(b: &B, sd: &StateDict) -> Result<Self> {
        let config = config(sd)?;
        let w = sd.weights();
        let nf = config.features;
        let mut layers = Vec::with_capacity(config.convs + 1);
        for i in 0..=config.convs {
            let cin = if i == 0 { config.in_channels } else { nf };
            let conv = Conv2d::load(b, &w.pp(format!("body.{}", 2 * i)), cin, nf, 3)?;
            let slopes = w
                .pp(format!("body.{}", 2 * i + 1))
                .load(b, "weight", &[nf])?;
            layers.push((conv, slopes));
        }
        let last_out = config.out_channels * config.scale * config.scale;
        let last = Conv2d::load(
            b,
            &w.pp(format!("body.{}", 2 * config.convs + 2)),
            nf,
            last_out,
            3,
        )?;
        Ok(Self {
            config,
            layers,
            last,
        })
    }

    /// `x: [1, C, H, W]` → `[1, C, H·s, W·s]`. `base` is the input upscaled by nearest
    /// neighbour (computed by the caller, which holds the input on the host).
    pub fn forward(&self, b: &B, x: &B::Tensor, base: &B::Tensor) -> Result<B::Tensor> {
        let mut h = x.clone();
        for (conv, slopes) in &self.layers {
            h = b.prelu(&conv.forward(b, &h)?, slopes)?;
        }
        let out = b.pixel_shuffle(&self.last.forward(b, &h)?, self.config.scale)?;
        b.add(&out, base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_and_channels_follow_spandrel_candidates() {
        assert_eq!(scale_and_out_channels(48, 3), Some((4, 3)));
        assert_eq!(scale_and_out_channels(12, 3), Some((2, 3)));
        assert_eq!(scale_and_out_channels(3, 3), Some((1, 3)));
        assert_eq!(scale_and_out_channels(64, 4), Some((4, 4)));
        assert_eq!(scale_and_out_channels(7, 3), None);
    }
}

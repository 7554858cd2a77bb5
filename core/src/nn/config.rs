//! Sizes of the three SD1.x networks. `*::sd15()` are the real SD1.x values; the tiny test
//! model uses the same structure with smaller widths. A sidecar LDM `.yaml` fills these in
//! (see `formats::ldm_config`), otherwise they are inferred from tensor shapes.

/// LDM `UNetModel` parameters (names follow the yaml's `unet_config.params`).
#[derive(Clone, Debug, PartialEq)]
pub struct UNetConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    pub model_channels: usize,
    /// Attention is used at levels whose downsampling factor (1, 2, 4, ...) is listed.
    pub attention_resolutions: Vec<usize>,
    pub num_res_blocks: usize,
    pub channel_mult: Vec<usize>,
    /// Heads per attention layer (SD1.x: 8, head width varies with the level).
    pub num_heads: usize,
    /// Fixed head width instead of a fixed head count (SD2.x style); wins over `num_heads`.
    pub num_head_channels: Option<usize>,
    pub transformer_depth: usize,
    pub context_dim: usize,
    /// `proj_in`/`proj_out` are linear layers rather than 1×1 convs (SD2.x).
    pub use_linear_in_transformer: bool,
}

impl UNetConfig {
    pub fn sd15() -> Self {
        Self {
            in_channels: 4,
            out_channels: 4,
            model_channels: 320,
            attention_resolutions: vec![4, 2, 1],
            num_res_blocks: 2,
            channel_mult: vec![1, 2, 4, 4],
            num_heads: 8,
            num_head_channels: None,
            transformer_depth: 1,
            context_dim: 768,
            use_linear_in_transformer: false,
        }
    }
    /// Heads for an attention layer with `channels` channels.
    pub fn heads_for(&self, channels: usize) -> usize {
        match self.num_head_channels {
            Some(hc) if hc > 0 => channels / hc,
            _ => self.num_heads,
        }
    }
}

/// LDM `AutoencoderKL` parameters (`first_stage_config.params.ddconfig` + `embed_dim`).
#[derive(Clone, Debug, PartialEq)]
pub struct VaeConfig {
    pub ch: usize,
    pub ch_mult: Vec<usize>,
    pub num_res_blocks: usize,
    pub in_channels: usize,
    pub out_ch: usize,
    pub z_channels: usize,
    pub embed_dim: usize,
}

impl VaeConfig {
    pub fn sd15() -> Self {
        Self {
            ch: 128,
            ch_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            in_channels: 3,
            out_ch: 3,
            z_channels: 4,
            embed_dim: 4,
        }
    }
}

/// CLIP text transformer parameters. An LDM yaml cannot state them, so they always come
/// from tensor shapes; heads = hidden / 64 (true of every CLIP text encoder SD uses).
#[derive(Clone, Debug, PartialEq)]
pub struct ClipConfig {
    pub vocab_size: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub intermediate: usize,
    pub max_positions: usize,
}

impl ClipConfig {
    pub fn vit_l14() -> Self {
        Self {
            vocab_size: 49408,
            hidden: 768,
            layers: 12,
            heads: 12,
            intermediate: 3072,
            max_positions: 77,
        }
    }
}

/// Everything needed to build the three networks of one checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    pub unet: UNetConfig,
    pub vae: VaeConfig,
    pub clip: ClipConfig,
    /// Latent scale (0.18215 for SD1.x).
    pub scale_factor: f32,
    /// Sample with the `model_ema.*` UNet (yaml `use_ema: True`).
    pub use_ema: bool,
    /// Diffusion schedule (`linear_start`, `linear_end`, `timesteps`).
    pub linear_start: f64,
    pub linear_end: f64,
    pub timesteps: usize,
}

/// Widest channel count accepted for any layer (SD1.x's widest is 1280; SDXL's 2048).
/// Beyond it a config is an error, not an allocation.
pub const MAX_CHANNELS: usize = 16 * 1024;
/// Most resolution levels accepted (SD uses 4).
pub const MAX_LEVELS: usize = 8;
/// Most res blocks per level, and transformer blocks per attention layer.
pub const MAX_BLOCKS: usize = 32;
/// Most diffusion timesteps accepted (SD uses 1000).
pub const MAX_TIMESTEPS: usize = 100_000;

/// A config field (named as in the LDM yaml) and why it is refused.
pub type ConfigFault = (String, String);

fn fault(key: &str, why: impl Into<String>) -> ConfigFault {
    (key.to_string(), why.into())
}

/// `value` is at least 1 and at most [`MAX_CHANNELS`].
fn check_width(key: &str, value: usize) -> std::result::Result<(), ConfigFault> {
    if value == 0 || value > MAX_CHANNELS {
        return Err(fault(
            key,
            format!("{value} is not a width between 1 and {MAX_CHANNELS}"),
        ));
    }
    Ok(())
}

fn check_count(key: &str, value: usize, max: usize) -> std::result::Result<(), ConfigFault> {
    if value == 0 || value > max {
        return Err(fault(key, format!("{value} is not between 1 and {max}")));
    }
    Ok(())
}

/// The widths of each level (`base × mult`), each a positive multiple of the GroupNorm
/// group count and at most [`MAX_CHANNELS`].
fn level_widths(
    base_key: &str,
    base: usize,
    mult_key: &str,
    mult: &[usize],
) -> std::result::Result<Vec<usize>, ConfigFault> {
    check_width(base_key, base)?;
    check_count(mult_key, mult.len(), MAX_LEVELS)
        .map_err(|(k, why)| (k, format!("has {} levels: {why}", mult.len())))?;
    let groups = crate::nn::layers::GROUP_NORM_GROUPS;
    if !base.is_multiple_of(groups) {
        return Err(fault(
            base_key,
            format!("{base} is not a multiple of {groups} (GroupNorm groups)"),
        ));
    }
    mult.iter()
        .map(|&m| {
            let width = base.checked_mul(m).filter(|&w| w > 0 && w <= MAX_CHANNELS);
            width.ok_or_else(|| {
                fault(
                    mult_key,
                    format!("{base} × {m} is not a width between 1 and {MAX_CHANNELS}"),
                )
            })
        })
        .collect()
}

impl UNetConfig {
    /// Checks the whole config before any layer is built: positive bounded widths, widths
    /// divisible by the GroupNorm groups and by the head count (or head width).
    pub fn check(&self) -> std::result::Result<(), ConfigFault> {
        check_width("in_channels", self.in_channels)?;
        check_width("out_channels", self.out_channels)?;
        check_width("context_dim", self.context_dim)?;
        check_count("num_res_blocks", self.num_res_blocks, MAX_BLOCKS)?;
        check_count("transformer_depth", self.transformer_depth, MAX_BLOCKS)?;
        check_count("num_heads", self.num_heads, MAX_CHANNELS)?;
        let widths = level_widths(
            "model_channels",
            self.model_channels,
            "channel_mult",
            &self.channel_mult,
        )?;
        for width in widths {
            match self.num_head_channels {
                Some(hc) if hc > 0 => {
                    if !width.is_multiple_of(hc) {
                        return Err(fault(
                            "num_head_channels",
                            format!("width {width} does not split into heads of {hc} channels"),
                        ));
                    }
                }
                _ => {
                    if !width.is_multiple_of(self.num_heads) {
                        return Err(fault(
                            "num_heads",
                            format!("width {width} does not split into {} heads", self.num_heads),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

impl VaeConfig {
    /// Checks the whole config before any layer is built (see [`UNetConfig::check`]).
    pub fn check(&self) -> std::result::Result<(), ConfigFault> {
        level_widths("ch", self.ch, "ch_mult", &self.ch_mult)?;
        check_count("num_res_blocks", self.num_res_blocks, MAX_BLOCKS)?;
        check_width("in_channels", self.in_channels)?;
        check_width("out_ch", self.out_ch)?;
        check_width("z_channels", self.z_channels)?;
        check_width("embed_dim", self.embed_dim)?;
        Ok(())
    }
}

impl ClipConfig {
    /// Checks the sizes read from the text encoder's tensors: the tokenizer's ids must fit
    /// the vocabulary, a 77-token chunk the positions, and the width 64-wide heads.
    pub fn check(&self) -> std::result::Result<(), ConfigFault> {
        let vocab = crate::text::VOCAB_SIZE;
        if self.vocab_size < vocab {
            return Err(fault(
                "vocab_size",
                format!(
                    "{} token embeddings, fewer than the tokenizer's {vocab}",
                    self.vocab_size
                ),
            ));
        }
        let chunk = crate::text::CHUNK_TOKENS;
        if self.max_positions < chunk {
            return Err(fault(
                "max_positions",
                format!(
                    "{} position embeddings, fewer than a {chunk}-token chunk",
                    self.max_positions
                ),
            ));
        }
        check_width("hidden", self.hidden)?;
        check_width("intermediate", self.intermediate)?;
        check_count("layers", self.layers, 4 * MAX_BLOCKS)?;
        if !self.hidden.is_multiple_of(self.heads.max(1)) {
            return Err(fault(
                "hidden",
                format!(
                    "width {} does not split into {} heads",
                    self.hidden, self.heads
                ),
            ));
        }
        Ok(())
    }
}

/// Checks the diffusion schedule values (`timesteps`, `linear_start`, `linear_end`,
/// `scale_factor`): at least 2 and at most [`MAX_TIMESTEPS`] steps, finite betas with
/// `0 < linear_start <= linear_end < 1`, a finite positive latent scale.
pub fn check_schedule(
    timesteps: usize,
    linear_start: f64,
    linear_end: f64,
    scale_factor: f32,
) -> std::result::Result<(), ConfigFault> {
    if !(2..=MAX_TIMESTEPS).contains(&timesteps) {
        return Err(fault(
            "timesteps",
            format!("{timesteps} is not between 2 and {MAX_TIMESTEPS}"),
        ));
    }
    for (key, v) in [("linear_start", linear_start), ("linear_end", linear_end)] {
        if !(v.is_finite() && v > 0.0 && v < 1.0) {
            return Err(fault(key, format!("{v} is not a beta between 0 and 1")));
        }
    }
    if linear_start > linear_end {
        return Err(fault(
            "linear_start",
            format!("{linear_start} is above linear_end {linear_end}"),
        ));
    }
    if !(scale_factor.is_finite() && scale_factor > 0.0) {
        return Err(fault(
            "scale_factor",
            format!("{scale_factor} is not a positive number"),
        ));
    }
    Ok(())
}

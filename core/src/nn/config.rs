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

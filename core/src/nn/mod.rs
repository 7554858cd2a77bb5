//! The SD1.x networks, written once over `Backend`.
pub mod clip;
pub mod config;
pub mod hook;
pub mod infer;
pub mod layers;
pub mod loader;
pub mod resnet;
pub mod synthetic;
pub mod taesd;
pub mod timestep;
pub mod transformer;
pub mod unet;
pub mod vae;
pub mod vae_approx;
pub mod weight_patch;

pub use clip::ClipTextEncoder;
pub use config::{ClipConfig, ModelConfig, UNetConfig, VaeConfig};
pub use hook::AttentionHook;
pub use infer::{infer_clip_config, infer_unet_config, infer_vae_config};
pub use loader::Weights;
pub use synthetic::random_weights;
pub use taesd::{TaesdDecoder, TaesdEncoder};
pub use unet::UNet;
pub use vae::AutoencoderKl;
pub use vae_approx::VaeApprox;
pub use weight_patch::{SharedWeightPatch, WeightPatch};

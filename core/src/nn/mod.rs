//! The SD1.x networks, written once over `Backend`.
pub mod config;
pub mod hook;
pub mod loader;

pub use config::{ClipConfig, ModelConfig, UNetConfig, VaeConfig};
pub use hook::AttentionHook;
pub use loader::Weights;

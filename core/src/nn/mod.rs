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

/// `load(models/relative)` when the models folder has that file, `None` when it has not:
/// the optional helper networks A1111 keeps in `models/VAE-approx/`.
pub(crate) fn load_optional<T>(
    models: &std::path::Path,
    relative: &str,
    load: impl FnOnce(&std::path::Path) -> crate::Result<T>,
) -> crate::Result<Option<T>> {
    let file = models.join(relative);
    if file.is_file() {
        load(&file).map(Some)
    } else {
        Ok(None)
    }
}

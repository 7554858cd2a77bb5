//! The generation pipeline: prompt → conditioning → sampler over the CFG denoiser → VAE.
pub mod cancel;
pub mod cfg_denoiser;
pub mod conditioning;
pub mod hires;
pub mod img2img;
pub mod img2img_infotext;
pub mod inpaint;
pub mod latent_upscale;
pub mod txt2img;
pub mod vae_encode;
pub mod vae_tiling;

pub use cancel::CancelToken;
pub use cfg_denoiser::CfgDenoiser;
pub use conditioning::{
    encode_prompt, encode_prompt_parts, encode_scheduled, CondPadding, CondPaddingMode,
    Conditioning, PromptConditioning, PromptOptions, ScheduledConditioning,
};
pub use txt2img::{
    decode_latent_image, decode_to_rgb, txt2img, txt2img_cancellable, txt2img_with_options,
    GeneratedImage, Txt2ImgParams, VaeDecoder,
};
pub mod infotext_params;
pub mod preview;
pub use crate::vae_plugin::VaeMethod;
pub use hires::{txt2img_hires, HiresImageUpscaler, HiresParams, HiresTarget, HiresUpscaler};
pub use img2img::{img2img_cancellable, img2img_steps, Img2ImgParams};
pub use infotext_params::txt2img_infotext;
pub use inpaint::{img2img_inpaint, Img2ImgInputs, InitImage, InpaintMask, MaskedContent};
pub use latent_upscale::{interpolate as interpolate_latent, LatentUpscaleMode, LATENT_UPSCALERS};
pub use preview::latent_preview_rgb;
pub use vae_encode::{encode_chw, encode_rgb8, encode_rgb8_with, rgb8_to_chw, VaeEncoder};

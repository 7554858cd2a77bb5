//! The generation pipeline: prompt → conditioning → sampler over the CFG denoiser → VAE.
pub mod cancel;
pub mod cfg_denoiser;
pub mod conditioning;
pub mod txt2img;

pub use cancel::CancelToken;
pub use cfg_denoiser::CfgDenoiser;
pub use conditioning::{
    encode_prompt, encode_prompt_parts, encode_scheduled, Conditioning, PromptConditioning,
    PromptOptions, ScheduledConditioning,
};
pub use txt2img::{
    decode_to_rgb, txt2img, txt2img_cancellable, txt2img_with_options, GeneratedImage,
    Txt2ImgParams,
};
pub mod infotext_params;
pub mod preview;
pub use infotext_params::txt2img_infotext;
pub use preview::latent_preview_rgb;

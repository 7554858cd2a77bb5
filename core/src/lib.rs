//! easel-core: everything about Stable Diffusion 1.x that is not swappable — the file
//! formats (`.ckpt`, `.safetensors`, LDM yaml, PNG infotext), the prompt language and CLIP
//! tokenizer, torch-compatible noise, the three networks (generic over [`Backend`]), the
//! plugin traits (sampler, attention hook, VAE) and the txt2img pipeline.

/// What Easel writes in an infotext's `Version` field and the API's `version`. A1111 reads
/// the field to turn on compatibility with its own older releases; this value is not a
/// release number to it (nor to [`service::settings::a1111_version`]), so it turns on none.
pub const VERSION_LABEL: &str = concat!("easel-", env!("CARGO_PKG_VERSION"));

pub mod backend;
pub mod backend_host;
pub mod convert;
pub mod embeddings;
pub mod error;
pub mod formats;
pub mod grid;
pub mod image;
pub mod infotext;
pub mod io;
pub mod model;
pub mod nn;
pub mod noise;
pub mod pipeline;
pub mod registry;
pub mod sampler;
pub mod sampler_params;
pub mod schedule;
pub mod scheduler;
pub mod service;
pub mod text;
pub mod vae_plugin;

pub use backend::{Backend, ElementwiseFn};
pub use error::{Error, Result};

//! easel-core: everything about Stable Diffusion 1.x that is not swappable — the file
//! formats (`.ckpt`, `.safetensors`, LDM yaml, PNG infotext), the prompt language and CLIP
//! tokenizer, torch-compatible noise, the three networks (generic over [`Backend`]), the
//! plugin traits (sampler, attention hook, VAE) and the txt2img pipeline.

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

pub use backend::Backend;
pub use error::{Error, Result};

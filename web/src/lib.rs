//! Easel in the browser. The page (`static/`) hands the user's model `File`s to a Web
//! Worker; the worker calls into this crate, which reads tensors by byte range from the
//! files ([`blob_source`]), builds the networks on WebGPU through `easel-wgpu` and runs the
//! same txt2img pipeline as the CLI ([`engine`]). Nothing is uploaded anywhere.

pub mod blob_source;
pub mod engine;
pub mod hypernets;
pub mod live_preview;
pub mod settings;

pub use blob_source::BlobSource;
pub use easel_core::service::GenerationSettings;

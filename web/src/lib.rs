//! Easel in the browser. One wasm module runs twice: on the page's main thread it is the
//! UI, a Leptos app ([`ui`]); in a Web Worker it is the engine ([`worker_main`],
//! [`engine`]), which reads tensors by byte range from the user's files ([`blob_source`]),
//! builds the networks on WebGPU through `easel-wgpu` and runs the same generation service
//! as the CLI. Nothing is uploaded anywhere.

pub mod blob_source;
pub mod engine;
pub mod hypernets;
pub mod live_preview;
pub mod protocol;
pub mod settings;
pub mod ui;
pub mod user_errors;
pub mod worker_main;

pub use blob_source::BlobSource;
pub use easel_core::service::GenerationSettings;

//! Upscaler networks, as A1111 (≥ 1.8, through spandrel) runs the files in its
//! `models/ESRGAN`, `models/RealESRGAN` and `models/SwinIR` folders:
//!
//! - [`rrdb`]: ESRGAN's RRDBNet in the original and the BasicSR/Real-ESRGAN key layouts
//!   (scale, blocks, widths and pixel unshuffle read off the tensors);
//! - [`compact`]: Real-ESRGAN's SRVGGNetCompact (`general-x4v3`, `animevideov3`);
//! - [`swinir`]: SwinIR (the real-world SwinIR-L x4 A1111 ships, and the other heads);
//! - [`model`]: recognising the architecture of a `.pth`/`.safetensors` file and calling
//!   the network as spandrel's model descriptor does (padding, clamping, cropping);
//! - [`tiling`]: A1111's two tiled-upscale loops, so large images run in bounded memory;
//! - [`library`]: the folders, A1111's names for the files, and lookup by name;
//! - [`sources`]: model files handed in already open (the browser's picked files), named
//!   and ordered as in a folder;
//! - [`upscaler`]: a named model with its folder's tiling, upscaling 8-bit RGB images,
//!   blocking or (for a backend that reads back only asynchronously) async.
//!
//! Every network is written once over [`easel_core::Backend`].

pub mod compact;
pub mod folder;
pub mod library;
pub mod model;
pub mod padding;
pub mod pixels;
pub mod rrdb;
pub mod sources;
pub mod state_dict;
pub mod swinir;
pub mod synthetic;
pub mod tiling;
pub mod upscaler;

pub use folder::{folder_upscalers, LazyModelUpscaler};
pub use library::{find_upscaler, list_upscalers, upscaler_name, UpscalerEntry, UpscalerFolder};
pub use model::{architecture_of, Architecture, UpscalerModel};
pub use sources::{list_source_upscalers, source_upscalers, SourceEntry};
pub use tiling::Rgb8;
pub use upscaler::{ModelUpscaler, TileSettings, Tiling};

//! LoRA and LyCORIS networks, read and applied as A1111's built-in Lora extension does.
//!
//! A file adds a low-rank (or otherwise factored) change `ΔW` to some of the model's layers.
//! A1111 adds `ΔW · scale · multiplier` to each layer's weight in place when the set of
//! networks changes and restores the original weights when it changes again; Easel does the
//! same at load time through core's [`WeightPatch`](easel_core::nn::WeightPatch) seam, so a
//! sampling step costs the same with or without LoRAs.
//!
//! - [`key_map`]: kohya's layer names (`lora_unet_down_blocks_0_attentions_0_proj_in`,
//!   `lora_te_text_model_encoder_layers_0_mlp_fc1`) to A1111's module names and the LDM keys;
//! - [`module`]: the network types (LoRA/LoCon, LoHa, LoKr, (IA)³, full diff, norm) and the
//!   math of each;
//! - [`file`]: a `.safetensors` or `.pt` file read into modules;
//! - [`patch`]: several files with their multipliers as one [`WeightPatch`];
//! - [`request`]: `<lora:name:te:unet:dyn>` tags and `--lora name[:w]`;
//! - [`library`]: the files of `models/Lora` and `models/LyCORIS`, names, aliases, hashes;
//! - [`infotext`]: `Lora hashes`, written and read back;
//! - [`FolderLoras`]: the generation service's provider over a models folder;
//!   [`PickedLoras`] the same over files a browser user picked.

pub mod file;
pub mod infotext;
pub mod key_map;
pub mod library;
pub mod module;
pub mod patch;
pub mod picked;
pub mod provider;
pub mod request;

pub use file::LoraFile;
pub use infotext::{lora_hashes_field, rename_by_pasted_hashes};
pub use library::{list_loras, resolve, LoraEntry};
pub use module::{ModuleKind, NetworkModule};
pub use patch::{AppliedLora, LoraPatch};
pub use picked::PickedLoras;
pub use provider::{prepare_from, FolderLoras, LoraLibrary};
pub use request::LoraRequest;

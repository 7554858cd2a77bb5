//! Hypernetworks, as NovelAI released them and A1111 trains them: small residual MLPs that
//! rewrite the context entering the key and value projections of every UNet attention
//! layer (self-attention included), one pair per context width.
//!
//! - [`Hypernetwork::load`] reads a `.pt` file (either format) into host memory;
//! - [`LoadedHypernetwork::upload`] puts its weights on a backend once;
//! - [`HypernetworkStack`] chains loaded hypernetworks with strengths and is the
//!   [`AttentionHook`](easel_core::nn::AttentionHook) to give the UNet;
//! - [`extract_hypernet_tags`] / [`HypernetRequest::parse_cli`] read `<hypernet:name:s>`
//!   prompt tags and `--hypernet name[:s]`;
//! - [`list_hypernetworks`], [`resolve`], [`find_for_infotext`] and [`hypernet_hash`] find
//!   files in a models folder by A1111's naming rules;
//! - [`infotext_fields`] gives the `Hypernet…` infotext entries;
//! - [`FolderHypernetworks`] is the generation service's provider over a models folder.

pub mod activation;
pub mod folder_provider;
pub mod hook;
pub mod hypernetwork;
pub mod infotext;
pub mod library;
pub mod module;
pub mod prompt_tags;
pub mod structure;

pub use activation::{Activation, ActivationKind, SUPPORTED_NAMES};
pub use folder_provider::FolderHypernetworks;
pub use hook::{DeviceModule, HypernetworkStack, LoadedHypernetwork};
pub use hypernetwork::{Hypernetwork, HypernetworkFormat, ModulePair};
pub use infotext::infotext_fields;
pub use library::{
    find_closest, find_for_infotext, hypernet_hash, list_hypernetworks, resolve, resolve_name,
    HypernetworkEntry,
};
pub use module::{HypernetworkModule, Layer};
pub use prompt_tags::{
    extract_hypernet_tags, hypernet_requests, parse_extra_networks, ExtraNetworkTag,
    HypernetRequest,
};
pub use structure::{ModuleStructure, PlannedLayer};

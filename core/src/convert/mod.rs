//! Checkpoint tools: EMA pruning, format and precision conversion, checksum lists (and the
//! OpenPGP signatures over them) and importing a release folder into an A1111 `models/` tree.
//!
//! Every rewrite streams: tensors are read from the source [`TensorStore`] one bounded
//! chunk at a time (through positioned reads, not a memory map, so the resident set stays
//! small even for a 7 GB input) and written straight into a temporary file beside the
//! output, which is renamed into place only when everything succeeded.
//!
//! [`TensorStore`]: crate::formats::TensorStore

pub mod checksum;
pub mod import;
pub mod precision;
pub mod prune;
pub mod rewrite;
pub mod safetensors_stream;
pub mod signature;
pub mod torch_pickle;
pub mod torch_writer;

pub use checksum::{
    parse_checksum_list, verify_checksum_list, CheckResult, CheckStatus, ChecksumEntry,
};
pub use import::{import_release, ImportOptions, ImportReport, LinkMode};
pub use precision::Precision;
pub use prune::{ema_key, prune_plan, EmaMode};
pub use rewrite::{
    convert_checkpoint, open_for_streaming, prune_checkpoint, write_store, OutputFormat,
    RewriteOptions, RewriteReport,
};

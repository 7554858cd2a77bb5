//! Opening any weight file as a [`TensorStore`], choosing the reader by the file's first
//! bytes (users rename files freely) and using the extension only to word the error when
//! the bytes match nothing.

use super::tensor_store::TensorStore;
use super::{ckpt, safetensors};
use crate::error::{Error, Result};
use crate::io::{ByteSource, FileSource};
use std::path::Path;
use std::sync::Arc;

/// Opens `path` as a tensor store, read by positioned reads: unlike a memory map, the
/// file's pages never count toward the process's memory, so loading a 4 GB checkpoint
/// peaks at the size of the loaded weights, not weights plus file. An unreadable path is [`Error::Io`]
/// naming it; a file in no known format is a format error naming it.
pub fn open_tensor_store(path: &Path) -> Result<TensorStore> {
    let source = FileSource::open_arc(path)?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    open_tensor_store_from(source, &ext)
}

/// [`open_tensor_store_from`] for a source given with its file name (the name's extension
/// is the hint): a browser `File`, a picked file.
pub fn open_tensor_store_named(
    file_name: &str,
    source: Arc<dyn ByteSource>,
) -> Result<TensorStore> {
    let ext = file_name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    open_tensor_store_from(source, &ext.to_ascii_lowercase())
}

/// Opens an already-open source (e.g. a browser `Blob`); `ext_hint` is the file's
/// extension without the dot, or empty.
pub fn open_tensor_store_from(source: Arc<dyn ByteSource>, ext_hint: &str) -> Result<TensorStore> {
    let len = source.len();
    if len == 0 {
        return Err(Error::format(source.name(), "file is empty"));
    }
    let head = source.read_vec(0, len.min(16) as usize)?;
    if ckpt::is_zip(&head) || ckpt::is_legacy_torch(&head) {
        return ckpt::load(source);
    }
    if safetensors::looks_like_safetensors(&head, len) || ext_hint == "safetensors" {
        // A damaged .safetensors gets the reader's specific message.
        return safetensors::load(source);
    }
    let expected = match ext_hint {
        "ckpt" | "pt" | "pth" | "bin" => " (expected a torch zip checkpoint)",
        _ => "",
    };
    Err(Error::format(
        source.name(),
        format!("unknown model file format{expected}: not a torch checkpoint or safetensors file"),
    ))
}

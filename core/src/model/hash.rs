//! Checkpoint hashes as A1111 shows them. The legacy "Model hash" (8 hex) hashes only 64 KiB
//! at offset 1 MiB, so it is instant even for a 4 GB file; it is what infotexts carry.

use crate::error::Result;
use crate::io::{ByteSource, FileSource};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Offset and length of the slice A1111's legacy model hash covers.
const LEGACY_HASH_OFFSET: u64 = 0x100000;
const LEGACY_HASH_LEN: u64 = 0x10000;

/// A1111's legacy model hash: sha256 of the 0x10000 bytes at offset 0x100000 (fewer if the
/// file is shorter), first 8 hex digits.
pub fn legacy_model_hash(path: &Path) -> Result<String> {
    legacy_model_hash_of(&FileSource::open(path)?)
}

/// [`legacy_model_hash`] of any byte source (a browser `Blob`, bytes in memory).
pub fn legacy_model_hash_of(source: &dyn ByteSource) -> Result<String> {
    let len = source.len();
    let bytes = if len > LEGACY_HASH_OFFSET {
        let n = (len - LEGACY_HASH_OFFSET).min(LEGACY_HASH_LEN) as usize;
        source.read_vec(LEGACY_HASH_OFFSET, n)?
    } else {
        Vec::new()
    };
    Ok(hex(&Sha256::digest(&bytes)[..4]))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

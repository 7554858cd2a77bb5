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

/// Bytes read per step when hashing a whole source.
const SHORT_HASH_CHUNK: u64 = 4 << 20;

/// A1111 v1.x's short hash (`Model hash`, `VAE hash`, checkpoint titles `name [hash]`): the
/// first 10 hex digits of the whole file's sha256 (Civitai's "AutoV2"). It reads every byte,
/// so native callers go through [`super::short_hash_cached`] instead.
pub fn short_hash_of(source: &dyn ByteSource) -> Result<String> {
    Ok(sha256_of(source)?[..10].to_string())
}

/// The whole source's sha256, lower-case hex, read in slices (a browser `Blob` included).
pub fn sha256_of(source: &dyn ByteSource) -> Result<String> {
    sha256_from(source, 0)
}

/// The sha256 of a safetensors file's data (everything after its header): AutoV3, what
/// A1111 hashes LoRAs by.
pub fn safetensors_data_sha256_of(source: &dyn ByteSource) -> Result<String> {
    let head = source.read_vec(0, 8)?;
    let header = u64::from_le_bytes(head.try_into().expect("8 bytes"));
    let start = 8u64
        .checked_add(header)
        .filter(|&s| s <= source.len())
        .ok_or_else(|| {
            crate::error::Error::format(
                source.name().to_string(),
                "safetensors header length runs past the end of the file",
            )
        })?;
    sha256_from(source, start)
}

/// sha256 of `source` from byte `start` to its end, lower-case hex.
fn sha256_from(source: &dyn ByteSource, start: u64) -> Result<String> {
    let mut sha = Sha256::new();
    let len = source.len();
    let mut offset = start;
    while offset < len {
        let n = (len - offset).min(SHORT_HASH_CHUNK) as usize;
        sha.update(source.read_vec(offset, n)?);
        offset += n as u64;
    }
    Ok(hex(&sha.finalize()))
}

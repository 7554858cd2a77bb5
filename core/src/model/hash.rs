//! Checkpoint hashes as A1111 shows them. The legacy "Model hash" (8 hex) hashes only 64 KiB
//! at offset 1 MiB, so it is instant even for a 4 GB file; it is what infotexts carry.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// A1111's legacy model hash: sha256 of the 0x10000 bytes at offset 0x100000 (fewer if the
/// file is shorter), first 8 hex digits.
pub fn legacy_model_hash(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = Vec::with_capacity(0x10000);
    let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    if len > 0x100000 {
        f.seek(SeekFrom::Start(0x100000))
            .map_err(|e| Error::io(path, e))?;
        f.take(0x10000)
            .read_to_end(&mut buf)
            .map_err(|e| Error::io(path, e))?;
    }
    let digest = Sha256::digest(&buf);
    Ok(hex(&digest[..4]))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

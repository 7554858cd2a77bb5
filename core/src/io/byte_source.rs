//! `ByteSource`: positioned reads of a model file. Natively a memory map, in the browser a
//! `Blob` read through `FileReaderSync` in the worker. A 4 GB checkpoint is never held whole:
//! readers ask for the byte ranges they need.

use crate::error::{Error, Result};
use std::path::Path;
use std::sync::Arc;

pub trait ByteSource: Send + Sync {
    /// Name used in error messages (usually the file path).
    fn name(&self) -> &str;
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Fill `buf` from `offset`; reading past the end is a format error naming the file.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Convenience: read `len` bytes at `offset` into a new vector. The range is checked
    /// against the source's length first, so a length read from the file itself never
    /// becomes an allocation larger than the file.
    fn read_vec(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        check_range(self.name(), self.len(), offset, len)?;
        let mut v = vec![0u8; len];
        self.read_at(offset, &mut v)?;
        Ok(v)
    }
}

fn check_range(name: &str, total: u64, offset: u64, len: usize) -> Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= total => Ok(()),
        _ => Err(Error::format(
            name,
            format!(
                "file is truncated: wanted bytes {offset}..{} but it has {total}",
                offset.saturating_add(len as u64)
            ),
        )),
    }
}

/// A memory-mapped file (native).
pub struct MmapSource {
    name: String,
    map: memmap2::Mmap,
}

impl MmapSource {
    pub fn open(path: &Path) -> Result<Self> {
        let (file, _) = super::open_regular_file(path)?;
        // SAFETY: the map is read-only; a file truncated underneath us would fault, which is
        // the accepted trade-off of every mmap-based model loader.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
        Ok(Self {
            name: path.display().to_string(),
            map,
        })
    }
    pub fn open_arc(path: &Path) -> Result<Arc<dyn ByteSource>> {
        Ok(Arc::new(Self::open(path)?))
    }
}

impl ByteSource for MmapSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> u64 {
        self.map.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(&self.name, self.len(), offset, buf.len())?;
        let o = offset as usize;
        buf.copy_from_slice(&self.map[o..o + buf.len()]);
        Ok(())
    }
}

/// Bytes already in memory (tests, small files, wasm without a worker).
pub struct MemorySource {
    name: String,
    bytes: Vec<u8>,
}

impl MemorySource {
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            name: name.into(),
            bytes,
        }
    }
}

impl ByteSource for MemorySource {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(&self.name, self.len(), offset, buf.len())?;
        let o = offset as usize;
        buf.copy_from_slice(&self.bytes[o..o + buf.len()]);
        Ok(())
    }
}

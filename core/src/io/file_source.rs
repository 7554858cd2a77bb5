//! A [`ByteSource`] over positioned reads (`pread`) of an open file. Unlike a memory map,
//! pages read this way are not counted in the process's resident set, so streaming a 7 GB
//! checkpoint through a rewrite keeps memory use at the size of one buffer.

use crate::error::{Error, Result};
use crate::io::ByteSource;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

pub struct FileSource {
    name: String,
    file: File,
    len: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> Result<Self> {
        let (file, meta) = super::open_regular_file(path)?;
        Ok(Self {
            name: path.display().to_string(),
            file,
            len: meta.len(),
        })
    }
    pub fn open_arc(path: &Path) -> Result<Arc<dyn ByteSource>> {
        Ok(Arc::new(Self::open(path)?))
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file.seek_read(buf, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Elsewhere (wasm32 in the browser) there are no files to read by path.
#[cfg(not(any(unix, windows)))]
fn read_exact_at(_file: &File, _buf: &mut [u8], _offset: u64) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

impl ByteSource for FileSource {
    fn name(&self) -> &str {
        &self.name
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|e| e > self.len) {
            return Err(Error::format(
                &self.name,
                format!(
                    "file is truncated: wanted bytes {offset}..{} but it has {}",
                    offset.saturating_add(buf.len() as u64),
                    self.len
                ),
            ));
        }
        read_exact_at(&self.file, buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::format(&self.name, "file shrank while being read: truncated?")
            } else {
                Error::io(&self.name, e)
            }
        })
    }
}

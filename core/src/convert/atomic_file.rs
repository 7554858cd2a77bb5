//! An output file that appears complete or not at all: bytes go to a hidden temporary file
//! in the target's folder (so the final rename stays on one filesystem and is atomic), and
//! the temporary file is deleted if the writer is dropped without [`AtomicFile::commit`] —
//! on an error, a panic or an interrupted run alike.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Write buffer size: large enough that tensor data goes out in big writes.
const BUFFER: usize = 1 << 20;

pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<File>>,
}

impl AtomicFile {
    /// Starts writing `target`. Unless `overwrite`, an existing target is an error and is
    /// never touched. The folder must exist.
    pub fn create(target: &Path, overwrite: bool) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        if !overwrite && target.symlink_metadata().is_ok() {
            return Err(Error::Invalid(format!(
                "{}: already exists (pass --force to replace it)",
                target.display()
            )));
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Invalid(format!("{}: not a file path", target.display())))?;
        let tmp = dir.join(format!(
            ".{base}.{}-{}.part",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| Error::io(target, e))?;
        Ok(Self {
            target: target.to_path_buf(),
            tmp,
            out: Some(BufWriter::with_capacity(BUFFER, file)),
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes, syncs and renames the temporary file over the target.
    pub fn commit(mut self) -> Result<()> {
        let out = self.out.take().expect("writer present until commit");
        let result = (|| -> std::io::Result<()> {
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&self.tmp, &self.target)
        })();
        result.map_err(|e| Error::io(&self.target, e))
    }

    /// Maps an I/O error of this file to one naming the target.
    pub fn err(&self, e: std::io::Error) -> Error {
        Error::io(&self.target, e)
    }

    fn writer(&mut self) -> &mut BufWriter<File> {
        self.out.as_mut().expect("writer present until commit")
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer().write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.writer().seek(pos)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(out) = self.out.take() {
            drop(out);
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_file_leaves_nothing_and_commit_renames() {
        let dir = std::env::temp_dir().join(format!("easel-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("x.bin");
        {
            let mut f = AtomicFile::create(&target, false).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let mut f = AtomicFile::create(&target, false).unwrap();
        f.write_all(b"whole").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        let err = AtomicFile::create(&target, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

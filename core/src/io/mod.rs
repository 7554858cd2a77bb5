//! Random-access reading of model files, and atomic writing of every output file.
pub mod atomic_file;
pub mod byte_source;
pub mod file_source;
pub use atomic_file::AtomicFile;
pub use byte_source::{ByteSource, MemorySource, MmapSource};
pub use file_source::FileSource;

use crate::error::{Error, Result};
use std::path::Path;

/// Opens `path` for reading as a model, PNG or other input file, refusing anything that is
/// not a regular file: a folder, or a device, pipe or socket (`/dev/zero` never ends, a FIFO
/// blocks), whose length says nothing about what reading it costs.
pub fn open_regular_file(path: &Path) -> Result<(std::fs::File, std::fs::Metadata)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "a device, pipe or socket"
        };
        return Err(Error::Invalid(format!(
            "{}: is {what}, not a regular file",
            path.display()
        )));
    }
    Ok((file, meta))
}

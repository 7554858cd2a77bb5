//! Random-access reading of model files.
pub mod byte_source;
pub mod file_source;
pub use byte_source::{ByteSource, MemorySource, MmapSource};
pub use file_source::FileSource;

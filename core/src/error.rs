//! One error type for the whole core, so front ends can print a message that names the
//! file, key or token at fault without knowing which layer produced it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OS refused a read or write; `path` is the file the user gave.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file is not what its name or magic promised (truncated zip, bad pickle, ...).
    #[error("{file}: {msg}")]
    Format { file: String, msg: String },
    /// A pickle asked for a global that is not on the whitelist; nothing was executed.
    #[error("{file}: refusing pickle global `{global}` (only tensor-rebuilding globals are allowed; nothing in a model file is ever executed)")]
    UnsafeGlobal { file: String, global: String },
    /// A tensor a network needs is not in the file.
    #[error("{file}: missing tensor `{key}`")]
    MissingKey { file: String, key: String },
    /// A tensor is present but has the wrong shape for the network being built.
    #[error("{file}: tensor `{key}` has shape {got:?}, expected {expected:?}")]
    Shape {
        file: String,
        key: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    /// A user-supplied setting is invalid (size not a multiple of 8, unknown sampler, ...).
    #[error("{0}")]
    Invalid(String),
    /// A backend failed to run an operation.
    #[error("backend: {0}")]
    Backend(String),
    /// Sampling was stopped by a [`crate::pipeline::CancelToken`] (Interrupt or Skip).
    #[error("generation interrupted")]
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn format(file: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Format {
            file: file.into(),
            msg: msg.into(),
        }
    }
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

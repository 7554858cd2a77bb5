//! A [`ByteSource`] over a browser `Blob`/`File`, read synchronously with `FileReaderSync`
//! (available in workers only). Each read fetches just the requested byte range, so a
//! multi-gigabyte checkpoint never sits whole in wasm memory.

use easel_core::io::ByteSource;
use easel_core::{Error, Result};
use js_sys::Uint8Array;
use web_sys::{Blob, FileReaderSync};

/// The bytes read so far and who is told.
type ReadObserver = Option<(u64, Box<dyn Fn(u64)>)>;

thread_local! {
    /// Told the running total of bytes read from every [`BlobSource`] while set: the worker
    /// reports a model load's progress through it (the load itself is synchronous).
    static READ_OBSERVER: std::cell::RefCell<ReadObserver> =
        const { std::cell::RefCell::new(None) };
}

/// Calls `observer` with the bytes read so far after each read, until [`stop_observing`].
pub fn observe_reads(observer: impl Fn(u64) + 'static) {
    READ_OBSERVER.with(|o| *o.borrow_mut() = Some((0, Box::new(observer))));
}

pub fn stop_observing() {
    READ_OBSERVER.with(|o| *o.borrow_mut() = None);
}

fn count_read(n: usize) {
    READ_OBSERVER.with(|o| {
        if let Some((total, observer)) = o.borrow_mut().as_mut() {
            *total += n as u64;
            observer(*total);
        }
    });
}

pub struct BlobSource {
    name: String,
    blob: Blob,
    reader: FileReaderSync,
    len: u64,
}

// SAFETY: this crate is built for wasm32 without threads (no `atomics` target feature), so
// there is exactly one thread and the JS handles can never be shared across threads.
// `ByteSource` requires `Send + Sync` for the native, multi-threaded loaders.
#[cfg(not(target_feature = "atomics"))]
unsafe impl Send for BlobSource {}
#[cfg(not(target_feature = "atomics"))]
unsafe impl Sync for BlobSource {}

impl BlobSource {
    /// A picked `File` as a shared source, named by its file name.
    pub fn of_file(file: &web_sys::File) -> Result<std::sync::Arc<dyn ByteSource>> {
        Ok(std::sync::Arc::new(Self::new(
            file.name(),
            file.clone().into(),
        )?))
    }

    /// Wraps `blob`; `name` is used in error messages (the user's file name).
    pub fn new(name: impl Into<String>, blob: Blob) -> Result<Self> {
        let name = name.into();
        let reader = FileReaderSync::new().map_err(|e| {
            Error::Invalid(format!(
                "{name}: cannot read files here (FileReaderSync needs a Web Worker): {e:?}"
            ))
        })?;
        let len = blob.size() as u64;
        Ok(Self {
            name,
            blob,
            reader,
            len,
        })
    }
}

impl ByteSource for BlobSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len);
        let Some(end) = end else {
            return Err(Error::format(
                &self.name,
                format!(
                    "file is truncated: wanted bytes {offset}..{} but it has {}",
                    offset.saturating_add(buf.len() as u64),
                    self.len
                ),
            ));
        };
        if buf.is_empty() {
            return Ok(());
        }
        let fail = |what: &str, e: wasm_bindgen::JsValue| {
            Error::format(
                &self.name,
                format!("reading bytes {offset}..{end} failed ({what}): {e:?}"),
            )
        };
        let part = self
            .blob
            .slice_with_f64_and_f64(offset as f64, end as f64)
            .map_err(|e| fail("slice", e))?;
        let bytes = self
            .reader
            .read_as_array_buffer(&part)
            .map_err(|e| fail("FileReaderSync", e))?;
        let view = Uint8Array::new(&bytes);
        if view.length() as usize != buf.len() {
            return Err(Error::format(
                &self.name,
                format!(
                    "reading bytes {offset}..{end} returned {} bytes (was the file changed?)",
                    view.length()
                ),
            ));
        }
        view.copy_to(buf);
        count_read(buf.len());
        Ok(())
    }
}

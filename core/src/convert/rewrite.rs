//! Rewriting a checkpoint: `easel prune` (EMA or training UNet, see [`prune`](super::prune))
//! and `easel convert` (`.ckpt` ⇄ `.safetensors`), both with an optional precision change.
//!
//! The input is opened over positioned reads and each tensor is copied in chunks of at
//! most [`CHUNK`] bytes into a temporary file beside the output; peak memory is the index
//! of the input plus a few chunk buffers, whatever the file size. The output appears only
//! when complete; on any error it is removed and an existing file is left untouched.

use super::precision::{convert_elements, Precision};
use super::prune::{prune_plan, EmaMode, PlannedTensor};
use super::safetensors_stream::{write_header, StreamedTensor};
use super::torch_pickle::{PickleScalar, PickledTensor};
use super::torch_writer::{archive_root, TorchZipWriter};
use crate::error::{Error, Result};
use crate::formats::{open_tensor_store_from, TensorStore};
use crate::io::AtomicFile;
use crate::io::FileSource;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

/// Bytes of one tensor read (and converted) at a time.
pub const CHUNK: usize = 8 << 20;

/// The container written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// A PyTorch zip checkpoint (`.ckpt`, `.pt`).
    Ckpt,
    Safetensors,
}

impl OutputFormat {
    /// `ckpt` (also `pt`, `pth`, `torch`) or `safetensors` (also `st`).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "ckpt" | "pt" | "pth" | "torch" => Ok(Self::Ckpt),
            "safetensors" | "st" => Ok(Self::Safetensors),
            other => Err(Error::Invalid(format!(
                "unknown output format `{other}` (expected ckpt or safetensors)"
            ))),
        }
    }
    /// The format a file name asks for, by extension.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "ckpt" | "pt" | "pth" | "bin" => Some(Self::Ckpt),
            "safetensors" => Some(Self::Safetensors),
            _ => None,
        }
    }
}

/// Settings shared by prune and convert.
#[derive(Clone, Debug, Default)]
pub struct RewriteOptions {
    /// Output container; `None` picks it from the output's extension.
    pub format: Option<OutputFormat>,
    pub precision: Precision,
    /// Replace an existing output file.
    pub overwrite: bool,
}

/// What a rewrite did, for the command's summary line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewriteReport {
    pub format: OutputFormat,
    pub tensors: usize,
    /// Input tensors left out.
    pub dropped: usize,
    /// Whether the input had EMA weights (prune only).
    pub ema_found: bool,
    /// UNet tensors written from their EMA copies (prune only).
    pub ema_used: usize,
    /// Tensors whose dtype changed.
    pub converted: usize,
    pub input_bytes: u64,
    pub output_bytes: u64,
}

/// Opens any weight file for a streaming rewrite: positioned reads instead of a memory
/// map, so the pages read are not held in the process's resident memory.
pub fn open_for_streaming(path: &Path) -> Result<TensorStore> {
    let source = FileSource::open_arc(path)?;
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    open_tensor_store_from(source, &ext)
}

fn output_format(output: &Path, options: &RewriteOptions) -> Result<OutputFormat> {
    options.format.or_else(|| OutputFormat::from_path(output)).ok_or_else(|| {
        Error::Invalid(format!(
            "{}: cannot tell the output format from the extension; use .ckpt or .safetensors, or pass --format",
            output.display()
        ))
    })
}

/// `easel prune`: keeps the EMA (or, with [`EmaMode::NoEma`], the training) UNet under
/// the normal keys, drops the rest of `model_ema.*`, keeps VAE, text encoder and buffers.
/// Top-level scalars such as `global_step` are kept; optimizer and callback state is not.
pub fn prune_checkpoint(
    input: &Path,
    output: &Path,
    mode: EmaMode,
    options: &RewriteOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RewriteReport> {
    let format = output_format(output, options)?;
    let store = open_for_streaming(input)?;
    let plan = prune_plan(&store, mode)?;
    let metadata: BTreeMap<String, String> = store
        .metadata()
        .iter()
        .filter(|(k, _)| !k.contains('.') && !k.starts_with("model_ema"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut report = write_store(
        &store,
        &plan.tensors,
        &metadata,
        output,
        format,
        options,
        progress,
    )?;
    report.dropped = plan.dropped;
    report.ema_found = plan.ema_found;
    report.ema_used = plan.ema_used;
    Ok(report)
}

/// `easel convert`: every tensor under its own name, metadata carried over (safetensors
/// `__metadata__` ⇄ top-level scalars of the checkpoint).
pub fn convert_checkpoint(
    input: &Path,
    output: &Path,
    options: &RewriteOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RewriteReport> {
    let format = output_format(output, options)?;
    let store = open_for_streaming(input)?;
    let plan: Vec<PlannedTensor> = store
        .keys()
        .map(|k| PlannedTensor {
            name: k.to_string(),
            source: k.to_string(),
        })
        .collect();
    let metadata = store.metadata().clone();
    write_store(&store, &plan, &metadata, output, format, options, progress)
}

/// Writes the tensors of `plan` (read from `store`) and `metadata` to `output`, streaming.
/// `progress(done, total)` counts output tensor bytes.
pub fn write_store(
    store: &TensorStore,
    plan: &[PlannedTensor],
    metadata: &BTreeMap<String, String>,
    output: &Path,
    format: OutputFormat,
    options: &RewriteOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RewriteReport> {
    if plan.is_empty() {
        return Err(Error::format(store.name(), "has no tensors to write"));
    }
    let mut specs = Vec::with_capacity(plan.len());
    let mut converted = 0;
    for t in plan {
        let info = store.info(&t.source)?;
        let dtype = options.precision.output_dtype(&t.name, info.dtype);
        converted += usize::from(dtype != info.dtype);
        specs.push(StreamedTensor {
            name: t.name.clone(),
            dtype,
            shape: info.shape.clone(),
        });
    }
    let total: u64 = specs.iter().map(StreamedTensor::byte_len).sum();
    let mut file = AtomicFile::create(output, options.overwrite)?;
    let mut done = 0u64;
    progress(0, total);
    let output_bytes = match format {
        OutputFormat::Safetensors => {
            let header = write_header(&mut file, &specs, metadata).map_err(|e| file.err(e))?;
            for (t, spec) in plan.iter().zip(&specs) {
                copy_tensor(store, &t.source, spec, &mut |bytes| {
                    file.write_all(bytes).map_err(|e| file.err(e))?;
                    done += bytes.len() as u64;
                    progress(done, total);
                    Ok(())
                })?;
            }
            header + total
        }
        OutputFormat::Ckpt => {
            let extras: Vec<(String, PickleScalar)> = metadata
                .iter()
                .filter(|(k, _)| k.as_str() != "state_dict")
                .map(|(k, v)| (k.clone(), PickleScalar::from_text(v)))
                .collect();
            let pickled = specs
                .iter()
                .map(|s| PickledTensor {
                    name: s.name.clone(),
                    dtype: s.dtype,
                    shape: s.shape.clone(),
                })
                .collect();
            let stem = output
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let out_err = |e: std::io::Error| Error::io(output, e);
            let mut zip = TorchZipWriter::begin(&mut file, &archive_root(&stem), pickled, &extras)
                .map_err(out_err)?;
            for (t, spec) in plan.iter().zip(&specs) {
                zip.start_tensor().map_err(out_err)?;
                copy_tensor(store, &t.source, spec, &mut |bytes| {
                    zip.write(bytes).map_err(out_err)?;
                    done += bytes.len() as u64;
                    progress(done, total);
                    Ok(())
                })?;
                zip.end_tensor().map_err(out_err)?;
            }
            zip.finish().map_err(out_err)?.1
        }
    };
    file.commit()?;
    Ok(RewriteReport {
        format,
        tensors: plan.len(),
        dropped: store.len().saturating_sub(plan.len()),
        ema_found: false,
        ema_used: 0,
        converted,
        input_bytes: store.source().len(),
        output_bytes,
    })
}

/// Streams tensor `key` of `store`, converted to `spec.dtype`, into `sink` in chunks.
fn copy_tensor(
    store: &TensorStore,
    key: &str,
    spec: &StreamedTensor,
    sink: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let info = store.info(key)?;
    let es = info.dtype.size();
    let numel = info.numel();
    if numel == 0 {
        return Ok(());
    }
    let mut converted = Vec::new();
    if !info.is_contiguous() {
        // Strided views are rare (and small) in checkpoints: gather the whole view.
        let (_, raw) = store.read_raw(key)?;
        for chunk in raw.chunks(CHUNK / es * es) {
            converted.clear();
            convert_elements(info.dtype, spec.dtype, chunk, &mut converted);
            sink(&converted)?;
        }
        return Ok(());
    }
    let len = numel as u64 * es as u64;
    let storage_end = info.storage_start + info.storage_len;
    if info.offset < info.storage_start || info.offset + len > storage_end {
        return Err(Error::format(
            store.name(),
            format!("tensor `{key}` reaches outside its storage"),
        ));
    }
    let source: &Arc<dyn crate::io::ByteSource> = store.source();
    let step = (CHUNK / es * es) as u64;
    let mut buf = vec![0u8; step.min(len) as usize];
    let mut at = 0u64;
    while at < len {
        let n = step.min(len - at) as usize;
        source.read_at(info.offset + at, &mut buf[..n])?;
        if info.dtype == spec.dtype {
            sink(&buf[..n])?;
        } else {
            converted.clear();
            convert_elements(info.dtype, spec.dtype, &buf[..n], &mut converted);
            sink(&converted)?;
        }
        at += n as u64;
    }
    Ok(())
}

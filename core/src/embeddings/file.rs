//! One textual-inversion embedding file, read the way A1111's `EmbeddingDatabase` reads it.
//!
//! The extension decides the reader (`.pt`/`.bin`: a torch file through the whitelist
//! unpickler, `.safetensors`; anything else is not an embedding). The object inside is then
//! recognised by shape, in A1111's order:
//! 1. a dict with `string_to_param` (A1111's own files: `{'*': tensor}` plus `name`, `step`,
//!    `sd_checkpoint`, `sd_checkpoint_name`; the original textual-inversion code pickled a
//!    `ParameterDict` there, whose `_parameters` hold the tensor) — exactly one entry;
//! 2. a dict with `clip_g` and `clip_l` (an SDXL embedding: its width is the sum of both,
//!    so an SD1 model always skips it);
//! 3. a dict whose first value is a tensor (diffusers' `{token: tensor}` `.bin`, safetensors
//!    with `emb_params` or any single key) — exactly one entry; a 1-D tensor is one vector.
//!
//! The vectors become float32 `[vectors, width]`. The name is the file stem; the hash A1111
//! writes to infotexts is the first 12 hex digits of the file's sha256.

use crate::error::{Error, Result};
use crate::formats::ckpt;
use crate::formats::safetensors;
use crate::formats::{TensorRef, TensorStore, Value};
use crate::io::ByteSource;
use std::path::PathBuf;
use std::sync::Arc;

/// Hex digits of the sha256 A1111 records in `TI hashes`.
pub const SHORT_HASH_LEN: usize = 12;

/// A loaded embedding: its vectors and what A1111 records about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding {
    /// What the prompt writes to use it: the file stem.
    pub name: String,
    /// The file it came from (empty for bytes handed in without a path).
    pub path: PathBuf,
    /// Number of token positions it takes.
    pub vectors: usize,
    /// Width of each vector (the text encoder's hidden size for a usable embedding).
    pub width: usize,
    /// `vectors × width` floats, row-major; empty for SDXL files (never usable here).
    pub data: Vec<f32>,
    /// Training step, when the file records one.
    pub step: Option<i64>,
    /// Hash of the checkpoint it was trained on, when recorded.
    pub sd_checkpoint: Option<String>,
    /// Name of that checkpoint, when recorded.
    pub sd_checkpoint_name: Option<String>,
    /// The whole file's sha256, lower-case hex.
    pub sha256: String,
}

impl Embedding {
    /// The hash A1111 writes in `TI hashes`: the first 12 hex digits of the file's sha256.
    pub fn short_hash(&self) -> &str {
        &self.sha256[..SHORT_HASH_LEN.min(self.sha256.len())]
    }

    /// Vector `i` (`width` floats).
    pub fn vector(&self, i: usize) -> &[f32] {
        &self.data[i * self.width..(i + 1) * self.width]
    }
}

/// How A1111 treats a file name in an embeddings folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmbeddingFileKind {
    /// `.pt` / `.bin`: a torch file.
    Torch,
    /// `.safetensors`.
    Safetensors,
    /// `.png` / `.webp` / `.jxl` / `.avif`: an image that may carry an embedding.
    Image,
}

impl EmbeddingFileKind {
    /// The kind of `file_name` by its extension (case-insensitive), or `None` for files
    /// A1111 passes over; `x.preview.png` is a preview picture, not an embedding.
    pub fn of(file_name: &str) -> Option<Self> {
        let (stem, ext) = split_ext(file_name);
        match ext.to_ascii_uppercase().as_str() {
            ".PT" | ".BIN" => Some(Self::Torch),
            ".SAFETENSORS" => Some(Self::Safetensors),
            ".PNG" | ".WEBP" | ".JXL" | ".AVIF" => {
                if split_ext(stem).1.eq_ignore_ascii_case(".preview") {
                    None
                } else {
                    Some(Self::Image)
                }
            }
            _ => None,
        }
    }
}

/// Python's `os.path.splitext`: the extension starts at the last dot that is not part of a
/// leading run of dots.
pub fn split_ext(file_name: &str) -> (&str, &str) {
    let leading = file_name.len() - file_name.trim_start_matches('.').len();
    match file_name[leading..].rfind('.') {
        Some(i) => file_name.split_at(leading + i),
        None => (file_name, ""),
    }
}

/// Reads the embedding in `source` (file name `file_name`, whose whole-file sha256 is
/// `sha256`). `Ok(None)` for files A1111 does not read as embeddings; an error names the file
/// and what is wrong.
pub fn read_embedding(
    source: Arc<dyn ByteSource>,
    file_name: &str,
    sha256: String,
) -> Result<Option<Embedding>> {
    let Some(kind) = EmbeddingFileKind::of(file_name) else {
        return Ok(None);
    };
    let name = split_ext(file_name).0.to_string();
    let file = source.name().to_string();
    let parsed = match kind {
        EmbeddingFileKind::Torch => read_torch(source)?,
        EmbeddingFileKind::Safetensors => read_safetensors(safetensors::load(source)?)?,
        EmbeddingFileKind::Image => return Err(Error::format(
            file,
            "embeddings stored in images are not supported yet; use the .pt or .safetensors file",
        )),
    };
    let (vectors, width, data) = parsed.vectors;
    Ok(Some(Embedding {
        name,
        path: PathBuf::new(),
        vectors,
        width,
        data,
        step: parsed.step,
        sd_checkpoint: parsed.sd_checkpoint,
        sd_checkpoint_name: parsed.sd_checkpoint_name,
        sha256,
    }))
}

struct Parsed {
    vectors: (usize, usize, Vec<f32>),
    step: Option<i64>,
    sd_checkpoint: Option<String>,
    sd_checkpoint_name: Option<String>,
}

/// Where the vectors are in a torch file's object tree.
enum Layout {
    /// One tensor (`string_to_param`'s or the single `{token: tensor}` entry).
    Single(TensorRef),
    /// SDXL's `clip_g` and `clip_l`.
    Sdxl(TensorRef, TensorRef),
}

fn read_torch(source: Arc<dyn ByteSource>) -> Result<Parsed> {
    let file = source.name().to_string();
    let mut layout = None;
    let (value, store) = ckpt::load_picked(source, |root| {
        let l = torch_layout(&file, root)?;
        let refs = match &l {
            Layout::Single(t) => vec![("vec".to_string(), t.clone())],
            Layout::Sdxl(g, l) => vec![
                ("clip_g".to_string(), g.clone()),
                ("clip_l".to_string(), l.clone()),
            ],
        };
        layout = Some(l);
        Ok(refs)
    })?;
    let vectors = match layout {
        Some(Layout::Single(_)) => matrix(&store, "vec")?,
        _ => sdxl_shape(&store)?,
    };
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(Parsed {
        vectors,
        step: value.get("step").and_then(Value::as_int),
        sd_checkpoint: text("sd_checkpoint"),
        sd_checkpoint_name: text("sd_checkpoint_name"),
    })
}

/// A1111's recognition order on an unpickled object.
fn torch_layout(file: &str, root: &Value) -> Result<Layout> {
    let unknown = || {
        Error::format(
            file,
            "neither a textual inversion embedding nor a diffusers concept",
        )
    };
    let entries = root.as_dict().ok_or_else(unknown)?;
    if let Some(params) = root.get("string_to_param") {
        // A pickled ParameterDict keeps its entries in `_parameters`.
        let params = match params {
            Value::Object { state: Some(s), .. } => s.get("_parameters").unwrap_or(params),
            other => other,
        };
        let items = params.as_dict().ok_or_else(|| {
            Error::format(
                file,
                format!("`string_to_param` is a {}, not a dict", params.kind()),
            )
        })?;
        if items.len() != 1 {
            return Err(Error::format(
                file,
                format!(
                    "embedding file has {} terms in `string_to_param`; exactly one is expected",
                    items.len()
                ),
            ));
        }
        return match &items[0].1 {
            Value::Tensor(t) => Ok(Layout::Single(t.clone())),
            other => Err(Error::format(
                file,
                format!("`string_to_param` holds a {}, not a tensor", other.kind()),
            )),
        };
    }
    if let (Some(Value::Tensor(g)), Some(Value::Tensor(l))) =
        (root.get("clip_g"), root.get("clip_l"))
    {
        return Ok(Layout::Sdxl(g.clone(), l.clone()));
    }
    match entries.first() {
        Some((_, Value::Tensor(t))) => {
            if entries.len() != 1 {
                return Err(Error::format(
                    file,
                    format!(
                        "embedding file has {} terms in it; exactly one is expected",
                        entries.len()
                    ),
                ));
            }
            Ok(Layout::Single(t.clone()))
        }
        _ => Err(unknown()),
    }
}

fn read_safetensors(store: TensorStore) -> Result<Parsed> {
    let vectors = if store.contains("clip_g") && store.contains("clip_l") {
        sdxl_shape(&store)?
    } else {
        match store.len() {
            0 => {
                return Err(Error::format(
                    store.name(),
                    "safetensors file holds no tensor",
                ))
            }
            1 => {
                let key = store.keys().next().expect("one key").to_string();
                matrix(&store, &key)?
            }
            n => {
                return Err(Error::format(
                    store.name(),
                    format!("embedding file has {n} terms in it; exactly one is expected"),
                ))
            }
        }
    };
    Ok(Parsed {
        vectors,
        step: None,
        sd_checkpoint: None,
        sd_checkpoint_name: None,
    })
}

/// The tensor `key` as `(vectors, width, data)`: a 1-D tensor is one vector.
fn matrix(store: &TensorStore, key: &str) -> Result<(usize, usize, Vec<f32>)> {
    let info = store.info(key)?;
    let (vectors, width) = match info.shape[..] {
        [w] => (1, w),
        [n, w] => (n, w),
        _ => {
            return Err(Error::format(
                store.name(),
                format!(
                    "embedding tensor `{key}` has shape {:?}; expected [vectors, width]",
                    info.shape
                ),
            ))
        }
    };
    if vectors == 0 || width == 0 {
        return Err(Error::format(
            store.name(),
            format!("embedding tensor `{key}` is empty ({:?})", info.shape),
        ));
    }
    let data = store.read_f32(key)?;
    Ok((vectors, width, data))
}

/// An SDXL embedding's size: `clip_g`'s rows, and the width A1111 compares (both widths
/// summed). Its vectors are not kept: no SD1 text encoder can use them.
fn sdxl_shape(store: &TensorStore) -> Result<(usize, usize, Vec<f32>)> {
    let g = store.info("clip_g")?;
    let l = store.info("clip_l")?;
    let width = g.shape.last().copied().unwrap_or(0) + l.shape.last().copied().unwrap_or(0);
    Ok((g.shape.first().copied().unwrap_or(0), width, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitext_follows_python() {
        assert_eq!(split_ext("a.pt"), ("a", ".pt"));
        assert_eq!(split_ext("a.b.safetensors"), ("a.b", ".safetensors"));
        assert_eq!(split_ext(".pt"), (".pt", ""));
        assert_eq!(split_ext("noext"), ("noext", ""));
    }

    #[test]
    fn kinds_by_extension() {
        assert_eq!(
            EmbeddingFileKind::of("x.PT"),
            Some(EmbeddingFileKind::Torch)
        );
        assert_eq!(
            EmbeddingFileKind::of("x.bin"),
            Some(EmbeddingFileKind::Torch)
        );
        assert_eq!(
            EmbeddingFileKind::of("x.safetensors"),
            Some(EmbeddingFileKind::Safetensors)
        );
        assert_eq!(
            EmbeddingFileKind::of("x.png"),
            Some(EmbeddingFileKind::Image)
        );
        assert_eq!(EmbeddingFileKind::of("x.preview.png"), None);
        assert_eq!(EmbeddingFileKind::of("x.txt"), None);
        assert_eq!(EmbeddingFileKind::of("x.ckpt"), None);
    }
}

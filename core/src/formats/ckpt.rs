//! PyTorch zip checkpoints (`.ckpt`, `.pt`, `.pth` written by `torch.save` since 1.6):
//! `<root>/data.pkl` describes the objects, `<root>/data/<key>` holds each storage's raw
//! little-endian bytes. The root folder is `archive` in older files and the file stem in
//! newer ones, so it is found, not assumed. Files in torch's older non-zip format are
//! read through [`legacy_torch`].

use super::flatten::flatten_checkpoint;
use super::legacy_torch;
use super::pickle::unpickle;
use super::tensor_store::{TensorInfo, TensorStore};
use super::value::{TensorRef, Value};
use super::zip::ZipArchive;
use crate::error::{Error, Result};
use crate::io::ByteSource;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The first bytes of a torch file saved with `_use_new_zipfile_serialization=False`:
/// a protocol-2 pickle of the magic number 0x1950a86a20f9469cfc6c.
pub const LEGACY_MAGIC: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// Whether `head` (the file's first bytes) starts like a legacy (pre-zip) torch file.
pub fn is_legacy_torch(head: &[u8]) -> bool {
    head.starts_with(&LEGACY_MAGIC)
}

/// Whether `head` starts like a zip archive.
pub fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// A parsed checkpoint: its directory, its object tree and the folder prefix of its entries.
struct Checkpoint {
    zip: ZipArchive,
    root: String,
    value: Value,
}

fn open_checkpoint(source: Arc<dyn ByteSource>) -> Result<Checkpoint> {
    let zip = ZipArchive::open(source)?;
    let pickles: Vec<_> = zip
        .entries()
        .iter()
        .filter(|e| e.name == "data.pkl" || e.name.ends_with("/data.pkl"))
        .collect();
    let depth = |e: &&super::zip::ZipEntry| e.name.matches('/').count();
    let top = pickles.iter().map(depth).min();
    let at_top: Vec<&str> = pickles
        .iter()
        .filter(|e| Some(depth(e)) == top)
        .map(|e| e.name.as_str())
        .collect();
    if at_top.len() > 1 {
        // torch reads the one under the archive's first folder, other readers the last:
        // which object tree counts would depend on the reader.
        return Err(Error::format(
            zip.name(),
            format!(
                "zip holds more than one object tree ({})",
                at_top.join(", ")
            ),
        ));
    }
    let pkl = pickles
        .iter()
        .copied()
        .min_by_key(|e| e.name.matches('/').count())
        .ok_or_else(|| {
            Error::format(
                zip.name(),
                "zip has no `data.pkl` entry: not a torch checkpoint",
            )
        })?
        .clone();
    let root = pkl.name[..pkl.name.len() - "data.pkl".len()].to_string();
    let bytes = zip.read(&pkl)?;
    let (value, _) = unpickle(&bytes, zip.name())?;
    Ok(Checkpoint { zip, root, value })
}

/// The checkpoint's pickled object tree, tensors as references (only the pickle is read).
/// For callers that need structure, e.g. a hypernetwork's `layer_structure`.
pub fn load_value(source: Arc<dyn ByteSource>) -> Result<Value> {
    if starts_legacy(source.as_ref())? {
        return Ok(legacy_torch::parse(source.as_ref())?.value);
    }
    Ok(open_checkpoint(source)?.value)
}

/// Indexes every tensor of a torch checkpoint (zip or legacy format) by dotted name (see
/// [`flatten_checkpoint`]); non-tensor leaves become metadata text. Tensor bytes are not
/// read.
pub fn load(source: Arc<dyn ByteSource>) -> Result<TensorStore> {
    if starts_legacy(source.as_ref())? {
        let legacy = legacy_torch::parse(source.as_ref())?;
        let file = source.name().to_string();
        return build_store(source, &legacy.value, |name, key| {
            legacy.storages.get(key).copied().ok_or_else(|| {
                Error::format(
                    &file,
                    format!("tensor `{name}`: storage `{key}` is not in the file's storage list"),
                )
            })
        });
    }
    let ck = open_checkpoint(source)?;
    build_store(ck.zip.source().clone(), &ck.value, |name, key| {
        let entry_name = format!("{}data/{key}", ck.root);
        let entry = ck.zip.entry(&entry_name).ok_or_else(|| {
            Error::format(
                ck.zip.name(),
                format!("tensor `{name}`: storage entry `{entry_name}` is missing"),
            )
        })?;
        ck.zip.stored_range(entry)
    })
}

/// The object tree of a torch file together with a store of the tensors `pick` names in it.
/// For files whose tensors sit where the flat view of [`load`] does not look, such as inside
/// a pickled `ParameterDict` (original textual-inversion embeddings).
pub fn load_picked(
    source: Arc<dyn ByteSource>,
    pick: impl FnOnce(&Value) -> Result<Vec<(String, TensorRef)>>,
) -> Result<(Value, TensorStore)> {
    if starts_legacy(source.as_ref())? {
        let legacy = legacy_torch::parse(source.as_ref())?;
        let refs = pick(&legacy.value)?;
        let file = source.name().to_string();
        let store = place_tensors(source, refs, BTreeMap::new(), |name, key| {
            legacy.storages.get(key).copied().ok_or_else(|| {
                Error::format(
                    &file,
                    format!("tensor `{name}`: storage `{key}` is not in the file's storage list"),
                )
            })
        })?;
        return Ok((legacy.value, store));
    }
    let ck = open_checkpoint(source)?;
    let refs = pick(&ck.value)?;
    let store = place_tensors(
        ck.zip.source().clone(),
        refs,
        BTreeMap::new(),
        |name, key| {
            let entry_name = format!("{}data/{key}", ck.root);
            let entry = ck.zip.entry(&entry_name).ok_or_else(|| {
                Error::format(
                    ck.zip.name(),
                    format!("tensor `{name}`: storage entry `{entry_name}` is missing"),
                )
            })?;
            ck.zip.stored_range(entry)
        },
    )?;
    Ok((ck.value, store))
}

/// Flattens `value` and places each tensor in the byte range `storage_range(name, key)`
/// gives for its storage (asked once per storage).
fn build_store(
    source: Arc<dyn ByteSource>,
    value: &Value,
    storage_range: impl FnMut(&str, &str) -> Result<(u64, u64)>,
) -> Result<TensorStore> {
    let (refs, metadata) = flatten_checkpoint(value);
    place_tensors(source, refs, metadata, storage_range)
}

/// Places each named tensor view in the byte range `storage_range(name, key)` gives for its
/// storage (asked once per storage).
fn place_tensors(
    source: Arc<dyn ByteSource>,
    refs: Vec<(String, TensorRef)>,
    metadata: BTreeMap<String, String>,
    mut storage_range: impl FnMut(&str, &str) -> Result<(u64, u64)>,
) -> Result<TensorStore> {
    let mut tensors = BTreeMap::new();
    let mut storages: HashMap<String, (u64, u64)> = HashMap::new();
    for (name, t) in refs {
        let (start, len) = match storages.get(&t.storage.key) {
            Some(&r) => r,
            None => {
                let r = storage_range(&name, &t.storage.key)?;
                storages.insert(t.storage.key.clone(), r);
                r
            }
        };
        let info = tensor_info(source.name(), &name, &t, start, len)?;
        tensors.insert(name, info);
    }
    Ok(TensorStore::new(source, tensors, metadata))
}

fn starts_legacy(source: &dyn ByteSource) -> Result<bool> {
    let n = source.len().min(LEGACY_MAGIC.len() as u64) as usize;
    Ok(is_legacy_torch(&source.read_vec(0, n)?))
}

/// Places a tensor view inside its storage's byte range, checking that every element it
/// can address lies inside both the storage the pickle declared and the bytes on disk.
pub(crate) fn tensor_info(
    file: &str,
    name: &str,
    t: &TensorRef,
    storage_start: u64,
    storage_bytes: u64,
) -> Result<TensorInfo> {
    let es = t.dtype().size() as u64;
    let outside = |why: String| Error::format(file, format!("tensor `{name}`: {why}"));
    let declared = t
        .storage
        .numel
        .checked_mul(es)
        .ok_or_else(|| outside("storage size overflows".into()))?;
    if declared > storage_bytes {
        return Err(outside(format!(
            "storage `{}` declares {} elements ({declared} bytes) but only {storage_bytes} bytes are stored",
            t.storage.key, t.storage.numel
        )));
    }
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| outside("element count overflows".into()))?;
    // A view may overlap itself (stride 0 on a size-1 dimension, as CLIP's `position_ids`
    // is saved), but never claims more elements than its storage holds: reading it would
    // turn a few stored bytes into an allocation of any size.
    if numel > t.storage.numel {
        return Err(outside(format!(
            "view shape {:?} (strides {:?}) claims {numel} elements but storage `{}` holds {}",
            t.shape, t.strides, t.storage.key, t.storage.numel
        )));
    }
    if numel > 0 {
        let mut last = t.storage_offset;
        for (&d, &s) in t.shape.iter().zip(&t.strides) {
            let step = (d as u64 - 1)
                .checked_mul(s as u64)
                .and_then(|x| x.checked_add(last));
            last = step.ok_or_else(|| outside("strides overflow".into()))?;
        }
        if last >= t.storage.numel {
            return Err(outside(format!(
                "view (offset {}, shape {:?}, strides {:?}) reaches element {last} of a {}-element storage",
                t.storage_offset, t.shape, t.strides, t.storage.numel
            )));
        }
    }
    Ok(TensorInfo {
        dtype: t.dtype(),
        shape: t.shape.clone(),
        strides: t.strides.clone(),
        // For an empty view the offset is never read; saturate rather than trust it.
        offset: storage_start.saturating_add(t.storage_offset.saturating_mul(es)),
        storage_start,
        storage_len: declared,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::value::StorageRef;
    use crate::formats::DType;

    fn view(numel: u64, offset: u64, shape: &[usize], strides: &[usize]) -> TensorRef {
        TensorRef {
            storage: StorageRef {
                key: "0".into(),
                dtype: DType::F32,
                location: "cpu".into(),
                numel,
            },
            storage_offset: offset,
            shape: shape.to_vec(),
            strides: strides.to_vec(),
            requires_grad: false,
        }
    }

    #[test]
    fn views_claiming_more_than_their_storage_are_refused() {
        // A 4-byte storage viewed as 2^28 elements through stride 0: a 1 GiB read.
        let err = tensor_info("x.ckpt", "w", &view(1, 0, &[1 << 28], &[0]), 0, 4)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.ckpt") && err.contains("`w`") && err.contains("268435456 elements"),
            "{err}"
        );
        // Strides that overflow, and a view past the end.
        let huge = usize::MAX / 2;
        assert!(tensor_info("x.ckpt", "w", &view(4, 0, &[2, 2], &[huge, 1]), 0, 16).is_err());
        assert!(tensor_info("x.ckpt", "w", &view(4, 1, &[4], &[1]), 0, 16).is_err());
        // Legitimate views: CLIP's position_ids (stride 0 on a size-1 dim), a transpose,
        // a slice at an offset.
        assert!(tensor_info("x.ckpt", "p", &view(77, 0, &[1, 77], &[0, 1]), 0, 308).is_ok());
        assert!(tensor_info("x.ckpt", "t", &view(6, 0, &[3, 2], &[1, 3]), 0, 24).is_ok());
        assert!(tensor_info("x.ckpt", "s", &view(6, 2, &[4], &[1]), 0, 24).is_ok());
    }
}

//! The legacy (pre-1.6, non-zip) torch format, still found in some 2022 model files:
//! five pickles back to back — the magic number, the format version (1001), a sys-info
//! dict, the object tree (storages as persistent ids), the list of storage keys — then,
//! for each key in that list, an 8-byte little-endian element count and the raw bytes.
//!
//! Pickle lengths are not recorded, so each one is parsed from a window of the file that
//! grows until the pickle's STOP fits; storage data is located by reading only the count
//! words, never the data.

use super::ckpt::{is_legacy_torch, LEGACY_MAGIC};
use super::pickle::unpickle_prefix;
use super::value::{StorageRef, Value};
use crate::error::{Error, Result};
use crate::io::ByteSource;
use std::collections::HashMap;

const FIRST_WINDOW: u64 = 64 * 1024;

/// The object tree and the byte range `(offset, len)` of every storage, by key.
pub struct LegacyFile {
    pub value: Value,
    pub storages: HashMap<String, (u64, u64)>,
}

/// Parses the pickles and locates the storages of a legacy torch file.
pub fn parse(source: &dyn ByteSource) -> Result<LegacyFile> {
    let file = source.name();
    let mut pos = 0u64;
    // The magic number (a 10-byte long, matched by the caller as the file's prefix).
    skip_magic(source, &mut pos)?;
    let version = next_pickle(source, &mut pos)?;
    if version.as_int() != Some(1001) {
        return Err(Error::format(
            file,
            format!(
                "legacy torch format version {} is not supported",
                version.to_json_text()
            ),
        ));
    }
    let sys_info = next_pickle(source, &mut pos)?;
    if sys_info.get("little_endian").and_then(Value::as_bool) == Some(false) {
        return Err(Error::format(
            file,
            "big-endian legacy torch files are not supported",
        ));
    }
    let value = next_pickle(source, &mut pos)?;
    let keys = next_pickle(source, &mut pos)?;
    let keys = keys
        .as_seq()
        .ok_or_else(|| Error::format(file, "legacy torch file: storage key list is not a list"))?;
    let mut dtypes = HashMap::new();
    collect_storages(&value, &mut dtypes);
    let mut storages = HashMap::with_capacity(keys.len());
    for key in keys {
        let key = key.key_text();
        let storage = dtypes.get(key.as_str()).ok_or_else(|| {
            Error::format(
                file,
                format!(
                    "legacy torch file: storage `{key}` is never used, its element size is unknown"
                ),
            )
        })?;
        let mut count = [0u8; 8];
        source.read_at(pos, &mut count)?;
        let numel = u64::from_le_bytes(count);
        let len = numel
            .checked_mul(storage.dtype.size() as u64)
            .filter(|&l| (pos + 8).checked_add(l).is_some_and(|e| e <= source.len()))
            .ok_or_else(|| {
                Error::format(
                    file,
                    format!("legacy torch file: storage `{key}` ({numel} elements) runs past the end of the file: truncated?"),
                )
            })?;
        storages.insert(key, (pos + 8, len));
        pos += 8 + len;
    }
    Ok(LegacyFile { value, storages })
}

fn skip_magic(source: &dyn ByteSource, pos: &mut u64) -> Result<()> {
    let head = source.read_vec(0, LEGACY_MAGIC.len().min(source.len() as usize))?;
    // PROTO 2, LONG1 of 10 bytes, then STOP.
    if !is_legacy_torch(&head) || source.read_vec(LEGACY_MAGIC.len() as u64, 1)? != b"." {
        return Err(Error::format(
            source.name(),
            "not a legacy torch file (bad magic number)",
        ));
    }
    *pos = LEGACY_MAGIC.len() as u64 + 1;
    Ok(())
}

/// Parses the pickle starting at `*pos` and advances past it.
fn next_pickle(source: &dyn ByteSource, pos: &mut u64) -> Result<Value> {
    let remaining = source.len().saturating_sub(*pos);
    let mut window = FIRST_WINDOW.min(remaining);
    loop {
        let bytes = source.read_vec(*pos, window as usize)?;
        if let Some((value, used)) = unpickle_prefix(&bytes, source.name())? {
            *pos += used as u64;
            return Ok(value);
        }
        if window == remaining {
            return Err(Error::format(
                source.name(),
                "legacy torch file ends inside a pickle: truncated?",
            ));
        }
        window = (window * 4).min(remaining);
    }
}

/// Every storage referenced anywhere in the tree, by key.
fn collect_storages<'a>(v: &'a Value, out: &mut HashMap<&'a str, &'a StorageRef>) {
    match v {
        Value::Tensor(t) => {
            out.insert(&t.storage.key, &t.storage);
        }
        Value::Storage(s) => {
            out.insert(&s.key, s);
        }
        Value::List(items) | Value::Tuple(items) => {
            items.iter().for_each(|x| collect_storages(x, out));
        }
        Value::Dict(d) => d.iter().for_each(|(_, x)| collect_storages(x, out)),
        Value::Object { args, state, .. } => {
            args.iter().for_each(|x| collect_storages(x, out));
            if let Some(s) = state {
                collect_storages(s, out);
            }
        }
        _ => {}
    }
}

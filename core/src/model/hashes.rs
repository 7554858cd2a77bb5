//! Every hash model sites and tools show for a file, computed in one streaming pass:
//!
//! * legacy A1111 "Model hash" (Civitai AutoV1): sha256 of the 64 KiB at offset 1 MiB, 8 hex;
//! * AutoV2: the whole file's sha256, first 10 hex (A1111's current "Model hash");
//! * AutoV3: sha256 of a safetensors file's data after its header (A1111's "addnet" hash;
//!   Civitai shows its first 12 hex);
//! * CRC32 of the whole file, `%08X` (NovelAI's own check);
//! * the full sha256.
//!
//! Reading a 4 GB file takes a while, so [`HashCache`] remembers results by path, size and
//! modification time in a small JSON file and a file is hashed again only when it changed.

use super::hash::hex;
use crate::error::{Error, Result};
use crate::formats::safetensors::looks_like_safetensors;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

const READ_CHUNK: usize = 4 << 20;
const LEGACY_START: u64 = 0x10_0000;
const LEGACY_LEN: u64 = 0x1_0000;

/// The hashes of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileHashes {
    /// Full sha256, lower-case hex.
    pub sha256: String,
    pub crc32: u32,
    /// Legacy 8-hex model hash.
    pub legacy: String,
    /// Full sha256 of a safetensors file's data section; `None` for other files.
    pub autov3: Option<String>,
}

impl FileHashes {
    /// First 10 hex digits of the sha256.
    pub fn autov2(&self) -> &str {
        &self.sha256[..10]
    }
    /// CRC32 as NovelAI prints it (`31D10243`).
    pub fn crc32_hex(&self) -> String {
        format!("{:08X}", self.crc32)
    }
}

fn open(path: &Path) -> Result<(std::fs::File, u64)> {
    let (f, meta) = crate::io::open_regular_file(path)?;
    Ok((f, meta.len()))
}

/// Reads `path` start to end in chunks, calling `each(offset, chunk)` and
/// `progress(done, total)`.
fn stream(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
    each: &mut dyn FnMut(u64, &[u8]),
) -> Result<u64> {
    let (mut f, total) = open(path)?;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut done = 0u64;
    progress(0, total);
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        each(done, &buf[..n]);
        done += n as u64;
        progress(done, total);
    }
    Ok(done)
}

/// The whole file's sha256 (lower-case hex), streaming.
pub fn sha256_file(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<String> {
    let mut h = Sha256::new();
    stream(path, progress, &mut |_, chunk| h.update(chunk))?;
    Ok(hex(&h.finalize()))
}

/// All hashes of `path` in one pass.
pub fn hash_file(path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<FileHashes> {
    // The safetensors data offset comes from the first bytes; read them up front.
    let (mut f, len) = open(path)?;
    let mut head = [0u8; 9];
    let got = f.read(&mut head).map_err(|e| Error::io(path, e))?;
    drop(f);
    let data_start = (got == 9 && looks_like_safetensors(&head, len))
        .then(|| 8 + u64::from_le_bytes(head[..8].try_into().expect("8 bytes")));
    let mut sha = Sha256::new();
    let mut crc = crc32fast::Hasher::new();
    let mut legacy = Sha256::new();
    let mut v3 = data_start.map(|_| Sha256::new());
    stream(path, progress, &mut |offset, chunk| {
        sha.update(chunk);
        crc.update(chunk);
        let end = offset + chunk.len() as u64;
        let slice = |from: u64, to: u64| -> Option<&[u8]> {
            let (a, b) = (from.max(offset), to.min(end));
            (a < b).then(|| &chunk[(a - offset) as usize..(b - offset) as usize])
        };
        if let Some(s) = slice(LEGACY_START, LEGACY_START + LEGACY_LEN) {
            legacy.update(s);
        }
        if let (Some(h), Some(start)) = (v3.as_mut(), data_start) {
            if let Some(s) = slice(start, u64::MAX) {
                h.update(s);
            }
        }
    })?;
    Ok(FileHashes {
        sha256: hex(&sha.finalize()),
        crc32: crc.finalize(),
        legacy: hex(&legacy.finalize()[..4]),
        autov3: v3.map(|h| hex(&h.finalize())),
    })
}

/// One remembered result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CacheEntry {
    size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    mtime_ns: u128,
    hashes: FileHashes,
}

#[derive(Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    files: BTreeMap<String, CacheEntry>,
}

/// Hash results by absolute path, valid while the file's size and mtime are unchanged.
pub struct HashCache {
    path: PathBuf,
    data: CacheFile,
    dirty: bool,
}

const CACHE_VERSION: u32 = 1;

fn file_key(path: &Path) -> Result<(String, u64, u128)> {
    let abs = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    let meta = std::fs::metadata(&abs).map_err(|e| Error::io(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok((abs.to_string_lossy().into_owned(), meta.len(), mtime))
}

impl HashCache {
    /// `$XDG_CACHE_HOME/easel/hashes.json`, else `~/.cache/easel/hashes.json`
    /// (`%LOCALAPPDATA%\easel\hashes.json` on Windows).
    pub fn default_path() -> Option<PathBuf> {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let base = if cfg!(windows) {
            env("LOCALAPPDATA")
        } else {
            env("XDG_CACHE_HOME").or_else(|| env("HOME").map(|h| h.join(".cache")))
        };
        base.map(|b| b.join("easel").join("hashes.json"))
    }

    /// Loads the cache at `path`; a missing or unreadable cache starts empty (it is only
    /// a cache).
    pub fn load(path: &Path) -> Self {
        let data = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<CacheFile>(&b).ok())
            .filter(|c| c.version == CACHE_VERSION)
            .unwrap_or_else(|| CacheFile {
                version: CACHE_VERSION,
                files: BTreeMap::new(),
            });
        Self {
            path: path.to_path_buf(),
            data,
            dirty: false,
        }
    }

    /// The remembered hashes of `file` if it has not changed since.
    pub fn get(&self, file: &Path) -> Option<FileHashes> {
        let (key, size, mtime) = file_key(file).ok()?;
        let e = self.data.files.get(&key)?;
        (e.size == size && e.mtime_ns == mtime).then(|| e.hashes.clone())
    }

    pub fn insert(&mut self, file: &Path, hashes: FileHashes) -> Result<()> {
        let (key, size, mtime_ns) = file_key(file)?;
        self.data.files.insert(
            key,
            CacheEntry {
                size,
                mtime_ns,
                hashes,
            },
        );
        self.dirty = true;
        Ok(())
    }

    /// Writes the cache (through a temporary file) if anything was added.
    pub fn save(&mut self) -> Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let json = serde_json::to_vec_pretty(&self.data)
            .map_err(|e| Error::Invalid(format!("{}: {e}", self.path.display())))?;
        let mut f = crate::io::AtomicFile::create(&self.path, true)?;
        std::io::Write::write_all(&mut f, &json).map_err(|e| f.err(e))?;
        f.commit()?;
        self.dirty = false;
        Ok(())
    }
}

/// [`hash_file`] through `cache`: hashed only when absent or changed.
pub fn hash_file_cached(
    path: &Path,
    cache: &mut HashCache,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<FileHashes> {
    if let Some(h) = cache.get(path) {
        return Ok(h);
    }
    let h = hash_file(path, progress)?;
    cache.insert(path, h.clone())?;
    Ok(h)
}

/// A1111's short hash of `path` (see [`super::short_hash_of`]), remembered in the
/// [`HashCache`] at its default place so a checkpoint is read in full only once; without a
/// cache directory it is computed each time. A cache that cannot be written is only a
/// missed saving, never an error.
pub fn short_hash_cached(path: &Path) -> Result<String> {
    let hashes = match HashCache::default_path() {
        Some(cache_path) => {
            let mut cache = HashCache::load(&cache_path);
            let h = hash_file_cached(path, &mut cache, &mut |_, _| {})?;
            let _ = cache.save();
            h
        }
        None => hash_file(path, &mut |_, _| {})?,
    };
    Ok(hashes.autov2().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_window_and_crc_match_known_values() {
        let dir = std::env::temp_dir().join(format!("easel-hashes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f.bin");
        // "123456789" is the CRC-32 check string: 0xCBF43926.
        std::fs::write(&p, b"123456789").unwrap();
        let h = hash_file(&p, &mut |_, _| {}).unwrap();
        assert_eq!(h.crc32_hex(), "CBF43926");
        assert_eq!(
            h.sha256,
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
        // Shorter than 1 MiB: the legacy window is empty, sha256("") starts e3b0c442.
        assert_eq!(h.legacy, "e3b0c442");
        assert_eq!(h.autov3, None);
        let mut cache = HashCache::load(&dir.join("c.json"));
        assert!(cache.get(&p).is_none());
        let h2 = hash_file_cached(&p, &mut cache, &mut |_, _| {}).unwrap();
        assert_eq!(h, h2);
        cache.save().unwrap();
        let cache = HashCache::load(&dir.join("c.json"));
        assert_eq!(cache.get(&p), Some(h));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! An embeddings folder on disk: the files A1111 would read from it, in a fixed order, and a
//! loaded database that is reused until a file is added, removed or changed.
//!
//! A1111 walks the folder recursively (following links) and reads every file whose
//! extension it knows, skipping empty files. Its order is the file system's; here each
//! folder's files come sorted by name before its subfolders (also sorted), which decides
//! which of two same-named files wins (the later one).

use super::database::EmbeddingDatabase;
use super::file::{read_embedding, EmbeddingFileKind};
use crate::error::{Error, Result};
use crate::io::{ByteSource, FileSource};
use crate::model::sha256_file;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Deepest folder nesting followed (links may form loops).
const MAX_DEPTH: usize = 32;

/// Embedding files under `dir` in scan order: each folder's files by name, then its
/// subfolders by name. A missing folder has none.
pub fn embedding_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    walk(dir, 0, &mut seen, &mut out);
    out
}

fn walk(dir: &Path, depth: usize, seen: &mut HashSet<PathBuf>, out: &mut Vec<PathBuf>) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Ok(real) = std::fs::canonicalize(dir) {
        if !seen.insert(real) {
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            dirs.push(path);
        } else if path.is_file() {
            let name = entry.file_name();
            let known = name.to_str().and_then(EmbeddingFileKind::of).is_some();
            let empty = std::fs::metadata(&path)
                .map(|m| m.len() == 0)
                .unwrap_or(true);
            if known && !empty {
                files.push(path);
            }
        }
    }
    files.sort();
    dirs.sort();
    out.extend(files);
    for d in dirs {
        walk(&d, depth + 1, seen, out);
    }
}

/// Reads one embedding file from disk (its sha256 included). `Ok(None)` for a file that is
/// not an embedding.
pub fn load_embedding_file(path: &Path) -> Result<Option<super::Embedding>> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid(format!("{}: file name is not UTF-8", path.display())))?;
    if EmbeddingFileKind::of(file_name).is_none() {
        return Ok(None);
    }
    let sha256 = sha256_file(path, &mut |_, _| {})?;
    let source = FileSource::open_arc(path)?;
    Ok(read_embedding(source, file_name, sha256)?.map(|mut e| {
        e.path = path.to_path_buf();
        e
    }))
}

/// Every embedding under `dir` for a text encoder of hidden size `width`. Files that cannot
/// be read are recorded in the database's errors (each message names its file), as A1111
/// reports them and goes on.
pub fn load_embeddings_folder(dir: &Path, width: usize) -> EmbeddingDatabase {
    let mut db = EmbeddingDatabase::new(width);
    for path in embedding_files(dir) {
        add_or_record(
            &mut db,
            &path.display().to_string(),
            load_embedding_file(&path),
        );
    }
    db
}

/// [`load_embeddings_folder`] for files given as byte sources (the files a browser user
/// picked), in the order given: `(file name, source)`.
pub fn load_embedding_sources(
    files: &[(String, Arc<dyn ByteSource>)],
    width: usize,
) -> EmbeddingDatabase {
    let mut db = EmbeddingDatabase::new(width);
    for (name, source) in files {
        // A1111 passes over empty files and extensions it does not read.
        let loaded = match EmbeddingFileKind::of(name) {
            _ if source.is_empty() => Ok(None),
            None => Ok(None),
            Some(_) => crate::model::sha256_of(source.as_ref()).and_then(|sha| {
                // Messages name the file as the user picked it.
                Ok(read_embedding(source.clone(), name, sha)?.map(|mut e| {
                    e.path = PathBuf::from(name);
                    e
                }))
            }),
        };
        add_or_record(&mut db, name, loaded);
    }
    db
}

/// Adds a loaded embedding, or records why the file `shown` could not be one.
fn add_or_record(
    db: &mut EmbeddingDatabase,
    shown: &str,
    loaded: Result<Option<super::Embedding>>,
) {
    let added = loaded.and_then(|e| match e {
        Some(e) => db.add(e),
        None => Ok(()),
    });
    if let Err(e) = added {
        let msg = e.to_string();
        db.push_error(if msg.contains(shown) {
            msg
        } else {
            format!("{shown}: {msg}")
        });
    }
}

/// What identifies a folder's contents: each file with its size and modification time.
type Snapshot = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn snapshot(dir: &Path) -> Snapshot {
    embedding_files(dir)
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            let mtime = meta.and_then(|m| m.modified().ok());
            (p, len, mtime)
        })
        .collect()
}

/// A folder's database, reloaded only when the folder's files, their sizes or times, or the
/// text encoder's width change.
#[derive(Default)]
pub struct EmbeddingsCache {
    loaded: Option<(PathBuf, usize, Snapshot, Arc<EmbeddingDatabase>)>,
}

impl EmbeddingsCache {
    /// The database of `dir` for width `width`, and whether it was (re)loaded by this call
    /// (so a front end prints its warnings once).
    pub fn get(&mut self, dir: &Path, width: usize) -> (Arc<EmbeddingDatabase>, bool) {
        let snap = snapshot(dir);
        if let Some((d, w, s, db)) = &self.loaded {
            if d == dir && *w == width && *s == snap {
                return (db.clone(), false);
            }
        }
        let db = Arc::new(load_embeddings_folder(dir, width));
        self.loaded = Some((dir.to_path_buf(), width, snap, db.clone()));
        (db, true)
    }
}

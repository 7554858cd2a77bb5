//! Finding a checkpoint and its sidecars in an A1111-style `models/` folder:
//! `Stable-diffusion/<name>.ckpt|.safetensors` with `<stem>.yaml` (config) and
//! `<stem>.vae.pt|.vae.ckpt|.vae.safetensors` (VAE override) beside it, extra VAEs in `VAE/`.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const CHECKPOINT_EXTS: [&str; 2] = ["ckpt", "safetensors"];
const VAE_SUFFIXES: [&str; 3] = [".vae.pt", ".vae.ckpt", ".vae.safetensors"];

/// A checkpoint and the files A1111 would use with it.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointFiles {
    pub checkpoint: PathBuf,
    /// `<stem>.yaml` beside the checkpoint, if present.
    pub config: Option<PathBuf>,
    /// The VAE to use instead of the checkpoint's own, if any.
    pub vae: Option<PathBuf>,
}

/// How the user chose the VAE (`--vae`).
#[derive(Clone, Debug, PartialEq)]
pub enum VaeChoice {
    /// A1111 "Automatic": a sidecar `<stem>.vae.*` if present, else the checkpoint's own.
    Auto,
    /// The checkpoint's own VAE even when a sidecar exists.
    Builtin,
    /// A file path, or a name looked up in `models/VAE/`.
    Named(String),
}

impl VaeChoice {
    pub fn parse(s: &str) -> Self {
        match s.to_ascii_lowercase().as_str() {
            "" | "auto" | "automatic" => VaeChoice::Auto,
            "none" | "builtin" => VaeChoice::Builtin,
            _ => VaeChoice::Named(s.to_string()),
        }
    }
}

/// `models/Stable-diffusion` checkpoints, recursively, sorted by relative path.
pub fn list_checkpoints(models: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(&models.join("Stable-diffusion"), &mut out, &|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // `x.vae.ckpt` / `x.vae.safetensors` are VAE sidecars, not checkpoints.
        has_ext(p, &CHECKPOINT_EXTS) && !VAE_SUFFIXES.iter().any(|s| name.ends_with(s))
    });
    out.sort();
    out
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Files with one of `exts` (any case) under `dir`, recursively, sorted.
pub fn files_with_ext(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    collect(dir, &mut out, &|p| has_ext(p, exts));
    out.sort();
    out
}

/// Deepest folder nesting a walk descends into below its root.
const MAX_WALK_DEPTH: usize = 32;

/// Files under `dir` that `keep` accepts, recursively, unsorted; names starting with `.`
/// are skipped when `skip_hidden` (as Python's `glob` does). Linked folders are followed
/// (users link model folders from other drives, and A1111 follows them), but each real
/// folder is entered once, so a link back up the tree (`models/x -> ..`) cannot loop, and
/// the walk stops [`MAX_WALK_DEPTH`] levels down.
pub fn walk_files(dir: &Path, skip_hidden: bool, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut visited = std::collections::HashSet::new();
    let mut pending = vec![(dir.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(real) = std::fs::canonicalize(&dir) else {
            continue;
        };
        if !visited.insert(real) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in rd.flatten() {
            if skip_hidden && entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let p = entry.path();
            if p.is_dir() {
                if depth < MAX_WALK_DEPTH {
                    pending.push((p, depth + 1));
                }
            } else if keep(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>, keep: &dyn Fn(&Path) -> bool) {
    out.extend(walk_files(dir, false, keep));
}

/// A checkpoint's stem: `final-pruned` for `final-pruned.ckpt`.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_string()
}

/// Resolve `--model` the ways A1111 names a checkpoint: an existing file path; a name
/// (file name, stem, or path relative to `Stable-diffusion/`, with or without extension);
/// a legacy 8-hex hash (`925997e9`); or A1111's title `name [hash]`, where the hash wins
/// and the name is the fallback. An empty name picks the first checkpoint.
///
/// Only for names the user typed (a CLI flag): a name from outside data (an infotext, a
/// prompt, a request) goes through [`resolve_checkpoint_name`], which never opens a path.
pub fn resolve_checkpoint(models: &Path, name: &str) -> Result<PathBuf> {
    let as_path = Path::new(name);
    if !name.is_empty() && as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    resolve_checkpoint_name(models, name)
}

/// Resolves a checkpoint name as A1111 resolves names from infotexts and API requests:
/// only against the checkpoints listed in `models/Stable-diffusion/` (by relative name,
/// stem, legacy hash or `name [hash]` title). An absolute path or a `..` in the name is an
/// error, and no file outside the folder is ever opened.
pub fn resolve_checkpoint_name(models: &Path, name: &str) -> Result<PathBuf> {
    check_plain_name(name, "checkpoint")?;
    let root = models.join("Stable-diffusion");
    let all = list_checkpoints(models);
    if name.is_empty() {
        return all.into_iter().next().ok_or_else(|| {
            Error::Invalid(format!(
                "no checkpoints (.ckpt/.safetensors) in {}",
                root.display()
            ))
        });
    }
    let (wanted, hash) = split_title(name.trim());
    if let Some(hash) = hash {
        if let Some(p) = find_by_hash(&all, hash)? {
            return Ok(p);
        }
    }
    if let Some(p) = find_by_name(&all, &root, wanted) {
        return Ok(p);
    }
    if hash.is_none() && is_model_hash(wanted) {
        if let Some(p) = find_by_hash(&all, wanted)? {
            return Ok(p);
        }
    }
    // A1111's last resort (`get_closet_checkpoint_match`): the shortest title that
    // contains the name.
    if let Some(p) = find_by_substring(&all, &root, wanted) {
        return Ok(p);
    }
    let names: Vec<String> = all.iter().map(|p| stem(p)).collect();
    Err(Error::Invalid(format!(
        "no checkpoint named `{name}` in {} (available: {})",
        root.display(),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )))
}

/// Refuses a model name from outside data that is written as a path out of its folder:
/// absolute (`/x`, `C:\\x`, `\\\\server\\x`) or with a `..` component. (Names may still
/// hold `/` for a subfolder, which only ever matches a listed file.)
pub fn check_plain_name(name: &str, kind: &str) -> Result<()> {
    let unified = name.replace('\\', "/");
    let drive = unified.len() >= 2
        && unified.as_bytes()[0].is_ascii_alphabetic()
        && unified.as_bytes()[1] == b':';
    if unified.starts_with('/')
        || drive
        || unified.split('/').any(|c| c.trim() == "..")
        || name.contains('\0')
    {
        return Err(Error::Invalid(format!(
            "{kind} `{name}` is a path, not a name: names from infotexts, prompts and requests \
             are looked up only inside the models folder"
        )));
    }
    Ok(())
}

/// `final-pruned [925997e9]` → (`final-pruned`, Some(`925997e9`)); A1111 v1.x titles carry
/// the AutoV2 hash (`final-pruned.safetensors [4ba1a6e4b1]`).
fn split_title(name: &str) -> (&str, Option<&str>) {
    if let Some(open) = name.rfind(" [") {
        if let Some(hash) = name[open + 2..].strip_suffix(']') {
            if is_model_hash(hash) {
                return (name[..open].trim_end(), Some(hash));
            }
        }
    }
    (name, None)
}

/// A hash A1111 writes or shows for a checkpoint: legacy (8 hex), AutoV2 (10) or the
/// whole sha256 (64).
fn is_model_hash(s: &str) -> bool {
    matches!(s.len(), 8 | 10 | 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The checkpoint with this hash. Legacy hashes read 64 KiB of each file; a sha256 prefix
/// (AutoV2) is looked up among the hashes already known (Easel's hash cache, which
/// `easel hash` and the server fill), as A1111 matches only the sha256s it has computed:
/// hashing every file of a folder on a paste would read gigabytes.
fn find_by_hash(all: &[PathBuf], hash: &str) -> Result<Option<PathBuf>> {
    let hash = hash.to_ascii_lowercase();
    if hash.len() == 8 {
        return find_by_legacy_hash(all, &hash);
    }
    let Some(cache) = super::HashCache::default_path().map(|p| super::HashCache::load(&p)) else {
        return Ok(None);
    };
    Ok(all
        .iter()
        .find(|p| cache.get(p).is_some_and(|h| h.sha256.starts_with(&hash)))
        .cloned())
}

fn relative_name(p: &Path, root: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The checkpoint whose relative file name contains `wanted`, the shortest such name first.
fn find_by_substring(all: &[PathBuf], root: &Path, wanted: &str) -> Option<PathBuf> {
    let wanted = wanted.replace('\\', "/");
    if wanted.is_empty() {
        return None;
    }
    all.iter()
        .map(|p| (relative_name(p, root), p))
        .filter(|(rel, _)| rel.contains(&wanted))
        .min_by_key(|(rel, _)| rel.len())
        .map(|(_, p)| p.clone())
}

fn find_by_legacy_hash(all: &[PathBuf], hash: &str) -> Result<Option<PathBuf>> {
    let hash = hash.to_ascii_lowercase();
    for p in all {
        if super::hash::legacy_model_hash(p)? == hash {
            return Ok(Some(p.clone()));
        }
    }
    Ok(None)
}

fn find_by_name(all: &[PathBuf], root: &Path, wanted: &str) -> Option<PathBuf> {
    let wanted = wanted.replace('\\', "/");
    all.iter()
        .find(|p| {
            let rel = p
                .strip_prefix(root)
                .unwrap_or(p)
                .to_string_lossy()
                .replace('\\', "/");
            let rel_noext = rel
                .rsplit_once('.')
                .map(|(a, _)| a.to_string())
                .unwrap_or(rel.clone());
            rel == wanted
                || rel_noext == wanted
                || stem(p) == wanted
                || p.file_name().is_some_and(|f| f.to_string_lossy() == wanted)
        })
        .cloned()
}

/// The sidecar files of `checkpoint` and the VAE chosen by `vae`.
pub fn checkpoint_files(
    models: &Path,
    checkpoint: &Path,
    vae: &VaeChoice,
) -> Result<CheckpointFiles> {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    let stem = stem(checkpoint);
    let config = Some(dir.join(format!("{stem}.yaml"))).filter(|p| p.is_file());
    let vae = match vae {
        VaeChoice::Builtin => None,
        VaeChoice::Auto => VAE_SUFFIXES
            .iter()
            .map(|s| dir.join(format!("{stem}{s}")))
            .find(|p| p.is_file()),
        VaeChoice::Named(name) => Some(resolve_vae(models, name)?),
    };
    Ok(CheckpointFiles {
        checkpoint: checkpoint.to_path_buf(),
        config,
        vae,
    })
}

/// A VAE by path, or by file name / stem in `models/VAE/` or `models/Stable-diffusion/`.
pub fn resolve_vae(models: &Path, name: &str) -> Result<PathBuf> {
    let p = Path::new(name);
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    let mut candidates = Vec::new();
    for sub in ["VAE", "Stable-diffusion"] {
        collect(&models.join(sub), &mut candidates, &|p| {
            has_ext(p, &["pt", "ckpt", "safetensors"])
        });
    }
    candidates.sort();
    let trimmed = |p: &Path| {
        let f = p
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        let no_ext = f
            .rsplit_once('.')
            .map(|(a, _)| a.to_string())
            .unwrap_or(f.clone());
        (f, no_ext.trim_end_matches(".vae").to_string(), no_ext)
    };
    candidates
        .iter()
        .find(|c| {
            let (f, short, no_ext) = trimmed(c);
            f == name || short == name || no_ext == name
        })
        .cloned()
        .ok_or_else(|| {
            Error::Invalid(format!(
                "VAE `{name}` is neither a file nor in {}",
                models.join("VAE").display()
            ))
        })
}

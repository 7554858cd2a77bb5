//! `easel import`: lays a model release folder out as an A1111 `models/` tree.
//!
//! What is recognised (anywhere below the source folder):
//! * `<name>/model.ckpt` (or `model.safetensors`) → `Stable-diffusion/<name>.ckpt`, with the
//!   `config.yaml` beside it → `Stable-diffusion/<name>.yaml`;
//! * a `.pt`/`.ckpt`/`.safetensors` whose name contains `vae`, outside `modules` folders →
//!   the release's VAE, linked as `Stable-diffusion/<name>.vae.pt` for the chosen checkpoints
//!   (by default every checkpoint: A1111 picks a VAE per checkpoint by file name, and a
//!   release ships one VAE for all its models);
//! * `.pt` files inside a folder named `modules` → `hypernetworks/<file>`;
//! * everything else is listed as ignored (e.g. NovelAI's `vector_adjust/v2.pt`).
//!
//! With a `sha256sum` list in the source folder (or given), the list's detached OpenPGP
//! signature (`sha256sum.sig` / `.asc`) is checked first, over the exact bytes that are then
//! parsed ([`super::signature`]): a signature that fails, or is missing when one is asked
//! for, is an error before anything is written (unless the policy allows unsigned lists).
//! Then every file is verified before it is placed; a file that mismatches, is unreadable or is not listed is reported and nothing
//! is placed for it (nor for the rest of its checkpoint). Paths from the list are only
//! followed when they are plain relative paths. Nothing is written outside the models
//! folder, and an existing file is replaced only with `force`; conflicts are found before
//! anything is written.

use super::checksum::{check_entry, parse_checksum_bytes, CheckResult, CheckStatus, ChecksumList};
use super::signature::{check_list_signature, SignaturePolicy, SignatureStatus};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Names a checksum list is looked for under, in the source folder.
const CHECKSUM_NAMES: [&str; 4] = ["sha256sum", "sha256sums", "SHA256SUMS", "sha256sum.txt"];

/// How files get into the models folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LinkMode {
    /// A hard link (no extra space, survives moving the source), or a symbolic link where
    /// a hard link is impossible (another filesystem).
    #[default]
    Link,
    Symlink,
    Copy,
}

/// Whether files are checked against a checksum list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Verify {
    /// When a list is present.
    #[default]
    Auto,
    /// A list must be present.
    Required,
    Off,
}

/// Which checkpoints get the release's VAE.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum VaeTargets {
    #[default]
    All,
    None,
    /// Checkpoint names (the folder names of `<name>/model.ckpt`).
    Named(Vec<String>),
}

#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    pub mode: LinkMode,
    /// Plan and verify only; write nothing.
    pub dry_run: bool,
    pub verify: Verify,
    /// Replace existing files in the models folder.
    pub force: bool,
    pub vae_for: VaeTargets,
    /// Which VAE file (path relative to the source, or file name) when there are several.
    pub vae: Option<String>,
    /// A checksum list elsewhere than the source folder.
    pub checksums: Option<PathBuf>,
    /// How the list's OpenPGP signature is checked.
    pub signature: SignaturePolicy,
}

/// What a planned file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    Checkpoint,
    Config,
    Vae,
    Hypernetwork,
}

/// What happened (or, in a dry run, would happen) to one planned file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    /// Dry run: would be placed.
    Planned,
    /// Placed, by `hardlink`, `symlink` or `copy`.
    Placed(&'static str),
    /// The destination already is this file.
    AlreadyPresent,
    /// Dry run: the destination exists and `force` was not given.
    Conflict,
    /// Not placed (reason).
    Skipped(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedFile {
    pub kind: ItemKind,
    /// Source path relative to the source folder, `/`-separated.
    pub source: String,
    /// Destination relative to the models folder, `/`-separated.
    pub dest: String,
    pub status: FileStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub files: Vec<PlannedFile>,
    /// Verification verdicts (by source file) and problems of the checksum list itself.
    pub checks: Vec<CheckResult>,
    /// Source files not imported, with the reason.
    pub ignored: Vec<(String, String)>,
    pub checksum_list: Option<PathBuf>,
    /// The outcome of the list's signature check.
    pub signature: SignatureStatus,
}

impl ImportReport {
    /// Whether every planned file was placed (or already present) and every check passed.
    pub fn is_clean(&self) -> bool {
        self.files.iter().all(|f| {
            matches!(
                f.status,
                FileStatus::Placed(_) | FileStatus::AlreadyPresent | FileStatus::Planned
            )
        }) && self.checks.iter().all(|c| c.status == CheckStatus::Ok)
    }
}

/// A checkpoint group: model file, its config, the VAE it gets.
struct Group {
    name: String,
    model: String,
    config: Option<String>,
}

fn rel_string(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn ext_of(name: &str) -> String {
    Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Every regular file below `root` (symbolic links are listed as ignored, not followed).
fn walk(
    root: &Path,
    rel: &Path,
    files: &mut Vec<String>,
    ignored: &mut Vec<(String, String)>,
) -> Result<()> {
    let dir = root.join(rel);
    let rd = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        let ft = e.file_type().map_err(|err| Error::io(e.path(), err))?;
        if ft.is_symlink() {
            ignored.push((rel_string(&r), "symbolic link (not followed)".into()));
        } else if ft.is_dir() {
            walk(root, &r, files, ignored)?;
        } else if ft.is_file() {
            files.push(rel_string(&r));
        }
    }
    Ok(())
}

/// Scans, verifies and places. Errors: unreadable source, an unknown `--vae`/`--vae-for`
/// name, a required checksum list missing, conflicts without `force` (nothing written), or
/// a models folder that would lead outside itself.
pub fn import_release(
    src: &Path,
    models: &Path,
    options: &ImportOptions,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<ImportReport> {
    if !src.is_dir() {
        return Err(Error::Invalid(format!("{}: not a folder", src.display())));
    }
    let mut report = ImportReport::default();
    let mut files = Vec::new();
    walk(src, Path::new(""), &mut files, &mut report.ignored)?;

    // Checksum list.
    let list_path = match &options.checksums {
        Some(p) => Some(p.clone()),
        None => CHECKSUM_NAMES
            .iter()
            .map(|n| src.join(n))
            .find(|p| p.is_file()),
    };
    let verify = match (options.verify, &list_path) {
        (Verify::Off, _) => false,
        (Verify::Required, None) => {
            return Err(Error::Invalid(format!(
                "{}: no checksum list ({}) to verify against",
                src.display(),
                CHECKSUM_NAMES.join(", ")
            )))
        }
        (_, p) => p.is_some(),
    };
    if !verify && options.signature.wants_signature() {
        return Err(Error::Invalid(
            "a signature check was asked for, but checksum verification is off".into(),
        ));
    }
    // The signature is checked over the very bytes that are parsed, before any file is
    // hashed or placed; a failure ends the import with nothing written.
    let list = match (&list_path, verify) {
        (Some(p), true) => {
            let bytes = std::fs::read(p).map_err(|e| Error::io(p, e))?;
            report.signature =
                check_list_signature(p, &bytes, &options.signature).map_err(|e| {
                    Error::Invalid(format!("signature check failed, nothing was imported: {e}"))
                })?;
            Some(parse_checksum_bytes(&bytes, p)?)
        }
        _ => None,
    };
    report.checksum_list = list_path.clone().filter(|_| verify);
    let list_rel = list_path
        .as_ref()
        .and_then(|p| p.strip_prefix(src).ok())
        .map(rel_string);
    // The signature and key files are part of the release's verification, not model files.
    let verification_files: BTreeSet<String> = match &report.signature {
        SignatureStatus::Verified(v) => [&v.signature_file, &v.key_file]
            .into_iter()
            .filter_map(|p| p.strip_prefix(src).ok())
            .map(rel_string)
            .collect(),
        _ => BTreeSet::new(),
    };

    // Classify.
    let present: BTreeSet<&str> = files.iter().map(String::as_str).collect();
    let mut groups: Vec<Group> = Vec::new();
    let mut vaes = Vec::new();
    let mut hypernets: BTreeMap<String, String> = BTreeMap::new();
    let mut consumed: BTreeSet<String> = BTreeSet::new();
    for f in &files {
        let path = Path::new(f);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let lower = name.to_ascii_lowercase();
        let in_modules = path.parent().is_some_and(|p| {
            p.components().any(|c| {
                c.as_os_str()
                    .to_string_lossy()
                    .eq_ignore_ascii_case("modules")
            })
        });
        if lower == "model.ckpt" || lower == "model.safetensors" {
            let Some(dir) = path
                .parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
            else {
                report.ignored.push((
                    f.clone(),
                    "model file at the top of the source: its folder name is the checkpoint name"
                        .into(),
                ));
                continue;
            };
            if groups.iter().any(|g| g.name == dir) {
                report.ignored.push((
                    f.clone(),
                    format!("a checkpoint named `{dir}` was already found"),
                ));
                continue;
            }
            let parent = path.parent().map(rel_string).unwrap_or_default();
            let config = format!("{parent}/config.yaml");
            let config = present.contains(config.as_str()).then_some(config);
            if let Some(c) = &config {
                consumed.insert(c.clone());
            }
            groups.push(Group {
                name: dir,
                model: f.clone(),
                config,
            });
            consumed.insert(f.clone());
        } else if in_modules && lower.ends_with(".pt") {
            match hypernets.entry(name) {
                std::collections::btree_map::Entry::Occupied(e) => {
                    report.ignored.push((
                        f.clone(),
                        format!("another hypernetwork is already named `{}`", e.key()),
                    ));
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(f.clone());
                    consumed.insert(f.clone());
                }
            }
        } else if !in_modules
            && lower.contains("vae")
            && ["pt", "ckpt", "safetensors"].contains(&ext_of(&lower).as_str())
        {
            vaes.push(f.clone());
            consumed.insert(f.clone());
        }
    }
    for f in &files {
        if consumed.contains(f)
            || list_rel.as_deref() == Some(f.as_str())
            || verification_files.contains(f)
        {
            continue;
        }
        let reason = match ext_of(f).as_str() {
            "pt" | "ckpt" | "safetensors" | "pth" | "bin" => "model file in no recognised place (not <name>/model.ckpt, a VAE, or under modules/)",
            "yaml" => "config without a model.ckpt beside it",
            _ => "not a model file",
        };
        report.ignored.push((f.clone(), reason.into()));
    }

    // The VAE and who gets it.
    let vae = match (&options.vae, vaes.len()) {
        (Some(want), _) => Some(
            vaes.iter()
                .find(|v| {
                    *v == want
                        || Path::new(v)
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy() == *want)
                })
                .cloned()
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "--vae `{want}`: no such VAE in the source (found: {})",
                        list_or_none(&vaes)
                    ))
                })?,
        ),
        (None, 0) => None,
        (None, 1) => Some(vaes[0].clone()),
        (None, _) => {
            return Err(Error::Invalid(format!(
                "several VAE files in the source ({}); choose one with --vae",
                vaes.join(", ")
            )))
        }
    };
    for v in &vaes {
        if Some(v) != vae.as_ref() {
            report
                .ignored
                .push((v.clone(), "VAE not chosen (see --vae)".into()));
        }
    }
    let names: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    let vae_groups: BTreeSet<String> = match &options.vae_for {
        VaeTargets::All => names.iter().cloned().collect(),
        VaeTargets::None => BTreeSet::new(),
        VaeTargets::Named(list) => {
            for n in list {
                if !names.contains(n) {
                    return Err(Error::Invalid(format!(
                        "--vae-for `{n}`: no such checkpoint (found: {})",
                        list_or_none(&names)
                    )));
                }
            }
            list.iter().cloned().collect()
        }
    };

    // Verification, once per source file.
    let mut verdicts: BTreeMap<String, std::result::Result<(), String>> = BTreeMap::new();
    if let (Some(list), Some(lp)) = (&list, &list_path) {
        let base = lp
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut wanted: Vec<&String> = groups
            .iter()
            .flat_map(|g| std::iter::once(&g.model).chain(g.config.as_ref()))
            .chain(vae.as_ref().filter(|_| !vae_groups.is_empty()))
            .chain(hypernets.values())
            .collect();
        wanted.sort();
        wanted.dedup();
        for rel in wanted {
            let verdict = verify_one(src, base, list, rel, progress);
            if let Some(r) = &verdict.1 {
                report.checks.push(r.clone());
            }
            verdicts.insert(rel.clone(), verdict.0);
        }
        for r in &list.rejected {
            report.checks.push(CheckResult {
                line: r.line,
                path: r.text.clone(),
                status: CheckStatus::Refused(r.reason.clone()),
            });
        }
        for e in &list.entries {
            let listed_file = super::checksum::safe_relative_path(&e.path).map(|p| base.join(p));
            if listed_file.is_ok_and(|p| !p.is_file()) {
                report.checks.push(CheckResult {
                    line: e.line,
                    path: e.path.clone(),
                    status: CheckStatus::Missing,
                });
            }
        }
        report
            .checks
            .sort_by(|a, b| (a.line, &a.path).cmp(&(b.line, &b.path)));
    }
    let failed = |rel: &str| verdicts.get(rel).and_then(|v| v.as_ref().err().cloned());

    // The plan.
    let vae_failed = vae.as_deref().and_then(failed);
    for g in &groups {
        let group_failed = failed(&g.model).or_else(|| g.config.as_deref().and_then(failed));
        let skip = |what: &str, why: &Option<String>| {
            why.as_ref()
                .map(|w| FileStatus::Skipped(format!("{what}: {w}")))
        };
        // Files held back because another file of their checkpoint failed: the detail is
        // on that file's own line.
        let held = |what: &str| {
            group_failed
                .as_ref()
                .map(|_| FileStatus::Skipped(what.to_string()))
        };
        let ext = ext_of(&g.model);
        let mut push = |kind, source: &str, dest: String, status: Option<FileStatus>| {
            report.files.push(PlannedFile {
                kind,
                source: source.to_string(),
                dest,
                status: status.unwrap_or(FileStatus::Planned),
            });
        };
        let model_status = skip("failed verification", &failed(&g.model));
        let cfg_status = |c: &str| {
            skip("failed verification", &failed(c))
                .or_else(|| held("its checkpoint failed verification"))
        };
        push(
            ItemKind::Checkpoint,
            &g.model,
            format!("Stable-diffusion/{}.{ext}", g.name),
            model_status.or_else(|| held("its config failed verification")),
        );
        if let Some(c) = &g.config {
            push(
                ItemKind::Config,
                c,
                format!("Stable-diffusion/{}.yaml", g.name),
                cfg_status(c),
            );
        }
        if let (Some(v), true) = (&vae, vae_groups.contains(&g.name)) {
            let status = skip("the VAE failed verification", &vae_failed)
                .or_else(|| held("its checkpoint failed verification"));
            push(
                ItemKind::Vae,
                v,
                format!("Stable-diffusion/{}.vae.{}", g.name, ext_of(v)),
                status,
            );
        }
    }
    for (name, rel) in &hypernets {
        let status = failed(rel).map(|w| FileStatus::Skipped(format!("failed verification: {w}")));
        report.files.push(PlannedFile {
            kind: ItemKind::Hypernetwork,
            source: rel.clone(),
            dest: format!("hypernetworks/{name}"),
            status: status.unwrap_or(FileStatus::Planned),
        });
    }

    place_all(src, models, options, &mut report)?;
    Ok(report)
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Verifies source file `rel` against `list` (whose paths are relative to `base`).
fn verify_one(
    src: &Path,
    base: &Path,
    list: &ChecksumList,
    rel: &str,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> (std::result::Result<(), String>, Option<CheckResult>) {
    let abs = src.join(rel);
    let in_list = abs.strip_prefix(base).ok().map(rel_string).or_else(|| {
        // `base` may be spelled differently (`.` vs a path); compare canonically.
        let (a, b) = (
            std::fs::canonicalize(&abs).ok()?,
            std::fs::canonicalize(base).ok()?,
        );
        a.strip_prefix(b).ok().map(rel_string)
    });
    let Some(entry) = in_list.as_deref().and_then(|r| list.find(r)) else {
        let status = CheckStatus::Refused("not in the checksum list".into());
        return (
            Err("not in the checksum list".into()),
            Some(CheckResult {
                line: 0,
                path: rel.to_string(),
                status,
            }),
        );
    };
    let status = check_entry(base, entry, &mut |d, t| progress(rel, d, t));
    let verdict = match &status {
        CheckStatus::Ok => Ok(()),
        CheckStatus::Mismatch { actual } => Err(format!(
            "sha256 {actual} differs from the list's {}",
            entry.sha256
        )),
        CheckStatus::Missing => Err("missing".into()),
        CheckStatus::Unreadable(m) => Err(m.clone()),
        CheckStatus::Refused(m) => Err(m.clone()),
    };
    (
        verdict,
        Some(CheckResult {
            line: entry.line,
            path: entry.path.clone(),
            status,
        }),
    )
}

/// Whether `dest` already is `source` (same inode, or a symlink to it).
fn same_file(source: &Path, dest: &Path) -> bool {
    if let Ok(target) = std::fs::read_link(dest) {
        let canon = |p: &Path| std::fs::canonicalize(p).ok();
        return canon(&target).is_some() && canon(&target) == canon(source);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(a), Ok(b)) = (std::fs::metadata(source), std::fs::metadata(dest)) {
            return a.dev() == b.dev() && a.ino() == b.ino();
        }
    }
    false
}

/// Checks conflicts, then (unless a dry run) places every planned file.
fn place_all(
    src: &Path,
    models: &Path,
    options: &ImportOptions,
    report: &mut ImportReport,
) -> Result<()> {
    let mut conflicts = Vec::new();
    for f in report
        .files
        .iter_mut()
        .filter(|f| f.status == FileStatus::Planned)
    {
        let dest = models.join(&f.dest);
        if dest.symlink_metadata().is_ok() {
            if same_file(&src.join(&f.source), &dest) {
                f.status = FileStatus::AlreadyPresent;
            } else if !options.force {
                conflicts.push(f.dest.clone());
                if options.dry_run {
                    f.status = FileStatus::Conflict;
                }
            }
        }
    }
    if options.dry_run {
        return Ok(());
    }
    if !conflicts.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: already exists: {} (pass --force to replace; nothing was written)",
            models.display(),
            conflicts.join(", ")
        )));
    }
    std::fs::create_dir_all(models).map_err(|e| Error::io(models, e))?;
    let root = std::fs::canonicalize(models).map_err(|e| Error::io(models, e))?;
    for f in report
        .files
        .iter_mut()
        .filter(|f| f.status == FileStatus::Planned)
    {
        let how = place(&src.join(&f.source), &root, &f.dest, options.mode)?;
        f.status = FileStatus::Placed(how);
    }
    Ok(())
}

/// Places one file at `root/dest` via a temporary name and a rename; refuses a destination
/// folder that resolves outside `root` (e.g. a symlinked `Stable-diffusion`).
fn place(source: &Path, root: &Path, dest: &str, mode: LinkMode) -> Result<&'static str> {
    let rel = super::checksum::safe_relative_path(dest)
        .map_err(|why| Error::Invalid(format!("destination `{dest}`: {why}")))?;
    let target = root.join(&rel);
    let dir = target.parent().unwrap_or(root).to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let real_dir = std::fs::canonicalize(&dir).map_err(|e| Error::io(&dir, e))?;
    if !real_dir.starts_with(root) {
        return Err(Error::Invalid(format!(
            "{}: resolves to {}, outside the models folder; refusing to write there",
            dir.display(),
            real_dir.display()
        )));
    }
    let file_name = rel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = real_dir.join(format!(".{file_name}.{}.import", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let _tracked = crate::io::atomic_file::TempFileGuard::track(&tmp);
    let abs_source = std::fs::canonicalize(source).map_err(|e| Error::io(source, e))?;
    let made = match mode {
        LinkMode::Copy => std::fs::copy(&abs_source, &tmp).map(|_| "copy"),
        LinkMode::Symlink => symlink(&abs_source, &tmp).map(|_| "symlink"),
        LinkMode::Link => std::fs::hard_link(&abs_source, &tmp)
            .map(|_| "hardlink")
            .or_else(|_| symlink(&abs_source, &tmp).map(|_| "symlink")),
    };
    let result = made.and_then(|how| std::fs::rename(&tmp, real_dir.join(&file_name)).map(|_| how));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(real_dir.join(&file_name), e)
    })
}

#[cfg(unix)]
fn symlink(source: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(source, link)
}

#[cfg(windows)]
fn symlink(source: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(source, link)
}

/// No symlinks where there is no filesystem (wasm32); the caller falls back to a copy.
#[cfg(not(any(unix, windows)))]
fn symlink(_source: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

//! Checksum lists as GNU `sha256sum` writes them (`<64 hex>  <path>`, or `<hex> *<path>`
//! in binary mode, or the BSD `SHA256 (<path>) = <hex>` form), and verifying the files
//! they name. Paths come from a file someone else wrote, so only plain relative paths are
//! followed: an absolute path, a drive prefix or a `..` component is refused and reported,
//! never opened. Whether the list itself is the publisher's is the job of its OpenPGP
//! signature ([`super::signature`]).

use super::signature::{check_list_signature, SignaturePolicy, SignatureStatus};
use crate::error::{Error, Result};
use crate::model::hashes::sha256_file;
use std::path::{Component, Path, PathBuf};

/// One usable line of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChecksumEntry {
    /// 1-based line number, for messages.
    pub line: usize,
    /// The path as the list writes it, `/`-separated, relative to the list's folder.
    pub path: String,
    /// Lower-case hex sha256.
    pub sha256: String,
}

/// A line that was not used, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedLine {
    pub line: usize,
    pub text: String,
    pub reason: String,
}

/// A parsed list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChecksumList {
    pub entries: Vec<ChecksumEntry>,
    /// Malformed lines and refused (unsafe) paths.
    pub rejected: Vec<RejectedLine>,
}

impl ChecksumList {
    /// The entry for `rel` (a `/`-separated path relative to the list's folder).
    pub fn find(&self, rel: &str) -> Option<&ChecksumEntry> {
        let want = normalize(rel);
        self.entries.iter().find(|e| normalize(&e.path) == want)
    }
}

/// `./a//b` → `a/b`, for comparing list paths with found paths.
fn normalize(p: &str) -> String {
    p.replace('\\', "/")
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Checks that `p` is a plain relative path that stays below its base folder, and returns
/// it as a `PathBuf`. The error says why not.
pub fn safe_relative_path(p: &str) -> std::result::Result<PathBuf, String> {
    if p.is_empty() {
        return Err("empty path".into());
    }
    if p.contains('\0') {
        return Err("path contains a NUL byte".into());
    }
    let unified = p.replace('\\', "/");
    if unified.starts_with('/') {
        return Err("absolute path".into());
    }
    let b = unified.as_bytes();
    if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic() {
        return Err("path with a drive letter".into());
    }
    let mut out = PathBuf::new();
    for part in unified.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("path leaves the folder (`..`)".into()),
            other => out.push(other),
        }
    }
    // Belt and braces: the platform's own parse must agree that nothing escapes.
    if out.components().any(|c| !matches!(c, Component::Normal(_))) || out.as_os_str().is_empty() {
        return Err("not a plain relative path".into());
    }
    Ok(out)
}

/// Undoes GNU's escaping of names holding `\` or a newline (such lines start with `\`).
fn unescape(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

fn parse_line(raw: &str) -> std::result::Result<(String, String), String> {
    let (escaped, line) = match raw.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let (hash, path) = if let Some(rest) = line.strip_prefix("SHA256 (") {
        let (path, hash) = rest.rsplit_once(") = ").ok_or("malformed BSD-style line")?;
        (hash.trim(), path.to_string())
    } else {
        let (hash, rest) = line.split_once(' ').ok_or("expected `<hash>  <path>`")?;
        let path = rest
            .strip_prefix(' ')
            .or_else(|| rest.strip_prefix('*'))
            .ok_or("expected two spaces (or ` *`) between hash and path")?;
        (hash, path.to_string())
    };
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{hash}` is not a sha256 (64 hex digits)"));
    }
    let path = if escaped {
        unescape(&path).ok_or("bad escape in path")?
    } else {
        path
    };
    Ok((hash.to_ascii_lowercase(), path))
}

/// Parses a list's text. Malformed lines and unsafe paths are collected in `rejected`;
/// blank lines and `#` comments are skipped. `file` names the list in the error returned
/// when not a single line is usable.
pub fn parse_checksum_list(text: &str, file: &str) -> Result<ChecksumList> {
    let mut list = ChecksumList::default();
    let mut nonblank = 0;
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        nonblank += 1;
        let line = i + 1;
        let reject = |reason: String| RejectedLine {
            line,
            text: raw.to_string(),
            reason,
        };
        match parse_line(raw) {
            Err(reason) => list.rejected.push(reject(reason)),
            Ok((sha256, path)) => match safe_relative_path(&path) {
                Err(reason) => list
                    .rejected
                    .push(reject(format!("refused path `{path}`: {reason}"))),
                Ok(_) => list.entries.push(ChecksumEntry { line, path, sha256 }),
            },
        }
    }
    if list.entries.is_empty()
        && nonblank > 0
        && list
            .rejected
            .iter()
            .all(|r| !r.reason.starts_with("refused"))
    {
        return Err(Error::format(
            file,
            "no line is a `<sha256>  <path>` checksum line",
        ));
    }
    Ok(list)
}

/// Reads and parses the list at `path`.
pub fn read_checksum_list(path: &Path) -> Result<ChecksumList> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_checksum_bytes(&bytes, path)
}

/// Parses a list's bytes as read from `path` (named in errors).
pub fn parse_checksum_bytes(bytes: &[u8], path: &Path) -> Result<ChecksumList> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        Error::format(
            path.display().to_string(),
            "checksum list is not UTF-8 text",
        )
    })?;
    parse_checksum_list(text, &path.display().to_string())
}

/// The outcome for one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    /// The file's sha256 differs from the list's.
    Mismatch {
        actual: String,
    },
    /// The list names a file that is not there.
    Missing,
    /// The file could not be read (message).
    Unreadable(String),
    /// The line was malformed or its path unsafe (reason); nothing was opened.
    Refused(String),
}

/// One line's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub line: usize,
    pub path: String,
    pub status: CheckStatus,
}

/// Hashes the file of one entry, relative to `base`.
pub fn check_entry(
    base: &Path,
    entry: &ChecksumEntry,
    progress: &mut dyn FnMut(u64, u64),
) -> CheckStatus {
    let rel = match safe_relative_path(&entry.path) {
        Ok(r) => r,
        Err(reason) => return CheckStatus::Refused(reason),
    };
    let path = base.join(rel);
    if !path.is_file() {
        return CheckStatus::Missing;
    }
    match sha256_file(&path, progress) {
        Ok(actual) if actual == entry.sha256 => CheckStatus::Ok,
        Ok(actual) => CheckStatus::Mismatch { actual },
        Err(e) => CheckStatus::Unreadable(e.to_string()),
    }
}

/// `easel hash --check LIST`: verifies every entry of the list, paths relative to the
/// list's folder. `progress(path, done, total)` reports hashing of each file.
pub fn verify_checksum_list(
    list_path: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Vec<CheckResult>> {
    let list = read_checksum_list(list_path)?;
    Ok(verify_parsed_list(&list, list_folder(list_path), progress))
}

/// `easel hash --check LIST --signature SIG --signer-key KEY`: reads the list once, checks
/// the OpenPGP signature over exactly those bytes (see [`super::signature`]), and only then
/// verifies the entries of what was read. A signature failure is an error (unless the policy
/// allows it), and no file is hashed.
pub fn verify_signed_checksum_list(
    list_path: &Path,
    policy: &SignaturePolicy,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<(SignatureStatus, Vec<CheckResult>)> {
    let bytes = std::fs::read(list_path).map_err(|e| Error::io(list_path, e))?;
    let status = check_list_signature(list_path, &bytes, policy)
        .map_err(|e| Error::Invalid(format!("signature check failed: {e}")))?;
    let list = parse_checksum_bytes(&bytes, list_path)?;
    Ok((
        status,
        verify_parsed_list(&list, list_folder(list_path), progress),
    ))
}

/// The folder a list's paths are relative to.
pub fn list_folder(list_path: &Path) -> &Path {
    list_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Verifies every entry of a parsed list (paths relative to `base`), and reports its
/// rejected lines, in line order.
pub fn verify_parsed_list(
    list: &ChecksumList,
    base: &Path,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Vec<CheckResult> {
    let mut out: Vec<CheckResult> = list
        .rejected
        .iter()
        .map(|r| CheckResult {
            line: r.line,
            path: r.text.clone(),
            status: CheckStatus::Refused(r.reason.clone()),
        })
        .collect();
    for e in &list.entries {
        let status = check_entry(base, e, &mut |d, t| progress(&e.path, d, t));
        out.push(CheckResult {
            line: e.line,
            path: e.path.clone(),
            status,
        });
    }
    out.sort_by_key(|r| r.line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "89d59c3dde4c56c6d5c41da34cc55ce479d93b4007046980934b14db71bdb2a8";

    #[test]
    fn parses_gnu_binary_and_bsd_lines() {
        let text = format!(
            "{H}  a/model.ckpt\n{} *b.pt\r\n\nSHA256 (c d.pt) = {H}\n\\{H}  back\\\\slash\n",
            H.to_uppercase()
        );
        let l = parse_checksum_list(&text, "sums").unwrap();
        let paths: Vec<&str> = l.entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a/model.ckpt", "b.pt", "c d.pt", "back\\slash"]);
        assert!(l.entries.iter().all(|e| e.sha256 == H));
        assert_eq!(l.entries[2].line, 4);
        assert!(l.find("./a//model.ckpt").is_some());
    }

    #[test]
    fn hostile_paths_are_refused_not_followed() {
        let text = format!(
            "{H}  ../etc/passwd\n{H}  /etc/passwd\n{H}  a/../../x\n{H}  C:/x\n{H}  ok.pt\nnot a line\n"
        );
        let l = parse_checksum_list(&text, "sums").unwrap();
        assert_eq!(l.entries.len(), 1);
        assert_eq!(l.rejected.len(), 5);
        assert!(l.rejected[..4]
            .iter()
            .all(|r| r.reason.starts_with("refused")));
        assert!(parse_checksum_list("hello\nworld\n", "sums")
            .unwrap_err()
            .to_string()
            .contains("sums"));
        for bad in ["..", "a/..", "/", "\\\\server\\x", "", "."] {
            assert!(safe_relative_path(bad).is_err(), "{bad}");
        }
        assert_eq!(safe_relative_path("./a/b").unwrap(), PathBuf::from("a/b"));
    }
}

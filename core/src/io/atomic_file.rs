//! An output file that appears complete or not at all: bytes go to a hidden temporary file
//! in the target's folder (so the final rename stays on one filesystem and is atomic), made
//! and renamed by the `tempfile` crate, and deleted if the writer is dropped without
//! [`AtomicFile::commit`] — on an error, a panic or an interrupted run alike. Every file
//! Easel writes (converted checkpoints, safetensors, PNGs, the hash cache) goes through here.
//!
//! A run killed by a signal never drops its writers, so every live temporary file is also
//! listed in a process-wide registry: a front end's Ctrl-C/SIGTERM handler calls
//! [`remove_temp_files`] before exiting. What a `kill -9` or a power cut leaves behind
//! (`.<name>.<pid>-<random>.part`) is swept by the next [`AtomicFile::create`] in the same
//! folder once the process that made it is gone.

use crate::error::{Error, Result};
use std::collections::HashSet;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use tempfile::NamedTempFile;

/// Temporary files being written by this process.
static LIVE_TEMP_FILES: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Keeps `path` in the registry of live temporary files until dropped (a writer removes
/// its own file on drop; the registry is for runs that end by a signal instead).
pub struct TempFileGuard(PathBuf);

impl TempFileGuard {
    pub fn track(path: &Path) -> Self {
        if let Ok(mut live) = LIVE_TEMP_FILES.lock() {
            live.get_or_insert_with(HashSet::new)
                .insert(path.to_path_buf());
        }
        TempFileGuard(path.to_path_buf())
    }
}

impl Drop for TempFileGuard {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE_TEMP_FILES.lock() {
            if let Some(set) = live.as_mut() {
                set.remove(&self.0);
            }
        }
    }
}

/// Deletes every temporary file this process is writing; for a signal handler that is
/// about to end the process (the writers will never run their own cleanup).
pub fn remove_temp_files() {
    // A writer may hold the lock at the moment of the signal; the handler runs on its own
    // thread, so waiting is safe, and the writer releases it within one insert.
    if let Ok(mut live) = LIVE_TEMP_FILES.lock() {
        for path in live.take().unwrap_or_default() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// `std::process::id` panics where there are no processes (wasm); there any id will do.
fn process_id() -> u32 {
    #[cfg(not(target_family = "wasm"))]
    return std::process::id();
    #[cfg(target_family = "wasm")]
    0
}

/// Whether process `pid` is running (Linux: `/proc/<pid>`); `None` where that cannot be
/// told.
fn process_alive(pid: u32) -> Option<bool> {
    let proc_root = Path::new("/proc/self");
    proc_root
        .exists()
        .then(|| Path::new("/proc").join(pid.to_string()).exists())
}

/// Removes `.<base>.<pid>-<any>.part` files in `dir` left by processes that no longer run.
fn sweep_stale(dir: &Path, base: &str) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{base}.");
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".part"))
        else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != process_id() && process_alive(pid) == Some(false) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Write buffer size: large enough that tensor data goes out in big writes.
const BUFFER: usize = 1 << 20;

pub struct AtomicFile {
    target: PathBuf,
    tmp: PathBuf,
    out: Option<BufWriter<NamedTempFile>>,
    _registered: TempFileGuard,
}

impl AtomicFile {
    /// Starts writing `target`. Unless `overwrite`, an existing target is an error and is
    /// never touched. The folder must exist.
    pub fn create(target: &Path, overwrite: bool) -> Result<Self> {
        if !overwrite && target.symlink_metadata().is_ok() {
            return Err(Error::Invalid(format!(
                "{}: already exists (pass --force to replace it)",
                target.display()
            )));
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Invalid(format!("{}: not a file path", target.display())))?;
        sweep_stale(&dir, &base);
        let prefix = format!(".{base}.{}-", process_id());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".part");
        // A temp file is private (0600) by default; the finished file gets the mode any new
        // file gets here (0666 less the umask), as a plain `File::create` would.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let file = builder
            .tempfile_in(&dir)
            .map_err(|e| Error::io(target, e))?;
        let tmp = file.path().to_path_buf();
        Ok(Self {
            target: target.to_path_buf(),
            _registered: TempFileGuard::track(&tmp),
            tmp,
            out: Some(BufWriter::with_capacity(BUFFER, file)),
        })
    }

    /// Writes `bytes` to `target` atomically, replacing an existing file.
    pub fn write_bytes(target: &Path, bytes: &[u8]) -> Result<()> {
        Self::write_with(target, |w| w.write_all(bytes))
    }

    /// Writes `target` atomically (replacing an existing file) with what `fill` writes.
    pub fn write_with(
        target: &Path,
        fill: impl FnOnce(&mut Self) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut file = Self::create(target, true)?;
        fill(&mut file).map_err(|e| file.err(e))?;
        file.commit()
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The hidden temporary file the bytes go to until [`AtomicFile::commit`].
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes, syncs and renames the temporary file over the target.
    pub fn commit(mut self) -> Result<()> {
        let out = self.out.take().expect("writer present until commit");
        let result = (|| -> std::io::Result<()> {
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.as_file().sync_all()?;
            file.persist(&self.target).map_err(|e| e.error)?;
            Ok(())
        })();
        result.map_err(|e| Error::io(&self.target, e))
    }

    /// Maps an I/O error of this file to one naming the target.
    pub fn err(&self, e: std::io::Error) -> Error {
        Error::io(&self.target, e)
    }

    fn writer(&mut self) -> &mut BufWriter<NamedTempFile> {
        self.out.as_mut().expect("writer present until commit")
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer().write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Seek for AtomicFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.writer().seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropped_file_leaves_nothing_and_commit_renames() {
        let dir = std::env::temp_dir().join(format!("easel-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("x.bin");
        {
            let mut f = AtomicFile::create(&target, false).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let mut f = AtomicFile::create(&target, false).unwrap();
        f.write_all(b"whole").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        let err = AtomicFile::create(&target, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("already exists"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn signal_cleanup_and_stale_sweep() {
        let dir = std::env::temp_dir().join(format!("easel-atomic-sig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("y.bin");
        // What a killed run leaves: a temp file of a process that no longer exists (pid
        // 0x7fff_fff0 is above Linux's pid_max) and one of this live process.
        let stale = dir.join(".y.bin.2147483632-k3Xq9z.part");
        let live = dir.join(format!(".y.bin.{}-999.part", std::process::id()));
        std::fs::write(&stale, b"old").unwrap();
        std::fs::write(&live, b"mine").unwrap();
        let mut f = AtomicFile::create(&target, false).unwrap();
        f.write_all(b"data").unwrap();
        if Path::new("/proc/self").exists() {
            assert!(
                !stale.exists(),
                "stale temp file of a dead process was kept"
            );
        }
        assert!(live.exists(), "a live process' temp file was removed");
        // The file being written is in the registry a signal handler empties (calling
        // `remove_temp_files` here would also delete other tests' files), until dropped.
        let tmp = f.temp_path().to_path_buf();
        let tracked = |p: &Path| {
            LIVE_TEMP_FILES
                .lock()
                .unwrap()
                .as_ref()
                .is_some_and(|s| s.contains(p))
        };
        assert!(tmp.exists() && tracked(&tmp));
        drop(f);
        assert!(!tmp.exists() && !tracked(&tmp));
        assert!(!target.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failed_fill_leaves_no_file_and_keeps_the_old_one() {
        let dir = std::env::temp_dir().join(format!("easel-atomic-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("z.png");
        AtomicFile::write_bytes(&target, b"old").unwrap();
        let err = AtomicFile::write_with(&target, |w| {
            w.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("z.png") && err.contains("disk full"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "temp file left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn finished_file_has_the_usual_mode_not_the_temp_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("easel-atomic-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("plain");
        std::fs::File::create(&plain).unwrap();
        let target = dir.join("atomic");
        AtomicFile::write_bytes(&target, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&target), mode(&plain));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

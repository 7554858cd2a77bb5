//! The size of this CPU's per-core level-2 cache, for kernels that size their working
//! blocks to it. Read from Linux's sysfs (`/sys/devices/system/cpu/cpu0/cache/index*/`),
//! which reports it the same way on every vendor; elsewhere, or when it cannot be read,
//! [`DEFAULT_L2_BYTES`].

use std::path::Path;
use std::sync::OnceLock;

/// Assumed where the size cannot be read: the 1 MiB of recent AMD and Intel client cores.
pub const DEFAULT_L2_BYTES: usize = 1 << 20;

/// Bytes of the level-2 cache of CPU 0 (read once).
pub fn l2_bytes() -> usize {
    static L2: OnceLock<usize> = OnceLock::new();
    *L2.get_or_init(|| {
        read_l2_bytes(Path::new("/sys/devices/system/cpu/cpu0/cache")).unwrap_or(DEFAULT_L2_BYTES)
    })
}

/// The level-2 data or unified cache listed under `dir` (sysfs' `index*/level`, `type`
/// and `size` files, the size written like `512K` or `2M`).
fn read_l2_bytes(dir: &Path) -> Option<usize> {
    let read = |p: &Path| std::fs::read_to_string(p).ok().map(|s| s.trim().to_owned());
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let index = entry.path();
        let level = read(&index.join("level"))?;
        let kind = read(&index.join("type"))?;
        if level != "2" || kind == "Instruction" {
            return None;
        }
        parse_size(&read(&index.join("size"))?)
    })
}

/// `512K` → 524288, `2M` → 2097152, `1048576` → 1048576; `None` for anything else or 0.
fn parse_size(text: &str) -> Option<usize> {
    let (digits, unit) = match text.strip_suffix(['K', 'k']) {
        Some(d) => (d, 1 << 10),
        None => match text.strip_suffix(['M', 'm']) {
            Some(d) => (d, 1 << 20),
            None => (text, 1),
        },
    };
    digits
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)?
        .checked_mul(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_sysfs_writes_them() {
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("0K"), None);
        assert_eq!(parse_size("big"), None);
    }

    #[test]
    fn the_level_2_entry_is_found_among_the_others() {
        let dir = tempfile::tempdir().unwrap();
        for (i, (level, kind, size)) in [
            ("1", "Data", "32K"),
            ("1", "Instruction", "64K"),
            ("2", "Unified", "512K"),
            ("3", "Unified", "8192K"),
        ]
        .iter()
        .enumerate()
        {
            let index = dir.path().join(format!("index{i}"));
            std::fs::create_dir(&index).unwrap();
            std::fs::write(index.join("level"), format!("{level}\n")).unwrap();
            std::fs::write(index.join("type"), format!("{kind}\n")).unwrap();
            std::fs::write(index.join("size"), format!("{size}\n")).unwrap();
        }
        assert_eq!(read_l2_bytes(dir.path()), Some(512 << 10));
        assert_eq!(read_l2_bytes(&dir.path().join("missing")), None);
    }
}

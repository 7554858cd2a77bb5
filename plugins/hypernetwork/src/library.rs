//! Finding hypernetworks in an A1111-style models folder and resolving the names users and
//! infotexts give them.
//!
//! A1111 lists `<models>/hypernetworks/**/*.pt` sorted by the lower-cased path and keys each
//! by its file stem (`anime_2` for `anime_2.pt`; a later file with the same stem replaces
//! the earlier one; a file named `None.pt` is never listed). Prompt tags name a stem exactly;
//! the X/Y grid uses "closest name": the shortest stem containing the search text,
//! case-insensitively. Infotexts name the hypernetwork by its `name` entry and give its
//! legacy hash; A1111 finds it by that hash, else by a stem starting with the name.

use crate::hypernetwork::Hypernetwork;
use easel_core::formats::ckpt::load_value;
use easel_core::io::MmapSource;
use easel_core::{Error, Result};
use std::path::{Path, PathBuf};

/// A hypernetwork file found in a models folder.
#[derive(Clone, Debug, PartialEq)]
pub struct HypernetworkEntry {
    /// The file stem: the name A1111 lists and prompt tags use.
    pub name: String,
    pub path: PathBuf,
}

impl HypernetworkEntry {
    /// The `name` entry stored in the file (A1111's `Hypernet` infotext value), reading only
    /// the file's pickle; `None` when the file has none (NovelAI files).
    pub fn stored_name(&self) -> Result<Option<String>> {
        let value = load_value(MmapSource::open_arc(&self.path)?)?;
        Ok(value
            .get("name")
            .and_then(|v| v.as_str())
            .map(str::to_string))
    }

    /// The name for display and infotexts: the stored `name`, else the stem.
    pub fn display_name(&self) -> String {
        self.stored_name()
            .ok()
            .flatten()
            .unwrap_or_else(|| self.name.clone())
    }

    /// A1111's legacy hash of the file, the `Hypernet hash` infotext value.
    pub fn hash(&self) -> Result<String> {
        hypernet_hash(&self.path)
    }

    pub fn load(&self) -> Result<Hypernetwork> {
        Hypernetwork::load(&self.path)
    }
}

/// A1111's `Hypernet hash`: the legacy model hash (sha256 of the 64 KiB at offset 1 MiB,
/// first 8 hex digits; the hash of nothing for files under 1 MiB).
pub fn hypernet_hash(path: &Path) -> Result<String> {
    easel_core::model::legacy_model_hash(path)
}

/// `<models>/hypernetworks/**/*.pt` in A1111's order and with its stem keys.
pub fn list_hypernetworks(models: &Path) -> Vec<HypernetworkEntry> {
    list_in(&models.join("hypernetworks"))
}

/// Hypernetworks under `dir` (recursively), as [`list_hypernetworks`] does for the
/// `hypernetworks` folder.
pub fn list_in(dir: &Path) -> Vec<HypernetworkEntry> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort_by_key(|p| p.to_string_lossy().to_lowercase());
    let mut out: Vec<HypernetworkEntry> = Vec::new();
    for path in files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == "None" {
            continue;
        }
        // Python dict semantics: a repeated key keeps its place and takes the new file.
        match out.iter_mut().find(|e| e.name == name) {
            Some(e) => e.path = path,
            None => out.push(HypernetworkEntry { name, path }),
        }
    }
    out
}

/// Like Python's `glob('**/*.pt', recursive=True)`: hidden files and folders are skipped,
/// the extension is matched case-sensitively; linked folders are entered once (no loops).
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    out.extend(easel_core::model::walk_files(dir, true, &|p| {
        p.extension().is_some_and(|e| e == "pt")
    }));
}

/// A1111's `find_closest_hypernetwork_name`: among names containing `search`
/// (case-insensitively), the shortest; the first listed wins a tie.
pub fn find_closest<'a>(
    entries: &'a [HypernetworkEntry],
    search: &str,
) -> Option<&'a HypernetworkEntry> {
    if search.is_empty() {
        return None;
    }
    let search = search.to_lowercase();
    entries
        .iter()
        .filter(|e| e.name.to_lowercase().contains(&search))
        .min_by_key(|e| e.name.chars().count())
}

/// Resolves a name from `--hypernet` or a prompt tag: an existing file path; else the exact
/// stem (as A1111's prompt tags); else the stem ignoring case; else the closest name (as
/// A1111's X/Y grid). An unknown name is an error listing what is available.
///
/// Only for names the user typed (a CLI flag); names from prompts, infotexts and requests
/// go through [`resolve_name`], which never opens a path.
pub fn resolve(entries: &[HypernetworkEntry], query: &str) -> Result<HypernetworkEntry> {
    let as_path = Path::new(query);
    if as_path.is_file() {
        let name = as_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        return Ok(HypernetworkEntry {
            name,
            path: as_path.to_path_buf(),
        });
    }
    resolve_name(entries, query)
}

/// Resolves a hypernetwork name from outside data only among `entries` (the files listed in
/// the models folder): exact stem, stem ignoring case, closest name. A path is an error.
pub fn resolve_name(entries: &[HypernetworkEntry], query: &str) -> Result<HypernetworkEntry> {
    easel_core::model::check_plain_name(query, "hypernetwork")?;
    let found = entries
        .iter()
        .find(|e| e.name == query)
        .or_else(|| entries.iter().find(|e| e.name.eq_ignore_ascii_case(query)))
        .or_else(|| find_closest(entries, query));
    found.cloned().ok_or_else(|| {
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        Error::Invalid(format!(
            "unknown hypernetwork `{query}` (available: {})",
            if names.is_empty() {
                "none found in the models folder's `hypernetworks/`".to_string()
            } else {
                names.join(", ")
            }
        ))
    })
}

/// Resolves the `Hypernet` / `Hypernet hash` pair of an infotext as A1111's paste does: a
/// file with that legacy hash; else the first whose stem starts with the name
/// (case-insensitively); else one whose stored `name` equals it. (A1111 gives up when a
/// hash is present but matches nothing; Easel goes on to the name.)
pub fn find_for_infotext<'a>(
    entries: &'a [HypernetworkEntry],
    name: &str,
    hash: Option<&str>,
) -> Option<&'a HypernetworkEntry> {
    if let Some(hash) = hash {
        let hash = hash.to_lowercase();
        if let Some(e) = entries.iter().find(|e| e.hash().is_ok_and(|h| h == hash)) {
            return Some(e);
        }
    }
    let lower = name.to_lowercase();
    entries
        .iter()
        .find(|e| e.name.to_lowercase().starts_with(&lower))
        .or_else(|| {
            entries
                .iter()
                .find(|e| e.stored_name().ok().flatten().as_deref() == Some(name))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(names: &[&str]) -> Vec<HypernetworkEntry> {
        names
            .iter()
            .map(|n| HypernetworkEntry {
                name: n.to_string(),
                path: PathBuf::from(format!("/nowhere/{n}.pt")),
            })
            .collect()
    }

    #[test]
    fn closest_name_is_the_shortest_containing_the_search() {
        let e = entries(&["anime_3", "furry_kemono", "anime", "anime_2", "furry"]);
        assert_eq!(find_closest(&e, "ANI").unwrap().name, "anime");
        assert_eq!(find_closest(&e, "kemo").unwrap().name, "furry_kemono");
        assert_eq!(find_closest(&e, "_").unwrap().name, "anime_3");
        assert!(find_closest(&e, "pony").is_none());
        assert!(find_closest(&e, "").is_none());
    }

    #[test]
    fn resolve_prefers_exact_then_case_then_closest() {
        let e = entries(&["anime_2", "Anime", "anime"]);
        assert_eq!(resolve(&e, "anime").unwrap().name, "anime");
        assert_eq!(resolve(&e, "ANIME_2").unwrap().name, "anime_2");
        assert_eq!(resolve(&e, "nime_").unwrap().name, "anime_2");
        let err = resolve(&e, "pony").unwrap_err().to_string();
        assert!(err.contains("`pony`") && err.contains("anime_2"), "{err}");
    }
}

//! `Lora hashes` in the infotext, as A1111 writes it and as its paste reads it.
//!
//! Written: `name: shorthash` for each applied network, joined by `, `, where the name is
//! the one the prompt used with `:` and `,` removed (a later network of the same name
//! replaces the earlier one's hash in place, as a Python dict would).
//!
//! Read back (A1111's `infotext_pasted`): each `<lora:NAME:` of the pasted prompt whose NAME
//! has a hash in the field is renamed to the file of this folder with that short hash, so a
//! PNG made with a differently named copy of the file still finds it. Names with no hash, or
//! whose hash is not in the folder, stay as they are.

use crate::library::LoraEntry;
use std::collections::HashSet;

/// The field's value for the `(name as mentioned, short hash)` pairs; `None` when empty.
pub fn lora_hashes_field(applied: &[(String, String)]) -> Option<String> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, hash) in applied {
        if hash.is_empty() || name.is_empty() {
            continue;
        }
        let name: String = name.chars().filter(|c| *c != ':' && *c != ',').collect();
        match pairs.iter_mut().find(|(n, _)| *n == name) {
            Some(p) => p.1.clone_from(hash),
            None => pairs.push((name, hash.clone())),
        }
    }
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(n, h)| format!("{n}: {h}"))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The `(name, short hash)` pairs of a pasted field (entries without `:` are skipped).
pub fn parse_lora_hashes(field: &str) -> Vec<(String, String)> {
    field
        .split(',')
        .filter_map(|x| x.trim().split_once(':'))
        .map(|(n, h)| (n.trim().to_string(), h.trim().to_string()))
        .collect()
}

/// The pasted prompt with `<lora:NAME:` renamed by the field's hashes (see the module doc).
/// `short_hash` gives an entry's short hash (`None` if it cannot be read).
pub fn rename_by_pasted_hashes(
    prompt: &str,
    field: &str,
    entries: &[LoraEntry],
    short_hash: &mut dyn FnMut(&LoraEntry) -> Option<String>,
) -> String {
    let hashes = parse_lora_hashes(field);
    if hashes.is_empty() {
        return prompt.to_string();
    }
    // Aliases shared by several files are not used for names (A1111's get_alias).
    let mut seen = HashSet::new();
    let mut shared = HashSet::new();
    for e in entries {
        if !seen.insert(e.alias.to_lowercase()) {
            shared.insert(e.alias.to_lowercase());
        }
    }
    let mut known: Vec<(usize, String)> = Vec::new();
    let mut find = |hash: &str| -> Option<String> {
        for (i, e) in entries.iter().enumerate() {
            let h = match known.iter().find(|(j, _)| *j == i) {
                Some((_, h)) => h.clone(),
                None => {
                    let h = short_hash(e).unwrap_or_default();
                    known.push((i, h.clone()));
                    h
                }
            };
            if !h.is_empty() && h == hash {
                return Some(if shared.contains(&e.alias.to_lowercase()) {
                    e.name.clone()
                } else {
                    e.alias.clone()
                });
            }
        }
        None
    };
    let mut out = String::with_capacity(prompt.len());
    let mut rest = prompt;
    while let Some(at) = rest.find("<lora:") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "<lora:".len()..];
        match after.find(':') {
            Some(n) if n > 0 => {
                let name = &after[..n];
                let renamed = hashes
                    .iter()
                    .rev()
                    .find(|(k, _)| k == name)
                    .and_then(|(_, h)| find(h));
                out.push_str("<lora:");
                out.push_str(renamed.as_deref().unwrap_or(name));
                out.push(':');
                rest = &after[n + 1..];
            }
            _ => {
                out.push_str("<lora:");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn field_as_a1111_writes_it() {
        let f = lora_hashes_field(&[
            ("a:b".into(), "0123456789ab".into()),
            ("c,d".into(), "ba9876543210".into()),
            ("a:b".into(), "ffffffffffff".into()),
            ("x".into(), String::new()),
        ]);
        assert_eq!(f.as_deref(), Some("ab: ffffffffffff, cd: ba9876543210"));
        assert_eq!(lora_hashes_field(&[]), None);
    }

    #[test]
    fn paste_renames_by_hash() {
        let entries = vec![LoraEntry {
            name: "local".into(),
            alias: "local".into(),
            path: PathBuf::from("local.safetensors"),
            metadata_hash: None,
        }];
        let mut h = |_: &LoraEntry| Some("0123456789ab".to_string());
        let p = rename_by_pasted_hashes(
            "x <lora:theirs:0.5>, <lora:other:1> <lora:nocolon>",
            "theirs: 0123456789ab, other: 999999999999",
            &entries,
            &mut h,
        );
        assert_eq!(p, "x <lora:local:0.5>, <lora:other:1> <lora:nocolon>");
    }
}

//! The `TI hashes` infotext field: which embeddings a job used, with the short sha256 of
//! each file (`TI hashes: "EasyNegative: 66a7279a88dd, style: 0123456789ab"`).
//!
//! A1111 builds it inside the text encoder: every encoder call (the negative prompt first,
//! then each `AND` part of the prompt) lists the embeddings its chunks used — by chunk, then
//! by text, each name once — with `:` and `,` removed from names, and puts that list in
//! front of what earlier calls wrote. So the last `AND` part comes first, the negative
//! prompt's embeddings last, and an embedding used in both appears twice.

use super::database::EmbeddingDatabase;
use super::file::{split_ext, EmbeddingFileKind, SHORT_HASH_LEN};
use super::folder::embedding_files;
use crate::error::Result;
use crate::model::sha256_file;
use crate::text::{
    prompt_schedule, split_and, tokenize_prompt_with_embeddings, ChunkOptions, TokenizedPrompt,
};
use std::path::Path;

/// The infotext key.
pub const TI_HASHES_KEY: &str = "TI hashes";

/// Names as A1111 writes them into the field.
fn field_name(name: &str) -> String {
    name.replace([':', ','], "")
}

/// The embeddings one encoder call uses, in A1111's order: chunk by chunk, text by text.
fn call_hashes(
    texts: &[String],
    options: ChunkOptions,
    db: &EmbeddingDatabase,
) -> Result<Vec<String>> {
    let tokenized: Vec<TokenizedPrompt> = texts
        .iter()
        .map(|t| tokenize_prompt_with_embeddings(t, options, Some(db)))
        .collect::<Result<_>>()?;
    let chunk_count = tokenized.iter().map(|t| t.chunks.len()).max().unwrap_or(0);
    let mut names: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for i in 0..chunk_count {
        for t in &tokenized {
            for fix in t
                .chunks
                .get(i)
                .map(|c| c.fixes.as_slice())
                .unwrap_or_default()
            {
                let e = &fix.embedding;
                if !names.contains(&e.name) {
                    names.push(e.name.clone());
                    out.push(format!("{}: {}", field_name(&e.name), e.short_hash()));
                }
            }
        }
    }
    Ok(out)
}

/// The `TI hashes` value for a job with this prompt and negative prompt (comments and
/// network tags already removed, as the text encoder sees them) over `steps` steps, or
/// `None` when no embedding is used.
pub fn ti_hashes(
    prompt: &str,
    negative: &str,
    steps: usize,
    options: ChunkOptions,
    db: &EmbeddingDatabase,
) -> Result<Option<String>> {
    let texts = |p: &str| -> Vec<String> {
        prompt_schedule(p, steps)
            .into_iter()
            .map(|s| s.text)
            .collect()
    };
    let mut calls = vec![texts(negative)];
    calls.extend(split_and(prompt).iter().map(|part| texts(&part.text)));
    let mut field: Option<String> = None;
    for call in &calls {
        let mut hashes = call_hashes(call, options, db)?;
        if hashes.is_empty() {
            continue;
        }
        if let Some(earlier) = field.take() {
            hashes.push(earlier);
        }
        field = Some(hashes.join(", "));
    }
    Ok(field)
}

/// `(name, hash)` pairs of a `TI hashes` value; malformed entries are left out.
pub fn parse_ti_hashes(value: &str) -> Vec<(String, String)> {
    value
        .split(", ")
        .filter_map(|entry| {
            let (name, hash) = entry.rsplit_once(": ")?;
            let (name, hash) = (name.trim(), hash.trim());
            (!name.is_empty() && !hash.is_empty()).then(|| (name.to_string(), hash.to_string()))
        })
        .collect()
}

/// Warnings for a `TI hashes` value read back from an infotext against the embeddings in
/// `dir`: a name with no file, or a file whose short hash differs. Generation goes on
/// either way (the prompt decides what is used).
pub fn check_ti_hashes(value: &str, dir: &Path) -> Vec<String> {
    let files = embedding_files(dir);
    let mut warnings = Vec::new();
    for (name, hash) in parse_ti_hashes(value) {
        let matching: Vec<_> = files
            .iter()
            .filter(|p| {
                let file_name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                EmbeddingFileKind::of(file_name).is_some()
                    && field_name(split_ext(file_name).0) == name
            })
            .collect();
        let Some(last) = matching.last() else {
            warnings.push(format!(
                "the infotext used embedding `{name}` ({hash}), which is not in {}",
                dir.display()
            ));
            continue;
        };
        match sha256_file(last, &mut |_, _| {}) {
            Ok(sha) if sha[..SHORT_HASH_LEN].eq_ignore_ascii_case(&hash) => {}
            Ok(sha) => warnings.push(format!(
                "{}: embedding `{name}` has hash {}, the infotext says {hash}",
                last.display(),
                &sha[..SHORT_HASH_LEN]
            )),
            Err(e) => warnings.push(e.to_string()),
        }
    }
    warnings
}

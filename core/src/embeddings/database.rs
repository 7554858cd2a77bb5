//! The set of embeddings a prompt can use, matched on token ids as A1111's
//! `EmbeddingDatabase` does.
//!
//! Each name is tokenized with the CLIP tokenizer (so matching ignores case and follows the
//! tokenizer's word splitting, not the characters). Candidates are indexed by their first
//! token id, longest first; at a prompt position the first candidate whose ids all follow is
//! the match. Registration rules, all A1111's:
//! - a vector width other than the text encoder's hidden size is skipped (listed, not used);
//! - a second file with the same name replaces the first (the later file in scan order);
//! - two names that tokenize alike (`Bad` and `bad`) both stay listed, but the one
//!   registered first wins the match (a stable sort by length keeps it ahead);
//! - a name that tokenizes to nothing cannot be registered (an error for that file).

use super::file::Embedding;
use crate::error::{Error, Result};
use crate::text::tokenize;
use std::collections::HashMap;
use std::sync::Arc;

/// One name in the token-id index: its token ids and the embedding it stands for.
type Candidate = (Vec<u32>, Arc<Embedding>);

/// Embeddings by name, with A1111's token-id index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EmbeddingDatabase {
    /// Width the text encoder takes; other widths are skipped.
    width: usize,
    /// Registered embeddings in registration order.
    registered: Vec<Arc<Embedding>>,
    /// Embeddings of the wrong width, by name (a later one of the same name replaces it).
    skipped: Vec<Arc<Embedding>>,
    /// First token id → (ids of the name, embedding), longest ids first.
    ids_lookup: HashMap<u32, Vec<Candidate>>,
    /// Files that could not be read, as messages naming them.
    errors: Vec<String>,
}

impl EmbeddingDatabase {
    /// An empty database for a text encoder of hidden size `width`.
    pub fn new(width: usize) -> Self {
        Self {
            width,
            ..Self::default()
        }
    }

    /// The hidden size embeddings must have.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Adds `embedding` as A1111 does: registered when its width fits, else kept in the
    /// skipped list. Fails (naming the file) only when its name has no tokens.
    pub fn add(&mut self, embedding: Embedding) -> Result<()> {
        let embedding = Arc::new(embedding);
        if embedding.width != self.width
            || embedding.data.len() != embedding.vectors * embedding.width
        {
            self.skipped.retain(|e| e.name != embedding.name);
            self.skipped.push(embedding);
            return Ok(());
        }
        let ids = tokenize(&embedding.name);
        let Some(&first) = ids.first() else {
            return Err(Error::format(
                embedding.path.display().to_string(),
                format!("embedding name `{}` has no tokens", embedding.name),
            ));
        };
        let replaced = self.registered.iter().any(|e| e.name == embedding.name);
        let list = self.ids_lookup.entry(first).or_default();
        if replaced {
            list.retain(|(_, e)| e.name != embedding.name);
            self.registered.retain(|e| e.name != embedding.name);
        }
        list.push((ids, embedding.clone()));
        // Stable: among equally long names the one registered first stays ahead.
        list.sort_by_key(|(ids, _)| std::cmp::Reverse(ids.len()));
        self.registered.push(embedding);
        Ok(())
    }

    /// Records a file that could not be read (the message names it).
    pub fn push_error(&mut self, message: String) {
        self.errors.push(message);
    }

    /// The embedding whose name's token ids start at `tokens[offset]`, longest first, with
    /// the number of prompt tokens it covers.
    pub fn find_at(&self, tokens: &[u32], offset: usize) -> Option<(&Arc<Embedding>, usize)> {
        let candidates = self.ids_lookup.get(tokens.get(offset)?)?;
        candidates
            .iter()
            .find(|(ids, _)| tokens[offset..].starts_with(ids))
            .map(|(ids, e)| (e, ids.len()))
    }

    /// A registered embedding by exact name.
    pub fn get(&self, name: &str) -> Option<&Arc<Embedding>> {
        self.registered.iter().find(|e| e.name == name)
    }

    /// Registered embeddings in A1111's listing order (by lower-cased name).
    pub fn embeddings(&self) -> Vec<&Arc<Embedding>> {
        let mut v: Vec<_> = self.registered.iter().collect();
        v.sort_by_key(|e| e.name.to_lowercase());
        v
    }

    /// Embeddings left out because their width does not fit the text encoder.
    pub fn skipped(&self) -> &[Arc<Embedding>] {
        &self.skipped
    }

    /// Messages for files that could not be read.
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// One warning line per skipped embedding and per unreadable file, for front ends to
    /// print (A1111 prints the same facts when it loads the folder).
    pub fn warnings(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .skipped
            .iter()
            .map(|e| {
                format!(
                    "{}: embedding `{}` skipped: its vectors are {} wide, the text encoder takes {}",
                    e.path.display(),
                    e.name,
                    e.width,
                    self.width
                )
            })
            .collect();
        out.extend(
            self.errors
                .iter()
                .map(|e| format!("error loading embedding {e}")),
        );
        out
    }

    pub fn is_empty(&self) -> bool {
        self.registered.is_empty()
    }
}

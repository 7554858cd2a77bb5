//! Hypernetworks for the generation service from an A1111 models folder
//! (`models/hypernetworks`): requests and `<hypernet:NAME:S>` prompt tags are resolved by
//! A1111's naming rules, and each file is read and uploaded once, then kept for later jobs.
//! Prompt tags are outside data and resolve only to files in the folder; requests may be
//! paths only where the front end says its user typed them (the CLI's `--hypernet`).

use crate::hook::{HypernetworkStack, LoadedHypernetwork};
use crate::hypernetwork::Hypernetwork;
use crate::infotext::infotext_fields;
use crate::library::{list_hypernetworks, resolve, resolve_name};
use crate::prompt_tags::extract_hypernet_tags;
use easel_core::nn::AttentionHook;
use easel_core::service::{NetworkProvider, NetworkSetting, PreparedNetworks};
use easel_core::{Backend, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

pub struct FolderHypernetworks<B: Backend> {
    models: PathBuf,
    loaded: HashMap<PathBuf, (Hypernetwork, Arc<LoadedHypernetwork<B>>)>,
    /// Whether a requested name may be a file path (see the module doc).
    request_paths: bool,
}

impl<B: Backend> FolderHypernetworks<B> {
    /// Requests and prompt tags resolve only to files in `models`.
    pub fn new(models: impl Into<PathBuf>) -> Self {
        Self {
            models: models.into(),
            loaded: HashMap::new(),
            request_paths: false,
        }
    }

    /// Let requests (not prompt tags) name a file path, for a front end whose requests come
    /// from its own user (a command line), never from a PNG, prompt or HTTP request.
    pub fn with_request_paths(mut self) -> Self {
        self.request_paths = true;
        self
    }

    /// Look in another models folder from now on (files already loaded stay cached).
    pub fn set_models_folder(&mut self, models: impl Into<PathBuf>) {
        self.models = models.into();
    }

    /// Forget every loaded file (A1111's refresh).
    pub fn clear(&mut self) {
        self.loaded.clear();
    }
}

impl<B: Backend + 'static> NetworkProvider<B> for FolderHypernetworks<B> {
    fn prepare(
        &mut self,
        backend: &B,
        prompt: &str,
        requested: &[NetworkSetting],
    ) -> Result<PreparedNetworks<B>> {
        let (clean_prompt, tags) = extract_hypernet_tags(prompt)?;
        let wanted: Vec<(String, f32, bool)> = requested
            .iter()
            .map(|r| (r.name.clone(), r.strength, self.request_paths))
            .chain(tags.into_iter().map(|t| (t.name, t.strength, false)))
            .collect();
        if wanted.is_empty() {
            return Ok(PreparedNetworks {
                prompt: clean_prompt,
                hook: None,
                infotext: Vec::new(),
            });
        }
        let entries = list_hypernetworks(&self.models);
        let mut applied = Vec::new();
        for (name, strength, path_allowed) in &wanted {
            let entry = if *path_allowed {
                resolve(&entries, name)?
            } else {
                resolve_name(&entries, name)?
            };
            if !self.loaded.contains_key(&entry.path) {
                let hn = entry.load()?;
                let device = Arc::new(LoadedHypernetwork::upload(backend, &hn)?);
                self.loaded.insert(entry.path.clone(), (hn, device));
            }
            applied.push((entry.path.clone(), *strength));
        }
        let stack = HypernetworkStack::new(
            applied
                .iter()
                .map(|(p, s)| (self.loaded[p].1.clone(), *s))
                .collect(),
        );
        // Only the requested ones get `Hypernet` keys: a tag stays in the infotext's prompt,
        // and A1111 1.x turns a pasted `Hypernet` key into one more tag, so writing both
        // would apply the hypernetwork twice there.
        let infotext = infotext_fields(
            &applied[..requested.len()]
                .iter()
                .map(|(p, s)| (&self.loaded[p].0, *s))
                .collect::<Vec<_>>(),
        )?;
        let hook: Box<dyn AttentionHook<B>> = Box::new(stack);
        Ok(PreparedNetworks {
            prompt: clean_prompt,
            hook: Some(hook),
            infotext,
        })
    }
}

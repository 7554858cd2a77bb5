//! Hypernetworks picked by the user, kept on the GPU between generations, and resolved by
//! name the way the CLI does for `--hypernet NAME[:STRENGTH]` and `<hypernet:NAME:S>` tags.

use crate::blob_source::BlobSource;
use easel_core::formats::open_tensor_store_from;
use easel_core::model::legacy_model_hash_of;
use easel_core::nn::AttentionHook;
use easel_core::service::{NetworkProvider, NetworkSetting, PreparedNetworks};
use easel_core::{Error, Result};
use easel_hypernetwork::{
    extract_hypernet_tags, Hypernetwork, HypernetworkStack, LoadedHypernetwork,
};
use easel_wgpu::WgpuBackend;
use std::sync::Arc;
use web_sys::File;

/// One hypernetwork file as loaded: parsed, on the device, with its file stem and hash.
pub struct PickedHypernet {
    /// File stem (`anime` for `anime.pt`), the name prompts use.
    pub stem: String,
    pub hash: String,
    pub parsed: Hypernetwork,
    pub device: Arc<LoadedHypernetwork<WgpuBackend>>,
}

impl PickedHypernet {
    pub fn load(b: &WgpuBackend, file: &File) -> Result<Self> {
        let name = file.name();
        let source = BlobSource::of_file(file)?;
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        let store = open_tensor_store_from(source.clone(), ext)?;
        let stem = name
            .rsplit_once('.')
            .map(|(s, _)| s)
            .unwrap_or(&name)
            .to_string();
        let parsed = Hypernetwork::from_store(&store, &stem)?;
        let device = Arc::new(LoadedHypernetwork::upload(b, &parsed)?);
        Ok(Self {
            stem,
            hash: legacy_model_hash_of(source.as_ref())?,
            parsed,
            device,
        })
    }
}

/// The picked hypernetwork a request names: by file stem, then by stored name
/// (case-insensitive), as A1111's lookup does for the files it lists.
pub fn find<'a>(picked: &'a [PickedHypernet], name: &str) -> Result<&'a PickedHypernet> {
    let wanted = name.trim();
    picked
        .iter()
        .find(|h| h.stem == wanted)
        .or_else(|| picked.iter().find(|h| h.stem.eq_ignore_ascii_case(wanted)))
        .or_else(|| {
            picked
                .iter()
                .find(|h| h.parsed.name.eq_ignore_ascii_case(wanted))
        })
        .ok_or_else(|| {
            let known: Vec<&str> = picked.iter().map(|h| h.stem.as_str()).collect();
            Error::Invalid(format!(
                "hypernetwork `{wanted}` is not loaded (loaded: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
}

/// The infotext entries for the hypernetworks applied: the plugin's `Hypernet` and
/// `Hypernet strength`, with `Hypernet hash` from the files' bytes (they have no path).
pub fn infotext_entries(applied: &[(&PickedHypernet, f32)]) -> Result<Vec<(String, String)>> {
    let parsed: Vec<(&Hypernetwork, f32)> = applied.iter().map(|(h, s)| (&h.parsed, *s)).collect();
    let mut fields = easel_hypernetwork::infotext_fields(&parsed)?;
    if !applied.is_empty() {
        let hashes: Vec<&str> = applied.iter().map(|(h, _)| h.hash.as_str()).collect();
        fields.insert(1, ("Hypernet hash".to_string(), hashes.join(", ")));
    }
    Ok(fields)
}

/// The hypernetworks the user picked, as the generation service's network provider: form
/// choices and `<hypernet:NAME:S>` tags are looked up among them.
pub struct PickedHypernets(pub Vec<PickedHypernet>);

impl NetworkProvider<WgpuBackend> for PickedHypernets {
    fn prepare(
        &mut self,
        _backend: &WgpuBackend,
        prompt: &str,
        requested: &[NetworkSetting],
    ) -> Result<PreparedNetworks<WgpuBackend>> {
        // Hypernetwork tags are taken out of the text the encoder sees, as in the CLI.
        let (clean_prompt, tags) = extract_hypernet_tags(prompt)?;
        let mut applied: Vec<(&PickedHypernet, f32)> = Vec::new();
        for (name, strength) in requested
            .iter()
            .map(|r| (r.name.as_str(), r.strength))
            .chain(tags.iter().map(|t| (t.name.as_str(), t.strength)))
        {
            applied.push((find(&self.0, name)?, strength));
        }
        // Tags stay in the prompt; only form choices get `Hypernet` keys (A1111 1.x would
        // apply a tag and a key twice).
        let infotext = infotext_entries(&applied[..requested.len()])?;
        let hook: Option<Box<dyn AttentionHook<WgpuBackend>>> = if applied.is_empty() {
            None
        } else {
            Some(Box::new(HypernetworkStack::new(
                applied
                    .iter()
                    .map(|(h, s)| (h.device.clone(), *s))
                    .collect(),
            )))
        };
        Ok(PreparedNetworks {
            prompt: clean_prompt,
            hook,
            infotext,
        })
    }
}

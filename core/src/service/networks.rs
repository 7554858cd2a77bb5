//! The seams through which a front end plugs extra networks into the service: attention
//! networks (hypernetworks) through a [`NetworkProvider`], weight patches (LoRA) through a
//! [`WeightPatchProvider`]. Core cannot name the plugin crates, so the front end hands the
//! service its providers: on the command line and the server ones that read a models
//! folder, in the browser ones over the files the user picked.

use super::settings::NetworkSetting;
use crate::nn::{AttentionHook, SharedWeightPatch};
use crate::text::ExtraNetworkTag;
use crate::{Backend, Result};

/// What a provider readied for one job.
pub struct PreparedNetworks<B: Backend> {
    /// The prompt the text encoder sees: the provider's tags taken out.
    pub prompt: String,
    /// The hook that applies every requested network (`None` when none was asked for).
    pub hook: Option<Box<dyn AttentionHook<B>>>,
    /// Infotext entries naming what was applied (`Hypernet`, `Hypernet hash`, ...).
    pub infotext: Vec<(String, String)>,
}

pub trait NetworkProvider<B: Backend> {
    /// Takes the tags this provider reads out of `prompt` and readies (loads, uploads,
    /// caches) what those tags and `requested` name. An unknown name is an error naming it.
    fn prepare(
        &mut self,
        backend: &B,
        prompt: &str,
        requested: &[NetworkSetting],
    ) -> Result<PreparedNetworks<B>>;
}

/// What a weight-patch provider (LoRA) readied for one job.
pub struct PreparedPatch {
    /// Names the requested set (files, multipliers): the service loads the model again only
    /// when this changes. Empty when nothing is applied.
    pub key: String,
    /// The change to the weights (`None` when nothing is applied).
    pub patch: Option<SharedWeightPatch>,
    /// Infotext entries (`Lora hashes`).
    pub infotext: Vec<(String, String)>,
    /// What was skipped and why (a name not found, another architecture's file, …); A1111
    /// goes on generating in these cases, and so does the service.
    pub warnings: Vec<String>,
    /// Tags for the networks the front end asked for outside the prompt, appended to the
    /// infotext's prompt (A1111 appends such networks to the prompt itself).
    pub prompt_tags: String,
}

impl PreparedPatch {
    /// Nothing to apply.
    pub fn none() -> Self {
        Self {
            key: String::new(),
            patch: None,
            infotext: Vec::new(),
            warnings: Vec::new(),
            prompt_tags: String::new(),
        }
    }
}

/// The seam for networks that change weights at load (LoRA, LyCORIS). The service has
/// already removed every extra-network tag from the prompt and hands over the tags of the
/// kinds this provider reads.
pub trait WeightPatchProvider {
    /// The tag kinds this provider reads (`lora`, `lyco`).
    fn kinds(&self) -> Vec<String>;

    /// Readies the patch that `tags` (in prompt order) and `requested` (the front end's
    /// own list, e.g. `--lora`, applied first) ask for.
    fn prepare(
        &mut self,
        tags: &[ExtraNetworkTag],
        requested: &[NetworkSetting],
    ) -> Result<PreparedPatch>;
}

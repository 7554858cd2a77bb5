//! The seam through which a front end plugs attention networks (hypernetworks today) into the
//! service. Core cannot name the plugin crates, so the front end hands the service a
//! [`NetworkProvider`]: on the command line and the server one that reads a models folder,
//! in the browser one over the files the user picked.

use super::settings::NetworkSetting;
use crate::nn::AttentionHook;
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

//! How this crate's samplers whose function has an `eta` argument take A1111's "Eta for
//! ancestral samplers" (default 1) and report it: `Eta` is written when it is not 1.

use easel_core::sampler::Sampler;
use easel_core::sampler_params::SamplerParams;
use std::sync::Arc;

/// `sampler` with the user's eta (stored by `set_eta`), or `None` when none was given.
pub(crate) fn with_eta<S: Sampler + Clone + 'static>(
    sampler: &S,
    params: &SamplerParams,
    set_eta: impl FnOnce(&mut S, f32),
) -> Option<Arc<dyn Sampler>> {
    let mut tuned = sampler.clone();
    set_eta(&mut tuned, params.eta?);
    Some(Arc::new(tuned))
}

/// The infotext field for `eta`, if it is not A1111's default.
pub(crate) fn eta_infotext(eta: f32) -> Vec<(&'static str, f32)> {
    if eta == 1.0 {
        Vec::new()
    } else {
        vec![("Eta", eta)]
    }
}

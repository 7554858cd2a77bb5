//! How this crate's samplers take A1111's tunable parameters ([`SamplerParams`]) and
//! report the non-default ones for the infotext.

use easel_core::sampler::Sampler;
use easel_core::sampler_params::SamplerParams;
use std::sync::Arc;

/// A sampler whose function has an `eta` argument: A1111 passes it "Eta for ancestral
/// samplers" (default 1) and writes `Eta` when it is not 1.
pub(crate) trait EtaSampler: Sampler + Clone + 'static {
    fn eta(&self) -> f32;
    fn set_eta(&mut self, eta: f32);

    fn with_eta(&self, params: &SamplerParams) -> Option<Arc<dyn Sampler>> {
        let mut tuned = self.clone();
        tuned.set_eta(params.eta?);
        Some(Arc::new(tuned))
    }

    fn eta_infotext(&self) -> Vec<(&'static str, f32)> {
        if self.eta() == 1.0 {
            Vec::new()
        } else {
            vec![("Eta", self.eta())]
        }
    }
}

//! A1111's schedule types ("Schedule type" in the infotext), one file each. Every
//! schedule follows `modules/sd_schedulers.py` and the k-diffusion `get_sigmas_*`
//! functions it calls, with torch's f32 arithmetic where torch does the work.

mod align_your_steps;
mod automatic;
mod beta;
mod ddim;
mod exponential;
mod karras;
mod kl_optimal;
mod normal;
mod polyexponential;
mod sgm_uniform;
mod simple;
mod uniform;

pub use align_your_steps::AlignYourSteps;
pub use automatic::Automatic;
pub use beta::Beta;
pub use ddim::DdimSchedule;
pub use exponential::Exponential;
pub use karras::{karras_sigmas, Karras};
pub use kl_optimal::KlOptimal;
pub use normal::Normal;
pub use polyexponential::Polyexponential;
pub use sgm_uniform::SgmUniform;
pub use simple::Simple;
pub use uniform::Uniform;

/// σ_min and σ_max of the model as A1111 passes them (`sigmas[0].item()`, f64).
pub(crate) fn model_range(model: &easel_core::schedule::DiscreteSchedule) -> (f64, f64) {
    (model.sigma_min() as f64, model.sigma_max() as f64)
}

//! k-diffusion samplers as Easel plugins. Each sampler is one file with the same shape as
//! the function in k-diffusion's `sampling.py`: a loop over σ calling the denoiser.

pub mod euler;
pub mod euler_ancestral;
mod math;

pub use euler::Euler;
pub use euler_ancestral::EulerAncestral;

use easel_core::registry::SamplerRegistry;
use std::sync::Arc;

/// Register every sampler this crate provides.
pub fn register_all(reg: &mut SamplerRegistry) {
    reg.register(Arc::new(Euler), &["k_euler"]);
    reg.register(Arc::new(EulerAncestral::default()), &["k_euler_a", "euler_ancestral"]);
}

//! Torch-compatible noise generators, so a seed gives the same starting latent (and the
//! same sampler noise) as in A1111.
//!
//! - [`PhiloxGenerator`]: the Philox stream A1111 calls "NV" (and which imitates torch's
//!   CUDA generator, A1111's default "GPU"); identical on every machine.
//! - [`TorchCpuGenerator`]: torch's CPU generator (MT19937 + torch's normal sampling),
//!   A1111's "CPU".
//! - [`ImageRng`]: one generator per image of a batch, as A1111's `ImageRNG`.
//! - [`TorchDevice`]: the device whose generator draws on-device noise (the SDE
//!   samplers' Brownian tree).

mod avx_mathfun;
mod image_rng;
mod mt19937;
mod philox;
mod rng_kind;
mod torch_cpu;
mod torch_device;

pub use image_rng::ImageRng;
pub use mt19937::Mt19937;
pub use philox::{philox_4x32_10, PhiloxGenerator};
pub use rng_kind::RngKind;
pub use torch_cpu::{NormalFillKernel, TorchCpuGenerator};
pub use torch_device::TorchDevice;

/// A stateful source of standard normals: each call is the next `torch.randn` of `n`
/// elements (row-major), continuing the stream of the previous calls.
pub trait NoiseSource: Send {
    fn randn(&mut self, n: usize) -> Vec<f32>;
}

/// A fresh generator of the given kind seeded with `seed`.
pub fn generator(kind: RngKind, seed: u64) -> Box<dyn NoiseSource> {
    match kind {
        RngKind::Gpu | RngKind::Nv => Box::new(PhiloxGenerator::new(seed)),
        RngKind::Cpu => Box::new(TorchCpuGenerator::new(seed)),
    }
}

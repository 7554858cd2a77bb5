//! The torch device of the A1111 run being reproduced.
//!
//! Almost all of A1111's noise honours its "Random number generator source" setting
//! ([`RngKind`]), but the SDE samplers' Brownian tree (torchsde, through k-diffusion) draws
//! every node with a fresh generator on the latent's own device. On an NVIDIA GPU that is
//! torch's CUDA Philox stream whatever the RNG setting says; on a CPU-only install it is
//! torch's CPU generator. Reproducing such an image therefore needs to know the device.

use std::fmt;
use std::str::FromStr;

use super::{generator, NoiseSource, RngKind};
use crate::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum TorchDevice {
    /// An NVIDIA GPU (torch's CUDA generator, computed here with Philox): what nearly
    /// every A1111 image was made on.
    #[default]
    Cuda,
    /// torch on the CPU (MT19937).
    Cpu,
}

impl TorchDevice {
    pub const ALL: [TorchDevice; 2] = [TorchDevice::Cuda, TorchDevice::Cpu];

    pub fn name(self) -> &'static str {
        match self {
            TorchDevice::Cuda => "cuda",
            TorchDevice::Cpu => "cpu",
        }
    }

    /// The device a run with A1111 RNG source `rng` most likely used when nothing else is
    /// known: CPU noise suggests a CPU run (and is what a reference made entirely with
    /// torch on a CPU has), GPU/NV noise an NVIDIA GPU.
    pub fn implied_by(rng: RngKind) -> Self {
        match rng {
            RngKind::Cpu => TorchDevice::Cpu,
            RngKind::Gpu | RngKind::Nv => TorchDevice::Cuda,
        }
    }

    /// `auto` (→ `None`: decide with [`TorchDevice::implied_by`]), or a device name.
    pub fn parse_or_auto(text: &str) -> Result<Option<Self>> {
        if text.trim().eq_ignore_ascii_case("auto") {
            Ok(None)
        } else {
            text.parse().map(Some)
        }
    }

    /// The generator `torch.Generator(device).manual_seed(seed)` would be.
    pub fn generator(self, seed: u64) -> Box<dyn NoiseSource> {
        match self {
            TorchDevice::Cuda => generator(RngKind::Nv, seed),
            TorchDevice::Cpu => generator(RngKind::Cpu, seed),
        }
    }
}

impl FromStr for TorchDevice {
    type Err = Error;

    /// Case-insensitive "cuda" (also "gpu") or "cpu".
    fn from_str(text: &str) -> Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "cuda" | "gpu" => Ok(TorchDevice::Cuda),
            "cpu" => Ok(TorchDevice::Cpu),
            _ => Err(Error::Invalid(format!(
                "unknown torch device `{text}` (valid: cuda, cpu)"
            ))),
        }
    }
}

impl fmt::Display for TorchDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_others() {
        assert_eq!("CUDA".parse::<TorchDevice>().unwrap(), TorchDevice::Cuda);
        assert_eq!("gpu".parse::<TorchDevice>().unwrap(), TorchDevice::Cuda);
        assert_eq!(" cpu ".parse::<TorchDevice>().unwrap(), TorchDevice::Cpu);
        let err = "mps".parse::<TorchDevice>().unwrap_err().to_string();
        assert!(err.contains("mps") && err.contains("cuda, cpu"), "{err}");
    }

    #[test]
    fn auto_follows_the_rng_source() {
        assert_eq!(TorchDevice::parse_or_auto("Auto").unwrap(), None);
        assert_eq!(
            TorchDevice::parse_or_auto("cpu").unwrap(),
            Some(TorchDevice::Cpu)
        );
        assert!(TorchDevice::parse_or_auto("tpu").is_err());
        assert_eq!(TorchDevice::implied_by(RngKind::Cpu), TorchDevice::Cpu);
        assert_eq!(TorchDevice::implied_by(RngKind::Gpu), TorchDevice::Cuda);
        assert_eq!(TorchDevice::implied_by(RngKind::Nv), TorchDevice::Cuda);
    }

    #[test]
    fn generators_are_the_device_streams() {
        let n = 20;
        assert_eq!(
            TorchDevice::Cuda.generator(7).randn(n),
            generator(RngKind::Nv, 7).randn(n)
        );
        assert_eq!(
            TorchDevice::Cpu.generator(7).randn(n),
            generator(RngKind::Cpu, 7).randn(n)
        );
    }
}

//! A1111's "Random number generator source" setting (`RNG:` in infotext).

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// Which generator makes the noise. A1111 writes `RNG: CPU` / `RNG: NV` into infotext and
/// leaves the field out for the default, GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum RngKind {
    /// torch's CUDA generator; computed here with Philox, as A1111's NV does.
    #[default]
    Gpu,
    /// torch's CPU generator (MT19937).
    Cpu,
    /// A1111's CPU re-implementation of the CUDA Philox stream.
    Nv,
}

impl RngKind {
    pub const ALL: [RngKind; 3] = [RngKind::Gpu, RngKind::Cpu, RngKind::Nv];

    /// The name A1111 uses in settings and infotext: "GPU", "CPU" or "NV".
    pub fn a1111_name(self) -> &'static str {
        match self {
            RngKind::Gpu => "GPU",
            RngKind::Cpu => "CPU",
            RngKind::Nv => "NV",
        }
    }

    /// The infotext `RNG:` value, `None` for the default (A1111 omits it).
    pub fn infotext_value(self) -> Option<&'static str> {
        match self {
            RngKind::Gpu => None,
            other => Some(other.a1111_name()),
        }
    }

    /// From an infotext `RNG:` value; a missing field means GPU.
    pub fn from_infotext(value: Option<&str>) -> Result<Self> {
        value.map_or(Ok(RngKind::Gpu), str::parse)
    }
}

impl FromStr for RngKind {
    type Err = Error;

    /// Case-insensitive "gpu", "cpu" or "nv".
    fn from_str(text: &str) -> Result<Self> {
        let wanted = text.trim();
        RngKind::ALL
            .into_iter()
            .find(|kind| kind.a1111_name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown random number generator `{text}` (valid: gpu, cpu, nv)"
                ))
            })
    }
}

impl fmt::Display for RngKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.a1111_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_case_insensitively() {
        assert_eq!("gpu".parse::<RngKind>().unwrap(), RngKind::Gpu);
        assert_eq!("CPU".parse::<RngKind>().unwrap(), RngKind::Cpu);
        assert_eq!("Nv".parse::<RngKind>().unwrap(), RngKind::Nv);
        let err = "cuda".parse::<RngKind>().unwrap_err().to_string();
        assert!(
            err.contains("`cuda`") && err.contains("gpu, cpu, nv"),
            "{err}"
        );
    }

    #[test]
    fn infotext_round_trip() {
        assert_eq!(RngKind::from_infotext(None).unwrap(), RngKind::Gpu);
        for kind in RngKind::ALL {
            let written = kind.infotext_value();
            assert_eq!(RngKind::from_infotext(written).unwrap(), kind);
        }
        assert_eq!(RngKind::Cpu.infotext_value(), Some("CPU"));
    }
}

//! Where generation runs: the `--backend`, `--adapter`, `--threads` and `--precision`
//! flags that `generate`, `grid`, `bench` and `serve` share, checked together before any
//! model is loaded, and the backends they build.

use clap::Args;
use easel_candle::{CandleBackend, Precision};
use easel_core::Backend;
use easel_core::{Error, Result};
use easel_wgpu::{AdapterChoice, WgpuBackend, WgpuOptions};

#[derive(Args, Clone, Debug)]
pub struct ComputeArgs {
    /// Compute backend: cpu (candle), cuda or cuda:N (candle on an NVIDIA GPU; needs an
    /// easel built with `--features cuda`), or wgpu (Vulkan/Metal/DX12 GPU through wgpu).
    #[arg(long, default_value = "cpu")]
    pub backend: String,
    /// wgpu adapter: a name substring, or high-performance, low-power, software.
    #[arg(long)]
    pub adapter: Option<String>,
    /// CPU threads (default: all cores; at most 1024).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub threads: Option<usize>,
    /// Arithmetic of the CPU backend's matrix products: fp32, bf16 (weights kept in bf16:
    /// half the weight memory on every CPU, slightly different images; on CPUs with
    /// AVX512-BF16 or AMX the products' inputs are rounded to bf16 too, sums in f32, about
    /// 1.5× faster; elsewhere the products stay f32), or auto (bf16 where the CPU has bf16
    /// arithmetic, else fp32) [default: fp32].
    #[arg(long)]
    pub precision: Option<String>,
}

/// The backend the flags chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compute {
    /// candle: on the CPU, or on a CUDA GPU (`--backend cuda`).
    Candle,
    Wgpu,
}

/// Where the candle backend runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CandleDevice {
    Cpu,
    /// CUDA device ordinal.
    Cuda(usize),
}

impl ComputeArgs {
    /// Applies `--threads` and checks the flags fit together (a known backend, no CPU
    /// precision for a GPU, CUDA only where it was built in), before anything is loaded.
    pub fn choose(&self) -> Result<Compute> {
        set_threads(self.threads);
        match self.candle_device()? {
            Some(CandleDevice::Cpu) => Ok(Compute::Candle),
            Some(CandleDevice::Cuda(_)) => {
                fp32_only("cuda", self.precision.as_deref())?;
                if cfg!(feature = "cuda") {
                    Ok(Compute::Candle)
                } else {
                    Err(built_without_cuda())
                }
            }
            None => {
                fp32_only("wgpu", self.precision.as_deref())?;
                Ok(Compute::Wgpu)
            }
        }
    }

    /// The candle device `--backend` names, or `None` for wgpu.
    fn candle_device(&self) -> Result<Option<CandleDevice>> {
        let backend = self.backend.trim().to_ascii_lowercase();
        let unknown = || {
            Error::Invalid(format!(
                "unknown backend `{}` (valid: cpu, cuda, cuda:N, wgpu)",
                self.backend
            ))
        };
        Ok(match backend.as_str() {
            "cpu" | "candle" => Some(CandleDevice::Cpu),
            "cuda" => Some(CandleDevice::Cuda(0)),
            "wgpu" | "gpu" => None,
            other => match other.strip_prefix("cuda:") {
                Some(n) => Some(CandleDevice::Cuda(n.parse().map_err(|_| unknown())?)),
                None => return Err(unknown()),
            },
        })
    }

    /// The candle backend: on the CPU in `--precision`, or on the CUDA device named.
    pub fn candle(&self) -> Result<CandleBackend> {
        match self.candle_device()? {
            Some(CandleDevice::Cuda(ordinal)) => cuda_backend(ordinal),
            _ => cpu_backend(self.precision.as_deref()),
        }
    }

    /// The wgpu backend on `--adapter`.
    pub fn wgpu(&self) -> Result<WgpuBackend> {
        wgpu_backend(self.adapter.as_deref())
    }
}

/// candle on CUDA device `ordinal` (f32; the CPU kernels' precisions do not apply).
#[cfg(feature = "cuda")]
fn cuda_backend(ordinal: usize) -> Result<CandleBackend> {
    CandleBackend::cuda(ordinal).map_err(|e| Error::Invalid(format!("CUDA device {ordinal}: {e}")))
}

#[cfg(not(feature = "cuda"))]
fn cuda_backend(_ordinal: usize) -> Result<CandleBackend> {
    Err(built_without_cuda())
}

/// `--backend cuda` in a build without the `cuda` feature.
fn built_without_cuda() -> Error {
    Error::Invalid(
        "this easel was built without CUDA: rebuild it with `cargo build --release -p easel-cli --features cuda` (needs the CUDA toolkit's nvcc), or use --backend wgpu"
            .into(),
    )
}

/// Limit CPU threads. Must run before any parallel work starts: candle's kernels and the
/// rayon pool read `RAYON_NUM_THREADS` once.
pub fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads.filter(|&n| n > 0) {
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}

/// The CPU backend with the `--precision` asked for (`fp32` when none).
pub fn cpu_backend(precision: Option<&str>) -> Result<CandleBackend> {
    let precision = match precision.map(|p| p.trim().to_ascii_lowercase()).as_deref() {
        None | Some("fp32" | "f32" | "full") => Precision::F32,
        Some("bf16") => Precision::Bf16,
        Some("auto") => Precision::fastest(),
        Some(other) => {
            return Err(Error::Invalid(format!(
                "unknown --precision `{other}` (valid: fp32, bf16, auto)"
            )))
        }
    };
    Ok(CandleBackend::cpu().with_precision(precision))
}

/// `--precision` chooses the CPU backend's arithmetic; the GPU backends have their own.
fn fp32_only(backend: &str, precision: Option<&str>) -> Result<()> {
    match precision {
        Some(p) if !p.trim().eq_ignore_ascii_case("fp32") => Err(Error::Invalid(format!(
            "--precision {p} applies to the CPU backend, not {backend}"
        ))),
        _ => Ok(()),
    }
}

/// A wgpu backend on the chosen adapter (wgpu's default choice when none is named).
pub fn wgpu_backend(adapter: Option<&str>) -> Result<WgpuBackend> {
    let adapter = match adapter.map(|s| s.to_ascii_lowercase()) {
        None => AdapterChoice::Default,
        Some(s) if s == "high-performance" => AdapterChoice::HighPerformance,
        Some(s) if s == "low-power" => AdapterChoice::LowPower,
        Some(s) if s == "software" => AdapterChoice::Software,
        Some(_) => AdapterChoice::Named(adapter.unwrap_or_default().to_string()),
    };
    let b = WgpuBackend::new_blocking(WgpuOptions {
        adapter,
        ..Default::default()
    })?;
    eprintln!("wgpu adapter: {}", b.name());
    Ok(b)
}

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
    /// Compute backend: cpu (candle) or wgpu (Vulkan/Metal/DX12 GPU through wgpu).
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
    Cpu,
    Wgpu,
}

impl ComputeArgs {
    /// Applies `--threads` and checks the flags fit together (a known backend, no CPU
    /// precision for wgpu), before anything is loaded.
    pub fn choose(&self) -> Result<Compute> {
        set_threads(self.threads);
        match self.backend.to_ascii_lowercase().as_str() {
            "cpu" | "candle" => Ok(Compute::Cpu),
            "wgpu" | "gpu" => {
                no_precision_for_wgpu(self.precision.as_deref())?;
                Ok(Compute::Wgpu)
            }
            other => Err(Error::Invalid(format!(
                "unknown backend `{other}` (valid: cpu, wgpu)"
            ))),
        }
    }

    /// The CPU backend in `--precision`.
    pub fn cpu(&self) -> Result<CandleBackend> {
        cpu_backend(self.precision.as_deref())
    }

    /// The wgpu backend on `--adapter`.
    pub fn wgpu(&self) -> Result<WgpuBackend> {
        wgpu_backend(self.adapter.as_deref())
    }
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

/// `--precision` chooses the CPU backend's arithmetic; the wgpu backend has its own.
pub fn no_precision_for_wgpu(precision: Option<&str>) -> Result<()> {
    match precision {
        Some(p) if !p.trim().eq_ignore_ascii_case("fp32") => Err(Error::Invalid(format!(
            "--precision {p} applies to the CPU backend, not wgpu"
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

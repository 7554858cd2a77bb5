//! Choosing an adapter and opening a device on it, with the limits every kernel relies on
//! checked up front so that a machine that cannot run the networks says which limit is short.

use easel_core::{Error, Result};

/// Which adapter to run on. `Default` follows wgpu's own conventions: `WGPU_BACKEND`,
/// `WGPU_POWER_PREF` and `WGPU_ADAPTER_NAME` from the environment, otherwise the adapter
/// wgpu picks first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AdapterChoice {
    #[default]
    Default,
    /// Prefer a discrete GPU.
    HighPerformance,
    /// Prefer an integrated GPU.
    LowPower,
    /// Only a software adapter (lavapipe, SwiftShader, WARP).
    Software,
    /// The first adapter whose name contains this text (case-insensitive; native only).
    Named(String),
}

/// How weights in half precision are stored and read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum F16Storage {
    /// `array<f16>` where the adapter has `shader-f16`, packed words otherwise.
    #[default]
    Auto,
    /// Always two f16 per u32 word, widened with `unpack2x16float` (what a browser without
    /// `shader-f16`, e.g. SwiftShader, runs; tests force it to cover that path natively).
    Packed,
}

/// The workgroup shapes the kernels are compiled with.
///
/// A GPU wants large workgroups (256 invocations) to hide memory latency. An adapter that
/// runs shaders on the CPU (SwiftShader, the browser's fallback adapter; lavapipe) pays for
/// every invocation of a workgroup at each barrier and between passes, so there the same
/// kernels run as 64 invocations that each compute more: GEMM tiles of 8 x 8 outputs per
/// invocation, norms reduced by 64 invocations, attention over blocks of 8 queries. On
/// SwiftShader (2-core Zen 1) a 64² tiny-model image went from 46.6 to 10.9 s (this
/// crate's README).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelShapes {
    /// [`KernelShapes::Software`] on adapters that report themselves as CPUs (WebGPU's
    /// fallback adapter included), [`KernelShapes::Gpu`] on every other.
    #[default]
    Auto,
    /// 256-invocation workgroups.
    Gpu,
    /// 64-invocation workgroups.
    Software,
}

impl KernelShapes {
    /// Whether the small workgroups apply on an adapter of `device_type`.
    pub(crate) fn small_on(self, device_type: wgpu::DeviceType) -> bool {
        match self {
            KernelShapes::Auto => device_type == wgpu::DeviceType::Cpu,
            KernelShapes::Gpu => false,
            KernelShapes::Software => true,
        }
    }
}

/// Options of [`crate::WgpuBackend::new`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WgpuOptions {
    pub adapter: AdapterChoice,
    pub f16: F16Storage,
    /// Caps the storage binding size below the adapter's, to exercise the paths that split
    /// what does not fit one binding (tests) or to mimic a smaller device.
    pub max_storage_binding: Option<u64>,
    /// Caps the buffer size below the adapter's (tests of the too-large-tensor error, or
    /// mimicking WebGPU's default 256 MiB on a native adapter).
    pub max_buffer_size: Option<u64>,
    /// Refuses the blocking `download` natively too, as the browser must (there only
    /// `download_async` reads back): tests run the browser's paths with it, so that an
    /// operation left to the trait's host default (a blocking read-back) fails instead of
    /// passing unnoticed.
    pub refuse_blocking_download: bool,
    /// The kernels' workgroup shapes (tests force each on one adapter).
    pub kernel_shapes: KernelShapes,
}

/// An open device and what was learnt about its adapter.
pub(crate) struct OpenDevice {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    /// Weights are read as `array<f16>` (else as packed u32 words).
    pub native_f16: bool,
    /// The kernels run in 64-invocation workgroups ([`KernelShapes`]).
    pub small_workgroups: bool,
}

/// The smallest limits the kernels are written for, each at or below WebGPU's default, so
/// every WebGPU implementation and every native adapter meeting those defaults passes.
/// Storage bindings smaller than a tensor are handled by splitting ops (`split.rs`); the
/// rest are fixed by the kernels' workgroup shapes: 256 invocations (128 along y in the
/// narrow GEMM tiles), 15.4 KiB of workgroup memory (attention's tiles), four storage
/// bindings (SwinIR's window attention needs six, WebGPU's default is eight: checked when
/// it runs, so that an adapter with four still runs the SD networks), and up to 65535
/// workgroups along x (a convolution over the 262144 pixels of a 512x512 VAE layer
/// dispatches 4096).
/// A limit: its wgpu name, how to read it, the least the kernels need.
type Requirement = (&'static str, fn(&wgpu::Limits) -> u64, u64);

const REQUIRED: &[Requirement] = &[
    (
        "max_compute_invocations_per_workgroup",
        |l| l.max_compute_invocations_per_workgroup as u64,
        256,
    ),
    (
        "max_compute_workgroup_size_x",
        |l| l.max_compute_workgroup_size_x as u64,
        256,
    ),
    (
        "max_compute_workgroup_size_y",
        |l| l.max_compute_workgroup_size_y as u64,
        128,
    ),
    (
        "max_compute_workgroup_storage_size",
        |l| l.max_compute_workgroup_storage_size as u64,
        crate::ops::ATTENTION_WORKGROUP_BYTES,
    ),
    (
        "max_storage_buffers_per_shader_stage",
        |l| l.max_storage_buffers_per_shader_stage as u64,
        4,
    ),
    (
        "max_storage_buffer_binding_size",
        |l| l.max_storage_buffer_binding_size,
        16 << 20,
    ),
    (
        "max_compute_workgroups_per_dimension",
        |l| l.max_compute_workgroups_per_dimension as u64,
        65535,
    ),
];

/// Checks an adapter's `limits` against what the kernels need; the error names the first short limit.
pub fn check_limits(name: &str, limits: &wgpu::Limits) -> Result<()> {
    for (limit, get, need) in REQUIRED {
        let have = get(limits);
        if have < *need {
            return Err(Error::Backend(format!(
                "wgpu adapter `{name}` is unusable: its limit {limit} is {have}, the kernels need at least {need}"
            )));
        }
    }
    Ok(())
}

fn no_adapter(why: impl std::fmt::Display) -> Error {
    Error::Backend(format!(
        "no wgpu adapter found ({why}); install a Vulkan, Metal or DX12 driver (on Linux without \
         a GPU: Mesa's lavapipe, `apt-get install mesa-vulkan-drivers`) or, in a browser, enable WebGPU"
    ))
}

async fn pick_adapter(instance: &wgpu::Instance, choice: &AdapterChoice) -> Result<wgpu::Adapter> {
    let named = match choice {
        AdapterChoice::Named(n) => Some(n.clone()),
        AdapterChoice::Default => std::env::var("WGPU_ADAPTER_NAME")
            .ok()
            .filter(|n| !n.is_empty()),
        _ => None,
    };
    if let Some(name) = named {
        let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        let wanted = name.to_lowercase();
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters
            .into_iter()
            .find(|a| a.get_info().name.to_lowercase().contains(&wanted))
            .ok_or_else(|| {
                no_adapter(format!(
                    "none is named like `{name}`; available: {}",
                    names.join(", ")
                ))
            });
    }
    let power_preference = match choice {
        AdapterChoice::HighPerformance => wgpu::PowerPreference::HighPerformance,
        AdapterChoice::LowPower => wgpu::PowerPreference::LowPower,
        _ => wgpu::PowerPreference::from_env().unwrap_or_default(),
    };
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference,
            force_fallback_adapter: *choice == AdapterChoice::Software,
            compatible_surface: None,
            apply_limit_buckets: false,
        })
        .await
        .map_err(no_adapter)
}

/// Finds the adapter and opens a device with all of its limits (big storage bindings matter
/// for the VAE at full resolution) and `shader-f16` where wanted and present.
pub(crate) async fn open(options: &WgpuOptions) -> Result<OpenDevice> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pick_adapter(&instance, &options.adapter).await?;
    let info = adapter.get_info();
    let limits = adapter.limits();
    check_limits(&info.name, &limits)?;
    let native_f16 =
        options.f16 == F16Storage::Auto && adapter.features().contains(wgpu::Features::SHADER_F16);
    let required_features = if native_f16 {
        wgpu::Features::SHADER_F16
    } else {
        wgpu::Features::empty()
    };
    let (device, queue) = adapter
        .request_device(&wgpu::DeviceDescriptor {
            label: Some("easel"),
            required_features,
            required_limits: limits.clone(),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            Error::Backend(format!(
                "wgpu adapter `{}`: cannot open a device: {e}",
                info.name
            ))
        })?;
    let mut limits = limits;
    if let Some(cap) = options.max_storage_binding {
        limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
    }
    if let Some(cap) = options.max_buffer_size {
        limits.max_buffer_size = limits.max_buffer_size.min(cap);
    }
    let small_workgroups = options.kernel_shapes.small_on(info.device_type);
    Ok(OpenDevice {
        device,
        queue,
        info,
        limits,
        native_f16,
        small_workgroups,
    })
}

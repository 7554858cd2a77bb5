//! The WGSL kernels, how their source is assembled, and the cache of compiled pipelines.
//!
//! Every kernel has the same binding shape: binding 0 is a 128-byte uniform of parameters
//! (bound with a dynamic offset into one shared buffer), bindings 1..=n are read-only
//! storage inputs and binding n+1 is the output. Kernels that read a weight call
//! `load_w(i)`, which a prelude defines for the weight's storage (f32, `array<f16>` or f16
//! packed two per u32), so one kernel file serves the browser and native drivers alike.

use std::collections::HashMap;
use std::sync::Mutex;

/// Bytes of the parameter block every kernel gets (32 words: shapes, plus the element
/// offsets of operands bound as windows when a tensor exceeds one storage binding).
pub(crate) const PARAM_BYTES: u64 = 128;

/// The kernel files, one per kind of operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    Linear,
    Conv2d,
    GroupNorm,
    GroupStats,
    GroupNormApply,
    LayerNorm,
    Attention,
    /// `attention.wgsl` with Swin's relative position bias and window mask added to the
    /// scores (two more inputs).
    WindowAttention,
    Unary,
    Binary,
    Geglu,
    Upsample,
    Transpose,
    Copy,
    Cast,
    Embedding,
    Rearrange,
}

impl Kernel {
    fn source(self) -> &'static str {
        match self {
            Kernel::Linear => include_str!("shaders/linear.wgsl"),
            Kernel::Conv2d => include_str!("shaders/conv2d.wgsl"),
            Kernel::GroupNorm => include_str!("shaders/group_norm.wgsl"),
            Kernel::GroupStats => include_str!("shaders/group_stats.wgsl"),
            Kernel::GroupNormApply => include_str!("shaders/group_norm_apply.wgsl"),
            Kernel::LayerNorm => include_str!("shaders/layer_norm.wgsl"),
            Kernel::Attention | Kernel::WindowAttention => include_str!("shaders/attention.wgsl"),
            Kernel::Unary => include_str!("shaders/unary.wgsl"),
            Kernel::Binary => include_str!("shaders/binary.wgsl"),
            Kernel::Geglu => include_str!("shaders/geglu.wgsl"),
            Kernel::Upsample => include_str!("shaders/upsample.wgsl"),
            Kernel::Transpose => include_str!("shaders/transpose.wgsl"),
            Kernel::Copy => include_str!("shaders/copy.wgsl"),
            Kernel::Cast => include_str!("shaders/cast.wgsl"),
            Kernel::Embedding => include_str!("shaders/embedding.wgsl"),
            Kernel::Rearrange => include_str!("shaders/rearrange.wgsl"),
        }
    }

    /// Number of storage inputs (the output binding follows them).
    pub fn inputs(self) -> u32 {
        match self {
            Kernel::WindowAttention => 5,
            Kernel::Linear
            | Kernel::Conv2d
            | Kernel::GroupNorm
            | Kernel::GroupNormApply
            | Kernel::LayerNorm
            | Kernel::Attention => 3,
            Kernel::Binary | Kernel::Embedding => 2,
            _ => 1,
        }
    }

    /// The binding `load_w` reads, for kernels that take a weight.
    fn weight_binding(self) -> Option<u32> {
        match self {
            Kernel::Linear | Kernel::Conv2d => Some(2),
            Kernel::Cast | Kernel::Embedding => Some(1),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kernel::Linear => "linear",
            Kernel::Conv2d => "conv2d",
            Kernel::GroupNorm => "group_norm",
            Kernel::GroupStats => "group_stats",
            Kernel::GroupNormApply => "group_norm_apply",
            Kernel::LayerNorm => "layer_norm",
            Kernel::Attention => "attention",
            Kernel::WindowAttention => "window_attention",
            Kernel::Unary => "unary",
            Kernel::Binary => "binary",
            Kernel::Geglu => "geglu",
            Kernel::Upsample => "upsample",
            Kernel::Transpose => "transpose",
            Kernel::Copy => "copy",
            Kernel::Cast => "cast",
            Kernel::Embedding => "embedding",
            Kernel::Rearrange => "rearrange",
        }
    }
}

/// How `load_w` reads the weight binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum WeightRead {
    F32,
    /// `array<f16>` (needs the `shader-f16` feature).
    F16,
    /// `array<u32>` holding two f16 each, low half first.
    PackedF16,
}

/// One compiled variant: kernel, weight reading, and constants substituted into the source
/// (attention's head dim `D` and key block `BK`; the GEMM tile shape of linear and conv).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Variant {
    pub kernel: Kernel,
    pub weight: WeightRead,
    pub consts: Vec<(&'static str, u32)>,
}

impl Variant {
    pub fn plain(kernel: Kernel) -> Self {
        Self {
            kernel,
            weight: WeightRead::F32,
            consts: Vec::new(),
        }
    }

    /// Full WGSL text: `enable f16` if needed, constants, the weight prelude, the kernel
    /// (attention's after the declarations that differ between its two variants).
    pub fn wgsl(&self) -> String {
        let mut s = String::new();
        if let Some(binding) = self.kernel.weight_binding() {
            let (enable, ty, body) = match self.weight {
                WeightRead::F32 => ("", "f32", "return w_data[i];"),
                WeightRead::F16 => ("enable f16;\n", "f16", "return f32(w_data[i]);"),
                WeightRead::PackedF16 => (
                    "",
                    "u32",
                    "let pair = unpack2x16float(w_data[i >> 1u]);\n    return select(pair.x, pair.y, (i & 1u) == 1u);",
                ),
            };
            s.push_str(enable);
            s.push_str(&format!(
                "@group(0) @binding({binding}) var<storage, read> w_data: array<{ty}>;\n\
                 fn load_w(i: u32) -> f32 {{\n    {body}\n}}\n"
            ));
        }
        for (name, value) in &self.consts {
            s.push_str(&format!("const {name}: u32 = {value}u;\n"));
        }
        let source = self.kernel.source();
        let konst = |name: &str| {
            self.consts
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(0, |&(_, v)| v)
        };
        match self.kernel {
            Kernel::Linear => s.push_str(&unroll_register_block(
                source,
                konst("RM"),
                konst("RN"),
                "xs",
                "ws",
            )),
            Kernel::Conv2d => s.push_str(&unroll_register_block(
                source,
                konst("RM"),
                konst("RN"),
                "ws",
                "xs",
            )),
            Kernel::Attention => {
                s.push_str(include_str!("shaders/attention_no_bias.wgsl"));
                s.push_str(&unroll_attention(source, konst("TD")));
            }
            Kernel::WindowAttention => {
                s.push_str(include_str!("shaders/attention_window_bias.wgsl"));
                s.push_str(&unroll_attention(source, konst("TD")));
            }
            Kernel::GroupNorm | Kernel::GroupStats | Kernel::LayerNorm => {
                s.push_str(include_str!("shaders/workgroup_sum.wgsl"));
                s.push_str(source);
            }
            _ => s.push_str(source),
        }
        s
    }
}

/// `attention.wgsl`'s two innermost products written out for chunk width `td` (a
/// multiple of 8), replacing the `// @scores` and `// @accumulate` markers; the constants
/// (8 lanes, 64-key blocks, padded strides) are the shader's.
fn unroll_attention(src: &str, td: u32) -> String {
    const LANES: u32 = 8;
    const BK: u32 = 64;
    let ks = td + 1;
    let mut scores = String::new();
    for dd in 0..td {
        scores.push_str(&format!("{{\n    let a = qt[r * QS + {dd}u];\n"));
        for jj in 0..BK / LANES {
            scores.push_str(&format!(
                "    s[{jj}] += a * kv[lane * KS + {}u];\n",
                LANES * jj * ks + dd
            ));
        }
        scores.push_str("}\n");
    }
    let mut accumulate = String::from("let pr = r * PS;\n");
    for i in 0..td / LANES {
        accumulate.push_str(&format!("var sum{i}: f32;\nsum{i} = 0.0;\n"));
        for j in 0..BK {
            accumulate.push_str(&format!(
                "sum{i} += pt[pr + {j}u] * kv[lane + {}u];\n",
                j * ks + LANES * i
            ));
        }
        accumulate.push_str(&format!("acc[c * PER_CHUNK + {i}u] += sum{i};\n"));
    }
    src.replace("// @scores", &scores)
        .replace("// @accumulate", &accumulate)
}

/// Compiled pipelines and the bind group layouts they share (one per input count).
pub(crate) struct Pipelines {
    device: wgpu::Device,
    layouts: Mutex<HashMap<u32, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    compiled: Mutex<HashMap<Variant, wgpu::ComputePipeline>>,
}

impl Pipelines {
    pub fn new(device: wgpu::Device) -> Self {
        Self {
            device,
            layouts: Mutex::new(HashMap::new()),
            compiled: Mutex::new(HashMap::new()),
        }
    }

    /// The bind group layout for kernels with `inputs` storage inputs.
    pub fn bind_group_layout(&self, inputs: u32) -> wgpu::BindGroupLayout {
        self.layouts_for(inputs).0
    }

    fn layouts_for(&self, inputs: u32) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        let mut layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        layouts
            .entry(inputs)
            .or_insert_with(|| {
                let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                };
                let mut entries = vec![wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: true,
                        min_binding_size: wgpu::BufferSize::new(PARAM_BYTES),
                    },
                    count: None,
                }];
                entries.extend((1..=inputs).map(|b| storage(b, true)));
                entries.push(storage(inputs + 1, false));
                let bgl = self
                    .device
                    .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                        label: Some("easel kernel bindings"),
                        entries: &entries,
                    });
                let pl = self
                    .device
                    .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some("easel kernel layout"),
                        bind_group_layouts: &[Some(&bgl)],
                        immediate_size: 0,
                    });
                (bgl, pl)
            })
            .clone()
    }

    /// The pipeline of `variant`, compiled on first use.
    pub fn get(&self, variant: &Variant) -> wgpu::ComputePipeline {
        if let Some(p) = self
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(variant)
        {
            return p.clone();
        }
        let (_, layout) = self.layouts_for(variant.kernel.inputs());
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(variant.kernel.name()),
                source: wgpu::ShaderSource::Wgsl(variant.wgsl().into()),
            });
        let pipeline = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(variant.kernel.name()),
                layout: Some(&layout),
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            });
        self.compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(variant.clone(), pipeline.clone());
        pipeline
    }
}

/// The GEMM kernels' register block written out: `RM x RN` scalar accumulators, the
/// multiply-accumulate of one k step and the stores, replacing the `// @accumulators`,
/// `// @multiply_accumulate` and `// @store` markers. `rows`/`cols` name the workgroup
/// arrays holding the k-slices of the tile's rows and columns.
fn unroll_register_block(src: &str, rm: u32, rn: u32, rows: &str, cols: &str) -> String {
    let mut decl = String::new();
    let mut mac = String::new();
    let mut store = String::new();
    for i in 0..rm {
        mac.push_str(&format!(
            "let a{i} = {rows}[kk * TM + lid.y + WY * {i}u];\n"
        ));
    }
    for j in 0..rn {
        mac.push_str(&format!(
            "let b{j} = {cols}[kk * TN + lid.x + WX * {j}u];\n"
        ));
    }
    for i in 0..rm {
        for j in 0..rn {
            decl.push_str(&format!("var acc{i}_{j} = 0.0;\n"));
            mac.push_str(&format!("acc{i}_{j} += a{i} * b{j};\n"));
            store.push_str(&format!(
                "store(row0 + lid.y + WY * {i}u, col0 + lid.x + WX * {j}u, acc{i}_{j});\n"
            ));
        }
    }
    src.replace("// @accumulators", &decl)
        .replace("// @multiply_accumulate", &mac)
        .replace("// @store", &store)
}

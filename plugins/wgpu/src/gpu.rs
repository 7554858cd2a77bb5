//! `Gpu`: the open device with its pipelines, buffer pools and the command recorder that
//! batches kernel dispatches into few submissions.
//!
//! Dispatches are recorded into one command encoder; each takes a 256-byte slot of a shared
//! uniform buffer for its parameters. The batch is submitted when the slots run out, before
//! any upload (a queued buffer write runs before the next submission's commands, so pending
//! commands that still read a recycled buffer must go first) and before any read-back.

use crate::device::OpenDevice;
use crate::kernels::{Pipelines, Variant, WeightRead, PARAM_BYTES};
use crate::pool::{BufferPool, PooledBuffer};
use crate::tensor::{DType, WgpuTensor};
use easel_core::{Error, Result};
use std::sync::{Arc, Mutex};

/// Dispatches per submission (parameter slots in the uniform buffer).
const PARAM_SLOTS: u64 = 256;

/// A storage binding: a whole buffer or a byte window of one.
pub(crate) struct Bind<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub window: Option<(u64, u64)>,
}

impl<'a> Bind<'a> {
    pub fn whole(buffer: &'a wgpu::Buffer) -> Self {
        Self {
            buffer,
            window: None,
        }
    }
    fn bytes(&self) -> u64 {
        self.window.map_or(self.buffer.size(), |(_, size)| size)
    }
}

struct Recorder {
    encoder: Option<wgpu::CommandEncoder>,
    params: Vec<u8>,
    slots: u64,
}

pub(crate) struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pub native_f16: bool,
    /// Kernels run in 64-invocation workgroups (a software adapter; `KernelShapes`).
    pub small_workgroups: bool,
    pub pipelines: Pipelines,
    pub pool: Arc<BufferPool>,
    pub staging: Arc<BufferPool>,
    params: wgpu::Buffer,
    slot_bytes: u64,
    recorder: Mutex<Recorder>,
    /// A 4-byte buffer bound where an optional input (a bias) is absent.
    pub dummy: wgpu::Buffer,
}

impl Gpu {
    pub fn new(open: OpenDevice) -> Self {
        let OpenDevice {
            device,
            queue,
            info,
            limits,
            native_f16,
            small_workgroups,
        } = open;
        let slot_bytes = (limits.min_uniform_buffer_offset_alignment as u64).max(PARAM_BYTES);
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("easel kernel parameters"),
            size: slot_bytes * PARAM_SLOTS,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("easel absent input"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let storage = wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST;
        let staging = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        Self {
            pipelines: Pipelines::new(device.clone()),
            pool: BufferPool::new(device.clone(), storage),
            staging: BufferPool::new(device.clone(), staging),
            device,
            queue,
            info,
            limits,
            native_f16,
            small_workgroups,
            params,
            slot_bytes,
            recorder: Mutex::new(Recorder {
                encoder: None,
                params: Vec::new(),
                slots: 0,
            }),
            dummy,
        }
    }

    /// How kernels read tensors stored as `dtype` through `load_w`.
    pub fn weight_read(&self, dtype: DType) -> WeightRead {
        match dtype {
            DType::F32 => WeightRead::F32,
            DType::F16 if self.native_f16 => WeightRead::F16,
            DType::F16 => WeightRead::PackedF16,
        }
    }

    /// A fresh (pooled) f32 tensor of `shape`; its contents are undefined until written.
    pub fn alloc(&self, shape: &[usize]) -> Result<WgpuTensor> {
        let n: usize = shape.iter().product();
        let bytes = DType::F32.buffer_bytes(n);
        self.check_buffer_size(bytes, shape)?;
        Ok(WgpuTensor {
            buf: Arc::new(self.pool.take(bytes)),
            shape: shape.to_vec(),
            dtype: DType::F32,
        })
    }

    fn check_buffer_size(&self, bytes: u64, shape: &[usize]) -> Result<()> {
        if bytes > self.limits.max_buffer_size {
            return Err(Error::Backend(format!(
                "tensor {shape:?} needs {bytes} bytes, more than the adapter's max_buffer_size {} \
                 (a tensor lives in one buffer; ops split only what exceeds a storage binding): \
                 use a smaller image or batch",
                self.limits.max_buffer_size
            )));
        }
        Ok(())
    }

    /// Uploads bytes into a new buffer: pooled for activations, owned for weights.
    pub fn upload_bytes(
        &self,
        bytes: &[u8],
        shape: &[usize],
        dtype: DType,
        pooled: bool,
    ) -> Result<WgpuTensor> {
        let size = dtype.buffer_bytes(shape.iter().product());
        self.check_buffer_size(size, shape)?;
        // Pooled: submit what is recorded first, under the recorder's lock so no other
        // thread records a read of the recycled buffer between the submit and the write.
        let mut rec = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        let buf = if pooled {
            self.submit(&mut rec);
            self.pool.take(size)
        } else {
            PooledBuffer::owned(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("easel weight"),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }))
        };
        let mut padded;
        let data = if bytes.len() as u64 == size {
            bytes
        } else {
            padded = bytes.to_vec();
            padded.resize(size as usize, 0);
            &padded[..]
        };
        self.queue.write_buffer(buf.buffer(), 0, data);
        drop(rec);
        Ok(WgpuTensor {
            buf: Arc::new(buf),
            shape: shape.to_vec(),
            dtype,
        })
    }

    /// Records one dispatch of `variant` over `groups` workgroups.
    pub fn dispatch(
        &self,
        variant: &Variant,
        params: &[u32],
        inputs: &[Bind],
        output: &Bind,
        groups: [u32; 3],
    ) -> Result<()> {
        debug_assert_eq!(inputs.len() as u32, variant.kernel.inputs());
        debug_assert!(params.len() * 4 <= PARAM_BYTES as usize);
        let max_binding = self.limits.max_storage_buffer_binding_size;
        for b in inputs.iter().chain(std::iter::once(output)) {
            if b.bytes() > max_binding {
                return Err(Error::Backend(format!(
                    "{:?}: an operand of {} bytes exceeds the adapter's max_storage_buffer_binding_size {max_binding}",
                    variant.kernel,
                    b.bytes()
                )));
            }
        }
        let max_groups = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max_groups) {
            return Err(Error::Backend(format!(
                "{:?}: {groups:?} workgroups exceed the adapter's max_compute_workgroups_per_dimension {max_groups}",
                variant.kernel
            )));
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let pipeline = self.pipelines.get(variant);
        let layout = self.pipelines.bind_group_layout(variant.kernel.inputs());
        let mut rec = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        if rec.slots == PARAM_SLOTS {
            self.submit(&mut rec);
        }
        let offset = rec.slots * self.slot_bytes;
        rec.params.resize(offset as usize, 0);
        let mut block = [0u8; PARAM_BYTES as usize];
        for (i, w) in params.iter().enumerate() {
            block[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        rec.params.extend_from_slice(&block);
        rec.slots += 1;

        fn binding<'b>(b: &Bind<'b>) -> wgpu::BindingResource<'b> {
            match b.window {
                None => b.buffer.as_entire_binding(),
                Some((offset, size)) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: b.buffer,
                    offset,
                    size: wgpu::BufferSize::new(size),
                }),
            }
        }
        let mut entries = vec![wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.params,
                offset: 0,
                size: wgpu::BufferSize::new(PARAM_BYTES),
            }),
        }];
        for (i, b) in inputs.iter().enumerate() {
            entries.push(wgpu::BindGroupEntry {
                binding: i as u32 + 1,
                resource: binding(b),
            });
        }
        entries.push(wgpu::BindGroupEntry {
            binding: inputs.len() as u32 + 1,
            resource: binding(output),
        });
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &layout,
            entries: &entries,
        });
        let encoder = self.encoder(&mut rec);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: None,
            timestamp_writes: None,
        });
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[offset as u32]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        Ok(())
    }

    /// Records a buffer-to-buffer copy.
    pub fn copy(
        &self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        bytes: u64,
    ) {
        let mut rec = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        self.encoder(&mut rec)
            .copy_buffer_to_buffer(src, src_offset, dst, dst_offset, bytes);
    }

    fn encoder<'r>(&self, rec: &'r mut Recorder) -> &'r mut wgpu::CommandEncoder {
        rec.encoder.get_or_insert_with(|| {
            self.device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("easel batch"),
                })
        })
    }

    /// Submits everything recorded so far.
    pub fn flush(&self) {
        let mut rec = self.recorder.lock().unwrap_or_else(|e| e.into_inner());
        self.submit(&mut rec);
    }

    fn submit(&self, rec: &mut Recorder) {
        if let Some(encoder) = rec.encoder.take() {
            if !rec.params.is_empty() {
                self.queue.write_buffer(&self.params, 0, &rec.params);
            }
            self.queue.submit([encoder.finish()]);
        }
        rec.params.clear();
        rec.slots = 0;
    }

    /// Workgroup counts covering `n` invocations of 256, folded into two dimensions.
    pub fn groups_1d(&self, n: usize) -> [u32; 3] {
        let wgs = n.div_ceil(256).max(1) as u64;
        let max = self.limits.max_compute_workgroups_per_dimension as u64;
        if wgs <= max {
            [wgs as u32, 1, 1]
        } else {
            let y = wgs.div_ceil(max);
            [wgs.div_ceil(y) as u32, y as u32, 1]
        }
    }
}

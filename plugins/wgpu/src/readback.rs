//! Reading tensors back to the host. The copy into a mappable staging buffer is submitted,
//! then the staging buffer is mapped asynchronously: a browser completes the mapping from
//! its event loop (nothing here blocks), a native caller polls the device — without
//! blocking in `download_async`, waiting in `download`.

use crate::gpu::Gpu;
use crate::pool::PooledBuffer;
use crate::tensor::WgpuTensor;
use easel_core::{Error, Result};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct MapState {
    done: Option<std::result::Result<(), wgpu::BufferAsyncError>>,
    waker: Option<Waker>,
}

/// Resolves when the staging buffer is mapped.
struct Mapped {
    state: Arc<Mutex<MapState>>,
    device: wgpu::Device,
}

impl Future for Mapped {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let check = |cx: &mut Context<'_>| {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match s.done.take() {
                Some(r) => Poll::Ready(r),
                None => {
                    s.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        };
        if let Poll::Ready(r) = check(cx) {
            return Poll::Ready(r);
        }
        // Natively callbacks only run inside `poll`; on WebGPU this is a no-op.
        let _ = self.device.poll(wgpu::PollType::Poll);
        check(cx)
    }
}

/// A read-back in flight: the staging buffer with the tensor's bytes, being mapped.
pub(crate) struct Readback {
    staging: PooledBuffer,
    bytes: u64,
    numel: usize,
    mapped: Mapped,
}

/// Copies the f32 tensor `t` into a staging buffer, submits, and starts mapping it.
pub(crate) fn start(gpu: &Gpu, t: &WgpuTensor) -> Readback {
    let bytes = t.buffer().size();
    let staging = gpu.staging.take(bytes);
    gpu.copy(t.buffer(), 0, staging.buffer(), 0, bytes);
    gpu.flush();
    let state = Arc::new(Mutex::new(MapState::default()));
    let cb_state = state.clone();
    staging
        .buffer()
        .map_async(wgpu::MapMode::Read, .., move |r| {
            let mut s = cb_state.lock().unwrap_or_else(|e| e.into_inner());
            s.done = Some(r);
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        });
    Readback {
        staging,
        bytes,
        numel: t.numel(),
        mapped: Mapped {
            state,
            device: gpu.device.clone(),
        },
    }
}

impl Readback {
    /// Blocks until the copy is done (native only: a browser cannot wait).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn wait(self) -> Result<Vec<f32>> {
        self.mapped
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Backend(format!("wgpu: waiting for the device failed: {e}")))?;
        easel_core::sampler::block_on(self.finish())
    }

    /// Waits for the mapping without blocking the thread and returns the values.
    pub async fn finish(self) -> Result<Vec<f32>> {
        let Readback {
            staging,
            bytes,
            numel,
            mapped,
        } = self;
        mapped
            .await
            .map_err(|e| Error::Backend(format!("wgpu: reading a tensor back failed: {e}")))?;
        let values = {
            let view = staging
                .buffer()
                .get_mapped_range(..bytes)
                .map_err(|e| Error::Backend(format!("wgpu: mapped read-back range: {e}")))?;
            let words: &[u8] = &view;
            words[..numel * 4]
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>()
        };
        staging.buffer().unmap();
        Ok(values)
    }
}

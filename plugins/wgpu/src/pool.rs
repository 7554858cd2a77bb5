//! A pool of storage buffers keyed by byte size. A tensor's buffer goes back to the pool
//! when the last handle to it drops, and the next request of that size takes it again: the
//! networks allocate the same sizes in the same order every sampling step, so after the
//! first step a sampling loop creates no buffers at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) struct BufferPool {
    device: wgpu::Device,
    usage: wgpu::BufferUsages,
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    /// Buffers ever created by this pool (tests check a sampling step adds none).
    created: AtomicU64,
}

impl BufferPool {
    pub fn new(device: wgpu::Device, usage: wgpu::BufferUsages) -> Arc<Self> {
        Arc::new(Self {
            device,
            usage,
            free: Mutex::new(HashMap::new()),
            created: AtomicU64::new(0),
        })
    }

    /// A buffer of exactly `size` bytes (a multiple of 4), reused when one is free.
    pub fn take(self: &Arc<Self>, size: u64) -> PooledBuffer {
        let reused = self
            .free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&size)
            .and_then(Vec::pop);
        let buffer = reused.unwrap_or_else(|| {
            self.created.fetch_add(1, Ordering::Relaxed);
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("easel pooled"),
                size,
                usage: self.usage,
                mapped_at_creation: false,
            })
        });
        PooledBuffer {
            buffer: Some(buffer),
            pool: Some(self.clone()),
        }
    }

    pub fn created(&self) -> u64 {
        self.created.load(Ordering::Relaxed)
    }

    fn give_back(&self, buffer: wgpu::Buffer) {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(buffer.size())
            .or_default()
            .push(buffer);
    }
}

/// A buffer that returns to its pool on drop (weights have no pool and are freed).
pub(crate) struct PooledBuffer {
    buffer: Option<wgpu::Buffer>,
    pool: Option<Arc<BufferPool>>,
}

impl PooledBuffer {
    /// A buffer owned outright, freed on drop (weights: uploaded once, never recycled).
    pub fn owned(buffer: wgpu::Buffer) -> Self {
        Self {
            buffer: Some(buffer),
            pool: None,
        }
    }

    pub fn buffer(&self) -> &wgpu::Buffer {
        self.buffer.as_ref().expect("buffer present until drop")
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        if let (Some(buffer), Some(pool)) = (self.buffer.take(), self.pool.take()) {
            pool.give_back(buffer);
        }
    }
}

//! Embedding gather. A table larger than one storage binding (the CLIP token table in f32
//! is 151 MB, lavapipe binds 128 MiB) is read through a window around each row instead.

use super::op_err;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::{DType, WgpuTensor};
use easel_core::Result;

impl Gpu {
    pub(crate) fn embedding(&self, table: &WgpuTensor, ids: &[u32]) -> Result<WgpuTensor> {
        let [vocab, width] = table.shape[..] else {
            return Err(op_err(
                "embedding",
                format!("table {:?} is not [V, C]", table.shape),
            ));
        };
        if let Some(bad) = ids.iter().find(|&&i| i as usize >= vocab) {
            return Err(op_err(
                "embedding",
                format!("id {bad} is outside the table of {vocab} rows"),
            ));
        }
        let out = self.alloc(&[ids.len(), width])?;
        if ids.is_empty() {
            return Ok(out);
        }
        let ids_t = self.upload_bytes(bytemuck::cast_slice(ids), &[ids.len()], DType::F32, true)?;
        let variant = Variant {
            weight: self.weight_read(table.dtype),
            ..Variant::plain(Kernel::Embedding)
        };
        let table_bytes = table.buffer().size();
        if table_bytes <= self.limits.max_storage_buffer_binding_size {
            let n = ids.len() * width;
            self.dispatch(
                &variant,
                &[0, ids.len() as u32, width as u32, 0],
                &[Bind::whole(table.buffer()), Bind::whole(ids_t.buffer())],
                &Bind::whole(out.buffer()),
                self.groups_1d(n),
            )?;
            return Ok(out);
        }
        // One dispatch per id, binding only an aligned window that holds its row.
        let elem = match table.dtype {
            DType::F32 => 4,
            DType::F16 => 2,
        };
        let align = self.limits.min_storage_buffer_offset_alignment as u64;
        for (r, &id) in ids.iter().enumerate() {
            let start = id as u64 * width as u64 * elem;
            let window_start = start / align * align;
            let window_end = (start + width as u64 * elem).div_ceil(4) * 4;
            let window_end = window_end.min(table_bytes);
            self.dispatch(
                &variant,
                &[r as u32, 1, width as u32, (window_start / elem) as u32],
                &[
                    Bind {
                        buffer: table.buffer(),
                        window: Some((window_start, window_end - window_start)),
                    },
                    Bind::whole(ids_t.buffer()),
                ],
                &Bind::whole(out.buffer()),
                self.groups_1d(width),
            )?;
        }
        Ok(out)
    }
}

//! Fused multi-head attention (`attention.wgsl`), compiled per head dim.

use super::op_err;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::Result;

/// Queries per workgroup in `attention.wgsl`.
const QUERY_BLOCK: usize = 64;
/// Largest key block; smaller where K and V tiles of the head dim would not fit.
const MAX_KEY_BLOCK: usize = 64;
/// Workgroup memory the kernel plans for: WebGPU's guaranteed minimum, so the browser runs
/// the same tiling.
const WORKGROUP_BYTES: usize = 16384;

/// Largest head dim the kernel keeps in registers.
const MAX_HEAD_DIM: usize = 256;

impl Gpu {
    pub(crate) fn attention(
        &self,
        q: &WgpuTensor,
        k: &WgpuTensor,
        v: &WgpuTensor,
        heads: usize,
        causal: bool,
    ) -> Result<WgpuTensor> {
        let (&[n, lq, width], &[nk, lk, wk]) = (&q.shape[..], &k.shape[..]) else {
            return Err(op_err(
                "attention",
                format!("q {:?}, k {:?} are not [N, L, C]", q.shape, k.shape),
            ));
        };
        if k.shape != v.shape
            || nk != n
            || wk != width
            || heads == 0
            || width % heads != 0
            || lk == 0
        {
            return Err(op_err(
                "attention",
                format!(
                    "q {:?}, k {:?}, v {:?} do not fit together with {heads} heads",
                    q.shape, k.shape, v.shape
                ),
            ));
        }
        let d = width / heads;
        if d > MAX_HEAD_DIM {
            return Err(op_err(
                "attention",
                format!("head dim {d} exceeds {MAX_HEAD_DIM}"),
            ));
        }
        let storage = WORKGROUP_BYTES.min(self.limits.max_compute_workgroup_storage_size as usize);
        let bk = (storage / (8 * d)).clamp(1, MAX_KEY_BLOCK);
        let (q, k, v) = (self.as_f32(q)?, self.as_f32(k)?, self.as_f32(v)?);
        let out = self.alloc(&q.shape)?;
        let variant = Variant {
            consts: vec![("D", d as u32), ("BK", bk as u32)],
            ..Variant::plain(Kernel::Attention)
        };
        let scale = 1.0 / (d as f32).sqrt();
        self.dispatch(
            &variant,
            &[
                lq as u32,
                lk as u32,
                heads as u32,
                causal as u32,
                scale.to_bits(),
            ],
            &[
                Bind::whole(q.buffer()),
                Bind::whole(k.buffer()),
                Bind::whole(v.buffer()),
            ],
            &Bind::whole(out.buffer()),
            [lq.div_ceil(QUERY_BLOCK) as u32, (n * heads) as u32, 1],
        )?;
        Ok(out)
    }
}

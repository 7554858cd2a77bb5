//! Fused multi-head attention (`attention.wgsl`), compiled per head dim. Any head dim
//! runs: the kernel spreads a query's head dim over 8 invocations and streams it through
//! workgroup memory in 8- or 16-wide chunks, so neither registers nor workgroup memory grow
//! with it, and the score matrix is never stored (online softmax over 64-key blocks).
//!
//! Swin's window attention (SwinIR) is the same kernel with the relative position bias and
//! the shifted-window mask added to the scaled scores (`Kernel::WindowAttention`): windows
//! are images of L = window² tokens, and neither the score matrix nor a combined bias of
//! every window is ever stored.
//!
//! Limits: images go whole into one dispatch where their operands fit one storage binding
//! and images × heads stays within `max_compute_workgroups_per_dimension` (an untiled
//! 1024x1024 SwinIR input has 16384 windows of 6 heads); otherwise one image's queries are split into ranges, and
//! that image's keys and values must fit one binding (checked here; the error names
//! `max_storage_buffer_binding_size`). Window attention binds its bias and mask whole and
//! needs six storage bindings (the SD networks' attention four), checked when it runs.
//! The workgroup counts (queries / 32, or / 8 on software adapters, images × heads) are
//! checked by `Gpu::dispatch`.
//! On llvmpipe (lavapipe), whose loop limiter would cut the kernel short, key count × head
//! dim is bounded here too (`LLVMPIPE_MAX_STEPS`; 4096 keys at head dim 512).

use super::op_err;
use crate::gpu::{Bind, Gpu};
use crate::kernels::{Kernel, Variant};
use crate::tensor::WgpuTensor;
use easel_core::backend_host::WindowAttentionDims;
use easel_core::Result;

/// Queries per workgroup in `attention.wgsl` on a GPU (query ranges of a split are
/// multiples of the block, so only the last block of an image is partly filled).
const QUERY_BLOCK: usize = 32;
/// Queries per workgroup on a software adapter (64 invocations; `KernelShapes`).
const QUERY_BLOCK_SMALL: usize = 8;

/// Workgroup memory `attention.wgsl` declares: query chunk [32][16 + 1], key/value chunk
/// [64][16 + 1], probabilities [32][64 + 8], in f32 (15744 bytes).
pub(crate) const ATTENTION_WORKGROUP_BYTES: u64 = 4 * (32 * 17 + 64 * 17 + 32 * 72);

/// Key blocks x head-dim chunks one workgroup may step through on llvmpipe (lavapipe),
/// which stops shader loops after 65535 iterations and would then return a wrong result:
/// 2048 was seen to work (4096 keys at head dim 512: the VAE at 512x512; 32768 keys at
/// head dim 64), 4096 not. Real GPUs have no such limit.
const LLVMPIPE_MAX_STEPS: usize = 2048;

/// Storage bindings of `Kernel::WindowAttention`: q, k, v, bias, mask and the output.
const WINDOW_ATTENTION_BINDINGS: u32 = 6;

/// The terms window attention adds to the scaled scores: `bias: [H, L, L]` (f32) for
/// every window and, with a shift, `mask: [nW, L, L]` (f32) for window `b` as
/// `mask[b mod nW]`.
pub(crate) struct ScoreBias<'a> {
    bias: &'a WgpuTensor,
    mask: Option<(&'a WgpuTensor, usize)>,
}

/// Head-dim columns staged per step: 16 where the head dim is a multiple of 16 (SD's 64,
/// 80, 160, 320, 512), else 8 (40), so that no chunk is mostly padding.
fn chunk_width(d: usize) -> usize {
    if d.is_multiple_of(16) {
        16
    } else {
        8
    }
}

impl Gpu {
    /// Swin's window attention: `q, k, v: [B, L, H·D]`, per head
    /// `softmax((q·D^-½) kᵀ + bias[h] + mask[b mod nW]) v`, shapes checked as the host
    /// version checks them. The bias (f16 where it was uploaded as a weight) and the mask
    /// are read as f32.
    pub(crate) fn window_attention(
        &self,
        q: &WgpuTensor,
        k: &WgpuTensor,
        v: &WgpuTensor,
        heads: usize,
        bias: &WgpuTensor,
        mask: Option<&WgpuTensor>,
    ) -> Result<WgpuTensor> {
        let dims = WindowAttentionDims::check(
            &q.shape,
            &k.shape,
            &v.shape,
            heads,
            &bias.shape,
            mask.map(|m| &m.shape[..]),
        )?;
        let have = self.limits.max_storage_buffers_per_shader_stage;
        if have < WINDOW_ATTENTION_BINDINGS {
            return Err(op_err(
                "window_attention",
                format!(
                    "needs {WINDOW_ATTENTION_BINDINGS} storage buffers per shader stage (q, k, \
                     v, bias, mask, output); the adapter's max_storage_buffers_per_shader_stage \
                     is {have}"
                ),
            ));
        }
        let bias = self.as_f32(bias)?;
        let mask = mask.map(|m| self.as_f32(m)).transpose()?;
        for (what, t) in [("bias", Some(&bias)), ("mask", mask.as_ref())] {
            if let Some(t) = t.filter(|t| !self.fits(t, 0, t.numel())) {
                return Err(
                    self.binding_error("window_attention", format!("the {what} {:?}", t.shape))
                );
            }
        }
        let score = ScoreBias {
            bias: &bias,
            mask: mask.as_ref().zip(dims.windows),
        };
        self.attention(q, k, v, heads, false, Some(score))
    }

    /// Attention; `score` holds window attention's terms added to the scaled scores
    /// (`None` for the SD networks' attention).
    pub(crate) fn attention(
        &self,
        q: &WgpuTensor,
        k: &WgpuTensor,
        v: &WgpuTensor,
        heads: usize,
        causal: bool,
        score: Option<ScoreBias>,
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
        let steps = lk.div_ceil(64) * d.div_ceil(chunk_width(d));
        let llvmpipe = self.info.name.contains("llvmpipe");
        if steps > LLVMPIPE_MAX_STEPS && llvmpipe {
            return Err(op_err(
                "attention",
                format!(
                    "{lk} keys at head dim {d} exceed what llvmpipe (lavapipe) runs: its shader \
                     loops stop after 65535 iterations (here {steps} key blocks x head-dim \
                     chunks, at most {LLVMPIPE_MAX_STEPS}); use a GPU or a smaller image"
                ),
            ));
        }
        let (q, k, v) = (self.as_f32(q)?, self.as_f32(k)?, self.as_f32(v)?);
        let out = self.alloc(&q.shape)?;
        let kernel = match score {
            None => Kernel::Attention,
            Some(_) => Kernel::WindowAttention,
        };
        // A workgroup of 64 runs its staging loops four times as often, so on llvmpipe the
        // small blocks stay within the loop limit only up to a quarter of the steps.
        let query_block = if self.small_workgroups && !(llvmpipe && 4 * steps > LLVMPIPE_MAX_STEPS)
        {
            QUERY_BLOCK_SMALL
        } else {
            QUERY_BLOCK
        };
        let variant = Variant {
            consts: vec![
                ("D", d as u32),
                ("TD", chunk_width(d) as u32),
                ("BQ", query_block as u32),
            ],
            ..Variant::plain(kernel)
        };
        let scale = 1.0 / (d as f32).sqrt();
        // Pieces: whole images where they fit one binding, else query ranges of one image
        // (keys and values of an image must fit; queries are independent of each other).
        let (qrow, krow) = (lq * width, lk * width);
        let kv_fit = |i0: usize, i1: usize| {
            self.fits(&k, i0 * krow, i1 * krow) && self.fits(&v, i0 * krow, i1 * krow)
        };
        let max_groups = self.limits.max_compute_workgroups_per_dimension as usize;
        let mut pieces = Vec::new();
        match self.plan("attention", n, 1, |i0, i1| {
            (i1 - i0) * heads <= max_groups
                && kv_fit(i0, i1)
                && self.fits(&q, i0 * qrow, i1 * qrow)
                && self.fits(&out, i0 * qrow, i1 * qrow)
        }) {
            Ok(ranges) => pieces.extend(ranges.into_iter().map(|(i0, i1)| (i0..i1, 0..lq))),
            Err(_) => {
                for img in 0..n {
                    if !kv_fit(img, img + 1) {
                        return Err(self.binding_error(
                            "attention",
                            format!("the keys and values of one image ({lk} x {width})"),
                        ));
                    }
                    let at = |r: usize| (img * lq + r) * width;
                    let ranges = self.plan("attention", lq, query_block, |r0, r1| {
                        self.fits(&q, at(r0), at(r1)) && self.fits(&out, at(r0), at(r1))
                    })?;
                    pieces.extend(ranges.into_iter().map(|(r0, r1)| (img..img + 1, r0..r1)));
                }
            }
        }
        for (imgs, rows) in pieces {
            let qs = (imgs.start * lq + rows.start) * width;
            let qe = ((imgs.end - 1) * lq + rows.end) * width;
            let (ks, ke) = (imgs.start * krow, imgs.end * krow);
            let (qb, q_base) = self.window(&q, qs, qe);
            let (kb, k_base) = self.window(&k, ks, ke);
            let (vb, v_base) = self.window(&v, ks, ke);
            let (ob, o_base) = self.window(&out, qs, qe);
            let mut inputs = vec![qb, kb, vb];
            if let Some(score) = &score {
                let mask = score.mask.map_or(&self.dummy, |(m, _)| m.buffer());
                inputs.extend([Bind::whole(score.bias.buffer()), Bind::whole(mask)]);
            }
            let windows = score.as_ref().and_then(|s| s.mask).map_or(0, |(_, nw)| nw);
            self.dispatch(
                &variant,
                &[
                    rows.len() as u32,
                    lk as u32,
                    heads as u32,
                    causal as u32,
                    scale.to_bits(),
                    rows.start as u32,
                    (qs - q_base) as u32,
                    (ks - k_base) as u32,
                    (ks - v_base) as u32,
                    (qs - o_base) as u32,
                    imgs.start as u32,
                    windows as u32,
                ],
                &inputs,
                &ob,
                [
                    rows.len().div_ceil(query_block) as u32,
                    (imgs.len() * heads) as u32,
                    1,
                ],
            )?;
        }
        Ok(out)
    }
}

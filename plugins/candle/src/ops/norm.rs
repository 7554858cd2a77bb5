//! Group norm (with an optional fused SiLU) and layer norm. The CPU kernels make one
//! parallel task per (sample, group) or per row over contiguous data, with statistics
//! accumulated in f64 so long groups (a 64×64×10-channel group is 40 960 values) do not
//! lose precision; other devices use a composition of candle ops. A compact (bf16) input
//! gives a compact group norm: each group widens, goes through the f32 arithmetic and is
//! rounded back.

use super::cpu_kernel::{
    f32_slice, f32_slice_mut, new_filled, on_kernel_cpu, with_f32_data, zip_map_into,
};
use super::fast_math;
use candle_core::{
    bail, CpuStorage, CustomOp1, CustomOp3, DType, InplaceOp1, Layout, Result, Shape, Tensor, D,
};
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Sum of a slice in eight f32 lanes (vectorisable), totalled in f64.
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += f(v);
        }
    }
    lanes.iter().map(|&v| v as f64).sum::<f64>() + tail.iter().map(|&v| f(v) as f64).sum::<f64>()
}

per_isa! {
    /// Mean and reciprocal standard deviation (biased variance, two passes).
    fn moments(xs: &[f32], eps: f32) -> (f32, f32) {
        let n = xs.len().max(1) as f64;
        // Partial sums per 4096 values keep the f32 lanes short.
        let mean = xs.chunks(4096).map(|c| lane_sum(c, |v| v)).sum::<f64>() / n;
        let m = mean as f32;
        let var = xs
            .chunks(4096)
            .map(|c| lane_sum(c, |v| (v - m) * (v - m)))
            .sum::<f64>()
            / n;
        (m, (1.0 / (var + eps as f64).sqrt()) as f32)
    }
}

/// The CPU group norm: out of place ([`CustomOp1`]) or over the tensor's own buffer
/// ([`InplaceOp1`]), with the same arithmetic, so the two agree to the bit.
struct GroupNormCpu {
    groups: usize,
    eps: f32,
    silu: bool,
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl GroupNormCpu {
    /// The op for `x` (checked by [`check_group_norm`]) with `gamma` and `beta` read out.
    fn new(groups: usize, eps: f32, silu: bool, gamma: &Tensor, beta: &Tensor) -> Result<Self> {
        let values = |t: &Tensor| with_f32_data(t, "group_norm", |v| v.to_vec());
        Ok(Self {
            groups,
            eps,
            silu,
            gamma: values(gamma)?,
            beta: values(beta)?,
        })
    }

    /// `(values per group, values per channel)` of a tensor of `dims`.
    fn sizes(&self, dims: &[usize]) -> (usize, usize) {
        let spatial: usize = dims[2..].iter().product();
        (dims[1] / self.groups * spatial, spatial)
    }

    /// Each channel's affine map `(a, b)` (`y = x·a + b`) for the group at block `i` of the
    /// tensor, whose values are `xg`, in order.
    fn channel_maps(&self, i: usize, xg: &[f32]) -> impl Iterator<Item = (f32, f32)> + '_ {
        let per_group = self.gamma.len() / self.groups;
        let first = i % self.groups * per_group;
        let (mean, rstd) = moments(xg, self.eps);
        (first..first + per_group).map(move |c| {
            let a = rstd * self.gamma[c];
            (a, self.beta[c] - mean * a)
        })
    }

    /// The group norm of a compact (bf16) tensor of `dims`, over its own elements: each
    /// group widens into f32, goes through the f32 arithmetic and is rounded back, so the
    /// result is the f32 kernel's on the widened input, rounded once.
    fn compact_in_place(&self, data: &mut [half::bf16], dims: &[usize]) {
        let (block, spatial) = self.sizes(dims);
        if block == 0 {
            return;
        }
        data.par_chunks_mut(block).enumerate().for_each(|(i, xg)| {
            let mut wide = vec![0f32; block];
            xg.convert_to_f32_slice(&mut wide);
            self.normalize_group(i, &mut wide, spatial);
            xg.convert_from_f32_slice(&wide);
        });
    }

    /// Group `i` of the tensor, whose values are `xg` (`spatial` per channel), normalised
    /// in place: its moments are taken before it is overwritten.
    fn normalize_group(&self, i: usize, xg: &mut [f32], spatial: usize) {
        let maps: Vec<(f32, f32)> = self.channel_maps(i, xg).collect();
        for (map, xc) in maps.into_iter().zip(xg.chunks_exact_mut(spatial)) {
            map_in_place(map, self.silu, xc);
        }
    }

    /// [`map_in_place`] from `src` into `dst` (every element of which it writes).
    fn apply_into(&self, map: (f32, f32), src: &[f32], dst: &mut [MaybeUninit<f32>]) {
        if self.silu {
            zip_map_into(dst, src, src, |v, _| mapped::<true>(map, v));
        } else {
            zip_map_into(dst, src, src, |v, _| mapped::<false>(map, v));
        }
    }
}

per_isa! {
    /// `values` mapped by `(a, b)`, then SiLU with `silu`, in place.
    fn map_in_place(map: (f32, f32), silu: bool, values: &mut [f32]) {
        if silu {
            values.iter_mut().for_each(|v| *v = mapped::<true>(map, *v));
        } else {
            values
                .iter_mut()
                .for_each(|v| *v = mapped::<false>(map, *v));
        }
    }
}

/// `v · a + b`, then SiLU with `SILU` (a constant, so each loop over a channel has no
/// branch in it).
#[inline(always)]
fn mapped<const SILU: bool>((a, b): (f32, f32), v: f32) -> f32 {
    let y = v * a + b;
    if SILU {
        y * fast_math::sigmoid(y)
    } else {
        y
    }
}

impl CustomOp1 for GroupNormCpu {
    fn name(&self) -> &'static str {
        "group_norm"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        if let CpuStorage::BF16(data) = xs {
            let Some((start, end)) = xl.contiguous_offsets() else {
                bail!("group_norm: the input must be contiguous")
            };
            let mut out = data[start..end].to_vec();
            self.compact_in_place(&mut out, xl.dims());
            return Ok((CpuStorage::BF16(out), xl.shape().clone()));
        }
        let x = f32_slice(xs, xl, "group_norm")?;
        let (block, spatial) = self.sizes(xl.dims());
        if block == 0 {
            return Ok((CpuStorage::F32(vec![0f32; x.len()]), xl.shape().clone()));
        }
        if x.len() % block != 0
            || self.gamma.len() != xl.dims()[1]
            || self.beta.len() != self.gamma.len()
        {
            bail!(
                "group_norm: input {:?} does not fit {} channel weights",
                xl.dims(),
                self.gamma.len()
            );
        }
        // SAFETY: the groups of `out` and `x` pair up one to one, a group is its channels
        // (`spatial` values each, one map per channel) and `apply_into` writes every value.
        let out = unsafe {
            new_filled(x.len(), |out| {
                out.par_chunks_mut(block)
                    .zip(x.par_chunks(block))
                    .enumerate()
                    .for_each(|(i, (o, xg))| {
                        let channels = o.chunks_exact_mut(spatial).zip(xg.chunks_exact(spatial));
                        for (map, (oc, xc)) in self.channel_maps(i, xg).zip(channels) {
                            self.apply_into(map, xc, oc);
                        }
                    });
            })
        };
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }
}

/// Each group's moments are taken before the group is overwritten, and groups are
/// disjoint.
impl InplaceOp1 for GroupNormCpu {
    fn name(&self) -> &'static str {
        "group_norm"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> Result<()> {
        if let CpuStorage::BF16(data) = storage {
            let Some((start, end)) = layout.contiguous_offsets() else {
                bail!("group_norm: the input must be contiguous")
            };
            self.compact_in_place(&mut data[start..end], layout.dims());
            return Ok(());
        }
        let data = f32_slice_mut(storage, layout, "group_norm")?;
        let (block, spatial) = self.sizes(layout.dims());
        if block == 0 {
            return Ok(());
        }
        data.par_chunks_mut(block)
            .enumerate()
            .for_each(|(i, xg)| self.normalize_group(i, xg, spatial));
        Ok(())
    }
}

/// [`group_norm`] of a tensor the caller gives up: on the CPU the result is written over
/// `x`'s buffer (when contiguous), so the caller must hold no other handle to it (no
/// clone, view or reshape). Elsewhere, or for a strided `x`, as [`group_norm`].
pub fn group_norm_owned(
    x: Tensor,
    groups: usize,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    silu: bool,
) -> Result<Tensor> {
    let kernel_dtype = matches!(x.dtype(), DType::F32 | DType::BF16);
    if !(on_kernel_cpu(&x) && kernel_dtype && x.is_contiguous()) {
        return group_norm(&x, groups, gamma, beta, eps, silu);
    }
    check_group_norm(&x, groups, gamma, beta)?;
    x.inplace_op1(&GroupNormCpu::new(groups, eps, silu, gamma, beta)?)?;
    Ok(x)
}

/// `x` has a channel dim that splits into `groups`, and `gamma` and `beta` one value per
/// channel.
fn check_group_norm(x: &Tensor, groups: usize, gamma: &Tensor, beta: &Tensor) -> Result<()> {
    let dims = x.dims();
    if dims.len() < 2 {
        bail!("group_norm: input {dims:?} has no channel dim");
    }
    let channels = dims[1];
    if groups == 0 || !channels.is_multiple_of(groups) {
        bail!("group_norm: {channels} channels do not split into {groups} groups");
    }
    check_affine("group_norm", channels, gamma, beta)
}

fn check_affine(op: &str, channels: usize, gamma: &Tensor, beta: &Tensor) -> Result<()> {
    if gamma.elem_count() != channels || beta.elem_count() != channels {
        bail!(
            "{op}: {channels} channels but affine parameters {:?} / {:?}",
            gamma.dims(),
            beta.dims()
        );
    }
    Ok(())
}

/// Group norm of `[N, C, ...]` with per-channel affine, then SiLU if `silu`.
pub fn group_norm(
    x: &Tensor,
    groups: usize,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f32,
    silu: bool,
) -> Result<Tensor> {
    check_group_norm(x, groups, gamma, beta)?;
    let dims = x.dims();
    let channels = dims[1];
    // A compact (bf16) activation stays compact.
    if on_kernel_cpu(x) && matches!(x.dtype(), DType::F32 | DType::BF16) {
        return x
            .contiguous()?
            .apply_op1_no_bwd(&GroupNormCpu::new(groups, eps, silu, gamma, beta)?);
    }
    let n = dims[0];
    let grouped = x.reshape((n, groups, ()))?;
    let mean = grouped.mean_keepdim(2)?;
    let centered = grouped.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(2)?;
    let normed = centered.broadcast_div(&(var + eps as f64)?.sqrt()?)?;
    let mut affine_shape = vec![1, channels];
    affine_shape.resize(dims.len(), 1);
    let y = normed
        .reshape(dims)?
        .broadcast_mul(&gamma.reshape(affine_shape.clone())?)?
        .broadcast_add(&beta.reshape(affine_shape)?)?;
    if silu {
        y.silu()
    } else {
        Ok(y)
    }
}

struct LayerNormCpu {
    eps: f32,
}

impl CustomOp3 for LayerNormCpu {
    fn name(&self) -> &'static str {
        "layer_norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(xs, xl, "layer_norm")?;
        let gamma = f32_slice(gs, gl, "layer_norm")?;
        let beta = f32_slice(bs, bl, "layer_norm")?;
        let width = gamma.len();
        if width == 0 {
            return Ok((CpuStorage::F32(vec![0f32; x.len()]), xl.shape().clone()));
        }
        if x.len() % width != 0 || beta.len() != width {
            bail!("layer_norm: {} values are not rows of {width}", x.len());
        }
        let rows_per_task = (16384 / width).max(1);
        // SAFETY: the chunks of `out` and `x` pair up one to one, both whole rows of
        // `width` (checked above), and every value of every row is written.
        let out = unsafe {
            new_filled(x.len(), |out| {
                out.par_chunks_mut(rows_per_task * width)
                    .zip(x.par_chunks(rows_per_task * width))
                    .for_each(|(o, xr)| {
                        for (o, xr) in o.chunks_exact_mut(width).zip(xr.chunks_exact(width)) {
                            let (mean, rstd) = moments(xr, self.eps);
                            for (((o, &v), &g), &b) in o.iter_mut().zip(xr).zip(gamma).zip(beta) {
                                o.write((v - mean) * rstd * g + b);
                            }
                        }
                    });
            })
        };
        Ok((CpuStorage::F32(out), xl.shape().clone()))
    }
}

/// Layer norm over the last dim with affine `gamma`, `beta`.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f32) -> Result<Tensor> {
    let width = x.dim(D::Minus1)?;
    check_affine("layer_norm", width, gamma, beta)?;
    if on_kernel_cpu(x) && x.dtype() == DType::F32 {
        return x.contiguous()?.apply_op3_no_bwd(
            &gamma.contiguous()?,
            &beta.contiguous()?,
            &LayerNormCpu { eps },
        );
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    centered
        .broadcast_div(&(var + eps as f64)?.sqrt()?)?
        .broadcast_mul(&gamma.flatten_all()?)?
        .broadcast_add(&beta.flatten_all()?)
}

//! Activations: SiLU, CLIP's quick-GELU and the UNet's GEGLU. On the CPU they run as
//! parallel kernels over contiguous data (candle's own unary maps are single-threaded);
//! elsewhere they are compositions of candle ops.

use super::cpu_kernel::{
    f32_slice, map_into, new_filled, zip_map_into, zip_map_over, ELEMENTWISE_CHUNK,
};
use super::fast_math;
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

/// An elementwise f32 function applied by a parallel CPU kernel.
struct Elementwise<F> {
    name: &'static str,
    f: F,
}

impl<F: Fn(f32) -> f32 + Copy + Send + Sync> CustomOp1 for Elementwise<F> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = f32_slice(storage, layout, self.name)?;
        let f = self.f;
        // SAFETY: the chunks of `dst` and `src` pair up one to one and `map_into` writes
        // every element of each chunk of `dst`.
        let dst = unsafe {
            new_filled(src.len(), |dst| {
                dst.par_chunks_mut(ELEMENTWISE_CHUNK)
                    .zip(src.par_chunks(ELEMENTWISE_CHUNK))
                    .for_each(|(d, s)| map_into(d, s, f));
            })
        };
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

#[inline(always)]
fn silu_f32(x: f32) -> f32 {
    x * fast_math::sigmoid(x)
}

#[inline(always)]
fn quick_gelu_f32(x: f32) -> f32 {
    x * fast_math::sigmoid(1.702 * x)
}

fn cpu_f32(x: &Tensor) -> bool {
    super::cpu_kernel::on_kernel_cpu(x) && x.dtype() == candle_core::DType::F32
}

/// `x · sigmoid(x)`.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    if cpu_f32(x) {
        x.contiguous()?.apply_op1_no_bwd(&Elementwise {
            name: "silu",
            f: silu_f32,
        })
    } else {
        x.silu()
    }
}

/// CLIP's `x · sigmoid(1.702 x)`.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    if cpu_f32(x) {
        x.contiguous()?.apply_op1_no_bwd(&Elementwise {
            name: "quick_gelu",
            f: quick_gelu_f32,
        })
    } else {
        let gate = (x.affine(-1.702, 0.0)?.exp()? + 1.0)?.recip()?;
        x.mul(&gate)
    }
}

/// Halves `[a, g]` of the last dim → `a · gelu(g)` (erf GELU), as diffusers/LDM `GEGLU`.
struct Geglu;

impl CustomOp1 for Geglu {
    fn name(&self) -> &'static str {
        "geglu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = f32_slice(storage, layout, "geglu")?;
        let dims = layout.dims();
        let width = *dims.last().unwrap_or(&0);
        if !width.is_multiple_of(2) {
            bail!("geglu: last dim {width} is odd");
        }
        let half = width / 2;
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = half;
        }
        let dst = match ELEMENTWISE_CHUNK.checked_div(half) {
            None => Vec::new(),
            Some(rows) => {
                let rows_per_task = rows.max(1);
                // SAFETY: `src` holds `width = 2 · half` values per row of `dst`'s `half`;
                // the chunks pair up row for row and every row of `dst` is written whole.
                unsafe {
                    new_filled(src.len() / 2, |dst| {
                        dst.par_chunks_mut(rows_per_task * half)
                            .zip(src.par_chunks(rows_per_task * width))
                            .for_each(|(d, s)| {
                                for (d, s) in d.chunks_exact_mut(half).zip(s.chunks_exact(width)) {
                                    let (a, g) = s.split_at(half);
                                    zip_map_into(d, a, g, |a, g| a * fast_math::gelu(g));
                                }
                            });
                    })
                }
            }
        };
        Ok((CpuStorage::F32(dst), Shape::from(out_dims)))
    }
}

/// GEGLU over the last dim.
pub fn geglu(x: &Tensor) -> Result<Tensor> {
    if cpu_f32(x) {
        x.contiguous()?.apply_op1_no_bwd(&Geglu)
    } else {
        let width = x.dim(D::Minus1)?;
        if !width.is_multiple_of(2) {
            bail!("geglu: last dim {width} is odd");
        }
        let half = width / 2;
        let a = x.narrow(D::Minus1, 0, half)?;
        let g = x.narrow(D::Minus1, half, half)?;
        a.mul(&g.gelu_erf()?)
    }
}

/// `x` where `x > 0`, else `slope · x` (the upscaler networks' leaky ReLU).
pub fn leaky_relu(x: &Tensor, slope: f32) -> Result<Tensor> {
    if cpu_f32(x) {
        x.contiguous()?.apply_op1_no_bwd(&Elementwise {
            name: "leaky_relu",
            f: move |v: f32| if v > 0.0 { v } else { v * slope },
        })
    } else {
        x.relu()? + x.minimum(0f32)?.affine(slope as f64, 0.0)?
    }
}

/// PReLU with one slope per channel: `x: [N, C, ...]`, `weight: [C]` (or `[1]`).
struct Prelu {
    slopes: Vec<f32>,
}

impl CustomOp1 for Prelu {
    fn name(&self) -> &'static str {
        "prelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let src = f32_slice(storage, layout, "prelu")?;
        let dims = layout.shape().dims();
        let c = dims[1];
        let plane: usize = dims[2..].iter().product();
        let mut dst = vec![0f32; src.len()];
        if plane > 0 {
            dst.par_chunks_mut(plane)
                .zip(src.par_chunks(plane))
                .enumerate()
                .for_each(|(i, (d, s))| {
                    let a = if self.slopes.len() == 1 {
                        self.slopes[0]
                    } else {
                        self.slopes[i % c]
                    };
                    zip_map_over(d, s, s, |v, _| if v >= 0.0 { v } else { a * v });
                });
        }
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// `nn.PReLU(num_parameters = C)` on `x: [N, C, ...]` with `weight: [C]` (or `[1]`).
pub fn prelu(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let dims = x.dims();
    let c = if dims.len() >= 2 {
        dims[1]
    } else {
        bail!("prelu: expected [N, C, ...], got {dims:?}")
    };
    let n = weight.elem_count();
    if n != c && n != 1 {
        bail!("prelu: {n} weights for {c} channels");
    }
    if cpu_f32(x) {
        let slopes = weight
            .flatten_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        return x.contiguous()?.apply_op1_no_bwd(&Prelu { slopes });
    }
    let mut shape = vec![1usize; dims.len()];
    shape[1] = n;
    let w = weight.reshape(shape)?;
    x.relu()? + x.minimum(0f32)?.broadcast_mul(&w)?
}

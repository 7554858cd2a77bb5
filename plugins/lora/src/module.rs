//! The network types A1111's Lora extension knows, and the weight change `ΔW` of each.
//!
//! A module is recognised by the names of its tensors, in A1111's order: LoRA
//! (`lora_up.weight` + `lora_down.weight`, optional `lora_mid.weight`; PEFT's `lora_B`/`lora_A`
//! are the same), LoHa (`hada_w1_a/b`, `hada_w2_a/b`, optional Tucker cores `hada_t1/t2`),
//! (IA)³ (`weight` + `on_input`), LoKr (`lokr_w1` or `lokr_w1_a/b`, `lokr_w2` or `lokr_w2_a/b`,
//! optional `lokr_t2`), full (`diff`, optional `diff_b`) and norm (`w_norm` + `b_norm`).
//! Each computes `updown` from its factors; then, as A1111's `finalize_updown`, an optional
//! `bias` tensor is added, and the result is multiplied by the scale (`scale`, else
//! `alpha / dim`, else 1) and the multiplier; an extra bias (`b_norm`, `diff_b`) is
//! multiplied by the multiplier only. Shapes are kept flat: every `ΔW` A1111 builds is
//! reshaped to the layer's shape when the element counts agree, so the row-major element
//! order is all that matters. Sums are f32, as A1111's on a full-precision model.

use easel_core::{Error, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// One tensor of a file in f32, with its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Tensor {
    fn rows(&self) -> usize {
        self.shape.first().copied().unwrap_or(1)
    }
    /// Columns when reshaped to `(shape[0], -1)`.
    fn cols(&self) -> usize {
        self.data.len() / self.rows().max(1)
    }
}

/// Which kind of network a module is (for messages and listings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    Lora,
    Hada,
    Ia3,
    Lokr,
    Full,
    Norm,
}

#[derive(Clone, Debug)]
enum Factors {
    Lora {
        up: Tensor,
        down: Tensor,
        mid: Option<Tensor>,
    },
    Hada {
        w1a: Tensor,
        w1b: Tensor,
        w2a: Tensor,
        w2b: Tensor,
        t1: Option<Tensor>,
        t2: Option<Tensor>,
    },
    Ia3 {
        w: Tensor,
        on_input: bool,
    },
    Lokr {
        w1: Option<Tensor>,
        w1a: Option<Tensor>,
        w1b: Option<Tensor>,
        w2: Option<Tensor>,
        w2a: Option<Tensor>,
        w2b: Option<Tensor>,
        t2: Option<Tensor>,
    },
    Full {
        diff: Tensor,
        diff_b: Option<Tensor>,
    },
    Norm {
        w: Tensor,
        b: Tensor,
    },
}

/// One layer's change, as read from a file.
#[derive(Clone, Debug)]
pub struct NetworkModule {
    factors: Factors,
    /// The rank A1111 divides alpha by (`None` for types without one).
    dim: Option<usize>,
    alpha: Option<f32>,
    scale: Option<f32>,
    /// A weight-shaped tensor added to `updown` before scaling (LyCORIS's `bias`).
    bias: Option<Tensor>,
}

/// `(m×k) @ (k×n)` row-major, rows in parallel.
fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    out.par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(i, row)| {
            for p in 0..k {
                let av = a[i * k + p];
                if av == 0.0 {
                    continue;
                }
                let brow = &b[p * n..(p + 1) * n];
                for (o, bv) in row.iter_mut().zip(brow) {
                    *o += av * bv;
                }
            }
        });
    out
}

/// The first `cols` columns of a row-major `rows × total` matrix.
fn take_cols(a: &[f32], rows: usize, total: usize, cols: usize) -> Vec<f32> {
    (0..rows)
        .flat_map(|r| a[r * total..r * total + cols].iter().copied())
        .collect()
}

/// Python's `[:d]` on an axis of length `len`.
fn python_prefix(len: usize, d: i64) -> usize {
    if d >= 0 {
        (d as usize).min(len)
    } else {
        len.saturating_sub(d.unsigned_abs() as usize)
    }
}

/// A1111's `rebuild_conventional`: `up.reshape(up.size(0), -1) @ down.reshape(down.size(0), -1)`,
/// with the rank cut to `dyn_dim` when given.
fn rebuild_conventional(up: &Tensor, down: &Tensor, dyn_dim: Option<i64>) -> Result<Vec<f32>> {
    let (m, r_up) = (up.rows(), up.cols());
    let (r_down, n) = (down.rows(), down.cols());
    if r_up != r_down {
        return Err(Error::Invalid(format!(
            "factors {:?} and {:?} do not multiply",
            up.shape, down.shape
        )));
    }
    let r = match dyn_dim {
        Some(d) => python_prefix(r_up, d),
        None => r_up,
    };
    let a = if r == r_up {
        up.data.clone()
    } else {
        take_cols(&up.data, m, r_up, r)
    };
    Ok(matmul(&a, &down.data[..r * n], m, r, n))
}

/// A1111's `rebuild_cp_decomposition`:
/// `einsum('n m k l, i n, m j -> i j k l', mid, up, down)`.
fn rebuild_cp(up: &Tensor, down: &Tensor, mid: &Tensor) -> Result<Vec<f32>> {
    let (i_n, rn) = (up.rows(), up.cols());
    let (rm, j_n) = (down.rows(), down.cols());
    if mid.shape.len() != 4 || mid.shape[0] != rn || mid.shape[1] != rm {
        return Err(Error::Invalid(format!(
            "Tucker core {:?} does not fit factors {:?} and {:?}",
            mid.shape, up.shape, down.shape
        )));
    }
    let kl = mid.shape[2] * mid.shape[3];
    // tmp[n, j, kl] = Σ_m mid[n, m, kl] · down[m, j]
    let mut tmp = vec![0f32; rn * j_n * kl];
    for n in 0..rn {
        for m in 0..rm {
            for j in 0..j_n {
                let d = down.data[m * j_n + j];
                for q in 0..kl {
                    tmp[(n * j_n + j) * kl + q] += mid.data[(n * rm + m) * kl + q] * d;
                }
            }
        }
    }
    // out[i, (j, kl)] = Σ_n up[i, n] · tmp[n, (j, kl)]
    Ok(matmul(&up.data, &tmp, i_n, rn, j_n * kl))
}

/// A1111's `make_weight_cp(t, wa, wb)`: `einsum('i j k l, j r -> i r k l', t, wb)` then
/// `einsum('i j k l, i r -> r j k l', ·, wa)`; `wa` is `(rank, out)`, `wb` `(rank, in)`.
fn make_weight_cp(t: &Tensor, wa: &Tensor, wb: &Tensor) -> Result<Vec<f32>> {
    if t.shape.len() != 4 || wa.shape.len() != 2 || wb.shape.len() != 2 {
        return Err(Error::Invalid(format!(
            "Tucker core {:?} with factors {:?}, {:?}: expected 4-D and 2-D tensors",
            t.shape, wa.shape, wb.shape
        )));
    }
    let (ri, rj, kl) = (t.shape[0], t.shape[1], t.shape[2] * t.shape[3]);
    let (out, inn) = (wa.shape[1], wb.shape[1]);
    if wa.shape[0] != ri || wb.shape[0] != rj {
        return Err(Error::Invalid(format!(
            "Tucker core {:?} does not fit factors {:?} and {:?}",
            t.shape, wa.shape, wb.shape
        )));
    }
    // temp[i, q, kl] = Σ_j t[i, j, kl] · wb[j, q]
    let mut temp = vec![0f32; ri * inn * kl];
    for i in 0..ri {
        for j in 0..rj {
            for q in 0..inn {
                let w = wb.data[j * inn + q];
                for s in 0..kl {
                    temp[(i * inn + q) * kl + s] += t.data[(i * rj + j) * kl + s] * w;
                }
            }
        }
    }
    // res[p, (q, kl)] = Σ_i wa[i, p] · temp[i, (q, kl)]
    let mut wa_t = vec![0f32; out * ri];
    for i in 0..ri {
        for p in 0..out {
            wa_t[p * ri + i] = wa.data[i * out + p];
        }
    }
    Ok(matmul(&wa_t, &temp, out, ri, inn * kl))
}

/// `torch.kron(w1, w2)` (with `w1` given two trailing 1-dims when `w2` is 4-D), flat.
fn kron(w1: &Tensor, w2: &Tensor) -> Result<Vec<f32>> {
    if w1.shape.len() != 2 || !(w2.shape.len() == 2 || w2.shape.len() == 4) {
        return Err(Error::Invalid(format!(
            "Kronecker factors {:?} and {:?}: expected 2-D and 2-D/4-D",
            w1.shape, w2.shape
        )));
    }
    let (a, b) = (w1.shape[0], w1.shape[1]);
    let (c, d) = (w2.shape[0], w2.shape[1]);
    let kl: usize = w2.shape[2..].iter().product();
    let mut out = vec![0f32; a * c * b * d * kl];
    for i in 0..a {
        for p in 0..c {
            let row = i * c + p;
            for j in 0..b {
                let s = w1.data[i * b + j];
                for q in 0..d {
                    let col = j * d + q;
                    let src = &w2.data[(p * d + q) * kl..(p * d + q + 1) * kl];
                    let dst = &mut out[(row * b * d + col) * kl..(row * b * d + col + 1) * kl];
                    for (o, v) in dst.iter_mut().zip(src) {
                        *o = s * v;
                    }
                }
            }
        }
    }
    Ok(out)
}

fn product(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let data = rebuild_conventional(a, b, None)?;
    Ok(Tensor {
        shape: vec![a.rows(), b.cols()],
        data,
    })
}

impl NetworkModule {
    /// A module from the tensors a file holds for one layer (names after the layer key's
    /// first `.`), recognised in A1111's order; `None` if no type accepts these names.
    pub fn from_parts(mut w: BTreeMap<String, Tensor>) -> Result<Option<Self>> {
        // A1111 reads these with `.item()`, which fails on anything but one value.
        let scalar = |w: &BTreeMap<String, Tensor>, k: &str| -> Result<Option<f32>> {
            match w.get(k) {
                None => Ok(None),
                Some(t) if t.data.len() == 1 => Ok(Some(t.data[0])),
                Some(t) => Err(Error::Invalid(format!(
                    "`{k}` holds {} values of shape {:?}; it must be one number",
                    t.data.len(),
                    t.shape
                ))),
            }
        };
        let alpha = scalar(&w, "alpha")?;
        let scale = scalar(&w, "scale")?;
        let bias = w.get("bias").cloned();
        if w.contains_key("dora_scale") {
            return Err(Error::Invalid(
                "DoRA modules (`dora_scale`) are not supported".into(),
            ));
        }
        let peft = w.contains_key("lora_A.weight") && w.contains_key("lora_B.weight");
        let (factors, dim) =
            if (w.contains_key("lora_up.weight") && w.contains_key("lora_down.weight")) || peft {
                let (up, down) =
                    if w.contains_key("lora_up.weight") && w.contains_key("lora_down.weight") {
                        (w.remove("lora_up.weight"), w.remove("lora_down.weight"))
                    } else {
                        (w.remove("lora_B.weight"), w.remove("lora_A.weight"))
                    };
                let (up, down) = (up.expect("checked"), down.expect("checked"));
                let dim = down.rows();
                let mid = w.remove("lora_mid.weight");
                (Factors::Lora { up, down, mid }, Some(dim))
            } else if ["hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"]
                .iter()
                .all(|k| w.contains_key(*k))
            {
                let w1b = w.remove("hada_w1_b").expect("checked");
                let dim = w1b.rows();
                (
                    Factors::Hada {
                        w1a: w.remove("hada_w1_a").expect("checked"),
                        w1b,
                        w2a: w.remove("hada_w2_a").expect("checked"),
                        w2b: w.remove("hada_w2_b").expect("checked"),
                        t1: w.remove("hada_t1"),
                        t2: w.remove("hada_t2"),
                    },
                    Some(dim),
                )
            } else if w.contains_key("weight") {
                let on_input = scalar(&w, "on_input")?.ok_or_else(|| {
                    Error::Invalid("(IA)³ module has `weight` but no `on_input`".into())
                })? != 0.0;
                (
                    Factors::Ia3 {
                        w: w.remove("weight").expect("checked"),
                        on_input,
                    },
                    None,
                )
            } else if (w.contains_key("lokr_w1")
                || (w.contains_key("lokr_w1_a") && w.contains_key("lokr_w1_b")))
                && (w.contains_key("lokr_w2")
                    || (w.contains_key("lokr_w2_a") && w.contains_key("lokr_w2_b")))
            {
                let mut dim = None;
                let w1b = w.remove("lokr_w1_b");
                if let Some(t) = &w1b {
                    dim = Some(t.rows());
                }
                let w2b = w.remove("lokr_w2_b");
                if let Some(t) = &w2b {
                    dim = Some(t.rows());
                }
                (
                    Factors::Lokr {
                        w1: w.remove("lokr_w1"),
                        w1a: w.remove("lokr_w1_a"),
                        w1b,
                        w2: w.remove("lokr_w2"),
                        w2a: w.remove("lokr_w2_a"),
                        w2b,
                        t2: w.remove("lokr_t2"),
                    },
                    dim,
                )
            } else if w.contains_key("diff") {
                (
                    Factors::Full {
                        diff: w.remove("diff").expect("checked"),
                        diff_b: w.remove("diff_b"),
                    },
                    None,
                )
            } else if w.contains_key("w_norm") && w.contains_key("b_norm") {
                (
                    Factors::Norm {
                        w: w.remove("w_norm").expect("checked"),
                        b: w.remove("b_norm").expect("checked"),
                    },
                    None,
                )
            } else {
                return Ok(None);
            };
        Ok(Some(Self {
            factors,
            dim,
            alpha,
            scale,
            bias,
        }))
    }

    pub fn kind(&self) -> ModuleKind {
        match self.factors {
            Factors::Lora { .. } => ModuleKind::Lora,
            Factors::Hada { .. } => ModuleKind::Hada,
            Factors::Ia3 { .. } => ModuleKind::Ia3,
            Factors::Lokr { .. } => ModuleKind::Lokr,
            Factors::Full { .. } => ModuleKind::Full,
            Factors::Norm { .. } => ModuleKind::Norm,
        }
    }

    /// A1111's `calc_scale`.
    pub fn scale(&self) -> f32 {
        if let Some(s) = self.scale {
            return s;
        }
        match (self.dim, self.alpha) {
            (Some(d), Some(a)) => a / d as f32,
            _ => 1.0,
        }
    }

    /// `updown` before scaling (and the extra bias), for a layer whose current weight is
    /// `weight` with `shape`. `dyn_dim` cuts a plain LoRA's rank as A1111's `dyn` does.
    fn updown(
        &self,
        weight: &[f32],
        shape: &[usize],
        dyn_dim: Option<i64>,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let up_down = match &self.factors {
            Factors::Lora { up, down, mid } => match mid {
                Some(mid) => rebuild_cp(up, down, mid)?,
                None => rebuild_conventional(up, down, dyn_dim)?,
            },
            Factors::Hada {
                w1a,
                w1b,
                w2a,
                w2b,
                t1,
                t2,
            } => {
                let u1 = match t1 {
                    Some(t) => make_weight_cp(t, w1a, w1b)?,
                    None => rebuild_conventional(w1a, w1b, None)?,
                };
                let u2 = match t2 {
                    Some(t) => make_weight_cp(t, w2a, w2b)?,
                    None => rebuild_conventional(w2a, w2b, None)?,
                };
                if u1.len() != u2.len() {
                    return Err(Error::Invalid(format!(
                        "LoHa halves have {} and {} elements",
                        u1.len(),
                        u2.len()
                    )));
                }
                u1.iter().zip(&u2).map(|(a, b)| a * b).collect()
            }
            Factors::Ia3 { w, on_input } => {
                if shape.len() != 2 {
                    return Err(Error::Invalid(format!(
                        "(IA)³ applies to linear layers, not one of shape {shape:?}"
                    )));
                }
                let (rows, cols) = (shape[0], shape[1]);
                let n = if *on_input { cols } else { rows };
                if w.data.len() != n {
                    return Err(Error::Invalid(format!(
                        "(IA)³ vector of {} elements for a layer of shape {shape:?}",
                        w.data.len()
                    )));
                }
                (0..rows * cols)
                    .map(|e| {
                        let s = if *on_input {
                            w.data[e % cols]
                        } else {
                            w.data[e / cols]
                        };
                        weight[e] * s
                    })
                    .collect()
            }
            Factors::Lokr {
                w1,
                w1a,
                w1b,
                w2,
                w2a,
                w2b,
                t2,
            } => {
                let w1 = match (w1, w1a, w1b) {
                    (Some(w), _, _) => w.clone(),
                    (None, Some(a), Some(b)) => product(a, b)?,
                    _ => unreachable!("checked when read"),
                };
                let w2 = match (w2, w2a, w2b, t2) {
                    (Some(w), _, _, _) => w.clone(),
                    (None, Some(a), Some(b), None) => product(a, b)?,
                    (None, Some(a), Some(b), Some(t)) => Tensor {
                        shape: vec![a.shape[1], b.shape[1], t.shape[2], t.shape[3]],
                        data: make_weight_cp(t, a, b)?,
                    },
                    _ => unreachable!("checked when read"),
                };
                kron(&w1, &w2)?
            }
            Factors::Full { diff, .. } => diff.data.clone(),
            Factors::Norm { w, .. } => w.data.clone(),
        };
        let ex_bias = match &self.factors {
            Factors::Full { diff_b, .. } => diff_b.as_ref().map(|t| t.data.clone()),
            Factors::Norm { b, .. } => Some(b.data.clone()),
            _ => None,
        };
        Ok((up_down, ex_bias))
    }

    /// A1111's `calc_updown` + `finalize_updown`: the change to add to the layer's weight
    /// (`weight`, its current values) and to its bias, for `multiplier`.
    pub fn delta(
        &self,
        weight: &[f32],
        shape: &[usize],
        multiplier: f32,
        dyn_dim: Option<i64>,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>)> {
        let (mut updown, ex_bias) = self.updown(weight, shape, dyn_dim)?;
        if let Some(bias) = &self.bias {
            if bias.data.len() != updown.len() {
                return Err(Error::Invalid(format!(
                    "`bias` of shape {:?} does not fit the change's {} elements",
                    bias.shape,
                    updown.len()
                )));
            }
            for (u, b) in updown.iter_mut().zip(&bias.data) {
                *u += b;
            }
        }
        if updown.len() != weight.len() {
            return Err(Error::Invalid(format!(
                "the change has {} elements, the layer's weight of shape {shape:?} has {}",
                updown.len(),
                weight.len()
            )));
        }
        let s = self.scale();
        for u in &mut updown {
            *u = *u * s * multiplier;
        }
        let ex_bias = ex_bias.map(|b| b.into_iter().map(|v| v * multiplier).collect());
        Ok((updown, ex_bias))
    }
}

impl NetworkModule {
    /// The change to the layer's bias (norm's `b_norm`, full's `diff_b`) for `multiplier`,
    /// if this module has one.
    pub fn extra_bias(&self, multiplier: f32) -> Option<Vec<f32>> {
        let b = match &self.factors {
            Factors::Full { diff_b, .. } => diff_b.as_ref()?,
            Factors::Norm { b, .. } => b,
            _ => return None,
        };
        Some(b.data.iter().map(|v| v * multiplier).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], data: &[f32]) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            data: data.to_vec(),
        }
    }

    #[test]
    fn lora_scale_and_dyn() {
        let mut parts = BTreeMap::new();
        parts.insert("lora_up.weight".into(), t(&[2, 2], &[1., 2., 3., 4.]));
        parts.insert(
            "lora_down.weight".into(),
            t(&[2, 3], &[1., 0., 1., 0., 1., 1.]),
        );
        parts.insert("alpha".into(), t(&[], &[1.0]));
        let m = NetworkModule::from_parts(parts).unwrap().unwrap();
        assert_eq!(m.kind(), ModuleKind::Lora);
        assert_eq!(m.scale(), 0.5);
        let (d, b) = m.delta(&[0.0; 6], &[2, 3], 2.0, None).unwrap();
        // up @ down = [[1,2,3],[3,4,7]]; × 0.5 × 2
        assert_eq!(d, vec![1., 2., 3., 3., 4., 7.]);
        assert!(b.is_none());
        // dyn 1 keeps rank 1 (the scale still divides by the full rank, as A1111's).
        let (d, _) = m.delta(&[0.0; 6], &[2, 3], 1.0, Some(1)).unwrap();
        assert_eq!(d, vec![0.5, 0., 0.5, 1.5, 0., 1.5]);
        assert!(m.delta(&[0.0; 4], &[2, 2], 1.0, None).is_err());
    }

    #[test]
    fn kron_matches_definition() {
        let a = t(&[2, 1], &[1., 2.]);
        let b = t(&[1, 2], &[3., 4.]);
        assert_eq!(kron(&a, &b).unwrap(), vec![3., 4., 6., 8.]);
    }

    #[test]
    fn unknown_names_are_no_module() {
        let mut parts = BTreeMap::new();
        parts.insert("oft_blocks".into(), t(&[1], &[1.]));
        assert!(NetworkModule::from_parts(parts).unwrap().is_none());
    }
}

//! Precision changes of a rewrite (`--fp16`, `--bf16`): which tensors change dtype and how
//! their elements are rounded. Only floating tensors change; integer and bool buffers
//! (CLIP's `position_ids`, EMA's `num_updates`) keep their dtype and values, and so does a
//! float `position_ids` (merged models store indices as floats; rounding them to half
//! precision would shift them).

use crate::formats::DType;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Precision {
    /// Every tensor keeps its stored dtype.
    #[default]
    Keep,
    F16,
    BF16,
    F32,
}

impl Precision {
    /// The dtype `key` (stored as `dtype`) is written with.
    pub fn output_dtype(self, key: &str, dtype: DType) -> DType {
        let is_float = matches!(dtype, DType::F64 | DType::F32 | DType::F16 | DType::BF16);
        if !is_float || key.ends_with("position_ids") {
            return dtype;
        }
        match self {
            Precision::Keep => dtype,
            Precision::F16 => DType::F16,
            Precision::BF16 => DType::BF16,
            Precision::F32 => DType::F32,
        }
    }
}

/// Appends `src` (little-endian elements of `from`) to `out` as elements of `to`.
///
/// Rounding is torch's: to nearest, ties to even, overflow to infinity, NaN kept. A
/// double goes through single precision first, as torch's `Half`/`BFloat16` constructors
/// take a float.
pub fn convert_elements(from: DType, to: DType, src: &[u8], out: &mut Vec<u8>) {
    if from == to {
        out.extend_from_slice(src);
        return;
    }
    let es = from.size();
    out.reserve(src.len() / es * to.size());
    for c in src.chunks_exact(es) {
        let v = from.to_f32(c);
        match to {
            DType::F16 => out.extend_from_slice(&half::f16::from_f32(v).to_le_bytes()),
            DType::BF16 => out.extend_from_slice(&half::bf16::from_f32(v).to_le_bytes()),
            DType::F32 => out.extend_from_slice(&v.to_le_bytes()),
            DType::F64 => {
                // Widening keeps the exact value; f64 sources never reach here (from == to).
                out.extend_from_slice(&(v as f64).to_le_bytes())
            }
            // Integer targets are never chosen by `output_dtype`; copy by value if asked.
            _ => out.extend_from_slice(&c[..to.size().min(es)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_floats_change() {
        let p = Precision::F16;
        assert_eq!(p.output_dtype("a.weight", DType::F32), DType::F16);
        assert_eq!(p.output_dtype("a.weight", DType::BF16), DType::F16);
        assert_eq!(p.output_dtype("x.position_ids", DType::I64), DType::I64);
        assert_eq!(p.output_dtype("x.position_ids", DType::F32), DType::F32);
        assert_eq!(
            p.output_dtype("model_ema.num_updates", DType::I32),
            DType::I32
        );
        assert_eq!(Precision::Keep.output_dtype("w", DType::F32), DType::F32);
    }

    #[test]
    fn rounds_to_nearest_even() {
        // 1 + 2^-11 is halfway between two halves: ties to even gives 1.0.
        let mut out = Vec::new();
        let v = 1.0f32 + 2f32.powi(-11);
        convert_elements(DType::F32, DType::F16, &v.to_le_bytes(), &mut out);
        assert_eq!(out, half::f16::ONE.to_le_bytes());
        out.clear();
        convert_elements(DType::F32, DType::F16, &1e6f32.to_le_bytes(), &mut out);
        assert_eq!(
            half::f16::from_le_bytes([out[0], out[1]]),
            half::f16::INFINITY
        );
    }
}

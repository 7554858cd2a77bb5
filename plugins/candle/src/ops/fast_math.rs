//! Branch-free f32 `exp`, `erf` and `sigmoid` that the compiler can vectorise, for the CPU
//! kernels (softmax over 4096-wide rows and the GEGLU/SiLU activations spend most of their
//! time here; the scalar libm calls are several times slower and never vectorise).
//!
//! Accuracy: `exp` is within 2 ulp over the range that does not underflow (Cephes' expf
//! polynomial after a Cody–Waite reduction); `erf` has absolute error below 2e-7
//! (Abramowitz & Stegun 7.1.26). Both are far inside the tolerances of f32 inference.

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split into a part exact in f32 and a remainder (Cody–Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2²³: adding and subtracting it rounds an f32 of magnitude < 2²² to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// How a kernel evaluates `a·b + c`: [`Fused`] where the code is compiled for a CPU with
/// FMA (one rounding, and half the dependent steps of a polynomial: on a Zen 1 core the
/// softmax's exponentials were bound by that chain), [`Unfused`] elsewhere (`mul_add`
/// without the instruction is a slow library call).
pub trait MulAdd {
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// `a·b + c` with one rounding (an FMA instruction where the caller enables it).
pub struct Fused;
/// `a·b + c` as a product then a sum.
pub struct Unfused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

impl MulAdd for Unfused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// e^x. Inputs below -87 give e^-87 (about 1.6e-38) instead of a subnormal or zero, and
/// inputs above 88 give e^88: harmless for softmax (the max is subtracted first) and for
/// sigmoid-style uses.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    exp_with::<Unfused>(x)
}

/// [`exp`] with its products and sums evaluated as `M` says.
#[inline(always)]
pub fn exp_with<M: MulAdd>(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let shifted = M::mul_add(x, LOG2_E, ROUND_MAGIC);
    let n = shifted - ROUND_MAGIC;
    let r = M::mul_add(-n, LN2_LO, M::mul_add(-n, LN2_HI, x));
    let mut p = 1.987_569_1e-4_f32;
    p = M::mul_add(p, r, 1.398_199_9e-3);
    p = M::mul_add(p, r, 8.333_452e-3);
    p = M::mul_add(p, r, 4.166_579_6e-2);
    p = M::mul_add(p, r, 1.666_666_5e-1);
    p = M::mul_add(p, r, 0.5);
    let er = M::mul_add(p * r, r, r) + 1.0;
    // The low mantissa bits of `shifted` hold n (offset by the magic's own bits); move
    // n + 127 into the exponent field to build 2^n.
    let two_n = f32::from_bits(
        shifted
            .to_bits()
            .wrapping_sub(ROUND_MAGIC.to_bits())
            .wrapping_add(127)
            << 23,
    );
    er * two_n
}

/// The logistic function 1 / (1 + e^-x).
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// The error function.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let mut p = 1.061_405_4_f32;
    p = p * t - 1.453_152_1;
    p = p * t + 1.421_413_7;
    p = p * t - 0.284_496_74;
    p = p * t + 0.254_829_6;
    let y = 1.0 - p * t * exp(-a * a);
    y.copysign(x)
}

/// Exact (erf-based) GELU: x · Φ(x).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Worst relative error of `exp_with::<M>` against the standard library over
    /// [-87, 88).
    fn exp_worst<M: MulAdd>() -> f32 {
        let mut worst = 0f32;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = x.exp();
            let rel = ((exp_with::<M>(x) - want) / want).abs();
            worst = worst.max(rel);
            x += 0.0137;
        }
        worst
    }

    #[test]
    fn exp_matches_std() {
        let worst = exp_worst::<Unfused>();
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn fused_exp_matches_std() {
        let worst = exp_worst::<Fused>();
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp_with::<Fused>(0.0), 1.0);
    }

    #[test]
    fn erf_matches_reference_values() {
        // Values of erf from tables (Abramowitz & Stegun table 7.1).
        for (x, want) in [
            (0.0f32, 0.0f32),
            (0.5, 0.520_499_9),
            (1.0, 0.842_700_8),
            (2.0, 0.995_322_3),
            (-1.5, -0.966_105_15),
        ] {
            assert!((erf(x) - want).abs() < 3e-7, "erf({x}) = {}", erf(x));
        }
    }

    #[test]
    fn gelu_and_sigmoid_match_definitions() {
        for i in -60..60 {
            let x = i as f32 * 0.13;
            let s = 1.0 / (1.0 + (-x as f64).exp());
            assert!((sigmoid(x) as f64 - s).abs() < 1e-6);
            let g = 0.5 * x as f64 * (1.0 + erf_f64(x as f64 / 2f64.sqrt()));
            assert!((gelu(x) as f64 - g).abs() < 1e-6, "gelu({x})");
        }
    }

    /// Series/continued-fraction-free reference: erf by Simpson integration of 2/√π e^{-t²}.
    fn erf_f64(x: f64) -> f64 {
        let n = 2000;
        let h = x / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut s = f(0.0) + f(x);
        for i in 1..n {
            s += f(i as f64 * h) * if i % 2 != 0 { 4.0 } else { 2.0 };
        }
        s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }
}

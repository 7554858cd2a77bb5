//! Branch-free f32 `exp`, `erf` and `sigmoid` that the compiler can vectorise, for the CPU
//! kernels (softmax over 4096-wide rows and the GEGLU/SiLU activations spend most of their
//! time here; the scalar libm calls are several times slower and never vectorise).
//!
//! Accuracy: `exp` is within 2e-7 relative (about 3 ulp at worst) over the range that does
//! not underflow: a Cody–Waite reduction to |r| ≤ ln2/2, then `1 + r + r²·q(r)` with `q` a
//! cubic whose coefficients were fitted here for the least worst relative error (1.05e-7
//! before f32 rounding). Cephes' expf, two degrees more, halves that error and costs a third
//! more time in the softmax, which spends most of its time here; PyTorch's vector library
//! offers a 20-ulp `exp_u20` for such kernels. `erf` has absolute error below 2e-7
//! (Abramowitz & Stegun 7.1.26). Both are far inside the tolerances of f32 inference.

const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split into a part exact in f32 and a remainder (Cody–Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5·2²³ + 127: adding it to a value of magnitude < 2²¹ rounds the value to an integer
/// `n` and leaves `n + 127`, the biased exponent of 2ⁿ, in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_583_039.0;
/// The cubic `q` of `e^r ≈ 1 + r + r²·q(r)` on [-ln2/2, ln2/2], highest degree first.
const EXP_Q: [f32; 4] = [0.008_312_514, 0.041_890_107, 0.166_671_14, 0.499_992_3];

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
    let mut q = EXP_Q[0];
    for c in &EXP_Q[1..] {
        q = M::mul_add(q, r, *c);
    }
    let er = M::mul_add(q * r, r, r) + 1.0;
    // Shifting left by 23 moves n + 127 (the low bits) into the exponent field and pushes
    // the magic's own high bits out of the word: 2ⁿ.
    let two_n = f32::from_bits(shifted.to_bits() << 23);
    er * two_n
}

/// The polynomial `p` of `2^f ≈ 1 + f·p(f)` on [-½, ½], highest degree first: fitted here
/// for the least worst relative error (1.1e-7 in exact arithmetic, 1.6e-7 evaluated in f32
/// with fused multiply-adds).
const EXP2_P: [f32; 5] = [
    1.330_221_4e-3,
    9.672_933e-3,
    5.550_615e-2,
    0.240_222_17,
    0.693_147_06,
];

/// 2^x for x at most a rounding above 0: a softmax's exponent in base 2 once the maximum
/// is subtracted (the caller folds `log₂ e` into the scale it already multiplies by). In
/// base 2 the reduction `x = n + f` is one rounding to an integer and one exact subtraction,
/// where [`exp_with`] needs a multiplication and two fused multiply-adds (Cody–Waite)
/// before a polynomial of the same length: the softmax's exponentials take about a third
/// fewer multiply-add operations. Within 2e-7 relative; inputs below -126 give 2^-126
/// (about 1.2e-38) instead of a subnormal or zero, and NaN stays NaN.
#[inline(always)]
pub fn exp2_nonpositive_with<M: MulAdd>(x: f32) -> f32 {
    // A comparison rather than `max`, so that NaN passes through.
    let x = if x < -126.0 { -126.0 } else { x };
    let shifted = x + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    // Exact: `n` is the integer nearest `x`.
    let f = x - n;
    let mut p = EXP2_P[0];
    for c in &EXP2_P[1..] {
        p = M::mul_add(p, f, *c);
    }
    let two_f = M::mul_add(p, f, 1.0);
    // 2ⁿ from the biased exponent n + 127 in the low bits, as in `exp_with`.
    let two_n = f32::from_bits(shifted.to_bits() << 23);
    two_f * two_n
}

/// [`exp2_nonpositive_with`] on sixteen lanes with fused multiply-adds: the same
/// operations in the same order as its [`Fused`] form, so the same results to the bit.
/// For kernels written with intrinsics (the paired softmax), where the compiler's
/// vectorisation of the scalar form cannot be steered into their stores.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub unsafe fn exp2_nonpositive_avx512(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let floor = _mm512_set1_ps(-126.0);
    // Below -126 only where the comparison holds, so NaN lanes keep their NaN.
    let x = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask::<_CMP_LT_OQ>(x, floor), floor);
    let magic = _mm512_set1_ps(ROUND_MAGIC);
    let shifted = _mm512_add_ps(x, magic);
    let n = _mm512_sub_ps(shifted, magic);
    let f = _mm512_sub_ps(x, n);
    let mut p = _mm512_set1_ps(EXP2_P[0]);
    for c in &EXP2_P[1..] {
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(*c));
    }
    let two_f = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0));
    let two_n = _mm512_castsi512_ps(_mm512_slli_epi32::<23>(_mm512_castps_si512(shifted)));
    _mm512_mul_ps(two_f, two_n)
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

    /// Worst relative error of `exp_with::<M>` against f64's exponential over [-87, 88],
    /// ends included.
    fn exp_worst<M: MulAdd>() -> f64 {
        let mut worst = 0f64;
        let steps = 400_000;
        for i in 0..=steps {
            let x = -87.0 + 175.0 * i as f32 / steps as f32;
            let want = (x as f64).exp();
            worst = worst.max(((exp_with::<M>(x) as f64 - want) / want).abs());
        }
        worst
    }

    #[test]
    fn exp_matches_std() {
        let worst = exp_worst::<Unfused>();
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn fused_exp_matches_std() {
        let worst = exp_worst::<Fused>();
        assert!(worst < 2.5e-7, "worst relative error {worst}");
        assert_eq!(exp_with::<Fused>(0.0), 1.0);
    }

    /// Worst relative error of `exp2_nonpositive_with::<M>` against f64's over [-126, 2⁻²⁰]
    /// (a little above 0, as a rounding can leave it), ends included.
    fn exp2_worst<M: MulAdd>() -> f64 {
        let mut worst = 0f64;
        let steps = 600_000;
        let top = 2f32.powi(-20);
        for i in 0..=steps {
            let x = -126.0 + (126.0 + top) * i as f32 / steps as f32;
            let want = (x as f64).exp2();
            worst = worst.max(((exp2_nonpositive_with::<M>(x) as f64 - want) / want).abs());
        }
        // Values near the integers, where the reduction switches `n`.
        for n in -126..=0 {
            for x in [
                n as f32 - 0.5,
                n as f32 + 0.5,
                n as f32 - 1e-3,
                n as f32 + 1e-3,
            ] {
                let x = x.clamp(-126.0, top);
                let want = (x as f64).exp2();
                worst = worst.max(((exp2_nonpositive_with::<M>(x) as f64 - want) / want).abs());
            }
        }
        worst
    }

    #[test]
    fn exp2_matches_std_with_and_without_fma() {
        for (what, worst) in [
            ("fused", exp2_worst::<Fused>()),
            ("unfused", exp2_worst::<Unfused>()),
        ] {
            assert!(worst < 2e-7, "{what}: worst relative error {worst}");
        }
        assert_eq!(exp2_nonpositive_with::<Fused>(0.0), 1.0);
        assert_eq!(exp2_nonpositive_with::<Fused>(-3.0), 0.125);
        // Below the range: the smallest normal power, not zero or garbage; NaN stays NaN.
        assert_eq!(exp2_nonpositive_with::<Fused>(-1000.0), 2f32.powi(-126));
        assert_eq!(
            exp2_nonpositive_with::<Fused>(f32::NEG_INFINITY),
            2f32.powi(-126)
        );
        assert!(exp2_nonpositive_with::<Fused>(f32::NAN).is_nan());
    }

    /// Softmax feeds the exponential −∞ for masked keys and huge values for overflowing
    /// scores: both must come out finite and ordered, never NaN or garbage exponents.
    #[test]
    fn exp_saturates_outside_its_range() {
        assert!(exp(f32::NEG_INFINITY) > 0.0 && exp(f32::NEG_INFINITY) < 1e-37);
        assert_eq!(exp(-1000.0), exp(-87.0));
        assert!(exp(f32::INFINITY).is_finite() && exp(f32::INFINITY) > 1e38);
        assert_eq!(exp(1000.0), exp(88.0));
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

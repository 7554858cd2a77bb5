//! Lane-by-lane imitation of torch's AVX2 Box–Muller kernel (`NormalFill16<float>`
//! under `CPU_CAPABILITY_AVX2`), whose `log` and `sincos` are the Cephes-derived
//! polynomials of Julien Pommier's `avx_mathfun`, not libm.
//!
//! Every step is one IEEE single-precision operation in the kernel's order. torch builds
//! that kernel with FMA enabled and the compiler fuses a multiply into the add or
//! subtract that consumes it, so the same steps here are fused (`mul_add`); without
//! that the results differ from torch's in the last bit.
//!
//! The constants are written as the C source's double literals rounded to `f32`, the
//! conversion the C initialisers perform (hence more digits than an `f32` holds).
#![allow(clippy::excessive_precision)]

/// ln(x) for x > 0 as `log256_ps` computes it (x ≤ 0 gives NaN).
pub(crate) fn log(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f64::consts::FRAC_1_SQRT_2 as f32;
    const P: [f32; 9] = [
        7.037_683_629_2E-2_f64 as f32,
        -1.151_461_031_0E-1_f64 as f32,
        1.167_699_874_0E-1_f64 as f32,
        -1.242_014_084_6E-1_f64 as f32,
        1.424_932_278_7E-1_f64 as f32,
        -1.666_805_766_5E-1_f64 as f32,
        2.000_071_476_5E-1_f64 as f32,
        -2.499_999_399_3E-1_f64 as f32,
        3.333_333_117_4E-1_f64 as f32,
    ];
    const Q1: f32 = -2.121_944_40e-4_f64 as f32;
    const Q2: f32 = 0.693_359_375_f32;

    if x.is_nan() || x <= 0.0 {
        return f32::NAN;
    }
    // Flush subnormals to the smallest normal, then split into exponent and a
    // mantissa in [0.5, 1).
    let x = x.max(f32::MIN_POSITIVE);
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32 - 0x7f) as f32 + 1.0;
    let mut m = f32::from_bits((bits & !0x7f80_0000) | 0.5f32.to_bits());
    // Fold the mantissa into [sqrt(1/2) - 1, sqrt(2) - 1).
    let below = m < SQRT_HALF;
    let extra = if below { m } else { 0.0 };
    m -= 1.0;
    e -= if below { 1.0 } else { 0.0 };
    m += extra;

    let z = m * m;
    let mut y = P[0].mul_add(m, P[1]);
    for &p in &P[2..] {
        y = y.mul_add(m, p);
    }
    y *= m;
    let y = y.mul_add(z, e * Q1);
    let y = (-z).mul_add(0.5, y);
    e.mul_add(Q2, m + y)
}

/// (sin x, cos x) as `sincos256_ps` computes them.
pub(crate) fn sincos(x: f32) -> (f32, f32) {
    const FOUR_OVER_PI: f32 = 1.273_239_544_735_16_f64 as f32;
    const MINUS_DP1: f32 = -0.785_156_25_f32;
    const MINUS_DP2: f32 = -2.418_756_484_985_351_562_5e-4_f64 as f32;
    const MINUS_DP3: f32 = -3.774_894_977_445_941_08e-8_f64 as f32;
    const SIN_P: [f32; 3] = [
        -1.951_529_589_1E-4_f64 as f32,
        8.332_160_873_6E-3_f64 as f32,
        -1.666_665_461_1E-1_f64 as f32,
    ];
    const COS_P: [f32; 3] = [
        2.443_315_711_809_948E-5_f64 as f32,
        -1.388_731_625_493_765E-3_f64 as f32,
        4.166_664_568_298_827E-2_f64 as f32,
    ];
    const SIGN: u32 = 0x8000_0000;

    let mut sin_sign = x.to_bits() & SIGN;
    let mut x = x.abs();
    // Octant index rounded up to even, as in Cephes.
    let octant = (((x * FOUR_OVER_PI) as i32).wrapping_add(1)) & !1;
    let y = octant as f32;
    if octant & 4 != 0 {
        sin_sign ^= SIGN;
    }
    let cos_sign = if !(octant.wrapping_sub(2)) & 4 != 0 {
        SIGN
    } else {
        0
    };
    let sine_first = octant & 2 == 0;

    // Extended-precision reduction x - y·π/4 in three parts.
    x = y.mul_add(MINUS_DP1, x);
    x = y.mul_add(MINUS_DP2, x);
    x = y.mul_add(MINUS_DP3, x);

    let z = x * x;
    let mut cos_poly = COS_P[0].mul_add(z, COS_P[1]);
    cos_poly = cos_poly.mul_add(z, COS_P[2]);
    cos_poly *= z;
    cos_poly = cos_poly.mul_add(z, -(z * 0.5));
    cos_poly += 1.0;

    let mut sin_poly = SIN_P[0].mul_add(z, SIN_P[1]);
    sin_poly = sin_poly.mul_add(z, SIN_P[2]);
    sin_poly *= z;
    sin_poly = sin_poly.mul_add(x, x);

    let (sin_abs, cos_abs) = if sine_first {
        (sin_poly, cos_poly)
    } else {
        (cos_poly, sin_poly)
    };
    (
        f32::from_bits(sin_abs.to_bits() ^ sin_sign),
        f32::from_bits(cos_abs.to_bits() ^ cos_sign),
    )
}

/// One 16-element Box–Muller block as torch's AVX2 kernel computes it (mean 0, std 1).
pub(crate) fn box_muller_16(block: &mut [f32]) {
    let two_pi = (2.0 * std::f64::consts::PI) as f32;
    for j in 0..8 {
        let u1 = 1.0f32 - block[j];
        let u2 = block[j + 8];
        let radius = (-2.0f32 * log(u1)).sqrt();
        let (sin, cos) = sincos(two_pi * u2);
        block[j] = radius * cos;
        block[j + 8] = radius * sin;
    }
}

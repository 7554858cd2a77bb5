//! Philox-4x32-10 normals as A1111's `rng_philox` computes them (its "NV" source),
//! which imitates `torch.randn` on a CUDA device: the same stream on any machine.
//!
//! Element `i` of the `k`-th `randn` call encrypts the counter `[k, 0, i, 0]` under the
//! key `(seed low 32 bits, seed high 32 bits)` and turns the first two output words into
//! one normal with the sine half of Box–Muller. A1111 does the Box–Muller arithmetic in
//! numpy, where `uint32 × float32` promotes to float64: so the constants are `f32`
//! values but the arithmetic is double precision, rounded to `f32` at the end.

use super::NoiseSource;

const MULTIPLIERS: [u32; 2] = [0xD251_1F53, 0xCD9E_8D57];
const KEY_STEPS: [u32; 2] = [0x9E37_79B9, 0xBB67_AE85];
const ROUNDS: usize = 10;

/// A Philox generator: a seed and the number of `randn` calls made so far.
#[derive(Clone, Debug)]
pub struct PhiloxGenerator {
    seed: u64,
    offset: u32,
}

impl PhiloxGenerator {
    pub fn new(seed: u64) -> Self {
        PhiloxGenerator { seed, offset: 0 }
    }

    /// The next `randn` of `n` elements (flattened); later calls continue the stream.
    pub fn randn(&mut self, n: usize) -> Vec<f32> {
        let key = [self.seed as u32, (self.seed >> 32) as u32];
        let offset = self.offset;
        self.offset = self.offset.wrapping_add(1);
        (0..n)
            .map(|index| {
                // The element index occupies one 32-bit counter word, as in A1111.
                let out = philox_4x32_10([offset, 0, index as u32, 0], key);
                box_muller_sine(out[0], out[1])
            })
            .collect()
    }
}

impl NoiseSource for PhiloxGenerator {
    fn randn(&mut self, n: usize) -> Vec<f32> {
        PhiloxGenerator::randn(self, n)
    }
}

/// Ten Philox rounds on one counter block, bumping the key between rounds.
pub fn philox_4x32_10(mut counter: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
    for round in 0..ROUNDS {
        if round > 0 {
            key[0] = key[0].wrapping_add(KEY_STEPS[0]);
            key[1] = key[1].wrapping_add(KEY_STEPS[1]);
        }
        let product0 = counter[0] as u64 * MULTIPLIERS[0] as u64;
        let product2 = counter[2] as u64 * MULTIPLIERS[1] as u64;
        counter = [
            (product2 >> 32) as u32 ^ counter[1] ^ key[0],
            product2 as u32,
            (product0 >> 32) as u32 ^ counter[3] ^ key[1],
            product0 as u32,
        ];
    }
    counter
}

/// `sqrt(-2 ln u) · sin v` with `u`, `v` spread over (0, 1) and (0, 2π) by A1111's
/// float32 constants, evaluated in double precision like numpy does.
fn box_muller_sine(x: u32, y: u32) -> f32 {
    // 2^-32 and 2^-32·2π as A1111 writes them, rounded to f32.
    let inv_2_32 = 2.328_306_4e-10_f32 as f64;
    let inv_2_32_two_pi = (2.328_306_4e-10_f64 * 6.283_185_5_f64) as f32 as f64;
    let u = x as f64 * inv_2_32 + (inv_2_32 as f32 / 2.0) as f64;
    let v = y as f64 * inv_2_32_two_pi + (inv_2_32_two_pi as f32 / 2.0) as f64;
    let radius = (-2.0 * u.ln()).sqrt();
    (radius * v.sin()) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A1111's `rng_philox` docstring: `Generator(seed=0).randn((3, 4))`, digits as printed.
    #[test]
    #[allow(clippy::excessive_precision)]
    fn matches_a1111_reference_for_seed_0() {
        let expected = [
            -0.924_662_59,
            -0.425_344_15,
            -2.643_845_7,
            0.145_183_88,
            -0.120_866_47,
            -0.579_725_64,
            -0.622_851_22,
            -0.328_387_09,
            -1.074_542_31,
            -0.363_144_07,
            -1.671_050_67,
            2.265_504_97,
        ];
        let got = PhiloxGenerator::new(0).randn(12);
        for (g, e) in got.iter().zip(expected) {
            // The docstring prints 8 significant digits.
            assert!((g - e).abs() < 1e-6, "{got:?}");
        }
    }

    /// Bit patterns from A1111's numpy computation (float64 Box–Muller rounded to
    /// float32): seed 0's first four values, and for seed 2^40 + 12345 the first three
    /// values of the second `randn(1000)` call.
    #[test]
    fn matches_a1111_numpy_bit_for_bit() {
        let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(PhiloxGenerator::new(0).randn(4)),
            [0xbf6c_b6ad, 0xbed9_c6af, 0xc029_34c5, 0x3e14_ab15]
        );
        let mut generator = PhiloxGenerator::new((1 << 40) + 12345);
        generator.randn(1000);
        assert_eq!(
            bits(generator.randn(1000)[..3].to_vec()),
            [0xbf86_14ec, 0x3e47_ff75, 0xc006_fb60]
        );
    }

    #[test]
    fn successive_calls_use_new_counters() {
        let mut generator = PhiloxGenerator::new(0);
        let first = generator.randn(4);
        let second = generator.randn(4);
        assert_ne!(first, second);
        assert_eq!(PhiloxGenerator::new(0).randn(4), first);
    }
}

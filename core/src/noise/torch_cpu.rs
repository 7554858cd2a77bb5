//! `torch.randn` on the CPU, reproduced bit for bit from torch's MT19937 generator.
//!
//! torch fills a float tensor in one of two ways (aten `normal_kernel`):
//! - 16 or more elements: every element first gets a 24-bit uniform float, then each
//!   block of 16 is turned into normals by Box–Muller in single precision (element `j`
//!   and `j + 8` share one pair of uniforms). When the length is not a multiple of 16,
//!   16 fresh uniforms are drawn over the last 16 elements and that block is redone, so
//!   `n + 16` uniforms are consumed.
//! - fewer than 16: each element is a double-precision normal from 53-bit uniforms,
//!   made two at a time; the second of each pair is cached on the generator and used by
//!   the next small draw, even one made in a later `randn` call.
//!
//! The single-precision block transform has two variants in torch, which differ in the
//! last bits: a vectorised one with polynomial `log`/`sincos` that x86 builds run on
//! CPUs with AVX2 (the AVX-512 kernels use it too), and a scalar loop over libm
//! `logf`/`cosf`/`sinf` everywhere else (Arm, including Apple silicon, and x86 without
//! AVX2). Both are reproduced here; PyPI torch 2.15 on an AVX-512 machine was checked
//! bit for bit against each (the scalar one via `ATEN_CPU_CAPABILITY=default`).

use super::avx_mathfun;
use super::mt19937::Mt19937;
use super::NoiseSource;

/// Which of torch's 16-wide Box–Muller kernels to imitate for tensors of 16+ elements.
/// The default is what torch does on current x86 PCs, where A1111 users mostly run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum NormalFillKernel {
    /// torch's AVX2 kernel (Cephes-style `log`/`sincos` polynomials), taken by x86
    /// builds on CPUs with AVX2 or AVX-512.
    #[default]
    Avx2,
    /// The portable loop over libm functions: torch on Arm (Apple silicon), on x86
    /// without AVX2, or with `ATEN_CPU_CAPABILITY=default`. Uses this platform's libm,
    /// which must be glibc-like for the last bit to agree.
    Scalar,
}

/// torch's CPU generator state as far as `randn` is concerned.
#[derive(Clone)]
pub struct TorchCpuGenerator {
    engine: Mt19937,
    /// The second normal of the last double-precision pair, waiting to be used.
    cached_normal: Option<f64>,
    kernel: NormalFillKernel,
}

/// 2^-24: spacing of torch's single-precision uniforms.
const FLOAT_UNIFORM_STEP: f32 = 1.0 / (1u32 << 24) as f32;
/// 2^-53: spacing of torch's double-precision uniforms.
const DOUBLE_UNIFORM_STEP: f64 = 1.0 / (1u64 << 53) as f64;
/// Tensors at least this long take the 16-wide single-precision path.
const BLOCK: usize = 16;

impl TorchCpuGenerator {
    /// `torch.Generator().manual_seed(seed)`, imitating the default (AVX2) kernel.
    pub fn new(seed: u64) -> Self {
        Self::with_kernel(seed, NormalFillKernel::default())
    }

    /// As [`TorchCpuGenerator::new`], imitating the given 16-wide kernel.
    pub fn with_kernel(seed: u64, kernel: NormalFillKernel) -> Self {
        TorchCpuGenerator {
            engine: Mt19937::new(seed),
            cached_normal: None,
            kernel,
        }
    }

    /// `torch.randn(n, generator=g)` as f32, advancing the generator like torch does.
    pub fn randn(&mut self, n: usize) -> Vec<f32> {
        if n >= BLOCK {
            self.randn_blocks(n)
        } else {
            (0..n).map(|_| self.next_double_normal() as f32).collect()
        }
    }

    /// A uniform float in [0, 1) from the low 24 bits of one draw.
    fn next_float_uniform(&mut self) -> f32 {
        (self.engine.next_u32() & 0x00ff_ffff) as f32 * FLOAT_UNIFORM_STEP
    }

    /// A uniform double in [0, 1) from the low 53 bits of a 64-bit draw.
    fn next_double_uniform(&mut self) -> f64 {
        (self.engine.next_u64() & ((1u64 << 53) - 1)) as f64 * DOUBLE_UNIFORM_STEP
    }

    /// torch's `normal_distribution<double>`: the cached value if there is one, else a
    /// fresh Box–Muller pair whose sine half is cached.
    fn next_double_normal(&mut self) -> f64 {
        if let Some(cached) = self.cached_normal.take() {
            return cached;
        }
        let angle_uniform = self.next_double_uniform();
        let radius_uniform = self.next_double_uniform();
        let radius = (-2.0 * (-radius_uniform).ln_1p()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * angle_uniform;
        self.cached_normal = Some(radius * theta.sin());
        radius * theta.cos()
    }

    fn randn_blocks(&mut self, n: usize) -> Vec<f32> {
        let mut data: Vec<f32> = (0..n).map(|_| self.next_float_uniform()).collect();
        let whole = n - n % BLOCK;
        for block in data[..whole].chunks_exact_mut(BLOCK) {
            self.box_muller_16(block);
        }
        if whole != n {
            let tail = &mut data[n - BLOCK..];
            for value in tail.iter_mut() {
                *value = self.next_float_uniform();
            }
            self.box_muller_16(tail);
        }
        data
    }

    fn box_muller_16(&self, block: &mut [f32]) {
        match self.kernel {
            NormalFillKernel::Scalar => box_muller_16_scalar(block),
            NormalFillKernel::Avx2 => avx_mathfun::box_muller_16(block),
        }
    }
}

impl NoiseSource for TorchCpuGenerator {
    fn randn(&mut self, n: usize) -> Vec<f32> {
        TorchCpuGenerator::randn(self, n)
    }
}

/// torch's portable `NormalFill16` for floats (mean 0, std 1, so its final
/// `fma(x, std, mean)` is the identity). The angle is formed in double precision
/// (`2.0f * pi<double> * u2`) and rounded to float, as the C++ expression does.
fn box_muller_16_scalar(block: &mut [f32]) {
    for j in 0..BLOCK / 2 {
        let u1 = 1.0f32 - block[j];
        let u2 = block[j + BLOCK / 2];
        let radius = (-2.0f32 * u1.ln()).sqrt();
        let theta = (2.0f64 * std::f64::consts::PI * u2 as f64) as f32;
        block[j] = radius * theta.cos();
        block[j + BLOCK / 2] = radius * theta.sin();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// Bit patterns printed by PyPI torch 2.15 for `g = torch.Generator().manual_seed(0)`
    /// then `torch.randn(17, generator=g)`, `torch.randn(3, ...)`, `torch.randn(1, ...)`,
    /// once with the AVX2 kernel (`ATEN_CPU_CAPABILITY=avx2`, same as the AVX-512
    /// default) and once with `ATEN_CPU_CAPABILITY=default` (the scalar kernel).
    #[test]
    fn matches_torch_bit_for_bit_across_calls() {
        let small_after = [0x3ed4_aa01, 0x3f24_7eca, 0xc00c_0a7d];
        let cases = [
            (
                NormalFillKernel::Avx2,
                [
                    0xbf90_1b85,
                    0xbfd9_1446,
                    0x3f11_1004,
                    0xbf57_fb33,
                    0x3f6e_8c30,
                ],
            ),
            (
                NormalFillKernel::Scalar,
                [
                    0xbf90_1b85,
                    0xbfd9_1447,
                    0x3f11_1002,
                    0xbf57_fb34,
                    0x3f6e_8c31,
                ],
            ),
        ];
        for (kernel, seventeen) in cases {
            let mut generator = TorchCpuGenerator::with_kernel(0, kernel);
            let first = generator.randn(17);
            let mut head_and_tail = bits(&first[..3]);
            head_and_tail.extend(bits(&first[15..]));
            assert_eq!(head_and_tail, seventeen, "{kernel:?}");
            // Small draws: double-precision pairs; the second element of the first pair
            // is served from the cache, the third element leaves one cached for `n = 1`.
            assert_eq!(bits(&generator.randn(3)), small_after, "{kernel:?}");
            assert_eq!(bits(&generator.randn(1)), [0x3f64_5aff], "{kernel:?}");
        }
    }
}

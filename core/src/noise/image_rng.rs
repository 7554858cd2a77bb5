//! Per-image noise for a batch, as A1111's `ImageRNG` makes it.
//!
//! Image `i` of a batch has its own generator seeded with its own seed (A1111 passes
//! `seed + i`). The first draw is the initial latent noise; later draws (the noise an
//! ancestral sampler adds each step) continue the same generators, unless an eta noise
//! seed delta (ENSD) is set: then, right after the first draw, every generator is
//! replaced by a fresh one seeded with `seed + ENSD`. NovelAI parity uses ENSD 31337.

use super::{generator, NoiseSource, RngKind};

/// One noise generator per image; draws return the whole batch, image after image.
pub struct ImageRng {
    kind: RngKind,
    seeds: Vec<u64>,
    eta_noise_seed_delta: u64,
    generators: Vec<Box<dyn NoiseSource>>,
    is_first: bool,
}

impl ImageRng {
    /// Generators for `seeds` (one per image); `eta_noise_seed_delta` 0 means none.
    pub fn new(kind: RngKind, seeds: &[u64], eta_noise_seed_delta: u64) -> Self {
        ImageRng {
            kind,
            seeds: seeds.to_vec(),
            eta_noise_seed_delta,
            generators: seeds.iter().map(|&seed| generator(kind, seed)).collect(),
            is_first: true,
        }
    }

    pub fn kind(&self) -> RngKind {
        self.kind
    }

    pub fn batch_size(&self) -> usize {
        self.seeds.len()
    }

    /// The initial noise: one `randn(shape)` per image, concatenated
    /// (`[batch, ..shape]`). Applies the ENSD re-seed afterwards.
    pub fn first(&mut self, shape: &[usize]) -> Vec<f32> {
        let noise = self.draw(shape);
        self.is_first = false;
        if self.eta_noise_seed_delta != 0 {
            let delta = self.eta_noise_seed_delta;
            self.generators = self
                .seeds
                .iter()
                .map(|&seed| generator(self.kind, seed.wrapping_add(delta)))
                .collect();
        }
        noise
    }

    /// The next draw for the whole batch; the very first call is [`ImageRng::first`],
    /// as in A1111.
    pub fn next(&mut self, shape: &[usize]) -> Vec<f32> {
        if self.is_first {
            return self.first(shape);
        }
        self.draw(shape)
    }

    fn draw(&mut self, shape: &[usize]) -> Vec<f32> {
        let per_image: usize = shape.iter().product();
        let mut batch = Vec::with_capacity(per_image * self.generators.len());
        for generator in &mut self.generators {
            batch.extend(generator.randn(per_image));
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise::{PhiloxGenerator, TorchCpuGenerator};

    #[test]
    fn batch_is_per_seed_generators_concatenated() {
        let shape = [4, 2, 3];
        let mut rng = ImageRng::new(RngKind::Cpu, &[10, 11], 0);
        let batch = rng.first(&shape);
        let mut a = TorchCpuGenerator::new(10);
        let mut b = TorchCpuGenerator::new(11);
        let expected: Vec<f32> = a.randn(24).into_iter().chain(b.randn(24)).collect();
        assert_eq!(batch, expected);
        let later: Vec<f32> = a.randn(24).into_iter().chain(b.randn(24)).collect();
        assert_eq!(rng.next(&shape), later);
    }

    #[test]
    fn ensd_reseeds_after_the_first_draw() {
        let mut rng = ImageRng::new(RngKind::Nv, &[5], 31337);
        assert_eq!(rng.next(&[8]), PhiloxGenerator::new(5).randn(8));
        assert_eq!(rng.next(&[8]), PhiloxGenerator::new(5 + 31337).randn(8));
        assert_eq!(rng.next(&[8]), {
            let mut g = PhiloxGenerator::new(5 + 31337);
            g.randn(8);
            g.randn(8)
        });
    }
}

//! A Brownian tree noise source for SDE samplers (DPM++ SDE, 2M SDE, 3M SDE).
//!
//! SDE samplers ask for the Brownian increment between two σ values; drawing it from a
//! tree makes the answer depend only on the seed and the interval, not on how many steps
//! were taken before, which is why A1111 gives these samplers one tree per image seed.
//!
//! The tree is built the same way torchsde's `BrownianTree` is (a Brownian bridge,
//! bisected until the query point is within a tolerance), but its random numbers are
//! not torchsde's: torchsde derives a seed for every node from numpy's `SeedSequence`
//! and draws with a fresh torch generator on the latent's device. Here each node's
//! normals come from a fresh Easel generator of the run's kind, seeded with a hash of the
//! image seed and the node's position. Same distribution and the same seed-determinism
//! as A1111, but not the same numbers; an SDE image therefore differs from A1111's
//! for the same seed.

use easel_core::noise::{generator, RngKind};
use easel_core::sampler::{NoiseRequest, NoiseSampler};
use std::collections::HashMap;

/// Bisection stops once the query is this close to a node, relative to the tree's span.
const RELATIVE_TOLERANCE: f64 = 1e-6;

/// The noise sampler an SDE sampler uses for `request`: one tree per image over the
/// positive σ range of the schedule.
pub fn brownian_noise_for(request: &NoiseRequest<'_>) -> Box<dyn NoiseSampler> {
    let positive = request.sigmas.iter().copied().filter(|s| *s > 0.0);
    let sigma_min = positive.clone().fold(f32::INFINITY, f32::min);
    let sigma_max = positive.fold(0.0f32, f32::max);
    let per_image: usize = request.shape.iter().product();
    Box::new(BrownianTreeNoise::new(
        request.rng,
        request.seeds,
        per_image,
        sigma_min as f64,
        sigma_max as f64,
    ))
}

/// One Brownian tree per image; noise for a batch is the images' noise concatenated.
pub struct BrownianTreeNoise {
    trees: Vec<BrownianTree>,
}

impl BrownianTreeNoise {
    pub fn new(
        kind: RngKind,
        seeds: &[u64],
        per_image: usize,
        sigma_min: f64,
        sigma_max: f64,
    ) -> Self {
        let (lo, hi) = if sigma_min <= sigma_max {
            (sigma_min, sigma_max)
        } else {
            (sigma_max, sigma_min)
        };
        BrownianTreeNoise {
            trees: seeds
                .iter()
                .map(|&seed| BrownianTree::new(kind, seed, per_image, lo, hi))
                .collect(),
        }
    }
}

impl NoiseSampler for BrownianTreeNoise {
    /// (W(σ_next) − W(σ)) / √|σ_next − σ|: a standard normal per element.
    fn noise(&mut self, sigma: f32, sigma_next: f32) -> Vec<f32> {
        let (a, b) = (sigma as f64, sigma_next as f64);
        let scale = (b - a).abs().sqrt();
        let mut out = Vec::new();
        for tree in &mut self.trees {
            let wa = tree.value(a);
            let wb = tree.value(b);
            out.extend(
                wb.iter()
                    .zip(&wa)
                    .map(|(q, p)| ((*q as f64 - *p as f64) / scale) as f32),
            );
        }
        out
    }
}

/// A Brownian path W on [t0, t1] with W(t0) = 0, sampled lazily at bisection points.
struct BrownianTree {
    kind: RngKind,
    seed: u64,
    len: usize,
    t0: f64,
    t1: f64,
    /// W at the midpoint of node `k` (root 1, children 2k and 2k+1); key 0 holds W(t1).
    nodes: HashMap<u64, Vec<f32>>,
}

/// splitmix64 finalizer: decorrelates (seed, node) pairs into generator seeds.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl BrownianTree {
    fn new(kind: RngKind, seed: u64, len: usize, t0: f64, t1: f64) -> Self {
        BrownianTree {
            kind,
            seed,
            len,
            t0,
            t1,
            nodes: HashMap::new(),
        }
    }

    /// Standard normals owned by `node`, identical whenever the same node is asked for.
    fn normals(&self, node: u64) -> Vec<f32> {
        let node_seed = mix(self.seed ^ mix(node.wrapping_add(0x9E37_79B9_7F4A_7C15)));
        generator(self.kind, node_seed).randn(self.len)
    }

    fn endpoint(&mut self) -> Vec<f32> {
        if !self.nodes.contains_key(&0) {
            let scale = (self.t1 - self.t0).sqrt() as f32;
            let z = self.normals(0);
            self.nodes
                .insert(0, z.into_iter().map(|v| v * scale).collect());
        }
        self.nodes[&0].clone()
    }

    /// W(t), clamping t into [t0, t1].
    fn value(&mut self, t: f64) -> Vec<f32> {
        let t = t.clamp(self.t0, self.t1);
        let (mut a, mut b) = (self.t0, self.t1);
        let mut wa = vec![0f32; self.len];
        let mut wb = self.endpoint();
        let tolerance = (self.t1 - self.t0) * RELATIVE_TOLERANCE;
        let mut node = 1u64;
        loop {
            if (t - a).abs() <= tolerance {
                return wa;
            }
            if (t - b).abs() <= tolerance {
                return wb;
            }
            let mid = 0.5 * (a + b);
            if !self.nodes.contains_key(&node) {
                // Brownian bridge: mean of the ends, variance (b − a)/4.
                let spread = ((b - a) / 4.0).sqrt() as f32;
                let z = self.normals(node);
                let w_mid = wa
                    .iter()
                    .zip(&wb)
                    .zip(z)
                    .map(|((p, q), z)| 0.5 * (p + q) + spread * z)
                    .collect();
                self.nodes.insert(node, w_mid);
            }
            let w_mid = self.nodes[&node].clone();
            if node >= 1 << 62 || b - a <= tolerance {
                let w = (t - a) / (b - a);
                return wa
                    .iter()
                    .zip(&wb)
                    .map(|(p, q)| p + (q - p) * w as f32)
                    .collect();
            }
            if t < mid {
                b = mid;
                wb = w_mid;
                node *= 2;
            } else {
                a = mid;
                wa = w_mid;
                node = node * 2 + 1;
            }
        }
    }
}

//! The Brownian-tree noise of the SDE samplers (DPM++ SDE, 2M SDE, 3M SDE), number for
//! number as A1111 makes it.
//!
//! A1111 gives these samplers k-diffusion's `BrownianTreeNoiseSampler` with one
//! `torchsde.BrownianTree` per image seed, spanning the schedule's positive σ range. A tree
//! answers "what is W(b) − W(a)?" from a dyadic bisection of that range: every node
//! splits at its (rounded) midpoint, and the split of a node's increment between its two
//! halves is a Brownian bridge drawn from a generator seeded by numpy's
//! [`SeedSequence`](crate::seed_sequence) from the image seed and the node's position. The
//! answer therefore depends only on the seed and the interval, never on the order of
//! queries or the batch size.
//!
//! Reproduced here: the tree shape (halfway splits, times rounded to 6 decimals as
//! torchsde's `tol=1e-6` does), the seed of every node, the f32 arithmetic of each bridge
//! step and the order of sums. Each node's normals come from a fresh generator of the
//! device the A1111 run used ([`TorchDevice`]).

use crate::seed_sequence::{int_words, SeedSequence};
use easel_core::noise::TorchDevice;
use easel_core::sampler::{NoiseRequest, NoiseSampler};
use std::collections::HashMap;

/// torchsde's `BrownianTree` defaults.
const POOL_SIZE: usize = 24;
/// Times are resolved to this many decimals (`tol = 1e-6`).
const DECIMALS: usize = 6;
/// Increments kept for reuse; like torchsde's LRU cache it only saves recomputation.
const CACHE_LIMIT: usize = 64;
/// Deeper than any tree over a float range at 1e-6 resolution; a guard, never reached.
const MAX_DEPTH: u32 = 120;

/// The noise sampler an SDE sampler uses for `request`: A1111's `create_noise_sampler`,
/// one tree per image seed over `[min positive σ, max σ]` of the schedule.
pub fn brownian_noise_for(request: &NoiseRequest<'_>) -> Box<dyn NoiseSampler> {
    let positive = request.sigmas.iter().copied().filter(|s| *s > 0.0);
    let sigma_min = positive.clone().fold(f32::INFINITY, f32::min);
    let sigma_max = request.sigmas.iter().copied().fold(0.0f32, f32::max);
    let per_image: usize = request.shape.iter().product();
    Box::new(BrownianTreeNoise::new(
        request.device,
        request.seeds,
        per_image,
        sigma_min,
        sigma_max,
    ))
}

/// k-diffusion's `BrownianTreeNoiseSampler` over a batch: one tree per image, the images'
/// noise concatenated.
pub struct BrownianTreeNoise {
    trees: Vec<BrownianTree>,
    /// −1 when the trees were built over a reversed range (k-diffusion sorts the ends).
    sign: f32,
}

impl BrownianTreeNoise {
    /// Trees for `seeds` over σ in `[t0, t1]` (either order), `per_image` values each.
    pub fn new(device: TorchDevice, seeds: &[u64], per_image: usize, t0: f32, t1: f32) -> Self {
        let (lo, hi, sign) = if t0 < t1 {
            (t0, t1, 1.0)
        } else {
            (t1, t0, -1.0)
        };
        BrownianTreeNoise {
            trees: seeds
                .iter()
                .map(|&seed| BrownianTree::new(device, seed, per_image, lo as f64, hi as f64))
                .collect(),
            sign,
        }
    }
}

impl NoiseSampler for BrownianTreeNoise {
    /// (W(σ_next) − W(σ)) / √|σ_next − σ|: a standard normal per element.
    fn noise(&mut self, sigma: f32, sigma_next: f32) -> Vec<f32> {
        let (lo, hi, sign) = if sigma < sigma_next {
            (sigma, sigma_next, 1.0)
        } else {
            (sigma_next, sigma, -1.0)
        };
        let sign = self.sign * sign;
        let scale = (sigma_next - sigma).abs().sqrt();
        let mut out = Vec::new();
        for tree in &mut self.trees {
            let w = tree.increment(lo as f64, hi as f64);
            out.extend(w.iter().map(|v| v * sign / scale));
        }
        out
    }
}

/// Python's `round(x, 6)`: the correctly rounded 6-decimal value (ties to even on the
/// exact binary value), back as the nearest double.
fn round_time(x: f64) -> f64 {
    format!("{x:.DECIMALS$}").parse().unwrap_or(x)
}

/// One node of the tree: an interval of time, and once split, its two halves.
struct Node {
    start: f64,
    end: f64,
    /// `None` for the root.
    parent: Option<usize>,
    is_left: bool,
    /// Position among the nodes of its depth (root 0, children 2k and 2k+1), part of the
    /// node's seed.
    spawn_key: u128,
    depth: u32,
    split: Option<Split>,
}

struct Split {
    midway: f64,
    /// Seed of the normals that place W(midway) between the node's ends.
    bridge_seed: u32,
    left: usize,
    right: usize,
}

/// torchsde's `BrownianTree` (a `BrownianInterval` with `halfway_tree=True`, `tol=1e-6`,
/// `pool_size=24`, no Lévy area) for one image.
pub struct BrownianTree {
    device: TorchDevice,
    entropy: Vec<u32>,
    len: usize,
    nodes: Vec<Node>,
    /// W(end) − W(start) over the whole range.
    root_increment: Vec<f32>,
    cache: HashMap<usize, Vec<f32>>,
    /// The node the previous query ended on; the next search starts there.
    last: usize,
}

impl BrownianTree {
    /// A tree for `seed` over `[t0, t1]` (`t0 <= t1`), `len` values per increment.
    pub fn new(device: TorchDevice, seed: u64, len: usize, t0: f64, t1: f64) -> Self {
        let entropy = int_words(seed as u128);
        let root_seeds = SeedSequence::new(&entropy, &[], POOL_SIZE).generate_state(3);
        // The whole-range increment is scaled by the unrounded span.
        let scale = (t1 - t0).max(0.0).sqrt() as f32;
        let root_increment = device
            .generator(root_seeds[0] as u64)
            .randn(len)
            .into_iter()
            .map(|v| v * scale)
            .collect();
        BrownianTree {
            device,
            entropy,
            len,
            nodes: vec![Node {
                start: round_time(t0),
                end: round_time(t1),
                parent: None,
                is_left: false,
                spawn_key: 0,
                depth: 0,
                split: None,
            }],
            root_increment,
            cache: HashMap::new(),
            last: 0,
        }
    }

    /// W(tb) − W(ta) for `ta <= tb`, times clamped into the tree's range.
    pub fn increment(&mut self, ta: f64, tb: f64) -> Vec<f32> {
        let (start, end) = (self.nodes[0].start, self.nodes[0].end);
        let ta = ta.max(start).min(end);
        let tb = tb.max(start).min(end);
        let (ta, tb) = (round_time(ta), round_time(tb));
        if ta >= tb {
            // Also when both ends round to the same time (torchsde recurses forever there).
            return vec![0.0; self.len];
        }
        let pieces = self.locate(ta, tb);
        let Some(&last) = pieces.last() else {
            return vec![0.0; self.len];
        };
        self.last = last;
        let mut total = self.node_increment(pieces[0]);
        for &piece in &pieces[1..] {
            let w = self.node_increment(piece);
            for (t, v) in total.iter_mut().zip(&w) {
                *t += v;
            }
        }
        total
    }

    /// The nodes that exactly tile `[ta, tb]`, left to right, splitting nodes as needed.
    /// The search starts from the last queried node (as torchsde's does).
    fn locate(&mut self, ta: f64, tb: f64) -> Vec<usize> {
        let mut out = Vec::new();
        let mut pending = vec![(self.last, ta, tb)];
        while let Some((node, ta, tb)) = pending.pop() {
            if let Some(found) = self.locate_from(node, ta, tb, &mut pending) {
                out.push(found);
            }
        }
        out
    }

    /// One search for `[ta, tb]` from `node`: climb to the first node containing it, then
    /// descend. A query straddling a midpoint is pushed back as its two halves (left on
    /// top, so pieces come out in order) and `None` is returned.
    fn locate_from(
        &mut self,
        mut node: usize,
        ta: f64,
        tb: f64,
        pending: &mut Vec<(usize, f64, f64)>,
    ) -> Option<usize> {
        loop {
            let (start, end) = (self.nodes[node].start, self.nodes[node].end);
            if ta < start || tb > end {
                node = self.nodes[node].parent?;
                continue;
            }
            if (ta == start && tb == end) || self.nodes[node].depth > MAX_DEPTH {
                return Some(node);
            }
            match &self.nodes[node].split {
                None => {
                    if ta == start {
                        self.split_until(node, tb);
                        node = self.children(node).0;
                    } else {
                        self.split_until(node, ta);
                        node = self.children(node).1;
                    }
                }
                Some(split) => {
                    let (midway, left, right) = (split.midway, split.left, split.right);
                    if tb <= midway {
                        node = left;
                    } else if ta >= midway {
                        node = right;
                    } else {
                        pending.push((right, midway, tb));
                        pending.push((left, ta, midway));
                        return None;
                    }
                }
            }
        }
    }

    fn children(&self, node: usize) -> (usize, usize) {
        let split = self.nodes[node]
            .split
            .as_ref()
            .expect("split_until always splits the node it is given");
        (split.left, split.right)
    }

    /// Halve `node`, then the half containing `target`, and so on until `target` is a
    /// midpoint (torchsde's halfway tree never splits anywhere but the middle).
    fn split_until(&mut self, mut node: usize, target: f64) {
        loop {
            if self.nodes[node].split.is_none() {
                self.split_in_half(node);
            }
            let split = self.nodes[node].split.as_ref().expect("just split");
            let (midway, left, right) = (split.midway, split.left, split.right);
            node = if target > midway {
                right
            } else if target < midway {
                left
            } else {
                return;
            };
            if self.nodes[node].depth > MAX_DEPTH {
                return;
            }
        }
    }

    fn split_in_half(&mut self, node: usize) {
        let (start, end, spawn_key, depth) = {
            let n = &self.nodes[node];
            (n.start, n.end, n.spawn_key, n.depth)
        };
        let midway = round_time(0.5 * (end + start));
        let key = [int_words(spawn_key), int_words(depth as u128)];
        let bridge_seed = SeedSequence::new(&self.entropy, &key, POOL_SIZE).generate_state(1)[0];
        let mut child = |start: f64, end: f64, is_left: bool| {
            self.nodes.push(Node {
                start,
                end,
                parent: Some(node),
                is_left,
                spawn_key: 2 * spawn_key + u128::from(!is_left),
                depth: depth + 1,
                split: None,
            });
            self.nodes.len() - 1
        };
        let left = child(start, midway, true);
        let right = child(midway, end, false);
        self.nodes[node].split = Some(Split {
            midway,
            bridge_seed,
            left,
            right,
        });
    }

    /// W(end) − W(start) of `node`: the root's own draw, otherwise its parent's increment
    /// divided by a Brownian bridge at the parent's midpoint.
    fn node_increment(&mut self, node: usize) -> Vec<f32> {
        // Climb to the nearest ancestor whose increment is known, then come back down.
        let mut path = Vec::new();
        let mut at = node;
        let mut w = loop {
            if let Some(w) = self.cache.get(&at) {
                break w.clone();
            }
            match self.nodes[at].parent {
                None => break self.root_increment.clone(),
                Some(parent) => {
                    path.push(at);
                    at = parent;
                }
            }
        };
        for &child in path.iter().rev() {
            w = self.bridge(child, &w);
            if self.cache.len() >= CACHE_LIMIT {
                self.cache.clear();
            }
            self.cache.insert(child, w.clone());
        }
        w
    }

    /// The increment of `child` given its parent's increment `parent_w`, in torchsde's f32
    /// operation order: W_left = ℓ·W·(1/h) + √(ℓ·r/h)·Z, W_right = W − W_left.
    fn bridge(&self, child: usize, parent_w: &[f32]) -> Vec<f32> {
        let parent = self.nodes[child]
            .parent
            .expect("only non-root nodes have a bridge");
        let p = &self.nodes[parent];
        let split = p.split.as_ref().expect("a parent is split");
        let h_reciprocal = 1.0 / (p.end - p.start);
        let left_diff = split.midway - p.start;
        let right_diff = p.end - split.midway;
        let spread = (left_diff * right_diff * h_reciprocal).sqrt() as f32;
        let (left_diff, h_reciprocal) = (left_diff as f32, h_reciprocal as f32);
        let z = self
            .device
            .generator(split.bridge_seed as u64)
            .randn(self.len);
        let is_left = self.nodes[child].is_left;
        parent_w
            .iter()
            .zip(z)
            .map(|(&w, z)| {
                let left_w = w * left_diff * h_reciprocal + spread * z;
                if is_left {
                    left_w
                } else {
                    w - left_w
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::round_time;

    #[test]
    fn times_round_like_python() {
        // Values from Python's round(x, 6), including an exact binary tie (to even).
        assert_eq!(round_time(0.0078125), 0.007812);
        assert_eq!(round_time(0.029167519882321358), 0.029168);
        assert_eq!(round_time(14.614641189575195), 14.614641);
        assert_eq!(round_time(3.0000005), 3.000001);
        assert_eq!(round_time(1e-7), 0.0);
    }
}

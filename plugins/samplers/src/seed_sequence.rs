//! numpy's `SeedSequence`, the seed-derivation scheme torchsde uses to give every node of
//! a Brownian tree its own reproducible seed.
//!
//! A sequence hashes its entropy (the image seed) and spawn key (a node's position in the
//! tree) into a pool of 32-bit words, then stretches the pool into as many output words as
//! asked. Reproducing it word for word is what makes Easel's SDE noise equal A1111's.
//! The algorithm is O'Neill's `seed_seq_fe` hash mixing as numpy implements it.

/// Starting multiplier of the entropy hash and how it evolves after each word.
const HASH_INIT_A: u32 = 0x43b0_d7e5;
const HASH_MULT_A: u32 = 0x931e_8875;
/// Starting multiplier of the output hash and how it evolves after each word.
const HASH_INIT_B: u32 = 0x8b51_f9dd;
const HASH_MULT_B: u32 = 0x58f3_8ded;
/// Weights of the two words combined by `mix`.
const MIX_MULT_L: u32 = 0xca01_f9dd;
const MIX_MULT_R: u32 = 0x4973_f715;
/// Half a word: the xorshift that folds high bits into low ones.
const XSHIFT: u32 = 16;

/// numpy's smallest (and default) pool size.
pub const MIN_POOL_SIZE: usize = 4;

/// A non-negative integer as numpy splits it into 32-bit words, least significant first;
/// zero is one zero word.
pub fn int_words(mut n: u128) -> Vec<u32> {
    let mut words = Vec::new();
    loop {
        words.push(n as u32);
        n >>= 32;
        if n == 0 {
            return words;
        }
    }
}

/// The hashed entropy pool of one `SeedSequence(entropy, spawn_key=…, pool_size=…)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedSequence {
    pool: Vec<u32>,
}

impl SeedSequence {
    /// `entropy` and every spawn-key element already as words (see [`int_words`]);
    /// `pool_size` at least [`MIN_POOL_SIZE`].
    pub fn new(entropy: &[u32], spawn_key: &[Vec<u32>], pool_size: usize) -> Self {
        let pool_size = pool_size.max(MIN_POOL_SIZE);
        let mut assembled = entropy.to_vec();
        if !spawn_key.is_empty() && assembled.len() < pool_size {
            // numpy pads the run entropy to the pool size whenever a spawn key follows, so
            // that a spawned child never collides with a parent of longer entropy.
            assembled.resize(pool_size, 0);
        }
        for element in spawn_key {
            assembled.extend_from_slice(element);
        }
        SeedSequence {
            pool: mix_entropy(&assembled, pool_size),
        }
    }

    /// `generate_state(n)` with the default `uint32` output.
    pub fn generate_state(&self, n: usize) -> Vec<u32> {
        let mut hash_const = HASH_INIT_B;
        (0..n)
            .map(|i| {
                let mut value = self.pool[i % self.pool.len()] ^ hash_const;
                hash_const = hash_const.wrapping_mul(HASH_MULT_B);
                value = value.wrapping_mul(hash_const);
                value ^ (value >> XSHIFT)
            })
            .collect()
    }
}

/// Hash one word with the running multiplier, advancing the multiplier.
fn hashmix(value: u32, hash_const: &mut u32) -> u32 {
    let mut value = value ^ *hash_const;
    *hash_const = hash_const.wrapping_mul(HASH_MULT_A);
    value = value.wrapping_mul(*hash_const);
    value ^ (value >> XSHIFT)
}

fn mix(x: u32, y: u32) -> u32 {
    let result = MIX_MULT_L
        .wrapping_mul(x)
        .wrapping_sub(MIX_MULT_R.wrapping_mul(y));
    result ^ (result >> XSHIFT)
}

/// Fill a pool from the entropy words: hash the first `pool_size` words in (zeros past
/// the end), let every pool word influence every other, then fold in the remaining words.
fn mix_entropy(entropy: &[u32], pool_size: usize) -> Vec<u32> {
    let mut hash_const = HASH_INIT_A;
    let mut pool: Vec<u32> = (0..pool_size)
        .map(|i| hashmix(entropy.get(i).copied().unwrap_or(0), &mut hash_const))
        .collect();
    for src in 0..pool_size {
        for dst in 0..pool_size {
            if src != dst {
                let hashed = hashmix(pool[src], &mut hash_const);
                pool[dst] = mix(pool[dst], hashed);
            }
        }
    }
    for &word in entropy.iter().skip(pool_size) {
        for slot in pool.iter_mut() {
            let hashed = hashmix(word, &mut hash_const);
            *slot = mix(*slot, hashed);
        }
    }
    pool
}

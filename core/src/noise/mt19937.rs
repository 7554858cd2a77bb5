//! The 32-bit Mersenne Twister exactly as torch's CPU generator runs it.
//!
//! torch seeds it with the low 32 bits of the 64-bit seed (Knuth's multiplier 1812433253)
//! and regenerates the whole 624-word state lazily, on the first draw after seeding and
//! after every 624 draws; the output stream is the standard MT19937 one, so the first
//! draw for seed 5489 is 3499211612.

/// Words of state.
const STATE_LEN: usize = 624;
/// Offset of the word mixed into each twisted word.
const SHIFT: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A seeded MT19937 stream of `u32`s.
#[derive(Clone)]
pub struct Mt19937 {
    state: [u32; STATE_LEN],
    /// Index of the next state word to temper; `STATE_LEN` means "twist first".
    next: usize,
}

impl Mt19937 {
    /// Seeds like `torch.Generator().manual_seed(seed)`: only the low 32 bits matter.
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; STATE_LEN];
        state[0] = seed as u32;
        for j in 1..STATE_LEN {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(j as u32);
        }
        Mt19937 {
            state,
            next: STATE_LEN,
        }
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        if self.next >= STATE_LEN {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// Two draws joined high word first, as torch's `random64()` does.
    pub fn next_u64(&mut self) -> u64 {
        let high = self.next_u32() as u64;
        let low = self.next_u32() as u64;
        (high << 32) | low
    }

    /// Regenerates all 624 words in place (each new word uses already-updated
    /// neighbours at `i + SHIFT` once `i + SHIFT` wraps past the end).
    fn twist(&mut self) {
        for i in 0..STATE_LEN {
            let mixed =
                (self.state[i] & UPPER_MASK) | (self.state[(i + 1) % STATE_LEN] & LOWER_MASK);
            let mut word = mixed >> 1;
            if mixed & 1 != 0 {
                word ^= MATRIX_A;
            }
            self.state[i] = self.state[(i + SHIFT) % STATE_LEN] ^ word;
        }
        self.next = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published MT19937 reference: the 10000th output for the default seed 5489 is
    /// 4123659995 (C++ standard, [rand.predef]); the first is 3499211612.
    #[test]
    fn matches_the_standard_mt19937_stream() {
        let mut mt = Mt19937::new(5489);
        assert_eq!(mt.next_u32(), 3_499_211_612);
        for _ in 1..9999 {
            mt.next_u32();
        }
        assert_eq!(mt.next_u32(), 4_123_659_995);
    }

    #[test]
    fn only_the_low_32_seed_bits_matter() {
        let mut a = Mt19937::new(7);
        let mut b = Mt19937::new(7 + (1u64 << 32));
        for _ in 0..1000 {
            assert_eq!(a.next_u32(), b.next_u32());
        }
    }
}

//! Deterministic randomness for randomized tests: a failure is replayed from its seed.

/// A pseudo-random sequence (xorshift) from a seed: the same seed rolls the same numbers.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    /// Dice seeded with `seed` (0 is replaced: xorshift would stay at 0).
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 { 0x2545_f491_4f6c_dd1d } else { seed })
    }

    /// Dice seeded from `FERRY_SEED` when it is set, else with `default`: a failing run is
    /// replayed by setting the seed it printed.
    pub fn from_env(default: u64) -> Self {
        let seed = std::env::var("FERRY_SEED").ok().and_then(|seed| seed.parse().ok());
        Self::new(seed.unwrap_or(default))
    }

    /// A number in `0..sides`.
    pub fn roll(&mut self, sides: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % sides
    }
}

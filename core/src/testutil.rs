//! Test-only helpers shared by the core's unit tests: one seeded generator.

extern crate std;

use alloc::vec::Vec;

/// SplitMix64: tiny, seedable, good enough for test data. Domain-specific generators (keys,
/// file descriptions) are added by `impl Rng` blocks next to the tests that need them.
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// A generator starting from `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// `STRATA_SEED` if set (to replay a failure), else a fresh seed from the clock.
    pub(crate) fn seed_from_env() -> u64 {
        match std::env::var("STRATA_SEED") {
            Ok(s) => s.parse().expect("STRATA_SEED must be a u64"),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64),
        }
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; 0 when `n == 0`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// `true` with probability `1 / n`.
    pub(crate) fn chance(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// `n` random bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// A random element of a non-empty slice.
    pub(crate) fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

/// A generator for test `test`, seeded from `STRATA_SEED` or the clock; prints the seed.
pub(crate) fn seeded(test: &str) -> Rng {
    let seed = Rng::seed_from_env();
    std::println!("{test}: seed {seed} (rerun with STRATA_SEED={seed})");
    Rng(seed)
}

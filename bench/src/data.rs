//! Keys, values and random orders, all derived from a seed so every engine sees the same data.

/// Keys are 16 ASCII digits: byte order is numeric order, as db_bench's keys.
pub const KEY_LEN: usize = 16;

pub fn key(i: u64) -> [u8; KEY_LEN] {
    let mut k = [b'0'; KEY_LEN];
    let mut n = i;
    for slot in k.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// SplitMix64: small, fast and good enough for workload randomness.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }
}

/// `0..n` in a random order (Fisher-Yates): a random fill writes every key exactly once, so
/// every later random read hits.
pub fn permutation(n: u64, seed: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..n).collect();
    let mut rng = Rng::new(seed);
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

/// Fills `out` with the value of key `i` at `version`: the key index and version up front
/// (so a read can check it got the right value), then random bytes for half the value and
/// zeros for the rest, so values compress to about half, like db_bench's default
/// (`--compression_ratio=0.5`).
pub fn value(i: u64, version: u32, size: usize, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&i.to_le_bytes());
    out.extend_from_slice(&version.to_le_bytes());
    let random_end = (size / 2).max(out.len());
    let mut rng = Rng::new(i.wrapping_mul(31).wrapping_add(version as u64));
    while out.len() < random_end {
        let r = rng.next_u64().to_le_bytes();
        let take = (random_end - out.len()).min(8);
        out.extend_from_slice(&r[..take]);
    }
    out.resize(size, 0);
}

/// Whether `v` is the value [`value`] makes for key `i` at `version` (its header and length).
pub fn value_matches(v: &[u8], i: u64, version: u32, size: usize) -> bool {
    v.len() == size
        && v.len() >= 12
        && v[..8] == i.to_le_bytes()
        && v[8..12] == version.to_le_bytes()
}

/// The key index a key encodes (for checks on scans).
pub fn key_index(k: &[u8]) -> Option<u64> {
    if k.len() != KEY_LEN {
        return None;
    }
    k.iter().try_fold(0u64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + (b - b'0') as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically_and_decode() {
        assert_eq!(&key(42), b"0000000000000042");
        assert!(key(9) < key(10));
        assert_eq!(key_index(&key(123_456_789)), Some(123_456_789));
        assert_eq!(key_index(b"short"), None);
    }

    #[test]
    fn values_carry_their_key_and_version() {
        let mut v = Vec::new();
        value(7, 3, 100, &mut v);
        assert_eq!(v.len(), 100);
        assert!(value_matches(&v, 7, 3, 100));
        assert!(!value_matches(&v, 7, 2, 100));
        assert!(!value_matches(&v, 8, 3, 100));
        assert!(v[50..].iter().all(|&b| b == 0));
    }

    #[test]
    fn permutation_has_every_index_once() {
        let mut p = permutation(1000, 5);
        assert_ne!(p[..10], (0..10).collect::<Vec<u64>>()[..]);
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<u64>>());
    }
}

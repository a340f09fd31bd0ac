//! The table's bloom filter over user keys, and the 64-bit hash it is built on.
//!
//! Both the hash and the probe sequence are part of the file format (`docs/format/sstable.md`,
//! "Filter block"): changing either makes every existing filter answer wrongly.

#![deny(clippy::indexing_slicing)]

use alloc::vec::Vec;

use bytes::Bytes;

use crate::error::CorruptionKind;

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xbf58_476d_1ce4_e5b9;
const K2: u64 = 0x94d0_49bb_1331_11eb;

/// The most probes a filter may declare. More buys nothing at any sane bits-per-key.
pub const MAX_PROBES: u8 = 30;

/// The SplitMix64 finaliser: a bijection on `u64` with full avalanche.
const fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(K1);
    x = (x ^ (x >> 27)).wrapping_mul(K2);
    x ^ (x >> 31)
}

/// Strata's 64-bit key hash (format-frozen).
///
/// `h = len * K0`; for each 8-byte chunk `w` (little-endian) `h = mix(h ^ w)`; a final partial
/// chunk is zero-padded to 8 bytes and folded the same way; the result is `mix(h ^ K0)`.
/// `mix` is the SplitMix64 finaliser. The length enters first, so zero padding cannot make two
/// keys collide.
pub fn hash64(data: &[u8]) -> u64 {
    let mut h = (data.len() as u64).wrapping_mul(K0);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = mix(h ^ u64::from_le_bytes(w));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        if let Some(dst) = w.get_mut(..rest.len()) {
            dst.copy_from_slice(rest);
        }
        h = mix(h ^ u64::from_le_bytes(w));
    }
    mix(h ^ K0)
}

/// Number of probes for `bits_per_key`: `round(bits_per_key * ln 2)`, clamped to
/// `1..=MAX_PROBES` (computed in integers so every build agrees).
pub fn probes_for(bits_per_key: u32) -> u8 {
    let k = (u64::from(bits_per_key) * 693_147 + 500_000) / 1_000_000;
    k.clamp(1, u64::from(MAX_PROBES)) as u8
}

/// Largest bit array: positions are 32-bit scaled values, so more bits could not be reached.
pub const MAX_FILTER_BITS: u64 = 1 << 32;

/// The bit positions a key sets or tests, by double hashing: with `a` the low and `b` the high
/// 32 bits of the key's hash, probe `i` is `g = (a + i * b) mod 2^32` scaled to the array,
/// `pos = (g * bits) >> 32`. (Deriving both from one hash reduced modulo `bits` would tie them
/// together for some sizes and multiply the false-positive rate.)
fn for_each_probe(h: u64, bits: u64, probes: u8, mut f: impl FnMut(u64) -> bool) -> bool {
    let bits = bits.min(MAX_FILTER_BITS);
    let (a, b) = (h as u32, (h >> 32) as u32);
    let mut g = a;
    for _ in 0..probes {
        if !f((u64::from(g) * bits) >> 32) {
            return false;
        }
        g = g.wrapping_add(b);
    }
    true
}

/// Collects the hashes of a table's distinct user keys.
#[derive(Debug)]
pub struct FilterBuilder {
    bits_per_key: u32,
    hashes: Vec<u64>,
}

impl FilterBuilder {
    /// A builder; `bits_per_key == 0` builds an empty filter that matches everything.
    pub fn new(bits_per_key: u32) -> Self {
        FilterBuilder { bits_per_key, hashes: Vec::new() }
    }

    /// Adds a user key (the caller passes each distinct key once).
    pub fn add(&mut self, user_key: &[u8]) {
        if self.bits_per_key > 0 {
            self.hashes.push(hash64(user_key));
        }
    }

    /// Approximate size of the finished filter block payload.
    pub fn estimated_size(&self) -> usize {
        self.hashes.len() * self.bits_per_key as usize / 8 + 1
    }

    /// The filter block payload: the bit array, then the probe count (1 byte).
    pub fn finish(&self) -> Vec<u8> {
        if self.bits_per_key == 0 || self.hashes.is_empty() {
            return alloc::vec![0];
        }
        let want = (self.hashes.len() as u64).saturating_mul(u64::from(self.bits_per_key));
        let want = want.clamp(64, MAX_FILTER_BITS);
        let bytes = usize::try_from(want.div_ceil(8)).unwrap_or(usize::MAX / 2);
        let bits = bytes as u64 * 8;
        let probes = probes_for(self.bits_per_key);
        let mut out = alloc::vec![0u8; bytes + 1];
        for &h in &self.hashes {
            for_each_probe(h, bits, probes, |p| {
                if let Some(b) = out.get_mut((p / 8) as usize) {
                    *b |= 1 << (p % 8);
                }
                true
            });
        }
        if let Some(last) = out.last_mut() {
            *last = probes;
        }
        out
    }
}

/// A decoded filter.
#[derive(Debug, Clone)]
pub struct Filter {
    data: Bytes,
    probes: u8,
}

impl Filter {
    /// Decodes a filter block payload. An empty bit array matches every key; otherwise the probe
    /// count must be in `1..=MAX_PROBES` (other values are reserved: `UnknownTag`).
    pub fn new(mut data: Bytes) -> Result<Filter, CorruptionKind> {
        let bytes = data.len().checked_sub(1).ok_or(CorruptionKind::Truncated)?;
        let probes = data.get(bytes).copied().ok_or(CorruptionKind::Truncated)?;
        data.truncate(bytes);
        if !data.is_empty() && !(1..=MAX_PROBES).contains(&probes) {
            return Err(CorruptionKind::UnknownTag(probes));
        }
        Ok(Filter { data, probes })
    }

    /// `false` only if `user_key` is certainly not in the table.
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        if self.data.is_empty() {
            return true;
        }
        let bits = self.data.len() as u64 * 8;
        for_each_probe(hash64(user_key), bits, self.probes, |p| {
            self.data.get((p / 8) as usize).is_some_and(|b| b & (1 << (p % 8)) != 0)
        })
    }

    /// Size of the bit array in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// `true` for a filter that matches everything.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_frozen() {
        // These values are part of the file format.
        assert_eq!(hash64(b""), mix(K0));
        let known = [hash64(b""), hash64(b"a"), hash64(b"strata"), hash64(b"0123456789abcdef!")];
        for (i, a) in known.iter().enumerate() {
            for b in known.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
        assert_ne!(hash64(b"a"), hash64(b"a\0"), "zero padding must not collide");
        assert_eq!(hash64(b"strata"), 0x8043_8446_344e_b81f);
        assert_eq!(hash64(b"a"), 0x6e21_4458_34d8_3cdd);
        assert_eq!(hash64(b""), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn probes_round_bits_times_ln2() {
        assert_eq!(probes_for(10), 7);
        assert_eq!(probes_for(1), 1);
        assert_eq!(probes_for(0), 1);
        assert_eq!(probes_for(20), 14);
        assert_eq!(probes_for(1000), MAX_PROBES);
    }

    #[test]
    fn filter_has_no_false_negatives_and_few_false_positives() {
        let mut b = FilterBuilder::new(10);
        for i in 0..10_000u32 {
            b.add(&i.to_be_bytes());
        }
        let f = Filter::new(Bytes::from(b.finish())).expect("valid filter");
        for i in 0..10_000u32 {
            assert!(f.may_contain(&i.to_be_bytes()));
        }
        let fp = (10_000..110_000u32).filter(|i| f.may_contain(&i.to_be_bytes())).count();
        assert!(fp <= 1_200, "false positive rate {}% (theory: 0.82%)", fp as f64 / 1000.0);
    }

    #[test]
    fn empty_filter_matches_everything_and_bad_probes_are_rejected() {
        let f = Filter::new(Bytes::from(FilterBuilder::new(0).finish())).expect("valid");
        assert!(f.may_contain(b"anything"));
        assert!(Filter::new(Bytes::new()).is_err());
        assert_eq!(
            Filter::new(Bytes::from_static(&[0xff, 0])).err(),
            Some(CorruptionKind::UnknownTag(0))
        );
        assert_eq!(
            Filter::new(Bytes::from_static(&[0xff, 31])).err(),
            Some(CorruptionKind::UnknownTag(31))
        );
    }
}

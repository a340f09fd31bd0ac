//! Internal keys: a user key plus the version it belongs to.
//!
//! Versions of one user key sort newest first: by commit timestamp descending, then by
//! sequence number descending. Without versioning the timestamp is the commit timestamp, which
//! grows with the sequence number, so the two orders agree; with versioning a write may carry
//! an older explicit timestamp and then sorts *behind* the newer history, which is exactly what
//! "writing an older version inserts history" means.
//!
//! Visibility is decided by the sequence number (MVCC snapshot) and, for time-travel reads, by
//! the timestamp. Both live in the key so every sorted structure (memtable, tables) can seek by
//! time without scanning.

use bytes::Bytes;
use core::cmp::Ordering;

/// A commit sequence number. One per committed transaction; every write of a transaction
/// carries it, so a snapshot sees all of a transaction or none of it.
pub type SeqNo = u64;

/// The largest sequence number (56 bits, leaving room to pack a kind beside it on disk).
pub const MAX_SEQ: SeqNo = (1 << 56) - 1;

/// Nanosecond timestamp of a version.
pub type Timestamp = u64;

/// What an internal key records. Values are frozen: they appear in files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ValueKind {
    /// The key was deleted (a tombstone).
    Delete = 0,
    /// The key holds the entry's value.
    Set = 1,
    /// The key's value lives in the value log; the entry holds a
    /// [`crate::vlog::ValuePointer`] to it.
    Pointer = 2,
}

impl ValueKind {
    /// The kind that sorts first among versions of equal timestamp and sequence number (kinds
    /// sort descending): what seek keys use.
    pub const FIRST: ValueKind = ValueKind::Pointer;

    /// `true` for the kinds that hold a value (inline or in the value log).
    pub const fn is_value(self) -> bool {
        matches!(self, ValueKind::Set | ValueKind::Pointer)
    }

    /// Decodes a stored kind; `None` for unknown values (corruption).
    pub const fn from_u8(v: u8) -> Option<ValueKind> {
        match v {
            0 => Some(ValueKind::Delete),
            1 => Some(ValueKind::Set),
            2 => Some(ValueKind::Pointer),
            _ => None,
        }
    }
}

/// A user key at one version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InternalKey {
    /// The key as the user wrote it.
    pub user_key: Bytes,
    /// The version's timestamp (commit time, or the explicit time of `set_at_version`).
    pub ts: Timestamp,
    /// The committing transaction's sequence number.
    pub seq: SeqNo,
    /// Set or delete.
    pub kind: ValueKind,
}

impl InternalKey {
    /// A key at one version.
    pub fn new(user_key: Bytes, ts: Timestamp, seq: SeqNo, kind: ValueKind) -> Self {
        InternalKey { user_key, ts, seq, kind }
    }

    /// The first internal key of `user_key` in sort order (at or before every real version).
    pub fn seek_first(user_key: Bytes) -> Self {
        Self::seek_at_time(user_key, Timestamp::MAX)
    }

    /// The first internal key of `user_key` whose timestamp is at most `ts`: the largest
    /// sequence number and [`ValueKind::FIRST`], so that no version at `ts` sorts before it
    /// (a version at `MAX_SEQ` of any kind included).
    pub fn seek_at_time(user_key: Bytes, ts: Timestamp) -> Self {
        InternalKey { user_key, ts, seq: MAX_SEQ, kind: ValueKind::FIRST }
    }

    /// The last internal key of `user_key` in sort order (older than every real version).
    pub fn seek_last(user_key: Bytes) -> Self {
        InternalKey { user_key, ts: 0, seq: 0, kind: ValueKind::Delete }
    }
}

impl Ord for InternalKey {
    fn cmp(&self, other: &Self) -> Ordering {
        user_keys_cmp(&self.user_key, &other.user_key)
            .then_with(|| other.ts.cmp(&self.ts))
            .then_with(|| other.seq.cmp(&self.seq))
            .then_with(|| (other.kind as u8).cmp(&(self.kind as u8)))
    }
}

impl PartialOrd for InternalKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The 8 bytes of `s` from `at`, if there are that many.
#[inline]
pub(crate) fn key_word(s: &[u8], at: usize) -> Option<[u8; 8]> {
    s.get(at..at.checked_add(8)?).and_then(|w| <[u8; 8]>::try_from(w).ok())
}

/// `a == b` for user keys, without a call into `memcmp` for keys of 8 to 16 bytes (the common
/// size): two overlapping 8-byte words cover such a key. A forward read asks this once per
/// entry (is it another version of the key just decided?), nearly always of keys that differ.
#[inline]
pub(crate) fn user_keys_equal(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if (8..=16).contains(&n) {
        return key_word(a, 0) == key_word(b, 0) && key_word(a, n - 8) == key_word(b, n - 8);
    }
    a == b
}

/// `a.cmp(b)` for user keys, without a call into `memcmp` when both are 8 to 16 bytes long and
/// of one length: their first 8 bytes, then their last 8, as big-endian words (when the first
/// words are equal, the bytes the two words share are too, so the last words order the rest).
/// A point read compares its key about 25 times on its way down.
#[inline]
pub(crate) fn user_keys_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len();
    if n == b.len() && (8..=16).contains(&n) {
        let word = |s: &[u8], at: usize| key_word(s, at).map(u64::from_be_bytes);
        return word(a, 0).cmp(&word(b, 0)).then_with(|| word(a, n - 8).cmp(&word(b, n - 8)));
    }
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// The word-wise comparisons (keys of 8 to 16 bytes) agree with plain slices: at every
    /// length, with one bit flipped anywhere, and between keys of one length from a two-letter
    /// alphabet (long shared prefixes, and pairs that differ in several bytes in opposite
    /// directions, which a little-endian word order would get wrong).
    #[test]
    fn word_wise_user_key_comparisons_agree_with_slices() {
        let keys: Vec<Vec<u8>> =
            (0..=40usize).map(|n| (0..n).map(|i| (i * 7 + n) as u8).collect()).collect();
        for a in &keys {
            for b in &keys {
                assert_eq!(user_keys_equal(a, b), a == b, "{a:?} {b:?}");
                assert_eq!(user_keys_cmp(a, b), a.cmp(b), "{a:?} {b:?}");
            }
            for i in 0..a.len() {
                let mut b = a.clone();
                if let Some(x) = b.get_mut(i) {
                    *x ^= 0x80;
                }
                assert!(!user_keys_equal(a, &b) && !user_keys_equal(&b, a), "at {i}");
                assert_eq!(user_keys_cmp(a, &b), a.as_slice().cmp(&b), "at {i} of {}", a.len());
            }
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for n in 0..=24usize {
            let same_len: Vec<Vec<u8>> = (0..24)
                .map(|_| {
                    (0..n)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            b'a' + (x & 1) as u8
                        })
                        .collect()
                })
                .collect();
            for a in &same_len {
                for b in &same_len {
                    assert_eq!(user_keys_cmp(a, b), a.cmp(b), "{a:?} {b:?}");
                    assert_eq!(user_keys_equal(a, b), a == b, "{a:?} {b:?}");
                }
            }
        }
    }

    fn k(user: &'static [u8], ts: u64, seq: u64) -> InternalKey {
        InternalKey::new(Bytes::from_static(user), ts, seq, ValueKind::Set)
    }

    #[test]
    fn versions_sort_newest_first_within_a_key() {
        assert!(k(b"a", 9, 1) < k(b"a", 8, 5), "greater timestamp first");
        assert!(k(b"a", 8, 5) < k(b"a", 8, 4), "then greater sequence first");
        assert!(k(b"a", 0, 0) < k(b"b", 9, 9), "user key dominates");
        for kind in [ValueKind::Delete, ValueKind::Set, ValueKind::Pointer] {
            let newest = InternalKey::new(Bytes::from_static(b"a"), u64::MAX, MAX_SEQ, kind);
            assert!(InternalKey::seek_first(Bytes::from_static(b"a")) <= newest, "{kind:?}");
            let at_5 = InternalKey::new(Bytes::from_static(b"a"), 5, MAX_SEQ, kind);
            assert!(InternalKey::seek_at_time(Bytes::from_static(b"a"), 5) <= at_5, "{kind:?}");
        }
        assert!(InternalKey::seek_last(Bytes::from_static(b"a")) >= k(b"a", 0, 0));
        assert!(InternalKey::seek_at_time(Bytes::from_static(b"a"), 5) < k(b"a", 5, 3));
        assert!(InternalKey::seek_at_time(Bytes::from_static(b"a"), 5) > k(b"a", 6, 3));
    }

    #[test]
    fn kinds_are_frozen() {
        assert_eq!(ValueKind::Delete as u8, 0);
        assert_eq!(ValueKind::Set as u8, 1);
        assert_eq!(ValueKind::from_u8(1), Some(ValueKind::Set));
        assert_eq!(ValueKind::Pointer as u8, 2);
        assert_eq!(ValueKind::from_u8(2), Some(ValueKind::Pointer));
        assert_eq!(ValueKind::from_u8(3), None);
    }
}

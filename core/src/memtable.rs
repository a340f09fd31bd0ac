//! The memtable: recent writes, sorted by internal key, readable while being written.
//!
//! This is the seam DESIGN §3 asks for: `insert`, `get` at a snapshot, cursors in both
//! directions and an approximate size. Behind it is [`skiplist::SkipList`], an arena skiplist
//! with one writer at a time whose readers never wait and never pin anything (entries live as
//! long as the memtable). Internal keys are unique (user key, timestamp, sequence number), so
//! an insert never meets an equal key.

#[allow(unsafe_code, reason = "the arena skiplist; see its module docs and docs/design.md")]
mod skiplist;

use alloc::collections::VecDeque;
use bytes::Bytes;
use core::ops::Bound;
use core::sync::atomic::{AtomicUsize, Ordering};
use strata_vfs::sync::AtomicU64;

use crate::iter::EntryRef;
use crate::key::{InternalKey, SeqNo, Timestamp, ValueKind};
use skiplist::SkipList;

/// How many entries a cursor copies out at a time.
const CURSOR_BATCH: usize = 64;

/// Result of a point lookup in one sorted source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The newest visible version is a value.
    Value {
        /// The version's timestamp.
        ts: Timestamp,
        /// The version's sequence number.
        seq: SeqNo,
        /// The value.
        value: Bytes,
    },
    /// The newest visible version's value is in the value log.
    Pointer {
        /// The version's timestamp.
        ts: Timestamp,
        /// The version's sequence number.
        seq: SeqNo,
        /// The encoded [`crate::vlog::ValuePointer`].
        pointer: Bytes,
    },
    /// The newest visible version is a tombstone.
    Deleted {
        /// The tombstone's timestamp.
        ts: Timestamp,
        /// The tombstone's sequence number.
        seq: SeqNo,
    },
    /// No visible version.
    Absent,
}

impl Lookup {
    /// `(ts, seq)` of the version found, for choosing among sources.
    pub fn version(&self) -> Option<(Timestamp, SeqNo)> {
        match self {
            Lookup::Value { ts, seq, .. }
            | Lookup::Pointer { ts, seq, .. }
            | Lookup::Deleted { ts, seq } => Some((*ts, *seq)),
            Lookup::Absent => None,
        }
    }
}

/// A sorted in-memory table of versions.
pub struct Memtable {
    list: SkipList,
    bytes: AtomicUsize,
    max_seq: AtomicU64,
    /// Identifies the WAL segment that holds this memtable's first write (for later flushes).
    first_wal_segment: u64,
}

impl core::fmt::Debug for Memtable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Memtable")
            .field("entries", &self.list.len())
            .field("bytes", &self.approximate_bytes())
            .finish()
    }
}

impl Memtable {
    /// An empty memtable whose first write will live in WAL segment `first_wal_segment`.
    pub fn new(first_wal_segment: u64) -> Self {
        Memtable {
            list: SkipList::new(),
            bytes: AtomicUsize::new(0),
            max_seq: AtomicU64::new(0),
            first_wal_segment,
        }
    }

    /// Inserts one version. Internal keys must be unique; the commit path guarantees it.
    pub fn insert(&self, key: InternalKey, value: Bytes) {
        // Charged as held: the node as allocated in the arena, plus the key and value bytes
        // it shares with the commit's batch copy.
        let shared = key.user_key.len() + value.len();
        self.max_seq.fetch_max(key.seq, Ordering::Relaxed);
        let node = self.list.insert(key, value);
        self.bytes.fetch_add(node + shared, Ordering::Relaxed);
    }

    /// Memory held, in bytes: every node as allocated and the key and value bytes the entries
    /// point to (not the batch headers beside them, nor the arena chunk's unused tail).
    pub fn approximate_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Number of versions held.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// `true` when nothing was inserted.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Largest sequence number inserted.
    pub fn max_seq(&self) -> SeqNo {
        self.max_seq.load(Ordering::Relaxed)
    }

    /// WAL segment holding this memtable's first write.
    pub fn first_wal_segment(&self) -> u64 {
        self.first_wal_segment
    }

    /// The newest version of `user_key` with `seq <= snapshot` and, if `at_ts` is given,
    /// `ts <= at_ts`. Seeks straight to the time bound, then skips versions too new for the
    /// snapshot.
    pub fn get(&self, user_key: &[u8], snapshot: SeqNo, at_ts: Option<Timestamp>) -> Lookup {
        // The probe borrows `user_key` and the walk reads each entry's key parts from its node:
        // a lookup allocates nothing and reaches an entry's value only for the answer.
        let probe = EntryRef::seek_at_time(user_key, at_ts.unwrap_or(Timestamp::MAX));
        let mut entry = self.list.lower_bound(Some((&probe, true)));
        while let Some(e) = entry {
            let k = e.parts();
            if k.user_key != user_key {
                break;
            }
            if k.seq <= snapshot {
                return match k.kind {
                    ValueKind::Set => {
                        Lookup::Value { ts: k.ts, seq: k.seq, value: e.value().clone() }
                    }
                    ValueKind::Pointer => {
                        Lookup::Pointer { ts: k.ts, seq: k.seq, pointer: e.value().clone() }
                    }
                    ValueKind::Delete => Lookup::Deleted { ts: k.ts, seq: k.seq },
                };
            }
            entry = e.next();
        }
        Lookup::Absent
    }

    /// Sequence number of the newest version of `user_key` at any time, if any.
    pub fn newest_seq(&self, user_key: &[u8]) -> Option<SeqNo> {
        let probe = EntryRef::seek_at_time(user_key, Timestamp::MAX);
        let mut best = None;
        let mut entry = self.list.lower_bound(Some((&probe, true)));
        while let Some(e) = entry {
            let k = e.parts();
            if k.user_key != user_key {
                break;
            }
            best = best.max(Some(k.seq));
            entry = e.next();
        }
        best
    }

    /// Copies up to `CURSOR_BATCH` entries after (or, backwards, before) `from` into `out`.
    fn fill(
        &self,
        from: Bound<&InternalKey>,
        forward: bool,
        out: &mut VecDeque<(InternalKey, Bytes)>,
    ) {
        let bound = match from {
            Bound::Included(k) => Some((EntryRef::of(k, &[]), true)),
            Bound::Excluded(k) => Some((EntryRef::of(k, &[]), false)),
            Bound::Unbounded => None,
        };
        let bound = bound.as_ref().map(|(k, inclusive)| (k, *inclusive));
        let mut entry =
            if forward { self.list.lower_bound(bound) } else { self.list.upper_bound(bound) };
        while let Some(e) = entry {
            out.push_back((e.key(), e.value().clone()));
            if out.len() >= CURSOR_BATCH {
                break;
            }
            entry = if forward { e.next() } else { e.prev() };
        }
    }
}

/// A one-directional cursor over a shared memtable, in internal-key order (forward) or
/// reverse order (backward). It copies entries out in small batches (a reference count per key
/// and value), so between calls it borrows nothing from the memtable and can live inside
/// long-lived iterators; a batch resumes with a search after the last key copied.
pub struct MemCursor<M: core::ops::Deref<Target = Memtable>> {
    mem: M,
    forward: bool,
    buf: VecDeque<(InternalKey, Bytes)>,
    /// The last key copied out; the next batch starts strictly after it.
    resume: Option<InternalKey>,
    exhausted: bool,
}

impl<M: core::ops::Deref<Target = Memtable>> core::fmt::Debug for MemCursor<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MemCursor").field("forward", &self.forward).finish()
    }
}

impl<M: core::ops::Deref<Target = Memtable>> MemCursor<M> {
    /// A cursor positioned at the first entry `>= start` (forward) or `<= start` (backward);
    /// `None` starts at the respective end.
    pub fn new(mem: M, forward: bool, start: Option<InternalKey>) -> Self {
        let mut cursor =
            MemCursor { mem, forward, buf: VecDeque::new(), resume: None, exhausted: false };
        let bound = match &start {
            Some(k) => Bound::Included(k),
            None => Bound::Unbounded,
        };
        cursor.mem.fill(bound, forward, &mut cursor.buf);
        cursor.note_fill();
        cursor
    }

    fn note_fill(&mut self) {
        match self.buf.back() {
            Some((k, _)) => self.resume = Some(k.clone()),
            None => self.exhausted = true,
        }
    }

    /// The current entry.
    pub fn peek(&self) -> Option<&(InternalKey, Bytes)> {
        self.buf.front()
    }

    /// Forward cursors: moves to the first entry `>= target` (never backwards), re-seeking the
    /// skiplist unless the target is inside the copied batch.
    pub fn seek_forward(&mut self, target: &InternalKey) {
        if !self.forward {
            return;
        }
        if self.buf.back().is_some_and(|(k, _)| k >= target) {
            while self.buf.front().is_some_and(|(k, _)| k < target) {
                self.buf.pop_front();
            }
            return;
        }
        if self.buf.is_empty() && self.exhausted {
            return;
        }
        self.buf.clear();
        self.exhausted = false;
        self.mem.fill(Bound::Included(target), true, &mut self.buf);
        self.note_fill();
    }

    /// Moves to the next entry in this cursor's direction.
    pub fn advance(&mut self) {
        self.take();
    }

    /// The current entry, owned, and a step past it.
    pub fn take(&mut self) -> Option<(InternalKey, Bytes)> {
        let entry = self.buf.pop_front();
        self.refill();
        entry
    }

    fn refill(&mut self) {
        if self.buf.is_empty() && !self.exhausted {
            match self.resume.take() {
                Some(last) => {
                    self.mem.fill(Bound::Excluded(&last), self.forward, &mut self.buf);
                    self.note_fill();
                }
                None => self.exhausted = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn put(m: &Memtable, k: &[u8], ts: u64, seq: u64, v: Option<&[u8]>) {
        let kind = if v.is_some() { ValueKind::Set } else { ValueKind::Delete };
        m.insert(
            InternalKey::new(Bytes::copy_from_slice(k), ts, seq, kind),
            Bytes::copy_from_slice(v.unwrap_or_default()),
        );
    }

    #[test]
    fn get_respects_snapshot_and_time() {
        let m = Memtable::new(1);
        put(&m, b"a", 10, 1, Some(b"v1"));
        put(&m, b"a", 20, 2, Some(b"v2"));
        put(&m, b"a", 30, 3, None);
        put(&m, b"b", 15, 4, Some(b"b"));
        assert_eq!(m.get(b"a", 0, None), Lookup::Absent);
        assert_eq!(
            m.get(b"a", 1, None),
            Lookup::Value { ts: 10, seq: 1, value: Bytes::from_static(b"v1") }
        );
        assert_eq!(
            m.get(b"a", 2, None),
            Lookup::Value { ts: 20, seq: 2, value: Bytes::from_static(b"v2") }
        );
        assert_eq!(m.get(b"a", 9, None), Lookup::Deleted { ts: 30, seq: 3 });
        assert_eq!(
            m.get(b"a", 9, Some(25)),
            Lookup::Value { ts: 20, seq: 2, value: Bytes::from_static(b"v2") }
        );
        assert_eq!(m.get(b"a", 9, Some(5)), Lookup::Absent);
        assert_eq!(m.get(b"c", 9, None), Lookup::Absent);
        assert_eq!(m.newest_seq(b"a"), Some(3));
        assert_eq!(m.newest_seq(b"zz"), None);
        assert_eq!(m.max_seq(), 4);
        assert!(m.approximate_bytes() > 0);
    }

    /// The borrowed probe a lookup searches with is the owned seek key, part for part.
    #[test]
    fn borrowed_seek_probe_is_the_owned_seek_key() {
        for ts in [0, 7, Timestamp::MAX] {
            let owned = InternalKey::seek_at_time(Bytes::from_static(b"k"), ts);
            assert_eq!(EntryRef::seek_at_time(b"k", ts), EntryRef::of(&owned, &[]));
        }
    }

    #[test]
    fn cursors_walk_both_directions_across_batches() {
        let m = Memtable::new(1);
        for i in 0..500u32 {
            put(&m, &i.to_be_bytes(), 1, u64::from(i) + 1, Some(b"x"));
        }
        let mut fwd = MemCursor::new(&m, true, None);
        let mut seen = Vec::new();
        while let Some((k, _)) = fwd.peek() {
            seen.push(k.seq);
            fwd.advance();
        }
        assert_eq!(seen, (1..=500).collect::<Vec<_>>());
        let start = InternalKey::seek_last(Bytes::copy_from_slice(&250u32.to_be_bytes()));
        let mut back = MemCursor::new(&m, false, Some(start));
        let mut seen = Vec::new();
        while let Some((k, _)) = back.peek() {
            seen.push(k.seq);
            back.advance();
        }
        assert_eq!(seen, (1..=251).rev().collect::<Vec<_>>());
    }
}

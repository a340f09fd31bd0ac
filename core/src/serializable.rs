//! Serializable validation: what a transaction read, and the recent writes it is checked
//! against at commit.
//!
//! ```text
//! Transaction (Serializable)                    Commit path (under the commit lock)
//!   get(k) ........ ReadSet.points += k           for each request with a read set:
//!   range(lo..hi) . ReadSet.ranges += lo..hi        any WriteLog key in the read set
//!     (a limit that stops the scan narrows it         committed after read_seq? -> conflict
//!      to what it returned: ScanTracker)          for each accepted commit (while tracking):
//!   commit ........ CommitRequest.reads             WriteLog += its keys at its seq
//! ```
//!
//! A serializable transaction that writes commits only if nothing it read changed between its
//! snapshot and its commit, so it behaves as if it ran at its commit point; read-only
//! transactions serialize at their snapshot and are never checked. Ranges are checked as
//! ranges, so an insert into a scanned range (a phantom) is a conflict.
//!
//! Memory is bounded on both sides. The write log keeps a commit's keys only while a live
//! serializable snapshot is older than it, and at most [`MAX_TRACKED_WRITES`] entries: past
//! that, the oldest are dropped and any transaction whose snapshot is older than what was
//! dropped fails validation (a spurious conflict, never a missed one). A read set past
//! [`MAX_TRACKED_POINTS`] points or [`MAX_TRACKED_RANGES`] ranges is coarsened to covering
//! ranges: only the transaction itself can fail more often because of it.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::ops::Bound;
use strata_vfs::sync::Mutex;

use crate::iter::KeyRange;
use crate::key::SeqNo;
use crate::mvcc::ConflictOracle;

/// Point reads one transaction tracks before they are folded into one covering range.
pub const MAX_TRACKED_POINTS: usize = 16 * 1024;
/// Ranges one transaction tracks before they are merged into one covering range.
pub const MAX_TRACKED_RANGES: usize = 1024;
/// Write-log entries kept for validation before the oldest are forgotten.
pub const MAX_TRACKED_WRITES: usize = 1 << 20;

/// How a transaction is isolated from concurrent ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Isolation {
    /// Snapshot isolation: reads see the snapshot taken at begin; a commit fails only if
    /// another transaction committed a write to one of the same keys after that snapshot.
    /// Allows write skew and phantoms.
    #[default]
    Snapshot,
    /// Serializable: as Snapshot, and a transaction that writes also fails at commit if any
    /// key or range it read was written by a transaction that committed after its snapshot.
    /// Every history of serializable writers (with readers at any level) is equivalent to
    /// running them one at a time in commit order.
    Serializable,
}

/// What one serializable transaction read: keys (found or absent) and scanned ranges.
///
/// Keys are kept as the conflict oracle's 64-bit fingerprints (no copy of the key; a
/// collision can only cause a spurious conflict), plus the smallest and largest key read so
/// that too many of them can fold into one covering range.
#[derive(Debug, Default, Clone)]
pub struct ReadSet {
    /// Fingerprints of the keys read, unsorted, possibly repeated.
    points: Vec<u64>,
    /// Smallest and largest key read.
    point_span: Option<(Bytes, Bytes)>,
    /// Scanned ranges with the id their scan was given, ascending by id.
    ranges: Vec<(u64, KeyRange)>,
    next_id: u64,
}

impl ReadSet {
    /// Records a point read of `key` (found or absent), whose oracle fingerprint is
    /// `fingerprint`.
    pub fn add_point(&mut self, key: &[u8], fingerprint: u64) {
        self.points.push(fingerprint);
        match &mut self.point_span {
            None => {
                let k = Bytes::copy_from_slice(key);
                self.point_span = Some((k.clone(), k));
            }
            Some((lo, _)) if key < lo.as_ref() => *lo = Bytes::copy_from_slice(key),
            Some((_, hi)) if key > hi.as_ref() => *hi = Bytes::copy_from_slice(key),
            Some(_) => {}
        }
        if self.points.len() > MAX_TRACKED_POINTS {
            // Repeated reads first; fold only if the distinct keys still fill half the room,
            // so sorting stays amortised.
            self.points.sort_unstable();
            self.points.dedup();
            if self.points.len() > MAX_TRACKED_POINTS / 2 {
                self.fold_points();
            }
        }
    }

    /// Fingerprints of the keys read (checked against [`crate::mvcc::ConflictOracle`]).
    pub fn points(&self) -> &[u64] {
        &self.points
    }

    /// Records a scan of `range` and returns the id its tracker narrows it by.
    pub fn add_range(&mut self, range: KeyRange) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        if !range.is_empty() {
            self.ranges.push((id, range));
        }
        if self.ranges.len() > MAX_TRACKED_RANGES {
            self.merge_ranges();
        }
        id
    }

    /// Shrinks scan `id` to what it returned, once a limit stopped it: from its lower bound
    /// up to `front_last` (the last key returned going forward, if any) and from `back_last`
    /// (the last key returned going backward, if any) up to its upper bound. A scan that was
    /// merged into a coarser range is left alone (the coarse range still covers it).
    pub fn narrow(&mut self, id: u64, front_last: Option<&[u8]>, back_last: Option<&[u8]>) {
        let Ok(pos) = self.ranges.binary_search_by_key(&id, |(i, _)| *i) else { return };
        let (_, full) = self.ranges.remove(pos);
        let mut parts = Vec::with_capacity(2);
        if let Some(f) = front_last {
            parts.push(KeyRange {
                lower: full.lower.clone(),
                upper: Bound::Included(Bytes::copy_from_slice(f)),
            });
        }
        if let Some(b) = back_last {
            parts.push(KeyRange {
                lower: Bound::Included(Bytes::copy_from_slice(b)),
                upper: full.upper.clone(),
            });
        }
        // Ids stay ascending: the parts take the removed entry's place.
        for (offset, part) in parts.into_iter().enumerate() {
            self.ranges.insert(pos + offset, (id, part));
        }
    }

    /// `true` when nothing was read.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.ranges.is_empty()
    }

    /// Points tracked.
    pub fn point_count(&self) -> usize {
        self.points.len()
    }

    /// Ranges tracked.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Replaces every point by the one range from the smallest to the largest.
    fn fold_points(&mut self) {
        self.points.clear();
        if let Some((lo, hi)) = self.point_span.take() {
            self.add_range(KeyRange { lower: Bound::Included(lo), upper: Bound::Included(hi) });
        }
    }

    /// Replaces every range by the one range covering them all.
    fn merge_ranges(&mut self) {
        let mut iter = self.ranges.drain(..).map(|(_, r)| r);
        let Some(mut covering) = iter.next() else { return };
        for r in iter {
            covering.lower = min_lower(covering.lower, r.lower);
            covering.upper = max_upper(covering.upper, r.upper);
        }
        let id = self.next_id;
        self.next_id += 1;
        self.ranges.push((id, covering));
    }
}

fn min_lower(a: Bound<Bytes>, b: Bound<Bytes>) -> Bound<Bytes> {
    match (&a, &b) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => Bound::Unbounded,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if x < y || (x == y && matches!(a, Bound::Included(_))) { a } else { b }
        }
    }
}

fn max_upper(a: Bound<Bytes>, b: Bound<Bytes>) -> Bound<Bytes> {
    match (&a, &b) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => Bound::Unbounded,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if x > y || (x == y && matches!(a, Bound::Included(_))) { a } else { b }
        }
    }
}

/// A transaction's read set, shared with the range iterators it handed out (they narrow their
/// scan when a limit stops them).
pub type SharedReadSet = Arc<Mutex<ReadSet>>;

/// Held by a range iterator of a serializable transaction: narrows the scan's recorded range
/// to what it returned when its limit stops it.
#[derive(Debug, Clone)]
pub struct ScanTracker {
    reads: SharedReadSet,
    id: u64,
}

impl ScanTracker {
    /// Records a scan of `range` in `reads` and returns its tracker.
    pub fn start(reads: &SharedReadSet, range: KeyRange) -> Self {
        let id = reads.lock().add_range(range);
        ScanTracker { reads: Arc::clone(reads), id }
    }

    /// The scan's limit stopped it after these keys (see [`ReadSet::narrow`]).
    pub fn stopped_by_limit(&self, front_last: Option<&[u8]>, back_last: Option<&[u8]>) {
        self.reads.lock().narrow(self.id, front_last, back_last);
    }
}

/// The keys recent commits wrote, with the sequence number of the newest write of each, kept
/// for as long as a live serializable transaction may have to be validated against them.
#[derive(Debug, Default)]
pub struct WriteLog {
    /// Keys as `Arc<[u8]>`: one allocation each, shared by both indexes.
    newest: BTreeMap<Arc<[u8]>, SeqNo>,
    /// Every recorded write in commit order, so pruning pops from the front.
    order: VecDeque<(SeqNo, Arc<[u8]>)>,
    /// Writes at or before this sequence number may have been dropped to bound memory.
    forgotten_through: SeqNo,
    /// Sequence number of the last recorded write.
    last: SeqNo,
}

impl WriteLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the commit at `seq` wrote `key`.
    pub fn record(&mut self, seq: SeqNo, key: &[u8]) {
        let key: Arc<[u8]> = Arc::from(key);
        self.newest.insert(Arc::clone(&key), seq);
        self.order.push_back((seq, key));
        self.last = self.last.max(seq);
        while self.order.len() > MAX_TRACKED_WRITES {
            let Some((s, _)) = self.order.front() else { break };
            self.forgotten_through = self.forgotten_through.max(*s);
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((s, k)) = self.order.pop_front()
            && self.newest.get(&k) == Some(&s)
        {
            self.newest.remove(&k);
        }
    }

    /// `true` if a commit after `read_seq` wrote a key inside one of the ranges of `reads`,
    /// or if such a write may have been forgotten. (Points are the oracle's: see
    /// [`read_conflict`].)
    pub fn conflicts(&self, read_seq: SeqNo, reads: &ReadSet) -> bool {
        if reads.ranges.is_empty() || self.last <= read_seq {
            return false;
        }
        if read_seq < self.forgotten_through {
            return true;
        }
        let newer = |s: &SeqNo| *s > read_seq;
        reads.ranges.iter().any(|(_, r)| {
            !r.is_empty()
                && self
                    .newest
                    .range::<[u8], _>((as_ref_bound(&r.lower), as_ref_bound(&r.upper)))
                    .any(|(_, s)| newer(s))
        })
    }

    /// Forgets writes no live serializable snapshot can be validated against: those at or
    /// before `oldest` (the oldest live serializable snapshot), or all of them if none is live.
    pub fn prune(&mut self, oldest: Option<SeqNo>) {
        match oldest {
            None => {
                self.newest.clear();
                self.order.clear();
            }
            Some(oldest) => {
                while self.order.front().is_some_and(|(s, _)| *s <= oldest) {
                    self.pop_front();
                }
            }
        }
    }

    /// Writes recorded.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// `true` when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// The validation of a serializable commit: `true` if a commit after `read_seq` wrote a key
/// `reads` read (by the oracle, which remembers every write a live snapshot can conflict
/// with) or a key inside a range it scanned (by the write log).
pub fn read_conflict(
    oracle: &ConflictOracle,
    log: &WriteLog,
    read_seq: SeqNo,
    reads: &ReadSet,
) -> bool {
    oracle.conflicts(read_seq, reads.points()) || log.conflicts(read_seq, reads)
}

fn as_ref_bound(b: &Bound<Bytes>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn range(lo: &str, hi: &str) -> KeyRange {
        KeyRange { lower: Bound::Included(b(lo)), upper: Bound::Excluded(b(hi)) }
    }

    /// An oracle and a write log that both saw the commit at `seq` write `key`.
    #[derive(Default)]
    struct Committed {
        oracle: ConflictOracle,
        log: WriteLog,
    }

    impl Committed {
        fn write(&mut self, seq: SeqNo, key: &[u8]) {
            let f = self.oracle.fingerprint(key);
            self.oracle.record(seq, &[f]);
            self.log.record(seq, key);
        }

        fn point(&self, reads: &mut ReadSet, key: &[u8]) {
            reads.add_point(key, self.oracle.fingerprint(key));
        }

        fn conflicts(&self, read_seq: SeqNo, reads: &ReadSet) -> bool {
            read_conflict(&self.oracle, &self.log, read_seq, reads)
        }
    }

    #[test]
    fn points_conflict_only_with_newer_writes_of_the_same_key() {
        let mut c = Committed::default();
        c.write(5, b"a");
        let mut reads = ReadSet::default();
        c.point(&mut reads, b"a");
        assert!(c.conflicts(4, &reads));
        assert!(!c.conflicts(5, &reads));
        let mut other = ReadSet::default();
        c.point(&mut other, b"b");
        assert!(!c.conflicts(4, &other));
        assert!(!c.conflicts(4, &ReadSet::default()), "a read-only set never conflicts");
    }

    #[test]
    fn ranges_catch_inserts_of_keys_never_read() {
        let mut c = Committed::default();
        c.write(7, b"m");
        let mut reads = ReadSet::default();
        reads.add_range(range("a", "z"));
        assert!(c.conflicts(6, &reads), "a phantom inside the scanned range");
        let mut outside = ReadSet::default();
        outside.add_range(range("n", "z"));
        assert!(!c.conflicts(6, &outside));
    }

    #[test]
    fn a_limit_narrows_a_scan_to_what_it_returned() {
        let mut c = Committed::default();
        c.write(9, b"k");
        let mut reads = ReadSet::default();
        let id = reads.add_range(range("a", "z"));
        reads.narrow(id, Some(b"c".as_slice()), None);
        assert!(!c.conflicts(8, &reads), "k is past the last key the scan returned");
        c.write(10, b"c");
        assert!(c.conflicts(8, &reads), "c was returned, so it was read");
        let mut back = ReadSet::default();
        let id = back.add_range(range("a", "z"));
        back.narrow(id, None, Some(b"x".as_slice()));
        assert!(!back.is_empty());
        assert!(!c.conflicts(8, &back), "a backward scan stopped at x never saw c or k");
    }

    #[test]
    fn too_many_points_fold_into_one_covering_range() {
        let c = Committed::default();
        let mut reads = ReadSet::default();
        for i in 0..=MAX_TRACKED_POINTS {
            c.point(&mut reads, alloc::format!("p{i:08}").as_bytes());
        }
        assert_eq!(reads.points().len(), 0);
        assert_eq!(reads.range_count(), 1);
        let mut c = Committed::default();
        c.write(3, b"p00000005x");
        assert!(c.conflicts(2, &reads), "coarser: a key between two reads now conflicts");
        let mut c = Committed::default();
        c.write(3, b"q");
        assert!(!c.conflicts(2, &reads), "never wider than the points' span");
    }

    #[test]
    fn repeated_point_reads_do_not_fold() {
        let c = Committed::default();
        let mut reads = ReadSet::default();
        for _ in 0..=MAX_TRACKED_POINTS * 2 {
            c.point(&mut reads, b"same");
        }
        assert!(reads.points().len() < 8);
        assert_eq!(reads.range_count(), 0);
    }

    #[test]
    fn too_many_ranges_merge_into_one_covering_range() {
        let mut reads = ReadSet::default();
        for i in 0..=MAX_TRACKED_RANGES {
            let lo = alloc::format!("r{i:06}");
            let hi = alloc::format!("r{i:06}z");
            reads.add_range(range(&lo, &hi));
        }
        assert_eq!(reads.range_count(), 1);
        let mut c = Committed::default();
        c.write(3, b"r000010");
        assert!(c.conflicts(2, &reads));
        c.write(4, b"s");
        c.log.prune(Some(3));
        assert!(!c.log.conflicts(3, &reads), "s is outside every range");
    }

    #[test]
    fn pruning_keeps_what_live_snapshots_need_and_the_cap_fails_safe() {
        let mut log = WriteLog::new();
        for seq in 1..=10u64 {
            log.record(seq, alloc::format!("k{seq}").as_bytes());
        }
        log.prune(Some(5));
        assert_eq!(log.len(), 5);
        let mut reads = ReadSet::default();
        reads.add_range(range("k7", "k8"));
        assert!(log.conflicts(5, &reads));
        log.prune(None);
        assert!(log.is_empty());

        let mut log = WriteLog::new();
        for i in 0..=MAX_TRACKED_WRITES as u64 {
            log.record(i + 1, b"same");
        }
        assert_eq!(log.len(), MAX_TRACKED_WRITES);
        let mut unrelated = ReadSet::default();
        unrelated.add_range(range("o", "p"));
        assert!(log.conflicts(0, &unrelated), "writes were forgotten: fail rather than guess");
        assert!(!log.conflicts(MAX_TRACKED_WRITES as u64 + 1, &unrelated));
    }
}

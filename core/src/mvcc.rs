//! MVCC bookkeeping: which snapshots are alive, and which keys were committed when, so that
//! write-write conflicts are found at commit time in O(keys written).

use alloc::sync::Arc;
use core::hash::BuildHasher;
use core::sync::atomic::{AtomicUsize, Ordering};
use strata_vfs::sync::AtomicU64;

use hashbrown::HashMap;
use strata_vfs::sync::Mutex;

use crate::key::SeqNo;

/// The live snapshots, and the newest visible sequence number.
///
/// Taking a snapshot reads the visible sequence number and registers it under one lock, and
/// pruning reads the oldest registered snapshot under the same lock; so a snapshot can never
/// be older than what the conflict oracle has already forgotten.
///
/// Serializable snapshots are also counted on their own: the commit path records the keys
/// it writes for serializable validation only while one is live (see
/// [`Snapshots::serializable_live`]).
#[derive(Debug, Default)]
pub struct Snapshots {
    visible: AtomicU64,
    /// Live serializable snapshots. Paired with `visible` (both `SeqCst`) so that a commit
    /// either sees a new serializable snapshot or is seen by it.
    serializable: AtomicUsize,
    live: Mutex<Live>,
}

#[derive(Debug, Default)]
struct Live {
    /// Every live snapshot.
    all: SeqCounts,
    /// The serializable ones among them.
    serializable: SeqCounts,
}

impl Live {
    fn add(&mut self, seq: SeqNo, serializable: bool) {
        self.all.add(seq);
        if serializable {
            self.serializable.add(seq);
        }
    }

    fn remove(&mut self, seq: SeqNo, serializable: bool) {
        self.all.remove(seq);
        if serializable {
            self.serializable.remove(seq);
        }
    }
}

/// A multiset of sequence numbers: `(seq, how many)`, ascending by `seq`.
///
/// A sorted vector rather than a map: snapshots are nearly always taken at the newest visible
/// sequence number, so an insert lands at the end, and the vector keeps its buffer when it
/// empties. A `BTreeMap` allocated a node each time it went from empty to one entry and freed
/// it again, which was the case for every one-key transaction on an idle database.
#[derive(Debug, Default)]
struct SeqCounts(alloc::vec::Vec<(SeqNo, usize)>);

impl SeqCounts {
    fn add(&mut self, seq: SeqNo) {
        match self.0.binary_search_by_key(&seq, |e| e.0) {
            Ok(i) => {
                if let Some(e) = self.0.get_mut(i) {
                    e.1 += 1;
                }
            }
            Err(i) => self.0.insert(i, (seq, 1)),
        }
    }

    fn remove(&mut self, seq: SeqNo) {
        if let Ok(i) = self.0.binary_search_by_key(&seq, |e| e.0)
            && let Some(e) = self.0.get_mut(i)
        {
            e.1 -= 1;
            if e.1 == 0 {
                self.0.remove(i);
            }
        }
    }

    fn first(&self) -> Option<SeqNo> {
        self.0.first().map(|e| e.0)
    }

    fn seqs(&self) -> impl Iterator<Item = SeqNo> + '_ {
        self.0.iter().map(|e| e.0)
    }

    fn total(&self) -> usize {
        self.0.iter().map(|e| e.1).sum()
    }
}

impl Snapshots {
    /// A registry whose visible sequence number starts at `visible`.
    pub fn new(visible: SeqNo) -> Arc<Self> {
        Arc::new(Snapshots {
            visible: AtomicU64::new(visible),
            serializable: AtomicUsize::new(0),
            live: Mutex::new(Live::default()),
        })
    }

    /// The newest sequence number a new snapshot would see.
    pub fn visible(&self) -> SeqNo {
        self.visible.load(Ordering::SeqCst)
    }

    /// Publishes `seq` as visible. Called by the commit path after every write of `seq` is in
    /// the memtable, so readers see whole transactions.
    pub fn publish(&self, seq: SeqNo) {
        self.visible.store(seq, Ordering::SeqCst);
    }

    /// Registers a snapshot at the current visible sequence number.
    pub fn take(self: &Arc<Self>) -> Snapshot {
        let mut live = self.live.lock();
        let seq = self.visible();
        live.add(seq, false);
        Snapshot { seq, serializable: false, registry: Arc::clone(self) }
    }

    /// Registers a serializable snapshot. It is counted before the visible sequence number is
    /// read: a commit that publishes after this read must then see the count (see
    /// [`serializable_live`](Self::serializable_live)) and record its keys.
    pub fn take_serializable(self: &Arc<Self>) -> Snapshot {
        let mut live = self.live.lock();
        self.serializable.fetch_add(1, Ordering::SeqCst);
        let seq = self.visible();
        live.add(seq, true);
        Snapshot { seq, serializable: true, registry: Arc::clone(self) }
    }

    /// `true` while a serializable snapshot is live (or being taken). A commit path that
    /// reads this after publishing and finds it `false` knows that no serializable snapshot
    /// reads at a sequence number before the one it published.
    pub fn serializable_live(&self) -> bool {
        self.serializable.load(Ordering::SeqCst) > 0
    }

    /// The oldest sequence number any live snapshot reads at (the visible one if none).
    pub fn oldest(&self) -> SeqNo {
        let live = self.live.lock();
        live.all.first().unwrap_or_else(|| self.visible())
    }

    /// The oldest sequence number a live serializable snapshot reads at, if any is live.
    pub fn oldest_serializable(&self) -> Option<SeqNo> {
        self.live.lock().serializable.first()
    }

    /// [`oldest`](Self::oldest) and [`oldest_serializable`](Self::oldest_serializable) under
    /// one lock (the commit path wants both after every group).
    pub fn oldest_both(&self) -> (SeqNo, Option<SeqNo>) {
        let live = self.live.lock();
        let oldest = live.all.first().unwrap_or_else(|| self.visible());
        (oldest, live.serializable.first())
    }

    /// The sequence numbers live snapshots read at, ascending, without duplicates.
    pub fn live_seqs(&self) -> alloc::vec::Vec<SeqNo> {
        self.live.lock().all.seqs().collect()
    }

    /// Number of live snapshots.
    pub fn count(&self) -> usize {
        self.live.lock().all.total()
    }

    fn release(&self, seq: SeqNo, serializable: bool) {
        let mut live = self.live.lock();
        live.remove(seq, serializable);
        if serializable {
            self.serializable.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// A registered read point. Versions it can see are kept until it is dropped.
#[derive(Debug)]
pub struct Snapshot {
    seq: SeqNo,
    serializable: bool,
    registry: Arc<Snapshots>,
}

impl Snapshot {
    /// The sequence number this snapshot reads at.
    pub fn seq(&self) -> SeqNo {
        self.seq
    }

    /// `true` for a snapshot taken with [`Snapshots::take_serializable`] (or a clone of one).
    pub fn is_serializable(&self) -> bool {
        self.serializable
    }
}

impl Clone for Snapshot {
    fn clone(&self) -> Self {
        let mut live = self.registry.live.lock();
        if self.serializable {
            self.registry.serializable.fetch_add(1, Ordering::SeqCst);
        }
        live.add(self.seq, self.serializable);
        Snapshot {
            seq: self.seq,
            serializable: self.serializable,
            registry: Arc::clone(&self.registry),
        }
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.registry.release(self.seq, self.serializable);
    }
}

/// Remembers, per key fingerprint, the sequence number of the last commit that wrote it, for
/// as long as some live snapshot is older than that commit.
///
/// Keys are remembered by a 64-bit hash: a collision can only make a commit fail with a
/// spurious conflict (which the caller retries), never let a real conflict through.
#[derive(Debug, Default)]
pub struct ConflictOracle {
    last_write: HashMap<u64, SeqNo>,
    hasher: hashbrown::DefaultHashBuilder,
    /// Size after the last prune; pruning again once the map doubles keeps it amortised O(1).
    pruned_len: usize,
}

impl ConflictOracle {
    /// An empty oracle.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty oracle fingerprinting keys with `hasher` (shared with whoever computes
    /// fingerprints outside the commit lock, such as serializable read sets).
    pub fn with_hasher(hasher: hashbrown::DefaultHashBuilder) -> Self {
        ConflictOracle { hasher, ..Self::default() }
    }

    /// Fingerprint of a key.
    pub fn fingerprint(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// `true` if any key (by fingerprint) was committed after `read_seq`.
    pub fn conflicts(&self, read_seq: SeqNo, fingerprints: &[u64]) -> bool {
        fingerprints.iter().any(|f| self.last_write.get(f).is_some_and(|&s| s > read_seq))
    }

    /// Records that `seq` wrote these keys.
    pub fn record(&mut self, seq: SeqNo, fingerprints: &[u64]) {
        for f in fingerprints {
            self.last_write.insert(*f, seq);
        }
    }

    /// Forgets writes no live snapshot can conflict with (those at or before `oldest`).
    pub fn prune(&mut self, oldest: SeqNo) {
        if self.last_write.len() < 1024 || self.last_write.len() < self.pruned_len * 2 {
            return;
        }
        self.last_write.retain(|_, s| *s > oldest);
        self.pruned_len = self.last_write.len();
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.last_write.len()
    }

    /// `true` when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.last_write.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_register_and_release() {
        let s = Snapshots::new(5);
        assert_eq!(s.oldest(), 5);
        let a = s.take();
        s.publish(9);
        let b = s.take();
        let b2 = b.clone();
        assert_eq!((a.seq(), b.seq()), (5, 9));
        assert_eq!(s.oldest(), 5);
        assert_eq!(s.count(), 3);
        drop(a);
        assert_eq!(s.oldest(), 9);
        drop(b);
        drop(b2);
        assert_eq!(s.count(), 0);
        assert_eq!(s.oldest(), 9);
    }

    /// Snapshots taken and released in any order, at old and new sequence numbers: the
    /// oldest, the list and the count always match a map of counts.
    #[test]
    fn snapshot_counts_match_a_map_in_any_release_order() {
        let s = Snapshots::new(0);
        let mut model: alloc::collections::BTreeMap<SeqNo, usize> = Default::default();
        let mut held = alloc::vec::Vec::new();
        let mut rng = crate::testutil::Rng::new(7);
        for step in 0..2_000u64 {
            if rng.below(3) == 0 {
                s.publish(step / 4);
            }
            if held.is_empty() || rng.below(2) == 0 {
                let snap = s.take();
                *model.entry(snap.seq()).or_default() += 1;
                held.push(snap);
            } else {
                let snap = held.swap_remove(rng.below(held.len() as u64) as usize);
                let n = model.get_mut(&snap.seq()).map(|n| {
                    *n -= 1;
                    *n
                });
                if n == Some(0) {
                    model.remove(&snap.seq());
                }
            }
            let want_oldest = model.keys().next().copied().unwrap_or_else(|| s.visible());
            assert_eq!(s.oldest(), want_oldest, "step {step}");
            assert_eq!(s.live_seqs(), model.keys().copied().collect::<alloc::vec::Vec<_>>());
            assert_eq!(s.count(), model.values().sum::<usize>());
        }
    }

    #[test]
    fn serializable_snapshots_are_counted_apart() {
        let s = Snapshots::new(3);
        assert!(!s.serializable_live());
        let plain = s.take();
        assert_eq!(s.oldest_serializable(), None);
        s.publish(4);
        let ser = s.take_serializable();
        assert!(ser.is_serializable() && s.serializable_live());
        let ser2 = ser.clone();
        assert_eq!(s.oldest_serializable(), Some(4));
        assert_eq!(s.oldest(), 3);
        drop(ser);
        assert!(s.serializable_live(), "the clone still counts");
        drop(ser2);
        assert!(!s.serializable_live());
        assert_eq!(s.oldest_serializable(), None);
        drop(plain);
        assert_eq!(s.count(), 0);
    }

    #[test]
    fn oracle_detects_only_newer_writes() {
        let mut o = ConflictOracle::new();
        let k = o.fingerprint(b"k");
        let other = o.fingerprint(b"other");
        o.record(10, &[k]);
        assert!(o.conflicts(9, &[k]));
        assert!(!o.conflicts(10, &[k]));
        assert!(!o.conflicts(9, &[other]));
    }

    #[test]
    fn prune_keeps_what_live_snapshots_need() {
        let mut o = ConflictOracle::new();
        let fps: alloc::vec::Vec<u64> =
            (0..4000u32).map(|i| o.fingerprint(&i.to_le_bytes())).collect();
        for (i, f) in fps.iter().enumerate() {
            o.record(i as u64 + 1, &[*f]);
        }
        o.prune(3000);
        assert_eq!(o.len(), 1000);
        assert!(o.conflicts(3500, &[fps[3999]]));
        assert!(!o.conflicts(2000, &[fps[10]]), "pruned writes are older than every snapshot");
    }
}

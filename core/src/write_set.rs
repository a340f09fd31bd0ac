//! A transaction's pending writes at the commit timestamp, kept as the commit batch itself.
//!
//! Every set and delete is encoded into a [`WriteBatch`] the moment it is made, and a hash
//! index maps each written key to the offset of its newest op. Committing a transaction whose
//! keys were each written once hands that batch over as it is; a key written again leaves its
//! older op in the buffer as dead bytes, and only then is the batch copied without them.
//!
//! Why not an ordered map of owned keys and values: that cost two allocations and two tree
//! searches per write, and a second pass to encode the batch at commit (about a third of the
//! instructions of a 1,000-key transaction; `docs/performance.md`, fourth pass). Ordered reads
//! of the pending writes (a range scan laid over them) are served from a sorted list of
//! offsets, built the first time a range asks and extended, not rebuilt, after more writes.
//!
//! The ops keep write order in the batch, so a commit inserts them into the memtable in that
//! order; nothing downstream depends on a batch's ops being sorted (its keys are unique).

use alloc::vec::Vec;
use bytes::Bytes;
use core::hash::BuildHasher;
use core::ops::Bound;
use hashbrown::{DefaultHashBuilder, HashTable};
use strata_vfs::sync::Mutex;

use crate::batch::{BatchOp, HEADER_LEN, WriteBatch};
use crate::iter::OverlayEntry;

/// Ops a lookup walks before the write set builds its hash index. A transaction of a few
/// writes (the common one-key commit) then costs no hashing and no table allocation; walking
/// eight short ops costs about what hashing one key does.
const LINEAR_OPS: u32 = 8;

/// Dead bytes tolerated before a rewrite of the batch, whatever the live size: below this a
/// copy would cost more than the memory it returns.
const COMPACT_AFTER_DEAD_BYTES: usize = 64 * 1024;

/// Pending writes at the commit timestamp, each key at most once live.
#[derive(Debug)]
pub struct WriteSet {
    /// The commit batch under construction: every op in write order, superseded ones included.
    batch: WriteBatch,
    /// One entry per written key: its hash (kept, so growing the table rehashes nothing) and
    /// the offset in `batch` of its newest op. Built only once the batch holds more than
    /// [`LINEAR_OPS`] ops; until then a lookup walks the ops.
    index: HashTable<(u64, usize)>,
    /// Keys written (live ops).
    keys: usize,
    hasher: DefaultHashBuilder,
    /// Encoded bytes of superseded ops still in `batch`.
    dead: usize,
    /// Live op offsets in key order, for range reads (built on demand).
    sorted: Mutex<SortedOps>,
}

/// Offsets of live ops sorted by key, covering the ops that start before `upto`. Offsets whose
/// op was superseded since are dropped the next time the list is brought up to date.
#[derive(Debug, Default)]
struct SortedOps {
    offsets: Vec<usize>,
    upto: usize,
}

impl Default for WriteSet {
    fn default() -> Self {
        WriteSet {
            batch: WriteBatch::new(),
            index: HashTable::new(),
            keys: 0,
            hasher: DefaultHashBuilder::default(),
            dead: 0,
            sorted: Mutex::new(SortedOps { offsets: Vec::new(), upto: HEADER_LEN }),
        }
    }
}

/// The key of the op at `at` (empty if none starts there, which the offsets this module
/// records never do).
fn key_at(batch: &WriteBatch, at: usize) -> &[u8] {
    batch.op_at(at).map_or(&[][..], |(op, _)| op.key())
}

/// Points `key`'s index entry at the op at `at`, adding the entry if there is none; returns the
/// offset it pointed at before (the op `at` supersedes).
fn point_index(
    index: &mut HashTable<(u64, usize)>,
    batch: &WriteBatch,
    hash: u64,
    key: &[u8],
    at: usize,
) -> Option<usize> {
    match index.find_mut(hash, |&(h, old)| h == hash && key_at(batch, old) == key) {
        Some((_, slot)) => Some(core::mem::replace(slot, at)),
        None => {
            index.insert_unique(hash, (hash, at), |e| e.0);
            None
        }
    }
}

/// The value of a set (`Some`) or `None` for a delete, of the op at `at`.
fn value_at(batch: &WriteBatch, at: usize) -> Option<&[u8]> {
    match batch.op_at(at) {
        Some((BatchOp::Set { value, .. }, _)) => Some(value),
        _ => None,
    }
}

impl WriteSet {
    /// Number of keys written.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// Whether lookups go through the hash index (else they walk the ops).
    fn indexed(&self) -> bool {
        self.batch.count() > LINEAR_OPS
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        if !self.indexed() {
            // The newest op of the key is its last one.
            let mut found = None;
            let mut at = HEADER_LEN;
            while let Some((op, end)) = self.batch.op_at(at) {
                if op.key() == key {
                    found = Some(at);
                }
                at = end;
            }
            return found;
        }
        let hash = self.hasher.hash_one(key);
        self.index.find(hash, |&(h, at)| h == hash && key_at(&self.batch, at) == key).map(|e| e.1)
    }

    /// The pending write of `key`: `Some(Some(value))` for a set, `Some(None)` for a delete,
    /// `None` if the key was not written.
    pub fn get(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.find(key).map(|at| value_at(&self.batch, at))
    }

    /// Encoded size of the op `key` has now (0 if it has none): what a new write replaces.
    pub fn op_len(&self, key: &[u8]) -> usize {
        self.find(key).and_then(|at| self.batch.op_at(at).map(|(_, end)| end - at)).unwrap_or(0)
    }

    /// Writes `value` under `key` (`None` deletes), superseding any earlier write of it.
    pub fn put(&mut self, key: &[u8], value: Option<&[u8]>) {
        let at = self.batch.encoded_len();
        let was_indexed = self.indexed();
        // Small batches: the op this write supersedes, found by walking them before it is added.
        let walked = if was_indexed { None } else { self.find(key) };
        match value {
            Some(v) => self.batch.set(key, v),
            None => self.batch.delete(key),
        }
        let superseded = if was_indexed {
            let hash = self.hasher.hash_one(key);
            point_index(&mut self.index, &self.batch, hash, key, at)
        } else {
            walked
        };
        match superseded {
            Some(old) => self.dead += self.batch.op_at(old).map_or(0, |(_, end)| end - old),
            None => self.keys += 1,
        }
        if !was_indexed && self.indexed() {
            self.build_index();
        }
        if self.dead > COMPACT_AFTER_DEAD_BYTES && self.dead > self.batch.encoded_len() / 2 {
            // Rewriting one key over and over keeps the buffer within twice the live size.
            let live = self.batch.encoded_len() - self.dead;
            self.batch = self.live_batch(live);
            self.dead = 0;
            self.reindex();
        }
    }

    /// A copy of the batch with only the live ops, in write order, sized `capacity` bytes.
    fn live_batch(&self, capacity: usize) -> WriteBatch {
        let mut out = WriteBatch::with_capacity(capacity);
        let mut at = HEADER_LEN;
        while let Some((op, end)) = self.batch.op_at(at) {
            if self.find(op.key()) == Some(at) {
                out.push_op(&op);
            }
            at = end;
        }
        out
    }

    /// Rebuilds the index (and forgets the sorted offsets) after the batch was rewritten
    /// without its dead ops.
    fn reindex(&mut self) {
        self.keys = self.batch.count() as usize;
        self.build_index();
        *self.sorted.lock() = SortedOps { offsets: Vec::new(), upto: HEADER_LEN };
    }

    /// Indexes every op, later ones superseding earlier ones of the same key; leaves the
    /// index empty while the batch is small enough to walk.
    fn build_index(&mut self) {
        self.index.clear();
        if !self.indexed() {
            return;
        }
        let mut at = HEADER_LEN;
        while let Some((op, end)) = self.batch.op_at(at) {
            let hash = self.hasher.hash_one(op.key());
            point_index(&mut self.index, &self.batch, hash, op.key(), at);
            at = end;
        }
    }

    /// The pending writes with keys inside `bounds`, in key order (deletes as `None`).
    pub fn range(&self, bounds: (Bound<&[u8]>, Bound<&[u8]>)) -> Vec<OverlayEntry> {
        let mut sorted = self.sorted.lock();
        self.bring_up_to_date(&mut sorted);
        let key = |at: &usize| key_at(&self.batch, *at);
        let start = match bounds.0 {
            Bound::Included(l) => sorted.offsets.partition_point(|at| key(at) < l),
            Bound::Excluded(l) => sorted.offsets.partition_point(|at| key(at) <= l),
            Bound::Unbounded => 0,
        };
        let within = |k: &[u8]| match bounds.1 {
            Bound::Included(u) => k <= u,
            Bound::Excluded(u) => k < u,
            Bound::Unbounded => true,
        };
        sorted
            .offsets
            .iter()
            .skip(start)
            .map(|at| (key(at), value_at(&self.batch, *at)))
            .take_while(|(k, _)| within(k))
            .map(|(k, v)| (Bytes::copy_from_slice(k), v.map(Bytes::copy_from_slice)))
            .collect()
    }

    /// Sorts the ops written since the last range read and merges them in, dropping offsets
    /// of ops superseded meanwhile: linear in the live keys plus a sort of the new ones.
    fn bring_up_to_date(&self, sorted: &mut SortedOps) {
        let end = self.batch.encoded_len();
        if sorted.upto >= end {
            return;
        }
        let live =
            |at: usize| self.batch.op_at(at).is_some_and(|(op, _)| self.find(op.key()) == Some(at));
        let mut fresh = Vec::new();
        let mut at = sorted.upto;
        while let Some((_, next)) = self.batch.op_at(at) {
            if live(at) {
                fresh.push(at);
            }
            at = next;
        }
        let key = |at: &usize| key_at(&self.batch, *at);
        fresh.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        let old = core::mem::take(&mut sorted.offsets);
        let mut merged = Vec::with_capacity(old.len() + fresh.len());
        let mut old = old.into_iter().filter(|&at| live(at)).peekable();
        let mut fresh = fresh.into_iter().peekable();
        loop {
            let take_old = match (old.peek(), fresh.peek()) {
                (Some(a), Some(b)) => key(a) < key(b),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_old { old.next() } else { fresh.next() };
            merged.extend(next);
        }
        sorted.offsets = merged;
        sorted.upto = end;
    }

    /// Ends the write set: the commit batch of its live writes, its buffer sized for
    /// `capacity` bytes in all (the transaction appends its versioned writes after these).
    pub fn into_batch(self, capacity: usize) -> WriteBatch {
        if self.dead == 0 {
            let mut batch = self.batch;
            batch.reserve_total(capacity);
            return batch;
        }
        self.live_batch(capacity)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::batch::op_encoded_len;
    use crate::testutil::Rng;
    use alloc::collections::BTreeMap;
    use alloc::format;

    type Model = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

    fn model_size(model: &Model) -> usize {
        HEADER_LEN
            + model
                .iter()
                .map(|(k, v)| op_encoded_len(k.len(), v.as_ref().map(Vec::len), false))
                .sum::<usize>()
    }

    fn check_range(set: &WriteSet, model: &Model, lower: Bound<&[u8]>, upper: Bound<&[u8]>) {
        let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = set
            .range((lower, upper))
            .into_iter()
            .map(|(k, v)| (k.to_vec(), v.map(|v| v.to_vec())))
            .collect();
        let want: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            model.range::<[u8], _>((lower, upper)).map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(got, want, "range {lower:?}..{upper:?}");
    }

    /// Random sets, deletes and rewrites of a small key space, range reads in between (so the
    /// sorted offsets are extended, not only built), values large enough that rewriting
    /// compacts the buffer: every answer matches an ordered map, and the final batch holds
    /// exactly the live writes, each once, at the size the map predicts.
    #[test]
    fn matches_an_ordered_map_through_rewrites_ranges_and_compaction() {
        let seed = Rng::seed_from_env();
        let mut rng = Rng::new(seed);
        let mut set = WriteSet::default();
        let mut model = Model::new();
        let mut compactions = 0;
        for step in 0..5_000 {
            let key = format!("k{:03}", rng.below(300)).into_bytes();
            let value = (rng.below(4) != 0).then(|| {
                let len = [0, 3, 200, 5_000][rng.below(4) as usize];
                alloc::vec![step as u8; len]
            });
            let before = set.batch.encoded_len();
            let replaced = set.op_len(&key);
            let want_replaced = model
                .get(&key)
                .map_or(0, |v| op_encoded_len(key.len(), v.as_ref().map(Vec::len), false));
            assert_eq!(replaced, want_replaced, "seed {seed} step {step}");
            set.put(&key, value.as_deref());
            model.insert(key.clone(), value);
            if set.batch.encoded_len() < before {
                compactions += 1;
                assert_eq!(set.dead, 0);
                assert_eq!(set.batch.encoded_len(), model_size(&model), "seed {seed}");
            }
            assert_eq!(set.len(), model.len());
            let probe = format!("k{:03}", rng.below(310)).into_bytes();
            assert_eq!(
                set.get(&probe).map(|v| v.map(<[u8]>::to_vec)),
                model.get(&probe).cloned(),
                "seed {seed} step {step}"
            );
            if rng.below(50) == 0 {
                let a = format!("k{:03}", rng.below(310)).into_bytes();
                let b = format!("k{:03}", rng.below(310)).into_bytes();
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                check_range(&set, &model, Bound::Unbounded, Bound::Unbounded);
                check_range(&set, &model, Bound::Included(&a), Bound::Excluded(&b));
                check_range(&set, &model, Bound::Excluded(&a), Bound::Included(&b));
                check_range(&set, &model, Bound::Included(&a), Bound::Unbounded);
            }
        }
        assert!(compactions > 0, "the workload must rewrite the buffer at least once");
        let size = model_size(&model);
        let batch = set.into_batch(size);
        assert_eq!(batch.encoded_len(), size);
        let mut ops: Vec<(Vec<u8>, Option<Vec<u8>>)> = batch
            .ops()
            .map(|op| match op.expect("own batch decodes") {
                BatchOp::Set { key, value, ts: None } => (key.to_vec(), Some(value.to_vec())),
                BatchOp::Delete { key, ts: None } => (key.to_vec(), None),
                other => panic!("unexpected op {other:?}"),
            })
            .collect();
        ops.sort();
        let want: Vec<_> = model.into_iter().collect();
        assert_eq!(ops, want);
    }

    /// Transactions of a few writes are looked up by walking their ops; past `LINEAR_OPS` ops
    /// the index is built from a batch holding superseded ops, which must not win over the
    /// newer op of their key. Every step is checked against a map, across the threshold.
    #[test]
    fn small_sets_walk_their_ops_and_index_past_the_threshold() {
        for rewrites in 0..6u8 {
            let mut set = WriteSet::default();
            let mut model = Model::new();
            for step in 0..(LINEAR_OPS as u8 + 6) {
                // `rewrites` of the first writes go to key "a" again, with a new value.
                let key = if step < rewrites { b"a".to_vec() } else { alloc::vec![b'b', step] };
                let value = (step % 5 != 4).then(|| alloc::vec![step; usize::from(step) + 1]);
                set.put(&key, value.as_deref());
                model.insert(key, value);
                assert_eq!(set.indexed(), set.batch.count() > LINEAR_OPS);
                assert_eq!(set.len(), model.len(), "rewrites {rewrites} step {step}");
                for (k, v) in &model {
                    assert_eq!(set.get(k), Some(v.as_deref()), "rewrites {rewrites} step {step}");
                }
                assert_eq!(set.get(b"zz"), None);
            }
            let batch = set.into_batch(0);
            assert_eq!(batch.encoded_len(), model_size(&model), "rewrites {rewrites}");
        }
    }

    /// Each key written once: the batch is handed over without a copy, ops in write order.
    #[test]
    fn unique_writes_keep_write_order() {
        let mut set = WriteSet::default();
        set.put(b"b", Some(b"2"));
        set.put(b"a", None);
        set.put(b"c", Some(b"3"));
        let size =
            HEADER_LEN + op_encoded_len(1, Some(1), false) * 2 + op_encoded_len(1, None, false);
        let batch = set.into_batch(size);
        let keys: Vec<&[u8]> = batch.ops().map(|op| op.expect("decodes").key()).collect();
        assert_eq!(keys, [&b"b"[..], b"a", b"c"]);
    }
}

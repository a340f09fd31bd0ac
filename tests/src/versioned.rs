//! The model the versioning tests check a tree against: per key, per timestamp, every write
//! made at that (key, timestamp), and the transactions of plain and explicit-timestamp writes
//! that build it, applied as `TxnCore` batches them.
//!
//! Values are generic (`Vec<u8>` by default, `Bytes` where a test keeps them shared).

use std::collections::BTreeMap;
use std::ops::Bound;

use strata::{Result, Transaction};

/// The writes made at one (key, timestamp), oldest first. `None` is a tombstone.
pub type Writes<V = Vec<u8>> = Vec<Option<V>>;
/// A key's versions by timestamp.
pub type Versions<V = Vec<u8>> = BTreeMap<u64, Writes<V>>;
/// An entry of `scan_all_versions`: key, value (empty for a tombstone), timestamp, tombstone.
pub type ScanEntry = (Vec<u8>, Vec<u8>, u64, bool);

/// Per key, per timestamp: every write made at that (key, timestamp), oldest first. Readers
/// see the last one (newest sequence wins).
#[derive(Debug, Clone)]
pub struct History<V = Vec<u8>> {
    pub keys: BTreeMap<Vec<u8>, Versions<V>>,
}

impl<V> Default for History<V> {
    fn default() -> Self {
        History { keys: BTreeMap::new() }
    }
}

impl<V: Clone> History<V> {
    /// Records a write of `key` at `ts` (`None`: a tombstone).
    pub fn write(&mut self, key: &[u8], ts: u64, value: Option<V>) {
        self.keys.entry(key.to_vec()).or_default().entry(ts).or_default().push(value);
    }

    /// Applies one committed transaction as `TxnCore` batches it: the last plain write of each
    /// key at `commit_ts`, then the last explicit write of each (key, ts).
    pub fn apply(&mut self, ops: &[Op<V>], commit_ts: u64) -> Applied {
        let mut plain: BTreeMap<&[u8], Option<&V>> = BTreeMap::new();
        let mut explicit: BTreeMap<(&[u8], u64), &V> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Set(k, v) => {
                    plain.insert(k, Some(v));
                }
                Op::Delete(k) => {
                    plain.insert(k, None);
                }
                Op::SetAt(k, v, ts) => {
                    explicit.insert((k, *ts), v);
                }
            }
        }
        let mut applied = Applied::default();
        for (k, v) in plain {
            applied.plain += 1;
            applied.tombstones += usize::from(v.is_none());
            self.write(k, commit_ts, v.cloned());
        }
        for ((k, ts), v) in explicit {
            applied.explicit += 1;
            self.write(k, ts, Some(v.clone()));
        }
        applied
    }

    /// The value a reader sees at `ts` (`None`: the newest version).
    pub fn value_at(&self, key: &[u8], ts: Option<u64>) -> Option<&V> {
        let versions = self.keys.get(key)?;
        let (_, writes) = match ts {
            None => versions.last_key_value()?,
            Some(ts) => versions.range(..=ts).next_back()?,
        };
        writes.last()?.as_ref()
    }

    /// Live keys and values at `ts` (or now) with `lo <= key < hi` (`None`: unbounded).
    pub fn view(&self, ts: Option<u64>, lo: Option<&[u8]>, hi: Option<&[u8]>) -> Vec<(Vec<u8>, V)> {
        self.keys
            .keys()
            .filter(|k| lo.is_none_or(|l| k.as_slice() >= l) && hi.is_none_or(|h| k.as_slice() < h))
            .filter_map(|k| self.value_at(k, ts).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// Every timestamp any version has, ascending (for choosing read times).
    pub fn timestamps(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.keys.values().flat_map(|v| v.keys().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The timestamps `key` has versions at, ascending.
    pub fn timestamps_of(&self, key: &[u8]) -> Vec<u64> {
        self.keys.get(key).map(|v| v.keys().copied().collect()).unwrap_or_default()
    }

    /// How many (key, timestamp) versions there are.
    pub fn version_count(&self) -> usize {
        self.keys.values().map(BTreeMap::len).sum()
    }
}

impl<V: AsRef<[u8]>> History<V> {
    /// What `scan_all_versions(lo, hi, None)` lists: the newest write at every (key, ts) with
    /// `lo <= key < hi`, keys ascending, timestamps descending.
    pub fn expected_scan(&self, lo: &[u8], hi: &[u8]) -> Vec<ScanEntry> {
        let mut out = Vec::new();
        for (k, versions) in self.keys.range::<[u8], _>((Bound::Included(lo), Bound::Excluded(hi)))
        {
            for (ts, writes) in versions.iter().rev() {
                match writes.last() {
                    Some(Some(v)) => out.push((k.clone(), v.as_ref().to_vec(), *ts, false)),
                    Some(None) => out.push((k.clone(), Vec::new(), *ts, true)),
                    None => {}
                }
            }
        }
        out
    }
}

/// What [`History::apply`] recorded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Plain writes (the last per key), at the commit timestamp.
    pub plain: usize,
    /// How many of those were deletes.
    pub tombstones: usize,
    /// Explicit-timestamp writes (the last per (key, ts)).
    pub explicit: usize,
}

/// One write of a generated transaction.
#[derive(Debug, Clone)]
pub enum Op<V = Vec<u8>> {
    /// `set` at the commit timestamp.
    Set(Vec<u8>, V),
    /// `delete` at the commit timestamp.
    Delete(Vec<u8>),
    /// `set_at_version` at an explicit timestamp.
    SetAt(Vec<u8>, V, u64),
}

impl<V: AsRef<[u8]>> Op<V> {
    /// Makes this write in `txn`.
    pub fn run(&self, txn: &mut Transaction) -> Result<()> {
        match self {
            Op::Set(k, v) => txn.set(k, v.as_ref()),
            Op::Delete(k) => txn.delete(k),
            Op::SetAt(k, v, ts) => txn.set_at_version(k, v.as_ref(), *ts),
        }
    }
}

/// Drops the explicit writes at `commit_ts` of keys the transaction also writes plainly: the
/// two would be identical internal keys, an ambiguity the tests leave out.
pub fn drop_commit_ts_clashes<V>(ops: &mut Vec<Op<V>>, commit_ts: u64) {
    let plain: Vec<Vec<u8>> = ops
        .iter()
        .filter_map(|op| match op {
            Op::Set(k, _) | Op::Delete(k) => Some(k.clone()),
            Op::SetAt(..) => None,
        })
        .collect();
    ops.retain(|op| !matches!(op, Op::SetAt(k, _, ts) if *ts == commit_ts && plain.contains(k)));
}

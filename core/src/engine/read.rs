//! Reads: snapshots, point lookups and range sources over the current [`ReadView`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;

use strata_vfs::Vfs;

use super::{Engine, ReadView};
use crate::iter::{Cursor, KeyRange, MergeCursor, RangeSource, Visibility, VisibleIter};
use crate::key::{SeqNo, Timestamp, ValueKind};
use crate::memtable::{Lookup, MemCursor};
use crate::mvcc::Snapshot;
use crate::Result;

/// One retained version, as `scan_versions` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionEntry {
    /// The user key.
    pub key: Bytes,
    /// The value (empty for a tombstone).
    pub value: Bytes,
    /// The version's timestamp.
    pub ts: Timestamp,
    /// The committing sequence number.
    pub seq: SeqNo,
    /// `true` if this version is a delete.
    pub tombstone: bool,
}

impl<V: Vfs> Engine<V> {
    /// Registers a snapshot at the newest visible commit.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshots.take()
    }

    /// The newest visible value of `key`, or `None` if absent or deleted.
    ///
    /// Without versioning the newest source holding a visible version decides. With versioning
    /// an older source can hold a greater timestamp (history written later with an explicit
    /// older time lands in a newer source), so every source is asked and the greatest
    /// `(timestamp, sequence)` wins.
    pub fn get(&self, key: &[u8], vis: Visibility) -> Result<Option<Bytes>> {
        self.check_open()?;
        let view = self.current_view();
        let mut best = Lookup::Absent;
        for mem in &view.memtables {
            let found = mem.get(key, vis.snapshot, vis.at_ts);
            if found.version() > best.version() {
                best = found;
                if !self.opts.versioning {
                    break;
                }
            }
        }
        Ok(match best {
            Lookup::Value { value, .. } => Some(value),
            Lookup::Deleted { .. } | Lookup::Absent => None,
        })
    }

    /// A lazily opened, double-ended-capable source of live keys in `range` at `vis`.
    pub fn range_source(&self, vis: Visibility, range: KeyRange) -> Result<Box<dyn RangeSource>> {
        self.check_open()?;
        Ok(Box::new(ViewRange { view: self.current_view(), vis, range }))
    }

    /// Every retained version in `range` visible at `snapshot`, in key order and, within a
    /// key, newest timestamp first. Stops after `limit` versions.
    pub fn scan_versions(
        &self,
        snapshot: SeqNo,
        range: &KeyRange,
        limit: Option<usize>,
    ) -> Result<Vec<VersionEntry>> {
        self.check_open()?;
        let view = self.current_view();
        let mut merged = MergeCursor::new(view_cursors(&view, true, range), true);
        let mut out = Vec::new();
        while let Some((key, value)) = merged.peek() {
            if limit.is_some_and(|n| out.len() >= n) || !range_allows(range, &key.user_key) {
                break;
            }
            if range.contains(&key.user_key) && key.seq <= snapshot {
                out.push(VersionEntry {
                    key: key.user_key.clone(),
                    value: value.clone(),
                    ts: key.ts,
                    seq: key.seq,
                    tombstone: key.kind == ValueKind::Delete,
                });
            }
            merged.advance()?;
        }
        Ok(out)
    }
}

/// `false` once `key` is beyond the range's upper bound.
fn range_allows(range: &KeyRange, key: &[u8]) -> bool {
    match &range.upper {
        core::ops::Bound::Included(u) => key <= u.as_ref(),
        core::ops::Bound::Excluded(u) => key < u.as_ref(),
        core::ops::Bound::Unbounded => true,
    }
}

fn view_cursors(view: &Arc<ReadView>, forward: bool, range: &KeyRange) -> Vec<Box<dyn Cursor>> {
    let start = range.cursor_start(forward);
    view.memtables
        .iter()
        .map(|m| Box::new(MemCursor::new(Arc::clone(m), forward, start.clone())) as Box<dyn Cursor>)
        .collect()
}

/// A range over one read view, opened per direction on demand.
struct ViewRange {
    view: Arc<ReadView>,
    vis: Visibility,
    range: KeyRange,
}

impl RangeSource for ViewRange {
    fn open(&self, forward: bool) -> Result<VisibleIter> {
        let merged = MergeCursor::new(view_cursors(&self.view, forward, &self.range), forward);
        Ok(VisibleIter::new(merged, forward, self.vis, self.range.clone()))
    }
}

//! Reads: snapshots, point lookups and range sources over the current [`ReadView`].

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;

use super::{Engine, EngineFs, LevelCursor, ReadView, TableStore};
use crate::Result;
use crate::iter::{
    Cursor, KeyRange, MergeCursor, RangeSource, ValueFetch, Visibility, VisibleIter,
};
use crate::key::{SeqNo, Timestamp, ValueKind};
use crate::memtable::{Lookup, MemCursor};
use crate::mvcc::Snapshot;

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

impl<V: EngineFs> Engine<V> {
    /// Registers a snapshot at the newest visible commit.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshots.take()
    }

    /// The conflict oracle's fingerprint of `key` (see [`crate::mvcc::ConflictOracle`]).
    pub fn fingerprint(&self, key: &[u8]) -> u64 {
        use core::hash::BuildHasher;
        self.fingerprints.hash_one(key)
    }

    /// A snapshot for a serializable transaction: while it lives, commits record the keys
    /// they write so the transaction can be validated (see [`crate::serializable`]).
    pub fn serializable_snapshot(&self) -> Snapshot {
        self.snapshots.take_serializable()
    }

    /// The newest visible value of `key`, or `None` if absent or deleted.
    ///
    /// Sources are asked newest first: memtables, then level-0 tables newest first, then at
    /// most one table per deeper level (tables whose bloom filter rules the key out are
    /// skipped). Without versioning the first source holding a visible version decides. With
    /// versioning an older source can hold a greater timestamp (history written later with an
    /// explicit older time lands in a newer source), so every source is asked and the greatest
    /// `(timestamp, sequence)` wins.
    pub fn get(&self, key: &[u8], vis: Visibility) -> Result<Option<Bytes>> {
        Ok(match self.lookup(key, vis)? {
            Lookup::Value { value, .. } => Some(value),
            Lookup::Pointer { pointer, .. } => Some(self.vlog.resolve(key, &pointer)?),
            Lookup::Deleted { .. } | Lookup::Absent => None,
        })
    }

    /// The version of `key` a read at `vis` sees, as stored (a value pointer is not followed).
    pub fn lookup(&self, key: &[u8], vis: Visibility) -> Result<Lookup> {
        self.check_open()?;
        let view = self.current_view();
        let mut best = Lookup::Absent;
        let mut consider = |found: Lookup| -> bool {
            if found.version() > best.version() {
                best = found;
                return !self.opts.versioning;
            }
            false
        };
        let mut done = false;
        for mem in &view.memtables {
            if consider(mem.get(key, vis.snapshot, vis.at_ts)) {
                done = true;
                break;
            }
        }
        if !done {
            'levels: for level in 0..view.version.level_count() {
                for meta in view.version.files_for_key(level, key) {
                    // `Table::get` asks the bloom filter itself (after its key-range check).
                    let table = self.store.table(meta)?;
                    if consider(table.get(key, vis.snapshot, vis.at_ts)?) {
                        break 'levels;
                    }
                }
            }
        }
        Ok(best)
    }

    /// How range reads fetch values kept in the value log.
    fn fetch(&self, keys_only: bool) -> ValueFetch {
        if keys_only {
            ValueFetch::KeysOnly
        } else {
            ValueFetch::Resolve(Arc::clone(&self.vlog) as Arc<dyn crate::iter::ValueResolver>)
        }
    }

    /// A lazily opened, double-ended-capable source of live keys in `range` at `vis`. With
    /// `keys_only`, values kept in the value log are not read (they come back empty).
    pub fn range_source(
        &self,
        vis: Visibility,
        range: KeyRange,
        keys_only: bool,
    ) -> Result<Box<dyn RangeSource>> {
        self.check_open()?;
        Ok(Box::new(ViewRange {
            view: self.current_view(),
            store: Arc::clone(&self.store),
            vis,
            range,
            fetch: self.fetch(keys_only),
        }))
    }

    /// Every retained version in `range` visible at `snapshot`, in key order and, within a
    /// key, newest timestamp first; of several writes at one (key, timestamp) only the newest,
    /// the one reads see. Stops after `limit` versions.
    pub fn scan_versions(
        &self,
        snapshot: SeqNo,
        range: &KeyRange,
        limit: Option<usize>,
    ) -> Result<Vec<VersionEntry>> {
        let mut out = self.scan_versions_raw(snapshot, range, limit)?;
        for (entry, kind) in &mut out {
            if *kind == ValueKind::Pointer {
                entry.value = self.vlog.resolve(&entry.key, &entry.value)?;
            }
        }
        Ok(out.into_iter().map(|(e, _)| e).collect())
    }

    /// [`Engine::scan_versions`] with values as stored: for kind [`ValueKind::Pointer`] the
    /// value is the encoded pointer.
    pub fn scan_versions_raw(
        &self,
        snapshot: SeqNo,
        range: &KeyRange,
        limit: Option<usize>,
    ) -> Result<Vec<(VersionEntry, ValueKind)>> {
        self.check_open()?;
        let view = self.current_view();
        let mut merged = MergeCursor::new(view_cursors(&view, &self.store, true, range)?, true);
        let mut out = Vec::new();
        while let Some(e) = merged.head() {
            if limit.is_some_and(|n| out.len() >= n) || !range_allows(range, e.user_key) {
                break;
            }
            // A later write at the same (key, timestamp) replaced the earlier one for every
            // reader: list only the newest (they arrive newest sequence first).
            let shadowed = out
                .last()
                .is_some_and(|(p, _): &(VersionEntry, _)| p.ts == e.ts && p.key == e.user_key);
            if !(range.contains(e.user_key) && e.seq <= snapshot && !shadowed) {
                merged.advance()?;
                continue;
            }
            let Some((key, value)) = merged.take()? else { break };
            let entry = VersionEntry {
                key: key.user_key,
                value,
                ts: key.ts,
                seq: key.seq,
                tombstone: key.kind == ValueKind::Delete,
            };
            out.push((entry, key.kind));
        }
        Ok(out)
    }
}

impl<V: EngineFs> Engine<V> {
    /// `true` if any version the tree holds (visible or not) points into value log file `id`
    /// at or past `offset`. Streams the whole tree once, without caching blocks.
    pub(super) fn any_pointer_past(&self, id: u64, offset: u64) -> Result<bool> {
        self.check_open()?;
        let view = self.current_view();
        let mut merged =
            MergeCursor::new(view_cursors(&view, &self.store, true, &KeyRange::all())?, true);
        while let Some(e) = merged.head() {
            if e.kind == ValueKind::Pointer
                && crate::vlog::ValuePointer::decode(e.value)
                    .is_ok_and(|p| p.file == id && p.end() > offset)
            {
                return Ok(true);
            }
            merged.advance()?;
        }
        Ok(false)
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

/// One cursor per memtable, per level-0 table, and per deeper level.
fn view_cursors<V: EngineFs>(
    view: &Arc<ReadView>,
    store: &Arc<TableStore<V>>,
    forward: bool,
    range: &KeyRange,
) -> Result<Vec<Box<dyn Cursor>>> {
    let start = range.cursor_start(forward);
    let mut cursors: Vec<Box<dyn Cursor>> = view
        .memtables
        .iter()
        .map(|m| Box::new(MemCursor::new(Arc::clone(m), forward, start.clone())) as Box<dyn Cursor>)
        .collect();
    for meta in view.version.files(0) {
        if overlaps(range, meta) {
            cursors.push(store.cursor(meta, forward, start.as_ref(), true)?);
        }
    }
    for level in 1..view.version.level_count() {
        let files: Vec<_> =
            view.version.files(level).iter().filter(|m| overlaps(range, m)).cloned().collect();
        if !files.is_empty() {
            cursors.push(Box::new(LevelCursor::new(
                Arc::clone(store),
                files,
                forward,
                start.as_ref(),
                true,
            )?));
        }
    }
    Ok(cursors)
}

/// `true` if a table's key span can hold keys inside `range`.
fn overlaps(range: &KeyRange, meta: &crate::manifest::FileMeta) -> bool {
    let below_upper = match &range.upper {
        core::ops::Bound::Included(u) => meta.smallest.user_key.as_ref() <= u.as_ref(),
        core::ops::Bound::Excluded(u) => meta.smallest.user_key.as_ref() < u.as_ref(),
        core::ops::Bound::Unbounded => true,
    };
    let above_lower = match &range.lower {
        core::ops::Bound::Included(l) | core::ops::Bound::Excluded(l) => {
            meta.largest.user_key.as_ref() >= l.as_ref()
        }
        core::ops::Bound::Unbounded => true,
    };
    below_upper && above_lower
}

/// A range over one read view, opened per direction on demand.
struct ViewRange<V: EngineFs> {
    view: Arc<ReadView>,
    store: Arc<TableStore<V>>,
    vis: Visibility,
    range: KeyRange,
    fetch: ValueFetch,
}

impl<V: EngineFs> RangeSource for ViewRange<V> {
    fn open(&self, forward: bool) -> Result<VisibleIter> {
        let merged =
            MergeCursor::new(view_cursors(&self.view, &self.store, forward, &self.range)?, forward);
        Ok(VisibleIter::new(merged, forward, self.vis, self.range.clone())
            .with_fetch(self.fetch.clone()))
    }
}

impl<V: EngineFs> crate::iter::ValueResolver for crate::vlog::VlogStore<V> {
    fn resolve(&self, key: &[u8], pointer: &[u8]) -> Result<Bytes> {
        crate::vlog::VlogStore::resolve(self, key, pointer)
    }
}

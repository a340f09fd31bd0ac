//! Compaction: merge a task's input tables into new tables one level down, dropping versions
//! no reader can see.
//!
//! Which versions survive (without versioning): the live snapshots cut each key's history into
//! *stripes*; stripe `i` holds versions with `snapshots[i-1] < seq <= snapshots[i]`, and the
//! last stripe the versions newer than every snapshot (what new readers see). A reader sees
//! only the newest version of each stripe, so exactly those are kept. A tombstone in the
//! oldest stripe at the bottom level hides nothing any reader could see, so it goes too.
//! With versioning every version is history and is kept.
//!
//! Outputs are synced before the manifest edit that names them; inputs are deleted only after
//! it. The merge streams: it holds one block per input and one output table being built.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::sync::atomic::Ordering;

use strata_vfs::FileKind;

use super::flush::file_meta;
use super::{Engine, EngineFs, LevelCursor, LsmState, ReadView};
use crate::compaction::{CompactionTask, TaskKind};
use crate::filenames;
use crate::iter::{Cursor, MergeCursor};
use crate::key::{SeqNo, Timestamp, ValueKind};
use crate::manifest::{FileMeta, ManifestWriter, VersionEdit};
use crate::sstable::TableBuilder;
use crate::{Error, IoOp, Result};

impl<V: EngineFs> Engine<V> {
    /// Runs one compaction if the picker finds one that touches no busy file. Returns whether
    /// it did.
    pub fn compact_one(&self) -> Result<bool> {
        self.check_writable()?;
        let task = {
            let mut lsm = self.lsm.lock();
            let version = Arc::clone(&self.current_view().version);
            let busy = &lsm.busy;
            let Some(task) =
                crate::compaction::pick(&version, &self.compaction, &lsm.pointers, &|f| {
                    busy.contains(&f)
                })
            else {
                return Ok(false);
            };
            for f in task.inputs.iter().chain(&task.next_inputs) {
                lsm.busy.insert(f.file_no);
            }
            task
        };
        let result = self.run_compaction(&task);
        {
            let mut lsm = self.lsm.lock();
            for f in task.inputs.iter().chain(&task.next_inputs) {
                lsm.busy.remove(&f.file_no);
            }
        }
        if result.is_err() {
            self.poison();
        }
        result.map(|()| true)
    }

    fn run_compaction(&self, task: &CompactionTask) -> Result<()> {
        let level = u8::try_from(task.level).map_err(|_| Error::invalid("level", "too deep"))?;
        let out_level =
            u8::try_from(task.output_level).map_err(|_| Error::invalid("level", "too deep"))?;
        let mut edit = VersionEdit::default();
        for f in &task.inputs {
            edit.deleted.push((level, f.file_no));
        }
        for f in &task.next_inputs {
            edit.deleted.push((out_level, f.file_no));
        }
        if let Some(last) = task.inputs.iter().map(|f| &f.largest).max() {
            edit.compaction_pointers.push((level, last.clone()));
        }
        match task.kind {
            TaskKind::Move => {
                for f in &task.inputs {
                    edit.added.push((out_level, FileMeta::clone(f)));
                }
            }
            TaskKind::Merge => {
                let read: u64 = task.inputs.iter().chain(&task.next_inputs).map(|f| f.size).sum();
                self.stats.compaction_read_bytes.fetch_add(read, Ordering::Relaxed);
                let (outputs, discarded) = self.merge(task)?;
                for meta in outputs {
                    self.stats.compaction_write_bytes.fetch_add(meta.size, Ordering::Relaxed);
                    edit.added.push((out_level, meta));
                }
                edit.vlog = discarded
                    .into_iter()
                    .map(|(id, bytes)| crate::manifest::VlogEdit::Discard { id, bytes })
                    .collect();
            }
        }
        edit.next_file_number = Some(self.next_file.load(Ordering::Relaxed));
        {
            let mut lsm = self.lsm.lock();
            // Dead bytes of files garbage collection already deleted are not recorded.
            let files = &lsm.vlog_files;
            edit.vlog.retain(|e| match e {
                crate::manifest::VlogEdit::Discard { id, .. } => files.contains_key(id),
                _ => true,
            });
            self.live_manifest(&mut lsm)?.append(&edit)?;
            crate::manifest::apply_vlog(&mut lsm.vlog_files, &edit.vlog)
                .map_err(|k| Error::corruption("MANIFEST", 0, k))?;
            for (l, k) in &edit.compaction_pointers {
                if let Some(slot) = lsm.pointers.get_mut(usize::from(*l)) {
                    *slot = Some(k.clone());
                }
            }
            let mut guard = self.view.write();
            let version = Arc::new(
                guard.version.apply(&edit).map_err(|k| Error::corruption("MANIFEST", 0, k))?,
            );
            *guard = Arc::new(ReadView { memtables: guard.memtables.clone(), version });
        }
        self.stats.compactions.fetch_add(1, Ordering::Relaxed);
        if matches!(task.kind, TaskKind::Merge) {
            // The inputs are deleted once no reader's view names them any more.
            self.lsm.lock().obsolete.extend(task.inputs.iter().chain(&task.next_inputs).cloned());
        }
        self.delete_obsolete_files();
        self.maybe_rewrite_manifest()
    }

    /// Streams the task's inputs into new tables at the output level. Also returns, per value
    /// log file, the bytes of records whose last pointer this merge dropped.
    fn merge(
        &self,
        task: &CompactionTask,
    ) -> Result<(Vec<FileMeta>, alloc::collections::BTreeMap<u64, u64>)> {
        let mut sources: Vec<Box<dyn Cursor>> = Vec::new();
        if task.level == 0 {
            for f in &task.inputs {
                sources.push(self.store.cursor(f, true, None, false)?);
            }
        } else {
            sources.push(Box::new(LevelCursor::new(
                Arc::clone(&self.store),
                task.inputs.clone(),
                true,
                None,
                false,
            )?));
        }
        if !task.next_inputs.is_empty() {
            sources.push(Box::new(LevelCursor::new(
                Arc::clone(&self.store),
                task.next_inputs.clone(),
                true,
                None,
                false,
            )?));
        }
        let mut merged = MergeCursor::new(sources, true);
        let snapshots = self.snapshots.live_seqs();
        let history = match (self.opts.versioning, self.opts.retention_ns) {
            (false, _) => History::None,
            (true, 0) => History::All,
            (true, r) => History::Since(self.clock.now_ns().saturating_sub(r)),
        };
        let mut filter = VersionFilter::new(snapshots, task.bottommost, history);
        let mut outputs = Vec::new();
        let mut builder: Option<(u64, TableBuilder<V::Write>)> = None;
        let mut last_user_key: Option<Bytes> = None;
        let mut discarded = alloc::collections::BTreeMap::new();
        while let Some(e) = merged.head() {
            if !filter.keep(e.user_key, e.seq, e.ts, e.kind) {
                if e.kind == ValueKind::Pointer
                    && let Ok(ptr) = crate::vlog::ValuePointer::decode(e.value)
                {
                    *discarded.entry(ptr.file).or_insert(0) += u64::from(ptr.len);
                }
                merged.advance()?;
                continue;
            }
            let Some((key, value)) = merged.take()? else { break };
            {
                let new_key = last_user_key.as_ref() != Some(&key.user_key);
                // Split only between user keys: a key's versions never span two files of a
                // sorted level.
                if new_key
                    && let Some((_, b)) = &builder
                    && b.estimated_size() >= self.opts.target_file_size
                    && let Some((no, b)) = builder.take()
                {
                    outputs.push(file_meta(no, &b.finish()?));
                }
                if builder.is_none() {
                    let no = self.next_file.fetch_add(1, Ordering::Relaxed);
                    let name = filenames::table(no);
                    let file = self
                        .vfs()
                        .create(&name, FileKind::Table)
                        .map_err(|e| Error::io(IoOp::Create, &name, e))?;
                    builder =
                        Some((no, TableBuilder::new(file, name, self.store.table_options.clone())));
                }
                if let Some((_, b)) = builder.as_mut() {
                    b.add(&key, &value)?;
                }
                if new_key {
                    last_user_key = Some(key.user_key);
                }
            }
        }
        if let Some((no, b)) = builder.take() {
            outputs.push(file_meta(no, &b.finish()?));
        }
        self.vfs().sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))?;
        Ok((outputs, discarded))
    }

    /// Starts a new manifest from a snapshot of the current version once the live one has
    /// grown past the limit, then removes the old one.
    pub(super) fn maybe_rewrite_manifest(&self) -> Result<()> {
        let mut lsm = self.lsm.lock();
        if lsm.manifest_deferred.is_some() {
            // Rewritten at its first edit anyway.
            return Ok(());
        }
        let Some(current) = lsm.manifest.as_ref() else { return Err(Error::Closed) };
        if current.size() < self.opts.max_manifest_size {
            return Ok(());
        }
        self.start_manifest(&mut lsm)
    }

    /// The manifest to append an edit to: the live one, or, if the open kept the one a clean
    /// close left (`LsmState::manifest_deferred`), a new one started now from a snapshot.
    pub(super) fn live_manifest<'a>(
        &self,
        lsm: &'a mut LsmState<V::Write>,
    ) -> Result<&'a mut ManifestWriter<V::Write>> {
        if lsm.manifest_deferred.is_some() {
            self.start_manifest(lsm)?;
        }
        lsm.manifest.as_mut().ok_or(Error::Closed)
    }

    /// Starts a new manifest from a snapshot of the current version and state (the snapshot
    /// switches `CURRENT`), then removes the old manifest.
    fn start_manifest(&self, lsm: &mut LsmState<V::Write>) -> Result<()> {
        let old = match (&lsm.manifest, &lsm.manifest_deferred) {
            (Some(current), _) => current.file_no(),
            (None, Some(kept)) => kept.file_no,
            (None, None) => return Err(Error::Closed),
        };
        let version = Arc::clone(&self.current_view().version);
        let mut snapshot = version.snapshot_edit();
        snapshot.log_number = Some(lsm.log_number);
        snapshot.versioning = Some(self.opts.versioning);
        snapshot.vlog = crate::manifest::vlog_snapshot(&lsm.vlog_files);
        // The WAL segments still needed hold everything after the flushed sequence number.
        snapshot.last_seq = Some(lsm.flushed_seq);
        snapshot.last_ts = Some(self.last_ts.load(Ordering::Acquire));
        for (level, p) in lsm.pointers.iter().enumerate() {
            if let (Some(p), Ok(level)) = (p, u8::try_from(level)) {
                snapshot.compaction_pointers.push((level, p.clone()));
            }
        }
        let file_no = self.next_file.fetch_add(1, Ordering::Relaxed);
        snapshot.next_file_number = Some(self.next_file.load(Ordering::Relaxed));
        let writer = ManifestWriter::create(self.vfs(), file_no, &snapshot)?;
        lsm.manifest = Some(writer);
        lsm.manifest_deferred = None;
        let _ = self.vfs().remove(&filenames::manifest(old));
        Ok(())
    }
}

/// What history a compaction must keep beyond what readers can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum History {
    /// No versioning: only versions some reader can see.
    None,
    /// Versioning with no retention limit: every version.
    All,
    /// Versioning with retention: versions with a timestamp at or after the horizon, plus
    /// what readers can see (so a key's newest version always stays).
    Since(Timestamp),
}

/// Decides, entry by entry in internal-key order, which versions a compaction keeps.
///
/// A reader at snapshot `S` sees, for each key, the first version in key order (timestamp
/// descending, then sequence descending) with `seq <= S`; new readers see the first version
/// of all. Those versions are *needed*; every other version is hidden from every reader and is
/// dropped unless the history policy keeps it. This holds whether or not explicit timestamps
/// made sequence order differ from key order.
struct VersionFilter {
    snapshots: Vec<SeqNo>,
    /// Per snapshot: has it found its version of the current key yet?
    satisfied: Vec<bool>,
    bottommost: bool,
    history: History,
    current: Option<Vec<u8>>,
    first: bool,
    /// The previous entry of the current key: `(ts, seq)`.
    prev: Option<(Timestamp, SeqNo)>,
}

impl VersionFilter {
    fn new(snapshots: Vec<SeqNo>, bottommost: bool, history: History) -> Self {
        let satisfied = alloc::vec![false; snapshots.len()];
        VersionFilter {
            snapshots,
            satisfied,
            bottommost,
            history,
            current: None,
            first: true,
            prev: None,
        }
    }

    fn keep(&mut self, user_key: &[u8], seq: SeqNo, ts: Timestamp, kind: ValueKind) -> bool {
        if self.current.as_deref() != Some(user_key) {
            let current = self.current.get_or_insert_with(Vec::new);
            current.clear();
            current.extend_from_slice(user_key);
            self.satisfied.iter_mut().for_each(|s| *s = false);
            self.first = true;
            self.prev = None;
        }
        // A later write at the same timestamp (garbage collection relocating a value, or a
        // second explicit write) replaces this one for every reader at or after its sequence
        // number: it is history only for a live snapshot older than that write.
        let replaced = self.prev.is_some_and(|(pts, pseq)| {
            let first_seeing = self.snapshots.partition_point(|&s| s < seq);
            pts == ts && self.snapshots.get(first_seeing).is_none_or(|&s| s >= pseq)
        });
        self.prev = Some((ts, seq));
        let latest = core::mem::replace(&mut self.first, false);
        let mut needed = latest;
        // Snapshots at or after `seq` that have not found a version yet see this one.
        let from = self.snapshots.partition_point(|&s| s < seq);
        for done in self.satisfied.iter_mut().skip(from) {
            if !*done {
                *done = true;
                needed = true;
            }
        }
        let in_history = !replaced
            && match self.history {
                History::None => false,
                History::All => true,
                History::Since(horizon) => ts >= horizon,
            };
        if in_history {
            return true;
        }
        // A tombstone every reader sees as the key's newest version, at the bottom level,
        // hides nothing anyone can read: drop it (everything older is hidden too).
        let seen_by_all = latest && from == 0;
        if kind == ValueKind::Delete && self.bottommost && seen_by_all {
            return false;
        }
        needed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(snapshots: &[u64], bottommost: bool, versions: &[(u64, ValueKind)]) -> Vec<u64> {
        let mut f = VersionFilter::new(snapshots.to_vec(), bottommost, History::None);
        let k = Bytes::from_static(b"k");
        // Without versioning the timestamp follows the sequence number.
        versions.iter().filter(|(s, kind)| f.keep(&k, *s, *s, *kind)).map(|(s, _)| *s).collect()
    }

    /// Versions as (ts, seq), in key order (ts descending, then seq descending).
    fn run_versioned(
        snapshots: &[u64],
        history: History,
        versions: &[(u64, u64)],
    ) -> Vec<(u64, u64)> {
        let mut f = VersionFilter::new(snapshots.to_vec(), true, history);
        let k = Bytes::from_static(b"k");
        versions.iter().copied().filter(|&(ts, seq)| f.keep(&k, seq, ts, ValueKind::Set)).collect()
    }

    #[test]
    fn a_rewrite_at_the_same_timestamp_replaces_the_old_version_in_history() {
        // ts 300 written at seq 3, then rewritten at the same ts at seq 8 (a value log
        // relocation); ts 100 at seq 1.
        let v = [(300, 8), (300, 3), (100, 1)];
        assert_eq!(run_versioned(&[], History::All, &v), [(300, 8), (100, 1)]);
        // A snapshot at seq 5 still reads the seq-3 write (the rewrite is too new for it).
        assert_eq!(run_versioned(&[5], History::All, &v), v);
        // A snapshot at seq 9 sees the rewrite: the old one is hidden from everyone.
        assert_eq!(run_versioned(&[9], History::All, &v), [(300, 8), (100, 1)]);
        // Three writes at one timestamp: only snapshots between two of them keep the older.
        let w = [(50, 9), (50, 6), (50, 2)];
        assert_eq!(run_versioned(&[], History::All, &w), [(50, 9)]);
        assert_eq!(run_versioned(&[3], History::All, &w), [(50, 9), (50, 2)]);
        assert_eq!(run_versioned(&[7], History::All, &w), [(50, 9), (50, 6)]);
    }

    #[test]
    fn history_is_kept_within_retention_and_what_readers_see_always() {
        // ts 300 (seq 3), ts 200 (seq 9: history written later with an older time), ts 100 (seq 1)
        let v = [(300, 3), (200, 9), (100, 1)];
        assert_eq!(run_versioned(&[], History::All, &v), v);
        // Retention from ts 150: 300 and 200 stay, 100 goes.
        assert_eq!(run_versioned(&[], History::Since(150), &v), [(300, 3), (200, 9)]);
        // Everything is older than the horizon: only what readers see (the newest) stays.
        assert_eq!(run_versioned(&[], History::Since(1_000), &v), [(300, 3)]);
        // A snapshot at seq 2 sees ts 100 (seq 3 and 9 are too new for it): kept.
        assert_eq!(run_versioned(&[2], History::Since(1_000), &v), [(300, 3), (100, 1)]);
        // A snapshot at seq 5 sees ts 300 (first in key order with seq <= 5).
        assert_eq!(run_versioned(&[5], History::Since(1_000), &v), [(300, 3)]);
    }

    use ValueKind::{Delete as D, Set as S};

    #[test]
    fn keeps_the_newest_version_of_each_snapshot_stripe() {
        // No snapshots: only the newest survives.
        assert_eq!(run(&[], false, &[(9, S), (5, S), (1, S)]), [9]);
        // Snapshot at 5 sees version 5; latest sees 9; version 1 is hidden from both.
        assert_eq!(run(&[5], false, &[(9, S), (5, S), (1, S)]), [9, 5]);
        // Snapshots at 3 and 6: stripes (..3], (3..6], (6..): 9 | 5,4 | 2,1
        assert_eq!(run(&[3, 6], false, &[(9, S), (5, S), (4, S), (2, S), (1, S)]), [9, 5, 2]);
        // Two snapshots in one stripe gap keep nothing extra.
        assert_eq!(run(&[7, 8], false, &[(9, S), (5, S)]), [9, 5]);
    }

    #[test]
    fn bottom_level_drops_tombstones_every_snapshot_sees() {
        assert_eq!(run(&[], true, &[(9, D), (5, S)]), Vec::<u64>::new());
        assert_eq!(
            run(&[], false, &[(9, D), (5, S)]),
            [9],
            "not bottommost: the tombstone hides deeper data"
        );
        // A snapshot older than the tombstone still needs the value it sees.
        assert_eq!(run(&[6], true, &[(9, D), (5, S)]), [9, 5]);
        // A tombstone under the oldest snapshot goes, and so does what it hides.
        assert_eq!(run(&[20], true, &[(9, D), (5, S)]), Vec::<u64>::new());
    }
}

//! Value log garbage collection: rewrite the live values of a mostly dead file at the head of
//! the log, then delete the file once no reader can reach it.
//!
//! 1. Walk the file's records (checksums verified; damage is corruption, the file is kept).
//! 2. For each record ask the tree, at a snapshot `S`, whether a version still points at it:
//!    without versioning the key's newest version, with versioning every retained version
//!    (the newest write at each timestamp).
//! 3. Commit the live ones again through the normal write path, in chunks, as a transaction
//!    reading at `S`: a key written by anyone after `S` makes the chunk conflict, and it is
//!    re-checked at a fresh snapshot and retried. Each value is rewritten at its version's own
//!    timestamp, so it replaces the old version for every later reader and history is
//!    unchanged. A relocation takes no commit timestamp and is not recorded for conflict
//!    detection: it changes no value, so no user transaction conflicts with it.
//! 4. Sync the WAL (the relocations, and every overwrite that made the rest dead, are then
//!    durable), and queue the file for deletion at the visible sequence number `G`.
//! 5. Delete it (manifest edit first) once no snapshot older than `G` is alive; iterators and
//!    transactions hold snapshots, so whatever they can reach stays. Checkpoints hold their own
//!    links or copies of the files.
//!
//! Which files: a manual run measures every sealed file exactly and rewrites each whose dead
//! fraction reaches `vlog_gc_discard_ratio`, so a few cold values never pin a file. The
//! background run goes by estimates and rewrites the file whose known dead fraction is the
//! highest at or above the threshold. A file's known dead bytes are the larger of the discard
//! statistics compaction keeps and what background sampling found (`gc_sample.rs`), which
//! finds garbage on its own when the tree is idle and compaction produces no statistics.

use alloc::vec::Vec;
use bytes::Bytes;
use core::ops::Bound;
use core::sync::atomic::Ordering;

use strata_vfs::FileKind;

use super::{CommitRequest, Engine, EngineFs};
use crate::batch::WriteBatch;
use crate::iter::{KeyRange, Visibility};
use crate::key::{Timestamp, ValueKind};
use crate::memtable::Lookup;
use crate::vlog::{ValuePointer, VlogFileMeta};
use crate::{Error, IoOp, Result, SeqNo, filenames};

/// Live bytes relocated per commit.
const CHUNK_BYTES: usize = 4 * 1024 * 1024;
/// Records relocated per commit.
const CHUNK_RECORDS: usize = 1024;
/// Attempts at one chunk before the file is left for a later run.
const MAX_ATTEMPTS: usize = 8;

/// What a garbage collection run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GcReport {
    /// Value log files examined.
    pub files_examined: u64,
    /// Files whose live values were rewritten: each is deleted now or as soon as no reader
    /// that began before the run is left.
    pub files_collected: u64,
    /// Bytes of live records copied to the head of the log.
    pub bytes_relocated: u64,
    /// Bytes the collected files free once deleted, net of what was copied.
    pub bytes_reclaimed: u64,
    /// Files deleted during the run (collected now or by earlier runs).
    pub files_deleted: u64,
}

/// Per key, the versions (at one snapshot) pointing into the file being walked, as
/// `(record offset, timestamp)`.
pub(super) type KeyPointers = alloc::collections::BTreeMap<Bytes, Vec<(u64, Timestamp)>>;

/// One live record: its key, value, and the timestamp of the version pointing at it.
struct Live {
    key: Bytes,
    value: Bytes,
    ts: Timestamp,
    offset: u64,
    /// The record's length.
    len: u32,
}

impl<V: EngineFs> Engine<V> {
    /// Measures every sealed value log file exactly and rewrites each whose dead fraction is
    /// at least `vlog_gc_discard_ratio` (and that has any dead bytes). Files sealed during the
    /// run (the head filling up with relocated values) wait for the next run.
    pub fn collect_garbage(&self) -> Result<GcReport> {
        self.check_writable()?;
        let mut state = self.gc_lock.lock();
        let mut report = GcReport::default();
        for (id, meta) in self.gc_candidates() {
            report.files_examined += 1;
            // A collected file is walked twice (measure, then relocate): deciding in one walk
            // would mean holding every live value of the file in memory until its end.
            let Some(len) = meta.sealed_len else { continue };
            let live = self.live_bytes(id, &meta)?;
            let total = len.saturating_sub(crate::vlog::format::FILE_HEADER_LEN);
            let dead = total.saturating_sub(live);
            if dead == 0 || (dead as f64) < self.opts.vlog_gc_discard_ratio * total as f64 {
                continue;
            }
            let before = report.files_collected;
            self.collect_file(id, &meta, &mut report)?;
            if report.files_collected > before {
                state.forget(id);
            }
        }
        drop(state);
        report.files_deleted += self.delete_unreachable_vlog_files() as u64;
        // A deletion whose manifest edit failed poisoned the engine: say so.
        self.check_writable()?;
        Ok(report)
    }

    /// Background garbage collection: rewrites the file whose known dead fraction (discard
    /// statistics or samples, whichever knows more) is the highest at or above the threshold,
    /// if any. Returns whether it collected one. [`Engine::gc_sample_step`] finds dead bytes
    /// the statistics do not know about.
    pub fn gc_step(&self) -> Result<bool> {
        self.check_writable()?;
        if self.lsm.lock().vlog_files.is_empty() {
            return Ok(false);
        }
        let Some(mut state) = self.gc_lock.try_lock() else { return Ok(false) };
        let ratio = self.opts.vlog_gc_discard_ratio;
        let failed = self.lsm.lock().vlog_gc_failed.clone();
        let best = self
            .gc_candidates()
            .into_iter()
            .filter(|(id, _)| !failed.contains(id))
            .filter_map(|(id, meta)| {
                let dead = state.known_dead(id, &meta);
                let fraction = meta.dead_fraction(dead);
                (dead > 0 && fraction >= ratio).then_some((id, meta, fraction))
            })
            .max_by(|a, b| a.2.total_cmp(&b.2));
        let mut report = GcReport::default();
        let collected = match best {
            Some((id, meta, _)) => {
                if let Err(e) = self.collect_file(id, &meta, &mut report) {
                    if e.is_corruption() {
                        // Do not walk a damaged file again and again; reads report it.
                        self.lsm.lock().vlog_gc_failed.insert(id);
                    }
                    return Err(e);
                }
                if report.files_collected > 0 {
                    state.forget(id);
                }
                report.files_collected > 0
            }
            None => false,
        };
        // The relocations just committed are not a user's writes: the tree is still idle.
        state.step_ended(self.snapshots.visible());
        drop(state);
        self.delete_unreachable_vlog_files();
        Ok(collected)
    }

    /// A snapshot for deciding which records are live. Taken under the commit lock: a commit
    /// group appends its values (sealing a full head file on the way) before it publishes its
    /// sequence numbers, so a file seen sealed may hold values of a group not yet visible.
    /// Once the lock is ours, every group that wrote into a file sealed before is visible.
    pub(super) fn gc_snapshot(&self) -> crate::mvcc::Snapshot {
        let _no_commit_in_flight = self.commit.lock();
        self.snapshots.take()
    }

    /// Sealed files not already queued for deletion, oldest first.
    pub(super) fn gc_candidates(&self) -> Vec<(u64, VlogFileMeta)> {
        let lsm = self.lsm.lock();
        lsm.vlog_files
            .iter()
            .filter(|(id, m)| {
                m.sealed_len.is_some() && !lsm.vlog_pending.iter().any(|(p, _)| p == *id)
            })
            .map(|(&id, m)| (id, *m))
            .collect()
    }

    /// Bytes of the file's records some version still points at.
    fn live_bytes(&self, id: u64, meta: &VlogFileMeta) -> Result<u64> {
        let snapshot = self.gc_snapshot();
        let mut live = 0u64;
        let mut seen = KeyPointers::new();
        self.walk_file(meta, |offset, len, rec| {
            let key = rec.key;
            if !self.live_versions_cached(&mut seen, snapshot.seq(), id, offset, key)?.is_empty() {
                live += u64::from(len);
            }
            Ok(())
        })?;
        Ok(live)
    }

    fn walk_file(
        &self,
        meta: &VlogFileMeta,
        mut on_record: impl FnMut(u64, u32, &crate::vlog::format::RecordView<'_>) -> Result<()>,
    ) -> Result<()> {
        let name = filenames::vlog(meta.file_no);
        let len = meta.sealed_len.unwrap_or(0);
        let file = self
            .vfs()
            .open(&name, FileKind::ValueLog)
            .map_err(|e| Error::io(IoOp::Open, &name, e))?;
        let end = crate::vlog::scan_file(&file, &name, len, &mut on_record)?;
        // The header and the records walked (each record's prefix is read twice; not counted).
        self.stats.gc_read_bytes.fetch_add(end.valid_end, Ordering::Relaxed);
        if let Some(kind) = end.damage {
            // A sealed file holds only whole, checksummed records up to its length.
            return Err(Error::corruption(&name, end.valid_end, kind));
        }
        Ok(())
    }

    /// The timestamps of the versions of `key` visible at `snapshot` that point at record
    /// `offset` of file `id`: without versioning at most the newest version, with versioning
    /// every retained one.
    fn live_versions(
        &self,
        snapshot: SeqNo,
        id: u64,
        offset: u64,
        key: &[u8],
    ) -> Result<Vec<Timestamp>> {
        let points_here = |stored: &[u8]| {
            ValuePointer::decode(stored).is_ok_and(|p| p.file == id && p.offset == offset)
        };
        if !self.opts.versioning {
            let found = self.lookup(key, Visibility { snapshot, at_ts: None })?;
            return Ok(match found {
                Lookup::Pointer { pointer, ts, .. } if points_here(&pointer) => alloc::vec![ts],
                _ => Vec::new(),
            });
        }
        let k = Bytes::copy_from_slice(key);
        let range = KeyRange { lower: Bound::Included(k.clone()), upper: Bound::Included(k) };
        Ok(self
            .scan_versions_raw(snapshot, &range, None)?
            .into_iter()
            .filter(|(e, kind)| *kind == ValueKind::Pointer && points_here(&e.value))
            .map(|(e, _)| e.ts)
            .collect())
    }

    /// [`live_versions`](Self::live_versions) for the records of one walk over file `id` at
    /// one snapshot. With versioning, each key's history is scanned once per walk (the
    /// versions pointing into the file are kept in `seen`), not once per record: a key with
    /// `n` versions in the file would otherwise cost `n` scans of all its versions.
    pub(super) fn live_versions_cached(
        &self,
        seen: &mut KeyPointers,
        snapshot: SeqNo,
        id: u64,
        offset: u64,
        key: &[u8],
    ) -> Result<Vec<Timestamp>> {
        if !self.opts.versioning {
            return self.live_versions(snapshot, id, offset, key);
        }
        if !seen.contains_key(key) {
            let k = Bytes::copy_from_slice(key);
            let range =
                KeyRange { lower: Bound::Included(k.clone()), upper: Bound::Included(k.clone()) };
            let here = self
                .scan_versions_raw(snapshot, &range, None)?
                .into_iter()
                .filter(|(_, kind)| *kind == ValueKind::Pointer)
                .filter_map(|(e, _)| {
                    let p = ValuePointer::decode(&e.value).ok()?;
                    (p.file == id).then_some((p.offset, e.ts))
                })
                .collect();
            seen.insert(k, here);
        }
        Ok(seen
            .get(key)
            .map(|v| v.iter().filter(|(o, _)| *o == offset).map(|&(_, ts)| ts).collect())
            .unwrap_or_default())
    }

    /// Rewrites the live records of file `id` at the head of the log and queues the file for
    /// deletion. Leaves the file alone (and reports nothing) if a chunk keeps conflicting.
    fn collect_file(&self, id: u64, meta: &VlogFileMeta, report: &mut GcReport) -> Result<()> {
        self.check_nothing_past_sealed_end(id, meta)?;
        let mut chunk: Vec<Live> = Vec::new();
        let mut chunk_bytes = 0usize;
        let mut relocated = 0u64;
        let mut gave_up = false;
        let snapshot = self.gc_snapshot();
        let mut seen = KeyPointers::new();
        let name = filenames::vlog(meta.file_no);
        self.walk_file(meta, |offset, len, rec| {
            if gave_up {
                return Ok(());
            }
            let key = rec.key;
            for ts in self.live_versions_cached(&mut seen, snapshot.seq(), id, offset, key)? {
                let value = rec.value().map_err(|k| Error::corruption(&name, offset, k))?;
                chunk.push(Live {
                    key: Bytes::copy_from_slice(key),
                    value: Bytes::copy_from_slice(&value),
                    ts,
                    offset,
                    len,
                });
                chunk_bytes += len as usize;
            }
            if chunk_bytes >= CHUNK_BYTES || chunk.len() >= CHUNK_RECORDS {
                match self.relocate(id, core::mem::take(&mut chunk), snapshot.seq())? {
                    Some(bytes) => relocated += bytes,
                    None => gave_up = true,
                }
                chunk_bytes = 0;
            }
            Ok(())
        })?;
        if !gave_up && !chunk.is_empty() {
            match self.relocate(id, chunk, snapshot.seq())? {
                Some(bytes) => relocated += bytes,
                None => gave_up = true,
            }
        }
        drop(snapshot);
        if gave_up {
            return Ok(());
        }
        // The relocations, and the overwrites that made everything else here dead, must be
        // durable before the file can go.
        self.sync_log()?;
        let from_seq = self.snapshots.visible();
        self.lsm.lock().vlog_pending.push((id, from_seq));
        let len = meta.sealed_len.unwrap_or(0);
        report.files_collected += 1;
        report.bytes_relocated += relocated;
        report.bytes_reclaimed += len.saturating_sub(relocated);
        self.stats.gc_files.fetch_add(1, Ordering::Relaxed);
        self.stats.gc_relocated_bytes.fetch_add(relocated, Ordering::Relaxed);
        Ok(())
    }

    /// A file longer on disk than its sealed length was the head when a process stopped, and
    /// recovery sealed it where its walk found the first torn or damaged record. Only
    /// unacknowledged values can lie beyond a torn tail, but damage to synced bytes would hide
    /// the intact records after it from the walk: before such a file is collected, the tree is
    /// searched once for a pointer past the sealed length. One is `Corruption`: the file is
    /// kept and nothing is lost.
    fn check_nothing_past_sealed_end(&self, id: u64, meta: &VlogFileMeta) -> Result<()> {
        let Some(sealed) = meta.sealed_len else { return Ok(()) };
        let name = filenames::vlog(meta.file_no);
        let size = self.vfs().size(&name).map_err(|e| Error::io(IoOp::Size, &name, e))?;
        if size > sealed && self.any_pointer_past(id, sealed)? {
            return Err(Error::corruption(&name, sealed, crate::CorruptionKind::Checksum));
        }
        Ok(())
    }

    /// Commits `chunk` as a transaction reading at `read_seq`. On a conflict, keeps the
    /// entries still live at a fresh snapshot and tries again. Returns the bytes of the records
    /// it rewrote, or `None` if it never got through.
    fn relocate(&self, id: u64, mut chunk: Vec<Live>, mut read_seq: SeqNo) -> Result<Option<u64>> {
        // A retry reads at a fresh snapshot, kept registered until its commit so the conflict
        // check still knows every write after it.
        let mut _pin = None;
        for _ in 0..MAX_ATTEMPTS {
            if chunk.is_empty() {
                return Ok(Some(0));
            }
            let mut batch = WriteBatch::new();
            for l in &chunk {
                batch.set_at(&l.key, &l.value, l.ts);
            }
            match self.commit(CommitRequest {
                batch,
                read_seq,
                snapshot: None,
                reads: None,
                sync: false,
                relocation: true,
                blind: false,
            }) {
                Ok(_) => return Ok(Some(chunk.iter().map(|l| u64::from(l.len)).sum())),
                Err(Error::TransactionConflict) => {
                    let fresh = self.gc_snapshot();
                    let mut still = Vec::with_capacity(chunk.len());
                    for l in chunk {
                        let versions = self.live_versions(fresh.seq(), id, l.offset, &l.key)?;
                        if versions.contains(&l.ts) {
                            still.push(l);
                        }
                    }
                    chunk = still;
                    read_seq = fresh.seq();
                    _pin = Some(fresh);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(chunk.is_empty().then_some(0))
    }

    /// Makes every commit so far durable: the value log head, then the WAL.
    pub fn sync_log(&self) -> Result<()> {
        let mut st = self.commit.lock();
        self.check_writable()?;
        // Nothing written since a clean reopen: the log is durable as it is.
        let pending = st.wal_pending.is_some();
        let result = Self::sync_vlog(&mut st).and_then(|()| match st.wal.as_mut() {
            Some(wal) => wal.sync(),
            None if pending => Ok(()),
            None => Err(Error::Closed),
        });
        if result.is_err() {
            self.poison();
        }
        self.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
        result
    }
}

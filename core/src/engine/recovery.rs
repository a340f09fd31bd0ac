//! Opening a database.
//!
//! Steps (docs/files.md):
//! 1. Take the `LOCK` file (fails with [`Error::Locked`] if another handle has it).
//! 2. Read `CURRENT` and replay the manifest it names: the table levels, the log number (WAL
//!    segments below it are already in tables), the last sequence number and timestamp.
//!    Every table the manifest names must exist with its recorded size.
//! 3. Replay the WAL segments at or above the log number, in order, under the configured
//!    [`crate::RecoveryMode`]; sequence numbers must continue from the manifest's without gaps.
//! 4. Remove segments recovery discarded, and make that durable *before* step 5, so the
//!    segment chain never names a discarded file.
//! 5. Create the next WAL segment, chained to the last good record; sync it and the directory.
//! 6. Write a fresh manifest from the recovered version (this switches `CURRENT`), then remove
//!    every file the database does not name: obsolete WAL segments, tables no version names
//!    (a flush or compaction that crashed before its manifest edit), old manifests, temp files.
//!
//! After a clean close with nothing to repair (the manifest ends with the clean-close mark, the
//! log ends where it says, nothing was discarded or walked, nothing is left to remove), steps
//! 5 and 6 are deferred: the open writes nothing. The first write creates the segment
//! (`CommitState::wal_pending`), the first manifest edit the snapshot
//! (`LsmState::manifest_deferred`).

use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::sync::atomic::{AtomicBool, Ordering};

use strata_vfs::sync::{AtomicU64, Mutex, RwLock};
use strata_vfs::{FileKind, RandomRead};

use super::{CommitState, Engine, EngineFs, EngineStats, LsmState, ReadView, TableStore};
use crate::batch::{BatchOp, BatchView};
use crate::clock::Clock;
use crate::compaction::CompactionConfig;
use crate::filenames::{self, FileName};
use crate::key::{InternalKey, ValueKind};
use crate::manifest::{self, ManifestWriter, VersionEdit};
use crate::memtable::Memtable;
use crate::mvcc::{ConflictOracle, Snapshots};
use crate::options::EngineOptions;
use crate::sstable::TableOptions;
use crate::version::Version;
use crate::wal::{self, SegmentHeader, WalWriter};
use crate::{CorruptionKind, Error, IoOp, Result, SeqNo, Timestamp};

/// What WAL replay learned.
struct Replayed {
    memtable: Memtable,
    last_seq: SeqNo,
    last_ts: Timestamp,
    /// Value log files by id, with the length of their valid records.
    vlog_lengths: alloc::collections::BTreeMap<u64, (u64, bool)>,
    /// The first record that points at value log bytes that did not survive: the log ends
    /// there (see `engine::values`).
    dangling: Option<wal::RecordPos>,
    /// Pointers past a head file's valid records in the records from `dangling` on (capped):
    /// if one of them names an intact record, the head was damaged in the middle, not torn.
    after_dangling: Vec<(crate::vlog::ValuePointer, Vec<u8>)>,
}

/// Pointers kept for the damage-or-torn-tail check after a dangling one.
const MAX_AFTER_DANGLING: usize = 4096;

impl<V: EngineFs> Engine<V> {
    /// Opens (or creates) the database in `vfs`.
    pub fn open(vfs: V, opts: EngineOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        opts.validate()?;
        let lock =
            vfs.lock(filenames::LOCK).map_err(|e| Error::io(IoOp::Lock, filenames::LOCK, e))?;
        Self::open_locked(vfs, lock, opts, clock)
    }

    /// [`Engine::open`] with the directory lock already held (handed over by
    /// [`Engine::close_keeping_lock`]): steps 2 to 6.
    pub fn open_locked(
        vfs: V,
        lock: V::Lock,
        opts: EngineOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        opts.validate()?;

        // Step 2: the manifest.
        let recovered = manifest::recover(&vfs, opts.level_count)?;
        let wal_closed = recovered.as_ref().and_then(|r| r.wal_closed);
        let recorded_versioning = recovered.as_ref().and_then(|r| r.versioning);
        let live_manifest_no = recovered.as_ref().map(|r| r.manifest_file_no);
        if recovered.as_ref().and_then(|r| r.versioning) == Some(true) && !opts.versioning {
            return Err(Error::invalid(
                "versioning",
                "this database keeps version history: open it with versioning enabled",
            ));
        }
        let (version, manifest_log_number, manifest_next, base_seq, base_ts, pointers, vlog_files) =
            match recovered {
                Some(r) => (
                    r.version,
                    r.log_number,
                    r.next_file_number,
                    r.last_seq,
                    r.last_ts,
                    r.compaction_pointers,
                    r.vlog,
                ),
                None => (
                    Version::new(opts.level_count),
                    0,
                    1,
                    0,
                    0,
                    alloc::vec![None; opts.level_count],
                    manifest::VlogFiles::new(),
                ),
            };
        let mut vlog_files = vlog_files;
        let vlog_lengths = check_vlog_files(&vfs, &mut vlog_files)?;
        // A head file walked (not sealed by a clean close) gets its seal in the new manifest.
        let head_walked = vlog_lengths.values().any(|&(_, walked)| walked);
        if version.level_count() != opts.level_count {
            return Err(Error::invalid(
                "level_count",
                "differs from the level count this database was created with",
            ));
        }

        let names = vfs.list().map_err(|e| Error::io(IoOp::List, "", e))?;
        let mut segments = Vec::new();
        let mut max_seen = 0;
        for name in &names {
            match filenames::parse(name) {
                Some(FileName::Wal(n)) => {
                    max_seen = max_seen.max(n);
                    if n >= manifest_log_number {
                        segments.push(n);
                    }
                }
                Some(FileName::Table(n) | FileName::Manifest(n) | FileName::ValueLog(n)) => {
                    max_seen = max_seen.max(n);
                }
                _ => {}
            }
        }
        segments.sort_unstable();
        let next_file = AtomicU64::new(manifest_next.max(max_seen + 1));

        // Step 3: the WAL.
        let first_segment = segments.first().copied().unwrap_or(next_file.load(Ordering::Relaxed));
        let mut replayed = Replayed {
            memtable: Memtable::new(first_segment),
            last_seq: base_seq,
            last_ts: base_ts,
            vlog_lengths,
            dangling: None,
            after_dangling: Vec::new(),
        };
        let mut outcome = wal::replay_bounded(
            &vfs,
            &segments,
            filenames::wal,
            opts.recovery_mode,
            wal_closed,
            |payload, pos| apply_record(&mut replayed, payload, pos),
        )?;
        if let Some(pos) = replayed.dangling {
            // Only the newest segment of a log that was not closed cleanly can point past the
            // durable values (every older segment was synced after its values were). A newer
            // segment replay discarded (a torn header: a rotation or a recovery cut short
            // while creating it) holds no record and does not count.
            let tail = wal_closed.is_none()
                && segments
                    .iter()
                    .filter(|&&s| s > pos.segment)
                    .all(|s| outcome.discarded_segments.contains(s));
            if tail && opts.recovery_mode == crate::RecoveryMode::TolerateTornTail {
                // A torn tail loses everything after the tear; an intact record the log points
                // at beyond it means the head was damaged in the middle: acknowledged values
                // after the damage must not be dropped silently.
                check_head_torn_not_damaged(&vfs, &vlog_files, &replayed)?;
            }
            match (tail, opts.recovery_mode) {
                (
                    true,
                    crate::RecoveryMode::TolerateTornTail | crate::RecoveryMode::PointInTime,
                )
                | (false, crate::RecoveryMode::PointInTime) => {
                    outcome.last = Some((pos.segment, pos.offset));
                }
                _ => {
                    let name = filenames::wal(pos.segment);
                    return Err(Error::corruption(&name, pos.offset, CorruptionKind::BadPointer));
                }
            }
        }

        // Step 4.
        let keep_through = outcome.last.map(|(seg, _)| seg).unwrap_or(0);
        let mut removed = false;
        for &seg in segments.iter().filter(|&&s| s > keep_through) {
            let name = filenames::wal(seg);
            vfs.remove(&name).map_err(|e| Error::io(IoOp::Remove, &name, e))?;
            removed = true;
        }
        if removed {
            vfs.sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))?;
        }

        // After a clean close whose files recovery found exactly as the manifest describes
        // them, there is nothing to make durable: steps 5 and 6 are deferred to the first
        // write (the WAL segment) and the first manifest edit (the snapshot).
        let kept = match (wal_closed, live_manifest_no) {
            (Some(mark), Some(file_no))
                if !removed
                    && replayed.dangling.is_none()
                    && outcome.last == Some(mark)
                    && recorded_versioning == Some(opts.versioning)
                    && !head_walked
                    && !any_unreferenced(
                        &names,
                        &version,
                        &vlog_files,
                        manifest_log_number,
                        file_no,
                    ) =>
            {
                Some(super::DeferredManifest { file_no, wal_closed: mark })
            }
            _ => None,
        };

        let (wal, wal_pending, manifest, log_number) = match kept {
            Some(kept) => (None, Some(kept.wal_closed), None, manifest_log_number),
            None => {
                // Step 5.
                let new_segment = next_file.fetch_add(1, Ordering::Relaxed);
                let (prev_segment, prev_valid_len) = outcome.last.unwrap_or((0, 0));
                let header = SegmentHeader { segment: new_segment, prev_segment, prev_valid_len };
                let wal = create_segment(&vfs, header)?;
                // Replay at the next open must start at the first segment whose records are
                // not in a table: the first one replayed now, or the new one if none was.
                let log_number = if outcome.last.is_some() { first_segment } else { new_segment };

                // Step 6.
                let mut snapshot: VersionEdit = version.snapshot_edit();
                for (level, p) in pointers.iter().enumerate() {
                    if let (Some(p), Ok(level)) = (p, u8::try_from(level)) {
                        snapshot.compaction_pointers.push((level, p.clone()));
                    }
                }
                snapshot.log_number = Some(log_number);
                snapshot.versioning = Some(opts.versioning);
                snapshot.vlog = manifest::vlog_snapshot(&vlog_files);
                snapshot.last_seq = Some(base_seq);
                snapshot.last_ts = Some(base_ts);
                let manifest_no = next_file.fetch_add(1, Ordering::Relaxed);
                snapshot.next_file_number = Some(next_file.load(Ordering::Relaxed));
                let manifest = ManifestWriter::create(&vfs, manifest_no, &snapshot)?;
                remove_unreferenced(&vfs, &names, &version, &vlog_files, log_number, manifest_no)?;
                (Some(wal), None, Some(manifest), log_number)
            }
        };

        let store = Arc::new(TableStore::new(
            vfs,
            TableOptions {
                block_size: opts.block_size,
                compression: opts.compression,
                bloom_bits_per_key: opts.bloom_bits_per_key,
                ..TableOptions::default()
            },
            opts.block_cache_bytes,
            opts.max_open_tables,
        ));
        let compaction = CompactionConfig {
            level_count: opts.level_count,
            l0_trigger: opts.l0_compaction_trigger,
            l0_stop: opts.l0_stop_trigger,
            base_level_bytes: opts.base_level_bytes,
            size_ratio: opts.level_size_ratio,
            target_file_size: opts.target_file_size,
        };
        let vlog = Arc::new(crate::vlog::VlogStore::new(
            Arc::clone(&store) as Arc<dyn crate::vlog::store::VfsRef<V>>,
            opts.vlog_verify_checksums(),
            vlog_files.iter().map(|(&id, m)| (id, m.file_no)).collect(),
            Some(Arc::clone(&store.block_cache)),
        ));
        let fingerprints = hashbrown::DefaultHashBuilder::default();
        let engine = Engine {
            snapshots: Snapshots::new(replayed.last_seq),
            fingerprints: fingerprints.clone(),
            view: RwLock::new(Arc::new(ReadView {
                memtables: alloc::vec![Arc::new(replayed.memtable)],
                version: Arc::new(version),
            })),
            commit: Mutex::new(CommitState {
                wal,
                wal_pending,
                vlog_head: None,
                last_seq: replayed.last_seq,
                // The commit path stamps max(now, last_ts + 1), so timestamps keep increasing
                // across reopen even if the clock went back.
                last_ts: replayed.last_ts,
                oracle: ConflictOracle::with_hasher(fingerprints),
                write_log: crate::serializable::WriteLog::new(),
                scratch: Default::default(),
            }),
            lsm: Mutex::new(LsmState {
                manifest,
                manifest_deferred: kept,
                pointers,
                busy: alloc::collections::BTreeSet::new(),
                flushing: false,
                log_number,
                flushed_seq: base_seq,
                obsolete: Vec::new(),
                vlog_files,
                vlog_pending: Vec::new(),
                vlog_gc_failed: alloc::collections::BTreeSet::new(),
            }),
            last_ts: AtomicU64::new(replayed.last_ts),
            next_file,
            store,
            vlog,
            gc_lock: Mutex::new(super::gc_sample::GcState::default()),
            lock: Mutex::new(Some(lock)),
            compaction,
            opts,
            clock,
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            flush_on_close: AtomicBool::new(true),
            stats: EngineStats::default(),
        };
        Ok(engine)
    }
}

/// Whether `name` is a file the recovered database does not name: a WAL segment below
/// `log_number`, a table no level holds, a value log file the manifest does not list, a
/// manifest other than `manifest_no`, or a temp file.
fn is_unreferenced(
    name: &str,
    live_tables: &alloc::collections::BTreeSet<u64>,
    live_vlogs: &alloc::collections::BTreeSet<u64>,
    log_number: u64,
    manifest_no: u64,
) -> bool {
    match filenames::parse(name) {
        Some(FileName::Wal(n)) => n < log_number,
        Some(FileName::Table(n)) => !live_tables.contains(&n),
        Some(FileName::ValueLog(n)) => !live_vlogs.contains(&n),
        Some(FileName::Manifest(n)) => n != manifest_no,
        Some(FileName::Temp) => true,
        _ => false,
    }
}

fn live_sets(
    version: &Version,
    vlog_files: &manifest::VlogFiles,
) -> (alloc::collections::BTreeSet<u64>, alloc::collections::BTreeSet<u64>) {
    (
        version.all_files().map(|(_, f)| f.file_no).collect(),
        vlog_files.values().map(|m| m.file_no).collect(),
    )
}

/// Whether any of `names` is a file the recovered database does not name.
fn any_unreferenced(
    names: &[alloc::string::String],
    version: &Version,
    vlog_files: &manifest::VlogFiles,
    log_number: u64,
    manifest_no: u64,
) -> bool {
    let (tables, vlogs) = live_sets(version, vlog_files);
    names.iter().any(|name| is_unreferenced(name, &tables, &vlogs, log_number, manifest_no))
}

/// Removes files the recovered database does not name. A remove that fails is left for a
/// later open; a failed directory sync is reported (a failed sync is never ignored).
fn remove_unreferenced<V: EngineFs>(
    vfs: &V,
    names: &[alloc::string::String],
    version: &Version,
    vlog_files: &manifest::VlogFiles,
    log_number: u64,
    manifest_no: u64,
) -> Result<()> {
    let (tables, vlogs) = live_sets(version, vlog_files);
    for name in names {
        if is_unreferenced(name, &tables, &vlogs, log_number, manifest_no) {
            let _ = vfs.remove(name);
        }
    }
    vfs.sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))
}

/// Checks every value log file the manifest names exists and holds its sealed length. The
/// head file of a database that was not closed cleanly (the one file not sealed) is walked
/// record by record to find where its valid records end; it is sealed there, or, if it holds
/// no whole record (its header may not even be there), dropped from the set (the next
/// manifest does not name it and it is removed with the other unreferenced files). Returns,
/// per id, the valid length and whether it was found by that walk (pointers past it are a
/// torn tail, not corruption).
fn check_vlog_files<V: EngineFs>(
    vfs: &V,
    files: &mut manifest::VlogFiles,
) -> Result<alloc::collections::BTreeMap<u64, (u64, bool)>> {
    let mut lengths = alloc::collections::BTreeMap::new();
    let mut empty = Vec::new();
    for (&id, meta) in files.iter_mut() {
        let name = filenames::vlog(meta.file_no);
        let size = match vfs.size(&name) {
            Ok(size) => size,
            Err(e) if e.kind() == strata_vfs::ErrorKind::NotFound => {
                return Err(Error::corruption(&name, 0, CorruptionKind::MissingFile));
            }
            Err(e) => return Err(Error::io(IoOp::Size, &name, e)),
        };
        match meta.sealed_len {
            Some(len) => {
                if size < len {
                    return Err(Error::corruption(&name, size, CorruptionKind::Truncated));
                }
                lengths.insert(id, (len, false));
            }
            None => {
                let file = vfs
                    .open(&name, FileKind::ValueLog)
                    .map_err(|e| Error::io(IoOp::Open, &name, e))?;
                let end = if size < crate::vlog::format::FILE_HEADER_LEN {
                    // Created, header not durable: no record can be in it.
                    crate::vlog::format::FILE_HEADER_LEN
                } else {
                    match crate::vlog::scan_file(&file, &name, size, |_, _, _| Ok(())) {
                        Ok(end) => end.valid_end,
                        // A torn header: the file was just created and holds nothing.
                        Err(e) if e.is_corruption() => crate::vlog::format::FILE_HEADER_LEN,
                        Err(e) => return Err(e),
                    }
                };
                // Sealing an empty head would record a header the file may not have (so the
                // next open or a GC walk of it fails) and keep a file no value is in.
                if end <= crate::vlog::format::FILE_HEADER_LEN {
                    empty.push(id);
                }
                meta.sealed_len = Some(end);
                lengths.insert(id, (end, true));
            }
        }
    }
    for id in empty {
        files.remove(&id);
    }
    Ok(lengths)
}

/// Creates WAL segment `header.segment`, writes its header and makes both the bytes and the
/// directory entry durable, so a later Immediate commit in it needs only a data sync.
pub(super) fn create_segment<V: EngineFs>(
    vfs: &V,
    header: SegmentHeader,
) -> Result<WalWriter<V::Write>> {
    let name = filenames::wal(header.segment);
    let file = vfs.create(&name, FileKind::Wal).map_err(|e| Error::io(IoOp::Create, &name, e))?;
    let mut writer = WalWriter::reserving(file, name, header)?;
    writer.sync()?;
    vfs.sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))?;
    Ok(writer)
}

fn apply_record(r: &mut Replayed, payload: &[u8], pos: wal::RecordPos) -> Result<()> {
    if r.dangling.is_some() {
        // The log ended at an earlier record; keep its pointers past the head's end for the
        // torn-or-damaged check.
        note_pointers_past_head(r, payload);
        return Ok(());
    }
    let file = filenames::wal(pos.segment);
    let batch = BatchView::parse(payload)
        .map_err(|_| Error::corruption(&file, pos.offset, CorruptionKind::BadBatch))?;
    if batch.seq == 0 || batch.seq > crate::key::MAX_SEQ {
        return Err(Error::corruption(&file, pos.offset, CorruptionKind::BadBatch));
    }
    if r.last_seq != 0 && batch.seq != r.last_seq + 1 {
        return Err(Error::corruption(&file, pos.offset, CorruptionKind::SequenceGap));
    }
    for op in batch.ops() {
        let op = op.map_err(|_| Error::corruption(&file, pos.offset, CorruptionKind::BadBatch))?;
        if let BatchOp::SetPointer { pointer, .. } = op {
            let ptr = crate::vlog::ValuePointer::decode(pointer)
                .map_err(|_| Error::corruption(&file, pos.offset, CorruptionKind::BadBatch))?;
            match r.vlog_lengths.get(&ptr.file) {
                // The head file when the process stopped: its tail may not have survived.
                Some(&(len, true)) if ptr.end() > len => {
                    r.dangling = Some(pos);
                    note_pointers_past_head(r, payload);
                    return Ok(());
                }
                Some(&(len, false)) if ptr.end() > len => {
                    return Err(Error::corruption(&file, pos.offset, CorruptionKind::BadPointer));
                }
                // Inside a file, or into a file garbage collection deleted (a version every
                // reader sees shadowed by the relocated one).
                _ => {}
            }
        }
    }
    let shared = SharedBatch::copy_of(payload);
    for op in batch.ops() {
        let op = op.map_err(|_| Error::corruption(&file, pos.offset, CorruptionKind::BadBatch))?;
        insert_op(&r.memtable, &shared, &op, batch.seq, batch.commit_ts);
    }
    r.last_seq = batch.seq;
    r.last_ts = r.last_ts.max(batch.commit_ts);
    Ok(())
}

/// Records the pointers of `payload` that name bytes past a head file's valid records.
fn note_pointers_past_head(r: &mut Replayed, payload: &[u8]) {
    let Ok(batch) = BatchView::parse(payload) else { return };
    for op in batch.ops().flatten() {
        let BatchOp::SetPointer { key, pointer, .. } = op else { continue };
        let Ok(ptr) = crate::vlog::ValuePointer::decode(pointer) else { continue };
        let past =
            r.vlog_lengths.get(&ptr.file).is_some_and(|&(len, head)| head && ptr.end() > len);
        if past && r.after_dangling.len() < MAX_AFTER_DANGLING {
            r.after_dangling.push((ptr, key.to_vec()));
        }
    }
}

/// Fails with `Corruption` at the end of a head file's valid records if a pointer replay
/// stopped at, or one after it, names an intact record of its key beyond that end.
fn check_head_torn_not_damaged<V: EngineFs>(
    vfs: &V,
    files: &manifest::VlogFiles,
    r: &Replayed,
) -> Result<()> {
    for (ptr, key) in &r.after_dangling {
        let (Some(meta), Some(&(valid, _))) = (files.get(&ptr.file), r.vlog_lengths.get(&ptr.file))
        else {
            continue;
        };
        let name = filenames::vlog(meta.file_no);
        let Ok(file) = vfs.open(&name, FileKind::ValueLog) else { continue };
        let size = file.len().map_err(|e| Error::io(IoOp::Size, &name, e))?;
        if ptr.end() > size {
            continue;
        }
        let mut buf = alloc::vec![0u8; ptr.len as usize];
        file.read_exact_at(ptr.offset, &mut buf).map_err(|e| Error::io(IoOp::Read, &name, e))?;
        if crate::vlog::format::decode_record(&buf, true).is_ok_and(|v| v.key == key.as_slice()) {
            return Err(Error::corruption(&name, valid, CorruptionKind::Checksum));
        }
    }
    Ok(())
}

/// An encoded batch and one shared copy of it: the keys and values of its ops (slices of the
/// batch) become slices of the copy rather than copies of their own, so inserting a batch
/// costs one allocation and copy, not two per op. The memtable holds every version until it
/// is flushed, so sharing keeps nothing alive longer there; a key or value a reader takes from
/// the memtable keeps its batch's buffer alive while the reader holds it.
pub(super) struct SharedBatch<'a> {
    origin: &'a [u8],
    copy: Bytes,
}

impl<'a> SharedBatch<'a> {
    pub(super) fn copy_of(origin: &'a [u8]) -> Self {
        SharedBatch { origin, copy: Bytes::copy_from_slice(origin) }
    }

    /// `part` (a slice of the batch) as the same range of the copy; a copy of its own if it
    /// is empty or not inside the batch.
    fn share(&self, part: &[u8]) -> Bytes {
        let start = (part.as_ptr() as usize).checked_sub(self.origin.as_ptr() as usize);
        match start {
            Some(start) if !part.is_empty() && start + part.len() <= self.origin.len() => {
                self.copy.slice(start..start + part.len())
            }
            _ => Bytes::copy_from_slice(part),
        }
    }
}

/// Inserts one op of `batch` as a version in `mem`.
pub(super) fn insert_op(
    mem: &Memtable,
    batch: &SharedBatch<'_>,
    op: &BatchOp<'_>,
    seq: SeqNo,
    commit_ts: Timestamp,
) {
    let (key, value, ts, kind) = match *op {
        BatchOp::Set { key, value, ts } => (key, value, ts, ValueKind::Set),
        BatchOp::Delete { key, ts } => (key, &[][..], ts, ValueKind::Delete),
        BatchOp::SetPointer { key, pointer, ts } => (key, pointer, ts, ValueKind::Pointer),
    };
    let ikey = InternalKey::new(batch.share(key), ts.unwrap_or(commit_ts), seq, kind);
    mem.insert(ikey, batch.share(value));
}

//! Opening a database: lock, replay the WAL into a memtable, start a fresh WAL segment.
//!
//! Steps (docs/files.md):
//! 1. Take the `LOCK` file (fails with [`Error::Locked`] if another handle has it).
//! 2. Replay every WAL segment in number order under the configured [`RecoveryMode`]. Each
//!    record is a write batch; sequence numbers must continue without gaps.
//! 3. Remove segments recovery decided to discard (a torn empty last segment; everything after
//!    a point-in-time stop), and make the removal durable *before* step 4, so the segment chain
//!    never names a discarded file.
//! 4. Create the next segment, whose header records the last replayed segment and the end of
//!    its last good record; sync it and the directory. The old segments are never appended to
//!    again.

use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::sync::atomic::AtomicBool;

use strata_vfs::sync::{Mutex, RwLock};
use strata_vfs::{FileKind, Vfs};

use super::{CommitState, Engine, EngineStats, ReadView};
use crate::batch::{BatchOp, BatchView};
use crate::clock::Clock;
use crate::filenames::{self, FileName};
use crate::key::{InternalKey, ValueKind};
use crate::memtable::Memtable;
use crate::mvcc::{ConflictOracle, Snapshots};
use crate::options::EngineOptions;
use crate::wal::{self, SegmentHeader, WalWriter};
use crate::{CorruptionKind, Error, IoOp, Result, SeqNo, Timestamp};

/// What replay learned.
struct Replayed {
    memtable: Memtable,
    last_seq: SeqNo,
    last_ts: Timestamp,
}

impl<V: Vfs> Engine<V> {
    /// Opens (or creates) the database in `vfs`.
    pub fn open(vfs: V, opts: EngineOptions, clock: Arc<dyn Clock>) -> Result<Self> {
        opts.validate()?;
        let lock = vfs.lock(filenames::LOCK).map_err(|e| Error::io(IoOp::Lock, filenames::LOCK, e))?;

        let mut segments = Vec::new();
        for name in vfs.list().map_err(|e| Error::io(IoOp::List, "", e))? {
            if let Some(FileName::Wal(n)) = filenames::parse(&name) {
                segments.push(n);
            }
        }
        segments.sort_unstable();
        let max_existing = segments.last().copied().unwrap_or(0);

        let next_segment = max_existing + 1;
        let mut replayed =
            Replayed { memtable: Memtable::new(next_segment), last_seq: 0, last_ts: 0 };
        let outcome = wal::replay(&vfs, &segments, filenames::wal, opts.recovery_mode, |payload, pos| {
            apply_record(&mut replayed, payload, pos)
        })?;

        // Step 3: forget what recovery discarded, durably, before the new segment names its
        // predecessor.
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

        // Step 4: the new segment.
        let (prev_segment, prev_valid_len) = outcome.last.unwrap_or((0, 0));
        let header = SegmentHeader { segment: next_segment, prev_segment, prev_valid_len };
        let wal = create_segment(&vfs, header)?;

        let engine = Engine {
            snapshots: Snapshots::new(replayed.last_seq),
            view: RwLock::new(Arc::new(ReadView { memtables: alloc::vec![Arc::new(replayed.memtable)] })),
            commit: Mutex::new(CommitState {
                wal: Some(wal),
                next_file: next_segment + 1,
                last_seq: replayed.last_seq,
                // The commit path stamps max(now, last_ts + 1), so timestamps keep increasing
                // across reopen even if the clock went back.
                last_ts: replayed.last_ts,
                oracle: ConflictOracle::new(),
            }),
            vfs,
            lock: Mutex::new(Some(lock)),
            opts,
            clock,
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            stats: EngineStats::default(),
        };
        Ok(engine)
    }
}

/// Creates WAL segment `header.segment`, writes its header and makes both the bytes and the
/// directory entry durable, so a later Immediate commit in it needs only a data sync.
pub(super) fn create_segment<V: Vfs>(vfs: &V, header: SegmentHeader) -> Result<WalWriter<V::Write>> {
    let name = filenames::wal(header.segment);
    let file = vfs.create(&name, FileKind::Wal).map_err(|e| Error::io(IoOp::Create, &name, e))?;
    let mut writer = WalWriter::new(file, name, header)?;
    writer.sync()?;
    vfs.sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))?;
    Ok(writer)
}

fn apply_record(r: &mut Replayed, payload: &[u8], pos: wal::RecordPos) -> Result<()> {
    let file = filenames::wal(pos.segment);
    let batch = BatchView::parse(payload)
        .map_err(|_| Error::corruption(&file, pos.offset, CorruptionKind::BadBatch))?;
    if r.last_seq != 0 && batch.seq != r.last_seq + 1 {
        return Err(Error::corruption(&file, pos.offset, CorruptionKind::SequenceGap));
    }
    if batch.seq == 0 || batch.seq > crate::key::MAX_SEQ {
        return Err(Error::corruption(&file, pos.offset, CorruptionKind::BadBatch));
    }
    for op in batch.ops() {
        let op = op.map_err(|_| Error::corruption(&file, pos.offset, CorruptionKind::BadBatch))?;
        insert_op(&r.memtable, &op, batch.seq, batch.commit_ts);
    }
    r.last_seq = batch.seq;
    r.last_ts = r.last_ts.max(batch.commit_ts);
    Ok(())
}

/// Inserts one batch op as a version in `mem`.
pub(super) fn insert_op(mem: &Memtable, op: &BatchOp<'_>, seq: SeqNo, commit_ts: Timestamp) {
    let (key, value, ts, kind) = match *op {
        BatchOp::Set { key, value, ts } => (key, value, ts, ValueKind::Set),
        BatchOp::Delete { key, ts } => (key, &[][..], ts, ValueKind::Delete),
    };
    let ikey = InternalKey::new(Bytes::copy_from_slice(key), ts.unwrap_or(commit_ts), seq, kind);
    mem.insert(ikey, Bytes::copy_from_slice(value));
}

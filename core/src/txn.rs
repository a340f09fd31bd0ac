//! Transactions: a snapshot to read at, and a private write set that becomes one batch.
//!
//! Reads see the snapshot taken at `begin` plus the transaction's own writes. Writes are
//! buffered; at commit the engine checks that no key in the write set was committed by anyone
//! else after the snapshot (first committer wins) and writes the batch atomically. That is
//! snapshot isolation. A [`Isolation::Serializable`] read-write transaction also records what
//! it reads (see [`crate::serializable`]) and the commit checks that none of it changed.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::ops::Bound;

use crate::engine::EngineFs;

use crate::batch;
use crate::engine::CommitRequest;
use crate::iter::{KeyRange, OverlayEntry, RangeIter, Visibility};
use crate::mvcc::Snapshot;
use crate::options::{check_key, check_value};
use crate::serializable::{Isolation, ReadSet, ScanTracker, SharedReadSet};
use crate::write_set::WriteSet;
use crate::{Engine, Error, Result, Timestamp};
use core::sync::atomic::{AtomicBool, Ordering};
use strata_vfs::sync::Mutex;

/// What a transaction may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Mode {
    /// Reads and writes.
    #[default]
    ReadWrite,
    /// Reads only; writes fail with [`Error::TransactionReadOnly`].
    ReadOnly,
    /// Writes only; reads fail with [`Error::TransactionWriteOnly`].
    ///
    /// Having read nothing, a write-only transaction never fails with
    /// [`Error::TransactionConflict`]: of two concurrent blind writes to one key, the one that
    /// commits last wins, as if they had run one after the other (a write batch). A
    /// read-write transaction that began before it and writes (or, serializable, read) one
    /// of its keys still conflicts with it.
    WriteOnly,
}

/// When a commit is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Durability {
    /// After the WAL record is handed to the operating system. Survives a process crash; a
    /// power cut may lose the most recent commits (never part of one).
    #[default]
    Eventual,
    /// After the WAL record is synced to stable storage.
    Immediate,
}

/// The engine-independent state of one transaction.
#[derive(Debug)]
pub struct TxnCore {
    mode: Mode,
    durability: Durability,
    /// The registered snapshot it reads at; moved into the commit request by `finish`.
    snapshot: Option<Snapshot>,
    /// Its sequence number (kept after `finish`).
    read_seq: crate::SeqNo,
    /// Writes at the commit timestamp, already encoded as the commit batch.
    writes: WriteSet,
    /// Writes at explicit timestamps (versioning).
    versioned: BTreeMap<(Bytes, Timestamp), Option<Bytes>>,
    /// Encoded size of the batch [`TxnCore::finish`] would build from the writes so far.
    size: u64,
    /// The engine's `max_transaction_size`, taken at `begin`.
    max_size: u64,
    finished: bool,
    isolation: Isolation,
    /// What it read, for a serializable read-write transaction; `None` otherwise.
    reads: Option<SharedReadSet>,
    /// Set by the first read or write: the isolation level can no longer change.
    started: AtomicBool,
}

impl TxnCore {
    /// Begins a transaction reading at the engine's newest visible commit.
    pub fn begin<V: EngineFs>(engine: &Engine<V>, mode: Mode) -> Result<Self> {
        Self::begin_with(engine, mode, Isolation::Snapshot)
    }

    /// Begins a transaction in `mode` with the isolation level `isolation`.
    pub fn begin_with<V: EngineFs>(
        engine: &Engine<V>,
        mode: Mode,
        isolation: Isolation,
    ) -> Result<Self> {
        if engine.is_closed() {
            return Err(Error::Closed);
        }
        let (snapshot, reads) = Self::read_point(engine, mode, isolation);
        Ok(TxnCore {
            mode,
            durability: Durability::default(),
            read_seq: snapshot.seq(),
            snapshot: Some(snapshot),
            writes: WriteSet::default(),
            versioned: BTreeMap::new(),
            size: batch::HEADER_LEN as u64,
            max_size: engine.options().max_transaction_size as u64,
            finished: false,
            isolation,
            reads,
            started: AtomicBool::new(false),
        })
    }

    /// The snapshot to read at and, for a serializable read-write transaction, an empty read
    /// set. Read-only transactions serialize at their snapshot and write-only ones read
    /// nothing, so neither needs tracking.
    fn read_point<V: EngineFs>(
        engine: &Engine<V>,
        mode: Mode,
        isolation: Isolation,
    ) -> (Snapshot, Option<SharedReadSet>) {
        if isolation == Isolation::Serializable && mode == Mode::ReadWrite {
            (engine.serializable_snapshot(), Some(Arc::new(Mutex::new(ReadSet::default()))))
        } else {
            (engine.snapshot(), None)
        }
    }

    /// The isolation level.
    pub fn isolation(&self) -> Isolation {
        self.isolation
    }

    /// Changes the isolation level. Allowed only before the first read or write: the
    /// transaction then takes a fresh snapshot at the new level (it has observed nothing
    /// yet, so nothing changes for it). Afterwards it is [`Error::InvalidArgument`].
    pub fn set_isolation<V: EngineFs>(
        &mut self,
        engine: &Engine<V>,
        isolation: Isolation,
    ) -> Result<()> {
        self.check_live()?;
        if self.started.load(Ordering::Relaxed) {
            return Err(Error::invalid(
                "isolation",
                "can only be changed before the transaction's first read or write",
            ));
        }
        if isolation != self.isolation {
            let (snapshot, reads) = Self::read_point(engine, self.mode, isolation);
            self.read_seq = snapshot.seq();
            self.snapshot = Some(snapshot);
            self.reads = reads;
            self.isolation = isolation;
        }
        Ok(())
    }

    fn start(&self) {
        self.started.store(true, Ordering::Relaxed);
    }

    fn track_point<V: EngineFs>(&self, engine: &Engine<V>, key: &[u8]) {
        if let Some(reads) = &self.reads {
            let fingerprint = engine.fingerprint(key);
            reads.lock().add_point(key, fingerprint);
        }
    }

    /// The transaction's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The sequence number it reads at.
    pub fn read_seq(&self) -> crate::SeqNo {
        self.read_seq
    }

    /// Sets the durability its commit will ask for.
    pub fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    /// The durability its commit will ask for.
    pub fn durability(&self) -> Durability {
        self.durability
    }

    /// `true` once committed or rolled back.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Number of pending writes.
    pub fn pending_writes(&self) -> usize {
        self.writes.len() + self.versioned.len()
    }

    fn check_live(&self) -> Result<()> {
        if self.finished {
            return Err(Error::TransactionClosed);
        }
        Ok(())
    }

    fn check_writable(&self, key: &[u8]) -> Result<()> {
        self.check_live()?;
        self.start();
        if self.mode == Mode::ReadOnly {
            return Err(Error::TransactionReadOnly);
        }
        check_key(key)
    }

    fn check_readable(&self) -> Result<()> {
        self.check_live()?;
        self.start();
        if self.mode == Mode::WriteOnly {
            return Err(Error::TransactionWriteOnly);
        }
        Ok(())
    }

    /// Encoded size of the batch [`finish`](TxnCore::finish) would build now: the batch
    /// header plus every pending write's op. This is what `max_transaction_size` bounds.
    pub fn encoded_size(&self) -> u64 {
        self.size
    }

    /// The size the transaction reaches if an op of `added` bytes replaces one of `replaced`
    /// bytes (0 when the key is new), or [`Error::TransactionTooLarge`] over the limit.
    fn size_after(&self, replaced: usize, added: usize) -> Result<u64> {
        let size = self.size - replaced as u64 + added as u64;
        if size > self.max_size {
            return Err(Error::TransactionTooLarge { size, max: self.max_size });
        }
        Ok(size)
    }

    /// Buffers a write at the commit timestamp (`None` deletes) after checking the size limit.
    fn buffer(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        let replaced = self.writes.op_len(key);
        let added = batch::op_encoded_len(key.len(), value.map(<[u8]>::len), false);
        self.size = self.size_after(replaced, added)?;
        self.writes.put(key, value);
        Ok(())
    }

    /// Buffers a write of `value` under `key`.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check_writable(key)?;
        check_value(value)?;
        self.buffer(key, Some(value))
    }

    /// Buffers a delete of `key`.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.check_writable(key)?;
        self.buffer(key, None)
    }

    /// Buffers a write of `value` under `key` at the explicit timestamp `ts` (versioning).
    pub fn set_at<V: EngineFs>(
        &mut self,
        engine: &Engine<V>,
        key: &[u8],
        value: &[u8],
        ts: Timestamp,
    ) -> Result<()> {
        self.check_writable(key)?;
        if !engine.options().versioning {
            return Err(Error::VersioningDisabled);
        }
        check_value(value)?;
        let slot = (Bytes::copy_from_slice(key), ts);
        let replaced = self
            .versioned
            .get(&slot)
            .map_or(0, |old| batch::op_encoded_len(key.len(), old.as_ref().map(Bytes::len), true));
        let added = batch::op_encoded_len(key.len(), Some(value.len()), true);
        self.size = self.size_after(replaced, added)?;
        self.versioned.insert(slot, Some(Bytes::copy_from_slice(value)));
        Ok(())
    }

    /// The value of `key` as this transaction sees it.
    pub fn get<V: EngineFs>(&self, engine: &Engine<V>, key: &[u8]) -> Result<Option<Bytes>> {
        self.check_readable()?;
        check_key(key)?;
        if let Some(pending) = self.writes.get(key) {
            // Its own write: a commit by anyone else to this key is a write-write conflict
            // already, so there is nothing more to track.
            return Ok(pending.map(Bytes::copy_from_slice));
        }
        self.track_point(engine, key);
        engine.get(key, self.visibility(None))
    }

    /// The value of `key` at timestamp `ts` in this transaction's snapshot (versioning).
    pub fn get_at<V: EngineFs>(
        &self,
        engine: &Engine<V>,
        key: &[u8],
        ts: Timestamp,
    ) -> Result<Option<Bytes>> {
        self.check_readable()?;
        if !engine.options().versioning {
            return Err(Error::VersioningDisabled);
        }
        check_key(key)?;
        check_horizon(engine, ts)?;
        // Tracked like a current read (see `crate::serializable`): coarser than needed for a
        // past that ordinary commits cannot change, but right for `set_at` writers and for
        // timestamps at or after the snapshot.
        self.track_point(engine, key);
        engine.get(key, self.visibility(Some(ts)))
    }

    fn visibility(&self, at_ts: Option<Timestamp>) -> Visibility {
        Visibility { snapshot: self.read_seq, at_ts }
    }

    /// Live keys in `range` with their values, as this transaction sees them, optionally at a
    /// past timestamp, at most `limit` of them. The iterator is double-ended.
    ///
    /// Pending writes are laid over current reads only: a time-travel read shows committed
    /// history. With `keys_only`, values kept in the value log are never read (the iterator's
    /// values are then meaningless; callers keep only the keys).
    pub fn range<V: EngineFs>(
        &self,
        engine: &Engine<V>,
        range: KeyRange,
        at_ts: Option<Timestamp>,
        limit: Option<usize>,
        keys_only: bool,
    ) -> Result<RangeIter> {
        self.check_readable()?;
        if let Some(ts) = at_ts {
            if !engine.options().versioning {
                return Err(Error::VersioningDisabled);
            }
            check_horizon(engine, ts)?;
        }
        let overlay: Vec<OverlayEntry> = if at_ts.is_some() || range.is_empty() {
            Vec::new()
        } else {
            let bounds = (as_ref_bound(&range.lower), as_ref_bound(&range.upper));
            self.writes.range(bounds)
        };
        let limit = if range.is_empty() { Some(0) } else { limit };
        let tracker = match &self.reads {
            Some(reads) if limit != Some(0) => Some(ScanTracker::start(reads, range.clone())),
            _ => None,
        };
        let source = engine.range_source(self.visibility(at_ts), range, keys_only)?;
        let pin = self.snapshot.clone().ok_or(Error::TransactionClosed)?;
        let iter = RangeIter::new(source, overlay, limit).pinning(pin);
        Ok(match tracker {
            Some(t) => iter.tracking(t),
            None => iter,
        })
    }

    /// Every retained version in `range` visible to this transaction (versioning).
    pub fn scan_versions<V: EngineFs>(
        &self,
        engine: &Engine<V>,
        range: &KeyRange,
        limit: Option<usize>,
    ) -> Result<Vec<crate::engine::VersionEntry>> {
        self.check_readable()?;
        if !engine.options().versioning {
            return Err(Error::VersioningDisabled);
        }
        if range.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(reads) = &self.reads {
            // The whole range, even when a limit cut the listing short: coarser, never less.
            reads.lock().add_range(range.clone());
        }
        engine.scan_versions(self.read_seq, range, limit)
    }

    /// Ends the transaction and turns its writes into a commit request. Later calls fail with
    /// [`Error::TransactionClosed`].
    pub fn finish(&mut self) -> Result<CommitRequest> {
        self.check_live()?;
        self.finished = true;
        // `size` is the exact encoded size (bounded by `max_transaction_size`): one allocation.
        let mut batch =
            core::mem::take(&mut self.writes).into_batch(usize::try_from(self.size).unwrap_or(0));
        for ((key, ts), value) in core::mem::take(&mut self.versioned) {
            match value {
                Some(v) => batch.set_at(&key, &v, ts),
                None => batch.delete_at(&key, ts),
            }
        }
        debug_assert_eq!(batch.encoded_len() as u64, self.size, "tracked size is exact");
        Ok(CommitRequest {
            batch,
            read_seq: self.read_seq,
            // The request keeps the snapshot registered until it is decided, even if this
            // transaction is dropped first (a caller that stopped waiting).
            snapshot: self.snapshot.take(),
            // Iterators still open keep narrowing a set nobody reads any more: harmless.
            reads: self
                .reads
                .as_ref()
                .map(|r| core::mem::take(&mut *r.lock()))
                .filter(|r| !r.is_empty())
                .map(alloc::boxed::Box::new),
            sync: self.durability == Durability::Immediate,
            relocation: false,
            blind: self.mode == Mode::WriteOnly,
        })
    }

    /// Discards every pending write and ends the transaction.
    pub fn rollback(&mut self) -> Result<()> {
        self.check_live()?;
        self.finished = true;
        self.snapshot = None;
        self.writes = WriteSet::default();
        self.versioned.clear();
        self.size = batch::HEADER_LEN as u64;
        Ok(())
    }
}

/// Time-travel reads older than the retention horizon fail rather than return a state that
/// depends on how far compaction has got.
fn check_horizon<V: EngineFs>(engine: &Engine<V>, ts: Timestamp) -> Result<()> {
    match engine.retention_horizon() {
        Some(horizon) if ts < horizon => Err(Error::TimestampExpired { ts, horizon }),
        _ => Ok(()),
    }
}

fn as_ref_bound(b: &Bound<Bytes>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

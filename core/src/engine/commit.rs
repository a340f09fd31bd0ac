//! The commit path. One call commits a group of transactions with one WAL write and at most
//! one sync; the host's commit thread gathers the groups.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::recovery::{SharedBatch, create_segment, insert_op};
use alloc::sync::Arc;

use super::{CommitState, Engine, EngineFs, ReadView};
use crate::batch::WriteBatch;
use crate::memtable::Memtable;
use crate::wal::SegmentHeader;
use crate::{Error, Result, SeqNo};

/// One transaction asking to commit.
#[derive(Debug)]
pub struct CommitRequest {
    /// Its writes. The header is stamped by the commit path.
    pub batch: WriteBatch,
    /// The snapshot it read at: any key it writes that was committed after this conflicts.
    pub read_seq: SeqNo,
    /// Keeps `read_seq` registered until the request is decided. The conflict oracle forgets
    /// writes that no registered snapshot can conflict with; a request whose transaction is
    /// gone (its commit future dropped while the request waits in the commit queue) must still
    /// be checked against every write after `read_seq`, so the request owns a registration of
    /// its own. `None` only when the caller keeps `read_seq` registered itself.
    pub snapshot: Option<crate::mvcc::Snapshot>,
    /// What a serializable transaction read: it conflicts if a commit after `read_seq` wrote
    /// a key inside it. `None` for snapshot isolation (and for transactions that read
    /// nothing). `snapshot` must then be a serializable snapshot, so that every commit after
    /// `read_seq` was recorded for validation.
    pub reads: Option<alloc::boxed::Box<crate::serializable::ReadSet>>,
    /// `true` for [`crate::Durability::Immediate`]: answer only after the WAL is synced.
    pub sync: bool,
    /// `true` for the engine's own rewrite of values it already holds (value log garbage
    /// collection; every op carries its version's timestamp). It is checked for conflicts like
    /// any commit, but takes no commit timestamp and is not recorded as a write for conflict
    /// detection: it changes no value, so users see neither the clock nor their transactions
    /// affected by background work.
    pub relocation: bool,
    /// `true` for a write-only transaction: it read nothing, so no write it makes can rest on
    /// a stale read (it cannot lose an update), and it is not checked for write-write
    /// conflicts: of two blind writes of one key, the one committed last wins, as if the two
    /// had run one after the other. Its writes are still recorded, so a transaction that read
    /// or wrote those keys from an older snapshot conflicts with it as usual.
    pub blind: bool,
}

impl<V: EngineFs> Engine<V> {
    /// Commits one transaction. See [`Engine::commit_group`].
    pub fn commit(&self, request: CommitRequest) -> Result<SeqNo> {
        let mut group = [request];
        let mut results = self.commit_group(&mut group);
        results.pop().unwrap_or(Err(Error::Closed))
    }

    /// Commits a group of transactions in order, returning one result per request: the
    /// sequence number it committed at, or why it did not.
    ///
    /// Each request is checked for write-write conflicts against everything committed after
    /// its snapshot, including earlier members of the same group; a serializable one is also
    /// checked for writes into what it read. The accepted batches are
    /// appended to the WAL and flushed to the OS once; if any member asked for
    /// [`crate::Durability::Immediate`] the WAL is synced once, and only then are the writes
    /// made visible and the callers answered. An empty batch commits trivially.
    ///
    /// A failed WAL write or sync poisons the engine: every member that had been accepted gets
    /// an error (none of them is acknowledged), and later writes fail with
    /// [`Error::Poisoned`] until the database is reopened.
    pub fn commit_group(&self, requests: &mut [CommitRequest]) -> Vec<Result<SeqNo>> {
        let mut st = self.commit.lock();
        let mut results = Vec::with_capacity(requests.len());
        self.commit_group_locked(&mut st, requests, &mut results);
        results
    }

    /// Commits one transaction on the calling thread if no other commit holds the commit lock
    /// right now; gives the request back untouched if it is busy. Lets a host skip the
    /// hand-off to its commit thread when there is no group to join.
    pub fn try_commit(
        &self,
        request: CommitRequest,
    ) -> core::result::Result<Result<SeqNo>, CommitRequest> {
        let Some(mut st) = self.commit.try_lock() else { return Err(request) };
        let mut group = [request];
        let mut results = core::mem::take(&mut st.scratch.results);
        results.clear();
        self.commit_group_locked(&mut st, &mut group, &mut results);
        let result = results.pop().unwrap_or(Err(Error::Closed));
        st.scratch.results = results;
        Ok(result)
    }

    /// Commits `requests`, pushing one result per request onto `results`.
    fn commit_group_locked(
        &self,
        st: &mut CommitState<V::Write>,
        requests: &mut [CommitRequest],
        results: &mut Vec<Result<SeqNo>>,
    ) {
        if let Err(e) = self.check_open() {
            results.push(Err(e));
            results.extend(requests.iter().skip(1).map(|_| Err(Error::Closed)));
            return;
        }
        if self.is_poisoned() {
            results.extend(requests.iter().map(|_| Err(Error::Poisoned)));
            return;
        }

        // Order the group: conflict checks, sequence numbers, timestamps. The buffers are the
        // commit state's, taken for the call and put back at the end (a buffer lost on an
        // error path is only allocated again).
        let mut accepted = core::mem::take(&mut st.scratch.accepted);
        accepted.clear();
        let mut want_sync = false;
        let mut fingerprints = core::mem::take(&mut st.scratch.fingerprints);
        // Record written keys for serializable validation while a serializable snapshot is
        // live; a snapshot registered after this check is caught after publishing below.
        let tracking = self.snapshots.serializable_live();
        for (i, req) in requests.iter_mut().enumerate() {
            if req.batch.is_empty() {
                results.push(Ok(st.last_seq));
                continue;
            }
            fingerprints.clear();
            fingerprints
                .extend(req.batch.ops().flatten().map(|op| st.oracle.fingerprint(op.key())));
            let read_conflict = req.reads.as_ref().is_some_and(|r| {
                crate::serializable::read_conflict(&st.oracle, &st.write_log, req.read_seq, r)
            });
            let write_conflict = !req.blind && st.oracle.conflicts(req.read_seq, &fingerprints);
            if read_conflict || write_conflict {
                self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                results.push(Err(Error::TransactionConflict));
                continue;
            }
            let seq = st.last_seq + 1;
            let ts =
                if req.relocation { st.last_ts } else { self.clock.now_ns().max(st.last_ts + 1) };
            req.batch.stamp(seq, ts);
            st.last_seq = seq;
            st.last_ts = ts;
            if !req.relocation {
                st.oracle.record(seq, &fingerprints);
                if tracking {
                    Self::log_writes(&mut st.write_log, req, seq);
                }
            }
            want_sync |= req.sync;
            accepted.push((i, seq, ts));
            results.push(Ok(seq));
        }
        st.scratch.fingerprints = fingerprints;
        if accepted.is_empty() {
            st.scratch.accepted = accepted;
            return;
        }

        // User bytes as committed, before large values move to the value log.
        let user_bytes: u64 = accepted
            .iter()
            .filter_map(|&(i, _, _)| requests.get(i))
            .map(|r| r.batch.encoded_len() as u64)
            .sum();
        let written = self
            .rotate_memtable_if_full(st)
            .and_then(|()| self.separate_values(st, requests, &accepted))
            .and_then(|()| self.write_wal(st, requests, &accepted, want_sync));
        if let Err(e) = written {
            self.poison();
            let mut first = Some(e);
            for &(i, _, _) in &accepted {
                if let Some(slot) = results.get_mut(i) {
                    *slot = Err(first.take().unwrap_or(Error::Poisoned));
                }
            }
            return;
        }

        // Durable as asked: make the group visible, oldest first, then publish.
        let view = self.current_view();
        if let Some(mem) = view.memtables.first() {
            for &(i, seq, ts) in &accepted {
                let Some(req) = requests.get(i) else { continue };
                // One copy of the batch for all its keys and values (see `SharedBatch`).
                let shared = SharedBatch::copy_of(req.batch.as_bytes());
                for op in req.batch.ops().flatten() {
                    insert_op(mem, &shared, &op, seq, ts);
                }
            }
            self.stats.user_bytes.fetch_add(user_bytes, Ordering::Relaxed);
        }
        self.last_ts.store(st.last_ts, Ordering::Release);
        self.snapshots.publish(st.last_seq);
        if !tracking && self.snapshots.serializable_live() {
            // A serializable snapshot registered during this group may read at a sequence
            // number before it: record the group too (see `Snapshots::take_serializable`).
            for &(i, seq, _) in &accepted {
                if let Some(req) = requests.get(i).filter(|r| !r.relocation) {
                    Self::log_writes(&mut st.write_log, req, seq);
                }
            }
        }
        self.stats.commits.fetch_add(accepted.len() as u64, Ordering::Relaxed);
        self.stats.commit_groups.fetch_add(1, Ordering::Relaxed);
        let (oldest, oldest_serializable) = self.snapshots.oldest_both();
        st.oracle.prune(oldest);
        if !st.write_log.is_empty() {
            st.write_log.prune(oldest_serializable);
        }
        st.scratch.accepted = accepted;
    }

    fn log_writes(log: &mut crate::serializable::WriteLog, req: &CommitRequest, seq: SeqNo) {
        for op in req.batch.ops().flatten() {
            log.record(seq, op.key());
        }
    }

    fn write_wal(
        &self,
        st: &mut CommitState<V::Write>,
        requests: &[CommitRequest],
        accepted: &[(usize, SeqNo, crate::Timestamp)],
        sync: bool,
    ) -> Result<()> {
        for &(i, _, _) in accepted {
            let Some(req) = requests.get(i) else { continue };
            self.maybe_rotate(st)?;
            let wal = self.wal_for_write(st)?;
            let before = wal.len();
            wal.add_record(req.batch.as_bytes())?;
            self.stats.wal_bytes.fetch_add(wal.len() - before, Ordering::Relaxed);
            if req.relocation {
                self.stats.gc_write_bytes.fetch_add(wal.len() - before, Ordering::Relaxed);
            }
        }
        // Values before the records that point at them: to the OS first, and durable first.
        Self::flush_vlog(st)?;
        if sync {
            Self::sync_vlog(st)?;
        }
        let wal = self.wal_for_write(st)?;
        wal.flush()?;
        if sync {
            wal.sync()?;
            self.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Starts a new WAL segment once the current one is full. The old segment is synced first,
    /// so only the newest segment can ever have a torn tail, and the new header records its
    /// exact length.
    fn maybe_rotate(&self, st: &mut CommitState<V::Write>) -> Result<()> {
        if st.wal_pending.is_some() {
            // The first write creates an empty segment.
            return Ok(());
        }
        let Some(wal) = st.wal.as_ref() else { return Err(Error::Closed) };
        if wal.len() < self.opts.wal_segment_size {
            return Ok(());
        }
        Self::sync_vlog(st)?;
        let Some(wal) = st.wal.as_mut() else { return Err(Error::Closed) };
        wal.sync()?;
        self.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
        let header = SegmentHeader {
            segment: self.next_file.fetch_add(1, Ordering::Relaxed),
            prev_segment: wal.segment(),
            prev_valid_len: wal.len(),
        };
        let new = create_segment(self.vfs(), header)?;
        st.wal = Some(new);
        Ok(())
    }

    /// When the active memtable is full, makes it immutable and starts a new one together with
    /// a new WAL segment, so every memtable's writes live in whole segments and a flushed
    /// memtable's segments can be deleted.
    fn rotate_memtable_if_full(&self, st: &mut CommitState<V::Write>) -> Result<()> {
        let view = self.current_view();
        let full = view
            .memtables
            .first()
            .is_some_and(|m| m.approximate_bytes() >= self.opts.max_memtable_size);
        if !full {
            return Ok(());
        }
        self.rotate_memtable(st)
    }

    /// Makes the active memtable immutable (if it holds anything) and starts a new one with a
    /// new WAL segment. Returns the sequence number every immutable memtable now covers.
    pub(super) fn rotate_active_memtable(&self) -> Result<SeqNo> {
        let mut st = self.commit.lock();
        self.check_writable()?;
        let has_data = self.current_view().memtables.first().is_some_and(|m| !m.is_empty());
        if has_data && let Err(e) = self.rotate_memtable(&mut st) {
            self.poison();
            return Err(e);
        }
        Ok(st.last_seq)
    }

    fn rotate_memtable(&self, st: &mut CommitState<V::Write>) -> Result<()> {
        // Every segment but the newest must point only at durable values.
        Self::sync_vlog(st)?;
        let (prev_segment, prev_valid_len) = match st.wal_pending {
            // Not written since a clean reopen: the last segment is durable as it is.
            Some(last) => last,
            None => {
                let Some(wal) = st.wal.as_mut() else { return Err(Error::Closed) };
                wal.sync()?;
                self.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
                (wal.segment(), wal.len())
            }
        };
        let segment = self.next_file.fetch_add(1, Ordering::Relaxed);
        let header = SegmentHeader { segment, prev_segment, prev_valid_len };
        let new_wal = create_segment(self.vfs(), header)?;
        st.wal = Some(new_wal);
        st.wal_pending = None;
        let mut guard = self.view.write();
        let mut memtables = alloc::vec::Vec::with_capacity(guard.memtables.len() + 1);
        memtables.push(Arc::new(Memtable::new(segment)));
        memtables.extend(guard.memtables.iter().cloned());
        *guard = Arc::new(ReadView { memtables, version: Arc::clone(&guard.version) });
        Ok(())
    }

    /// The WAL segment to append to. After a clean reopen (`CommitState::wal_pending`) the
    /// first write creates it, chained to the log's last segment at its closed length: the
    /// manifest's clean-close mark then no longer bounds the log (it bounds only a last
    /// segment), so recovery reads the new segment like any open one.
    fn wal_for_write<'a>(
        &self,
        st: &'a mut CommitState<V::Write>,
    ) -> Result<&'a mut crate::wal::WalWriter<V::Write>> {
        if let Some((prev_segment, prev_valid_len)) = st.wal_pending {
            let segment = self.next_file.fetch_add(1, Ordering::Relaxed);
            let header = SegmentHeader { segment, prev_segment, prev_valid_len };
            st.wal = Some(create_segment(self.vfs(), header)?);
            st.wal_pending = None;
        }
        st.wal.as_mut().ok_or(Error::Closed)
    }
}

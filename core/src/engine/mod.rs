//! The engine: one open database over a [`Vfs`].
//!
//! It owns the WAL writer and the commit state (behind one mutex: commits are serialised, but a
//! whole group of them shares one WAL write and at most one WAL sync, which a sync of the value
//! log head precedes; a WAL segment, memtable or value log rotation adds its own), the
//! memtables readers walk without locks, the table levels described by the manifest, and the
//! snapshot registry.
//!
//! Write path ([`Engine::commit_group`]): conflict check → sequence number and timestamp → WAL
//! append (one flush, one sync if any member asked for it) → memtable insert → publish the new
//! visible sequence number → answer. A full memtable becomes immutable and a new WAL segment
//! starts with its successor, so each memtable owns whole WAL segments.
//!
//! Background work ([`Engine::flush_one`], [`Engine::compact_one`],
//! [`Engine::maintenance_step`]) is driven by the host: threads in `strata`, or a loop on a
//! single-threaded device. Each job does its I/O without holding the commit lock and installs
//! its result with one synced manifest edit.
//!
//! Read path: a snapshot of the [`ReadView`] (memtables plus the current [`Version`]), merged
//! and filtered by visibility (`crate::iter`).

mod commit;
mod compact;
mod flush;
mod gc;
mod gc_sample;
mod read;
mod recovery;
mod tables;
mod values;

use alloc::collections::BTreeSet;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use strata_vfs::Vfs;
use strata_vfs::sync::{AtomicU64, Mutex, RwLock};

use crate::clock::Clock;
use crate::compaction::CompactionConfig;
use crate::key::InternalKey;
use crate::manifest::ManifestWriter;
use crate::memtable::Memtable;
use crate::mvcc::{ConflictOracle, Snapshots};
use crate::options::EngineOptions;
use crate::version::Version;
use crate::wal::WalWriter;
use crate::{Error, Result, SeqNo, Timestamp};

pub use commit::CommitRequest;
pub use gc::GcReport;
pub use gc_sample::SAMPLE_RECORDS as GC_SAMPLE_RECORDS;
pub use read::VersionEntry;
pub use tables::{LevelCursor, TableStore};

/// The filesystems the engine runs on: any [`Vfs`] that can be shared between threads, with
/// readable files that can too. (On a single-threaded device every type qualifies trivially.)
pub trait EngineFs: Vfs<Read: Send + Sync + 'static> + Send + Sync + 'static {}
impl<V> EngineFs for V where V: Vfs<Read: Send + Sync + 'static> + Send + Sync + 'static {}

/// What readers walk: memtables (the active one first, then immutable ones, newest to oldest)
/// and the table levels.
#[derive(Debug)]
pub struct ReadView {
    /// Memtables, newest first. The first one is the one being written.
    pub memtables: Vec<Arc<Memtable>>,
    /// The table files.
    pub version: Arc<Version>,
}

/// Counters for observing the engine. All are monotonic since open.
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Commit groups written (one WAL write each).
    pub commit_groups: AtomicU64,
    /// WAL syncs issued.
    pub wal_syncs: AtomicU64,
    /// Bytes appended to the WAL (payloads and framing).
    pub wal_bytes: AtomicU64,
    /// Commits refused with a conflict.
    pub conflicts: AtomicU64,
    /// Bytes of committed write batches (keys, values and their framing, before large values
    /// move to the value log); garbage collection's relocations count too.
    pub user_bytes: AtomicU64,
    /// Memtables flushed to tables.
    pub flushes: AtomicU64,
    /// Bytes of tables written by flushes.
    pub flush_bytes: AtomicU64,
    /// Compactions run (merges and moves).
    pub compactions: AtomicU64,
    /// Bytes of tables read by compactions.
    pub compaction_read_bytes: AtomicU64,
    /// Bytes of tables written by compactions.
    pub compaction_write_bytes: AtomicU64,
    /// Nanoseconds writers spent waiting for background work (reported by the host).
    pub stall_ns: AtomicU64,
    /// Bytes of records appended to the value log by commits (garbage collection included).
    pub vlog_bytes: AtomicU64,
    /// Value log files garbage collection rewrote.
    pub gc_files: AtomicU64,
    /// Bytes of live records garbage collection copied to the head of the log.
    pub gc_relocated_bytes: AtomicU64,
    /// Value log files deleted.
    pub gc_deleted_files: AtomicU64,
    /// Bytes of value log files deleted.
    pub gc_deleted_bytes: AtomicU64,
    /// Bytes of value log files garbage collection read: collection and exact measurement
    /// walks (headers and whole records), and background samples (record prefixes and keys).
    pub gc_read_bytes: AtomicU64,
    /// Bytes garbage collection's relocations appended to the value log and the WAL.
    pub gc_write_bytes: AtomicU64,
    /// Records background sampling looked up in the tree.
    pub gc_sampled_records: AtomicU64,
}

/// State only the committer touches.
struct CommitState<W: strata_vfs::AppendWrite> {
    wal: Option<WalWriter<W>>,
    /// Set instead of `wal` when the database was reopened after a clean close and nothing
    /// has been written since: the last segment and its length. The next segment, chained to
    /// it, is created by the first write ([`Engine::wal_for_write`]), so an open that only
    /// reads writes nothing.
    wal_pending: Option<(u64, u64)>,
    /// The value log file commits append large values to (created on first use).
    vlog_head: Option<crate::vlog::VlogWriter<W>>,
    last_seq: SeqNo,
    last_ts: Timestamp,
    oracle: ConflictOracle,
    /// Keys recent commits wrote, for validating serializable transactions.
    write_log: crate::serializable::WriteLog,
    /// Buffers a commit reuses, so a one-key commit allocates nothing for its bookkeeping.
    scratch: CommitScratch,
}

/// Working buffers of the commit path, kept (cleared) between commits.
#[derive(Default)]
struct CommitScratch {
    /// The conflict fingerprints of the request being checked.
    fingerprints: Vec<u64>,
    /// The accepted requests of the group: index, sequence number, commit timestamp.
    accepted: Vec<(usize, SeqNo, Timestamp)>,
    /// The results of a one-request commit ([`Engine::try_commit`]).
    results: Vec<Result<SeqNo>>,
}

/// State of the table levels, changed only by flushes and compactions.
struct LsmState<W: strata_vfs::AppendWrite> {
    manifest: Option<ManifestWriter<W>>,
    /// Set instead of `manifest` when the database was reopened after a clean close: the
    /// manifest `CURRENT` names still describes the database exactly, so it is kept as it is
    /// until the first edit, which starts a new manifest from a snapshot first
    /// ([`Engine::live_manifest`]).
    manifest_deferred: Option<DeferredManifest>,
    /// Round-robin compaction pointers per level.
    pointers: Vec<Option<InternalKey>>,
    /// Files that a running compaction reads.
    busy: BTreeSet<u64>,
    /// A flush is running (flushes run one at a time, oldest memtable first).
    flushing: bool,
    /// WAL segments below this number are obsolete.
    log_number: u64,
    /// Every sequence number up to this one is in a table (WAL replay continues after it).
    flushed_seq: SeqNo,
    /// Tables no current version names. Each is deleted once no read view still holds a
    /// version naming it (its `Arc<FileMeta>` is then held by this list alone), so an open
    /// iterator never finds a table gone.
    obsolete: Vec<Arc<crate::manifest::FileMeta>>,
    /// The value log files, as the manifest records them.
    vlog_files: crate::manifest::VlogFiles,
    /// Value log files garbage collection emptied, with the sequence number from which every
    /// reader sees their values elsewhere: each is deleted once no snapshot is older.
    vlog_pending: Vec<(u64, SeqNo)>,
    /// Value log files background garbage collection found damaged: it leaves them alone
    /// until the next open (an explicit run still tries, and reports the error).
    vlog_gc_failed: BTreeSet<u64>,
}

/// The manifest a reopen after a clean close kept (see `LsmState::manifest_deferred`).
#[derive(Debug, Clone, Copy)]
struct DeferredManifest {
    /// Its number.
    file_no: u64,
    /// Its last record, the clean-close mark: the last WAL segment and its length.
    wal_closed: (u64, u64),
}

/// An open database.
pub struct Engine<V: EngineFs> {
    store: Arc<TableStore<V>>,
    vlog: Arc<crate::vlog::VlogStore<V>>,
    /// Held by a garbage collection run (one at a time), with what sampling found.
    gc_lock: Mutex<gc_sample::GcState>,
    lock: Mutex<Option<V::Lock>>,
    opts: EngineOptions,
    compaction: CompactionConfig,
    clock: Arc<dyn Clock>,
    snapshots: Arc<Snapshots>,
    /// The key hasher of the conflict oracle, usable without the commit lock.
    fingerprints: hashbrown::DefaultHashBuilder,
    view: RwLock<Arc<ReadView>>,
    commit: Mutex<CommitState<V::Write>>,
    lsm: Mutex<LsmState<V::Write>>,
    /// Next number for any new file (WAL segment, table, value log file, manifest).
    next_file: AtomicU64,
    /// Newest commit timestamp, for manifest edits.
    last_ts: AtomicU64,
    poisoned: AtomicBool,
    closed: AtomicBool,
    /// [`Engine::close`] flushes the memtables first (see [`CLOSE_FLUSH_MIN_BYTES`]).
    flush_on_close: AtomicBool,
    stats: EngineStats,
}

/// [`Engine::close`] writes the memtables to a table when they hold at least this many bytes,
/// so the next open replays no WAL. Below it, replaying the rest costs about a millisecond
/// (~3 µs per 100-byte entry measured here), less than writing and later compacting a tiny
/// level-0 table.
pub const CLOSE_FLUSH_MIN_BYTES: usize = 256 * 1024;

impl<V: EngineFs> core::fmt::Debug for Engine<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("visible_seq", &self.snapshots.visible())
            .field("poisoned", &self.is_poisoned())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// A summary of one level, for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelSummary {
    /// Table files in the level.
    pub files: usize,
    /// Their total size in bytes.
    pub bytes: u64,
}

impl<V: EngineFs> Engine<V> {
    /// The options the engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// The filesystem.
    pub fn vfs(&self) -> &V {
        &self.store.vfs
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Block cache hits and misses.
    pub fn block_cache_counters(&self) -> (u64, u64) {
        (self.store.block_cache.hits(), self.store.block_cache.misses())
    }

    /// Files and bytes per level.
    pub fn levels(&self) -> Vec<LevelSummary> {
        let view = self.current_view();
        (0..view.version.level_count())
            .map(|l| LevelSummary {
                files: view.version.files(l).len(),
                bytes: view.version.level_bytes(l),
            })
            .collect()
    }

    /// Number of memtables waiting to be flushed.
    pub fn immutable_memtables(&self) -> usize {
        self.current_view().memtables.len().saturating_sub(1)
    }

    /// The oldest timestamp time-travel reads may ask for: now minus the retention period, when
    /// versioning keeps history for a limited time; `None` when history is kept forever (or not
    /// at all).
    pub fn retention_horizon(&self) -> Option<crate::Timestamp> {
        (self.opts.versioning && self.opts.retention_ns > 0)
            .then(|| self.clock.now_ns().saturating_sub(self.opts.retention_ns))
    }

    /// Newest committed and visible sequence number.
    pub fn visible_seq(&self) -> SeqNo {
        self.snapshots.visible()
    }

    /// `true` once a write or sync failed; writes are refused until reopen.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// `true` once [`Engine::close`] ran.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// `true` when writers should wait for background work before committing more: too many
    /// memtables await flushing, or level 0 has too many files.
    pub fn should_stall(&self) -> bool {
        let view = self.current_view();
        view.memtables.len().saturating_sub(1) >= self.opts.max_immutable_memtables
            || view.version.files(0).len() >= self.opts.l0_stop_trigger
    }

    /// `true` when a flush or a compaction has work to do.
    pub fn has_background_work(&self) -> bool {
        let view = self.current_view();
        if view.memtables.len() > 1 {
            return true;
        }
        let lsm = self.lsm.lock();
        crate::compaction::pick(&view.version, &self.compaction, &lsm.pointers, &|f| {
            lsm.busy.contains(&f)
        })
        .is_some()
    }

    /// Deletes obsolete tables that no read view can reach any more. Returns how many.
    pub fn delete_obsolete_files(&self) -> usize {
        let ready: Vec<Arc<crate::manifest::FileMeta>> = {
            let mut lsm = self.lsm.lock();
            let (ready, keep) = core::mem::take(&mut lsm.obsolete)
                .into_iter()
                .partition(|f| Arc::strong_count(f) == 1);
            lsm.obsolete = keep;
            ready
        };
        for f in &ready {
            self.store.evict(f.file_no);
            // A failed remove leaves a file no version names; the next open removes it.
            let _ = self.vfs().remove(&crate::filenames::table(f.file_no));
        }
        ready.len() + self.delete_unreachable_vlog_files()
    }

    /// Runs background jobs on the calling thread until there is nothing left to do or
    /// `budget` jobs ran: flushes, compactions, then, with the tree settled, collection of a
    /// value log file whose known dead fraction reaches `vlog_gc_discard_ratio`
    /// ([`Engine::gc_step`]; no sampling). For hosts without threads. Returns the number of
    /// jobs run.
    pub fn maintenance_step(&self, budget: usize) -> Result<usize> {
        let mut done = 0;
        while done < budget {
            if self.flush_one()? || self.compact_one()? {
                done += 1;
            } else if self.gc_step()? {
                // With the tree settled, a value log file dead enough is collected.
                done += 1;
            } else {
                break;
            }
        }
        self.delete_obsolete_files();
        Ok(done)
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    fn current_view(&self) -> Arc<ReadView> {
        Arc::clone(&self.view.read())
    }

    /// Shuts down: writes the memtables to a table when they hold at least
    /// [`CLOSE_FLUSH_MIN_BYTES`] (so the next open replays almost no WAL), makes every
    /// committed write durable (one final WAL sync), closes the WAL and releases the
    /// directory lock. Later calls return [`Error::Closed`]. Idempotent. The
    /// host stops its background threads first.
    pub fn close(&self) -> Result<()> {
        let (result, lock) = self.close_keeping_lock();
        drop(lock);
        result
    }

    /// [`Engine::close`], but the directory lock is handed to the caller instead of released
    /// (`None` if the engine was closed already), so that no other process can open the
    /// directory before the caller reopens it with [`Engine::open_locked`] (a restore).
    pub fn close_keeping_lock(&self) -> (Result<()>, Option<V::Lock>) {
        // Memtables to tables first, so the next open replays (almost) no WAL and takes
        // milliseconds. A crash anywhere in it is a crash during an ordinary flush: the
        // rotation syncs the WAL before anything else happens, and the table counts only
        // once its manifest edit is synced. A failure poisons the engine as any failed flush
        // does; every commit was made durable by that first sync, so nothing is lost.
        let flushed = self.flush_for_close();
        let mut st = self.commit.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return (Ok(()), None);
        }
        let mut result = Ok(());
        let mut closed_at = None;
        // The head value log file is sealed at its synced length, so the next open need not
        // scan it.
        let mut sealed = None;
        if let Some(mut head) = st.vlog_head.take()
            && !self.is_poisoned()
        {
            result = head.sync();
            if result.is_ok() {
                sealed = Some(crate::manifest::VlogEdit::Seal { id: head.id(), len: head.len() });
            }
        }
        if let Some(mut wal) = st.wal.take()
            && !self.is_poisoned()
            && result.is_ok()
        {
            result = wal.sync();
            if result.is_ok() {
                closed_at = Some((wal.segment(), wal.len()));
            }
        }
        // Not written since a clean reopen: the last segment is as durable as it was then.
        if let Some(last) = st.wal_pending.take()
            && !self.is_poisoned()
            && result.is_ok()
        {
            closed_at = Some(last);
        }
        drop(st);
        // Compaction inputs no reader holds any more: delete them now rather than leave them
        // for the next open.
        self.delete_obsolete_files();
        // Wait for a background job that is installing its result; record the clean close so
        // recovery reads the last segment to its exact synced length; drop the manifest.
        let mut lsm = self.lsm.lock();
        // A kept manifest whose clean-close mark still names the log's end needs nothing.
        let unchanged = lsm
            .manifest_deferred
            .is_some_and(|d| sealed.is_none() && closed_at == Some(d.wal_closed));
        if let (Some(mark), false, Ok(())) = (closed_at, unchanged, &result) {
            let edit = crate::manifest::VersionEdit {
                wal_closed: Some(mark),
                vlog: sealed.into_iter().collect(),
                ..Default::default()
            };
            result = self.live_manifest(&mut lsm).and_then(|manifest| manifest.append(&edit));
        }
        drop(lsm.manifest.take());
        lsm.manifest_deferred = None;
        drop(lsm);
        let lock = self.lock.lock().take();
        (flushed.and(result), lock)
    }

    /// Whether [`Engine::close`] flushes the memtables (the default). A host that opens a
    /// database through a throw-away layer (a read-only open) turns it off: nothing it wrote
    /// survives the close anyway.
    pub fn set_flush_on_close(&self, flush: bool) {
        self.flush_on_close.store(flush, Ordering::Release);
    }

    /// The flush [`Engine::close`] starts with: every memtable, if they hold at least
    /// [`CLOSE_FLUSH_MIN_BYTES`] and the engine is open and healthy.
    fn flush_for_close(&self) -> Result<()> {
        if !self.flush_on_close.load(Ordering::Acquire) || self.is_closed() || self.is_poisoned() {
            return Ok(());
        }
        let view = self.current_view();
        let held: usize = view.memtables.iter().map(|m| m.approximate_bytes()).sum();
        drop(view);
        if held < CLOSE_FLUSH_MIN_BYTES {
            return Ok(());
        }
        match self.flush_all() {
            Ok(_) => Ok(()),
            // Closed meanwhile by another thread: that close did the work.
            Err(Error::Closed) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl<V: EngineFs> Drop for Engine<V> {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

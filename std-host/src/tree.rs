//! [`Tree`]: an open database, cheap to clone and share across threads and tasks.

use std::path::Path;
use std::sync::Arc;

use strata_core::{Engine, Error, IoOp, Mode, Result, TxnCore};
use strata_vfs::Vfs as _;

use crate::background::Background;
use crate::clock::SystemClock;
use crate::committer::Committer;
use crate::dyn_fs::DynFs;
use crate::fs::{ReadOnlyFs, StdFs};
use crate::options::Options;
use crate::transaction::Transaction;

/// State shared by every handle and transaction of one open database.
pub(crate) struct TreeInner {
    pub(crate) engine: Arc<Engine<DynFs>>,
    committer: Committer,
    background: Arc<Background>,
}

impl TreeInner {
    /// Commits a transaction on the caller's thread when that needs no waiting: no group in
    /// flight (the commit lock is free), no back-pressure, and, without background threads,
    /// no memtable awaiting flush (the commit thread runs those jobs then). With background
    /// threads a memtable being flushed is no reason to defer: commits during a flush had
    /// taken the two hand-offs. Saves two thread hand-offs, which for a lone committer
    /// cost more than the commit itself. An Immediate commit is taken only when `may_block`
    /// (the caller blocks anyway, so the WAL sync may run on its thread: never on an async
    /// executor's) and nothing is queued for the commit thread. Commits that arrive meanwhile
    /// queue for the commit thread and form the next group, as before. Gives the request back
    /// otherwise.
    pub(crate) fn try_commit_inline(
        &self,
        request: strata_core::CommitRequest,
        may_block: bool,
    ) -> std::result::Result<Result<strata_core::SeqNo>, strata_core::CommitRequest> {
        let engine = &self.engine;
        // An Immediate commit waits for a sync: alone, it saves the hand-offs; with others
        // queued, it would take the lock between their groups and cost a sync of its own.
        let sync_alone = may_block && self.committer.idle();
        if (request.sync && !sync_alone)
            || engine.should_stall()
            || (self.background.runs_inline() && engine.immutable_memtables() > 0)
        {
            return Err(request);
        }
        let result = engine.try_commit(request)?;
        if engine.immutable_memtables() > 0 {
            // This commit filled the memtable: wake the flush thread.
            self.background.nudge();
        }
        Ok(result)
    }

    pub(crate) fn submit(
        &self,
        request: strata_core::CommitRequest,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<strata_core::SeqNo>>> {
        self.committer.submit(request)
    }

    /// Drains queued commits, stops the commit thread, syncs and closes the engine, and
    /// releases the directory lock. Idempotent.
    fn shutdown(&self) -> Result<()> {
        let (result, lock) = self.shutdown_keeping_lock();
        drop(lock);
        result
    }

    /// [`shutdown`](Self::shutdown), handing the directory lock to the caller (a restore
    /// reopens under it, so no other process can open the directory in between).
    fn shutdown_keeping_lock(&self) -> (Result<()>, Option<<DynFs as strata_vfs::Vfs>::Lock>) {
        self.committer.shutdown();
        self.background.shutdown();
        self.engine.close_keeping_lock()
    }
}

/// Closes the database when the last [`Tree`] clone goes away. The open engine can be
/// replaced in place (restore from a checkpoint); transactions keep the one they began on.
struct Handle {
    slot: std::sync::RwLock<Arc<TreeInner>>,
    opts: Options,
    /// Opened with [`TreeBuilder::build_read_only`](crate::TreeBuilder::build_read_only).
    read_only: bool,
}

/// The error every write-side call of a read-only [`Tree`] returns.
const READ_ONLY: Error = Error::invalid("database", "is open read-only");

impl Handle {
    fn current(&self) -> Arc<TreeInner> {
        Arc::clone(&self.slot.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.current().shutdown();
    }
}

/// An open database.
///
/// `Tree` is a handle: clones share one database, and it is `Send + Sync`. The database
/// closes when [`close`](Tree::close) is called or the last clone is dropped: queued commits
/// are finished, the value log head and the WAL are synced, the commit and background threads
/// are joined and the directory lock is released, so the directory can be opened again at once. Transactions still open then get
/// [`Error::Closed`].
#[derive(Clone)]
pub struct Tree {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("engine", &self.inner().engine).finish()
    }
}

impl Tree {
    pub(crate) fn open(opts: Options) -> Result<Tree> {
        let inner = Self::open_inner(&opts)?;
        let slot = std::sync::RwLock::new(inner);
        Ok(Tree { handle: Arc::new(Handle { slot, opts, read_only: false }) })
    }

    /// Opens the existing database in `opts`' directory for reading only (see
    /// [`TreeBuilder::build_read_only`](crate::TreeBuilder::build_read_only)).
    pub(crate) fn open_read_only(opts: Options) -> Result<Tree> {
        opts.validate()?;
        let path = match (&opts.vfs, &opts.path) {
            (None, Some(path)) => path.clone(),
            _ => return Err(Error::invalid("path", "a read-only open needs a directory path")),
        };
        let shown = path.display().to_string();
        let fs = ReadOnlyFs::open(&path).map_err(|e| Error::io(IoOp::Open, &shown, e))?;
        let has_db = fs
            .disk()
            .exists(strata_core::filenames::CURRENT)
            .map_err(|e| Error::io(IoOp::Open, strata_core::filenames::CURRENT, e))?;
        if !has_db {
            let missing = strata_vfs::Error::new(
                strata_vfs::ErrorKind::NotFound,
                "no database in this directory (no CURRENT file)",
            );
            return Err(Error::io(IoOp::Open, &shown, missing));
        }
        // One engine thread less: nothing to flush or compact, as nothing can be written.
        let inner = Self::start_engine(&opts, DynFs::new(fs), None, false)?;
        // A flush at close would only fill the in-memory layer that vanishes with it.
        inner.engine.set_flush_on_close(false);
        let slot = std::sync::RwLock::new(inner);
        Ok(Tree { handle: Arc::new(Handle { slot, opts, read_only: true }) })
    }

    fn open_inner(opts: &Options) -> Result<Arc<TreeInner>> {
        Self::open_inner_locked(opts, None)
    }

    /// Opens the engine, under `lock` when the caller already holds the directory lock.
    fn open_inner_locked(
        opts: &Options,
        lock: Option<<DynFs as strata_vfs::Vfs>::Lock>,
    ) -> Result<Arc<TreeInner>> {
        opts.validate()?;
        let vfs = match (&opts.vfs, &opts.path) {
            (Some(vfs), _) => vfs.clone(),
            (None, Some(path)) => {
                let fs = StdFs::open_dir(path.clone()).map_err(|e| {
                    Error::io(strata_core::IoOp::Create, &path.display().to_string(), e)
                })?;
                DynFs::new(fs)
            }
            (None, None) => return Err(Error::invalid("path", "must be set with with_path")),
        };
        Self::start_engine(opts, vfs, lock, opts.engine.background_threads)
    }

    /// Opens the engine on `vfs` and starts its threads.
    fn start_engine(
        opts: &Options,
        vfs: DynFs,
        lock: Option<<DynFs as strata_vfs::Vfs>::Lock>,
        background_threads: bool,
    ) -> Result<Arc<TreeInner>> {
        let vfs = crate::encryption::wrap(vfs, opts)?;
        let clock = opts.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let engine = Arc::new(match lock {
            Some(lock) => Engine::open_locked(vfs, lock, opts.engine_options(), clock)?,
            None => Engine::open(vfs, opts.engine_options(), clock)?,
        });
        let background = Arc::new(if background_threads {
            Background::start(Arc::clone(&engine), opts.engine.compaction_threads)?
        } else {
            Background::inline(Arc::clone(&engine))
        });
        let committer = Committer::start(Arc::clone(&engine), Arc::clone(&background))?;
        Ok(Arc::new(TreeInner { engine, committer, background }))
    }

    fn inner(&self) -> Arc<TreeInner> {
        self.handle.current()
    }

    /// Begins a read-write transaction at the newest committed state, at the isolation level
    /// the tree was built with ([`TreeBuilder::with_isolation`](crate::TreeBuilder::with_isolation)).
    pub fn begin(&self) -> Result<Transaction> {
        self.begin_with_mode(Mode::ReadWrite)
    }

    /// Begins a transaction in `mode`.
    pub fn begin_with_mode(&self, mode: Mode) -> Result<Transaction> {
        if mode != Mode::ReadOnly {
            self.check_writable()?;
        }
        let inner = self.inner();
        let core = TxnCore::begin_with(&inner.engine, mode, self.handle.opts.isolation)?;
        Ok(Transaction::new(inner, core))
    }

    /// `true` if the tree was opened with
    /// [`TreeBuilder::build_read_only`](crate::TreeBuilder::build_read_only).
    pub fn is_read_only(&self) -> bool {
        self.handle.read_only
    }

    /// Refuses write-side calls on a read-only tree.
    fn check_writable(&self) -> Result<()> {
        if self.handle.read_only { Err(READ_ONLY) } else { Ok(()) }
    }

    /// Flushes every memtable to a table now and returns once they are installed: after it,
    /// the WAL holds nothing a reopen must replay. The background threads flush full memtables
    /// on their own; this is for callers that want the data in tables now (before a
    /// compaction, for instance).
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        self.inner().engine.flush_all().map(|_| ())
    }

    /// Closes the database now (see the type's docs). Every clone sees it closed. Returns an
    /// error if a final sync (value log head, WAL) or the closing manifest record failed.
    pub fn close(&self) -> Result<()> {
        self.inner().shutdown()
    }

    /// `true` once a write or sync failed (the WAL, the value log, a flush, a compaction or a
    /// manifest edit): writes are refused with [`Error::Poisoned`] until the database is
    /// reopened; reads keep working.
    pub fn is_poisoned(&self) -> bool {
        self.inner().engine.is_poisoned()
    }

    /// Engine statistics: commits and WAL traffic, the shape of the LSM tree, bytes written
    /// by flushes and compactions (write amplification), block cache hits and misses, and time
    /// writers spent stalled.
    pub fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        let inner = self.inner();
        let engine = &inner.engine;
        let s = engine.stats();
        let (block_cache_hits, block_cache_misses) = engine.block_cache_counters();
        Stats {
            commits: s.commits.load(Relaxed),
            commit_groups: s.commit_groups.load(Relaxed),
            wal_syncs: s.wal_syncs.load(Relaxed),
            wal_bytes: s.wal_bytes.load(Relaxed),
            conflicts: s.conflicts.load(Relaxed),
            user_bytes: s.user_bytes.load(Relaxed),
            flushes: s.flushes.load(Relaxed),
            flush_bytes: s.flush_bytes.load(Relaxed),
            compactions: s.compactions.load(Relaxed),
            compaction_read_bytes: s.compaction_read_bytes.load(Relaxed),
            compaction_write_bytes: s.compaction_write_bytes.load(Relaxed),
            block_cache_hits,
            block_cache_misses,
            stall_ns: s.stall_ns.load(Relaxed),
            immutable_memtables: engine.immutable_memtables(),
            vlog_bytes: s.vlog_bytes.load(Relaxed),
            vlog_files: engine.vlog_files().len(),
            vlog_dead_bytes: engine.vlog_files().iter().map(|(_, m)| m.discarded).sum(),
            vlog_disk_bytes: engine.vlog_disk_bytes(),
            vlog_gc_files: s.gc_files.load(Relaxed),
            vlog_gc_relocated_bytes: s.gc_relocated_bytes.load(Relaxed),
            vlog_deleted_files: s.gc_deleted_files.load(Relaxed),
            vlog_deleted_bytes: s.gc_deleted_bytes.load(Relaxed),
            vlog_gc_read_bytes: s.gc_read_bytes.load(Relaxed),
            vlog_gc_write_bytes: s.gc_write_bytes.load(Relaxed),
            vlog_gc_sampled_records: s.gc_sampled_records.load(Relaxed),
            levels: engine
                .levels()
                .into_iter()
                .map(|l| LevelStats { files: l.files, bytes: l.bytes })
                .collect(),
        }
    }

    /// Runs flushes and compactions on the calling thread until none is left (or `budget`
    /// jobs ran), then collects value log files whose discard statistics pass
    /// `vlog_gc_discard_ratio`, returning how many jobs ran. The background threads do this
    /// on their own; this is for trees built with `with_background_threads(false)`, tests, and
    /// callers that want the tree compact now.
    pub fn maintenance_step(&self, budget: usize) -> Result<usize> {
        self.check_writable()?;
        self.inner().engine.maintenance_step(budget)
    }

    /// Runs value log garbage collection now and returns what it did. Every sealed value log
    /// file is measured exactly (each record is looked up in the tree), and each whose dead
    /// fraction reaches `vlog_gc_discard_ratio` has its live values rewritten at the head of
    /// the log through the normal write path; the file is then deleted, at once or as soon as
    /// no snapshot, iterator or transaction that began before the run is left. Checkpoints
    /// hold their own links or copies. The background threads also collect files on their own
    /// (there is no need to call this): those whose discard statistics pass the threshold,
    /// and, when the statistics know too little (an idle tree), those that sampling their
    /// records against the tree finds dead enough. Without background threads, only this call
    /// and `maintenance_step` (by discard statistics) collect. A database opened with the value log
    /// turned off still collects the files it has (live values then move back into the tree).
    pub fn run_vlog_gc(&self) -> Result<VlogGcReport> {
        self.check_writable()?;
        self.inner().engine.collect_garbage()
    }
}

/// What a value log garbage collection run did (see [`Tree::run_vlog_gc`]).
pub type VlogGcReport = strata_core::engine::GcReport;

impl Tree {
    /// Writes a consistent checkpoint of the database into `dir` (created if absent; it must
    /// be empty) while transactions keep committing. Memtables are flushed first, so the
    /// checkpoint is the table and value log files (hard-linked when `dir` is on the same
    /// filesystem, copied otherwise), a manifest, and a `CHECKPOINT` metadata file written last: a checkpoint
    /// interrupted by a crash has none and is refused by
    /// [`restore_from_checkpoint`](Tree::restore_from_checkpoint). The directory also opens
    /// as an ordinary database with the same builder.
    pub fn create_checkpoint<P: AsRef<Path>>(&self, dir: P) -> Result<CheckpointMetadata> {
        let dir = dir.as_ref();
        let dest = StdFs::open_dir(dir)
            .map_err(|e| Error::io(IoOp::Create, &dir.display().to_string(), e))?;
        // An encrypted database's checkpoint is encrypted under the same key (hard-linked
        // tables already are: each carries its own nonce).
        let dest = crate::encryption::wrap(DynFs::new(dest), &self.handle.opts)?;
        let source_dir = self.source_dir();
        let link = |name: &str| match &source_dir {
            Some(src) => std::fs::hard_link(src.join(name), dir.join(name)).is_ok(),
            None => false,
        };
        self.inner().engine.create_checkpoint(&dest, &link)
    }

    /// [`create_checkpoint`](Tree::create_checkpoint) into any filesystem (files are copied).
    /// `dest` is used as given, even for an encrypted database: pass an
    /// [`EncryptedFs`](crate::vfs::EncryptedFs) to keep the copy encrypted (under the same
    /// key, or a new one: that is how a database moves to a new key).
    pub fn create_checkpoint_in<V: strata_vfs::Vfs>(&self, dest: V) -> Result<CheckpointMetadata> {
        self.inner().engine.create_checkpoint(&dest, &|_| false)
    }

    /// Replaces the database's contents with the checkpoint in `dir`: every write after the
    /// checkpoint, including the active memtable, is discarded. The checkpoint is validated
    /// first (metadata, manifest, every table and its size); a missing directory, a directory
    /// that holds no complete checkpoint, or damaged files give an error and leave the
    /// database untouched. The switch is one atomic rename, so a crash at any step reopens
    /// either the old state or the checkpoint's. Transactions begun before the restore fail
    /// with [`Error::Closed`] at their next call; the `Tree` (and its clones) keep working.
    pub fn restore_from_checkpoint<P: AsRef<Path>>(&self, dir: P) -> Result<()> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::invalid("checkpoint directory", "does not exist"));
        }
        let src = StdFs::open_dir(dir)
            .map_err(|e| Error::io(IoOp::Open, &dir.display().to_string(), e))?;
        let src = crate::encryption::wrap(DynFs::new(src), &self.handle.opts)?;
        let live_dir = self.source_dir();
        let link = |from: &str, to: &str| match &live_dir {
            Some(live) => std::fs::hard_link(dir.join(from), live.join(to)).is_ok(),
            None => false,
        };
        self.restore_with(&src, &link)
    }

    /// [`restore_from_checkpoint`](Tree::restore_from_checkpoint) from any filesystem (files
    /// are copied). `src` is read as given: for an encrypted checkpoint, pass an
    /// [`EncryptedFs`](crate::vfs::EncryptedFs) over it.
    pub fn restore_from_checkpoint_in<V: strata_vfs::Vfs>(&self, src: V) -> Result<()> {
        self.restore_with(&src, &|_, _| false)
    }

    fn restore_with<S: strata_vfs::Vfs>(
        &self,
        src: &S,
        link: &dyn Fn(&str, &str) -> bool,
    ) -> Result<()> {
        self.check_writable()?;
        let level_count = self.handle.opts.engine.level_count;
        // Validate before touching anything.
        let (_, recovered) = strata_core::checkpoint::validate(src, level_count)?;
        let mut slot = self.handle.slot.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.engine.is_closed() {
            return Err(Error::Closed);
        }
        // The directory lock stays held from the old engine's close to the new one's open.
        let (closed, lock) = slot.shutdown_keeping_lock();
        closed?;
        let live = slot.engine.vfs().clone();
        let installed = strata_core::checkpoint::install(&live, src, &recovered, level_count, link);
        // Reopen whatever is current now: the checkpoint, or (if installing failed before the
        // switch) the old state.
        *slot = Self::open_inner_locked(&self.handle.opts, lock)?;
        installed
    }

    /// The database directory when it is a real directory (for hard links).
    fn source_dir(&self) -> Option<std::path::PathBuf> {
        // A read-only tree's newest files (a flush for a checkpoint) exist only in memory.
        if self.handle.read_only {
            return None;
        }
        match (&self.handle.opts.vfs, &self.handle.opts.path) {
            (None, Some(p)) => Some(p.clone()),
            _ => None,
        }
    }
}

/// What a checkpoint holds: when it was taken, the sequence number it is consistent at, its
/// table count and bytes.
pub type CheckpointMetadata = strata_core::checkpoint::CheckpointMeta;

/// Files and bytes of one LSM level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LevelStats {
    /// Table files.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Transactions committed since open.
    pub commits: u64,
    /// Groups they were committed in (one WAL write each).
    pub commit_groups: u64,
    /// WAL syncs.
    pub wal_syncs: u64,
    /// Bytes written to the WAL.
    pub wal_bytes: u64,
    /// Commits refused with a write-write conflict.
    pub conflicts: u64,
    /// Bytes of committed batches (keys, values and their framing, before large values move
    /// to the value log; garbage collection's relocations count too).
    pub user_bytes: u64,
    /// Memtables flushed.
    pub flushes: u64,
    /// Table bytes written by flushes.
    pub flush_bytes: u64,
    /// Compactions run.
    pub compactions: u64,
    /// Table bytes read by compactions.
    pub compaction_read_bytes: u64,
    /// Table bytes written by compactions.
    pub compaction_write_bytes: u64,
    /// Block cache hits.
    pub block_cache_hits: u64,
    /// Block cache misses.
    pub block_cache_misses: u64,
    /// Nanoseconds writers waited for background work.
    pub stall_ns: u64,
    /// Memtables waiting to be flushed.
    pub immutable_memtables: usize,
    /// Bytes of records appended to the value log (by commits and garbage collection).
    pub vlog_bytes: u64,
    /// Value log files.
    pub vlog_files: usize,
    /// Their bytes on disk.
    pub vlog_disk_bytes: u64,
    /// Bytes of their records known dead from discard statistics (versions compaction
    /// dropped). Background garbage collection goes by the larger of this and what its
    /// sampling found dead, which lives in memory and is not counted here.
    pub vlog_dead_bytes: u64,
    /// Files garbage collection rewrote.
    pub vlog_gc_files: u64,
    /// Bytes of live values garbage collection copied.
    pub vlog_gc_relocated_bytes: u64,
    /// Value log files deleted.
    pub vlog_deleted_files: u64,
    /// Bytes of value log files deleted.
    pub vlog_deleted_bytes: u64,
    /// Bytes of value log files garbage collection read (collection walks, exact
    /// measurements by `run_vlog_gc`, and the record prefixes and keys background sampling
    /// reads).
    pub vlog_gc_read_bytes: u64,
    /// Bytes garbage collection's relocations wrote to the value log and the WAL.
    pub vlog_gc_write_bytes: u64,
    /// Value log records background sampling looked up in the tree.
    pub vlog_gc_sampled_records: u64,
    /// Per level, L0 first.
    pub levels: Vec<LevelStats>,
}

impl Stats {
    /// Bytes written to storage (WAL, value log, flushes, compactions) per byte of user data
    /// committed.
    pub fn write_amplification(&self) -> f64 {
        if self.user_bytes == 0 {
            return 0.0;
        }
        (self.wal_bytes + self.vlog_bytes + self.flush_bytes + self.compaction_write_bytes) as f64
            / self.user_bytes as f64
    }
}

impl Drop for TreeInner {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

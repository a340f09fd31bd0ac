//! [`Tree`]: an open database, cheap to clone and share across threads and tasks.

use std::sync::Arc;

use strata_core::{Engine, Error, Mode, Result, TxnCore};

use crate::clock::SystemClock;
use crate::committer::Committer;
use crate::dyn_fs::DynFs;
use crate::fs::StdFs;
use crate::options::Options;
use crate::transaction::Transaction;

/// State shared by every handle and transaction of one open database.
pub(crate) struct TreeInner {
    pub(crate) engine: Arc<Engine<DynFs>>,
    committer: Committer,
}

impl TreeInner {
    pub(crate) fn submit(
        &self,
        request: strata_core::CommitRequest,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<strata_core::SeqNo>>> {
        self.committer.submit(request)
    }

    /// Drains queued commits, stops the commit thread, syncs and closes the engine, and
    /// releases the directory lock. Idempotent.
    fn shutdown(&self) -> Result<()> {
        self.committer.shutdown();
        self.engine.close()
    }
}

/// Closes the database when the last [`Tree`] clone goes away.
struct Handle {
    inner: Arc<TreeInner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let _ = self.inner.shutdown();
    }
}

/// An open database.
///
/// `Tree` is a handle: clones share one database, and it is `Send + Sync`. The database
/// closes when [`close`](Tree::close) is called or the last clone is dropped: queued commits
/// are finished, the WAL is synced, the commit thread is joined and the directory lock is
/// released, so the directory can be opened again at once. Transactions still open then get
/// [`Error::Closed`].
#[derive(Clone)]
pub struct Tree {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("engine", &self.handle.inner.engine).finish()
    }
}

impl Tree {
    pub(crate) fn open(opts: Options) -> Result<Tree> {
        opts.validate()?;
        let vfs = match (&opts.vfs, &opts.path) {
            (Some(vfs), _) => vfs.clone(),
            (None, Some(path)) => {
                let fs = StdFs::open_dir(path.clone())
                    .map_err(|e| Error::io(strata_core::IoOp::Create, &path.display().to_string(), e))?;
                DynFs::new(fs)
            }
            (None, None) => return Err(Error::invalid("path", "must be set with with_path")),
        };
        let clock = opts.clock.clone().unwrap_or_else(|| Arc::new(SystemClock));
        let engine = Arc::new(Engine::open(vfs, opts.engine_options(), clock)?);
        let committer = Committer::start(Arc::clone(&engine))?;
        let inner = Arc::new(TreeInner { engine, committer });
        Ok(Tree { handle: Arc::new(Handle { inner }) })
    }

    /// Begins a read-write transaction at the newest committed state.
    pub fn begin(&self) -> Result<Transaction> {
        self.begin_with_mode(Mode::ReadWrite)
    }

    /// Begins a transaction in `mode`.
    pub fn begin_with_mode(&self, mode: Mode) -> Result<Transaction> {
        let inner = &self.handle.inner;
        let core = TxnCore::begin(&inner.engine, mode)?;
        Ok(Transaction::new(Arc::clone(inner), core))
    }

    /// Closes the database now (see the type's docs). Every clone sees it closed. Returns an
    /// error if the final WAL sync failed.
    pub fn close(&self) -> Result<()> {
        self.handle.inner.shutdown()
    }

    /// `true` once a WAL write or sync failed: writes are refused until the database is
    /// reopened; reads keep working.
    pub fn is_poisoned(&self) -> bool {
        self.handle.inner.engine.is_poisoned()
    }

    /// Engine counters: commits, commit groups, WAL syncs and bytes, conflicts.
    pub fn stats(&self) -> Stats {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.handle.inner.engine.stats();
        Stats {
            commits: s.commits.load(Relaxed),
            commit_groups: s.commit_groups.load(Relaxed),
            wal_syncs: s.wal_syncs.load(Relaxed),
            wal_bytes: s.wal_bytes.load(Relaxed),
            conflicts: s.conflicts.load(Relaxed),
        }
    }
}

/// A snapshot of the engine's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
}

impl Drop for TreeInner {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

//! The engine: one open database over a [`Vfs`].
//!
//! It owns the WAL writer and the commit state (behind one mutex: commits are serialised, but a
//! whole group of them shares one WAL write and at most one sync), the memtables readers walk
//! without locks, and the snapshot registry.
//!
//! Write path ([`Engine::commit_group`]): conflict check → sequence number and timestamp → WAL
//! append (one flush, one sync if any member asked for it) → memtable insert → publish the new
//! visible sequence number → answer. A reader's snapshot is the published number, so it sees
//! whole transactions only.
//!
//! Read path: a snapshot of the [`ReadView`] (the memtables, and later the table levels),
//! merged and filtered by visibility (`crate::iter`).

mod commit;
mod read;
mod recovery;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use strata_vfs::sync::AtomicU64;

use strata_vfs::Vfs;
use strata_vfs::sync::{Mutex, RwLock};

use crate::clock::Clock;
use crate::memtable::Memtable;
use crate::mvcc::{ConflictOracle, Snapshots};
use crate::options::EngineOptions;
use crate::wal::WalWriter;
use crate::{Error, Result, SeqNo, Timestamp};

pub use commit::CommitRequest;
pub use read::VersionEntry;

/// What readers walk: the active memtable first, then older ones, newest to oldest.
#[derive(Debug)]
pub struct ReadView {
    /// Memtables, newest first. The first one is the one being written.
    pub memtables: Vec<Arc<Memtable>>,
}

/// Counters for observing the engine.
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
}

/// State only the committer touches.
struct CommitState<W: strata_vfs::AppendWrite> {
    wal: Option<WalWriter<W>>,
    next_file: u64,
    last_seq: SeqNo,
    last_ts: Timestamp,
    oracle: ConflictOracle,
}

/// An open database.
pub struct Engine<V: Vfs> {
    vfs: V,
    lock: Mutex<Option<V::Lock>>,
    opts: EngineOptions,
    clock: Arc<dyn Clock>,
    snapshots: Arc<Snapshots>,
    view: RwLock<Arc<ReadView>>,
    commit: Mutex<CommitState<V::Write>>,
    poisoned: AtomicBool,
    closed: AtomicBool,
    stats: EngineStats,
}

impl<V: Vfs> core::fmt::Debug for Engine<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("visible_seq", &self.snapshots.visible())
            .field("poisoned", &self.is_poisoned())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl<V: Vfs> Engine<V> {
    /// The options the engine was opened with.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// The filesystem.
    pub fn vfs(&self) -> &V {
        &self.vfs
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
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

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    fn current_view(&self) -> Arc<ReadView> {
        Arc::clone(&self.view.read())
    }

    /// Shuts down: makes every committed write durable (one final WAL sync), closes the WAL
    /// and releases the directory lock. Later calls return [`Error::Closed`]. Idempotent.
    pub fn close(&self) -> Result<()> {
        let mut st = self.commit.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let mut result = Ok(());
        if let Some(mut wal) = st.wal.take()
            && !self.is_poisoned()
        {
            result = wal.sync();
        }
        drop(st);
        drop(self.lock.lock().take());
        result
    }
}

impl<V: Vfs> Drop for Engine<V> {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

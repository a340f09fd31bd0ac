//! Parity's [`kvdb::KeyValueDB`] over a [`strata::Tree`].
//!
//! The data's path:
//! - every kvdb key lives in the tree under `"kvdb\0" ++ column (u32, big-endian) ++ key`
//!   ([`keys`]), so a column is a contiguous key range and a prefix within a column is a
//!   contiguous range too: iteration and `DeletePrefix` are Strata range scans;
//! - [`KeyValueDB::write`] runs the whole [`DBTransaction`] as one Strata transaction, applying
//!   its operations in order. A batch of inserts and deletes reads nothing, so it runs as a
//!   write-only transaction, which never conflicts: of two batches writing one key, the one
//!   committed last wins, as with RocksDB's write batches. A batch with a `DeletePrefix` reads
//!   the keys it deletes (seeing the batch's own earlier inserts), so it runs serializable and
//!   is run again when another commit changed that prefix or a key it writes after its
//!   snapshot: what it deletes is what the prefix holds at its commit;
//! - reads (`get`, `iter`, ...) each run in a read-only transaction, so an iterator sees one
//!   consistent snapshot however long it lives;
//! - [`stats`] counts operations RocksDB-style (what kvdb's shared tests expect), for
//!   [`KeyValueDB::io_stats`];
//! - [`error`] turns a Strata error into an [`std::io::Error`] that still carries it.
//!
//! Durability is chosen per transaction: `write` commits with [`Durability::Eventual`] unless
//! [`StrataKvdb::with_durability`] asks for `Immediate`. `write` blocks its thread until the
//! commit is done, so (like any synchronous kvdb) it must not be called from an async
//! runtime's worker thread.

mod error;
mod keys;
mod stats;

use std::io;
use std::time::Duration;

use ::kvdb::{DBKeyValue, DBOp, DBTransaction, DBValue, IoStats, IoStatsKind, KeyValueDB};
use strata::{Durability, Error, Isolation, Mode, Tree};

pub use error::to_io_error;
use keys::Columns;
use stats::Counters;

/// How many times [`KeyValueDB::write`] runs a `DeletePrefix` batch that keeps losing
/// conflicts before it reports the conflict (other batches cannot conflict).
const WRITE_ATTEMPTS: u32 = 64;

/// Waits before running a batch again after its `attempt`-th conflict: a yield at first, then
/// sleeps doubling from 10 us to 1.28 ms, so a writer that keeps losing to busier ones (on a
/// loaded machine) gets a quiet moment to commit in; about 70 ms over all attempts at most.
fn back_off(attempt: u32) {
    match attempt.checked_sub(4) {
        None => std::thread::yield_now(),
        Some(n) => std::thread::sleep(Duration::from_micros(10 << n.min(7))),
    }
}

/// A [`KeyValueDB`] stored in a [`strata::Tree`]. Cheap to share: it is `Send + Sync`, and
/// several may be opened on clones of one tree (they see the same data).
#[derive(Debug)]
pub struct StrataKvdb {
    tree: Tree,
    columns: Columns,
    durability: Durability,
    counters: Counters,
}

impl StrataKvdb {
    /// A database with `columns` columns (numbered `0..columns`) in `tree`. Data written by an
    /// earlier open is there again; an open with fewer columns leaves the others untouched but
    /// unreachable. `columns` must be at least 1.
    pub fn open(tree: Tree, columns: u32) -> io::Result<StrataKvdb> {
        if columns == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a kvdb database needs at least one column",
            ));
        }
        Ok(StrataKvdb {
            tree,
            columns: Columns::new(columns),
            durability: Durability::Eventual,
            counters: Counters::new(),
        })
    }

    /// Makes every [`write`](KeyValueDB::write) wait for `durability` (`Immediate`: until the
    /// write-ahead log is synced).
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> StrataKvdb {
        self.durability = durability;
        self
    }

    /// The number of columns.
    pub fn num_columns(&self) -> u32 {
        self.columns.count()
    }

    /// The tree underneath.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    fn begin_read(&self) -> io::Result<strata::Transaction> {
        self.tree.begin_with_mode(Mode::ReadOnly).map_err(to_io_error)
    }

    /// Applies `ops` in one transaction: write-only unless `reads` (the batch has a
    /// `DeletePrefix`), then serializable read-write. `Ok(Err(conflict))` means another
    /// writer changed what this batch read or wrote, and the batch may simply run again.
    fn try_write(&self, ops: &[DBOp], reads: bool) -> io::Result<Result<(), Error>> {
        let mut txn = if reads {
            let mut txn = self.tree.begin().map_err(to_io_error)?;
            txn.set_isolation(Isolation::Serializable).map_err(to_io_error)?;
            txn
        } else {
            self.tree.begin_with_mode(Mode::WriteOnly).map_err(to_io_error)?
        };
        txn.set_durability(self.durability);
        for op in ops {
            match op {
                DBOp::Insert { col, key, value } => {
                    let key = self.columns.key(*col, key)?;
                    txn.set(&key, value).map_err(to_io_error)?;
                }
                DBOp::Delete { col, key } => {
                    let key = self.columns.key(*col, key)?;
                    txn.delete(&key).map_err(to_io_error)?;
                }
                DBOp::DeletePrefix { col, prefix } => {
                    let (start, end) = self.columns.prefix_range(*col, prefix)?;
                    let doomed: Vec<_> = txn
                        .keys(&start, &end, None)
                        .map_err(to_io_error)?
                        .collect::<strata::Result<_>>()
                        .map_err(to_io_error)?;
                    for key in doomed {
                        txn.delete(&key).map_err(to_io_error)?;
                    }
                }
            }
        }
        match txn.commit_blocking() {
            Ok(()) => Ok(Ok(())),
            Err(conflict @ Error::TransactionConflict) => Ok(Err(conflict)),
            Err(e) => Err(to_io_error(e)),
        }
    }

    /// Pairs of column `col` in `[start, end)`, counted as reads, with the column prefix
    /// stripped from the keys.
    fn scan<'a>(
        &'a self,
        col: u32,
        start: Vec<u8>,
        end: Vec<u8>,
    ) -> Box<dyn Iterator<Item = io::Result<DBKeyValue>> + 'a> {
        let iter =
            self.begin_read().and_then(|txn| txn.range(&start, &end, None).map_err(to_io_error));
        match iter {
            Err(e) => Box::new(std::iter::once(Err(e))),
            Ok(iter) => Box::new(iter.map(move |item| {
                let (key, value) = item.map_err(to_io_error)?;
                let user_key = self.columns.user_key(col, &key)?;
                self.counters.read(user_key.len(), Some(value.len()));
                Ok((user_key.into(), value.to_vec()))
            })),
        }
    }
}

impl KeyValueDB for StrataKvdb {
    fn get(&self, col: u32, key: &[u8]) -> io::Result<Option<DBValue>> {
        let tree_key = self.columns.key(col, key)?;
        let value = self.begin_read()?.get(&tree_key).map_err(to_io_error)?;
        self.counters.read(key.len(), value.as_ref().map(|v| v.len()));
        Ok(value.map(|v| v.to_vec()))
    }

    fn get_by_prefix(&self, col: u32, prefix: &[u8]) -> io::Result<Option<DBValue>> {
        self.iter_with_prefix(col, prefix).next().transpose().map(|kv| kv.map(|(_, v)| v))
    }

    fn write(&self, transaction: DBTransaction) -> io::Result<()> {
        // Check every column first: a bad batch fails before anything is tried.
        for op in &transaction.ops {
            self.columns.check(op.col())?;
        }
        let reads = transaction.ops.iter().any(|op| matches!(op, DBOp::DeletePrefix { .. }));
        let mut last_conflict = None;
        for attempt in 0..WRITE_ATTEMPTS {
            match self.try_write(&transaction.ops, reads)? {
                Ok(()) => {
                    self.counters.wrote(&transaction.ops);
                    return Ok(());
                }
                Err(conflict) => {
                    last_conflict = Some(conflict);
                    if attempt + 1 < WRITE_ATTEMPTS {
                        back_off(attempt);
                    }
                }
            }
        }
        Err(to_io_error(last_conflict.unwrap_or(Error::TransactionConflict)))
    }

    fn iter<'a>(&'a self, col: u32) -> Box<dyn Iterator<Item = io::Result<DBKeyValue>> + 'a> {
        self.iter_with_prefix(col, &[])
    }

    fn iter_with_prefix<'a>(
        &'a self,
        col: u32,
        prefix: &'a [u8],
    ) -> Box<dyn Iterator<Item = io::Result<DBKeyValue>> + 'a> {
        match self.columns.prefix_range(col, prefix) {
            Ok((start, end)) => self.scan(col, start, end),
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }

    fn io_stats(&self, kind: IoStatsKind) -> IoStats {
        self.counters.take(kind)
    }
}

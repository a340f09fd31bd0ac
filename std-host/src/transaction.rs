//! [`Transaction`]: snapshot-isolated reads and buffered writes, committed atomically.

use std::ops::Bound;
use std::sync::Arc;

use strata_core::iter::{KeyRange, RangeIter};
use strata_core::{Bytes, Durability, Error, Isolation, Mode, Result, TxnCore};

use crate::read_options::ReadOptions;
use crate::tree::TreeInner;

/// A key as returned by reads.
pub type Key = Bytes;
/// A value as returned by reads.
pub type Value = Bytes;

/// A transaction.
///
/// Reads see the database as it was when the transaction began, plus its own writes. Writes
/// are buffered and applied atomically by [`commit`](Transaction::commit); if another
/// transaction committed a write to one of the same keys after this one began, the commit
/// fails with [`Error::TransactionConflict`] and writes nothing. Under
/// [`Isolation::Serializable`] a transaction that writes also fails that way if a key or
/// range it read was written by a transaction that committed after it began. Dropping a
/// transaction without committing rolls it back.
///
/// Once committed or rolled back, every further call fails with
/// [`Error::TransactionClosed`].
///
/// `Transaction` is `Send`: it can move between threads and tasks.
pub struct Transaction {
    inner: Arc<TreeInner>,
    core: TxnCore,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("mode", &self.core.mode())
            .field("read_seq", &self.core.read_seq())
            .field("pending_writes", &self.core.pending_writes())
            .finish()
    }
}

fn key_range(start: &[u8], end: &[u8]) -> KeyRange {
    KeyRange {
        lower: Bound::Included(Bytes::copy_from_slice(start)),
        upper: Bound::Excluded(Bytes::copy_from_slice(end)),
    }
}

impl Transaction {
    pub(crate) fn new(inner: Arc<TreeInner>, core: TxnCore) -> Self {
        Transaction { inner, core }
    }

    /// The transaction's mode.
    pub fn mode(&self) -> Mode {
        self.core.mode()
    }

    /// The sequence number of the newest commit this transaction sees (its snapshot). Two
    /// transactions that both commit a write to one key never share it: the second would fail
    /// with [`Error::TransactionConflict`]. So a value written by a transaction can be tagged
    /// with it (the object store adapter derives its e-tags from it), and the tags of one key
    /// grow with every write.
    pub fn snapshot_seq(&self) -> u64 {
        self.core.read_seq()
    }

    /// The transaction's isolation level.
    pub fn isolation(&self) -> Isolation {
        self.core.isolation()
    }

    /// Sets this transaction's isolation level, overriding the tree's default
    /// ([`TreeBuilder::with_isolation`](crate::TreeBuilder::with_isolation)). Only before the
    /// first read or write: afterwards it fails with [`Error::InvalidArgument`] and the level
    /// stays as it was. The transaction takes a fresh snapshot at the new level.
    ///
    /// Under [`Isolation::Serializable`], a read-write transaction records every key it reads
    /// (found or absent) and every range it scans (a scan that a limit stopped counts up to
    /// the last key it returned), including reads at an explicit timestamp; its commit fails
    /// with [`Error::TransactionConflict`] if a transaction that committed after it began
    /// wrote into any of it. Read-only transactions never fail. See `docs/design.md`.
    pub fn set_isolation(&mut self, isolation: Isolation) -> Result<()> {
        self.core.set_isolation(&self.inner.engine, isolation)
    }

    /// Chooses when [`commit`](Transaction::commit) returns: [`Durability::Eventual`] (the
    /// default) once the write is in the operating system, [`Durability::Immediate`] once it
    /// is synced to disk.
    pub fn set_durability(&mut self, durability: Durability) {
        self.core.set_durability(durability);
    }

    /// Writes `value` under `key`. Keys are at most 64 KiB and values at most 256 MiB.
    ///
    /// Fails with [`Error::TransactionTooLarge`] if the write would make the transaction's
    /// encoded batch larger than `max_transaction_size` (512 MiB by default); the write is then
    /// not buffered and the transaction stays usable with its earlier writes.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.core.set(key, value)
    }

    /// Deletes `key`. Counts against `max_transaction_size` like [`set`](Transaction::set).
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.core.delete(key)
    }

    /// The value of `key`, or `None` if it is absent.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        self.core.get(&self.inner.engine, key)
    }

    /// Key-value pairs with `start <= key < end`, in key order, at most `limit` of them. The
    /// iterator is double-ended; a `start` not before `end` yields nothing.
    ///
    /// Besides handing out owned items, the iterator lends them: [`RangeIter::next_ref`] (and
    /// `next_back_ref`) gives each key and value by reference, valid until the next call,
    /// without copying them or counting references, the fastest way to scan.
    ///
    /// ```
    /// # fn main() -> strata::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let tree = strata::TreeBuilder::new().with_path(dir.path().to_path_buf()).build()?;
    /// let mut txn = tree.begin()?;
    /// for (k, v) in [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")] {
    ///     txn.set(k, v)?;
    /// }
    /// txn.commit_blocking()?;
    ///
    /// let txn = tree.begin()?;
    /// let mut total = 0;
    /// let mut it = txn.range(b"a", b"c", None)?;
    /// while let Some(entry) = it.next_ref() {
    ///     let (key, value) = entry?;
    ///     total += key.len() + value.len();
    /// }
    /// assert_eq!(total, 4);
    /// # Ok(()) }
    /// ```
    pub fn range(&self, start: &[u8], end: &[u8], limit: Option<usize>) -> Result<RangeIter> {
        self.core.range(&self.inner.engine, key_range(start, end), None, limit, false)
    }

    /// Keys with `start <= key < end`, like [`range`](Transaction::range) without values.
    /// Never reads the value log.
    pub fn keys(&self, start: &[u8], end: &[u8], limit: Option<usize>) -> Result<KeysIter> {
        let iter = self.core.range(&self.inner.engine, key_range(start, end), None, limit, true)?;
        Ok(KeysIter(iter))
    }

    /// Key-value pairs as `options` describe (bounds, limit, timestamp; a keys-only flag is
    /// ignored: use [`keys_with_options`](Transaction::keys_with_options) for keys alone).
    pub fn range_with_options(&self, options: &ReadOptions) -> Result<RangeIter> {
        self.range_options(options, false)
    }

    fn range_options(&self, options: &ReadOptions, keys_only: bool) -> Result<RangeIter> {
        let range = KeyRange {
            lower: options
                .lower
                .as_ref()
                .map_or(Bound::Unbounded, |k| Bound::Included(Bytes::copy_from_slice(k))),
            upper: options
                .upper
                .as_ref()
                .map_or(Bound::Unbounded, |k| Bound::Excluded(Bytes::copy_from_slice(k))),
        };
        self.core.range(&self.inner.engine, range, options.timestamp, options.limit, keys_only)
    }

    /// Keys as `options` describe (bounds, limit, timestamp). Never reads the value log.
    pub fn keys_with_options(&self, options: &ReadOptions) -> Result<KeysIter> {
        Ok(KeysIter(self.range_options(options, true)?))
    }

    /// Writes `value` under `key` as a version with timestamp `ts` (requires versioning).
    /// An older timestamp than the key's newest version adds history and leaves the current
    /// value alone. Counts against `max_transaction_size` like [`set`](Transaction::set).
    pub fn set_at_version(&mut self, key: &[u8], value: &[u8], ts: u64) -> Result<()> {
        self.core.set_at(&self.inner.engine, key, value, ts)
    }

    /// The value `key` had at timestamp `ts` (requires versioning). Reads committed history
    /// only: this transaction's own pending writes are not seen. A `ts` older than the
    /// retention horizon fails with [`Error::TimestampExpired`].
    pub fn get_at_version(&self, key: &[u8], ts: u64) -> Result<Option<Value>> {
        self.core.get_at(&self.inner.engine, key, ts)
    }

    /// Key-value pairs with `start <= key < end` as they were at timestamp `ts` (requires
    /// versioning). Like [`get_at_version`](Transaction::get_at_version), committed history
    /// only.
    pub fn range_at_version(
        &self,
        start: &[u8],
        end: &[u8],
        ts: u64,
        limit: Option<usize>,
    ) -> Result<RangeIter> {
        self.core.range(&self.inner.engine, key_range(start, end), Some(ts), limit, false)
    }

    /// Keys with `start <= key < end` as they were at timestamp `ts`. Never reads the value
    /// log.
    pub fn keys_at_version(
        &self,
        start: &[u8],
        end: &[u8],
        ts: u64,
        limit: Option<usize>,
    ) -> Result<KeysIter> {
        let range = key_range(start, end);
        Ok(KeysIter(self.core.range(&self.inner.engine, range, Some(ts), limit, true)?))
    }

    /// Every retained version of every key with `start <= key < end`, as
    /// `(key, value, timestamp, is_tombstone)`: keys ascending, and for each key the newest
    /// timestamp first. A second write at an existing (key, timestamp) replaces the first, so
    /// only it is listed. At most `limit` versions. Committed history only (requires
    /// versioning): this transaction's pending writes are not listed.
    pub fn scan_all_versions(
        &self,
        start: &[u8],
        end: &[u8],
        limit: Option<usize>,
    ) -> Result<Vec<(Key, Value, u64, bool)>> {
        let versions =
            self.core.scan_versions(&self.inner.engine, &key_range(start, end), limit)?;
        Ok(versions.into_iter().map(|v| (v.key, v.value, v.ts, v.tombstone)).collect())
    }

    /// Commits the buffered writes atomically. Completes under any async executor; see
    /// [`commit_blocking`](Transaction::commit_blocking) for synchronous callers.
    ///
    /// # Dropping the future
    ///
    /// Once the future has been polled, the commit may already be queued. Dropping the future
    /// then (a timeout, an aborted task, the losing arm of a `select!`) only stops waiting for
    /// the answer: the commit is still decided, and may take effect. It is all-or-nothing
    /// either way, and it is still checked against every write committed after this
    /// transaction began, even if the `Transaction` is dropped too (the queued request keeps
    /// the snapshot registered until it is decided). To learn the outcome of an abandoned
    /// commit, read one of its keys in a new transaction.
    pub async fn commit(&mut self) -> Result<()> {
        let request = self.core.finish()?;
        if request.batch.is_empty() {
            return Ok(());
        }
        let request = match self.inner.try_commit_inline(request, false) {
            Ok(result) => return result.map(|_| ()),
            Err(request) => request,
        };
        let reply = self.inner.submit(request)?;
        reply.await.map_err(|_| Error::Closed)?.map(|_| ())
    }

    /// [`commit`](Transaction::commit) for code that is not async. Blocks the calling thread;
    /// must not be called from inside an async runtime's worker thread.
    pub fn commit_blocking(&mut self) -> Result<()> {
        let request = self.core.finish()?;
        if request.batch.is_empty() {
            return Ok(());
        }
        let request = match self.inner.try_commit_inline(request, true) {
            Ok(result) => return result.map(|_| ()),
            Err(request) => request,
        };
        let reply = self.inner.submit(request)?;
        reply.blocking_recv().map_err(|_| Error::Closed)?.map(|_| ())
    }

    /// Discards the buffered writes and ends the transaction.
    pub fn rollback(&mut self) -> Result<()> {
        self.core.rollback()
    }
}

/// Keys of a range, in key order; double-ended.
#[derive(Debug)]
pub struct KeysIter(RangeIter);

impl Iterator for KeysIter {
    type Item = Result<Key>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|r| r.map(|(k, _)| k))
    }
}

impl DoubleEndedIterator for KeysIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|r| r.map(|(k, _)| k))
    }
}

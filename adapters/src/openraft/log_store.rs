//! [`LogStore`]: openraft's Raft log, vote and committed index kept in a [`Tree`].
//!
//! Each call is one Strata transaction:
//! - `append` writes one key per entry (`log/` + big-endian index) and commits with
//!   [`Durability::Immediate`]; only when that commit returns (the WAL is fsynced) does it
//!   report the entries flushed through openraft's [`LogFlushed`] callback;
//! - `truncate` and `purge` each delete a range of log keys in one transaction, `purge`
//!   recording the purged log id in the same one, so a crash leaves the log before or after;
//! - `save_vote` is durable (Immediate) before it returns: a vote must never be forgotten.
//!   `save_committed` is Eventual: openraft only uses it to re-apply sooner after a restart,
//!   and Strata's WAL keeps commits in order, so a later durable commit makes it durable too.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftLogReader, RaftTypeConfig,
    StorageError, Vote,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use strata::{Durability, Mode, Tree};

use super::codec::{decode, encode};
use super::errors::{Error, Result};
use super::keys::KeyLayout;

/// The Raft log of one node, with its vote and committed log id, stored in a [`Tree`] under a
/// [`KeyLayout`]. Cloning is cheap; clones share the tree.
pub struct LogStore<C> {
    tree: Tree,
    layout: KeyLayout,
    _config: PhantomData<fn() -> C>,
}

impl<C> Clone for LogStore<C> {
    fn clone(&self) -> Self {
        LogStore { tree: self.tree.clone(), layout: self.layout.clone(), _config: PhantomData }
    }
}

impl<C> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").field("layout", &self.layout).finish()
    }
}

type NodeIdOf<C> = <C as RaftTypeConfig>::NodeId;

impl<C> LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    /// A log store over `tree` with its keys under `layout`.
    pub fn new(tree: Tree, layout: KeyLayout) -> Self {
        LogStore { tree, layout, _config: PhantomData }
    }

    /// The tree this log lives in.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    fn read_value<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>> {
        let txn = self.tree.begin_with_mode(Mode::ReadOnly)?;
        match txn.get(key)? {
            Some(bytes) => Ok(Some(decode(key, &bytes)?)),
            None => Ok(None),
        }
    }

    async fn write_value<T: Serialize>(
        &self,
        key: &[u8],
        value: &T,
        durability: Durability,
    ) -> Result<()> {
        let mut txn = self.tree.begin_with_mode(Mode::WriteOnly)?;
        txn.set_durability(durability);
        txn.set(key, &encode(value)?)?;
        txn.commit().await?;
        Ok(())
    }

    /// Entries with an index in `[start, end)`, in order.
    fn entries(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry<C>>> {
        let from = self.layout.log_entry(start);
        let to = end.map_or_else(|| self.layout.log_end(), |e| self.layout.log_entry(e));
        let txn = self.tree.begin_with_mode(Mode::ReadOnly)?;
        let mut out = Vec::new();
        for item in txn.range(&from, &to, None)? {
            let (key, value) = item?;
            out.push(decode(&key, &value)?);
        }
        Ok(out)
    }

    /// The id of the entry with the greatest index, if any is stored.
    fn last_entry_id(&self) -> Result<Option<LogId<NodeIdOf<C>>>> {
        let txn = self.tree.begin_with_mode(Mode::ReadOnly)?;
        let mut range = txn.range(&self.layout.log_entry(0), &self.layout.log_end(), None)?;
        match range.next_back() {
            Some(item) => {
                let (key, value) = item?;
                let entry: Entry<C> = decode(&key, &value)?;
                Ok(Some(entry.log_id))
            }
            None => Ok(None),
        }
    }

    /// Deletes every log key in `[from, to)` in one transaction, also writing `extra` (a key
    /// and its encoded value) in it when given.
    async fn delete_log_range(
        &self,
        from: Vec<u8>,
        to: Vec<u8>,
        extra: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<()> {
        let mut txn = self.tree.begin()?;
        let keys: Vec<_> = txn.keys(&from, &to, None)?.collect::<strata::Result<_>>()?;
        for key in keys {
            txn.delete(&key)?;
        }
        if let Some((key, value)) = extra {
            txn.set(&key, &value)?;
        }
        txn.set_durability(Durability::Immediate);
        txn.commit().await?;
        Ok(())
    }
}

/// Turns a range of log indexes into `[start, end)`, `end` `None` for "to the last entry".
fn index_bounds<RB: RangeBounds<u64>>(range: &RB) -> Option<(u64, Option<u64>)> {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.checked_add(1)?,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.checked_add(1),
        Bound::Excluded(&e) => Some(e),
        Bound::Unbounded => None,
    };
    match end {
        Some(e) if e <= start => None,
        _ => Some((start, end)),
    }
}

impl<C> RaftLogReader<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<C>>, StorageError<NodeIdOf<C>>> {
        let Some((start, end)) = index_bounds(&range) else { return Ok(Vec::new()) };
        self.entries(start, end).map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Read))
    }
}

impl<C> RaftLogStorage<C> for LogStore<C>
where
    C: RaftTypeConfig<Entry = Entry<C>>,
{
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<NodeIdOf<C>>> {
        let read = || -> Result<LogState<C>> {
            let last_purged_log_id = self.read_value(&self.layout.purged())?;
            let last_log_id = self.last_entry_id()?.or_else(|| last_purged_log_id.clone());
            Ok(LogState { last_purged_log_id, last_log_id })
        };
        read().map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Read))
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(
        &mut self,
        vote: &Vote<NodeIdOf<C>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        self.write_value(&self.layout.vote(), vote, Durability::Immediate)
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Vote, ErrorVerb::Write))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeIdOf<C>>>, StorageError<NodeIdOf<C>>> {
        self.read_value(&self.layout.vote())
            .map_err(|e| e.into_storage(ErrorSubject::Vote, ErrorVerb::Read))
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeIdOf<C>>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        self.write_value(&self.layout.committed(), &committed, Durability::Eventual)
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Store, ErrorVerb::Write))
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<NodeIdOf<C>>>, StorageError<NodeIdOf<C>>> {
        let stored: Option<Option<LogId<NodeIdOf<C>>>> = self
            .read_value(&self.layout.committed())
            .map_err(|e| e.into_storage(ErrorSubject::Store, ErrorVerb::Read))?;
        Ok(stored.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<NodeIdOf<C>>>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let write = async {
            let mut txn = self.tree.begin_with_mode(Mode::WriteOnly)?;
            txn.set_durability(Durability::Immediate);
            for entry in entries {
                txn.set(&self.layout.log_entry(entry.log_id.index), &encode(&entry)?)?;
            }
            txn.commit().await?;
            Ok::<_, Error>(())
        };
        match write.await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e.into_storage(ErrorSubject::Logs, ErrorVerb::Write))
            }
        }
    }

    async fn truncate(
        &mut self,
        log_id: LogId<NodeIdOf<C>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        let from = self.layout.log_entry(log_id.index);
        self.delete_log_range(from, self.layout.log_end(), None)
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Delete))
    }

    async fn purge(&mut self, log_id: LogId<NodeIdOf<C>>) -> Result<(), StorageError<NodeIdOf<C>>> {
        let purge = async {
            let to = match log_id.index.checked_add(1) {
                Some(next) => self.layout.log_entry(next),
                None => self.layout.log_end(),
            };
            let record = (self.layout.purged(), encode(&log_id)?);
            self.delete_log_range(self.layout.log_entry(0), to, Some(record)).await
        };
        purge.await.map_err(|e| e.into_storage(ErrorSubject::Logs, ErrorVerb::Delete))
    }
}

#[cfg(test)]
mod tests {
    use super::index_bounds;

    #[test]
    fn index_bounds_cover_every_range_form() {
        assert_eq!(index_bounds(&(3..7)), Some((3, Some(7))));
        assert_eq!(index_bounds(&(3..=7)), Some((3, Some(8))));
        assert_eq!(index_bounds(&(3..)), Some((3, None)));
        assert_eq!(index_bounds(&(..)), Some((0, None)));
        assert_eq!(index_bounds(&(5..5)), None);
        assert_eq!(index_bounds(&(..=u64::MAX)), Some((0, None)));
    }
}

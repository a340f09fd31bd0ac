//! [`StateMachine`]: openraft's state machine kept in a [`Tree`].
//!
//! The data lives under the layout's `data/` range. `apply` runs a batch of entries in one
//! Strata transaction that also writes the last applied log id and, when the batch holds a
//! membership entry, the membership: a crash leaves all of a batch or none of it, so the
//! applied index always describes the data beside it. Each normal entry's command writes
//! through a [`StateWriter`], which confines it to the data range.
//!
//! `install_snapshot` checks the snapshot bytes whole first, then replaces the data range,
//! the applied log id, the membership and the current snapshot in one transaction committed
//! with [`Durability::Immediate`]: a crash during install leaves the old state or the new one.
//!
//! `apply` commits with [`Durability::Eventual`]: the log it applies is durable, and Strata's
//! WAL keeps commits in order, so a crash can only lose a suffix of applied batches, which
//! openraft applies again from the log on restart. Snapshots are stored Immediate before the
//! log is purged behind them.

use std::fmt::Debug;
use std::io::Cursor;
use std::marker::PhantomData;

use openraft::storage::RaftStateMachine;
use openraft::{
    Entry, EntryPayload, ErrorSubject, ErrorVerb, LogId, OptionalSend, RaftTypeConfig, Snapshot,
    SnapshotMeta, StorageError, StoredMembership,
};
use strata::{Durability, Mode, Transaction, Tree, Value};

use super::codec::{decode, encode};
use super::errors::{Error, Result};
use super::keys::KeyLayout;
use super::snapshot::{SnapshotBuilder, decode_snapshot};

/// An application command that openraft replicates: how one log entry changes the data.
pub trait Command<R> {
    /// Applies the command through `state` and returns its response. An error stops the
    /// node (openraft treats a failed apply as fatal), so commands should report their own
    /// failures in `R` and keep errors for storage failures.
    fn apply(&self, state: &mut StateWriter<'_>) -> strata::Result<R>;
}

/// A command's view of the state machine's data during `apply`: reads see the writes of
/// earlier entries of the same batch.
#[derive(Debug)]
pub struct StateWriter<'t> {
    txn: &'t mut Transaction,
    layout: &'t KeyLayout,
}

impl StateWriter<'_> {
    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> strata::Result<Option<Value>> {
        self.txn.get(&self.layout.data(key))
    }

    /// Writes `value` under `key`.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> strata::Result<()> {
        self.txn.set(&self.layout.data(key), value)
    }

    /// Deletes `key`.
    pub fn delete(&mut self, key: &[u8]) -> strata::Result<()> {
        self.txn.delete(&self.layout.data(key))
    }
}

/// Reads a state machine's data from outside openraft (a service answering reads). Clones
/// share the tree.
#[derive(Debug, Clone)]
pub struct StateReader {
    tree: Tree,
    layout: KeyLayout,
}

impl StateReader {
    /// The value of `key` as of the last applied entry.
    pub fn get(&self, key: &[u8]) -> Result<Option<Value>> {
        Ok(self.tree.begin_with_mode(Mode::ReadOnly)?.get(&self.layout.data(key))?)
    }

    /// Every `(key, value)` of the data, in key order, at one snapshot.
    pub fn scan(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let txn = self.tree.begin_with_mode(Mode::ReadOnly)?;
        let (start, end) = self.layout.data_range();
        let mut out = Vec::new();
        for item in txn.range(&start, &end, None)? {
            let (key, value) = item?;
            if let Some(user_key) = self.layout.user_key(&key) {
                out.push((user_key.to_vec(), value.to_vec()));
            }
        }
        Ok(out)
    }
}

/// The state machine of one Raft node, stored in a [`Tree`] under a [`KeyLayout`].
pub struct StateMachine<C> {
    tree: Tree,
    layout: KeyLayout,
    _config: PhantomData<fn() -> C>,
}

impl<C> Debug for StateMachine<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateMachine").field("layout", &self.layout).finish()
    }
}

type NodeIdOf<C> = <C as RaftTypeConfig>::NodeId;
type MetaOf<C> = SnapshotMeta<<C as RaftTypeConfig>::NodeId, <C as RaftTypeConfig>::Node>;
type MembershipOf<C> = StoredMembership<<C as RaftTypeConfig>::NodeId, <C as RaftTypeConfig>::Node>;
/// The last applied log id and the membership it carries.
pub(crate) type AppliedState<C> = (Option<LogId<NodeIdOf<C>>>, MembershipOf<C>);

/// Reads the applied log id and membership in `txn` (absent keys: nothing applied yet).
pub(crate) fn applied_state_in<C: RaftTypeConfig>(
    txn: &Transaction,
    layout: &KeyLayout,
) -> Result<AppliedState<C>> {
    let applied = match txn.get(&layout.applied())? {
        Some(v) => decode(&layout.applied(), &v)?,
        None => None,
    };
    let membership = match txn.get(&layout.membership())? {
        Some(v) => decode(&layout.membership(), &v)?,
        None => StoredMembership::default(),
    };
    Ok((applied, membership))
}

impl<C> StateMachine<C>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
    C::D: Command<C::R>,
    C::R: Default,
{
    /// A state machine over `tree` with its keys under `layout`.
    pub fn new(tree: Tree, layout: KeyLayout) -> Self {
        StateMachine { tree, layout, _config: PhantomData }
    }

    /// A reader of this state machine's data, usable after the state machine moves into
    /// openraft.
    pub fn reader(&self) -> StateReader {
        StateReader { tree: self.tree.clone(), layout: self.layout.clone() }
    }

    fn apply_batch(
        &self,
        entries: impl Iterator<Item = Entry<C>>,
    ) -> Result<(Transaction, Vec<C::R>)> {
        let mut txn = self.tree.begin()?;
        let mut responses = Vec::new();
        let mut last = None;
        for entry in entries {
            let response = match &entry.payload {
                EntryPayload::Blank => C::R::default(),
                EntryPayload::Normal(command) => {
                    command.apply(&mut StateWriter { txn: &mut txn, layout: &self.layout })?
                }
                EntryPayload::Membership(m) => {
                    let stored: MembershipOf<C> =
                        StoredMembership::new(Some(entry.log_id.clone()), m.clone());
                    txn.set(&self.layout.membership(), &encode(&stored)?)?;
                    C::R::default()
                }
            };
            responses.push(response);
            last = Some(entry.log_id);
        }
        if let Some(last) = last {
            txn.set(&self.layout.applied(), &encode(&Some(last))?)?;
        }
        Ok((txn, responses))
    }

    fn read_applied(&self) -> Result<AppliedState<C>> {
        applied_state_in::<C>(&self.tree.begin_with_mode(Mode::ReadOnly)?, &self.layout)
    }

    async fn install(&self, meta: &MetaOf<C>, data: Vec<u8>) -> Result<()> {
        let records = decode_snapshot(&data)?;
        let mut txn = self.tree.begin()?;
        let (start, end) = self.layout.data_range();
        let old: Vec<_> = txn.keys(&start, &end, None)?.collect::<strata::Result<_>>()?;
        for key in old {
            txn.delete(&key)?;
        }
        for (key, value) in records {
            txn.set(&self.layout.data(key), value)?;
        }
        txn.set(&self.layout.applied(), &encode(&meta.last_log_id)?)?;
        txn.set(&self.layout.membership(), &encode(&meta.last_membership)?)?;
        txn.set(&self.layout.snapshot_meta(), &encode(meta)?)?;
        txn.set(&self.layout.snapshot_data(), &data)?;
        txn.set_durability(Durability::Immediate);
        txn.commit().await?;
        Ok(())
    }

    fn current_snapshot(&self) -> Result<Option<Snapshot<C>>> {
        let txn = self.tree.begin_with_mode(Mode::ReadOnly)?;
        let meta_key = self.layout.snapshot_meta();
        let Some(meta) = txn.get(&meta_key)? else { return Ok(None) };
        let meta: MetaOf<C> = decode(&meta_key, &meta)?;
        let data_key = self.layout.snapshot_data();
        let data = txn.get(&data_key)?.ok_or_else(|| Error::Decode {
            key: data_key.clone(),
            reason: "snapshot metadata without snapshot bytes".into(),
        })?;
        Ok(Some(Snapshot { meta, snapshot: Box::new(Cursor::new(data.to_vec())) }))
    }
}

impl<C> RaftStateMachine<C> for StateMachine<C>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
    C::D: Command<C::R>,
    C::R: Default,
{
    type SnapshotBuilder = SnapshotBuilder<C>;

    async fn applied_state(&mut self) -> Result<AppliedState<C>, StorageError<NodeIdOf<C>>> {
        self.read_applied().map_err(|e| e.into_storage(ErrorSubject::StateMachine, ErrorVerb::Read))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<C::R>, StorageError<NodeIdOf<C>>>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let applied = async {
            let (mut txn, responses) = self.apply_batch(entries.into_iter())?;
            txn.commit().await?;
            Ok::<_, Error>(responses)
        };
        applied.await.map_err(|e| e.into_storage(ErrorSubject::StateMachine, ErrorVerb::Write))
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            tree: self.tree.clone(),
            layout: self.layout.clone(),
            _config: PhantomData,
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeIdOf<C>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &MetaOf<C>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeIdOf<C>>> {
        self.install(meta, snapshot.into_inner()).await.map_err(|e| {
            e.into_storage(ErrorSubject::Snapshot(Some(meta.signature())), ErrorVerb::Write)
        })
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<C>>, StorageError<NodeIdOf<C>>> {
        self.current_snapshot()
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Read))
    }
}

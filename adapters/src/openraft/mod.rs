//! # openraft on Strata
//!
//! [openraft](https://docs.rs/openraft/0.9) replicates a log among nodes; this module is each
//! node's storage, in a [`strata::Tree`] it shares with nothing else of openraft's.
//!
//! The data's path through one node:
//!
//! ```text
//! client write -> leader's openraft -> LogStore::append      log/<index>, fsynced, then
//!                                                             the flush callback fires
//!              -> replicated to a quorum, committed -> StateMachine::apply
//!                                                             data/<key> + sm/applied in one
//!                                                             transaction
//! log too long -> SnapshotBuilder (one read snapshot of sm/ and data/) -> sm/snapshot_*
//!              -> LogStore::purge (one transaction deleting log/..=index)
//! lagging node <- snapshot bytes <- StateMachine::install_snapshot (one transaction that
//!                                    replaces data/, sm/applied, sm/membership)
//! ```
//!
//! Files: [`keys`] (the key layout, docs/format/openraft.md), `codec` (value encoding),
//! `log_store`, `state_machine`, [`snapshot`] (snapshot bytes and the builder), `errors`
//! (mapping into openraft's `StorageError`), [`kv`] (a ready-made key-value configuration),
//! [`network`] (a small TCP transport for it), `node` (a node of the replicated service) and
//! [`client`] (its client).

pub mod client;
mod codec;
mod errors;
pub mod keys;
pub mod kv;
mod log_store;
pub mod network;
mod node;
pub mod snapshot;
mod state_machine;

pub use client::{ClientError, KvClient};
pub use codec::VALUE_FORMAT_VERSION;
pub use errors::{Error, strata_error_kind};
pub use keys::KeyLayout;
pub use kv::{KvConfig, KvRequest, KvResponse};
pub use log_store::LogStore;
pub use network::{NodeStatus, TcpNetwork};
pub use node::Node;
pub use snapshot::SnapshotBuilder;
pub use state_machine::{Command, StateMachine, StateReader, StateWriter};

/// Opens the log store and state machine of one node over `tree`, both under `layout`.
pub fn open<C>(tree: strata::Tree, layout: KeyLayout) -> (LogStore<C>, StateMachine<C>)
where
    C: openraft::RaftTypeConfig<
            Entry = openraft::Entry<C>,
            SnapshotData = std::io::Cursor<Vec<u8>>,
        >,
    C::D: Command<C::R>,
    C::R: Default,
{
    (LogStore::new(tree.clone(), layout.clone()), StateMachine::new(tree, layout))
}

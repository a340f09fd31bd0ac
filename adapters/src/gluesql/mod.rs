//! # GlueSQL on Strata
//!
//! [`StrataStorage`] implements GlueSQL 0.20's storage traits over a [`strata::Tree`], so
//! `Glue::new(StrataStorage::new(tree))` runs SQL on Strata.
//!
//! ## The data's path
//!
//! GlueSQL parses and plans a statement, then calls the storage traits. Every call lands in
//! one Strata transaction, the *session transaction* ([`transaction`]): `BEGIN` opens it and
//! `COMMIT` commits it with [`strata::Transaction::commit_blocking`]; a statement outside
//! `BEGIN` opens its own and commits it when the statement ends (GlueSQL's autocommit).
//! Reads made while no transaction is open (planning) use a fresh read-only snapshot.
//!
//! Inside the transaction, tables, rows, secondary index entries, table metadata and
//! functions are keys under the storage's prefix ([`key_encoding`], documented in
//! `docs/format/gluesql.md`): a row's key ends in its encoded primary key and an index entry's
//! in its encoded index value and primary key, with an order-preserving encoding, so a table
//! scan, a primary-key lookup and an index range are Strata range scans and point reads.
//! Values are postcard-encoded GlueSQL structures ([`store`]). Writing a row updates its index
//! entries in the same transaction ([`index`]), so after a crash both are there or neither.
//!
//! A write conflict with another session surfaces at `COMMIT` (or at the end of an
//! autocommitted statement) as a GlueSQL error carrying Strata's kind ([`errors`]); the losing
//! transaction writes nothing.
//!
//! [`StrataStorage::at_version`] gives a read-only view of the database at a past timestamp
//! (the tree must be opened with versioning); every write through it is an error.

mod alter_table;
mod errors;
mod functions;
mod index;
pub mod key_encoding;
mod metadata;
mod planner;
mod store;
mod store_mut;
mod transaction;

use std::collections::BTreeMap;

use gluesql_core::data::CustomFunction;
use gluesql_core::error::Result;
use strata::{Durability, Mode, RangeIter, Tree};

/// The GlueSQL crate this storage implements, so users need no second dependency line.
pub use gluesql_core;

pub use errors::{is_conflict, strata_error_kind};
use key_encoding::Layout;

/// The key prefix [`StrataStorage::new`] uses.
pub const DEFAULT_PREFIX: &[u8] = b"gluesql\x00";

/// GlueSQL storage over a Strata tree. See the [module documentation](self).
///
/// One `StrataStorage` is one SQL session: it holds at most one open transaction. For
/// concurrent sessions, give each its own `StrataStorage` on a clone of the tree.
#[derive(Debug)]
pub struct StrataStorage {
    tree: Tree,
    layout: Layout,
    view: View,
    durability: Durability,
    session: Option<Session>,
    /// The functions as the session sees them, kept in memory because GlueSQL's
    /// `CustomFunction` trait lends references into the storage. Reloaded whenever a
    /// statement or transaction starts (GlueSQL calls `begin` before every statement) and
    /// after a rollback or failed commit; updated with every write.
    functions: BTreeMap<String, CustomFunction>,
}

/// What the storage reads: the live database, or the database at a past timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Live,
    AtVersion(u64),
}

/// The open session transaction.
#[derive(Debug)]
struct Session {
    txn: strata::Transaction,
    /// Opened by SQL `BEGIN` (ended by `COMMIT`/`ROLLBACK`) rather than by autocommit.
    explicit: bool,
}

impl StrataStorage {
    /// A storage on `tree` under [`DEFAULT_PREFIX`]. The tree may hold other data under
    /// other prefixes.
    pub fn new(tree: Tree) -> Self {
        Self::with_prefix(tree, DEFAULT_PREFIX)
    }

    /// A storage on `tree` whose keys all start with `prefix`. Two storages with prefixes
    /// where neither is a prefix of the other never see each other's tables.
    pub fn with_prefix(tree: Tree, prefix: &[u8]) -> Self {
        StrataStorage {
            tree,
            layout: Layout::new(prefix),
            view: View::Live,
            durability: Durability::default(),
            session: None,
            functions: BTreeMap::new(),
        }
    }

    /// Chooses when a commit returns (see [`strata::Durability`]); the default is
    /// [`Durability::Eventual`].
    #[must_use]
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// A read-only view of this storage's database as it was at timestamp `ts` (nanoseconds,
    /// the clock Strata stamps commits with). `SELECT`s see the schemas, rows, indexes and
    /// functions of that moment; every write is an error. Needs a tree opened with
    /// versioning, and `ts` within its retention period.
    pub fn at_version(&self, ts: u64) -> StrataStorage {
        StrataStorage {
            tree: self.tree.clone(),
            layout: self.layout.clone(),
            view: View::AtVersion(ts),
            durability: self.durability,
            session: None,
            functions: BTreeMap::new(),
        }
    }

    /// The tree this storage runs on.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Whether a transaction opened by `BEGIN` is open.
    pub fn in_transaction(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.explicit)
    }

    /// The value under `key`, read in the session transaction, or a fresh snapshot when none
    /// is open, or at the view's timestamp.
    fn read_get(&self, key: &[u8]) -> Result<Option<strata::Value>> {
        let got = match (&self.session, self.view) {
            (Some(session), _) => session.txn.get(key),
            (None, View::Live) => self.snapshot()?.get(key),
            (None, View::AtVersion(ts)) => self.snapshot()?.get_at_version(key, ts),
        };
        got.map_err(errors::from_strata)
    }

    /// Key-value pairs with `start <= key < end`, read like [`read_get`](Self::read_get).
    fn read_range(&self, (start, end): (&[u8], &[u8])) -> Result<RangeIter> {
        let range = match (&self.session, self.view) {
            (Some(session), _) => session.txn.range(start, end, None),
            (None, View::Live) => self.snapshot()?.range(start, end, None),
            (None, View::AtVersion(ts)) => self.snapshot()?.range_at_version(start, end, ts, None),
        };
        range.map_err(errors::from_strata)
    }

    fn snapshot(&self) -> Result<strata::Transaction> {
        self.tree.begin_with_mode(Mode::ReadOnly).map_err(errors::from_strata)
    }

    fn begin_strata(&self) -> Result<strata::Transaction> {
        let mut txn = self.tree.begin().map_err(errors::from_strata)?;
        txn.set_durability(self.durability);
        Ok(txn)
    }

    /// Runs `write` in the session transaction, or, when none is open (a trait method called
    /// outside GlueSQL's executor), in a transaction of its own committed right after.
    fn write<R>(
        &mut self,
        write: impl FnOnce(&mut strata::Transaction, &Layout) -> Result<R>,
    ) -> Result<R> {
        if let View::AtVersion(ts) = self.view {
            return Err(errors::read_only_view(ts));
        }
        match &mut self.session {
            Some(session) => write(&mut session.txn, &self.layout),
            None => {
                let mut txn = self.begin_strata()?;
                let out = write(&mut txn, &self.layout)?;
                txn.commit_blocking().map_err(errors::from_strata)?;
                Ok(out)
            }
        }
    }
}

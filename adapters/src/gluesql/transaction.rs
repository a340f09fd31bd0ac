//! `Transaction`: SQL `BEGIN` / `COMMIT` / `ROLLBACK` on one Strata transaction.
//!
//! GlueSQL calls `begin(true)` before every statement and `commit()` after it (or
//! `rollback()` when it failed) unless `begin` answered that a transaction is already open:
//! - no transaction open: `begin(true)` opens one for the statement (autocommit) and says so;
//! - `BEGIN` (`begin(false)`) opens one that stays open across statements, and a second
//!   `BEGIN` inside it is an error;
//! - `COMMIT` commits with `commit_blocking`; on a write conflict nothing of the transaction
//!   is written and the error keeps Strata's kind (see [`is_conflict`](super::is_conflict));
//! - `ROLLBACK` drops the buffered writes. `COMMIT` or `ROLLBACK` with nothing open does
//!   nothing.
//!
//! A time-travel view has no transactions: statements read at its timestamp and `BEGIN` is an
//! error, as it would announce writes.

use gluesql_core::error::Result;
use gluesql_core::store::Transaction;

use super::errors;
use super::{Session, StrataStorage, View};

impl Transaction for StrataStorage {
    fn begin(&mut self, autocommit: bool) -> Result<bool> {
        if let View::AtVersion(ts) = self.view {
            if !autocommit {
                return Err(errors::read_only_view(ts));
            }
            self.reload_functions()?;
            return Ok(false);
        }
        match (&self.session, autocommit) {
            (Some(_), true) => Ok(false),
            (Some(_), false) => Err(errors::nested_begin()),
            (None, _) => {
                let txn = self.begin_strata()?;
                self.session = Some(Session { txn, explicit: !autocommit });
                self.reload_functions()?;
                Ok(autocommit)
            }
        }
    }

    fn rollback(&mut self) -> Result<()> {
        if let Some(mut session) = self.session.take() {
            session.txn.rollback().map_err(errors::from_strata)?;
        }
        self.reload_functions()
    }

    fn commit(&mut self) -> Result<()> {
        let Some(mut session) = self.session.take() else {
            return Ok(());
        };
        match session.txn.commit_blocking() {
            Ok(()) => Ok(()),
            Err(error) => {
                // The cache holds this transaction's function changes, which are now lost.
                // The commit error is the one to report; a failed reload is reported by the
                // next statement's `begin`, which reloads again.
                let _ = self.reload_functions();
                Err(errors::from_strata(error))
            }
        }
    }
}

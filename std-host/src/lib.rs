//! # Strata
//!
//! An embedded, persistent, versioned key-value database: ACID transactions with snapshot
//! or serializable isolation over an LSM engine, a write-ahead log with group commit, and a choice of
//! durability per transaction.
//!
//! ```no_run
//! use strata::{Tree, TreeBuilder};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let tree = TreeBuilder::new().with_path("path/to/db".into()).build()?;
//! let mut txn = tree.begin()?;
//! txn.set(b"hello", b"world")?;
//! txn.commit().await?;
//! # Ok(()) }
//! ```
//!
//! Building and using a [`Tree`] needs no async runtime: `commit()` completes under any
//! executor, and [`Transaction::commit_blocking`] serves synchronous code.

#![warn(missing_docs)]

mod background;
mod clock;
mod committer;
mod dyn_fs;
mod encryption;
pub mod fs;
mod options;
mod read_options;
mod transaction;
mod tree;
mod verify;

pub use clock::SystemClock;
pub use dyn_fs::DynFs;
pub use encryption::OsRandom;
pub use options::{Options, TreeBuilder};
pub use read_options::ReadOptions;
pub use strata_core::iter::RangeIter;
pub use strata_core::options::VLogChecksumLevel;
pub use strata_core::options::{MAX_KEY_SIZE, MAX_VALUE_SIZE};
pub use strata_core::{
    Bytes, Clock, CorruptionKind, Durability, Error, IoOp, Isolation, Mode, RecoveryMode, Result,
};
pub use transaction::{Key, KeysIter, Transaction, Value};
pub use tree::{CheckpointMetadata, LevelStats, Stats, Tree, VlogGcReport};
pub use verify::{CheckedFile, TornTail, VerifyProgress, VerifyReport, verify_dir};

/// The filesystem layer, re-exported so one dependency serves a user who wants an in-memory
/// ([`vfs::MemFs`]), fault-injecting ([`vfs::FaultFs`]) or encrypted ([`vfs::EncryptedFs`])
/// database, with no second crate whose version must match.
pub mod vfs {
    pub use strata_vfs::*;
}

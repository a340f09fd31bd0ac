//! # strata-core
//!
//! Strata's engine, independent of any operating system: the on-disk formats, the memtable,
//! MVCC visibility and transactions (snapshot and serializable), recovery, the LSM tree
//! (flush, leveled compaction, caches), the value log with its garbage collection,
//! versioning, checkpoints and verification. It runs against the [`strata_vfs::Vfs`] trait
//! and needs only `alloc`; it never starts a thread ([`Engine::maintenance_step`] runs
//! background work on the caller's).
//!
//! The host crate (`strata`) adds real files, threads for group commit and background work,
//! and the user-facing async API.

#![no_std]
// Unsafe code is denied everywhere but in one audited module, the memtable's arena skiplist
// (`memtable/skiplist.rs`, docs/design.md "Unsafe code"), which Miri checks in CI.
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod batch;
pub mod cache;
pub mod checkpoint;
pub mod checksum;
pub mod clock;
pub mod codec;
pub mod compaction;
pub mod engine;
mod error;
pub mod filenames;
pub mod inspect;
pub mod iter;
pub mod key;
pub mod manifest;
pub mod memtable;
pub mod mvcc;
pub mod options;
pub mod serializable;
pub mod sstable;
#[cfg(test)]
mod testutil;
pub mod txn;
pub mod verify;
pub mod version;
pub mod vlog;
pub mod wal;
mod write_set;

pub use bytes::Bytes;
pub use clock::{Clock, LogicalClock, ManualClock};
pub use engine::{CommitRequest, Engine, EngineStats};
pub use error::{CorruptionKind, Error, IoOp, Result};
pub use key::{SeqNo, Timestamp};
pub use options::EngineOptions;
pub use serializable::Isolation;
pub use txn::{Durability, Mode, TxnCore};
pub use wal::RecoveryMode;

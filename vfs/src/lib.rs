//! # strata-vfs
//!
//! The virtual filesystem Strata's core is written against, and the filesystems that make it
//! testable: [`MemFs`] (an in-memory crash simulator), [`FaultFs`] (error injection around any
//! [`Vfs`]) and a [`conformance`] suite every implementation must pass. With feature
//! `encryption`, `EncryptedFs` encrypts any `Vfs` at rest; with feature `flash`, `FlashFs` is a
//! filesystem over a NOR flash (`embedded-storage`) for devices without one.
//!
//! The trait is synchronous, like LevelDB's `Env` or SQLite's VFS: async belongs to the host.
//! A database is one flat directory; files are named by `&str`, never by path.
//!
//! ## Storage-medium assumptions
//!
//! Every implementation documents how it meets these, and the engine relies on nothing more:
//! - bytes appended to a file are durable only after [`AppendWrite::sync`] returns `Ok`;
//! - a `create`, `rename` or `remove` is durable only after [`Vfs::sync_dir`] returns `Ok`;
//! - after a crash, the unsynced tail of a file may be missing, kept, torn at any sector
//!   boundary, or filled with garbage; nothing about write order holds without a sync;
//! - a rename replaces its target atomically: after a crash, the target names either the old or
//!   the new file;
//! - a sync that fails leaves the unsynced bytes in an unknown state, for ever: retrying cannot
//!   make them durable (the engine poisons itself instead).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod conformance;
#[cfg(feature = "encryption")]
pub mod encrypted;
mod error;
mod fault;
#[cfg(feature = "flash")]
pub mod flash;
mod fs;
mod mem;
pub mod sync;

#[cfg(feature = "encryption")]
pub use encrypted::{EncryptedFs, KeyProvider, RandomSource, StaticKey};
pub use error::{Error, ErrorKind, Result};
pub use fault::{FaultFs, FaultOp, FaultRead, FaultRule, FaultWrite};
pub use fs::{AppendWrite, Caps, FileKind, RandomRead, SyncMode, Vfs};
pub use mem::{CrashPolicy, MemFile, MemFs, MemLock, MemWriter};

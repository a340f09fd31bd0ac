//! The real filesystem: [`StdFs`], a [`strata_vfs::Vfs`] over one directory of `std::fs`.
//!
//! Platform notes live next to the calls that differ (`sys.rs`): positional reads, `fsync`
//! (`F_FULLFSYNC` on Apple platforms), directory sync (Unix only).
//!
//! [`ReadOnlyFs`] views a directory for a read-only open: the writes an open makes land in
//! memory, and the directory is locked shared.

mod io_error;
mod lock;
mod read;
mod read_only;
mod std_fs;
mod sys;
mod write;

pub use lock::StdLock;
pub use read::StdReadFile;
pub use read_only::{ReadOnlyFile, ReadOnlyFs};
pub use std_fs::StdFs;
pub use write::StdWriteFile;

//! The real filesystem: [`StdFs`], a [`strata_vfs::Vfs`] over one directory of `std::fs`.
//!
//! Platform notes live next to the calls that differ (`sys.rs`): positional reads, `fsync`
//! (`F_FULLFSYNC` on Apple platforms), directory sync (Unix only).

mod io_error;
mod lock;
mod read;
mod std_fs;
mod sys;
mod write;

pub use lock::StdLock;
pub use read::StdReadFile;
pub use std_fs::StdFs;
pub use write::StdWriteFile;

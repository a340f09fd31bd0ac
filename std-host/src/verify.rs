//! [`verify_dir`]: checks every checksum of a database directory without opening it.
//!
//! The walk itself is the core's ([`strata_core::verify`]): the live manifest, every block of
//! every live table, every value log record, and the WAL segments recovery would replay. This
//! host side opens the directory without creating it and holds a shared lock on it while the
//! walk runs, so no writer can change the files underneath (and the walk refuses to start
//! while one has the database open).

use std::path::Path;

pub use strata_core::verify::{CheckedFile, TornTail, VerifyProgress, VerifyReport};
use strata_core::{Error, IoOp, Result, filenames};

use crate::fs::StdFs;

/// Checks the database in `dir` (see [`strata_core::verify::verify`]): every problem is listed
/// in the report, each naming its file and, for corruption, the offset. Errors only when the
/// directory is missing or holds no database (`Io` with `NotFound`, or `Corruption` of
/// `CURRENT`), cannot be listed, or is open by a writer ([`Error::Locked`]). Writes nothing.
/// `progress` is called as bytes are read.
pub fn verify_dir(
    dir: impl AsRef<Path>,
    progress: &mut dyn FnMut(VerifyProgress),
) -> Result<VerifyReport> {
    let dir = dir.as_ref();
    let shown = dir.display().to_string();
    let fs = StdFs::open_existing_dir(dir).map_err(|e| Error::io(IoOp::Open, &shown, e))?;
    let _lock = fs.lock_shared(filenames::LOCK).map_err(|e| Error::io(IoOp::Lock, &shown, e))?;
    strata_core::verify::verify(&fs, progress)
}

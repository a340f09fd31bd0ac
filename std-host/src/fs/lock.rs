//! [`StdLock`]: an exclusive advisory lock on a file, held while the value lives.

use std::fs::{File, TryLockError};
use std::path::Path;

use strata_vfs::{Error, ErrorKind, Result};

use super::io_error::{io_err, map_io};

/// An exclusive lock taken by [`StdFs::lock`](strata_vfs::Vfs::lock), or a shared one taken by
/// [`StdFs::lock_shared`](super::StdFs::lock_shared); dropping it releases the lock.
///
/// Uses [`File::try_lock`]: `flock(LOCK_EX | LOCK_NB)` on Unix, `LockFileEx` on Windows. Both
/// belong to the open file, not the process, so a second handle in the same process is refused
/// like another process would be. A crash (or `kill -9`) releases the lock with the process.
#[derive(Debug)]
pub struct StdLock {
    file: File,
}

impl StdLock {
    /// Opens (creating if missing) the file at `path` and locks it without waiting.
    pub(super) fn acquire(path: &Path) -> Result<StdLock> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_err("lock: open"))?;
        match file.try_lock() {
            Ok(()) => Ok(StdLock { file }),
            Err(TryLockError::WouldBlock) => Err(Error::new(
                ErrorKind::Locked,
                "database directory is locked by another process or handle",
            )),
            Err(TryLockError::Error(e)) => Err(map_io("lock", e)),
        }
    }

    /// Takes a shared lock on the existing file at `path` without waiting, and without
    /// creating or writing anything: `Ok(None)` if the file does not exist. Shared locks
    /// coexist with each other and exclude [`acquire`](Self::acquire)'s exclusive one, both
    /// ways (`Locked`).
    pub(super) fn acquire_shared(path: &Path) -> Result<Option<StdLock>> {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(map_io("lock: open", e)),
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(Some(StdLock { file })),
            Err(TryLockError::WouldBlock) => Err(Error::new(
                ErrorKind::Locked,
                "database directory is locked by another process or handle",
            )),
            Err(TryLockError::Error(e)) => Err(map_io("lock", e)),
        }
    }
}

impl Drop for StdLock {
    fn drop(&mut self) {
        // Closing the file releases the lock anyway; unlocking first makes the release
        // explicit and immediate even if the descriptor were duplicated somewhere.
        let _ = self.file.unlock();
    }
}

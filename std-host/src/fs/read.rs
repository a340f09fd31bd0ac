//! [`StdReadFile`]: positional reads on a real file.

use std::fs::File;

use strata_vfs::{RandomRead, Result};

use super::io_error::io_err;
use super::sys;

/// A file opened by [`StdFs::open`](strata_vfs::Vfs::open) for positional reads.
///
/// `Send + Sync`: reads take `&self` and use no cursor (`pread` / `seek_read`), so one handle
/// can serve many threads at once.
#[derive(Debug)]
pub struct StdReadFile {
    file: File,
}

impl StdReadFile {
    pub(super) fn new(file: File) -> Self {
        StdReadFile { file }
    }
}

impl RandomRead for StdReadFile {
    /// Fills `buf` from `offset`, never short: a range past the end is `UnexpectedEof`.
    /// Reads see bytes flushed by a writer of the same file (in this process or another) even
    /// before they are synced; a crash may take unsynced bytes away again.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        sys::read_exact_at(&self.file, offset, buf).map_err(io_err("pread"))
    }

    /// The current length from the file's metadata. Includes flushed but unsynced bytes, which
    /// a crash may remove.
    fn len(&self) -> Result<u64> {
        Ok(self.file.metadata().map_err(io_err("stat"))?.len())
    }
}

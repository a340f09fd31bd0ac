//! The filesystem traits. Each method states what a crash may leave behind.

use alloc::string::String;
use alloc::vec::Vec;

use crate::Result;

/// What kind of file is being opened. A hint: wrappers (encryption, fault injection) and hosts
/// (buffer sizes, fadvise) may use it; it never changes the meaning of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// Write-ahead log segment.
    Wal,
    /// Sorted table.
    Table,
    /// Manifest (version edits).
    Manifest,
    /// Value-log file.
    ValueLog,
    /// Small marker or metadata file (CURRENT, checkpoint metadata, LOCK).
    Marker,
    /// Scratch file that is renamed into place or removed.
    Temp,
}

/// How much of a file a [`AppendWrite::sync`] makes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncMode {
    /// The bytes (and the file size): `fdatasync`.
    Data,
    /// The bytes and all metadata: `fsync` (`F_FULLFSYNC` on macOS).
    All,
}

/// What an implementation offers beyond the required calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Caps {
    /// [`Vfs::link`] makes hard links (cheap checkpoints). Without it, callers copy.
    pub hard_links: bool,
    /// [`Vfs::sync_dir`] does real work (directory entries are not durable without it).
    pub dir_sync: bool,
    /// The smallest unit the medium writes atomically, in bytes (a sector). Torn writes happen
    /// at this granularity.
    pub sector_size: u32,
}

impl Caps {
    /// Capabilities with the given flags and sector size.
    pub const fn new(hard_links: bool, dir_sync: bool, sector_size: u32) -> Self {
        Caps { hard_links, dir_sync, sector_size }
    }
}

/// A file opened for reading at arbitrary offsets.
///
/// Reads take `&self` and are safe to issue concurrently from many threads (when the
/// implementation is `Sync`): there is no cursor.
pub trait RandomRead {
    /// Fills `buf` from `offset`. Never a short read: a range past the end of the file is an
    /// [`crate::ErrorKind::UnexpectedEof`] error and `buf` is then unspecified.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// The file's current length in bytes. A file being appended to through another handle may
    /// grow after this returns.
    fn len(&self) -> Result<u64>;

    /// `len() == 0`.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// A file being written, append-only. Files are written once and never modified in place.
pub trait AppendWrite {
    /// Appends `data` at the end. The bytes may sit in a buffer until [`flush`](Self::flush);
    /// they are durable only after [`sync`](Self::sync). On error nothing is known about how
    /// much was appended: the caller must treat the file as failed.
    fn append(&mut self, data: &[u8]) -> Result<()>;

    /// Hands buffered bytes to the operating system, so readers of the same file see them and
    /// a process crash (not a power cut) keeps them.
    fn flush(&mut self) -> Result<()>;

    /// Flushes, then makes every appended byte durable. A power cut after `Ok` keeps all of
    /// them; an error means none of the unsynced bytes can be relied upon, ever (a failed fsync
    /// may have dropped dirty pages), so the engine stops writing to this file.
    fn sync(&mut self, mode: SyncMode) -> Result<()>;

    /// Bytes appended so far (flushed or not).
    fn len(&self) -> u64;

    /// `len() == 0`.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A hint that the file will grow to at least `upto` bytes. An implementation may
    /// allocate the space now and make the file that long, zero-filled after the appended
    /// bytes, which later appends overwrite: a sync then no longer has to record a new file
    /// size, which on Linux filesystems makes each `fdatasync` of a small append markedly
    /// cheaper. Readers of such a file (after a crash, or while it is written) see zeros after
    /// the appended bytes, so only formats that accept a zero tail call this (the log, see
    /// `docs/format/wal.md`). The default does nothing; a wrapper that transforms bytes
    /// (encryption) must not forward it, because its readers would see transformed zeros.
    /// Reservation is best effort: an error here is not a write error.
    fn reserve(&mut self, upto: u64) -> Result<()> {
        let _ = upto;
        Ok(())
    }
}

/// A flat directory of named files.
///
/// Names are plain file names (`000042.wal`): no separators, no paths. Implementations decide
/// where the directory lives.
pub trait Vfs {
    /// Handle returned by [`open`](Self::open).
    type Read: RandomRead;
    /// Handle returned by [`create`](Self::create).
    type Write: AppendWrite;
    /// Held lock; dropping it releases the lock.
    type Lock;

    /// What this implementation offers.
    fn caps(&self) -> Caps;

    /// Creates a new, empty file for appending. Fails with `AlreadyExists` if the name is taken
    /// (create-new semantics, never truncation). The new name is durable only after
    /// [`sync_dir`](Self::sync_dir): a crash before that may leave no file at all.
    fn create(&self, name: &str, kind: FileKind) -> Result<Self::Write>;

    /// Opens an existing file for positional reads; `NotFound` if absent.
    fn open(&self, name: &str, kind: FileKind) -> Result<Self::Read>;

    /// Removes a file; `NotFound` if absent. Open handles keep working on their data. The
    /// removal is durable only after [`sync_dir`](Self::sync_dir): a crash before may bring
    /// the file back.
    fn remove(&self, name: &str) -> Result<()>;

    /// Renames `from` to `to`, atomically replacing `to` if it exists. Durable only after
    /// [`sync_dir`](Self::sync_dir); after a crash `to` names either its old file or `from`'s,
    /// never a mix and never nothing (if it existed before).
    fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Makes every create, rename and remove done so far durable.
    fn sync_dir(&self) -> Result<()>;

    /// The names of every file in the directory, in no particular order.
    fn list(&self) -> Result<Vec<String>>;

    /// Size of the named file in bytes; `NotFound` if absent.
    fn size(&self, name: &str) -> Result<u64>;

    /// `true` if the named file exists.
    fn exists(&self, name: &str) -> Result<bool> {
        match self.size(name) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes an exclusive lock named `name` (creating the file if needed), failing at once with
    /// `Locked` if another handle, in this process or another, holds it. Dropping the returned
    /// value releases it. A crash releases every lock.
    fn lock(&self, name: &str) -> Result<Self::Lock>;

    /// Makes `new` a hard link to `existing` (same data, no copy). `Unsupported` unless
    /// [`Caps::hard_links`]; durable only after [`sync_dir`](Self::sync_dir).
    fn link(&self, existing: &str, new: &str) -> Result<()> {
        let _ = (existing, new);
        Err(crate::Error::new(crate::ErrorKind::Unsupported, "hard links"))
    }
}

impl<T: RandomRead + ?Sized> RandomRead for alloc::boxed::Box<T> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_exact_at(offset, buf)
    }
    fn len(&self) -> Result<u64> {
        (**self).len()
    }
}

impl<T: RandomRead + ?Sized> RandomRead for alloc::sync::Arc<T> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        (**self).read_exact_at(offset, buf)
    }
    fn len(&self) -> Result<u64> {
        (**self).len()
    }
}

impl<T: AppendWrite + ?Sized> AppendWrite for alloc::boxed::Box<T> {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        (**self).append(data)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn sync(&mut self, mode: SyncMode) -> Result<()> {
        (**self).sync(mode)
    }
    fn len(&self) -> u64 {
        (**self).len()
    }
    fn reserve(&mut self, upto: u64) -> Result<()> {
        (**self).reserve(upto)
    }
}

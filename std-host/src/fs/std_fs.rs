//! [`StdFs`]: the [`Vfs`] over one real directory.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use strata_vfs::{Caps, Error, ErrorKind, FileKind, Result, Vfs};

use super::io_error::io_err;
use super::lock::StdLock;
use super::read::StdReadFile;
use super::sys;
use super::write::StdWriteFile;

/// The real filesystem: every file lives directly in one directory.
///
/// Cheap to clone (a path); handles are independent of the `StdFs` that made them.
///
/// # What survives a crash
///
/// - Appended bytes: only after [`AppendWrite::sync`](strata_vfs::AppendWrite::sync) returns
///   `Ok` (`fdatasync` / `fsync`, `F_FULLFSYNC` on Apple platforms, `FlushFileBuffers` on
///   Windows). Unsynced tails may be lost, kept, or torn at sector granularity.
/// - Names (create, rename, remove, link): only after [`sync_dir`](Vfs::sync_dir) returns `Ok`
///   on Unix. On Windows `sync_dir` does nothing: NTFS journals metadata, so a completed
///   create, rename or delete is as durable as the journal (committed within seconds, and in
///   order), which is the best Windows offers without administrator rights.
/// - A rename replaces its target atomically (`rename(2)`; `MoveFileExW` with
///   `MOVEFILE_REPLACE_EXISTING` on Windows).
#[derive(Debug, Clone)]
pub struct StdFs {
    dir: PathBuf,
}

impl StdFs {
    /// Opens the directory `dir`, creating it (with missing parents) if needed.
    ///
    /// Newly created directories are made durable before this returns (on Unix the parent of
    /// each is synced), so a crash right after cannot lose the database directory itself.
    pub fn open_dir(dir: impl Into<PathBuf>) -> Result<StdFs> {
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            return Err(Error::new(ErrorKind::Other, "open_dir: empty directory path"));
        }
        create_dirs(&dir).map_err(io_err("open_dir: create"))?;
        let meta = fs::metadata(&dir).map_err(io_err("open_dir: stat"))?;
        if !meta.is_dir() {
            return Err(Error::new(ErrorKind::Other, "open_dir: not a directory"));
        }
        Ok(StdFs { dir })
    }

    /// Opens the existing directory `dir` without creating or writing anything: `NotFound`
    /// if it does not exist, `Other` if it is not a directory. For read-only use.
    pub fn open_existing_dir(dir: impl Into<PathBuf>) -> Result<StdFs> {
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            return Err(Error::new(ErrorKind::Other, "open_dir: empty directory path"));
        }
        let meta = fs::metadata(&dir).map_err(io_err("open_dir: stat"))?;
        if !meta.is_dir() {
            return Err(Error::new(ErrorKind::Other, "open_dir: not a directory"));
        }
        Ok(StdFs { dir })
    }

    /// Takes a shared lock on the existing file `name` without creating it: `Ok(None)` when
    /// the file does not exist, `Locked` while anyone holds the exclusive lock
    /// ([`Vfs::lock`]). Readers that must not change a database hold this one, so a writer
    /// cannot open the database under them, and they cannot open it under a writer.
    pub fn lock_shared(&self, name: &str) -> Result<Option<StdLock>> {
        let path = self.file_path(name)?;
        StdLock::acquire_shared(&path)
    }

    /// The directory this filesystem lives in, as given to [`open_dir`](Self::open_dir).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The path of the file `name`, once `name` is known to be a plain file name.
    fn file_path(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }
}

/// Refuses anything that is not a plain file name: empty, `.`, `..`, or containing a path
/// separator (`/` or `\` on every platform), a NUL byte, or on Windows a `:` (which would
/// address an alternate data stream).
fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\\', '\0'])
        || (cfg!(windows) && name.contains(':'));
    if bad { Err(Error::new(ErrorKind::Other, "invalid file name")) } else { Ok(()) }
}

/// `create_dir_all`, then syncs the parent of every directory it created, so the new entries
/// are durable.
fn create_dirs(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir;
    loop {
        match fs::metadata(cur) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(cur);
                match cur.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => cur = parent,
                    _ => break,
                }
            }
            Err(e) => return Err(e),
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    for created in missing {
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        sys::sync_dir(parent)?;
    }
    Ok(())
}

impl Vfs for StdFs {
    type Read = StdReadFile;
    type Write = StdWriteFile;
    type Lock = StdLock;

    /// Hard links always; directory sync on Unix only; 4096-byte sectors (the common
    /// physical sector; 512-byte devices tear at finer grain, which 4096 covers).
    fn caps(&self) -> Caps {
        Caps::new(true, cfg!(unix), 4096)
    }

    /// Creates `name` with create-new semantics (`O_CREAT | O_EXCL`; `AlreadyExists` if
    /// taken). The name survives a crash only after [`sync_dir`](Vfs::sync_dir); its bytes
    /// only after the handle's `sync`.
    fn create(&self, name: &str, _kind: FileKind) -> Result<StdWriteFile> {
        let path = self.file_path(name)?;
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_err("create"))?;
        Ok(StdWriteFile::new(file))
    }

    /// Opens `name` read-only for positional reads; `NotFound` if absent. Reads see every
    /// flushed byte, synced or not; after a crash only synced bytes are certain.
    fn open(&self, name: &str, _kind: FileKind) -> Result<StdReadFile> {
        let path = self.file_path(name)?;
        let file = File::open(path).map_err(io_err("open"))?;
        Ok(StdReadFile::new(file))
    }

    /// Unlinks `name`; `NotFound` if absent. Open handles keep their data (on Windows too:
    /// `std` opens files with `FILE_SHARE_DELETE`). A crash before [`sync_dir`](Vfs::sync_dir)
    /// may bring the file back.
    fn remove(&self, name: &str) -> Result<()> {
        let path = self.file_path(name)?;
        fs::remove_file(path).map_err(io_err("remove"))
    }

    /// `rename(2)` / `MoveFileExW(MOVEFILE_REPLACE_EXISTING)`: replaces `to` atomically. A
    /// crash before [`sync_dir`](Vfs::sync_dir) leaves `to` naming its old file or `from`'s,
    /// never nothing if it existed before.
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let from = self.file_path(from)?;
        let to = self.file_path(to)?;
        fs::rename(from, to).map_err(io_err("rename"))
    }

    /// On Unix, `fsync` on the directory (`F_FULLFSYNC` on Apple platforms): every create,
    /// rename, remove and link done so far survives a crash after `Ok`. On Windows, a no-op
    /// (NTFS journals metadata; see [`StdFs`]).
    fn sync_dir(&self) -> Result<()> {
        sys::sync_dir(&self.dir).map_err(io_err("sync_dir"))
    }

    /// Names of the files in the directory (subdirectories and names that are not UTF-8 are
    /// skipped). Reflects the current state, which a crash may roll back to the last
    /// [`sync_dir`](Vfs::sync_dir).
    fn list(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io_err("list"))? {
            let entry = entry.map_err(io_err("list"))?;
            let file_type = entry.file_type().map_err(io_err("list"))?;
            if file_type.is_dir() {
                continue;
            }
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// The file's length from its metadata; `NotFound` if absent. Counts flushed but unsynced
    /// bytes, which a crash may remove.
    fn size(&self, name: &str) -> Result<u64> {
        let path = self.file_path(name)?;
        Ok(fs::metadata(path).map_err(io_err("stat"))?.len())
    }

    /// Opens (creating if needed) `name` and takes an exclusive `File::try_lock` on it;
    /// `Locked` if another handle or process holds it. The lock file's creation is not synced
    /// (it holds no data); a crash releases the lock.
    fn lock(&self, name: &str) -> Result<StdLock> {
        let path = self.file_path(name)?;
        StdLock::acquire(&path)
    }

    /// `link(2)` / `CreateHardLinkW`: `new` names the same data as `existing`, no copy;
    /// `AlreadyExists` if `new` is taken. The new name survives a crash only after
    /// [`sync_dir`](Vfs::sync_dir).
    fn link(&self, existing: &str, new: &str) -> Result<()> {
        let existing = self.file_path(existing)?;
        let new = self.file_path(new)?;
        fs::hard_link(existing, new).map_err(io_err("link"))
    }
}

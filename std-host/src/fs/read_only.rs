//! [`ReadOnlyFs`]: a database directory seen through a copy-on-write layer, so that the
//! engine's ordinary open path runs on it without changing a byte on disk.
//!
//! Opening a database writes: recovery starts a new WAL segment, writes a fresh manifest,
//! switches `CURRENT` and removes obsolete files. A read-only open runs that same path (one
//! recovery, not two that could disagree) over this filesystem: reads come from the directory;
//! creates, appends and renames land in an in-memory layer ([`MemFs`]) that shadows the
//! directory, removes only hide a name, and all of it vanishes when the database closes.
//!
//! The directory is never created, written or locked exclusively. [`Vfs::lock`] takes a
//! *shared* lock on the existing `LOCK` file ([`StdFs::lock_shared`]): writers cannot open the
//! database while it is held, and it cannot be taken while a writer has the database open. A
//! directory without a `LOCK` file (a copied checkpoint, say) is opened without a lock.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use strata_vfs::{
    Caps, Error, ErrorKind, FileKind, MemFile, MemFs, MemWriter, RandomRead, Result, Vfs,
};

use super::{StdFs, StdLock, StdReadFile};

/// A read-only view of a database directory with an in-memory layer for the writes an open
/// makes (see the module docs). Clones share the layer.
#[derive(Debug, Clone)]
pub struct ReadOnlyFs {
    disk: StdFs,
    mem: MemFs,
    /// Directory names removed (or renamed away) through this view.
    hidden: Arc<Mutex<BTreeSet<String>>>,
}

/// A file opened through a [`ReadOnlyFs`]: the directory's, or one the open wrote in memory.
#[derive(Debug)]
pub enum ReadOnlyFile {
    /// A file of the directory.
    Disk(StdReadFile),
    /// A file written through the view.
    Mem(MemFile),
}

impl RandomRead for ReadOnlyFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        match self {
            ReadOnlyFile::Disk(f) => f.read_exact_at(offset, buf),
            ReadOnlyFile::Mem(f) => f.read_exact_at(offset, buf),
        }
    }

    fn len(&self) -> Result<u64> {
        match self {
            ReadOnlyFile::Disk(f) => f.len(),
            ReadOnlyFile::Mem(f) => f.len(),
        }
    }
}

impl ReadOnlyFs {
    /// Views the existing directory `dir`; `NotFound` if it does not exist. Creates nothing.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ReadOnlyFs> {
        Ok(ReadOnlyFs {
            disk: StdFs::open_existing_dir(dir)?,
            mem: MemFs::new(),
            hidden: Arc::default(),
        })
    }

    /// The directory.
    pub fn disk(&self) -> &StdFs {
        &self.disk
    }

    fn hidden(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.hidden.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `true` if `name` is in the directory and not hidden.
    fn on_disk(&self, name: &str) -> Result<bool> {
        if self.hidden().contains(name) {
            return Ok(false);
        }
        self.disk.exists(name)
    }

    fn not_found() -> Error {
        Error::new(ErrorKind::NotFound, "no such file")
    }
}

impl Vfs for ReadOnlyFs {
    type Read = ReadOnlyFile;
    type Write = MemWriter;
    type Lock = Option<StdLock>;

    /// No hard links (a checkpoint copies), no directory sync needed.
    fn caps(&self) -> Caps {
        Caps::new(false, false, self.disk.caps().sector_size)
    }

    /// Creates the file in memory; `AlreadyExists` if the name is visible in either layer.
    fn create(&self, name: &str, kind: FileKind) -> Result<MemWriter> {
        if self.on_disk(name)? {
            return Err(Error::new(ErrorKind::AlreadyExists, "file exists"));
        }
        self.mem.create(name, kind)
    }

    /// The in-memory file if there is one, else the directory's.
    fn open(&self, name: &str, kind: FileKind) -> Result<ReadOnlyFile> {
        if self.mem.exists(name)? {
            return self.mem.open(name, kind).map(ReadOnlyFile::Mem);
        }
        if self.hidden().contains(name) {
            return Err(Self::not_found());
        }
        self.disk.open(name, kind).map(ReadOnlyFile::Disk)
    }

    /// Removes the in-memory file and hides the directory's.
    fn remove(&self, name: &str) -> Result<()> {
        let in_mem = self.mem.exists(name)?;
        let on_disk = self.on_disk(name)?;
        if in_mem {
            self.mem.remove(name)?;
        }
        if on_disk {
            self.hidden().insert(name.to_owned());
        }
        if in_mem || on_disk { Ok(()) } else { Err(Self::not_found()) }
    }

    /// Renames within memory; a directory file is copied into memory under `to` and hidden.
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        if self.mem.exists(from)? {
            self.mem.rename(from, to)?;
            if self.on_disk(from)? {
                self.hidden().insert(from.to_owned());
            }
            return Ok(());
        }
        if !self.on_disk(from)? {
            return Err(Self::not_found());
        }
        let file = self.disk.open(from, FileKind::Temp)?;
        let len = usize::try_from(file.len()?)
            .map_err(|_| Error::new(ErrorKind::Other, "file too large to copy into memory"))?;
        let mut data = vec![0; len];
        file.read_exact_at(0, &mut data)?;
        self.mem.write_whole(to, &data)?;
        self.hidden().insert(from.to_owned());
        Ok(())
    }

    /// Nothing to make durable.
    fn sync_dir(&self) -> Result<()> {
        Ok(())
    }

    /// The directory's visible names and the in-memory ones.
    fn list(&self) -> Result<Vec<String>> {
        let mut names: BTreeSet<String> = self.mem.list()?.into_iter().collect();
        let hidden = self.hidden().clone();
        names.extend(self.disk.list()?.into_iter().filter(|n| !hidden.contains(n)));
        Ok(names.into_iter().collect())
    }

    fn size(&self, name: &str) -> Result<u64> {
        if self.mem.exists(name)? {
            return self.mem.size(name);
        }
        if self.hidden().contains(name) {
            return Err(Self::not_found());
        }
        self.disk.size(name)
    }

    /// A shared lock on the directory's existing lock file (`None` when there is none).
    fn lock(&self, name: &str) -> Result<Option<StdLock>> {
        self.disk.lock_shared(name)
    }

    /// Links in-memory files; files of the directory are not linked (callers copy).
    fn link(&self, existing: &str, new: &str) -> Result<()> {
        if self.mem.exists(existing)? && !self.on_disk(new)? {
            return self.mem.link(existing, new);
        }
        Err(Error::new(ErrorKind::Unsupported, "hard links into a read-only directory"))
    }
}

#[cfg(test)]
mod tests {
    use strata_vfs::AppendWrite;

    use super::*;

    fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, data) in files {
            std::fs::write(dir.path().join(name), data).expect("write");
        }
        dir
    }

    fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().into_string().expect("utf-8"),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn writes_land_in_memory_and_the_directory_never_changes() {
        let dir = dir_with(&[("a", b"disk a"), ("b", b"disk b")]);
        let before = snapshot(dir.path());
        let fs = ReadOnlyFs::open(dir.path()).expect("open");

        let mut w = fs.create("c", FileKind::Temp).expect("create");
        w.append(b"memory c").expect("append");
        assert_eq!(
            fs.create("a", FileKind::Temp).expect_err("a is taken").kind(),
            ErrorKind::AlreadyExists
        );
        fs.rename("c", "a").expect("rename over a directory file");
        fs.remove("b").expect("remove");
        fs.rename("a", "d").expect("rename");

        let mut names = fs.list().expect("list");
        names.sort();
        assert_eq!(names, ["d"]);
        let d = fs.open("d", FileKind::Temp).expect("open d");
        let mut buf = vec![0; 8];
        d.read_exact_at(0, &mut buf).expect("read");
        assert_eq!(buf, b"memory c");
        assert_eq!(fs.open("b", FileKind::Temp).expect_err("hidden").kind(), ErrorKind::NotFound);
        assert_eq!(snapshot(dir.path()), before, "the directory is untouched");
    }

    #[test]
    fn a_directory_file_renamed_is_copied_into_memory() {
        let dir = dir_with(&[("CURRENT.tmp", b"x"), ("CURRENT", b"old")]);
        let fs = ReadOnlyFs::open(dir.path()).expect("open");
        fs.rename("CURRENT.tmp", "CURRENT").expect("rename");
        assert_eq!(fs.size("CURRENT").expect("size"), 1);
        assert!(!fs.exists("CURRENT.tmp").expect("exists"));
        assert_eq!(std::fs::read(dir.path().join("CURRENT")).expect("read"), b"old");
    }

    #[test]
    fn missing_directory_is_not_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let err = ReadOnlyFs::open(&missing).expect_err("missing");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(!missing.exists());
    }

    #[test]
    fn shared_lock_excludes_the_exclusive_one_both_ways() {
        let dir = dir_with(&[("LOCK", b"")]);
        let disk = StdFs::open_existing_dir(dir.path()).expect("dir");
        let ro = ReadOnlyFs::open(dir.path()).expect("open");
        let shared = ro.lock("LOCK").expect("shared").expect("LOCK exists");
        let second = ro.lock("LOCK").expect("shared locks coexist");
        assert_eq!(disk.lock("LOCK").expect_err("writer refused").kind(), ErrorKind::Locked);
        drop((shared, second));
        let exclusive = disk.lock("LOCK").expect("writer");
        assert_eq!(ro.lock("LOCK").expect_err("reader refused").kind(), ErrorKind::Locked);
        drop(exclusive);
        let none = ReadOnlyFs::open(tempfile::tempdir().expect("tempdir").path())
            .expect("open")
            .lock("LOCK")
            .expect("no lock file");
        assert!(none.is_none());
    }
}

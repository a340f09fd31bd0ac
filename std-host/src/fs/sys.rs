//! The calls that differ between platforms, each kept small enough to check by eye.
//!
//! - Positional reads: `pread` (`FileExt::read_exact_at`) on Unix, a `seek_read` loop on
//!   Windows. Neither uses a shared cursor, so concurrent reads on one handle are safe.
//! - File sync: `fdatasync` / `fsync` on Unix, `FlushFileBuffers` on Windows (both modes), and
//!   `fcntl(F_FULLFSYNC)` on Apple platforms, where `fsync` only reaches the drive's volatile
//!   cache.
//! - Directory sync: `fsync` on the directory on Unix; nothing on Windows (see
//!   [`sync_dir`]).
//! - Positional writes: `pwrite` (`FileExt::write_all_at`) on Unix, a `seek_write` loop on
//!   Windows.
//! - Space reservation and writable mappings of the reserved space: `fallocate` and `mmap`
//!   on Linux and Android only (see [`allocate`] and [`MappedWindow`]).

use std::fs::File;
use std::io;
use std::path::Path;

use strata_vfs::SyncMode;

/// Fills `buf` from `offset`. A range past the end of the file is an `UnexpectedEof` error.
#[cfg(unix)]
pub(super) fn read_exact_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
    // `pread` in a loop until `buf` is full; retries `EINTR`; `UnexpectedEof` on a short file.
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Fills `buf` from `offset`. A range past the end of the file is an `UnexpectedEof` error.
#[cfg(windows)]
pub(super) fn read_exact_at(file: &File, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    // `seek_read` passes the offset in an OVERLAPPED structure, so concurrent calls do not race
    // on the handle's cursor (it moves it, but nothing here reads the cursor).
    while !buf.is_empty() {
        match file.seek_read(buf, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => {
                let rest = buf;
                buf = &mut rest[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Positional reads are only wired up for Unix and Windows.
#[cfg(not(any(unix, windows)))]
pub(super) fn read_exact_at(_file: &File, _offset: u64, _buf: &mut [u8]) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "positional reads on this platform"))
}

/// Writes all of `data` at `offset`.
#[cfg(unix)]
pub(super) fn write_all_at(file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
    // `pwrite` in a loop until everything is written; retries `EINTR`.
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

/// Writes all of `data` at `offset`.
#[cfg(windows)]
pub(super) fn write_all_at(file: &File, mut offset: u64, mut data: &[u8]) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !data.is_empty() {
        match file.seek_write(data, offset) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => {
                data = &data[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Positional writes are only wired up for Unix and Windows.
#[cfg(not(any(unix, windows)))]
pub(super) fn write_all_at(_file: &File, _offset: u64, _data: &[u8]) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "positional writes on this platform"))
}

/// Makes the file's bytes (and, for [`SyncMode::All`], its metadata) durable.
pub(super) fn sync_file(file: &File, mode: SyncMode) -> io::Result<()> {
    #[cfg(target_vendor = "apple")]
    {
        // F_FULLFSYNC writes the data and metadata and flushes the drive cache; there is no
        // cheaper call that is durable, so both modes use it.
        let _ = mode;
        full_fsync(file)
    }
    #[cfg(not(target_vendor = "apple"))]
    match mode {
        SyncMode::Data => file.sync_data(),
        SyncMode::All => file.sync_all(),
    }
}

/// Makes the file `len` bytes long with its blocks allocated, zero-filled past its data
/// (`fallocate` with mode 0; see `AppendWrite::reserve`). Never shrinks the file.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn allocate(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    loop {
        // SAFETY: `fallocate` takes a file descriptor and two integers and touches no memory
        // of ours; the descriptor is open for writing for the duration of the call.
        if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Space reservation is only wired up for Linux; elsewhere appends extend the file as before.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn allocate(_file: &File, _len: u64) -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "fallocate on this platform"))
}

/// A shared, writable mapping of part of a file: bytes copied into it are in the kernel's page
/// cache at once, as after a `write`, without a system call.
///
/// Why: a one-key commit of `Eventual` durability must reach the operating system before it is
/// acknowledged (so that it survives a process crash), and a `write` of its 150 bytes was 45%
/// of such a commit (ext4's per-call path: `generic_perform_write`, `ext4_da_write_begin`).
/// A store into a `MAP_SHARED` mapping lands in the same page cache; a process crash leaves
/// the dirty pages to the kernel, which writes them back. `fdatasync` on the descriptor
/// writes pages dirtied through a mapping as it writes those dirtied by `write` (Linux keeps
/// one page cache; `msync(MS_SYNC)` is the same `vfs_fsync_range` call), so syncs are
/// unchanged.
///
/// Only space that [`allocate`] reserved is mapped: its blocks are allocated, so a store never
/// needs space the filesystem does not have (a mapping cannot report `ENOSPC`; a store past
/// the file's end would raise `SIGBUS`). The owner never stores past [`end`](Self::end).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) struct MappedWindow {
    ptr: std::ptr::NonNull<u8>,
    /// File offset of the first mapped byte (a multiple of the page size).
    start: u64,
    /// Mapped bytes.
    len: usize,
}

// SAFETY: the mapping is private to its one owner (an append handle, itself `Send` and not
// shared); nothing else in the process holds the pointer.
#[cfg(any(target_os = "linux", target_os = "android"))]
unsafe impl Send for MappedWindow {}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl MappedWindow {
    /// Maps `[from rounded down to a page, end)` of `file`, which must be open for reading and
    /// writing and at least `end` bytes long with that space allocated (see [`allocate`]).
    pub(super) fn map(file: &File, from: u64, end: u64) -> io::Result<Self> {
        use std::os::fd::AsRawFd;
        // SAFETY: `sysconf` reads a constant of the running system.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = u64::try_from(page)
            .ok()
            .filter(|p| p.is_power_of_two())
            .ok_or_else(|| io::Error::new(io::ErrorKind::Unsupported, "no usable page size"))?;
        let start = from & !(page - 1);
        let len = end
            .checked_sub(start)
            .filter(|&l| l > 0)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let offset = libc::off_t::try_from(start)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: a fresh mapping at an address the kernel picks, of a descriptor that is open
        // for the duration of the call; it aliases no memory of ours. The caller guarantees
        // the file covers `[start, end)`, so every mapped page is backed by the file.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = std::ptr::NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(MappedWindow { ptr, start, len })
    }

    /// File offset one past the last mapped byte.
    pub(super) fn end(&self) -> u64 {
        self.start + self.len as u64
    }

    /// Copies `data` to file offset `offset` if the window covers all of it; `false` (nothing
    /// copied) otherwise.
    pub(super) fn write(&mut self, offset: u64, data: &[u8]) -> bool {
        let Some(at) = offset.checked_sub(self.start).and_then(|a| usize::try_from(a).ok()) else {
            return false;
        };
        if at.checked_add(data.len()).is_none_or(|e| e > self.len) {
            return false;
        }
        // SAFETY: `[at, at + data.len())` lies inside the mapping (checked above), which is
        // live until `drop` and written only through `&mut self`; `data` is a separate
        // borrow, so the ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(at), data.len())
        };
        true
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
impl Drop for MappedWindow {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `map` made; no reference into it outlives
        // `self`. Dirty pages stay in the page cache and are written back as usual.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Makes the directory's entries (creates, renames, removes) durable.
#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    let handle = File::open(dir)?;
    #[cfg(target_vendor = "apple")]
    let result = full_fsync(&handle);
    #[cfg(not(target_vendor = "apple"))]
    let result = handle.sync_all();
    match result {
        // A few filesystems (some network and FUSE ones) cannot fsync a directory and say
        // EINVAL; there is nothing more to do there (PostgreSQL and SQLite do the same).
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        other => other,
    }
}

/// A no-op off Unix. On Windows, NTFS journals its metadata, so a completed create, rename or
/// delete survives a power cut without a separate flush (and a directory cannot be opened for
/// `FlushFileBuffers` without extra privileges anyway).
#[cfg(not(unix))]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    let _ = dir;
    Ok(())
}

/// `fcntl(fd, F_FULLFSYNC)`, falling back to a plain `fsync` where the filesystem does not
/// support it (`ENOTSUP`, `EINVAL`). `std`'s `sync_all` and `sync_data` already issue
/// F_FULLFSYNC on Apple targets but return its error as is, so the fallback must call `fsync`
/// itself rather than `sync_all`.
#[cfg(target_vendor = "apple")]
fn full_fsync(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    loop {
        // SAFETY: `fd` is an open descriptor owned by `file`, which outlives the call;
        // F_FULLFSYNC takes no third argument and touches no memory of ours.
        if unsafe { libc::fcntl(fd, libc::F_FULLFSYNC) } != -1 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ENOTSUP | libc::EOPNOTSUPP | libc::EINVAL) => break,
            _ => return Err(err),
        }
    }
    loop {
        // SAFETY: as above; `fsync` only takes the descriptor.
        if unsafe { libc::fsync(fd) } == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

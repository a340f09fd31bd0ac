//! The calls that differ between platforms, each kept small enough to check by eye.
//!
//! - Positional reads: `pread` (`FileExt::read_exact_at`) on Unix, a `seek_read` loop on
//!   Windows. Neither uses a shared cursor, so concurrent reads on one handle are safe.
//! - File sync: `fdatasync` / `fsync` on Unix, `FlushFileBuffers` on Windows (both modes), and
//!   `fcntl(F_FULLFSYNC)` on Apple platforms, where `fsync` only reaches the drive's volatile
//!   cache.
//! - Directory sync: `fsync` on the directory on Unix; nothing on Windows (see
//!   [`sync_dir`]).

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

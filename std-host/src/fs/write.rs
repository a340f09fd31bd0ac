//! [`StdWriteFile`]: appends to a real file, buffered or through a mapping of reserved
//! space, with a sticky failure state.
//!
//! Small appends (WAL records) collect in a 64 KiB buffer so each costs a `memcpy`, not a
//! system call; larger ones go straight to the file after the buffer is flushed. Where the
//! writer has reserved space ([`AppendWrite::reserve`], the log does) and the platform can
//! map it (Linux), short appends are copied into a shared mapping of that space instead: in the
//! page cache at once, so a `flush` has nothing left to do (see `sys::MappedWindow` for why
//! and what it relies on). Once any write or sync fails, the handle refuses every later call:
//! a failed `fsync` may have dropped dirty pages (Linux marks them clean and reports the
//! error once), so a later "successful" sync would be a lie.

use std::fmt;
use std::fs::File;
use std::io;

use strata_vfs::{AppendWrite, Error, ErrorKind, Result, SyncMode};

use super::io_error::map_io;
use super::sys;

/// Size of the append buffer. Appends at least this large bypass it.
const BUF_CAP: usize = 64 * 1024;

/// Appends shorter than this go through the mapping of reserved space, longer ones through
/// the buffer and `pwrite`. The first store to each mapped page traps into the kernel
/// (`page_mkwrite`: about 3 us a page on ext4 here, measured with `MADV_POPULATE_WRITE` over
/// whole windows), which `pwrite` does more cheaply inside one call: 1,000-key commits (120
/// KB each) ran 13-21% slower when copied into the mapping, one-key commits (150 bytes, 27 to
/// a page) twice as fast.
const MAPPED_APPEND_MAX: usize = 4096;

/// Note on the error every call returns after an earlier write or sync failed.
const FAILED_NOTE: &str = "write handle failed earlier; its unsynced bytes cannot be relied upon";

/// A file created by [`StdFs::create`](strata_vfs::Vfs::create), append-only.
///
/// `Send`, not meant to be shared: one writer owns it. Dropping it flushes the buffer (ignoring
/// errors) but does not sync: call [`sync`](AppendWrite::sync) for durability.
pub struct StdWriteFile {
    inner: Appender<FileSink>,
}

impl StdWriteFile {
    /// `file` must be open for reading and writing (a shared writable mapping needs both)
    /// with its cursor unused: every write names its offset.
    pub(super) fn new(file: File) -> Self {
        StdWriteFile { inner: Appender::new(FileSink::new(file)) }
    }
}

impl fmt::Debug for StdWriteFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdWriteFile")
            .field("file", &self.inner.sink.file)
            .field("mapped_to", &self.inner.sink.mapped_end())
            .field("len", &self.inner.len)
            .field("buffered", &self.inner.buf.len())
            .field("failed", &self.inner.failed)
            .finish()
    }
}

impl AppendWrite for StdWriteFile {
    /// Appends `data`: if it is short and fits in reserved, mapped space, into that (in the
    /// operating system at once, like a [`flush`](AppendWrite::flush)ed byte), else into the in-process buffer,
    /// which survives nothing until `flush` (process crash) or [`sync`](AppendWrite::sync)
    /// (power cut). On error the handle is failed for good and every later call errors.
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.inner.append(data)
    }

    /// Writes the buffer to the operating system (`pwrite`). After `Ok` the bytes survive a
    /// process crash and are visible to readers, but not a power cut.
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    /// Flushes, then `fdatasync` ([`SyncMode::Data`]) or `fsync` ([`SyncMode::All`]);
    /// `F_FULLFSYNC` for both on Apple platforms, `FlushFileBuffers` on Windows. Both write
    /// the pages appends dirtied through the mapping too. After `Ok` every appended byte and
    /// the file length survive a power cut; the file's *name* survives only once
    /// [`StdFs::sync_dir`](strata_vfs::Vfs::sync_dir) has also returned `Ok`. On error nothing
    /// unsynced can be relied upon and the handle is failed for good.
    fn sync(&mut self, mode: SyncMode) -> Result<()> {
        self.inner.sync(mode)
    }

    /// Bytes appended so far, buffered ones included.
    fn len(&self) -> u64 {
        self.inner.len
    }

    /// On Linux, `fallocate` up to `upto` bytes (the file's size becomes `upto`, zero-filled
    /// after the written bytes), so that syncs of later appends need not record a size
    /// change: measured on ext4 here, 3.8-4.6 k to 5.4-6.0 k `write` + `fdatasync` pairs a
    /// second (`FALLOC_FL_KEEP_SIZE`, which leaves the size alone, gained nothing); then maps
    /// the reserved space, from the page holding the end of the data, so that appends into it
    /// cost no system call. Best effort: if the filesystem refuses to allocate, the handle
    /// stops reserving and appends as before; if it cannot map, appends go through the buffer.
    fn reserve(&mut self, upto: u64) -> Result<()> {
        self.inner.reserve(upto);
        Ok(())
    }
}

/// Where an [`Appender`] sends its bytes: a [`FileSink`], or a scripted double in tests.
trait Sink {
    /// Writes all of `data` at file offset `offset`.
    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    fn sync(&mut self, mode: SyncMode) -> io::Result<()>;
    /// Makes the file `len` bytes long, allocated and zero-filled past its data (which ends
    /// at `data_len`), and maps `[data_len, len)` for [`write_mapped`](Self::write_mapped)
    /// where it can, replacing any earlier mapping. `Err` only if the allocation failed.
    fn allocate(&mut self, data_len: u64, len: u64) -> io::Result<()>;
    /// Copies `data` to `offset` through the mapping if it covers all of it; `false` (nothing
    /// written) otherwise. Cannot fail: the mapped space is allocated.
    fn write_mapped(&mut self, offset: u64, data: &[u8]) -> bool;
}

/// The real file, and the mapping of its reserved space, if any.
struct FileSink {
    file: File,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    window: Option<sys::MappedWindow>,
}

impl FileSink {
    fn new(file: File) -> Self {
        FileSink {
            file,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            window: None,
        }
    }

    /// File offset where the mapping ends (`None`: nothing mapped).
    fn mapped_end(&self) -> Option<u64> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return self.window.as_ref().map(sys::MappedWindow::end);
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        None
    }
}

impl Sink for FileSink {
    fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        sys::write_all_at(&self.file, offset, data)
    }

    fn sync(&mut self, mode: SyncMode) -> io::Result<()> {
        sys::sync_file(&self.file, mode)
    }

    fn allocate(&mut self, data_len: u64, len: u64) -> io::Result<()> {
        sys::allocate(&self.file, len)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // One mapping per handle: the old one goes first. A refused mapping is not an
            // error; appends then take the buffered path.
            self.window = None;
            self.window = sys::MappedWindow::map(&self.file, data_len, len).ok();
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let _ = data_len;
        Ok(())
    }

    fn write_mapped(&mut self, offset: u64, data: &[u8]) -> bool {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return self.window.as_mut().is_some_and(|w| w.write(offset, data));
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = (offset, data);
            false
        }
    }
}

/// The buffering and failure logic of [`StdWriteFile`], independent of the real file.
struct Appender<S: Sink> {
    sink: S,
    /// Bytes appended but not yet handed to `sink`. Allocated on first use.
    buf: Vec<u8>,
    /// Bytes appended so far, buffered ones included.
    len: u64,
    /// An earlier write or sync failed: refuse everything.
    failed: bool,
    /// File size reserved by [`reserve`](Self::reserve) (0: none).
    reserved: u64,
    /// A reservation failed (or the platform has none): stop trying.
    no_reserve: bool,
    /// The file was synced since its reserved space was last mapped: appends skip the mapping
    /// until the next reservation maps a fresh window. A store into a page that a sync wrote
    /// back faults, and the fault waits on the filesystem's journal while a sync commits it:
    /// 64 committers syncing their group commits ran at 0.75x through the mapping, one synced
    /// committer at 0.9x; `pwrite` does not wait there.
    synced_since_map: bool,
}

impl<S: Sink> Appender<S> {
    fn new(sink: S) -> Self {
        Appender {
            sink,
            buf: Vec::new(),
            len: 0,
            failed: false,
            reserved: 0,
            no_reserve: false,
            synced_since_map: false,
        }
    }

    fn check(&self) -> Result<()> {
        if self.failed { Err(Error::new(ErrorKind::Other, FAILED_NOTE)) } else { Ok(()) }
    }

    /// Marks the handle failed and wraps the error.
    fn fail(&mut self, op: &'static str, err: io::Error) -> Error {
        self.failed = true;
        map_io(op, err)
    }

    /// Writes `data` at the end of what the sink holds (the buffer must be empty).
    fn write_through(&mut self, op: &'static str, data: &[u8]) -> Result<()> {
        self.sink.write_all_at(self.len, data).map_err(|e| self.fail(op, e))
    }

    fn flush_buf(&mut self, op: &'static str) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let at = self.len - self.buf.len() as u64;
        let result = self.sink.write_all_at(at, &self.buf);
        // Cleared on failure too: the handle is dead and the bytes are never retried.
        self.buf.clear();
        result.map_err(|e| self.fail(op, e))
    }

    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.check()?;
        // Through the mapping only behind an empty buffer: a crash must never find these
        // bytes in the file while earlier ones are still in the process.
        if data.len() < MAPPED_APPEND_MAX
            && self.buf.is_empty()
            && !self.synced_since_map
            && self.sink.write_mapped(self.len, data)
        {
            self.len += data.len() as u64;
            return Ok(());
        }
        if self.buf.len() + data.len() > BUF_CAP {
            self.flush_buf("append")?;
        }
        if data.len() >= BUF_CAP {
            self.write_through("append", data)?;
        } else {
            if self.buf.capacity() == 0 {
                self.buf.reserve_exact(BUF_CAP);
            }
            self.buf.extend_from_slice(data);
        }
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.check()?;
        self.flush_buf("flush")
    }

    fn reserve(&mut self, upto: u64) {
        if self.failed || self.no_reserve || upto <= self.reserved.max(self.len) {
            return;
        }
        match self.sink.allocate(self.len, upto) {
            Ok(()) => {
                self.reserved = upto;
                self.synced_since_map = false;
            }
            Err(_) => self.no_reserve = true,
        }
    }

    fn sync(&mut self, mode: SyncMode) -> Result<()> {
        self.check()?;
        self.flush_buf("flush")?;
        let op = match mode {
            SyncMode::Data => "fdatasync",
            SyncMode::All => "fsync",
        };
        self.synced_since_map = true;
        self.sink.sync(mode).map_err(|e| self.fail(op, e))
    }
}

impl<S: Sink> Drop for Appender<S> {
    fn drop(&mut self) {
        if !self.failed {
            // Best effort, so a process crash keeps what the caller appended; errors have no
            // one to go to, and durability was never promised without `sync`.
            let _ = self.flush_buf("flush");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    /// What the scripted sink saw, shared with the test after the appender is dropped.
    #[derive(Default)]
    struct Script {
        /// The file's bytes as written at their offsets.
        written: Vec<u8>,
        writes: usize,
        syncs: usize,
        fail_write: bool,
        fail_sync: bool,
        /// Every `allocate` call's length, and whether the next one fails.
        allocations: Vec<u64>,
        fail_allocate: bool,
        /// Whether `allocate` maps the reserved space, the range mapped, and the copies made
        /// through it.
        map_on_allocate: bool,
        window: Option<(u64, u64)>,
        mapped_writes: usize,
    }

    impl Script {
        fn put(&mut self, offset: u64, data: &[u8]) {
            let at = usize::try_from(offset).expect("small offsets");
            if self.written.len() < at + data.len() {
                self.written.resize(at + data.len(), 0);
            }
            self.written[at..at + data.len()].copy_from_slice(data);
        }
    }

    #[derive(Clone, Default)]
    struct Mock(Rc<RefCell<Script>>);

    impl Sink for Mock {
        fn write_all_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
            let mut s = self.0.borrow_mut();
            if s.fail_write {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            s.writes += 1;
            s.put(offset, data);
            Ok(())
        }

        fn sync(&mut self, _mode: SyncMode) -> io::Result<()> {
            let mut s = self.0.borrow_mut();
            if s.fail_sync {
                return Err(io::Error::other("EIO"));
            }
            s.syncs += 1;
            Ok(())
        }

        fn allocate(&mut self, data_len: u64, len: u64) -> io::Result<()> {
            let mut s = self.0.borrow_mut();
            if s.fail_allocate {
                return Err(io::Error::from(io::ErrorKind::Unsupported));
            }
            s.allocations.push(len);
            if s.map_on_allocate {
                s.window = Some((data_len, len));
            }
            Ok(())
        }

        fn write_mapped(&mut self, offset: u64, data: &[u8]) -> bool {
            let mut s = self.0.borrow_mut();
            let Some((start, end)) = s.window else { return false };
            if offset < start || offset + data.len() as u64 > end {
                return false;
            }
            s.mapped_writes += 1;
            s.put(offset, data);
            true
        }
    }

    fn appender() -> (Appender<Mock>, Mock) {
        let mock = Mock::default();
        (Appender::new(mock.clone()), mock)
    }

    fn assert_sticky(a: &mut Appender<Mock>) {
        for result in [a.append(b"x"), a.append(&[0; BUF_CAP]), a.flush(), a.sync(SyncMode::All)] {
            let err = result.expect_err("failed handle must stay failed");
            assert_eq!(err.kind(), ErrorKind::Other);
            assert_eq!(err.note(), FAILED_NOTE);
        }
    }

    #[test]
    fn small_appends_are_buffered_until_flush() {
        let (mut a, mock) = appender();
        a.append(b"hello ").expect("append");
        a.append(b"world").expect("append");
        assert_eq!(a.len, 11);
        assert_eq!(mock.0.borrow().writes, 0);
        a.flush().expect("flush");
        assert_eq!(mock.0.borrow().written, b"hello world");
        assert_eq!(mock.0.borrow().writes, 1);
        a.flush().expect("empty flush");
        assert_eq!(mock.0.borrow().writes, 1, "an empty buffer costs no write");
    }

    #[test]
    fn large_append_flushes_buffer_then_bypasses_it() {
        let (mut a, mock) = appender();
        a.append(b"head").expect("append");
        let big = vec![7u8; BUF_CAP + 1];
        a.append(&big).expect("append");
        let s = mock.0.borrow();
        assert_eq!(s.writes, 2);
        assert_eq!(&s.written[..4], b"head");
        assert_eq!(&s.written[4..], &big[..]);
        assert_eq!(a.len, 4 + big.len() as u64);
        assert!(a.buf.is_empty());
    }

    #[test]
    fn buffer_overflow_flushes_in_order() {
        let (mut a, mock) = appender();
        let chunk = vec![1u8; BUF_CAP / 2 + 1];
        a.append(&chunk).expect("append");
        a.append(&chunk).expect("append");
        assert_eq!(mock.0.borrow().written.len(), chunk.len(), "first chunk flushed");
        a.sync(SyncMode::Data).expect("sync");
        let s = mock.0.borrow();
        assert_eq!(s.written.len(), 2 * chunk.len());
        assert_eq!(s.syncs, 1);
    }

    #[test]
    fn failed_write_is_sticky() {
        let (mut a, mock) = appender();
        a.append(b"abc").expect("append");
        mock.0.borrow_mut().fail_write = true;
        let err = a.flush().expect_err("write fails");
        assert_eq!(err.kind(), ErrorKind::NoSpace);
        assert_eq!(err.note(), "flush");
        mock.0.borrow_mut().fail_write = false;
        assert_sticky(&mut a);
        drop(a);
        assert_eq!(
            mock.0.borrow().writes,
            0,
            "nothing written after the failure, not even on drop"
        );
    }

    #[test]
    fn failed_append_is_sticky() {
        let (mut a, mock) = appender();
        mock.0.borrow_mut().fail_write = true;
        let err = a.append(&[0; BUF_CAP]).expect_err("write-through fails");
        assert_eq!(err.note(), "append");
        mock.0.borrow_mut().fail_write = false;
        assert_sticky(&mut a);
    }

    #[test]
    fn failed_sync_is_sticky() {
        let (mut a, mock) = appender();
        a.append(b"abc").expect("append");
        mock.0.borrow_mut().fail_sync = true;
        let err = a.sync(SyncMode::All).expect_err("sync fails");
        assert_eq!(err.kind(), ErrorKind::Other);
        assert_eq!(err.note(), "fsync");
        mock.0.borrow_mut().fail_sync = false;
        assert_sticky(&mut a);
        assert_eq!(mock.0.borrow().syncs, 0);
    }

    #[test]
    fn reserve_allocates_only_growth_and_gives_up_after_a_refusal() {
        let (mut a, mock) = appender();
        a.reserve(4096);
        a.reserve(4096);
        a.reserve(100);
        a.append(&[1; 5000]).expect("append");
        a.reserve(4096);
        a.reserve(8192);
        assert_eq!(mock.0.borrow().allocations, [4096, 8192], "only growth past the data");
        mock.0.borrow_mut().fail_allocate = true;
        a.reserve(16_384);
        mock.0.borrow_mut().fail_allocate = false;
        a.reserve(32_768);
        assert_eq!(mock.0.borrow().allocations, [4096, 8192], "no retry after a refusal");
        a.sync(SyncMode::Data).expect("a refused reservation is not a write error");
    }

    /// A new file `name` in `dir`, opened as [`StdFs::create`](strata_vfs::Vfs::create) opens
    /// it, and its path.
    #[cfg(target_os = "linux")]
    fn real_file(dir: &tempfile::TempDir, name: &str) -> (std::path::PathBuf, StdWriteFile) {
        let path = dir.path().join(name);
        let file =
            File::options().read(true).write(true).create_new(true).open(&path).expect("create");
        (path, StdWriteFile::new(file))
    }

    /// On a real file, a reservation makes the file that long, zero-filled after the data,
    /// and appends overwrite the zeros in place.
    #[cfg(target_os = "linux")]
    #[test]
    fn reserved_space_reads_as_zeros_after_the_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut w) = real_file(&dir, "reserved");
        AppendWrite::append(&mut w, b"head").expect("append");
        AppendWrite::reserve(&mut w, 65_536).expect("reserve");
        AppendWrite::append(&mut w, b"tail").expect("append");
        AppendWrite::sync(&mut w, SyncMode::Data).expect("sync");
        assert_eq!(AppendWrite::len(&w), 8);
        let bytes = std::fs::read(&path).expect("read");
        if bytes.len() == 8 {
            // The filesystem under the temporary directory cannot allocate (tmpfs can; some
            // overlay setups cannot): reservation is best effort and nothing else changed.
            assert_eq!(bytes, b"headtail");
            return;
        }
        assert_eq!(bytes.len(), 65_536);
        assert_eq!(&bytes[..8], b"headtail");
        assert!(bytes[8..].iter().all(|&b| b == 0));
    }

    #[test]
    fn appends_into_mapped_space_skip_the_buffer_but_never_overtake_it() {
        let (mut a, mock) = appender();
        mock.0.borrow_mut().map_on_allocate = true;
        a.append(b"head").expect("append");
        a.reserve(64);
        assert_eq!(mock.0.borrow().window, Some((4, 64)), "mapped from the end of the data");
        a.append(b"x").expect("append");
        assert_eq!(mock.0.borrow().mapped_writes, 0, "\"head\" is still buffered: x waits too");
        a.flush().expect("flush");
        a.append(b"yy").expect("append");
        a.flush().expect("flush");
        {
            let s = mock.0.borrow();
            assert_eq!((s.writes, s.mapped_writes), (1, 1), "y went through the mapping");
            assert_eq!(s.written, b"headxyy");
        }
        // Past the mapped space the buffer takes over again, at the right offset.
        a.append(&[9; 60]).expect("append");
        assert_eq!(mock.0.borrow().mapped_writes, 1);
        a.sync(SyncMode::Data).expect("sync");
        let s = mock.0.borrow();
        assert_eq!(s.writes, 2);
        assert_eq!(a.len, 67);
        assert_eq!(&s.written[..7], b"headxyy");
        assert_eq!(&s.written[7..], &[9; 60]);
    }

    #[test]
    fn a_sync_sends_appends_around_the_mapping_until_the_next_window() {
        let (mut a, mock) = appender();
        mock.0.borrow_mut().map_on_allocate = true;
        a.reserve(1024);
        a.append(b"one").expect("append");
        assert_eq!(mock.0.borrow().mapped_writes, 1);
        a.sync(SyncMode::Data).expect("sync");
        a.append(b"two").expect("append");
        assert_eq!(mock.0.borrow().mapped_writes, 1, "after a sync the buffer takes appends");
        a.flush().expect("flush");
        assert_eq!(mock.0.borrow().writes, 1);
        a.reserve(2048);
        a.append(b"three").expect("append");
        let s = mock.0.borrow();
        assert_eq!(s.mapped_writes, 2, "a fresh window is used again");
        assert_eq!(s.written, b"onetwothree");
    }

    /// On a real file, bytes appended into reserved space are in the operating system at once,
    /// before any flush or sync (what a process crash keeps), at their offsets.
    #[cfg(target_os = "linux")]
    #[test]
    fn mapped_appends_are_in_the_file_without_a_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, mut w) = real_file(&dir, "mapped");
        AppendWrite::append(&mut w, b"header").expect("append");
        AppendWrite::flush(&mut w).expect("flush");
        AppendWrite::reserve(&mut w, 3 * 4096).expect("reserve");
        if w.inner.sink.mapped_end().is_none() {
            // The filesystem under the temporary directory cannot allocate or map: appends
            // take the buffered path, which the tests above cover.
            return;
        }
        assert_eq!(w.inner.sink.mapped_end(), Some(3 * 4096));
        let mut expected = b"header".to_vec();
        for i in 0..100u32 {
            let record = [i.to_le_bytes().as_slice(), &[0xAB; 96]].concat();
            AppendWrite::append(&mut w, &record).expect("append");
            expected.extend_from_slice(&record);
        }
        assert!(w.inner.buf.is_empty(), "nothing waits in the process");
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(bytes.len(), 3 * 4096, "the reserved length");
        assert_eq!(&bytes[..expected.len()], &expected[..]);
        assert!(bytes[expected.len()..].iter().all(|&b| b == 0));
        AppendWrite::sync(&mut w, SyncMode::Data).expect("sync");
        assert_eq!(AppendWrite::len(&w), expected.len() as u64);
    }

    #[test]
    fn drop_flushes_buffer() {
        let (mut a, mock) = appender();
        a.append(b"tail").expect("append");
        drop(a);
        assert_eq!(mock.0.borrow().written, b"tail");
    }
}

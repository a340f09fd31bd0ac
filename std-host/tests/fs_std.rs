//! `StdFs` on real temporary directories: the VFS conformance suite plus host-specific checks.

use std::sync::Arc;

use strata::fs::{StdFs, StdLock, StdReadFile, StdWriteFile};
use strata_vfs::{AppendWrite, ErrorKind, FileKind, RandomRead, SyncMode, Vfs, conformance};
use tempfile::TempDir;

fn fresh() -> (TempDir, StdFs) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = StdFs::open_dir(tmp.path()).expect("open_dir");
    (tmp, fs)
}

fn write(fs: &StdFs, name: &str, data: &[u8]) {
    let mut w = fs.create(name, FileKind::Table).expect("create");
    w.append(data).expect("append");
    w.sync(SyncMode::Data).expect("sync");
}

#[test]
fn conformance_suite() {
    let mut dirs = Vec::new();
    conformance::run_all(|| {
        let (tmp, fs) = fresh();
        dirs.push(tmp);
        fs
    });
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<StdFs>();
    send_sync::<StdReadFile>();
    send_sync::<StdLock>();
    send::<StdWriteFile>();
}

#[test]
fn caps() {
    let (_tmp, fs) = fresh();
    let caps = fs.caps();
    assert!(caps.hard_links);
    assert_eq!(caps.dir_sync, cfg!(unix));
    assert_eq!(caps.sector_size, 4096);
}

#[test]
fn write_sync_reopen_reads_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let small: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    {
        let fs = StdFs::open_dir(tmp.path()).expect("open_dir");
        let mut w = fs.create("000001.wal", FileKind::Wal).expect("create");
        for _ in 0..100 {
            w.append(&small).expect("small append");
        }
        w.append(&big).expect("big append");
        w.append(b"tail").expect("append");
        assert_eq!(w.len(), 100 * 1000 + 200_000 + 4);
        w.sync(SyncMode::All).expect("sync");
        fs.sync_dir().expect("sync_dir");
    }
    let fs = StdFs::open_dir(tmp.path()).expect("reopen");
    assert_eq!(fs.list().expect("list"), vec!["000001.wal".to_string()]);
    let r = fs.open("000001.wal", FileKind::Wal).expect("open");
    let len = r.len().expect("len");
    assert_eq!(len, 300_004);
    assert_eq!(fs.size("000001.wal").expect("size"), len);
    let mut all = vec![0u8; len as usize];
    r.read_exact_at(0, &mut all).expect("read");
    for (i, chunk) in all[..100_000].chunks(1000).enumerate() {
        assert_eq!(chunk, &small[..], "small chunk {i}");
    }
    assert_eq!(&all[100_000..300_000], &big[..]);
    assert_eq!(&all[300_000..], b"tail");
}

#[test]
fn appends_are_buffered_until_flush_and_drop_flushes() {
    let (_tmp, fs) = fresh();
    let mut w = fs.create("a.log", FileKind::Wal).expect("create");
    w.append(b"buffered").expect("append");
    assert_eq!(w.len(), 8);
    assert_eq!(fs.size("a.log").expect("size"), 0, "small appends stay in the buffer");
    w.flush().expect("flush");
    assert_eq!(fs.size("a.log").expect("size"), 8);
    w.append(b" and dropped").expect("append");
    drop(w);
    let r = fs.open("a.log", FileKind::Wal).expect("open");
    let mut buf = vec![0u8; 20];
    r.read_exact_at(0, &mut buf).expect("read");
    assert_eq!(&buf, b"buffered and dropped");
}

#[test]
fn read_past_eof_is_unexpected_eof() {
    let (_tmp, fs) = fresh();
    write(&fs, "f.sst", b"0123456789");
    let r = fs.open("f.sst", FileKind::Table).expect("open");
    let mut buf = [0u8; 4];
    for offset in [7, 10, 11, 1 << 40] {
        let err = r.read_exact_at(offset, &mut buf).expect_err("past eof");
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "offset {offset}: {err}");
        assert_eq!(err.note(), "pread");
    }
    r.read_exact_at(6, &mut buf).expect("read ending at eof");
    assert_eq!(&buf, b"6789");
}

#[test]
fn lock_excludes_other_handles_until_dropped() {
    let (tmp, fs) = fresh();
    let other = StdFs::open_dir(tmp.path()).expect("second StdFs on the same dir");
    let held = fs.lock("LOCK").expect("first lock");
    for attempt in [fs.lock("LOCK"), other.lock("LOCK")] {
        let err = attempt.expect_err("second lock must fail");
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert_eq!(err.note(), "database directory is locked by another process or handle");
    }
    drop(held);
    let again = other.lock("LOCK").expect("lock after release");
    assert_eq!(fs.lock("LOCK").expect_err("held again").kind(), ErrorKind::Locked);
    drop(again);
    drop(fs.lock("LOCK").expect("lock after second release"));
}

#[test]
fn invalid_names_are_rejected() {
    let (_tmp, fs) = fresh();
    write(&fs, "ok", b"x");
    let bad = ["", ".", "..", "a/b", "/etc/passwd", "../escape", "a\\b", "..\\x", "nul\0byte"];
    for name in bad {
        let results = [
            fs.create(name, FileKind::Temp).map(drop),
            fs.open(name, FileKind::Table).map(drop),
            fs.remove(name),
            fs.rename("ok", name),
            fs.rename(name, "ok"),
            fs.size(name).map(drop),
            fs.exists(name).map(drop),
            fs.lock(name).map(drop),
            fs.link("ok", name),
            fs.link(name, "ok2"),
        ];
        for (i, result) in results.into_iter().enumerate() {
            let err = result.expect_err("invalid name accepted");
            assert_eq!(err.kind(), ErrorKind::Other, "{name:?} call {i}");
            assert_eq!(err.note(), "invalid file name", "{name:?} call {i}");
        }
    }
    assert_eq!(fs.list().expect("list"), vec!["ok".to_string()]);
}

#[test]
fn io_errors_map_to_kinds_with_notes() {
    let (_tmp, fs) = fresh();
    write(&fs, "x", b"1");
    let err = fs.create("x", FileKind::Table).expect_err("exists");
    assert_eq!((err.kind(), err.note()), (ErrorKind::AlreadyExists, "create"));
    assert!(std::error::Error::source(&err).is_some(), "io error kept as source");
    let err = fs.open("missing", FileKind::Table).expect_err("missing");
    assert_eq!((err.kind(), err.note()), (ErrorKind::NotFound, "open"));
    let err = fs.rename("missing", "y").expect_err("missing");
    assert_eq!((err.kind(), err.note()), (ErrorKind::NotFound, "rename"));
    let err = fs.link("x", "x").expect_err("link onto existing");
    assert_eq!((err.kind(), err.note()), (ErrorKind::AlreadyExists, "link"));
}

#[test]
fn open_dir_creates_nested_directories() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let nested = tmp.path().join("a").join("b").join("db");
    let fs = StdFs::open_dir(&nested).expect("open_dir");
    assert_eq!(fs.path(), nested.as_path());
    assert!(nested.is_dir());
    write(&fs, "f", b"data");
    assert!(nested.join("f").is_file());
    StdFs::open_dir(&nested).expect("open existing dir");
}

#[test]
fn open_dir_on_a_file_fails() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("plain");
    std::fs::write(&file, b"x").expect("write");
    assert!(StdFs::open_dir(&file).is_err());
    assert!(StdFs::open_dir("").is_err());
}

#[test]
fn list_skips_subdirectories() {
    let (tmp, fs) = fresh();
    std::fs::create_dir(tmp.path().join("subdir")).expect("mkdir");
    write(&fs, "000001.sst", b"t");
    assert_eq!(fs.list().expect("list"), vec!["000001.sst".to_string()]);
}

#[test]
fn concurrent_reads_on_one_handle() {
    let (_tmp, fs) = fresh();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 241) as u8).collect();
    write(&fs, "shared.sst", &data);
    let r = Arc::new(fs.open("shared.sst", FileKind::Table).expect("open"));
    let data = Arc::new(data);
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (r, data) = (Arc::clone(&r), Arc::clone(&data));
            std::thread::spawn(move || {
                for k in 0..200u64 {
                    let off = ((t * 7919 + k * 104_729) % 90_000) as usize;
                    let mut buf = [0u8; 1000];
                    r.read_exact_at(off as u64, &mut buf).expect("read");
                    assert_eq!(&buf[..], &data[off..off + 1000]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("reader thread");
    }
}

#[test]
fn clone_shares_the_directory() {
    let (_tmp, fs) = fresh();
    let clone = fs.clone();
    write(&fs, "f", b"abc");
    assert_eq!(clone.size("f").expect("size"), 3);
    clone.remove("f").expect("remove");
    assert!(!fs.exists("f").expect("exists"));
}

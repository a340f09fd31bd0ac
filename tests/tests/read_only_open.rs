//! `TreeBuilder::build_read_only`: an existing database opened without changing a byte on
//! disk. Recovery runs (writes left in the WAL are visible), every write-side call is
//! refused, nothing is created for a missing database, and the shared lock keeps readers and
//! writers apart while letting readers share.

use std::collections::BTreeMap;
use std::path::Path;

use strata::{Error, Mode, TreeBuilder};

fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            (e.file_name().into_string().expect("utf-8"), std::fs::read(e.path()).expect("read"))
        })
        .collect()
}

fn builder(dir: &Path) -> TreeBuilder {
    TreeBuilder::new()
        .with_path(dir.to_path_buf())
        .with_enable_vlog(true)
        .with_vlog_value_threshold(64)
}

/// Tables, value log and WAL-only writes, closed.
fn fill(dir: &Path) {
    let tree = builder(dir).build().expect("open");
    for i in 0..100u32 {
        let mut t = tree.begin().expect("begin");
        t.set(format!("k{i:03}").as_bytes(), &[i as u8; 100]).expect("set");
        t.commit_blocking().expect("commit");
    }
    tree.flush().expect("flush");
    let mut t = tree.begin().expect("begin");
    t.set(b"wal-only", b"yes").expect("set");
    t.commit_blocking().expect("commit");
    tree.close().expect("close");
}

fn is_read_only_error(e: &Error) -> bool {
    matches!(e, Error::InvalidArgument { what: "database", .. })
}

#[test]
fn reads_everything_refuses_writes_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    fill(&dir);
    let before = contents(&dir);
    let tree = builder(&dir).build_read_only().expect("read-only open");
    assert!(tree.is_read_only());
    let t = tree.begin_with_mode(Mode::ReadOnly).expect("read-only transaction");
    assert_eq!(t.get(b"wal-only").expect("get").as_deref(), Some(&b"yes"[..]));
    assert_eq!(t.get(b"k042").expect("get").as_deref(), Some(&[42u8; 100][..]));
    assert_eq!(t.range(b"", b"\xff", None).expect("range").count(), 101);
    assert!(is_read_only_error(&tree.begin().expect_err("read-write refused")));
    assert!(is_read_only_error(&tree.begin_with_mode(Mode::WriteOnly).expect_err("refused")));
    assert!(is_read_only_error(&tree.flush().expect_err("flush refused")));
    assert!(is_read_only_error(&tree.maintenance_step(10).expect_err("refused")));
    assert!(is_read_only_error(&tree.run_vlog_gc().expect_err("gc refused")));
    assert!(is_read_only_error(&tree.restore_from_checkpoint(&dir).expect_err("refused")));

    // A checkpoint is a read: it holds the WAL-only write, flushed in memory.
    let cp = tmp.path().join("cp");
    tree.create_checkpoint(&cp).expect("checkpoint");
    drop(t);
    tree.close().expect("close");
    assert_eq!(contents(&dir), before, "the read-only open changed the directory");
    let copy = builder(&cp).build_read_only().expect("open checkpoint");
    let t = copy.begin_with_mode(Mode::ReadOnly).expect("begin");
    assert_eq!(t.get(b"wal-only").expect("get").as_deref(), Some(&b"yes"[..]));
}

#[test]
fn a_missing_or_empty_directory_is_an_error_and_stays_as_it_was() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let missing = tmp.path().join("missing");
    let e = builder(&missing).build_read_only().expect_err("missing");
    assert!(
        matches!(&e, Error::Io { source, .. } if source.kind() == strata_vfs::ErrorKind::NotFound),
        "{e}"
    );
    assert!(!missing.exists());
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let e = builder(&empty).build_read_only().expect_err("empty");
    assert!(e.to_string().contains("no database"), "{e}");
    assert!(contents(&empty).is_empty());
    let e =
        TreeBuilder::new().with_vfs(strata_vfs::MemFs::new()).build_read_only().expect_err("vfs");
    assert!(matches!(e, Error::InvalidArgument { what: "path", .. }), "{e}");
}

#[test]
fn readers_share_the_database_and_exclude_writers_both_ways() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    fill(&dir);
    let first = builder(&dir).build_read_only().expect("first reader");
    let second = builder(&dir).build_read_only().expect("readers share");
    assert!(matches!(builder(&dir).build().expect_err("writer refused"), Error::Locked));
    drop((first, second));
    let writer = builder(&dir).build().expect("writer");
    assert!(matches!(builder(&dir).build_read_only().expect_err("reader refused"), Error::Locked));
    drop(writer);
    builder(&dir).build_read_only().expect("reader after the writer closed");
}

//! Unit tests of MemFs internals (inode lifetime, the pending log, name validation). The
//! behavioural crash tests live in `vfs/tests/crash.rs`.

use alloc::format;
use alloc::vec::Vec;

use super::state::{DirOp, validate_name};
use super::*;
use crate::{AppendWrite, RandomRead, SyncMode};

fn inode_count(fs: &MemFs) -> usize {
    fs.lock_state().inodes.len()
}

fn pending_len(fs: &MemFs) -> usize {
    fs.lock_state().pending.len()
}

#[test]
fn names_are_validated() {
    for bad in ["", ".", "..", "a/b", "/", "a\\b", "nul\0"] {
        let err = validate_name(bad).expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::Other);
        assert_eq!(err.note(), "invalid file name");
    }
    for good in ["CURRENT", "000001.wal", ".hidden", "a..b", "LOCK"] {
        assert!(validate_name(good).is_ok(), "{good}");
    }
    let fs = MemFs::new();
    let kinds: Vec<ErrorKind> = [
        fs.create("a/b", FileKind::Wal).map(drop),
        fs.open("..", FileKind::Wal).map(drop),
        fs.remove(""),
        fs.rename("ok", "x\\y"),
        fs.size(".").map(drop),
        fs.lock("").map(drop),
        fs.link("ok", "/"),
        fs.read_all("a/b").map(drop),
        fs.write_whole("", b""),
    ]
    .into_iter()
    .map(|r| r.expect_err("invalid name accepted").kind())
    .collect();
    assert!(kinds.iter().all(|&k| k == ErrorKind::Other), "{kinds:?}");
}

#[test]
fn directory_ops_are_logged_until_sync_dir() {
    let fs = MemFs::new();
    let w = fs.create("a", FileKind::Wal).expect("create");
    fs.rename("a", "b").expect("rename");
    fs.link("b", "c").expect("link");
    fs.remove("b").expect("remove");
    fs.rename("c", "c").expect("self-rename is a no-op");
    {
        let st = fs.lock_state();
        assert_eq!(st.pending.len(), 4);
        assert!(matches!(st.pending[0], DirOp::Create { .. }));
        assert!(matches!(st.pending[1], DirOp::Rename { .. }));
        assert!(matches!(st.pending[2], DirOp::Link { .. }));
        assert!(matches!(st.pending[3], DirOp::Remove { .. }));
        assert!(st.durable.is_empty());
        assert_eq!(st.live.keys().collect::<Vec<_>>(), ["c"]);
    }
    fs.sync_dir().expect("sync_dir");
    assert_eq!(pending_len(&fs), 0);
    assert_eq!(fs.lock_state().durable.keys().collect::<Vec<_>>(), ["c"]);
    drop(w);
}

#[test]
fn inodes_live_while_reachable() {
    let fs = MemFs::new();
    let mut w = fs.create("a", FileKind::Table).expect("create");
    w.append(b"data").expect("append");
    drop(w);
    fs.sync_dir().expect("sync_dir");
    assert_eq!(inode_count(&fs), 1);

    // Removed but not durable: the durable directory still needs the inode.
    let r = fs.open("a", FileKind::Table).expect("open");
    fs.remove("a").expect("remove");
    drop(r);
    assert_eq!(inode_count(&fs), 1);

    // Removal durable, but a handle is open: kept until the handle goes.
    let r = {
        fs.write_whole("b", b"bbb").expect("write_whole");
        fs.open("b", FileKind::Table).expect("open b")
    };
    fs.remove("b").expect("remove b");
    fs.sync_dir().expect("sync_dir");
    assert_eq!(inode_count(&fs), 1, "a is gone, b is held by its handle");
    let mut buf = [0u8; 3];
    r.read_exact_at(0, &mut buf).expect("read removed");
    assert_eq!(&buf, b"bbb");
    drop(r);
    assert_eq!(inode_count(&fs), 0);

    // A created-and-removed file stays reachable through the pending log until sync_dir.
    let w = fs.create("t", FileKind::Temp).expect("create t");
    fs.remove("t").expect("remove t");
    drop(w);
    assert_eq!(inode_count(&fs), 1);
    fs.sync_dir().expect("sync_dir");
    assert_eq!(inode_count(&fs), 0);
}

#[test]
fn write_whole_commits_the_directory() {
    let fs = MemFs::new();
    drop(fs.create("pending", FileKind::Temp).expect("create"));
    fs.write_whole("CURRENT", b"MANIFEST-000002\n").expect("write_whole");
    assert_eq!(pending_len(&fs), 0);
    assert_eq!(fs.sync_count(), 0, "write_whole is not a counted sync");
    let image = fs.crash(CrashPolicy::DropUnsynced, 0);
    assert_eq!(image.read_all("CURRENT").expect("read"), b"MANIFEST-000002\n");
    assert!(image.exists("pending").expect("exists"));
}

#[test]
fn sync_and_flush_bookkeeping() {
    let fs = MemFs::with_sector_size(0);
    assert_eq!(fs.sector_size(), 1, "0 is taken as 1");
    let mut w = fs.create("a", FileKind::Wal).expect("create");
    w.append(b"abc").expect("append");
    w.flush().expect("flush");
    assert_eq!(fs.lock_state().inodes.values().map(|i| i.synced_len).sum::<usize>(), 0);
    w.sync(SyncMode::Data).expect("sync");
    assert_eq!(fs.lock_state().inodes.values().map(|i| i.synced_len).sum::<usize>(), 3);
    assert_eq!(fs.sync_count(), 1);
    fs.sync_dir().expect("sync_dir");
    assert_eq!(fs.sync_count(), 2);
}

#[test]
fn debug_output_is_short() {
    let fs = MemFs::new();
    fs.write_whole("a", b"1").expect("write");
    fs.write_whole("b", b"2").expect("write");
    let text = format!("{fs:?}");
    assert!(text.contains("files: 2"), "{text}");
    let r = fs.open("a", FileKind::Table).expect("open");
    assert!(format!("{r:?}").starts_with("MemFile"));
    let l = fs.lock("LOCK").expect("lock");
    assert!(format!("{l:?}").contains("LOCK"));
}

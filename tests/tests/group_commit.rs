//! Group commit on a real directory: a lone `Immediate` committer (which commits on its own
//! thread, skipping the commit thread) gets one group and one WAL sync per commit, while
//! concurrent `Immediate` committers still share syncs (the commit thread groups what queues
//! up while a sync runs). Both the blocking and the async commit call are covered, and every
//! acknowledged commit is read back after a reopen.

use std::sync::Arc;

use strata::{Durability, Tree, TreeBuilder};

fn open(dir: &std::path::Path) -> Tree {
    TreeBuilder::new().with_path(dir.to_path_buf()).build().expect("open")
}

fn key(writer: usize, i: usize) -> Vec<u8> {
    format!("w{writer:02}-{i:04}").into_bytes()
}

#[test]
fn a_lone_immediate_committer_syncs_once_per_commit_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = open(dir.path());
    let before = tree.stats();
    for i in 0..200 {
        let mut t = tree.begin().expect("begin");
        t.set_durability(Durability::Immediate);
        t.set(&key(0, i), b"v").expect("set");
        t.commit_blocking().expect("commit");
    }
    let s = tree.stats();
    assert_eq!(s.commits - before.commits, 200);
    assert_eq!(s.commit_groups - before.commit_groups, 200, "one group per commit: {s:?}");
    assert!(s.wal_syncs - before.wal_syncs >= 200, "every commit synced: {s:?}");
    tree.close().expect("close");
    let tree = open(dir.path());
    let t = tree.begin().expect("begin");
    for i in 0..200 {
        assert!(t.get(&key(0, i)).expect("get").is_some(), "commit {i} lost");
    }
}

#[test]
fn concurrent_immediate_committers_share_syncs() {
    const WRITERS: usize = 16;
    const EACH: usize = 60;
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = open(dir.path());
    let before = tree.stats();
    let barrier = Arc::new(std::sync::Barrier::new(WRITERS));
    let threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let tree = tree.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                // One runtime per writer for its async commits (any executor will do).
                let runtime =
                    tokio::runtime::Builder::new_current_thread().build().expect("runtime");
                barrier.wait();
                for i in 0..EACH {
                    let mut t = tree.begin().expect("begin");
                    t.set_durability(Durability::Immediate);
                    t.set(&key(w, i), b"v").expect("set");
                    if w % 2 == 0 {
                        t.commit_blocking().expect("commit");
                    } else {
                        runtime.block_on(t.commit()).expect("commit");
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let s = tree.stats();
    let commits = s.commits - before.commits;
    assert_eq!(commits, (WRITERS * EACH) as u64);
    // 16 writers each waiting for its sync: while one sync runs the others queue, so groups
    // (and syncs) are fewer than commits.
    let groups = s.commit_groups - before.commit_groups;
    assert!(groups < commits, "no commit was grouped: {groups} groups for {commits} commits");
    tree.close().expect("close");
    let tree = open(dir.path());
    let t = tree.begin().expect("begin");
    for w in 0..WRITERS {
        for i in 0..EACH {
            assert!(t.get(&key(w, i)).expect("get").is_some(), "writer {w} commit {i} lost");
        }
    }
}

//! The user-facing contract: modes, misuse, limits, option validation, range edge cases,
//! lifecycle. Each test states the behaviour it pins down.

use strata::{Durability, Error, MAX_KEY_SIZE, Mode, ReadOptions, TreeBuilder};
use strata_vfs::MemFs;

fn tree() -> (MemFs, strata::Tree) {
    let fs = MemFs::new();
    let tree = TreeBuilder::new().with_vfs(fs.clone()).build().expect("opens");
    (fs, tree)
}

fn put(tree: &strata::Tree, pairs: &[(&str, &str)]) {
    let mut txn = tree.begin().expect("begin");
    for (k, v) in pairs {
        txn.set(k.as_bytes(), v.as_bytes()).expect("set");
    }
    txn.commit_blocking().expect("commit");
}

fn keys(it: impl Iterator<Item = strata::Result<(strata::Bytes, strata::Bytes)>>) -> Vec<String> {
    it.map(|r| String::from_utf8(r.expect("read").0.to_vec()).expect("utf8")).collect()
}

#[test]
fn read_only_refuses_writes_and_write_only_refuses_reads() {
    let (_fs, tree) = tree();
    put(&tree, &[("a", "1")]);
    let mut ro = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
    assert!(matches!(ro.set(b"a", b"2"), Err(Error::TransactionReadOnly)));
    assert!(matches!(ro.delete(b"a"), Err(Error::TransactionReadOnly)));
    assert_eq!(ro.get(b"a").expect("read").as_deref(), Some(&b"1"[..]));
    ro.commit_blocking().expect("a read-only commit is a no-op");

    let mut wo = tree.begin_with_mode(Mode::WriteOnly).expect("begin");
    assert!(matches!(wo.get(b"a"), Err(Error::TransactionWriteOnly)));
    assert!(matches!(wo.range(b"a", b"z", None), Err(Error::TransactionWriteOnly)));
    assert!(matches!(wo.keys(b"a", b"z", None), Err(Error::TransactionWriteOnly)));
    wo.set(b"b", b"2").expect("write-only writes");
    wo.commit_blocking().expect("commit");
    let check = tree.begin().expect("begin");
    assert_eq!(check.get(b"b").expect("read").as_deref(), Some(&b"2"[..]));
}

#[test]
fn a_finished_transaction_refuses_every_call() {
    let (_fs, tree) = tree();
    let mut txn = tree.begin().expect("begin");
    txn.set(b"k", b"v").expect("set");
    txn.commit_blocking().expect("commit");
    assert!(matches!(txn.set(b"k", b"w"), Err(Error::TransactionClosed)));
    assert!(matches!(txn.get(b"k"), Err(Error::TransactionClosed)));
    assert!(matches!(txn.commit_blocking(), Err(Error::TransactionClosed)));
    assert!(matches!(txn.rollback(), Err(Error::TransactionClosed)));

    let mut txn = tree.begin().expect("begin");
    txn.set(b"k", b"rolled back").expect("set");
    txn.rollback().expect("rollback");
    assert!(matches!(txn.range(b"a", b"z", None), Err(Error::TransactionClosed)));
    let check = tree.begin().expect("begin");
    assert_eq!(check.get(b"k").expect("read").as_deref(), Some(&b"v"[..]));
}

#[test]
fn dropping_an_uncommitted_transaction_writes_nothing() {
    let (_fs, tree) = tree();
    {
        let mut txn = tree.begin().expect("begin");
        txn.set(b"ghost", b"boo").expect("set");
    }
    assert_eq!(tree.begin().expect("begin").get(b"ghost").expect("read"), None);
}

#[test]
fn key_and_value_limits_are_enforced_with_clear_errors() {
    let (_fs, tree) = tree();
    let mut txn = tree.begin().expect("begin");
    let big_key = vec![7u8; MAX_KEY_SIZE + 1];
    match txn.set(&big_key, b"v") {
        Err(Error::KeyTooLarge { len, max }) => {
            assert_eq!((len, max), (MAX_KEY_SIZE + 1, MAX_KEY_SIZE))
        }
        other => panic!("expected KeyTooLarge, got {other:?}"),
    }
    assert!(matches!(txn.get(&big_key), Err(Error::KeyTooLarge { .. })));
    assert!(matches!(txn.delete(&big_key), Err(Error::KeyTooLarge { .. })));
    let max_key = vec![7u8; MAX_KEY_SIZE];
    txn.set(&max_key, b"fits").expect("a key of exactly the maximum is accepted");
    txn.set(b"", b"empty keys are keys").expect("empty key");
    txn.commit_blocking().expect("commit");
    let check = tree.begin().expect("begin");
    assert_eq!(check.get(&max_key).expect("read").as_deref(), Some(&b"fits"[..]));
    assert_eq!(check.get(b"").expect("read").as_deref(), Some(&b"empty keys are keys"[..]));
}

#[test]
fn bad_options_are_invalid_arguments_and_touch_nothing() {
    let fs = MemFs::new();
    let cases: Vec<(&str, TreeBuilder)> = vec![
        ("max_memtable_size", TreeBuilder::new().with_vfs(fs.clone()).with_max_memtable_size(10)),
        ("block_size", TreeBuilder::new().with_vfs(fs.clone()).with_block_size(3)),
        ("level_count", TreeBuilder::new().with_vfs(fs.clone()).with_level_count(0)),
        ("level_count", TreeBuilder::new().with_vfs(fs.clone()).with_level_count(99)),
        ("vlog_max_file_size", TreeBuilder::new().with_vfs(fs.clone()).with_vlog_max_file_size(1)),
        (
            "vlog_value_threshold",
            TreeBuilder::new().with_vfs(fs.clone()).with_vlog_value_threshold(0),
        ),
        (
            "vlog_value_threshold",
            TreeBuilder::new().with_vfs(fs.clone()).with_vlog_value_threshold(usize::MAX),
        ),
        (
            "vlog_gc_discard_ratio",
            TreeBuilder::new().with_vfs(fs.clone()).with_vlog_gc_discard_ratio(1.5),
        ),
        (
            "vlog_gc_discard_ratio",
            TreeBuilder::new().with_vfs(fs.clone()).with_vlog_gc_discard_ratio(f64::NAN),
        ),
        ("wal_segment_size", TreeBuilder::new().with_vfs(fs.clone()).with_wal_segment_size(100)),
        (
            "max_transaction_size",
            TreeBuilder::new().with_vfs(fs.clone()).with_max_transaction_size(1024),
        ),
        (
            "max_transaction_size",
            TreeBuilder::new().with_vfs(fs.clone()).with_max_transaction_size(usize::MAX),
        ),
        ("compaction_threads", TreeBuilder::new().with_vfs(fs.clone()).with_compaction_threads(0)),
        ("bloom_bits_per_key", TreeBuilder::new().with_vfs(fs.clone()).with_bloom_bits_per_key(65)),
        ("level_size_ratio", TreeBuilder::new().with_vfs(fs.clone()).with_level_size_ratio(1)),
        ("path", TreeBuilder::new()),
    ];
    for (what_expected, builder) in cases {
        match builder.build() {
            Err(Error::InvalidArgument { what, .. }) => assert_eq!(what, what_expected),
            other => panic!("{what_expected}: expected InvalidArgument, got {other:?}"),
        }
    }
    assert_eq!(fs.total_bytes(), 0, "validation failures must not create files");
}

#[test]
fn ranges_are_half_open_limited_and_double_ended() {
    let (_fs, tree) = tree();
    put(&tree, &[("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5")]);
    let txn = tree.begin().expect("begin");
    assert_eq!(keys(txn.range(b"b", b"e", None).expect("range")), ["b", "c", "d"]);
    assert_eq!(keys(txn.range(b"b", b"e", None).expect("range").rev()), ["d", "c", "b"]);
    assert_eq!(keys(txn.range(b"a", b"z", Some(2)).expect("range")), ["a", "b"]);
    assert_eq!(keys(txn.range(b"a", b"z", Some(2)).expect("range").rev()), ["e", "d"]);
    assert!(keys(txn.range(b"c", b"c", None).expect("range")).is_empty(), "start == end is empty");
    assert!(keys(txn.range(b"d", b"b", None).expect("range")).is_empty(), "start > end is empty");
    assert!(keys(txn.range(b"a", b"z", Some(0)).expect("range")).is_empty());
    let ks: Vec<_> = txn.keys(b"a", b"c", None).expect("keys").map(|k| k.expect("key")).collect();
    assert_eq!(ks, [&b"a"[..], &b"b"[..]]);
    let mut both = txn.range(b"a", b"z", None).expect("range");
    let mut seen = Vec::new();
    loop {
        let f = both.next();
        let b = both.next_back();
        if f.is_none() && b.is_none() {
            break;
        }
        seen.extend(f.into_iter().chain(b).map(|r| r.expect("read").0));
    }
    seen.sort();
    assert_eq!(seen.len(), 5, "alternating ends visit every key exactly once");
    seen.dedup();
    assert_eq!(seen.len(), 5);
}

#[test]
fn read_options_bounds_limit_and_keys_only() {
    let (_fs, tree) = tree();
    put(&tree, &[("a", "1"), ("b", "2"), ("c", "3"), ("y", "4"), ("z", "5")]);
    let txn = tree.begin().expect("begin");
    let opts = ReadOptions::new()
        .with_limit(Some(10))
        .with_iterate_lower_bound(Some(b"a".to_vec()))
        .with_iterate_upper_bound(Some(b"z".to_vec()));
    assert_eq!(keys(txn.range_with_options(&opts).expect("range")), ["a", "b", "c", "y"]);
    let opts = ReadOptions::new().with_keys_only(true).with_limit(Some(2));
    let ks: Vec<_> = txn.keys_with_options(&opts).expect("keys").map(|k| k.expect("key")).collect();
    assert_eq!(ks, [&b"a"[..], &b"b"[..]]);
    let unbounded = ReadOptions::new();
    assert_eq!(keys(txn.range_with_options(&unbounded).expect("range")).len(), 5);
}

#[test]
fn reads_see_own_writes_over_the_snapshot() {
    let (_fs, tree) = tree();
    put(&tree, &[("a", "old"), ("b", "keep"), ("c", "gone")]);
    let mut txn = tree.begin().expect("begin");
    txn.set(b"a", b"new").expect("set");
    txn.delete(b"c").expect("delete");
    txn.set(b"d", b"added").expect("set");
    assert_eq!(txn.get(b"a").expect("read").as_deref(), Some(&b"new"[..]));
    assert_eq!(txn.get(b"c").expect("read"), None);
    let kv: Vec<_> = txn
        .range(b"a", b"z", None)
        .expect("range")
        .map(|r| r.expect("read"))
        .map(|(k, v)| {
            (
                String::from_utf8(k.to_vec()).expect("utf8"),
                String::from_utf8(v.to_vec()).expect("utf8"),
            )
        })
        .collect();
    let want: Vec<(String, String)> = [("a", "new"), ("b", "keep"), ("d", "added")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(kv, want);
    let other = tree.begin().expect("begin");
    assert_eq!(
        other.get(b"a").expect("read").as_deref(),
        Some(&b"old"[..]),
        "not visible before commit"
    );
}

#[test]
fn versioned_calls_need_versioning() {
    let (_fs, tree) = tree();
    let mut txn = tree.begin().expect("begin");
    assert!(matches!(txn.set_at_version(b"k", b"v", 5), Err(Error::VersioningDisabled)));
    assert!(matches!(txn.get_at_version(b"k", 5), Err(Error::VersioningDisabled)));
    assert!(matches!(txn.range_at_version(b"a", b"z", 5, None), Err(Error::VersioningDisabled)));
    assert!(matches!(txn.keys_at_version(b"a", b"z", 5, None), Err(Error::VersioningDisabled)));
    assert!(matches!(txn.scan_all_versions(b"a", b"z", None), Err(Error::VersioningDisabled)));
    let opts = ReadOptions::new().with_timestamp(Some(5));
    assert!(matches!(txn.range_with_options(&opts), Err(Error::VersioningDisabled)));
}

#[test]
fn close_then_reopen_recovers_everything_and_releases_the_lock() {
    let fs = MemFs::new();
    let tree = TreeBuilder::new().with_vfs(fs.clone()).build().expect("opens");
    let clone = tree.clone();
    put(&tree, &[("a", "1")]);
    let mut durable = tree.begin().expect("begin");
    durable.set_durability(Durability::Immediate);
    durable.set(b"b", b"2").expect("set");
    durable.commit_blocking().expect("commit");
    let straggler = tree.begin().expect("begin");
    assert!(matches!(TreeBuilder::new().with_vfs(fs.clone()).build(), Err(Error::Locked)));
    clone.close().expect("close");
    assert!(matches!(tree.begin(), Err(Error::Closed)), "every clone sees the close");
    assert!(matches!(straggler.get(b"a"), Err(Error::Closed)));
    drop((tree, clone, straggler));
    let reopened = TreeBuilder::new().with_vfs(fs).build().expect("reopens after close");
    let txn = reopened.begin().expect("begin");
    assert_eq!(txn.get(b"a").expect("read").as_deref(), Some(&b"1"[..]));
    assert_eq!(txn.get(b"b").expect("read").as_deref(), Some(&b"2"[..]));
}

#[test]
fn dropping_the_last_handle_closes_and_reopen_works_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    for round in 0..3u8 {
        let tree = TreeBuilder::new().with_path(path.clone()).build().expect("opens");
        put(&tree, &[(&format!("k{round}"), "v")]);
        let t2 = tree.clone();
        let worker =
            std::thread::spawn(move || t2.begin().expect("begin").get(b"k0").expect("read"));
        assert!(worker.join().expect("thread").is_some());
        drop(tree);
    }
    let tree = TreeBuilder::new().with_path(path).build().expect("opens");
    let txn = tree.begin().expect("begin");
    for round in 0..3 {
        assert!(txn.get(format!("k{round}").as_bytes()).expect("read").is_some());
    }
}

#[test]
fn types_move_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<strata::Tree>();
    send::<strata::Transaction>();
    send::<strata::RangeIter>();
}

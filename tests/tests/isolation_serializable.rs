//! Serializable transactions: the Hermitage cases each level must prevent or allow, the
//! read-set details (absent keys, ranges, limits, directions, keys-only scans, time travel),
//! and the API's bad-input errors.
//!
//! Hermitage (Martin Kleppmann's isolation test suite) names the cases: G2-item is write
//! skew on items, G2 the anti-dependency cycle through a predicate read (a phantom).

#![allow(clippy::unwrap_used)]

use strata::{Error, Isolation, Mode, ReadOptions, Transaction, Tree, TreeBuilder};
use strata_vfs::MemFs;

fn tree(isolation: Isolation) -> Tree {
    TreeBuilder::new().with_vfs(MemFs::new()).with_isolation(isolation).build().unwrap()
}

fn put(tree: &Tree, pairs: &[(&[u8], &[u8])]) {
    let mut t = tree.begin().unwrap();
    t.set_isolation(Isolation::Snapshot).unwrap();
    for (k, v) in pairs {
        t.set(k, v).unwrap();
    }
    t.commit_blocking().unwrap();
}

fn get(tree: &Tree, key: &[u8]) -> Option<Vec<u8>> {
    tree.begin().unwrap().get(key).unwrap().map(|v| v.to_vec())
}

/// Two on-call doctors: each checks that the other is on call, then goes off call.
fn write_skew(isolation: Isolation) -> (Result<(), Error>, Result<(), Error>) {
    let tree = tree(isolation);
    put(&tree, &[(b"alice", b"on"), (b"bob", b"on")]);
    let mut t1 = tree.begin().unwrap();
    let mut t2 = tree.begin().unwrap();
    assert_eq!(t1.get(b"bob").unwrap().unwrap().as_ref(), b"on");
    assert_eq!(t2.get(b"alice").unwrap().unwrap().as_ref(), b"on");
    t1.set(b"alice", b"off").unwrap();
    t2.set(b"bob", b"off").unwrap();
    (t1.commit_blocking(), t2.commit_blocking())
}

#[test]
fn hermitage_g2_item_write_skew_is_prevented_by_serializable() {
    let (first, second) = write_skew(Isolation::Serializable);
    first.unwrap();
    assert!(matches!(second, Err(Error::TransactionConflict)), "{second:?}");
}

#[test]
fn hermitage_g2_item_write_skew_commits_both_under_snapshot() {
    let (first, second) = write_skew(Isolation::Snapshot);
    first.unwrap();
    second.unwrap();
}

/// Hermitage G2: each transaction counts the rows matching a predicate (a range scan) and
/// inserts a new matching row the other's scan would have seen.
fn predicate_g2(isolation: Isolation, keys_only: bool) -> (Result<(), Error>, Result<(), Error>) {
    let tree = tree(isolation);
    put(&tree, &[(b"task/1", b"alice"), (b"task/2", b"bob")]);
    let count = |t: &strata::Transaction| {
        if keys_only {
            t.keys(b"task/", b"task0", None).unwrap().count()
        } else {
            t.range(b"task/", b"task0", None).unwrap().count()
        }
    };
    let mut t1 = tree.begin().unwrap();
    let mut t2 = tree.begin().unwrap();
    assert_eq!(count(&t1), 2);
    assert_eq!(count(&t2), 2);
    t1.set(b"task/3", b"carol").unwrap();
    t2.set(b"task/4", b"dave").unwrap();
    (t1.commit_blocking(), t2.commit_blocking())
}

#[test]
fn hermitage_g2_predicate_phantom_is_prevented_by_serializable() {
    for keys_only in [false, true] {
        let (first, second) = predicate_g2(Isolation::Serializable, keys_only);
        first.unwrap();
        assert!(matches!(second, Err(Error::TransactionConflict)), "keys_only={keys_only}");
    }
}

#[test]
fn hermitage_g2_predicate_phantom_commits_both_under_snapshot() {
    let (first, second) = predicate_g2(Isolation::Snapshot, false);
    first.unwrap();
    second.unwrap();
}

#[test]
fn a_failed_serializable_commit_writes_nothing() {
    let tree = tree(Isolation::Serializable);
    let mut t1 = tree.begin().unwrap();
    let _ = t1.get(b"x").unwrap();
    t1.set(b"y", b"1").unwrap();
    t1.set(b"z", b"1").unwrap();
    put(&tree, &[(b"x", b"changed")]);
    assert!(matches!(t1.commit_blocking(), Err(Error::TransactionConflict)));
    assert_eq!(get(&tree, b"y"), None);
    assert_eq!(get(&tree, b"z"), None);
}

#[test]
fn reading_an_absent_key_conflicts_with_its_insert() {
    let tree = tree(Isolation::Serializable);
    let mut t = tree.begin().unwrap();
    assert!(t.get(b"ghost").unwrap().is_none());
    t.set(b"other", b"1").unwrap();
    put(&tree, &[(b"ghost", b"boo")]);
    assert!(matches!(t.commit_blocking(), Err(Error::TransactionConflict)));
}

/// A write-only transaction is never checked for conflicts itself, but its writes are
/// recorded: a serializable transaction that read a key it then wrote conflicts.
#[test]
fn a_write_only_commit_of_a_read_key_conflicts_with_the_reader() {
    let tree = tree(Isolation::Serializable);
    put(&tree, &[(b"x", b"1")]);
    let mut reader = tree.begin().unwrap();
    assert_eq!(reader.get(b"x").unwrap().unwrap().as_ref(), b"1");
    reader.set(b"y", b"from x").unwrap();
    let mut blind = tree.begin_with_mode(Mode::WriteOnly).unwrap();
    blind.set(b"x", b"2").unwrap();
    blind.commit_blocking().unwrap();
    assert!(matches!(reader.commit_blocking(), Err(Error::TransactionConflict)));
    assert_eq!(get(&tree, b"x").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(&tree, b"y"), None);
}

#[test]
fn writes_outside_the_read_set_do_not_conflict() {
    let tree = tree(Isolation::Serializable);
    put(&tree, &[(b"a", b"1"), (b"m", b"1")]);
    let mut t = tree.begin().unwrap();
    let _ = t.get(b"a").unwrap();
    assert_eq!(t.range(b"k", b"n", None).unwrap().count(), 1);
    t.set(b"out", b"1").unwrap();
    put(&tree, &[(b"b", b"2"), (b"n", b"2"), (b"j", b"2")]);
    t.commit_blocking().unwrap();
}

#[test]
fn a_scan_stopped_by_its_limit_read_only_up_to_its_last_key() {
    let tree = tree(Isolation::Serializable);
    put(&tree, &[(b"k1", b"1"), (b"k2", b"1"), (b"k3", b"1"), (b"k5", b"1")]);
    // Forward, limit 2: read k1..=k2. A later insert of k4 is outside.
    let mut t = tree.begin().unwrap();
    assert_eq!(t.range(b"k", b"l", Some(2)).unwrap().count(), 2);
    t.set(b"w", b"1").unwrap();
    put(&tree, &[(b"k4", b"x")]);
    t.commit_blocking().unwrap();
    // The same scan, then a write to k2 (returned): conflict.
    let mut t = tree.begin().unwrap();
    assert_eq!(t.range(b"k", b"l", Some(2)).unwrap().count(), 2);
    t.set(b"w", b"2").unwrap();
    put(&tree, &[(b"k2", b"x")]);
    assert!(matches!(t.commit_blocking(), Err(Error::TransactionConflict)));
    // Backward, limit 1: read k5 up to the end only. An insert before k5 is outside, one
    // after it inside.
    let mut t = tree.begin().unwrap();
    let last = t.range(b"k", b"l", Some(1)).unwrap().next_back().unwrap().unwrap();
    assert_eq!(last.0.as_ref(), b"k5");
    t.set(b"w", b"3").unwrap();
    put(&tree, &[(b"k0", b"x")]);
    t.commit_blocking().unwrap();
    let mut t = tree.begin().unwrap();
    let _ = t.range(b"k", b"l", Some(1)).unwrap().next_back().unwrap().unwrap();
    t.set(b"w", b"4").unwrap();
    put(&tree, &[(b"k6", b"x")]);
    assert!(matches!(t.commit_blocking(), Err(Error::TransactionConflict)));
}

/// The same limits with the entries read by reference: a key `next_ref` lends (not copied
/// while the other end has not begun) still marks how far the scan read, alone and when the
/// other end begins after it.
#[test]
fn a_scan_read_by_reference_and_stopped_by_its_limit_read_only_up_to_its_last_key() {
    let tree = tree(Isolation::Serializable);
    put(&tree, &[(b"k1", b"1"), (b"k2", b"1"), (b"k3", b"1"), (b"k5", b"1")]);
    let front = |t: &Transaction| {
        let mut it = t.range(b"k", b"l", Some(2)).unwrap();
        let mut keys = Vec::new();
        while let Some(r) = it.next_ref() {
            keys.push(r.unwrap().0.to_vec());
        }
        keys
    };
    // Forward, limit 2, by reference: read k1..=k2. Inserts after k2 are outside.
    let mut t = tree.begin().unwrap();
    assert_eq!(front(&t), [b"k1".to_vec(), b"k2".to_vec()]);
    t.set(b"w", b"1").unwrap();
    put(&tree, &[(b"k25", b"x"), (b"k4", b"x")]);
    t.commit_blocking().unwrap();
    // A write to k2, the last key lent: conflict.
    let mut t = tree.begin().unwrap();
    assert_eq!(front(&t).len(), 2);
    t.set(b"w", b"2").unwrap();
    put(&tree, &[(b"k2", b"x")]);
    assert!(matches!(t.commit_blocking(), Err(Error::TransactionConflict)));

    // Both ends, limit 3: the front lends k1, then the back begins (taking the front's key)
    // and reads k5 and k4 by reference, where the limit stops it. Read: k..=k1 and k4..l.
    let both = |t: &Transaction| {
        let mut it = t.range(b"k", b"l", Some(3)).unwrap();
        let first = it.next_ref().unwrap().unwrap().0.to_vec();
        let mut back = Vec::new();
        while let Some(r) = it.next_back_ref() {
            back.push(r.unwrap().0.to_vec());
        }
        assert!(it.next_ref().is_none(), "the limit ended the range");
        (first, back)
    };
    let want = (b"k1".to_vec(), vec![b"k5".to_vec(), b"k4".to_vec()]);
    let mut t = tree.begin().unwrap();
    assert_eq!(both(&t), want);
    t.set(b"w", b"3").unwrap();
    put(&tree, &[(b"k2", b"y"), (b"k3", b"y")]);
    t.commit_blocking().unwrap();
    // A write to the front's lent key k1: conflict (the back's beginning recorded it).
    let mut t = tree.begin().unwrap();
    assert_eq!(both(&t), want);
    t.set(b"w", b"4").unwrap();
    put(&tree, &[(b"k1", b"y")]);
    assert!(matches!(t.commit_blocking(), Err(Error::TransactionConflict)));
    // And one at the back's last key, k4: conflict.
    let mut t = tree.begin().unwrap();
    assert_eq!(both(&t), want);
    t.set(b"w", b"5").unwrap();
    put(&tree, &[(b"k4", b"y")]);
    assert!(matches!(t.commit_blocking(), Err(Error::TransactionConflict)));
}

#[test]
fn a_scan_without_a_limit_counts_as_reading_its_whole_range() {
    let tree = tree(Isolation::Serializable);
    put(&tree, &[(b"a1", b"1"), (b"a2", b"1")]);
    let mut t = tree.begin().unwrap();
    // Only the first entry is consumed, but without a limit the scan covers a..b.
    let _ = t.range(b"a", b"b", None).unwrap().next();
    t.set(b"w", b"1").unwrap();
    put(&tree, &[(b"a9", b"x")]);
    assert!(matches!(t.commit_blocking(), Err(Error::TransactionConflict)));
}

#[test]
fn read_options_scans_and_unbounded_ranges_are_tracked() {
    let tree = tree(Isolation::Serializable);
    let mut t = tree.begin().unwrap();
    let opts = ReadOptions::new().with_iterate_lower_bound(Some(b"p".to_vec()));
    assert_eq!(t.keys_with_options(&opts).unwrap().count(), 0);
    t.set(b"a", b"1").unwrap();
    put(&tree, &[(b"zzz", b"x")]);
    assert!(matches!(t.commit_blocking(), Err(Error::TransactionConflict)));
}

#[test]
fn time_travel_reads_are_tracked_like_current_reads() {
    let tree = TreeBuilder::new()
        .with_vfs(MemFs::new())
        .with_versioning(true, 0)
        .with_isolation(Isolation::Serializable)
        .build()
        .unwrap();
    put(&tree, &[(b"h", b"1")]);
    let mut t = tree.begin().unwrap();
    let _ = t.get_at_version(b"h", u64::MAX).unwrap();
    t.set(b"w", b"1").unwrap();
    put(&tree, &[(b"h", b"2")]);
    assert!(matches!(t.commit_blocking(), Err(Error::TransactionConflict)));
}

#[test]
fn read_only_serializable_transactions_never_fail() {
    let tree = tree(Isolation::Serializable);
    put(&tree, &[(b"a", b"1")]);
    let mut reader = tree.begin().unwrap();
    let _ = reader.get(b"a").unwrap();
    let _ = reader.range(b"", b"\xff", None).unwrap().count();
    put(&tree, &[(b"a", b"2"), (b"b", b"2")]);
    reader.commit_blocking().unwrap();
    let mut ro = tree.begin_with_mode(Mode::ReadOnly).unwrap();
    let _ = ro.get(b"a").unwrap();
    put(&tree, &[(b"a", b"3")]);
    ro.commit_blocking().unwrap();
}

#[test]
fn snapshot_default_with_a_serializable_transaction_alongside() {
    // The tree's default is Snapshot; one transaction opts in.
    let tree = tree(Isolation::Snapshot);
    put(&tree, &[(b"alice", b"on"), (b"bob", b"on")]);
    let mut t1 = tree.begin().unwrap();
    t1.set_isolation(Isolation::Serializable).unwrap();
    assert_eq!(t1.isolation(), Isolation::Serializable);
    let _ = t1.get(b"bob").unwrap();
    t1.set(b"alice", b"off").unwrap();
    // A snapshot-isolation writer (not validated itself) changes what t1 read.
    let mut t2 = tree.begin().unwrap();
    assert_eq!(t2.isolation(), Isolation::Snapshot);
    let _ = t2.get(b"alice").unwrap();
    t2.set(b"bob", b"off").unwrap();
    t2.commit_blocking().unwrap();
    assert!(matches!(t1.commit_blocking(), Err(Error::TransactionConflict)));
}

#[test]
fn changing_isolation_after_the_first_operation_is_an_error() {
    let tree = tree(Isolation::Snapshot);
    let mut t = tree.begin().unwrap();
    t.set_isolation(Isolation::Serializable).unwrap();
    t.set_isolation(Isolation::Snapshot).unwrap();
    t.set_isolation(Isolation::Serializable).unwrap();
    let _ = t.get(b"k").unwrap();
    let err = t.set_isolation(Isolation::Snapshot).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(err.to_string().contains("isolation"), "{err}");
    assert_eq!(t.isolation(), Isolation::Serializable, "unchanged by the failed call");

    let mut w = tree.begin().unwrap();
    w.set(b"k", b"v").unwrap();
    assert!(matches!(w.set_isolation(Isolation::Serializable), Err(Error::InvalidArgument { .. })));
    w.commit_blocking().unwrap();
}

#[test]
fn every_use_of_a_finished_transaction_is_a_clear_error() {
    let tree = tree(Isolation::Serializable);
    for finish_by_commit in [true, false] {
        let mut t = tree.begin().unwrap();
        t.set(b"k", b"v").unwrap();
        if finish_by_commit {
            t.commit_blocking().unwrap();
        } else {
            t.rollback().unwrap();
        }
        let closed = |r: Result<(), Error>| assert!(matches!(r, Err(Error::TransactionClosed)));
        closed(t.set(b"k", b"v"));
        closed(t.delete(b"k"));
        closed(t.get(b"k").map(|_| ()));
        closed(t.range(b"a", b"z", None).map(|_| ()));
        closed(t.keys(b"a", b"z", None).map(|_| ()));
        closed(t.range_with_options(&ReadOptions::new()).map(|_| ()));
        closed(t.set_isolation(Isolation::Snapshot));
        closed(t.commit_blocking());
        closed(t.rollback());
        let msg = t.get(b"k").unwrap_err().to_string();
        assert!(!msg.is_empty());
    }
}

#[test]
fn a_huge_scan_commits_or_fails_correctly_and_fails_no_one_else() {
    let tree = tree(Isolation::Serializable);
    let mut seed = tree.begin().unwrap();
    for i in 0..20_000u32 {
        seed.set(format!("row{i:06}").as_bytes(), b"v").unwrap();
    }
    seed.commit_blocking().unwrap();
    // A scan of everything plus many point reads (past the tracking limits, so they are
    // coarsened).
    let mut big = tree.begin().unwrap();
    assert_eq!(big.range(b"row", b"rox", None).unwrap().count(), 20_000);
    for i in 0..20_000u32 {
        let _ = big.get(format!("pt{i:06}").as_bytes()).unwrap();
    }
    for i in 0..2_000u32 {
        let lo = format!("sc{i:06}");
        let hi = format!("sc{i:06}z");
        let _ = big.range(lo.as_bytes(), hi.as_bytes(), None).unwrap().count();
    }
    big.set(b"summary", b"20000").unwrap();
    // Others writing outside what it read commit, and do not make it fail.
    for i in 0..100u32 {
        let mut other = tree.begin().unwrap();
        let _ = other.get(format!("other{i}").as_bytes()).unwrap();
        other.set(format!("other{i}").as_bytes(), b"x").unwrap();
        other.commit_blocking().unwrap();
    }
    big.commit_blocking().unwrap();
    // The same, with a write inside its scanned range: it fails, the writer does not.
    let mut big = tree.begin().unwrap();
    assert_eq!(big.range(b"row", b"rox", None).unwrap().count(), 20_000);
    big.set(b"summary", b"20000").unwrap();
    put(&tree, &[(b"row999999", b"new")]);
    assert!(matches!(big.commit_blocking(), Err(Error::TransactionConflict)));
    assert_eq!(get(&tree, b"row999999").as_deref(), Some(&b"new"[..]));
}

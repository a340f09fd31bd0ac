//! Versioning (time travel) through the public API, one behaviour per test: the user guide's
//! example values, history written at older timestamps, tombstone versions, the
//! `VersioningDisabled` error, commit timestamps across reopen, and the options it implies.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use strata::{Error, Mode, Options, ReadOptions, Tree, TreeBuilder};
use strata_core::ManualClock;
use strata_vfs::MemFs;

fn versioned(mem: &MemFs) -> TreeBuilder {
    TreeBuilder::new().with_vfs(mem.clone()).with_versioning(true, 0)
}

fn open_versioned(mem: &MemFs) -> Tree {
    versioned(mem).build().unwrap()
}

fn b(v: &[u8]) -> Option<Bytes> {
    Some(Bytes::copy_from_slice(v))
}

type Version = (Vec<u8>, Vec<u8>, u64, bool);

fn history(tree: &Tree, start: &[u8], end: &[u8]) -> Vec<Version> {
    let txn = tree.begin_with_mode(Mode::ReadOnly).unwrap();
    txn.scan_all_versions(start, end, None)
        .unwrap()
        .into_iter()
        .map(|(k, v, ts, del)| (k.to_vec(), v.to_vec(), ts, del))
        .collect()
}

fn v(key: &[u8], value: &[u8], ts: u64, tombstone: bool) -> Version {
    (key.to_vec(), value.to_vec(), ts, tombstone)
}

fn pairs(it: strata::RangeIter) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

fn set_at(tree: &Tree, key: &[u8], value: &[u8], ts: u64) {
    let mut tx = tree.begin().unwrap();
    tx.set_at_version(key, value, ts).unwrap();
    tx.commit_blocking().unwrap();
}

/// Flushes everything in memory to tables and compacts, by closing and reopening with a
/// memtable small enough to fill, then running maintenance.
fn push_to_tables(mem: &MemFs, tree: Tree) -> Tree {
    push_to_tables_with(mem, tree, None)
}

fn push_to_tables_with(mem: &MemFs, tree: Tree, clock: Option<&Arc<ManualClock>>) -> Tree {
    tree.close().unwrap();
    drop(tree);
    let mut builder =
        versioned(mem).with_max_memtable_size(64 * 1024).with_background_threads(false);
    if let Some(c) = clock {
        builder = builder.with_clock(c.clone());
    }
    let tree = builder.build().unwrap();
    for i in 0..120u32 {
        let mut tx = tree.begin().unwrap();
        tx.set(format!("~filler{i:04}").as_bytes(), &[7u8; 1024]).unwrap();
        tx.commit_blocking().unwrap();
    }
    tree.maintenance_step(usize::MAX).unwrap();
    assert!(tree.stats().flushes > 0, "the filler must flush a memtable");
    tree
}

#[test]
fn the_guides_time_travel_example_reads_back_its_values() {
    let mem = MemFs::new();
    let tree = open_versioned(&mem);
    let mut tx = tree.begin().unwrap();
    tx.set_at_version(b"key1", b"value_v1", 100).unwrap();
    tx.commit_blocking().unwrap();
    let mut tx = tree.begin().unwrap();
    tx.set_at_version(b"key1", b"value_v2", 200).unwrap();
    tx.commit_blocking().unwrap();

    let check = |tree: &Tree, when: &str| {
        let tx = tree.begin().unwrap();
        assert_eq!(tx.get_at_version(b"key1", 100).unwrap(), b(b"value_v1"), "{when}");
        assert_eq!(tx.get_at_version(b"key1", 200).unwrap(), b(b"value_v2"), "{when}");
        assert_eq!(tx.get_at_version(b"key1", 150).unwrap(), b(b"value_v1"), "{when}");
        assert_eq!(tx.get_at_version(b"key1", 99).unwrap(), None, "{when}: before the first");
        assert_eq!(tx.get_at_version(b"key1", u64::MAX).unwrap(), b(b"value_v2"), "{when}");
        assert_eq!(tx.get(b"key1").unwrap(), b(b"value_v2"), "{when}: current value");
        let range = pairs(tx.range_at_version(b"key1", b"key9", 150, None).unwrap());
        assert_eq!(range, vec![(b"key1".to_vec(), b"value_v1".to_vec())], "{when}");
        let keys: Vec<_> =
            tx.keys_at_version(b"key1", b"key9", 150, None).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(keys, vec![Bytes::from_static(b"key1")], "{when}");
        assert!(tx.range_at_version(b"key1", b"key9", 50, None).unwrap().next().is_none());
        let versions = tx.scan_all_versions(b"key1", b"key2", None).unwrap();
        assert_eq!(
            versions,
            vec![
                (Bytes::from_static(b"key1"), Bytes::from_static(b"value_v2"), 200, false),
                (Bytes::from_static(b"key1"), Bytes::from_static(b"value_v1"), 100, false),
            ],
            "{when}"
        );
        assert_eq!(tx.scan_all_versions(b"key1", b"key2", Some(1)).unwrap().len(), 1);
        assert!(tx.scan_all_versions(b"key1", b"key2", Some(0)).unwrap().is_empty());
        assert!(tx.scan_all_versions(b"key2", b"key1", None).unwrap().is_empty(), "inverted");
    };
    check(&tree, "in memory");
    let tree = push_to_tables(&mem, tree);
    check(&tree, "in tables");
    tree.close().unwrap();
    check(&open_versioned(&mem), "after reopen");
}

#[test]
fn an_older_timestamp_adds_history_without_changing_the_current_value() {
    let mem = MemFs::new();
    let tree = open_versioned(&mem);
    set_at(&tree, b"k", b"v200", 200);
    set_at(&tree, b"k", b"v100", 100);
    let check = |tree: &Tree, when: &str| {
        let tx = tree.begin().unwrap();
        assert_eq!(tx.get(b"k").unwrap(), b(b"v200"), "{when}: current value unchanged");
        assert_eq!(
            pairs(tx.range(b"k", b"l", None).unwrap()),
            vec![(b"k".to_vec(), b"v200".to_vec())]
        );
        assert_eq!(tx.get_at_version(b"k", 150).unwrap(), b(b"v100"), "{when}");
        assert_eq!(tx.get_at_version(b"k", 100).unwrap(), b(b"v100"), "{when}");
        assert_eq!(tx.get_at_version(b"k", 99).unwrap(), None, "{when}");
        assert_eq!(
            history(tree, b"k", b"l"),
            vec![v(b"k", b"v200", 200, false), v(b"k", b"v100", 100, false)],
            "{when}"
        );
    };
    check(&tree, "both in memory");
    // The newer version in a table, the older history in the memtable (a newer source).
    let tree = push_to_tables(&mem, tree);
    set_at(&tree, b"k", b"v150", 150);
    let tx = tree.begin().unwrap();
    assert_eq!(tx.get(b"k").unwrap(), b(b"v200"), "history in a newer source does not win");
    assert_eq!(tx.get_at_version(b"k", 175).unwrap(), b(b"v150"));
    assert_eq!(
        history(&tree, b"k", b"l"),
        vec![
            v(b"k", b"v200", 200, false),
            v(b"k", b"v150", 150, false),
            v(b"k", b"v100", 100, false)
        ]
    );
    drop(tx);
    tree.close().unwrap();
    let tree = open_versioned(&mem);
    assert_eq!(tree.begin().unwrap().get(b"k").unwrap(), b(b"v200"), "after reopen");
    assert_eq!(tree.begin().unwrap().get_at_version(b"k", 160).unwrap(), b(b"v150"));
}

#[test]
fn a_rewrite_of_the_same_timestamp_replaces_it_for_readers() {
    let mem = MemFs::new();
    let tree = open_versioned(&mem);
    set_at(&tree, b"k", b"first", 100);
    set_at(&tree, b"k", b"second", 100);
    let check = |tree: &Tree, when: &str| {
        let tx = tree.begin().unwrap();
        assert_eq!(tx.get(b"k").unwrap(), b(b"second"), "{when}");
        assert_eq!(tx.get_at_version(b"k", 100).unwrap(), b(b"second"), "{when}");
        let h = history(tree, b"k", b"l");
        // The newest write comes first; whether the shadowed one is still listed is the
        // engine's choice (with retention 0 it currently is).
        assert_eq!(h.first(), Some(&v(b"k", b"second", 100, false)), "{when}: {h:?}");
        assert!(h.iter().skip(1).all(|e| e == &v(b"k", b"first", 100, false)), "{when}: {h:?}");
    };
    check(&tree, "in memory");
    let tree = push_to_tables(&mem, tree);
    check(&tree, "in tables");
    // Rewritten again while the older ones sit in tables.
    set_at(&tree, b"k", b"third", 100);
    let tx = tree.begin().unwrap();
    assert_eq!(tx.get_at_version(b"k", 100).unwrap(), b(b"third"));
    assert_eq!(history(&tree, b"k", b"l").first(), Some(&v(b"k", b"third", 100, false)));
}

#[test]
fn a_delete_is_a_tombstone_version() {
    let mem = MemFs::new();
    let clock = ManualClock::at(1_000);
    let tree = versioned(&mem).with_clock(clock.clone()).build().unwrap();
    let mut tx = tree.begin().unwrap();
    tx.set(b"k", b"alive").unwrap();
    tx.commit_blocking().unwrap();
    clock.set(2_000);
    let mut tx = tree.begin().unwrap();
    tx.delete(b"k").unwrap();
    tx.commit_blocking().unwrap();

    let check = |tree: &Tree, when: &str| {
        let tx = tree.begin().unwrap();
        assert_eq!(tx.get(b"k").unwrap(), None, "{when}");
        assert_eq!(tx.get_at_version(b"k", 999).unwrap(), None, "{when}: before the write");
        assert_eq!(tx.get_at_version(b"k", 1_000).unwrap(), b(b"alive"), "{when}");
        assert_eq!(tx.get_at_version(b"k", 1_999).unwrap(), b(b"alive"), "{when}");
        assert_eq!(tx.get_at_version(b"k", 2_000).unwrap(), None, "{when}: at the delete");
        assert_eq!(tx.get_at_version(b"k", u64::MAX).unwrap(), None, "{when}");
        assert_eq!(pairs(tx.range_at_version(b"a", b"z", 1_500, None).unwrap()).len(), 1, "{when}");
        assert!(tx.range_at_version(b"a", b"z", 2_500, None).unwrap().next().is_none(), "{when}");
        assert!(tx.keys_at_version(b"a", b"z", 2_000, None).unwrap().next().is_none(), "{when}");
        assert_eq!(
            history(tree, b"k", b"l"),
            vec![v(b"k", b"", 2_000, true), v(b"k", b"alive", 1_000, false)],
            "{when}: the tombstone is listed with an empty value"
        );
    };
    check(&tree, "in memory");
    let tree = push_to_tables_with(&mem, tree, Some(&clock));
    check(&tree, "in tables");

    // History written under the tombstone does not resurrect the key.
    set_at(&tree, b"k", b"backfill", 1_500);
    let tx = tree.begin().unwrap();
    assert_eq!(tx.get(b"k").unwrap(), None);
    assert_eq!(tx.get_at_version(b"k", 1_500).unwrap(), b(b"backfill"));
    assert_eq!(tx.get_at_version(b"k", 1_499).unwrap(), b(b"alive"));
    // An explicit version after the tombstone does.
    set_at(&tree, b"k", b"reborn", 3_000);
    assert_eq!(tree.begin().unwrap().get(b"k").unwrap(), b(b"reborn"));
    assert_eq!(tree.begin().unwrap().get_at_version(b"k", 2_999).unwrap(), None);
}

#[test]
fn plain_writes_are_versions_at_their_commit_timestamp() {
    let mem = MemFs::new();
    let clock = ManualClock::at(500);
    let tree = versioned(&mem).with_clock(clock.clone()).build().unwrap();
    let mut tx = tree.begin().unwrap();
    tx.set(b"a", b"1").unwrap();
    tx.set(b"b", b"1").unwrap();
    tx.commit_blocking().unwrap();
    // The clock stands still: the next commit still gets a greater timestamp.
    let mut tx = tree.begin().unwrap();
    tx.set(b"a", b"2").unwrap();
    tx.commit_blocking().unwrap();
    // And when it steps back.
    clock.set(10);
    let mut tx = tree.begin().unwrap();
    tx.set(b"a", b"3").unwrap();
    tx.commit_blocking().unwrap();
    assert_eq!(
        history(&tree, b"a", b"c"),
        vec![
            v(b"a", b"3", 502, false),
            v(b"a", b"2", 501, false),
            v(b"a", b"1", 500, false),
            v(b"b", b"1", 500, false),
        ],
        "one timestamp per transaction, strictly increasing: max(clock, last + 1)"
    );
    let tx = tree.begin().unwrap();
    assert_eq!(tx.get_at_version(b"a", 499).unwrap(), None);
    assert_eq!(tx.get_at_version(b"a", 501).unwrap(), b(b"2"));
}

#[test]
fn every_versioned_call_fails_with_versioning_disabled_when_it_is_off() {
    let mem = MemFs::new();
    let tree = TreeBuilder::new().with_vfs(mem.clone()).build().unwrap();
    let mut tx = tree.begin().unwrap();
    tx.set(b"k", b"v").unwrap();
    tx.commit_blocking().unwrap();

    let mut tx = tree.begin().unwrap();
    assert!(matches!(tx.set_at_version(b"k", b"v", 1), Err(Error::VersioningDisabled)));
    assert!(matches!(tx.get_at_version(b"k", 1), Err(Error::VersioningDisabled)));
    assert!(matches!(tx.range_at_version(b"a", b"z", 1, None), Err(Error::VersioningDisabled)));
    assert!(matches!(tx.keys_at_version(b"a", b"z", 1, None), Err(Error::VersioningDisabled)));
    assert!(matches!(tx.scan_all_versions(b"a", b"z", None), Err(Error::VersioningDisabled)));
    let at = ReadOptions::new().with_timestamp(Some(1));
    assert!(matches!(tx.range_with_options(&at), Err(Error::VersioningDisabled)));
    assert!(matches!(tx.keys_with_options(&at), Err(Error::VersioningDisabled)));
    // Empty and inverted ranges are refused too, not silently empty.
    assert!(matches!(tx.range_at_version(b"z", b"a", 1, None), Err(Error::VersioningDisabled)));
    assert!(matches!(tx.scan_all_versions(b"z", b"a", None), Err(Error::VersioningDisabled)));
    assert_eq!(
        Error::VersioningDisabled.to_string(),
        "versioning is not enabled for this database"
    );

    // The refusals leave the transaction usable, and current reads work.
    assert_eq!(tx.get(b"k").unwrap(), b(b"v"));
    assert_eq!(pairs(tx.range_with_options(&ReadOptions::new()).unwrap()).len(), 1);
    tx.set(b"k2", b"v2").unwrap();
    tx.commit_blocking().unwrap();
    assert_eq!(tree.begin().unwrap().get(b"k2").unwrap(), b(b"v2"));

    // `with_versioning(false, _)` is the same as not asking.
    tree.close().unwrap();
    let tree = TreeBuilder::new().with_vfs(mem).with_versioning(false, 0).build().unwrap();
    let tx = tree.begin().unwrap();
    assert!(matches!(tx.get_at_version(b"k", 1), Err(Error::VersioningDisabled)));
}

#[test]
fn versioned_calls_respect_the_transaction_mode() {
    let tree = open_versioned(&MemFs::new());
    let mut ro = tree.begin_with_mode(Mode::ReadOnly).unwrap();
    assert!(matches!(ro.set_at_version(b"k", b"v", 1), Err(Error::TransactionReadOnly)));
    assert!(ro.get_at_version(b"k", 1).unwrap().is_none());
    let wo = tree.begin_with_mode(Mode::WriteOnly).unwrap();
    assert!(matches!(wo.get_at_version(b"k", 1), Err(Error::TransactionWriteOnly)));
    assert!(matches!(wo.range_at_version(b"a", b"z", 1, None), Err(Error::TransactionWriteOnly)));
    assert!(matches!(wo.scan_all_versions(b"a", b"z", None), Err(Error::TransactionWriteOnly)));
    let mut tx = tree.begin().unwrap();
    tx.commit_blocking().unwrap();
    assert!(matches!(tx.set_at_version(b"k", b"v", 1), Err(Error::TransactionClosed)));
    assert!(matches!(tx.scan_all_versions(b"a", b"z", None), Err(Error::TransactionClosed)));
}

/// The newest commit timestamp in the database (plain writes to `key` carry it).
fn newest_ts(tree: &Tree, key: &[u8]) -> u64 {
    let mut end = key.to_vec();
    end.push(0);
    history(tree, key, &end).first().unwrap().2
}

fn commit_plain(tree: &Tree, key: &[u8]) {
    let mut tx = tree.begin().unwrap();
    tx.set(key, b"x").unwrap();
    tx.commit_blocking().unwrap();
}

#[test]
fn commit_timestamps_increase_across_reopen() {
    // The system clock, on MemFs.
    let mem = MemFs::new();
    let tree = open_versioned(&mem);
    commit_plain(&tree, b"t");
    let first = newest_ts(&tree, b"t");
    tree.close().unwrap();
    let tree = open_versioned(&mem);
    commit_plain(&tree, b"t");
    let second = newest_ts(&tree, b"t");
    assert!(second > first, "system clock: {second} after reopen must exceed {first}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    assert!(first > 1_000_000_000_000_000_000, "system clock timestamps are Unix ns: {first}");
    assert!(u128::from(second) <= now.as_nanos() + 1_000_000, "{second} is not in the future");

    // A clock that went back across a reopen (also after the commit was flushed to a table,
    // so the timestamp comes from the manifest rather than the WAL).
    for flush in [false, true] {
        let mem = MemFs::new();
        let clock = ManualClock::at(1_000_000);
        let tree = versioned(&mem).with_clock(clock.clone()).build().unwrap();
        commit_plain(&tree, b"t");
        let first = newest_ts(&tree, b"t");
        assert_eq!(first, 1_000_000);
        let tree = if flush { push_to_tables_with(&mem, tree, Some(&clock)) } else { tree };
        let before = if flush { newest_ts(&tree, b"~filler0119") } else { first };
        tree.close().unwrap();
        drop(tree);
        let tree = versioned(&mem).with_clock(ManualClock::at(5)).build().unwrap();
        commit_plain(&tree, b"t");
        let second = newest_ts(&tree, b"t");
        assert_eq!(second, before + 1, "flushed {flush}: the clock went back to 5");
        tree.close().unwrap();
        drop(tree);
        let tree = versioned(&mem).with_clock(ManualClock::at(5)).build().unwrap();
        commit_plain(&tree, b"t");
        assert_eq!(newest_ts(&tree, b"t"), second + 1, "flushed {flush}: second reopen");
    }

    // On a real directory.
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        TreeBuilder::with_options(
            Options::new().with_path(dir.path().to_path_buf()).with_versioning(true, 0),
        )
        .build()
        .unwrap()
    };
    let tree = open();
    commit_plain(&tree, b"t");
    let first = newest_ts(&tree, b"t");
    tree.close().unwrap();
    drop(tree);
    let tree = open();
    commit_plain(&tree, b"t");
    assert!(newest_ts(&tree, b"t") > first);
    assert_eq!(history(&tree, b"t", b"u").len(), 2);
}

#[test]
fn explicit_timestamps_do_not_move_commit_timestamps() {
    let mem = MemFs::new();
    let tree = versioned(&mem).with_clock(ManualClock::at(100)).build().unwrap();
    set_at(&tree, b"far", b"future", 1_000_000);
    commit_plain(&tree, b"t");
    assert_eq!(newest_ts(&tree, b"t"), 101, "commit timestamps follow the clock, not set_at");
    // The future version stays current until a commit passes it.
    assert_eq!(tree.begin().unwrap().get(b"far").unwrap(), b(b"future"));
    commit_plain(&tree, b"far");
    assert_eq!(tree.begin().unwrap().get(b"far").unwrap(), b(b"future"));
    assert_eq!(tree.begin().unwrap().get_at_version(b"far", 102).unwrap(), b(b"x"));
}

#[test]
fn one_clock_reading_per_committed_transaction() {
    // The commit path reads the clock once per committed non-empty transaction: not for an
    // empty commit, a rollback, a read-only transaction or a refused (conflicting) commit.
    let mem = MemFs::new();
    let clock = ManualClock::at(1);
    let tree = versioned(&mem).with_clock(clock.clone()).build().unwrap();
    let base = clock.reads();
    commit_plain(&tree, b"a");
    set_at(&tree, b"a", b"x", 7);
    assert_eq!(clock.reads() - base, 2);
    let mut empty = tree.begin().unwrap();
    empty.commit_blocking().unwrap();
    let mut rolled = tree.begin().unwrap();
    rolled.set(b"a", b"y").unwrap();
    rolled.rollback().unwrap();
    let ro = tree.begin_with_mode(Mode::ReadOnly).unwrap();
    let _ = ro.get_at_version(b"a", 7).unwrap();
    drop(ro);
    let mut loser = tree.begin().unwrap();
    loser.set(b"a", b"loser").unwrap();
    commit_plain(&tree, b"a");
    assert!(matches!(loser.commit_blocking(), Err(Error::TransactionConflict)));
    assert_eq!(clock.reads() - base, 3, "only the three committed transactions read the clock");
}

#[test]
fn time_travel_reads_show_committed_history_not_pending_writes() {
    let mem = MemFs::new();
    let tree = versioned(&mem).with_clock(ManualClock::at(100)).build().unwrap();
    commit_plain(&tree, b"k");
    let mut tx = tree.begin().unwrap();
    tx.set(b"k", b"pending").unwrap();
    tx.set(b"new", b"pending").unwrap();
    tx.set_at_version(b"k", b"pending-at-50", 50).unwrap();
    assert_eq!(tx.get(b"k").unwrap(), b(b"pending"), "plain reads see own writes");
    assert_eq!(tx.get_at_version(b"k", u64::MAX).unwrap(), b(b"x"));
    assert_eq!(tx.get_at_version(b"k", 50).unwrap(), None);
    assert_eq!(tx.get_at_version(b"new", u64::MAX).unwrap(), None);
    assert_eq!(pairs(tx.range_at_version(b"a", b"z", u64::MAX, None).unwrap()).len(), 1);
    assert_eq!(tx.scan_all_versions(b"a", b"z", None).unwrap().len(), 1);
    tx.commit_blocking().unwrap();
    assert_eq!(tree.begin().unwrap().get_at_version(b"k", 50).unwrap(), b(b"pending-at-50"));
    assert_eq!(history(&tree, b"k", b"l").len(), 3);
}

#[test]
fn a_snapshot_does_not_see_versions_committed_after_it() {
    let mem = MemFs::new();
    let tree = open_versioned(&mem);
    set_at(&tree, b"k", b"v100", 100);
    let old = tree.begin_with_mode(Mode::ReadOnly).unwrap();
    set_at(&tree, b"k", b"v50", 50);
    set_at(&tree, b"k", b"v200", 200);
    assert_eq!(old.get_at_version(b"k", 60).unwrap(), None, "v50 was committed later");
    assert_eq!(old.get_at_version(b"k", u64::MAX).unwrap(), b(b"v100"));
    assert_eq!(old.get(b"k").unwrap(), b(b"v100"));
    assert_eq!(old.scan_all_versions(b"k", b"l", None).unwrap().len(), 1);
    let tree = push_to_tables(&mem, {
        drop(old);
        tree
    });
    let tx = tree.begin().unwrap();
    assert_eq!(tx.get_at_version(b"k", 60).unwrap(), b(b"v50"));
    assert_eq!(history(&tree, b"k", b"l").len(), 3);
}

#[test]
fn read_options_with_a_timestamp_match_range_at_version() {
    let mem = MemFs::new();
    let tree = open_versioned(&mem);
    for (i, key) in [&b"a"[..], b"b", b"c", b"d", b"e"].into_iter().enumerate() {
        let i = i as u64;
        set_at(&tree, key, format!("{}@{}", key[0] as char, 10 * (i + 1)).as_bytes(), 10 * (i + 1));
        set_at(&tree, key, format!("{}@{}", key[0] as char, 100 + i).as_bytes(), 100 + i);
    }
    let tx = tree.begin().unwrap();
    for ts in [0, 9, 10, 25, 50, 99, 100, 102, 104, u64::MAX] {
        let want = pairs(tx.range_at_version(b"", b"\xff", ts, None).unwrap());
        let opts = ReadOptions::new().with_timestamp(Some(ts));
        assert_eq!(pairs(tx.range_with_options(&opts).unwrap()), want, "ts {ts}");
        for limit in 0..4 {
            let lim = ReadOptions::new()
                .with_timestamp(Some(ts))
                .with_limit(Some(limit))
                .with_iterate_lower_bound(Some(b"b".to_vec()))
                .with_iterate_upper_bound(Some(b"e".to_vec()));
            let inner: Vec<_> = want
                .iter()
                .filter(|(k, _)| k.as_slice() >= &b"b"[..] && k.as_slice() < &b"e"[..])
                .cloned()
                .collect();
            let fwd = pairs(tx.range_with_options(&lim).unwrap());
            assert_eq!(
                fwd,
                inner.iter().take(limit).cloned().collect::<Vec<_>>(),
                "ts {ts} limit {limit}"
            );
            let back: Vec<_> =
                tx.range_with_options(&lim).unwrap().rev().map(|r| r.unwrap().0.to_vec()).collect();
            let want_back: Vec<_> =
                inner.iter().rev().take(limit).map(|(k, _)| k.clone()).collect();
            assert_eq!(back, want_back, "ts {ts} limit {limit} backward");
            let keys: Vec<_> = tx
                .keys_with_options(&lim.clone().with_keys_only(true))
                .unwrap()
                .map(|r| r.unwrap().to_vec())
                .collect();
            assert_eq!(keys, inner.iter().take(limit).map(|(k, _)| k.clone()).collect::<Vec<_>>());
            let at: Vec<_> = tx
                .range_at_version(b"b", b"e", ts, Some(limit))
                .unwrap()
                .rev()
                .map(|r| r.unwrap().0.to_vec())
                .collect();
            assert_eq!(at, want_back, "range_at_version ts {ts} limit {limit} backward");
        }
    }
    let at = |ts| pairs(tx.range_at_version(b"", b"\xff", ts, None).unwrap());
    assert_eq!(
        at(25).iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
        vec![b"a@10".to_vec(), b"b@20".to_vec()]
    );
    assert_eq!(at(102).len(), 5);
    assert_eq!(at(102)[2].1, b"c@102".to_vec());
    assert_eq!(at(102)[3].1, b"d@40".to_vec());
    // Without a timestamp, ReadOptions read the current values.
    let now = pairs(tx.range_with_options(&ReadOptions::new()).unwrap());
    assert_eq!(now, at(u64::MAX));
}

#[test]
fn with_versioning_turns_the_value_log_on() {
    let on = format!("{:?}", Options::new().with_versioning(true, 0));
    assert!(on.contains("vlog_enabled: true"), "{on}");
    assert!(on.contains("versioning: true"), "{on}");
    let with_retention = format!("{:?}", Options::new().with_versioning(true, 3_600_000_000_000));
    assert!(with_retention.contains("vlog_enabled: true"), "{with_retention}");
    assert!(with_retention.contains("retention_ns: 3600000000000"), "{with_retention}");
    let builder = format!("{:?}", TreeBuilder::new().with_versioning(true, 0));
    assert!(builder.contains("vlog_enabled: true"), "{builder}");
    let off = format!("{:?}", Options::new());
    assert!(off.contains("vlog_enabled: false") && off.contains("versioning: false"), "{off}");
    // Turning versioning off does not turn an explicitly enabled value log off.
    let kept = format!("{:?}", Options::new().with_enable_vlog(true).with_versioning(false, 0));
    assert!(kept.contains("vlog_enabled: true"), "{kept}");
    // The order does not matter for the result being versioned with a value log.
    let after = format!("{:?}", Options::new().with_versioning(true, 0).with_enable_vlog(true));
    assert!(after.contains("vlog_enabled: true") && after.contains("versioning: true"), "{after}");
}

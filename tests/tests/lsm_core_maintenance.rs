//! The core engine driven with no threads at all: commits, flushes and compactions all run on
//! the test thread through `Engine::maintenance_step`, on MemFs, as a single-threaded device
//! would run it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use strata_core::iter::{KeyRange, Visibility};
use strata_core::{Bytes, Engine, EngineOptions, LogicalClock, Mode, TxnCore};
use strata_vfs::MemFs;

fn options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.max_memtable_size = 64 * 1024;
    o.wal_segment_size = 64 * 1024;
    o.target_file_size = 64 * 1024;
    o.base_level_bytes = 256 * 1024;
    o.block_cache_bytes = 256 * 1024;
    o
}

fn open(fs: &MemFs) -> Engine<MemFs> {
    Engine::open(fs.clone(), options(), Arc::new(LogicalClock::default())).expect("opens")
}

fn commit(engine: &Engine<MemFs>, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
    let mut txn = TxnCore::begin(engine, Mode::ReadWrite).expect("begin");
    for (k, v) in writes {
        match v {
            Some(v) => txn.set(k, v).expect("set"),
            None => txn.delete(k).expect("delete"),
        }
    }
    engine.commit(txn.finish().expect("finish")).expect("commit");
}

fn all(engine: &Engine<MemFs>) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let txn = TxnCore::begin(engine, Mode::ReadOnly).expect("begin");
    txn.range(engine, KeyRange::all(), None, None, false)
        .expect("range")
        .map(|r| r.expect("read"))
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

#[test]
fn a_whole_workload_with_no_threads() {
    let seed = strata_tests::test_seed("a_whole_workload_with_no_threads");
    let mut rng = strata_tests::Rng::new(seed);
    let fs = MemFs::new();
    let mut engine = open(&fs);
    let mut model = BTreeMap::new();
    let rounds = strata_tests::scaled(600);
    for round in 0..rounds {
        let mut writes = Vec::new();
        for _ in 0..rng.range(1, 8) {
            let key = format!("key{:05}", rng.below(3_000)).into_bytes();
            if rng.percent(15) {
                writes.push((key, None));
            } else {
                let len = rng.range(20, 600) as usize;
                writes.push((key, Some(rng.bytes(len))));
            }
        }
        commit(&engine, &writes);
        for (k, v) in writes {
            match v {
                Some(v) => model.insert(k, v),
                None => model.remove(&k),
            };
        }
        engine.maintenance_step(usize::MAX).expect("maintenance");
        if round % 150 == 149 {
            assert_eq!(all(&engine), model, "round {round}");
            engine.close().expect("close");
            drop(engine);
            engine = open(&fs);
        }
    }
    assert_eq!(all(&engine), model);
    let stats = engine.stats();
    let flushes = stats.flushes.load(std::sync::atomic::Ordering::Relaxed);
    let compactions = stats.compactions.load(std::sync::atomic::Ordering::Relaxed);
    let levels = engine.levels();
    eprintln!("flushes {flushes}, compactions {compactions}, levels {levels:?}");
    assert!(levels.iter().skip(1).any(|l| l.files > 0), "data reached levels below L0");
    assert!(levels[0].files < options().l0_compaction_trigger, "L0 was compacted");
    // Point reads agree with ranges.
    let txn = TxnCore::begin(&engine, Mode::ReadOnly).expect("begin");
    for i in (0..3_000).step_by(7) {
        let k = format!("key{i:05}").into_bytes();
        assert_eq!(txn.get(&engine, &k).expect("get").map(|v| v.to_vec()), model.get(&k).cloned());
    }
}

/// One merge over all 100 versions of a key keeps exactly the newest version of each stripe
/// between live snapshots: what the snapshots (and new readers) can see, and nothing else.
#[test]
fn compaction_keeps_exactly_what_live_snapshots_can_see() {
    let fs = MemFs::new();
    let engine = open(&fs);
    let hot_range = KeyRange {
        lower: Bound::Included(Bytes::from_static(b"hot")),
        upper: Bound::Included(Bytes::from_static(b"hot")),
    };
    let kept = |engine: &Engine<MemFs>| -> Vec<u32> {
        engine
            .scan_versions(u64::MAX, &hot_range, None)
            .expect("scan")
            .iter()
            .map(|v| u32::from_le_bytes(v.value.as_ref().try_into().expect("4 bytes")))
            .collect()
    };
    // All 100 versions fit in the first memtable, so they reach L0 in one table.
    let mut snapshots = Vec::new();
    for i in 1..=100u32 {
        commit(&engine, &[(b"hot".to_vec(), Some(i.to_le_bytes().to_vec()))]);
        if i == 10 || i == 50 {
            snapshots.push((i, engine.snapshot()));
        }
    }
    let filler = vec![0u8; 900];
    let compactions =
        |e: &Engine<MemFs>| e.stats().compactions.load(std::sync::atomic::Ordering::Relaxed);
    let mut n = 0u32;
    while compactions(&engine) == 0 {
        commit(&engine, &[(format!("fill{n:05}").into_bytes(), Some(filler.clone()))]);
        engine.maintenance_step(usize::MAX).expect("maintenance");
        n += 1;
        assert!(n < 10_000, "no compaction ever ran");
    }
    assert_eq!(kept(&engine), [100, 50, 10], "one merge keeps one version per snapshot stripe");
    for (i, snap) in &snapshots {
        let vis = Visibility { snapshot: snap.seq(), at_ts: None };
        let v = engine.get(b"hot", vis).expect("get").expect("present");
        assert_eq!(v.as_ref(), &i.to_le_bytes(), "snapshot at version {i}");
    }

    // Without snapshots, the next merge that covers the key keeps only the newest version.
    drop(snapshots);
    let start = n;
    while kept(&engine) != [100] {
        commit(&engine, &[(format!("fill{n:05}").into_bytes(), Some(filler.clone()))]);
        engine.maintenance_step(usize::MAX).expect("maintenance");
        n += 1;
        assert!(n - start < 2_000, "hidden versions were never dropped: {:?}", kept(&engine));
    }
    let txn = TxnCore::begin(&engine, Mode::ReadOnly).expect("begin");
    assert_eq!(txn.get(&engine, b"hot").expect("get").as_deref(), Some(&100u32.to_le_bytes()[..]));
}

#[test]
fn direction_switches_across_ten_thousand_tombstones_in_tables() {
    let fs = MemFs::new();
    let engine = open(&fs);
    let keys: Vec<Vec<u8>> = (0..10_000u32).map(|i| format!("t{i:05}").into_bytes()).collect();
    for chunk in keys.chunks(500) {
        commit(
            &engine,
            &chunk.iter().map(|k| (k.clone(), Some(b"v".to_vec()))).collect::<Vec<_>>(),
        );
        engine.maintenance_step(usize::MAX).expect("maintenance");
    }
    commit(
        &engine,
        &[(b"a-live".to_vec(), Some(b"1".to_vec())), (b"z-live".to_vec(), Some(b"2".to_vec()))],
    );
    for chunk in keys.chunks(500) {
        commit(&engine, &chunk.iter().map(|k| (k.clone(), None)).collect::<Vec<_>>());
        engine.maintenance_step(usize::MAX).expect("maintenance");
    }
    let txn = TxnCore::begin(&engine, Mode::ReadOnly).expect("begin");
    for _ in 0..3 {
        let mut it = txn.range(&engine, KeyRange::all(), None, None, false).expect("range");
        assert_eq!(it.next().map(|r| r.expect("read").0), Some(Bytes::from_static(b"a-live")));
        assert_eq!(it.next_back().map(|r| r.expect("read").0), Some(Bytes::from_static(b"z-live")));
        assert!(it.next().is_none(), "10,000 tombstones skipped forward");
        assert!(it.next_back().is_none());
        let mut back = txn.range(&engine, KeyRange::all(), None, None, false).expect("range");
        assert_eq!(
            back.next_back().map(|r| r.expect("read").0),
            Some(Bytes::from_static(b"z-live"))
        );
        assert_eq!(
            back.next_back().map(|r| r.expect("read").0),
            Some(Bytes::from_static(b"a-live"))
        );
        assert!(back.next().is_none());
    }
}

/// An iterator opened before compactions keeps reading the tables its view names, even after
/// compaction replaced them; they are deleted only once it is gone.
#[test]
fn an_open_iterator_outlives_the_compaction_of_its_tables() {
    let fs = MemFs::new();
    let engine = open(&fs);
    let value = vec![7u8; 700];
    for i in 0..400u32 {
        commit(&engine, &[(format!("k{i:04}").into_bytes(), Some(value.clone()))]);
        engine.maintenance_step(usize::MAX).expect("maintenance");
    }
    let txn = TxnCore::begin(&engine, Mode::ReadOnly).expect("begin");
    let mut it = txn.range(&engine, KeyRange::all(), None, None, false).expect("range");
    assert!(it.next().is_some());
    let tables_before: Vec<String> = strata_vfs::Vfs::list(&fs)
        .expect("list")
        .into_iter()
        .filter(|n| n.ends_with(".sst"))
        .collect();
    // Rewrite everything so every table the iterator's view names is compacted away.
    for i in 0..400u32 {
        commit(&engine, &[(format!("k{i:04}").into_bytes(), Some(vec![8u8; 700]))]);
        engine.maintenance_step(usize::MAX).expect("maintenance");
    }
    let compacted_away = tables_before
        .iter()
        .filter(|t| !engine.levels().is_empty() && strata_vfs::Vfs::exists(&fs, t).expect("exists"))
        .count();
    assert!(compacted_away > 0, "the old tables still exist while the iterator holds them");
    let rest: Vec<_> = it.map(|r| r.expect("the iterator's tables are still readable")).collect();
    assert_eq!(rest.len(), 399);
    assert!(rest.iter().all(|(_, v)| v.as_ref() == value.as_slice()), "it reads its snapshot");
    drop(txn);
    // With the iterator gone, the next job deletes the obsolete tables.
    commit(&engine, &[(b"x".to_vec(), Some(b"y".to_vec()))]);
    engine.maintenance_step(usize::MAX).expect("maintenance");
    let left =
        tables_before.iter().filter(|t| strata_vfs::Vfs::exists(&fs, t).expect("exists")).count();
    assert!(left < tables_before.len(), "obsolete tables are deleted once unreferenced");
}

/// Threads sharing one transaction read its snapshot while a writer's commits, flushes and
/// compactions replace the engine's read view under them.
#[test]
fn threads_sharing_a_transaction_read_its_snapshot_while_the_view_changes() {
    let fs = MemFs::new();
    let engine = open(&fs);
    let key = |i: u32| format!("k{i:04}").into_bytes();
    for i in 0..300u32 {
        commit(&engine, &[(key(i), Some(i.to_le_bytes().repeat(100)))]);
    }
    engine.maintenance_step(usize::MAX).expect("maintenance");
    let txn = TxnCore::begin(&engine, Mode::ReadOnly).expect("begin");
    let before = engine.stats().flushes.load(std::sync::atomic::Ordering::Relaxed);
    let writing = std::sync::atomic::AtomicBool::new(true);
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let (engine, txn, writing) = (&engine, &txn, &writing);
            s.spawn(move || {
                // Until the writer is done, and at least a few rounds.
                let mut round = 0u32;
                while writing.load(std::sync::atomic::Ordering::Relaxed) || round < 5 {
                    round += 1;
                    for i in (t..300).step_by(3) {
                        let v = txn.get(engine, &key(i)).expect("get").expect("present");
                        assert_eq!(v.as_ref(), &i.to_le_bytes().repeat(100)[..], "{round}/{i}");
                    }
                }
            });
        }
        for round in 0..40u32 {
            for i in 0..300u32 {
                commit(&engine, &[(key(i), Some(vec![round as u8; 400]))]);
            }
            engine.maintenance_step(usize::MAX).expect("maintenance");
        }
        writing.store(false, std::sync::atomic::Ordering::Relaxed);
    });
    let after = engine.stats().flushes.load(std::sync::atomic::Ordering::Relaxed);
    assert!(after > before, "the writer replaced the view while the readers read");
}

/// A range read by reference from the front, then from the back, stops where the front
/// stands: the front's last key, lent and not copied while the back had not begun, is taken
/// when the back begins; with pending writes laid over the committed keys too. And the same
/// from the back first.
#[test]
fn a_range_lent_from_the_front_then_read_from_the_back_meets_in_the_middle() {
    let fs = MemFs::new();
    let engine = open(&fs);
    let key = |i: u32| format!("k{i:02}").into_bytes();
    commit(&engine, &(0..10).map(|i| (key(i), Some(vec![i as u8; 8]))).collect::<Vec<_>>());
    engine.maintenance_step(usize::MAX).expect("maintenance");
    for pending in [false, true] {
        let mut txn = TxnCore::begin(&engine, Mode::ReadWrite).expect("begin");
        if pending {
            // A pending write on the front's third key (the overlay lends it) and a new key.
            txn.set(&key(2), b"pending").expect("set");
            txn.set(b"k025", b"new").expect("set");
        }
        // Three keys lent by one end, then the other end read to its end.
        let read = |first_forward: bool| {
            let mut it = txn.range(&engine, KeyRange::all(), None, None, false).expect("range");
            let mut step = |forward: bool| {
                let r = if forward { it.next_ref() } else { it.next_back_ref() };
                r.map(|r| r.expect("read").0.to_vec())
            };
            let first: Vec<Vec<u8>> =
                (0..3).map(|_| step(first_forward).expect("an entry")).collect();
            let then: Vec<Vec<u8>> = std::iter::from_fn(|| step(!first_forward)).collect();
            assert!(step(first_forward).is_none(), "the ends met");
            (first, then)
        };
        let new_key = pending.then(|| b"k025".to_vec());

        let (front, back) = read(true);
        assert_eq!(front, [key(0), key(1), key(2)], "pending {pending}");
        let want: Vec<Vec<u8>> = (3..10).rev().map(key).chain(new_key.clone()).collect();
        assert_eq!(back, want, "pending {pending}: the back stopped after the front's last key");

        // The mirror: the back lends its keys first (entries it produced owned), then the
        // front begins and stops before the back's last key.
        let (back, front) = read(false);
        assert_eq!(back, [key(9), key(8), key(7)], "pending {pending}");
        let want: Vec<Vec<u8>> = (0..3).map(key).chain(new_key).chain((3..7).map(key)).collect();
        assert_eq!(front, want, "pending {pending}: the front stopped before the back's last key");
    }
}

/// Manifest rewrites while unflushed data sits in the WAL: the rewritten manifest must record
/// the flushed sequence number, or the next open would see a gap before the WAL's first batch.
#[test]
fn reopen_after_manifest_rewrites_with_unflushed_data() {
    let fs = MemFs::new();
    let mut o = options();
    o.max_manifest_size = 64;
    let open_small = |fs: &MemFs| {
        Engine::open(fs.clone(), o.clone(), Arc::new(LogicalClock::default())).expect("opens")
    };
    let engine = open_small(&fs);
    let mut model = BTreeMap::new();
    for i in 0..400u32 {
        let k = format!("k{:03}", i % 150).into_bytes();
        let v = vec![(i % 251) as u8; 500];
        commit(&engine, &[(k.clone(), Some(v.clone()))]);
        model.insert(k, v);
        engine.maintenance_step(usize::MAX).expect("maintenance");
    }
    // The last writes are only in the WAL and the active memtable.
    commit(&engine, &[(b"tail".to_vec(), Some(b"unflushed".to_vec()))]);
    model.insert(b"tail".to_vec(), b"unflushed".to_vec());
    let manifests = strata_vfs::Vfs::list(&fs)
        .expect("list")
        .iter()
        .filter(|n| n.starts_with("MANIFEST-"))
        .count();
    assert_eq!(manifests, 1, "old manifests are removed after a rewrite");
    engine.close().expect("close");
    drop(engine);
    let engine = open_small(&fs);
    assert_eq!(all(&engine), model);
}

/// An iterator whose view predates a trivial move (a file moved down a level by a manifest
/// edit alone) and a later merge of that file: the move keeps the file's shared metadata, so
/// the merge's obsolete-file check still sees the old view's hold and does not delete it.
/// (Reported by the versioning model test: the move used to re-wrap the metadata.)
#[test]
fn an_iterator_outlives_a_move_then_a_merge_of_its_tables() {
    let fs = MemFs::new();
    let engine = open(&fs);
    let value = vec![3u8; 1000];
    let mut held = None;
    // Ascending keys: flushed tables never overlap, so they are later moved down whole.
    for round in 0..120u32 {
        let writes: Vec<_> = (0..70)
            .map(|i| (format!("k{:08}", round * 70 + i).into_bytes(), Some(value.clone())))
            .collect();
        for w in writes.chunks(1) {
            commit(&engine, w);
        }
        engine.maintenance_step(usize::MAX).expect("maintenance");
        if round == 10 {
            let txn = TxnCore::begin(&engine, Mode::ReadOnly).expect("begin");
            let it = txn.range(&engine, KeyRange::all(), None, None, false).expect("range");
            held = Some((txn, it));
        }
    }
    // Rewrites across the whole range merge into every level.
    for round in 0..30u32 {
        for i in 0..300u32 {
            let k = format!("k{:08}", (round * 997 + i) % 8400).into_bytes();
            commit(&engine, &[(k, Some(vec![4u8; 1000]))]);
        }
        engine.maintenance_step(usize::MAX).expect("maintenance");
    }
    let (_txn, it) = held.expect("held");
    let mut n = 0;
    for r in it {
        r.expect("tables named by the held view are still readable");
        n += 1;
    }
    assert_eq!(n, 11 * 70);
}

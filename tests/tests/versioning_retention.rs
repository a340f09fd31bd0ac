//! Retention: with `with_versioning(true, retention)`, compaction drops versions older than
//! now minus the retention period, always keeping what readers can see (a key's newest
//! version); time-travel reads older than the horizon fail with `TimestampExpired`.

use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use strata_core::iter::KeyRange;
use strata_core::{Bytes, Engine, EngineOptions, Error, ManualClock, Mode, TxnCore};
use strata_vfs::MemFs;

const RETENTION: u64 = 1_000_000;
const NOW: u64 = 10_000_000;

fn open(fs: &MemFs, clock: Arc<ManualClock>) -> Engine<MemFs> {
    let mut o = EngineOptions::default();
    o.max_memtable_size = 64 * 1024;
    o.wal_segment_size = 64 * 1024;
    o.target_file_size = 64 * 1024;
    o.base_level_bytes = 256 * 1024;
    o.versioning = true;
    o.retention_ns = RETENTION;
    Engine::open(fs.clone(), o, clock).expect("opens")
}

fn write(engine: &Engine<MemFs>, key: &[u8], value: &[u8], ts: u64) {
    let mut txn = TxnCore::begin(engine, Mode::ReadWrite).expect("begin");
    txn.set_at(engine, key, value, ts).expect("set_at");
    engine.commit(txn.finish().expect("finish")).expect("commit");
}

fn history(engine: &Engine<MemFs>, key: &'static [u8]) -> Vec<u64> {
    let range = KeyRange {
        lower: Bound::Included(Bytes::from_static(key)),
        upper: Bound::Included(Bytes::from_static(key)),
    };
    engine.scan_versions(u64::MAX, &range, None).expect("scan").iter().map(|v| v.ts).collect()
}

#[test]
fn versions_just_inside_the_horizon_survive_compaction_and_just_outside_do_not() {
    let clock = ManualClock::at(NOW);
    let fs = MemFs::new();
    let engine = open(&fs, Arc::clone(&clock));
    let horizon = NOW - RETENTION;
    // Key "a": versions just inside, at, and just outside the horizon, plus an older one.
    for ts in [horizon + 1, horizon, horizon - 1, horizon - 500] {
        write(&engine, b"a", &ts.to_le_bytes(), ts);
    }
    // Key "old": every version is outside the horizon; the newest must still survive.
    for ts in [horizon - 10, horizon - 20] {
        write(&engine, b"old", &ts.to_le_bytes(), ts);
    }
    assert_eq!(history(&engine, b"a"), [horizon + 1, horizon, horizon - 1, horizon - 500]);

    // Push the versions through a merge: fill memtables until a compaction has run.
    let filler = vec![0u8; 900];
    let mut n = 0u32;
    while engine.stats().compactions.load(Ordering::Relaxed) == 0 {
        write(&engine, format!("fill{n:05}").as_bytes(), &filler, NOW + u64::from(n));
        engine.maintenance_step(usize::MAX).expect("maintenance");
        n += 1;
        assert!(n < 10_000, "no compaction ran");
    }
    assert_eq!(history(&engine, b"a"), [horizon + 1, horizon], "inside kept, outside dropped");
    assert_eq!(history(&engine, b"old"), [horizon - 10], "a key's newest version always stays");

    let txn = TxnCore::begin(&engine, Mode::ReadOnly).expect("begin");
    assert_eq!(
        txn.get_at(&engine, b"a", horizon).expect("inside the horizon").as_deref(),
        Some(&horizon.to_le_bytes()[..])
    );
    match txn.get_at(&engine, b"a", horizon - 1) {
        Err(Error::TimestampExpired { ts, horizon: h }) => {
            assert_eq!((ts, h), (horizon - 1, horizon))
        }
        other => panic!("expected TimestampExpired, got {other:?}"),
    }
    assert!(matches!(
        txn.range(&engine, KeyRange::all(), Some(horizon - 1), None, false),
        Err(Error::TimestampExpired { .. })
    ));
    // Plain reads still see the newest version of every key.
    assert_eq!(
        txn.get(&engine, b"old").expect("get").as_deref(),
        Some(&(horizon - 10).to_le_bytes()[..])
    );

    // As time passes the horizon moves: what was inside falls outside at the next merge.
    clock.set(NOW + RETENTION);
    let new_horizon = NOW;
    let before = engine.stats().compactions.load(Ordering::Relaxed);
    while history(&engine, b"a").len() > 1 {
        write(&engine, format!("fill{n:05}").as_bytes(), &filler, new_horizon + u64::from(n));
        engine.maintenance_step(usize::MAX).expect("maintenance");
        n += 1;
        assert!(n < 20_000, "history past the moved horizon was never dropped");
    }
    assert!(engine.stats().compactions.load(Ordering::Relaxed) > before);
    assert_eq!(history(&engine, b"a"), [horizon + 1], "only the newest version remains");
}

#[test]
fn retention_zero_keeps_every_version_through_compaction() {
    let clock = ManualClock::at(NOW);
    let fs = MemFs::new();
    let mut o = EngineOptions::default();
    o.max_memtable_size = 64 * 1024;
    o.target_file_size = 64 * 1024;
    o.base_level_bytes = 256 * 1024;
    o.versioning = true;
    let engine = Engine::open(fs, o, clock).expect("opens");
    for ts in 1..=50u64 {
        write(&engine, b"k", &ts.to_le_bytes(), ts);
    }
    let filler = vec![0u8; 900];
    let mut n = 0u32;
    while engine.stats().compactions.load(Ordering::Relaxed) < 2 {
        write(&engine, format!("fill{n:05}").as_bytes(), &filler, 1_000 + u64::from(n));
        engine.maintenance_step(usize::MAX).expect("maintenance");
        n += 1;
        assert!(n < 10_000, "no compaction ran");
    }
    assert_eq!(history(&engine, b"k"), (1..=50).rev().collect::<Vec<u64>>());
}

/// The manifest remembers that a database keeps history: reopening it without versioning is a
/// clear error (reads would otherwise pick versions inconsistently), and changes nothing.
#[test]
fn a_versioned_database_cannot_be_reopened_without_versioning() {
    let fs = MemFs::new();
    {
        let tree = strata::TreeBuilder::new()
            .with_vfs(fs.clone())
            .with_versioning(true, 0)
            .build()
            .expect("opens");
        let mut t = tree.begin().expect("begin");
        t.set_at_version(b"k", b"old", 10).expect("set");
        t.commit_blocking().expect("commit");
        tree.close().expect("close");
    }
    match strata::TreeBuilder::new().with_vfs(fs.clone()).build() {
        Err(strata::Error::InvalidArgument { what: "versioning", .. }) => {}
        other => panic!("expected a versioning error, got {other:?}"),
    }
    let tree = strata::TreeBuilder::new()
        .with_vfs(fs.clone())
        .with_versioning(true, 0)
        .build()
        .expect("reopens");
    let t = tree.begin().expect("begin");
    assert_eq!(t.get_at_version(b"k", 10).expect("read").as_deref(), Some(&b"old"[..]));
    drop(t);
    tree.close().expect("close");
    // The other way is allowed: a plain database may start keeping history.
    let plain = MemFs::new();
    drop(strata::TreeBuilder::new().with_vfs(plain.clone()).build().expect("opens"));
    drop(
        strata::TreeBuilder::new()
            .with_vfs(plain)
            .with_versioning(true, 0)
            .build()
            .expect("turns versioning on"),
    );
}

//! Background value-log GC sampling, step by step (`Engine::gc_sample_step`), on MemFs with no
//! threads: dead files that no discard statistic knows about are found and collected, each
//! step looks at a bounded number of records, a file is not walked again while the tree is
//! unchanged, a half-live file is left alone, and a closed engine does nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use strata_core::engine::GC_SAMPLE_RECORDS;
use strata_core::{Engine, EngineOptions, Error, LogicalClock, Mode, TxnCore};
use strata_tests::tagged_value;
use strata_vfs::MemFs;

const KEYS: u64 = 2_000;
const VALUE_LEN: usize = 1024;

fn options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.vlog_enabled = true;
    o.vlog_value_threshold = 512;
    o.vlog_max_file_size = 1024 * 1024;
    o.vlog_gc_discard_ratio = 0.5;
    // One memtable holds everything: no flush, no compaction, so no discard statistics.
    o.max_memtable_size = 64 * 1024 * 1024;
    o
}

fn open(fs: &MemFs) -> Engine<MemFs> {
    Engine::open(fs.clone(), options(), Arc::new(LogicalClock::default())).expect("opens")
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn write(engine: &Engine<MemFs>, keys: impl Iterator<Item = u64>, round: u64) {
    let keys: Vec<u64> = keys.collect();
    for chunk in keys.chunks(64) {
        let mut txn = TxnCore::begin(engine, Mode::ReadWrite).expect("begin");
        for &k in chunk {
            txn.set(&key(k), &tagged_value(round * KEYS + k, VALUE_LEN)).expect("set");
        }
        engine.commit(txn.finish().expect("finish")).expect("commit");
    }
}

fn check(engine: &Engine<MemFs>, rounds: &[u64], ctx: &str) {
    let txn = TxnCore::begin(engine, Mode::ReadOnly).expect("begin");
    for (k, &round) in rounds.iter().enumerate() {
        let k = k as u64;
        let got = txn.get(engine, &key(k)).expect("get");
        let want = tagged_value(round * KEYS + k, VALUE_LEN);
        assert!(got.as_deref() == Some(&want[..]), "{ctx}: key {k}");
    }
}

fn sampled(engine: &Engine<MemFs>) -> u64 {
    engine.stats().gc_sampled_records.load(Relaxed)
}

/// Sample steps (each checked against the bound) and collection steps until neither does
/// anything; returns the number of sample steps that looked at a record.
fn settle(engine: &Engine<MemFs>) -> usize {
    let mut steps = 0;
    for _ in 0..10_000 {
        let before = sampled(engine);
        engine.gc_sample_step().expect("sample");
        let looked = sampled(engine) - before;
        assert!(looked <= GC_SAMPLE_RECORDS as u64, "a step looked at {looked} records");
        let collected = engine.gc_step().expect("gc");
        if looked == 0 && !collected {
            return steps;
        }
        steps += usize::from(looked > 0);
    }
    panic!("sampling never settles");
}

#[test]
fn sampling_finds_dead_files_without_statistics_and_never_rewalks_an_unchanged_tree() {
    let fs = MemFs::new();
    let engine = open(&fs);
    write(&engine, 0..KEYS, 0);
    // A clean close seals the head: the first round's files hold exactly its values.
    engine.close().expect("close");
    drop(engine);
    let engine = open(&fs);
    let first: Vec<u64> = engine.vlog_files().iter().map(|&(id, _)| id).collect();
    assert!(first.len() >= 2, "the first round spans files: {first:?}");
    let mut rounds = vec![1; KEYS as usize];
    write(&engine, 0..KEYS, 1);
    check(&engine, &rounds, "after overwriting");
    assert!(engine.vlog_files().iter().all(|(_, m)| m.discarded == 0), "no statistics");
    assert!(!engine.gc_step().expect("gc"), "statistics alone find nothing");

    let steps = settle(&engine);
    let left: Vec<u64> = engine.vlog_files().iter().map(|&(id, _)| id).collect();
    assert!(first.iter().all(|id| !left.contains(id)), "dead files collected: {left:?}");
    assert_eq!(engine.stats().gc_write_bytes.load(Relaxed), 0, "nothing live to move");
    let looked = sampled(&engine);
    eprintln!("{steps} sample steps, {looked} records looked up, files left {left:?}");
    assert!(steps >= 2, "a file takes several bounded steps");
    check(&engine, &rounds, "after collection");

    // Nothing changed: no file is walked again, however often a worker asks.
    let settled = sampled(&engine);
    for _ in 0..20 {
        assert!(!engine.gc_sample_step().expect("sample"), "nothing to do");
    }
    assert_eq!(sampled(&engine), settled, "an unchanged tree is not sampled again");

    // Every fourth key overwritten: the second round's files are a quarter dead, below the
    // ratio. The commits change the tree, so they are sampled again, then left alone.
    let quarter = (0..KEYS).filter(|k| k % 4 == 0);
    write(&engine, quarter.clone(), 2);
    for k in quarter {
        rounds[k as usize] = 2;
    }
    let files_before = engine.stats().gc_files.load(Relaxed);
    settle(&engine);
    assert!(sampled(&engine) > settled, "a changed tree is sampled again");
    assert_eq!(engine.stats().gc_files.load(Relaxed), files_before, "no file is half dead");
    check(&engine, &rounds, "after the quarter");

    engine.close().expect("close");
    assert!(matches!(engine.gc_sample_step(), Err(Error::Closed)), "off once closed");
    drop(engine);
    let engine = open(&fs);
    check(&engine, &rounds, "after reopen");
}

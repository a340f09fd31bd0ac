//! Value log garbage collection concurrent with writers of the same keys.
//!
//! Four writer threads read-modify-write a shared set of keys with large values: each write
//! of a key stores the previous value's counter plus one, so the committed writes of a key
//! form a chain 1, 2, 3, ... exactly when no update was lost. A GC thread runs `run_vlog_gc`
//! in a loop (its relocations conflict with the writers and are retried inside GC), and the
//! background threads compact and collect too. A reader checks that a snapshot reads the same
//! values twice, and every value it sees is one some writer wrote for that key.
//!
//! Afterwards: writers saw no error but `TransactionConflict`; GC never returned an error;
//! each key's counters are exactly 1..=n, each committed once; the state (after a final GC,
//! and after a reopen) is the last committed write of every key.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use strata::{Error, Mode, Tree};
use strata_tests::{Rng, builder_on, dump, scaled, tagged_value, test_seed};
use strata_vfs::MemFs;

/// Keys: the first `HOT` are written by most transactions, the rest now and then, so old
/// files keep some live (cold) values that GC must relocate while the hot ones change.
const KEYS: u64 = 300;
const HOT: u64 = 16;
const WRITERS: u64 = 4;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// The value of write number `counter` of key `k` by `writer`: its tag encodes all three,
/// and its length follows from the tag.
fn value(k: u64, counter: u64, writer: u64) -> Vec<u8> {
    let tag = (k << 40) | (counter << 8) | writer;
    tagged_value(tag, 1024 + (tag.wrapping_mul(0x9E37_79B9) % 4000) as usize)
}

/// (key, counter, writer) of a value, checking it is exactly the value those name.
fn decode(k: u64, v: &[u8]) -> Option<(u64, u64)> {
    let tag = u64::from_le_bytes(v.get(..8)?.try_into().ok()?);
    let (tk, counter, writer) = (tag >> 40, (tag >> 8) & 0xffff_ffff, tag & 0xff);
    (tk == k && v == value(k, counter, writer).as_slice()).then_some((counter, writer))
}

fn open(mem: &MemFs, background: bool, versioning: bool) -> Tree {
    builder_on(mem.clone())
        .with_versioning(versioning, 0)
        .with_enable_vlog(true)
        .with_vlog_value_threshold(1024)
        .with_vlog_max_file_size(1024 * 1024)
        .with_vlog_gc_discard_ratio(0.3)
        .with_max_memtable_size(64 * 1024)
        .with_background_threads(background)
        .build()
        .expect("open")
}

type Committed = Vec<(u64, u64, u64)>;

/// With versioning, each writer also rewrites its own "junk" key at timestamp 1 in every
/// transaction: each write replaces the previous version, so its record is dead and the files
/// become worth collecting, while every other write is history GC must relocate.
fn junk_key(w: u64) -> Vec<u8> {
    format!("junk{w}").into_bytes()
}

fn junk_value(w: u64, i: u64) -> Vec<u8> {
    tagged_value((0xffff << 40) | (i << 8) | w, 2500)
}

/// The writes it committed, and the transaction number of its last junk write.
fn writer(
    tree: &Tree,
    w: u64,
    seed: u64,
    txns: u64,
    versioning: bool,
    conflicts: &AtomicU64,
) -> (Committed, Option<u64>) {
    let mut rng = Rng::new(seed ^ (w + 1).wrapping_mul(0xA24B_AED4_963E_E407));
    let mut committed = Vec::new();
    let mut last_junk = None;
    for i in 0..txns {
        let mut keys: Vec<u64> = (0..rng.range(1, 3))
            .map(|_| if rng.percent(70) { rng.below(HOT) } else { rng.below(KEYS) })
            .collect();
        keys.sort_unstable();
        keys.dedup();
        loop {
            let mut t = tree.begin().expect("begin");
            let mut writes = Vec::new();
            for &k in &keys {
                let prev = match t.get(&key(k)) {
                    Ok(None) => 0,
                    Ok(Some(v)) => {
                        decode(k, &v)
                            .unwrap_or_else(|| panic!("writer {w}: key {k} holds a foreign value"))
                            .0
                    }
                    Err(e) => panic!("writer {w}: get: {e}"),
                };
                t.set(&key(k), &value(k, prev + 1, w)).expect("set");
                writes.push((k, prev + 1, w));
            }
            if versioning {
                t.set_at_version(&junk_key(w), &junk_value(w, i), 1).expect("set_at_version");
            }
            match t.commit_blocking() {
                Ok(()) => {
                    committed.extend(writes);
                    if versioning {
                        last_junk = Some(i);
                    }
                    break;
                }
                Err(Error::TransactionConflict) => {
                    conflicts.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => panic!("writer {w}: commit failed with {e:?}"),
            }
        }
    }
    (committed, last_junk)
}

#[test]
fn gc_concurrent_with_four_writers_of_the_same_keys() {
    run(test_seed("vlog_concurrency"), true, false);
}

/// Only the GC thread collects (no background compaction or GC).
#[test]
fn gc_concurrent_with_four_writers_without_background_threads() {
    run(test_seed("vlog_concurrency_inline"), false, false);
}

/// With versioning every committed write is history GC must keep: afterwards each key's
/// history is its whole chain of counters, newest first.
#[test]
fn gc_concurrent_with_four_writers_with_versioning() {
    run(test_seed("vlog_concurrency_versioning"), true, true);
}

fn run(seed: u64, background: bool, versioning: bool) {
    let mem = MemFs::new();
    let tree = open(&mem, background, versioning);
    let txns = scaled(4000);
    let done = Arc::new(AtomicBool::new(false));
    let conflicts = Arc::new(AtomicU64::new(0));
    let gc_errors = Arc::new(Mutex::new(Vec::<String>::new()));

    let gc = {
        let (tree, done, gc_errors) = (tree.clone(), Arc::clone(&done), Arc::clone(&gc_errors));
        std::thread::spawn(move || {
            let (mut runs, mut collected, mut relocated) = (0u64, 0u64, 0u64);
            while !done.load(Ordering::Relaxed) {
                match tree.run_vlog_gc() {
                    Ok(r) => {
                        collected += r.files_collected;
                        relocated += r.bytes_relocated;
                    }
                    Err(e) => gc_errors.lock().expect("lock").push(format!("{e:?}")),
                }
                runs += 1;
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            (runs, collected, relocated)
        })
    };
    let reader = {
        let (tree, done) = (tree.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut checks = 0u64;
            while !done.load(Ordering::Relaxed) {
                let t = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
                let first = (0..KEYS).map(|k| t.get(&key(k)).expect("get")).collect::<Vec<_>>();
                std::thread::sleep(std::time::Duration::from_millis(3));
                for k in 0..KEYS {
                    let again = t.get(&key(k)).expect("get again");
                    assert_eq!(again, first[k as usize], "a snapshot reads key {k} the same twice");
                    if let Some(v) = &again {
                        assert!(decode(k, v).is_some(), "key {k}: a value nobody wrote");
                    }
                }
                checks += 1;
            }
            checks
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (tree, conflicts) = (tree.clone(), Arc::clone(&conflicts));
            std::thread::spawn(move || writer(&tree, w, seed, txns, versioning, &conflicts))
        })
        .collect();
    let (committed, junk): (Vec<Committed>, Vec<Option<u64>>) =
        writers.into_iter().map(|h| h.join().expect("writer panicked")).unzip();
    done.store(true, Ordering::Relaxed);
    let (runs, collected, relocated) = gc.join().expect("gc thread");
    let reader_checks = reader.join().expect("reader panicked");
    let errors = gc_errors.lock().expect("lock").clone();
    assert!(errors.is_empty(), "run_vlog_gc returned errors: {errors:?}");

    // Per key: counters 1..=n, each committed exactly once; the last one is the state.
    let mut chains: BTreeMap<u64, BTreeMap<u64, u64>> = BTreeMap::new();
    for (k, counter, w) in committed.iter().flatten().copied() {
        let prev = chains.entry(k).or_default().insert(counter, w);
        assert!(prev.is_none(), "key {k}: counter {counter} committed twice (a lost update)");
    }
    let mut want = BTreeMap::new();
    for (k, chain) in &chains {
        let n = chain.len() as u64;
        assert_eq!(chain.keys().copied().collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());
        want.insert(key(*k), value(*k, n, chain[&n]));
    }
    for (w, last) in junk.iter().enumerate() {
        if let Some(i) = last {
            want.insert(junk_key(w as u64), junk_value(w as u64, *i));
        }
    }

    let last = tree.run_vlog_gc().expect("final gc");
    tree.maintenance_step(usize::MAX).expect("maintenance");
    let s = tree.stats();
    eprintln!(
        "seed {seed}: {} writes, {} writer conflicts, {} relocation conflicts; \
         gc thread {runs} runs, {collected} files collected, {relocated} bytes relocated; \
         final {last:?}; reader {reader_checks} checks; vlog {} files {} bytes, {} deleted",
        committed.iter().map(Vec::len).sum::<usize>(),
        conflicts.load(Ordering::Relaxed),
        s.conflicts - conflicts.load(Ordering::Relaxed),
        s.vlog_files,
        s.vlog_disk_bytes,
        s.vlog_deleted_files
    );
    assert!(dump(&tree).expect("dump") == want, "state after the final gc");
    assert!(s.vlog_gc_files > 0, "GC collected something");
    tree.close().expect("close");
    drop(tree);
    let tree = open(&mem, false, versioning);
    assert!(dump(&tree).expect("dump") == want, "state after reopen");
    let r = tree.run_vlog_gc().expect("gc after reopen");
    assert!(dump(&tree).expect("dump") == want, "state after gc after reopen: {r:?}");
    if versioning {
        let t = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
        for (k, chain) in &chains {
            let mut hi = key(*k);
            hi.push(0);
            let history: Vec<(u64, u64)> = t
                .scan_all_versions(&key(*k), &hi, None)
                .expect("scan")
                .into_iter()
                .map(|(_, v, _, del)| {
                    assert!(!del, "key {k}: nobody deletes");
                    decode(*k, &v).unwrap_or_else(|| panic!("key {k}: a value nobody wrote"))
                })
                .collect();
            let want: Vec<(u64, u64)> = chain.iter().rev().map(|(&c, &w)| (c, w)).collect();
            assert!(history == want, "key {k}: history is the whole chain, newest first");
        }
        for (w, last) in junk.iter().enumerate() {
            let Some(i) = last else { continue };
            let k = junk_key(w as u64);
            let mut hi = k.clone();
            hi.push(0);
            let history: Vec<_> = t
                .scan_all_versions(&k, &hi, None)
                .expect("scan")
                .into_iter()
                .map(|(_, v, ts, del)| (v.to_vec(), ts, del))
                .collect();
            assert!(
                history == [(junk_value(w as u64, *i), 1, false)],
                "junk key of writer {w}: one version, the last write"
            );
        }
    }
}

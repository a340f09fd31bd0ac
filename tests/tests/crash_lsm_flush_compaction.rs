//! Power cuts during flushes and compactions: a workload with 64 KiB memtables runs with
//! inline (deterministic) maintenance, so memtables are flushed, level 0 is compacted and the
//! manifest is edited many times; a crash is simulated before every durability call under
//! every crash policy. After each: the database opens, its state is a prefix of the commit
//! order holding every acknowledged Immediate commit, and it names no missing table.

use strata::{Durability, Error, Tree, TreeBuilder};
use strata_tests::{MARKER_KEY, Model, Rng, TxnSpec, diff, dump, prefix_states, tagged_value};
use strata_vfs::{CrashPolicy, MemFs};

fn open(mem: &MemFs) -> strata::Result<Tree> {
    TreeBuilder::new()
        .with_vfs(mem.clone())
        .with_wal_segment_size(64 * 1024)
        .with_max_memtable_size(64 * 1024)
        .with_background_threads(false)
        .build()
}

/// Transactions with values of 1-6 KiB over 24 keys: about 9 memtables' worth.
fn workload(seed: u64, count: usize) -> Vec<TxnSpec> {
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|i| {
            let mut writes = Vec::new();
            for j in 0..rng.range(1, 4) {
                let key = format!("key{:02}", rng.below(24)).into_bytes();
                if rng.percent(15) {
                    writes.push((key, None));
                } else {
                    let len = rng.range(1024, 6 * 1024) as usize;
                    writes.push((key, Some(tagged_value(i as u64 * 8 + j, len))));
                }
            }
            writes.push((MARKER_KEY.to_vec(), Some(i.to_string().into_bytes())));
            let durability =
                if rng.percent(30) { Durability::Immediate } else { Durability::Eventual };
            TxnSpec { writes, durability }
        })
        .collect()
}

/// Runs the workload until the first error: (acknowledged, attempted, last durable prefix).
fn run(mem: &MemFs, txns: &[TxnSpec]) -> (usize, usize, usize) {
    let Ok(tree) = open(mem) else { return (0, 0, 0) };
    let (mut acked, mut durable) = (0, 0);
    for (i, t) in txns.iter().enumerate() {
        match t.run(&tree) {
            Ok(()) => {
                assert!(!mem.is_crashed(), "commit {i} acknowledged after the power cut");
                acked = i + 1;
                if t.durability == Durability::Immediate {
                    durable = i + 1;
                }
            }
            Err(e) => {
                assert!(mem.is_crashed(), "commit {i} failed without a crash: {e:?}");
                assert!(!matches!(e, Error::TransactionConflict));
                return (acked, i + 1, durable);
            }
        }
    }
    let _ = tree.close();
    (acked, txns.len(), durable)
}

fn which_prefix(states: &[Model], got: &Model) -> Option<usize> {
    let p = match got.get(MARKER_KEY) {
        None => 0,
        Some(v) => std::str::from_utf8(v).ok()?.parse::<usize>().ok()? + 1,
    };
    (states.get(p)? == got).then_some(p)
}

#[test]
fn power_cut_before_every_durability_call_of_flushes_and_compactions() {
    let seed = strata_tests::test_seed("crash_lsm_flush_compaction");
    let txns = workload(seed, 70);
    let states = prefix_states(&txns);

    let mem = MemFs::new();
    let (acked, _, _) = run(&mem, &txns);
    assert_eq!(acked, txns.len());
    let total_syncs = mem.sync_count();
    let tree = open(&mem).expect("clean reopen");
    let stats = tree.stats();
    assert_eq!(dump(&tree).expect("dump"), states[txns.len()]);
    drop(tree);
    // The premise: the clean run flushed and compacted (counted on the first open's stats is
    // not possible after reopen, so check the files instead).
    let names = strata_vfs::Vfs::list(&mem).expect("list");
    let tables = names.iter().filter(|n| n.ends_with(".sst")).count();
    assert!(tables >= 1, "the workload must produce tables: {names:?} {stats:?}");

    let mut rng = Rng::new(seed ^ 0xc4a5);
    let mut images = 0u64;
    let mut prefixes = std::collections::BTreeSet::new();
    for n in 1..=total_syncs + 1 {
        let seeds_per_policy = if strata_tests::is_soak() { 4 } else { 1 };
        for policy in
            CrashPolicy::ALL.iter().copied().flat_map(|p| std::iter::repeat_n(p, seeds_per_policy))
        {
            let crash_seed = rng.next_u64();
            let ctx = format!(
                "seed {seed}, crash before durability call {n} of {total_syncs}, {policy:?} {crash_seed}"
            );
            let mem = MemFs::new();
            mem.arm_crash(n, policy, crash_seed);
            let (acked, attempted, durable) = run(&mem, &txns);
            let image = mem.take_crash_image().unwrap_or_else(|| mem.crash(policy, crash_seed));
            let tree = match open(&image) {
                Ok(t) => t,
                Err(e) => panic!("{ctx}: the database must open after a crash: {e}"),
            };
            let got = dump(&tree).unwrap_or_else(|e| panic!("{ctx}: read after recovery: {e}"));
            let Some(p) = which_prefix(&states, &got) else {
                let nearest = got.get(MARKER_KEY).cloned();
                panic!(
                    "{ctx}: not a prefix state (marker {nearest:?}): {}",
                    diff(&states[acked], &got)
                );
            };
            let lo = if policy == CrashPolicy::KeepUnsynced { acked } else { durable };
            assert!(
                p >= lo && p <= attempted.max(acked),
                "{ctx}: prefix {p} outside [{lo}, {attempted}]"
            );
            // It keeps working: a write, a clean close, a reopen.
            txns[0].run(&tree).unwrap_or_else(|e| panic!("{ctx}: write after recovery: {e}"));
            tree.close().expect("close");
            drop(tree);
            open(&image).unwrap_or_else(|e| panic!("{ctx}: second reopen: {e}"));
            images += 1;
            prefixes.insert(p);
        }
    }
    eprintln!(
        "LSM crash test: {total_syncs} durability calls, {images} crash images, {} distinct prefixes",
        prefixes.len()
    );
    assert!(prefixes.len() > 10, "crash points spread over the workload");
}

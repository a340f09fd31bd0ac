//! Reopening a cleanly closed database writes nothing: the WAL segment the open used to
//! create is created by the first write, and the manifest the open used to rewrite is kept
//! until the first manifest edit (docs/files.md, "Opening"). These tests check that such an
//! open and a close after it change no file, and that a power cut before every durability
//! call of a workload run after such a reopen (commits of both durabilities, a flush, a
//! close) still recovers a prefix of the commit order holding every acknowledged Immediate
//! commit, as every other crash suite demands.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use strata::{Durability, Mode};
use strata_tests::crash::{check_prefix, run_until_power_cut};
use strata_tests::{
    MARKER_KEY, Model, Rng, TxnSpec, copy_fs, diff, dump, open_mem, prefix_states, tagged_value,
    test_seed, wal_segments,
};
use strata_vfs::{CrashPolicy, MemFs, Vfs};

/// Commits before the clean close, and after the reopen.
const BEFORE: usize = 12;
const AFTER: usize = 24;
/// The commit (of those after the reopen) after which the workload flushes the memtables.
const FLUSH_AFTER: usize = 9;

fn workload(seed: u64, count: usize, large: bool) -> Vec<TxnSpec> {
    let mut rng = Rng::new(seed);
    let keys: Vec<Vec<u8>> = (0..16).map(|i| format!("key{i:02}").into_bytes()).collect();
    (0..count)
        .map(|i| {
            let mut writes = Vec::new();
            for j in 0..rng.range(1, 4) {
                let k = rng.pick(&keys).clone();
                if rng.percent(20) {
                    writes.push((k, None));
                    continue;
                }
                let len = if large { rng.range(20 * 1024, 40 * 1024) } else { rng.range(1, 300) };
                writes.push((k, Some(tagged_value(i as u64 * 16 + j, len as usize))));
            }
            writes.push((MARKER_KEY.to_vec(), Some(i.to_string().into_bytes())));
            let durability =
                if rng.percent(40) { Durability::Immediate } else { Durability::Eventual };
            TxnSpec { writes, durability }
        })
        .collect()
}

/// Every file's bytes, by name (the `LOCK` file included: it must not change either).
fn contents(mem: &MemFs) -> BTreeMap<String, Vec<u8>> {
    mem.list().unwrap().into_iter().map(|n| (n.clone(), mem.read_all(&n).unwrap())).collect()
}

/// A database holding the first `BEFORE` commits of `txns`, closed cleanly.
fn closed_base(txns: &[TxnSpec]) -> MemFs {
    let mem = MemFs::new();
    let tree = open_mem(&mem).unwrap();
    for t in &txns[..BEFORE] {
        t.run(&tree).unwrap();
    }
    tree.close().unwrap();
    mem
}

#[test]
fn a_reopen_after_a_clean_close_changes_no_file_until_the_first_write() {
    // Small values: the memtable stays below the close's flush threshold, so the WAL holds
    // the data and every open replays it. Large ones: the close flushes them to a table.
    for large in [false, true] {
        let ctx = if large { "flushed at close" } else { "kept in the WAL" };
        let txns = workload(test_seed("clean reopen writes nothing") ^ large as u64, 40, large);
        let states = prefix_states(&txns);
        let mem = closed_base(&txns);
        let changes = mem.change_count();
        let files = contents(&mem);
        for round in 0..3 {
            let tree = open_mem(&mem).unwrap();
            let got = dump(&tree).unwrap();
            assert!(got == states[BEFORE], "{ctx}, round {round}: {}", diff(&states[BEFORE], &got));
            // Nor does a read-only transaction.
            let txn = tree.begin_with_mode(Mode::ReadOnly).unwrap();
            assert!(txn.get(MARKER_KEY).unwrap().is_some(), "{ctx}");
            drop(txn);
            tree.close().unwrap();
            assert_eq!(mem.change_count(), changes, "{ctx}, round {round}: a file changed");
        }
        assert!(contents(&mem) == files, "{ctx}: the files differ after reopens");

        // The first write creates one WAL segment; a close and a reopen keep everything, and
        // the reopen after that second clean close again writes nothing.
        let before = wal_segments(&mem);
        let tree = open_mem(&mem).unwrap();
        for t in &txns[BEFORE..] {
            t.run(&tree).unwrap();
        }
        let during = wal_segments(&mem);
        assert!(during.len() > before.len(), "{ctx}: the first write creates a segment");
        tree.close().unwrap();
        let changes = mem.change_count();
        for round in 0..2 {
            let tree = open_mem(&mem).unwrap();
            let got = dump(&tree).unwrap();
            let want = &states[txns.len()];
            assert!(got == *want, "{ctx}, second close, round {round}: {}", diff(want, &got));
            tree.close().unwrap();
        }
        assert_eq!(mem.change_count(), changes, "{ctx}: a reopen after the second close wrote");
    }
}

/// Reopens `mem` and runs the commits after the clean close until the armed power cut (a
/// flush after commit `FLUSH_AFTER`), then closes the tree. Returns the bounds on the prefix
/// (of the whole workload) a recovery may give under `policy`.
fn run_after_reopen(
    mem: &MemFs,
    txns: &[TxnSpec],
    policy: CrashPolicy,
    ctx: &str,
) -> (usize, usize) {
    let tree = match open_mem(mem) {
        Ok(tree) => tree,
        Err(e) => {
            assert!(mem.is_crashed(), "{ctx}: open failed without a crash: {e:?}");
            return (BEFORE, BEFORE);
        }
    };
    let flush =
        |tree: &strata::Tree, i: usize| if i == FLUSH_AFTER { tree.flush() } else { Ok(()) };
    let out = run_until_power_cut(mem, &tree, &txns[BEFORE..], flush, ctx);
    if let Err(e) = tree.close() {
        assert!(mem.is_crashed(), "{ctx}: close failed without a crash: {e:?}");
    }
    let (lo, hi) = out.bounds(policy);
    (BEFORE + lo, BEFORE + hi)
}

#[test]
fn power_cut_before_every_durability_call_after_a_clean_reopen() {
    let mut rng = Rng::new(test_seed("power cut after a clean reopen"));
    for large in [false, true] {
        let txns = workload(rng.next_u64(), BEFORE + AFTER, large);
        let states = prefix_states(&txns);
        let base = closed_base(&txns);

        // The un-crashed run: how many durability calls it makes.
        let clean = copy_fs(&base);
        let (lo, _) = run_after_reopen(&clean, &txns, CrashPolicy::KeepUnsynced, "clean run");
        assert_eq!(lo, txns.len(), "clean run");
        let total = clean.sync_count();
        assert!(total >= 4, "the workload must sync (got {total} durability calls)");

        let mut prefixes = std::collections::BTreeSet::new();
        for n in 1..=total + 1 {
            for policy in CrashPolicy::ALL {
                let seed = rng.next_u64();
                let ctx = format!(
                    "large {large}, crash before durability call {n} of {total}, {policy:?} seed \
                     {seed}"
                );
                let mem = copy_fs(&base);
                mem.arm_crash(n, policy, seed);
                let (lo, hi) = run_after_reopen(&mem, &txns, policy, &ctx);
                let image = match mem.take_crash_image() {
                    Some(image) => image,
                    None => {
                        assert!(n > total, "{ctx}: the armed crash did not fire");
                        mem.crash(policy, seed)
                    }
                };
                let tree = open_mem(&image)
                    .unwrap_or_else(|e| panic!("{ctx}: the database does not open: {e:?}"));
                let got: Model = dump(&tree).unwrap();
                let p = check_prefix(&got, &states, lo, hi, &ctx);
                if n > total {
                    assert_eq!(p, txns.len(), "{ctx}: after a clean close everything is durable");
                }
                prefixes.insert(p);
                // The recovered database takes a durable write and survives a reopen.
                let extra = TxnSpec {
                    writes: vec![(b"after-crash".to_vec(), Some(tagged_value(u64::MAX, 100)))],
                    durability: Durability::Immediate,
                };
                extra.run(&tree).unwrap();
                tree.close().unwrap();
                let mut want = states[p].clone();
                extra.apply(&mut want);
                let tree = open_mem(&image).unwrap();
                let got = dump(&tree).unwrap();
                assert!(got == want, "{ctx}: reopen after recovery: {}", diff(&want, &got));
                tree.close().unwrap();
            }
        }
        eprintln!(
            "large {large}: {total} durability calls after the reopen, {} distinct prefixes",
            prefixes.len()
        );
        assert!(prefixes.len() > 2, "the cuts must land at different places: {prefixes:?}");
    }
}

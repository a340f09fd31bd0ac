//! Power cuts during flushes and compactions: a workload with 64 KiB memtables runs with
//! inline (deterministic) maintenance, so memtables are flushed, level 0 is compacted and the
//! manifest is edited many times; a crash is simulated before every durability call under
//! every crash policy. After each: the database opens, its state is a prefix of the commit
//! order holding every acknowledged Immediate commit, and it names no missing table. Its
//! recovery is then cut by a power cut before each of its own durability calls (under a random
//! policy), and the recovery after that must give the same prefix.
//!
//! `STRATA_SOAK` runs more crash seeds per crash point and policy.
//!
//! Every test runs on both filesystem stacks ([`Stack`]): `_plain` on `MemFs`, `_encrypted`
//! on `EncryptedFs<MemFs>` with the power cut in the `MemFs` underneath the encryption.

use strata::{Durability, Tree, TreeBuilder};
use strata_tests::crash::{
    Acked, RecoveryCuts, check_prefix, for_each_armed_power_cut, power_cut_during_recovery,
    report_crash_states, run_commits_until_power_cut, run_until_power_cut,
};
use strata_tests::{
    MARKER_KEY, Rng, Stack, TxnSpec, copy_fs, diff, dump, prefix_states, tagged_value,
};
use strata_vfs::MemFs;

fn open(stack: Stack, mem: &MemFs) -> strata::Result<Tree> {
    open_with_threads(stack, mem, false)
}

/// The suite's tree (64 KiB memtables and WAL segments) on `stack`, with or without
/// background threads.
fn open_with_threads(stack: Stack, mem: &MemFs, background: bool) -> strata::Result<Tree> {
    stack
        .apply(
            TreeBuilder::new()
                .with_vfs(mem.clone())
                .with_wal_segment_size(64 * 1024)
                .with_max_memtable_size(64 * 1024)
                .with_background_threads(background),
        )
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

/// Opens the database on `mem` and runs the workload until the first error, then closes it.
/// Nothing is acknowledged if the open fails.
fn run(stack: Stack, mem: &MemFs, txns: &[TxnSpec], ctx: &str) -> Acked {
    let Ok(tree) = open(stack, mem) else { return Acked::default() };
    let out = run_until_power_cut(mem, &tree, txns, |_, _| Ok(()), ctx);
    let _ = tree.close();
    out
}

#[test]
fn power_cut_before_every_durability_call_of_flushes_and_compactions_plain() {
    power_cut_before_every_durability_call_of_flushes_and_compactions(Stack::Plain);
}

#[test]
fn power_cut_before_every_durability_call_of_flushes_and_compactions_encrypted() {
    power_cut_before_every_durability_call_of_flushes_and_compactions(Stack::Encrypted);
}

fn power_cut_before_every_durability_call_of_flushes_and_compactions(stack: Stack) {
    let seed = strata_tests::test_seed(&format!("crash_lsm_flush_compaction_{}", stack.name()));
    let txns = workload(seed, 70);
    let states = prefix_states(&txns);

    let mem = MemFs::new();
    let clean = run(stack, &mem, &txns, &format!("seed {seed}, clean run"));
    assert_eq!(clean.acked, txns.len());
    let total_syncs = mem.sync_count();
    let tree = open(stack, &mem).expect("clean reopen");
    let stats = tree.stats();
    assert_eq!(dump(&tree).expect("dump"), states[txns.len()]);
    drop(tree);
    // The premise: the clean run flushed and compacted (counted on the first open's stats is
    // not possible after reopen, so check the files instead).
    let names = strata_vfs::Vfs::list(&mem).expect("list");
    let tables = names.iter().filter(|n| n.ends_with(".sst")).count();
    assert!(tables >= 1, "the workload must produce tables: {names:?} {stats:?}");

    let mut rng = Rng::new(seed ^ 0xc4a5);
    let seeds_per_policy = strata_tests::scaled(1) as usize;
    let mut recovery_cuts = 0u64;
    let totals = for_each_armed_power_cut(
        &format!("{} stack, seed {seed}", stack.name()),
        total_syncs,
        seeds_per_policy,
        &mut rng,
        |mem, ctx| run(stack, mem, &txns, ctx),
        |rng, cut, ctx| {
            let image = &cut.image;
            let pristine = copy_fs(image);
            let tree = match open(stack, image) {
                Ok(t) => t,
                Err(e) => panic!("{ctx}: the database must open after a crash: {e}"),
            };
            let got = dump(&tree).unwrap_or_else(|e| panic!("{ctx}: read after recovery: {e}"));
            let (lo, hi) = cut.bounds();
            let p = check_prefix(&got, &states, lo, hi, ctx);
            // It keeps working: a write, a clean close, a reopen.
            txns[0].run(&tree).unwrap_or_else(|e| panic!("{ctx}: write after recovery: {e}"));
            tree.close().expect("close");
            drop(tree);
            open(stack, image).unwrap_or_else(|e| panic!("{ctx}: second reopen: {e}"));
            // Recovery never rewrites what it replays: cut anywhere, it recovers the same.
            recovery_cuts += power_cut_during_recovery(
                &pristine,
                |m| open(stack, m),
                RecoveryCuts::Every,
                rng,
                ctx,
                |cut, ctx| {
                    let tree =
                        open(stack, cut).unwrap_or_else(|e| panic!("{ctx}: does not open: {e}"));
                    let got = dump(&tree).unwrap_or_else(|e| panic!("{ctx}: read: {e}"));
                    assert!(
                        got == states[p],
                        "{ctx}: recovered differently: {}",
                        diff(&states[p], &got)
                    );
                },
            );
            p
        },
    );
    totals.check_spread(&format!("LSM crash test, {} stack", stack.name()), total_syncs);
    report_crash_states(
        &format!("crash_lsm_flush_compaction, {} stack", stack.name()),
        totals.images + recovery_cuts,
    );
}

/// The same workload with the flush and compaction threads on, so the power often goes in a
/// background flush while a commit is between its WAL write and its acknowledgement. Such a
/// commit is acknowledged after the cut fired, soundly (its write came first: every call after
/// the cut fails); the crash helper used to flag it as "acknowledged after the power cut".
/// Now only a commit begun on a dead filesystem counts as that, and an acknowledged commit is
/// held to the acknowledged bound: under `KeepUnsynced`, every one of them must be present.
/// Background timing varies, so the number of durability calls of a run does too; the cuts
/// are armed over the clean run's count and a little beyond.
#[test]
fn commit_acknowledged_while_a_background_flush_hits_the_power_cut_is_kept_plain() {
    commit_acknowledged_while_a_background_flush_hits_the_power_cut_is_kept(Stack::Plain, 2);
}

/// One seed per random policy instead of two on the encrypted stack (CI time).
#[test]
fn commit_acknowledged_while_a_background_flush_hits_the_power_cut_is_kept_encrypted() {
    commit_acknowledged_while_a_background_flush_hits_the_power_cut_is_kept(Stack::Encrypted, 1);
}

fn commit_acknowledged_while_a_background_flush_hits_the_power_cut_is_kept(
    stack: Stack,
    seeds_per_policy: usize,
) {
    let seed = strata_tests::test_seed(&format!(
        "commit_acknowledged_while_a_background_flush_hits_the_cut_{}",
        stack.name()
    ));
    let txns = workload(seed, 70);
    let states = prefix_states(&txns);
    let raced = std::cell::Cell::new(0u64);
    let open_bg = |mem: &MemFs| open_with_threads(stack, mem, true);
    let run_bg = |mem: &MemFs, ctx: &str| -> Acked {
        let Ok(tree) = open_bg(mem) else { return Acked::default() };
        let durabilities = txns.iter().map(|t| t.durability);
        let commit = |tree: &Tree, i: usize| {
            let r = txns[i].run(tree);
            raced.set(raced.get() + u64::from(r.is_ok() && mem.is_crashed()));
            r
        };
        let out = run_commits_until_power_cut(mem, &tree, durabilities, commit, |_, _| Ok(()), ctx);
        let _ = tree.close();
        out
    };
    let mem = MemFs::new();
    assert_eq!(run_bg(&mem, "clean run").acked, txns.len());
    let total_syncs = mem.sync_count();
    let mut rng = Rng::new(seed ^ 0xb6);
    let totals = for_each_armed_power_cut(
        &format!("{} stack, seed {seed}, background threads", stack.name()),
        total_syncs,
        seeds_per_policy,
        &mut rng,
        |mem, ctx| run_bg(mem, ctx),
        |_, cut, ctx| {
            let tree = open_bg(&cut.image)
                .unwrap_or_else(|e| panic!("{ctx}: the database must open after a crash: {e}"));
            let got = dump(&tree).unwrap_or_else(|e| panic!("{ctx}: read after recovery: {e}"));
            let (lo, hi) = cut.bounds();
            check_prefix(&got, &states, lo, hi, ctx)
        },
    );
    eprintln!("{} commits acknowledged after a background thread hit the cut", raced.get());
    totals.check_spread(
        &format!("LSM crash test, background threads, {} stack", stack.name()),
        total_syncs,
    );
}

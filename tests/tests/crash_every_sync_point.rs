//! Crash-point enumeration: a power cut just before every durability call (file sync or
//! directory sync) of a fixed workload, under every `CrashPolicy`, and a power cut image taken
//! after every commit while the tree is open.
//!
//! After each simulated crash the database must open, and its whole content must equal the
//! model state after some prefix of the commit order (so every transaction is all-or-nothing
//! and order is kept), a prefix that contains every commit acknowledged as `Immediate` (and,
//! when unsynced data survives the crash, every acknowledged commit), and nothing after the
//! commit that was in flight. The recovered database must then take new writes and survive a
//! close and reopen and a second crash.
//!
//! The workloads are fixed (`WORKLOAD_SEEDS`; `STRATA_WORKLOAD_SEED=<seed>` runs another one);
//! the crash policies' seeds are random and printed (`STRATA_SEED=<seed>` replays them).
//! `STRATA_SOAK=1` runs more crash seeds per point and extra random workloads.
//!
//! Every test runs on both filesystem stacks ([`Stack`]): `_plain` on `MemFs`, `_encrypted`
//! on `EncryptedFs<MemFs>` with the power cut in the `MemFs` underneath the encryption.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use strata::{Durability, Error};
use strata_tests::crash::{
    Acked, RecoveryCuts, check_prefix, power_cut_during_recovery, report_crash_states,
    run_until_power_cut,
};
use strata_tests::{
    MARKER_KEY, Model, Rng, Stack, TxnSpec, copy_fs, diff, dump, is_soak, prefix_states, scaled,
    tagged_value, test_seed, wal_segments,
};
use strata_vfs::{CrashPolicy, MemFs};

/// The workloads CI runs.
const WORKLOAD_SEEDS: [u64; 2] = [0x5EED_0C4A_5400, 0x0DD_BA11];

/// The workloads to run: `STRATA_WORKLOAD_SEED` alone, or the fixed ones (plus random ones
/// when soaking, printed).
fn workload_seeds(rng: &mut Rng) -> Vec<u64> {
    if let Some(s) = std::env::var("STRATA_WORKLOAD_SEED").ok().and_then(|s| s.trim().parse().ok())
    {
        return vec![s];
    }
    let mut seeds = WORKLOAD_SEEDS.to_vec();
    if is_soak() {
        for _ in 0..scaled(1) / 4 {
            let s = rng.next_u64();
            eprintln!("extra workload: replay with STRATA_WORKLOAD_SEED={s}");
            seeds.push(s);
        }
    }
    seeds
}

/// About 40 transactions: multi-key, some deletes, mixed durability, values from empty to
/// 70 KiB (records fragment across 32 KiB blocks), enough bytes for several 64 KiB segments.
fn workload(seed: u64, count: usize) -> Vec<TxnSpec> {
    let mut rng = Rng::new(seed);
    let keys: Vec<Vec<u8>> = (0..16).map(|i| format!("key{i:02}").into_bytes()).collect();
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let mut writes = Vec::new();
        let n = rng.range(1, 4);
        for j in 0..n {
            let k = rng.pick(&keys).clone();
            if rng.percent(20) {
                writes.push((k, None));
                continue;
            }
            // Every seventh transaction carries a value larger than a WAL block.
            let big = j == 0 && i % 7 == 3;
            let len = if big {
                rng.range(33 * 1024, 70 * 1024)
            } else {
                match rng.below(10) {
                    0..=1 => rng.range(1024, 8 * 1024),
                    2 => 0,
                    _ => rng.range(1, 200),
                }
            } as usize;
            writes.push((k, Some(tagged_value((i * 16 + j as usize) as u64, len))));
        }
        writes.push((MARKER_KEY.to_vec(), Some(i.to_string().into_bytes())));
        let durability = if rng.percent(40) { Durability::Immediate } else { Durability::Eventual };
        out.push(TxnSpec { writes, durability });
    }
    out
}

/// Crash policies with the seeds to run each under (the two deterministic policies need one).
fn policy_seeds(extra_seeds: u64, rng: &mut Rng) -> Vec<(CrashPolicy, u64)> {
    let mut out = Vec::new();
    for policy in CrashPolicy::ALL {
        match policy {
            CrashPolicy::DropUnsynced | CrashPolicy::KeepUnsynced => out.push((policy, 0)),
            CrashPolicy::TornTail | CrashPolicy::GarbageTail => {
                for _ in 0..extra_seeds {
                    out.push((policy, rng.next_u64()));
                }
            }
        }
    }
    out
}

/// Opens the database in `image` and checks that it holds a prefix `p` of the workload with
/// `lo <= p <= hi`; then that it takes a write, survives close and reopen, and survives a
/// second crash. Returns `p`.
fn check_image(
    stack: Stack,
    image: &MemFs,
    states: &[Model],
    lo: usize,
    hi: usize,
    rng: &mut Rng,
    ctx: &str,
) -> usize {
    let tree = stack
        .open_mem(image)
        .unwrap_or_else(|e| panic!("{ctx}: the database does not open: {e:?}"));
    let got = dump(&tree).unwrap_or_else(|e| panic!("{ctx}: reading it fails: {e:?}"));
    let p = check_prefix(&got, states, lo, hi, ctx);

    // The recovered database keeps working: a durable write, a second power cut, a reopen.
    let extra = TxnSpec {
        writes: vec![(b"after-crash".to_vec(), Some(tagged_value(u64::MAX, 100)))],
        durability: Durability::Immediate,
    };
    extra.run(&tree).unwrap_or_else(|e| panic!("{ctx}: commit after recovery failed: {e:?}"));
    let mut want = states[p].clone();
    extra.apply(&mut want);
    let policy = *rng.pick(&CrashPolicy::ALL);
    let second = image.crash(policy, rng.next_u64());
    tree.close().unwrap_or_else(|e| panic!("{ctx}: close after recovery failed: {e:?}"));
    drop(tree);
    for (what, fs) in [("reopen", image), ("second crash", &second)] {
        let tree =
            stack.open_mem(fs).unwrap_or_else(|e| panic!("{ctx}: {what} after recovery: {e:?}"));
        let got = dump(&tree).unwrap();
        assert!(got == want, "{ctx}: {what} after recovery ({policy:?}): {}", diff(&want, &got));
        tree.close().unwrap();
    }
    p
}

/// A power cut before each durability call of the recovery of `image` (under a random
/// policy): the next recovery must give the same prefix `p` the uninterrupted one gave, since
/// recovery never rewrites what it replays. Returns the number of cuts tried.
fn crash_during_recovery(
    stack: Stack,
    image: &MemFs,
    states: &[Model],
    p: usize,
    rng: &mut Rng,
    ctx: &str,
) -> u64 {
    let open = |m: &MemFs| stack.open_mem(m);
    power_cut_during_recovery(image, open, RecoveryCuts::Every, rng, ctx, |cut, ctx| {
        let tree = stack.open_mem(cut).unwrap_or_else(|e| panic!("{ctx}: does not open: {e:?}"));
        let got = dump(&tree).unwrap();
        assert!(got == states[p], "{ctx}: recovered differently: {}", diff(&states[p], &got));
        tree.close().unwrap();
    })
}

/// Opens a tree on `mem` and runs the workload on it until the first error (which must come
/// from the armed power cut and poison the tree), then closes it. Returns what was
/// acknowledged.
fn run_until_error(stack: Stack, mem: &MemFs, txns: &[TxnSpec], ctx: &str) -> Acked {
    let tree = match stack.open_mem(mem) {
        Ok(t) => t,
        Err(e) => {
            assert!(mem.is_crashed(), "{ctx}: open failed without a crash: {e:?}");
            return Acked::default();
        }
    };
    let out = run_until_power_cut(mem, &tree, txns, |_, _| Ok(()), ctx);
    if out.attempted > out.acked {
        // Commit `acked` failed.
        assert!(tree.is_poisoned(), "{ctx}: a failed WAL write must poison the tree");
        let again = txns[out.acked].run(&tree);
        assert!(matches!(again, Err(Error::Poisoned)), "{ctx}: commit after failure: {again:?}");
        return out;
    }
    if let Err(e) = tree.close() {
        assert!(mem.is_crashed(), "{ctx}: close failed without a crash: {e:?}");
    }
    out
}

struct Totals {
    points: u64,
    images: u64,
    recovery_crashes: u64,
    prefixes: BTreeSet<usize>,
}

fn crash_at_every_sync_point(
    stack: Stack,
    workload_seed: u64,
    sector: u32,
    crash_seeds: u64,
    rng: &mut Rng,
) -> Totals {
    let txns = workload(workload_seed, 40);
    let states = prefix_states(&txns);

    // The un-crashed run: how many durability calls, and a check of the premises.
    let mem = MemFs::with_sector_size(sector);
    let tree = stack.open_mem(&mem).unwrap();
    let clean = run_until_power_cut(&mem, &tree, &txns, |_, _| Ok(()), "clean run");
    assert_eq!(clean.acked, txns.len());
    // Counted before the close, whose flush deletes the segments of the flushed memtables.
    let segments = wal_segments(&mem).len();
    assert!(segments >= 3, "the workload must rotate the WAL (got {segments} segments)");
    tree.close().unwrap();
    drop(tree);
    let total_syncs = mem.sync_count();
    let tree = stack.open_mem(&mem).unwrap();
    assert_eq!(dump(&tree).unwrap(), states[txns.len()], "clean run");
    drop(tree);

    let mut totals =
        Totals { points: 0, images: 0, recovery_crashes: 0, prefixes: BTreeSet::new() };
    for n in 1..=total_syncs + 1 {
        totals.points += 1;
        for (policy, seed) in policy_seeds(crash_seeds, rng) {
            let ctx = format!(
                "{} stack, workload {workload_seed:#x}, sector {sector}, crash before durability \
                 call {n} of {total_syncs}, {policy:?} seed {seed}",
                stack.name()
            );
            let mem = MemFs::with_sector_size(sector);
            mem.arm_crash(n, policy, seed);
            let out = run_until_error(stack, &mem, &txns, &ctx);
            let image = match mem.take_crash_image() {
                Some(image) => image,
                None => {
                    assert!(n > total_syncs, "{ctx}: the armed crash did not fire");
                    assert_eq!(out.acked, txns.len(), "{ctx}");
                    mem.crash(policy, seed)
                }
            };
            // Unsynced data that survives is everything written: every acknowledged commit.
            let (lo, hi) = out.bounds(policy);
            let pristine = copy_fs(&image);
            let p = check_image(stack, &image, &states, lo, hi, rng, &ctx);
            totals.recovery_crashes +=
                crash_during_recovery(stack, &pristine, &states, p, rng, &ctx);
            if n > total_syncs {
                assert_eq!(p, txns.len(), "{ctx}: after a clean close everything is durable");
            }
            totals.images += 1;
            totals.prefixes.insert(p);
        }
    }
    eprintln!(
        "workload {workload_seed:#x} (sector {sector}): {} durability calls, {segments} WAL segments, \
         {} crash points, {} images (+{} power cuts during their recovery), {} distinct recovered \
         prefixes",
        total_syncs,
        totals.points,
        totals.images,
        totals.recovery_crashes,
        totals.prefixes.len()
    );
    totals
}

#[test]
fn power_cut_before_every_durability_call_plain() {
    power_cut_before_every_durability_call(Stack::Plain, if is_soak() { 10 } else { 3 });
}

/// The same on `EncryptedFs<MemFs>`, with the power cut in the `MemFs` underneath. One seed
/// per random policy instead of three keeps the added CI time modest; every crash point,
/// both workloads and both sector sizes still run.
#[test]
fn power_cut_before_every_durability_call_encrypted() {
    power_cut_before_every_durability_call(Stack::Encrypted, if is_soak() { 10 } else { 1 });
}

fn power_cut_before_every_durability_call(stack: Stack, seeds_per_policy: u64) {
    let seed = test_seed(&format!(
        "power_cut_before_every_durability_call_{} (crash seeds)",
        stack.name()
    ));
    let mut rng = Rng::new(seed);
    let (mut points, mut images, mut recovery_crashes) = (0, 0, 0);
    for workload_seed in workload_seeds(&mut rng) {
        for sector in [512, 4096] {
            let t =
                crash_at_every_sync_point(stack, workload_seed, sector, seeds_per_policy, &mut rng);
            // Crashes land between syncs, so many different prefixes must have been recovered.
            assert!(t.prefixes.len() > 10, "too few distinct outcomes: {:?}", t.prefixes);
            points += t.points;
            images += t.images;
            recovery_crashes += t.recovery_crashes;
        }
    }
    eprintln!(
        "checked {points} crash points, {images} crash images, {recovery_crashes} power cuts during \
         recovery"
    );
    report_crash_states(
        &format!("crash_every_sync_point: before every durability call, {} stack", stack.name()),
        images + recovery_crashes,
    );
}

/// A power cut while the tree is open, right after each commit returns (no close, no armed
/// crash): every policy, several seeds.
#[test]
fn power_cut_after_every_commit_while_open_plain() {
    power_cut_after_every_commit_while_open(Stack::Plain, if is_soak() { 10 } else { 3 });
}

/// The same on `EncryptedFs<MemFs>`; one seed per random policy (see
/// `power_cut_before_every_durability_call_encrypted`).
#[test]
fn power_cut_after_every_commit_while_open_encrypted() {
    power_cut_after_every_commit_while_open(Stack::Encrypted, if is_soak() { 10 } else { 1 });
}

fn power_cut_after_every_commit_while_open(stack: Stack, seeds_per_policy: u64) {
    let seed = test_seed(&format!(
        "power_cut_after_every_commit_while_open_{} (crash seeds)",
        stack.name()
    ));
    let mut rng = Rng::new(seed);
    let mut images = 0u64;
    for workload_seed in workload_seeds(&mut rng) {
        images += power_cut_after_every_commit(stack, workload_seed, seeds_per_policy, &mut rng);
    }
    eprintln!("checked {images} crash images taken while the tree was open");
    report_crash_states(
        &format!("crash_every_sync_point: after every commit while open, {} stack", stack.name()),
        images,
    );
}

fn power_cut_after_every_commit(
    stack: Stack,
    workload_seed: u64,
    seeds_per_policy: u64,
    rng: &mut Rng,
) -> u64 {
    let txns = workload(workload_seed, 40);
    let states = prefix_states(&txns);
    let mem = MemFs::new();
    let tree = stack.open_mem(&mem).unwrap();
    let mut images = 0u64;
    let mut prefixes = BTreeSet::new();
    let mut durable = 0;
    // Commits made durable by a sync: Immediate ones, and everything before a WAL rotation
    // (the old segment is synced before the new one starts).
    let mut synced = 0;
    for (i, t) in txns.iter().enumerate() {
        let segments_before = wal_segments(&mem).len();
        t.run(&tree).unwrap();
        if wal_segments(&mem).len() > segments_before {
            synced = i;
        }
        if t.durability == Durability::Immediate {
            durable = i + 1;
            synced = i + 1;
        }
        for (policy, seed) in policy_seeds(seeds_per_policy, rng) {
            let ctx = format!(
                "{} stack, workload {workload_seed:#x}, power cut after commit {i}, {policy:?} \
                 seed {seed}",
                stack.name()
            );
            let image = mem.crash(policy, seed);
            let lo = if policy == CrashPolicy::KeepUnsynced { i + 1 } else { durable };
            let p = check_image(stack, &image, &states, lo, i + 1, rng, &ctx);
            if policy == CrashPolicy::DropUnsynced {
                assert_eq!(p, synced, "{ctx}: exactly the synced commits survive");
            }
            prefixes.insert(p);
            images += 1;
        }
    }
    tree.close().unwrap();
    eprintln!(
        "workload {workload_seed:#x}: {images} crash images after {} commits, {} distinct prefixes",
        txns.len(),
        prefixes.len()
    );
    images
}

/// Several threads commit concurrently (so commits form groups mixing Immediate and Eventual
/// members) while a power cut strikes before the n-th durability call. Each thread writes its
/// own keys, so its commits are ordered; after recovery every thread's commits must be a
/// prefix of its sequence holding every commit acknowledged as Immediate (every acknowledged
/// one if unsynced data survived), each commit whole.
#[test]
fn power_cut_under_concurrent_group_commits_plain() {
    power_cut_under_concurrent_group_commits(Stack::Plain, scaled(60));
}

/// The same on `EncryptedFs<MemFs>`, with 20 runs instead of 60 (CI time).
#[test]
fn power_cut_under_concurrent_group_commits_encrypted() {
    power_cut_under_concurrent_group_commits(Stack::Encrypted, scaled(20));
}

fn power_cut_under_concurrent_group_commits(stack: Stack, runs: u64) {
    const THREADS: usize = 4;
    let seed = test_seed(&format!("power_cut_under_concurrent_group_commits_{}", stack.name()));
    let mut rng = Rng::new(seed);
    let per_thread = 25usize;
    let value =
        |t: usize, j: usize| tagged_value((t * 1000 + j) as u64, (t * 7919 + j * 104_729) % 9000);
    let immediate = |t: usize, j: usize| (t + j).is_multiple_of(3);
    let mut fired = 0;
    for run in 0..runs {
        let n = rng.range(1, 70);
        let policy = *rng.pick(&CrashPolicy::ALL);
        let crash_seed = rng.next_u64();
        let ctx = format!(
            "{} stack, run {run}: power cut before durability call {n}, {policy:?} seed \
             {crash_seed}",
            stack.name()
        );
        let mem = MemFs::new();
        mem.arm_crash(n, policy, crash_seed);
        let Ok(tree) = stack.open_mem(&mem) else {
            assert!(mem.is_crashed(), "{ctx}");
            fired += 1;
            continue;
        };
        // acked[t] = (commits acknowledged, commits acknowledged up to the last Immediate one)
        let acked: Vec<(usize, usize)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let tree = tree.clone();
                    s.spawn(move || {
                        let (mut acked, mut durable) = (0, 0);
                        for j in 0..per_thread {
                            let mut txn = tree.begin().unwrap();
                            txn.set(format!("t{t}/{j:03}").as_bytes(), &value(t, j)).unwrap();
                            txn.set(format!("t{t}/last").as_bytes(), j.to_string().as_bytes())
                                .unwrap();
                            if immediate(t, j) {
                                txn.set_durability(Durability::Immediate);
                            }
                            if txn.commit_blocking().is_err() {
                                break;
                            }
                            acked = j + 1;
                            if immediate(t, j) {
                                durable = j + 1;
                            }
                        }
                        (acked, durable)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        drop(tree);
        let image = match mem.take_crash_image() {
            Some(image) => {
                fired += 1;
                image
            }
            None => mem.crash(policy, crash_seed),
        };
        let tree = stack.open_mem(&image).unwrap_or_else(|e| panic!("{ctx}: does not open: {e:?}"));
        let got = dump(&tree).unwrap();
        for (t, &(acked, durable)) in acked.iter().enumerate() {
            let last = got
                .get(format!("t{t}/last").as_bytes())
                .map(|v| String::from_utf8_lossy(v).parse::<usize>().unwrap() + 1)
                .unwrap_or(0);
            let lo = if policy == CrashPolicy::KeepUnsynced { acked } else { durable };
            // A commit in flight when the cut struck may have made it.
            assert!(
                (lo..=(acked + 1).min(per_thread)).contains(&last),
                "{ctx}: thread {t} recovered {last} commits; acknowledged {acked}, durable {durable}"
            );
            for j in 0..per_thread {
                let v = got.get(format!("t{t}/{j:03}").as_bytes());
                if j < last {
                    assert_eq!(
                        v,
                        Some(&value(t, j)),
                        "{ctx}: thread {t} commit {j} torn or missing"
                    );
                } else {
                    assert_eq!(v, None, "{ctx}: thread {t} commit {j} present past its last");
                }
            }
        }
        for k in got.keys() {
            let owned = (0..THREADS).any(|t| k.starts_with(format!("t{t}/").as_bytes()));
            assert!(owned, "{ctx}: unexpected key {}", strata_tests::show(k));
        }
    }
    eprintln!("{runs} concurrent runs, {fired} power cuts fired during the workload");
    report_crash_states(
        &format!("crash_every_sync_point: concurrent group commits, {} stack", stack.name()),
        runs,
    );
}

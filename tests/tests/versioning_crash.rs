//! Power cuts during a versioned workload: every version of every key must survive exactly as
//! a prefix of the commit order.
//!
//! The workload mixes `set_at_version` at explicit timestamps (older than the key's newest,
//! duplicates of earlier (key, timestamp) pairs, 0, in the future) with plain sets and deletes
//! (tombstone versions) whose commit timestamps are known exactly: the tree runs on a manual
//! clock set to a strictly increasing value before every commit. Values are 1-6 KiB and
//! memtables 64 KiB with inline maintenance, so memtables are flushed and level 0 compacted
//! many times; durability is Immediate or Eventual at random.
//!
//! A crash is simulated before every durability call under every crash policy. After each,
//! the database must open and its full history (`scan_all_versions`, plus `get`,
//! `get_at_version` and `range_at_version` spot checks) must equal the model history after
//! some prefix of the workload that holds every acknowledged Immediate commit (every
//! acknowledged commit under `KeepUnsynced`). A commit after recovery, with the clock stepped
//! back to 0, must get a timestamp above every recovered commit's; after maintenance and a
//! reopen the history is still exact.
//!
//! The recovery of every image is itself cut by a power cut before each of its durability
//! calls (under a random policy); the recovery after that must give exactly the same history.
//!
//! Replay with `STRATA_SEED=<seed>`; `STRATA_SOAK` runs more crash seeds per crash point.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use strata::{Durability, Mode, Tree, TreeBuilder};
use strata_core::ManualClock;
use strata_tests::crash::{
    Acked, RecoveryCuts, check_bounds, for_each_armed_power_cut, power_cut_during_recovery,
    report_crash_states, run_commits_until_power_cut,
};
use strata_tests::{MARKER_KEY, Rng, copy_fs, marker_prefix, show, tagged_value, versioned};
use strata_vfs::MemFs;

/// The clock reading (and so the commit timestamp) of workload transaction `i`.
fn commit_ts(i: usize) -> u64 {
    1_000_000 + 1_000 * (i as u64 + 1)
}

#[derive(Debug, Clone)]
struct VTxn {
    ops: Vec<Op>,
    durability: Durability,
}

/// Per key, per timestamp, every write at it, oldest first (`None`: tombstone).
type History = versioned::History<Bytes>;
type Op = versioned::Op<Bytes>;

fn history_after(txns: &[VTxn], p: usize) -> History {
    let mut h = History::default();
    for (i, t) in txns.iter().take(p).enumerate() {
        h.apply(&t.ops, commit_ts(i));
    }
    h
}

fn keys() -> Vec<Vec<u8>> {
    (0..20).map(|i| format!("key{i:02}").into_bytes()).collect()
}

/// About 150 transactions of 1-4 writes of 1-6 KiB: a dozen or more memtables.
fn workload(seed: u64, count: usize) -> Vec<VTxn> {
    let mut rng = Rng::new(seed);
    let keys = keys();
    // (key, ts) pairs written so far, to rewrite some of them.
    let mut written: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut newest: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    let mut tag = 0u64;
    (0..count)
        .map(|i| {
            let mut ops = Vec::new();
            for _ in 0..rng.range(1, 4) {
                tag += 1;
                let key = rng.pick(&keys).clone();
                let value = Bytes::from(tagged_value(tag, rng.range(1024, 6 * 1024) as usize));
                match rng.below(100) {
                    0..=59 => {
                        let ts = match rng.below(10) {
                            0 | 1 if !written.is_empty() => {
                                let (k, ts) = rng.pick(&written).clone();
                                ops.push(Op::SetAt(k, value, ts));
                                continue;
                            }
                            2 | 3 => rng.range(0, newest.get(&key).copied().unwrap_or(0)),
                            4 => 0,
                            5 => commit_ts(count + 10) + rng.below(1000),
                            _ => rng.range(0, commit_ts(i) + 5_000),
                        };
                        written.push((key.clone(), ts));
                        ops.push(Op::SetAt(key, value, ts));
                    }
                    60..=84 => ops.push(Op::Set(key, value)),
                    _ => ops.push(Op::Delete(key)),
                }
            }
            ops.push(Op::Set(MARKER_KEY.to_vec(), Bytes::from(i.to_string())));
            // A plain and an explicit write of one key at the commit timestamp would be two
            // identical internal keys; keep that ambiguity out.
            versioned::drop_commit_ts_clashes(&mut ops, commit_ts(i));
            for op in &ops {
                let (k, ts) = match op {
                    Op::Set(k, _) | Op::Delete(k) => (k, commit_ts(i)),
                    Op::SetAt(k, _, ts) => (k, *ts),
                };
                let n = newest.entry(k.clone()).or_insert(0);
                *n = (*n).max(ts);
            }
            let durability =
                if rng.percent(30) { Durability::Immediate } else { Durability::Eventual };
            VTxn { ops, durability }
        })
        .collect()
}

fn open(mem: &MemFs, clock: &Arc<ManualClock>) -> strata::Result<Tree> {
    TreeBuilder::new()
        .with_vfs(mem.clone())
        .with_versioning(true, 0)
        .with_clock(clock.clone())
        .with_wal_segment_size(64 * 1024)
        .with_max_memtable_size(64 * 1024)
        .with_background_threads(false)
        .build()
}

fn run_txn(tree: &Tree, clock: &ManualClock, i: usize, t: &VTxn) -> strata::Result<()> {
    let mut txn = tree.begin()?;
    txn.set_durability(t.durability);
    for op in &t.ops {
        op.run(&mut txn)?;
    }
    clock.set(commit_ts(i));
    txn.commit_blocking()
}

/// Opens the database on `mem` and runs the workload until the first error, then closes it.
/// Nothing is acknowledged if the open fails.
fn run(mem: &MemFs, txns: &[VTxn], ctx: &str) -> Acked {
    let clock = Arc::new(ManualClock::default());
    let Ok(tree) = open(mem, &clock) else { return Acked::default() };
    let durabilities = txns.iter().map(|t| t.durability);
    let commit = |tree: &Tree, i: usize| run_txn(tree, &clock, i, &txns[i]);
    let out = run_commits_until_power_cut(mem, &tree, durabilities, commit, |_, _| Ok(()), ctx);
    let _ = tree.close();
    out
}

type Scanned = Vec<(Bytes, Bytes, u64, bool)>;

fn scan(tree: &Tree) -> strata::Result<Scanned> {
    tree.begin_with_mode(Mode::ReadOnly)?.scan_all_versions(b"", b"\xff", None)
}

/// Exact comparison of a full scan with the history. Shadowed writes at the same (key, ts)
/// may be listed after the newest one (newest first); returns how many were.
fn compare(got: &Scanned, want: &History) -> Result<usize, String> {
    let mut i = 0;
    let mut shadowed = 0;
    for (key, versions) in &want.keys {
        for (ts, writes) in versions.iter().rev() {
            let mut expect = writes.iter().rev();
            let mut n = 0;
            while let Some((gk, gv, gts, gdel)) = got.get(i) {
                if gk.as_ref() != key.as_slice() || gts != ts {
                    break;
                }
                let Some(w) = expect.next() else {
                    return Err(format!("too many versions at ({}, {ts})", show(key)));
                };
                let g = if *gdel { None } else { Some(gv) };
                if g != w.as_ref() || (*gdel && !gv.is_empty()) {
                    return Err(format!(
                        "({}, {ts}) entry {n}: got {} want {}",
                        show(key),
                        g.map_or("tombstone".into(), |v| format!("{} bytes", v.len())),
                        w.as_ref().map_or("tombstone".into(), |v| format!("{} bytes", v.len()))
                    ));
                }
                n += 1;
                i += 1;
            }
            if n == 0 {
                return Err(format!(
                    "missing version ({}, {ts}); found {:?}",
                    show(key),
                    got.get(i).map(|(k, _, t, d)| (show(k), *t, *d))
                ));
            }
            shadowed += n - 1;
        }
    }
    if i != got.len() {
        return Err(format!(
            "{} unexpected versions from {:?}",
            got.len() - i,
            got.get(i).map(|(k, _, t, d)| (show(k), *t, *d))
        ));
    }
    Ok(shadowed)
}

/// Point and time-travel reads agree with the history.
fn spot_check(tree: &Tree, want: &History, rng: &mut Rng, ctx: &str) {
    let txn = tree.begin_with_mode(Mode::ReadOnly).unwrap();
    let times = want.timestamps();
    for key in keys().iter().chain(std::iter::once(&MARKER_KEY.to_vec())) {
        let got = txn.get(key).unwrap_or_else(|e| panic!("{ctx}: get: {e}"));
        assert_eq!(got.as_ref(), want.value_at(key, None), "{ctx}: get({})", show(key));
        if !times.is_empty() {
            let ts = rng.pick(&times).saturating_sub(rng.below(2));
            let got = txn.get_at_version(key, ts).unwrap();
            assert_eq!(
                got.as_ref(),
                want.value_at(key, Some(ts)),
                "{ctx}: get_at_version({}, {ts})",
                show(key)
            );
        }
    }
    for _ in 0..2 {
        let ts = if times.is_empty() { 0 } else { *rng.pick(&times) };
        let got: Vec<(Bytes, Bytes)> =
            txn.range_at_version(b"", b"\xff", ts, None).unwrap().map(|r| r.unwrap()).collect();
        let expect: Vec<(Bytes, Bytes)> =
            want.view(Some(ts), None, None).into_iter().map(|(k, v)| (Bytes::from(k), v)).collect();
        assert!(
            got == expect,
            "{ctx}: range_at_version at {ts}: {} vs {} keys",
            got.len(),
            expect.len()
        );
    }
}

fn recovered_prefix(tree: &Tree) -> Option<usize> {
    let v = tree.begin_with_mode(Mode::ReadOnly).ok()?.get(MARKER_KEY).ok()?;
    marker_prefix(v.as_deref())
}

#[test]
fn power_cut_before_every_durability_call_of_a_versioned_workload() {
    let seed = strata_tests::test_seed("versioning_crash");
    let txns = workload(seed, 150);

    // The clean run: the premise (flushes and compactions happened) and the full history.
    let mem = MemFs::new();
    let clean = run(&mem, &txns, &format!("seed {seed}, clean run"));
    assert_eq!(clean.acked, txns.len());
    let total_syncs = mem.sync_count();
    let full = history_after(&txns, txns.len());
    {
        let clock = Arc::new(ManualClock::default());
        let tree = open(&mem, &clock).expect("clean reopen");
        let shadowed = compare(&scan(&tree).unwrap(), &full)
            .unwrap_or_else(|e| panic!("seed {seed}: clean run: {e}"));
        let names = strata_vfs::Vfs::list(&mem).unwrap();
        let tables = names.iter().filter(|n| n.ends_with(".sst")).count();
        assert!(tables >= 2, "seed {seed}: the workload must produce tables: {names:?}");
        let versions = full.version_count();
        eprintln!(
            "seed {seed}: {versions} versions in {tables} tables, {shadowed} shadowed listed"
        );
        tree.close().unwrap();
    }
    // The premise that the workload compacts: a fresh run counting maintenance.
    {
        let mem = MemFs::new();
        let clock = Arc::new(ManualClock::default());
        let tree = open(&mem, &clock).unwrap();
        for (i, t) in txns.iter().enumerate() {
            run_txn(&tree, &clock, i, t).unwrap();
        }
        let s = tree.stats();
        assert!(
            s.flushes >= 5 && s.compactions >= 1,
            "seed {seed}: flushes and compactions: {s:?}"
        );
        eprintln!("seed {seed}: clean run: {} flushes, {} compactions", s.flushes, s.compactions);
    }

    let mut rng = Rng::new(seed ^ 0x7e45_10c4);
    let seeds_per_policy = strata_tests::scaled(1) as usize;
    let mut recovery_cuts = 0u64;
    let totals = for_each_armed_power_cut(
        &format!("seed {seed}"),
        total_syncs,
        seeds_per_policy,
        &mut rng,
        |mem, ctx| run(mem, &txns, ctx),
        |rng, cut, ctx| {
            let image = &cut.image;
            let pristine = copy_fs(image);
            let clock = Arc::new(ManualClock::default());
            let tree =
                open(image, &clock).unwrap_or_else(|e| panic!("{ctx}: open after the crash: {e}"));
            let Some(p) = recovered_prefix(&tree) else { panic!("{ctx}: unreadable marker") };
            let (lo, hi) = cut.bounds();
            check_bounds(p, lo, hi, &format!("{ctx} ({:?})", cut.acked));
            let mut want = history_after(&txns, p);
            let got = scan(&tree).unwrap_or_else(|e| panic!("{ctx}: scan after recovery: {e}"));
            if let Err(e) = compare(&got, &want) {
                panic!("{ctx}: history after recovery is not that of prefix {p}: {e}");
            }
            spot_check(&tree, &want, rng, ctx);

            // Recovery never rewrites what it replays: cut anywhere, it recovers the same.
            let open_fresh = |fs: &MemFs| open(fs, &Arc::new(ManualClock::default()));
            recovery_cuts += power_cut_during_recovery(
                &pristine,
                open_fresh,
                RecoveryCuts::Every,
                rng,
                ctx,
                |cut, ctx| {
                    let tree = open_fresh(cut).unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
                    let got = scan(&tree).unwrap_or_else(|e| panic!("{ctx}: scan: {e}"));
                    if let Err(e) = compare(&got, &want) {
                        panic!("{ctx}: recovered a different history than prefix {p}: {e}");
                    }
                },
            );

            // A commit after recovery with the clock stepped back: above every recovered commit.
            clock.set(0);
            let mut txn = tree.begin().unwrap();
            txn.set(b"~after", b"1").unwrap();
            txn.set_at_version(b"key00", b"after-at-7", 7).unwrap();
            txn.commit_blocking().unwrap_or_else(|e| panic!("{ctx}: write after recovery: {e}"));
            let after =
                tree.begin().unwrap().scan_all_versions(b"~after", b"~after\x00", None).unwrap();
            let ts = after.first().map(|e| e.2).unwrap();
            let floor = if p == 0 { 0 } else { commit_ts(p - 1) };
            assert!(ts > floor, "{ctx}: commit after recovery got ts {ts}, not above {floor}");
            want.write(b"~after", ts, Some(Bytes::from_static(b"1")));
            want.write(b"key00", 7, Some(Bytes::from_static(b"after-at-7")));

            // Every fourth image: maintenance over the recovered tables, then a reopen.
            if cut.index.is_multiple_of(4) {
                tree.maintenance_step(usize::MAX)
                    .unwrap_or_else(|e| panic!("{ctx}: maintenance: {e}"));
                if let Err(e) = compare(&scan(&tree).unwrap(), &want) {
                    panic!("{ctx}: history after maintenance: {e}");
                }
                tree.close().expect("close");
                drop(tree);
                let tree =
                    open(image, &clock).unwrap_or_else(|e| panic!("{ctx}: second reopen: {e}"));
                if let Err(e) = compare(&scan(&tree).unwrap(), &want) {
                    panic!("{ctx}: history after the second reopen: {e}");
                }
                spot_check(&tree, &want, rng, ctx);
            }
            p
        },
    );
    totals.check_spread("versioning crash test", total_syncs);
    report_crash_states("versioning_crash", totals.images + recovery_cuts);
}

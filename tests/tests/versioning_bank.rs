//! Bank transfers with versioning on the real clock: every point in time adds up.
//!
//! 100 accounts are created in one transaction; then writer threads move money between them
//! (some accounts are hot, so transactions conflict and are retried on
//! `Error::TransactionConflict`) while an auditor reads the database as of "now" with
//! `range_at_version`. Writers read the wall clock between their commits and keep the readings.
//! Values are padded so the 64 KiB memtables flush and compact during the run.
//!
//! Afterwards, on the live tree, after a close and reopen, and after forcing maintenance:
//! - the full history (`scan_all_versions`) is exactly the initial balances plus one pair of
//!   versions per committed transfer, sharing that transfer's unique commit timestamp, each
//!   moving the amount the writer committed from the balance the previous version held (no
//!   lost update, no torn or duplicated transfer);
//! - at every recorded wall-clock reading (after the initial commit) `range_at_version` over
//!   all accounts holds all 100 of them and sums to the constant total, forward and backward,
//!   and (for a sample) equals the balances the history implies, as do `get_at_version`,
//!   `keys_at_version` and `range_with_options` with a timestamp.
//!
//! Replay the transfer choices with `STRATA_SEED=<seed>` (thread timing still varies);
//! `STRATA_SOAK` makes the run longer.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use strata::{Durability, Error, Mode, ReadOptions, Tree, TreeBuilder};
use strata_tests::{Rng, scaled, test_seed};

const ACCOUNTS: u64 = 100;
const START: u64 = 1_000;
const TOTAL: u64 = ACCOUNTS * START;
const WRITERS: u64 = 4;
/// Bytes of padding after the 8-byte balance, so memtables fill during the run.
const PAD: usize = 120;

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn account(a: u64) -> Vec<u8> {
    format!("acct{a:03}").into_bytes()
}

fn encode(balance: u64, salt: u64) -> Vec<u8> {
    let mut v = balance.to_le_bytes().to_vec();
    v.extend(std::iter::repeat_n((salt % 251) as u8, PAD));
    v
}

fn decode(v: &[u8]) -> u64 {
    assert_eq!(v.len(), 8 + PAD, "account value has the wrong size");
    u64::from_le_bytes(v[..8].try_into().unwrap())
}

fn open(path: &std::path::Path, background: bool) -> Tree {
    TreeBuilder::new()
        .with_path(path.to_path_buf())
        .with_versioning(true, 0)
        .with_max_memtable_size(64 * 1024)
        .with_wal_segment_size(64 * 1024)
        .with_background_threads(background)
        .build()
        .unwrap()
}

/// A committed transfer as its writer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Transfer {
    from: u64,
    to: u64,
    amount: u64,
}

struct WriterLog {
    transfers: Vec<Transfer>,
    readings: Vec<u64>,
    conflicts: u64,
}

fn writer(tree: Tree, seed: u64, id: u64, count: u64) -> WriterLog {
    let mut rng = Rng::new(seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut log = WriterLog { transfers: Vec::new(), readings: Vec::new(), conflicts: 0 };
    let pick = |rng: &mut Rng| if rng.percent(30) { rng.below(5) } else { rng.below(ACCOUNTS) };
    while (log.transfers.len() as u64) < count {
        let from = pick(&mut rng);
        let mut to = pick(&mut rng);
        if to == from {
            to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
        }
        let amount = rng.range(1, 50);
        log.readings.push(now_ns());
        loop {
            let mut txn = tree.begin().unwrap();
            if rng.percent(10) {
                txn.set_durability(Durability::Immediate);
            }
            let a = decode(&txn.get(&account(from)).unwrap().expect("account exists"));
            let b = decode(&txn.get(&account(to)).unwrap().expect("account exists"));
            if a < amount {
                txn.rollback().unwrap();
                break;
            }
            txn.set(&account(from), &encode(a - amount, rng.next_u64())).unwrap();
            txn.set(&account(to), &encode(b + amount, rng.next_u64())).unwrap();
            match txn.commit_blocking() {
                Ok(()) => {
                    log.transfers.push(Transfer { from, to, amount });
                    break;
                }
                Err(Error::TransactionConflict) => log.conflicts += 1,
                Err(e) => panic!("writer {id}: commit: {e}"),
            }
        }
        log.readings.push(now_ns());
    }
    log
}

/// Reads "now" while the writers run: every point in time adds up.
fn auditor(tree: Tree, init_ts: u64, stop: Arc<AtomicBool>, audits: Arc<AtomicU64>) {
    while !stop.load(Ordering::Acquire) {
        let t = now_ns();
        if t < init_ts {
            continue;
        }
        let txn = tree.begin_with_mode(Mode::ReadOnly).unwrap();
        let (n, sum) = txn
            .range_at_version(b"acct", b"acct~", t, None)
            .unwrap()
            .map(|r| decode(&r.unwrap().1))
            .fold((0u64, 0u64), |(n, s), b| (n + 1, s + b));
        assert_eq!((n, sum), (ACCOUNTS, TOTAL), "auditor: torn state at ts {t}");
        audits.fetch_add(1, Ordering::Relaxed);
    }
}

/// The history as (ts, account, balance), checked for shape; returns balances per account
/// over time (ascending ts) and the transfers it implies.
fn check_history(
    tree: &Tree,
    init_ts: u64,
    committed: &[Transfer],
    ctx: &str,
) -> BTreeMap<u64, Vec<(u64, u64)>> {
    let txn = tree.begin_with_mode(Mode::ReadOnly).unwrap();
    let versions = txn.scan_all_versions(b"acct", b"acct~", None).unwrap();
    assert_eq!(
        versions.len() as u64,
        ACCOUNTS + 2 * committed.len() as u64,
        "{ctx}: one version per account plus two per committed transfer"
    );
    // Per account, ascending ts.
    let mut per_account: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    let mut by_ts: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    let mut last: Option<(Bytes, u64)> = None;
    for (key, value, ts, tombstone) in versions {
        assert!(!tombstone, "{ctx}: no account is ever deleted");
        let a: u64 = std::str::from_utf8(&key[4..]).unwrap().parse().unwrap();
        if let Some((k, t)) = &last
            && *k == key
        {
            assert!(ts < *t, "{ctx}: versions of {a} not strictly newest first ({ts} after {t})");
        }
        last = Some((key, ts));
        let balance = decode(&value);
        per_account.entry(a).or_default().push((ts, balance));
        by_ts.entry(ts).or_default().push((a, balance));
    }
    for h in per_account.values_mut() {
        h.reverse();
    }
    assert_eq!(per_account.len() as u64, ACCOUNTS, "{ctx}: every account has history");
    // The initial transaction: every account at START, at one timestamp, the oldest.
    let (first_ts, init) = by_ts.iter().next().unwrap();
    assert_eq!(*first_ts, init_ts, "{ctx}: the initial commit is the oldest version");
    assert_eq!(init.len() as u64, ACCOUNTS, "{ctx}: all accounts were created at once");
    assert!(init.iter().all(|&(_, b)| b == START));
    // Replay: each later timestamp is exactly one transfer between two accounts.
    let mut balances: BTreeMap<u64, u64> = (0..ACCOUNTS).map(|a| (a, START)).collect();
    let mut implied = Vec::new();
    for (ts, entries) in by_ts.iter().skip(1) {
        assert_eq!(entries.len(), 2, "{ctx}: ts {ts} must hold exactly one transfer: {entries:?}");
        let (a, na) = entries[0];
        let (b, nb) = entries[1];
        let (oa, ob) = (balances[&a], balances[&b]);
        assert_eq!(oa + ob, na + nb, "{ctx}: transfer at {ts} does not conserve money");
        let t = if na < oa {
            Transfer { from: a, to: b, amount: oa - na }
        } else {
            Transfer { from: b, to: a, amount: ob - nb }
        };
        implied.push(t);
        balances.insert(a, na);
        balances.insert(b, nb);
    }
    let mut want = committed.to_vec();
    want.sort_unstable();
    implied.sort_unstable();
    assert!(implied == want, "{ctx}: the history's transfers are not the committed ones");
    // The current balances are the newest versions.
    for (a, b) in &balances {
        assert_eq!(decode(&txn.get(&account(*a)).unwrap().unwrap()), *b, "{ctx}: current {a}");
    }
    per_account
}

fn balance_at(history: &[(u64, u64)], ts: u64) -> Option<u64> {
    history.iter().rev().find(|(t, _)| *t <= ts).map(|&(_, b)| b)
}

fn check_times(
    tree: &Tree,
    history: &BTreeMap<u64, Vec<(u64, u64)>>,
    readings: &[u64],
    rng: &mut Rng,
    ctx: &str,
) {
    let txn = tree.begin_with_mode(Mode::ReadOnly).unwrap();
    // Every distinct commit timestamp, and just before it, is checked exactly in a sample;
    // every reading is checked for the sum.
    let mut commit_times: Vec<u64> = history.values().flatten().map(|&(t, _)| t).collect();
    commit_times.sort_unstable();
    commit_times.dedup();
    let mut exact: Vec<u64> = Vec::new();
    let stride = (commit_times.len() / scaled(150) as usize).max(1);
    for t in commit_times.iter().step_by(stride) {
        exact.extend([*t, t.saturating_sub(1)]);
    }
    for &t in readings.iter().step_by((readings.len() / scaled(100) as usize).max(1)) {
        exact.push(t);
    }
    exact.retain(|&t| t >= commit_times[0]);
    for (i, &t) in readings.iter().enumerate() {
        let sums: Vec<u64> = if i % 3 == 0 {
            txn.range_at_version(b"acct", b"acct~", t, None)
                .unwrap()
                .rev()
                .map(|r| decode(&r.unwrap().1))
                .collect()
        } else {
            txn.range_at_version(b"acct", b"acct~", t, None)
                .unwrap()
                .map(|r| decode(&r.unwrap().1))
                .collect()
        };
        assert_eq!(sums.len() as u64, ACCOUNTS, "{ctx}: accounts at reading {t}");
        assert_eq!(sums.iter().sum::<u64>(), TOTAL, "{ctx}: total at reading {t}");
    }
    for t in exact {
        let want: Vec<(Vec<u8>, u64)> = history
            .iter()
            .filter_map(|(a, h)| balance_at(h, t).map(|b| (account(*a), b)))
            .collect();
        let got: Vec<(Vec<u8>, u64)> = txn
            .range_at_version(b"acct", b"acct~", t, None)
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), decode(&v))
            })
            .collect();
        assert!(got == want, "{ctx}: balances at {t} differ from the history");
        let opts = ReadOptions::new()
            .with_timestamp(Some(t))
            .with_iterate_lower_bound(Some(b"acct".to_vec()))
            .with_iterate_upper_bound(Some(b"acct~".to_vec()));
        let via_opts: Vec<(Vec<u8>, u64)> = txn
            .range_with_options(&opts)
            .unwrap()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), decode(&v))
            })
            .collect();
        assert!(via_opts == want, "{ctx}: range_with_options at {t}");
        let keys = txn.keys_at_version(b"acct", b"acct~", t, None).unwrap().count();
        assert_eq!(keys, want.len(), "{ctx}: keys_at_version at {t}");
        let a = rng.below(ACCOUNTS);
        let got = txn.get_at_version(&account(a), t).unwrap().map(|v| decode(&v));
        assert_eq!(got, balance_at(&history[&a], t), "{ctx}: get_at_version({a}, {t})");
    }
}

#[test]
fn every_point_in_time_of_concurrent_transfers_adds_up() {
    let seed = test_seed("versioning_bank");
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let tree = open(dir.path(), true);

    let mut init = tree.begin().unwrap();
    for a in 0..ACCOUNTS {
        init.set(&account(a), &encode(START, a)).unwrap();
    }
    init.set_durability(Durability::Immediate);
    init.commit_blocking().unwrap();
    let init_ts = {
        let txn = tree.begin().unwrap();
        let v = txn.scan_all_versions(&account(0), &account(1), None).unwrap();
        assert_eq!(v.len(), 1);
        v[0].2
    };
    let after_init = now_ns();
    assert!(after_init >= init_ts, "the commit timestamp comes from the wall clock");

    let per_writer = scaled(400);
    let stop = Arc::new(AtomicBool::new(false));
    let audits = Arc::new(AtomicU64::new(0));
    let auditor_handle = {
        let (tree, stop, audits) = (tree.clone(), Arc::clone(&stop), Arc::clone(&audits));
        std::thread::spawn(move || auditor(tree, init_ts, stop, audits))
    };
    let handles: Vec<_> = (0..WRITERS)
        .map(|id| {
            let tree = tree.clone();
            std::thread::spawn(move || writer(tree, seed, id, per_writer))
        })
        .collect();
    let logs: Vec<WriterLog> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Release);
    auditor_handle.join().unwrap();

    let committed: Vec<Transfer> = logs.iter().flat_map(|l| l.transfers.iter().copied()).collect();
    let conflicts: u64 = logs.iter().map(|l| l.conflicts).sum();
    let mut readings: Vec<u64> = vec![after_init];
    readings.extend(logs.iter().flat_map(|l| l.readings.iter().copied()));
    readings.sort_unstable();
    let before_filter = readings.len();
    // Readings taken after the initial commit returned are after it, unless the wall clock
    // stepped back; those few (if any) cannot be checked against the initial state.
    readings.retain(|&t| t >= init_ts);
    assert!(readings.len() * 10 >= before_filter * 9, "the wall clock went back a lot");
    let stats = tree.stats();
    eprintln!(
        "seed {seed}: {} transfers, {conflicts} conflicts retried, {} auditor reads, {} readings, {} flushes, {} compactions, {:?}",
        committed.len(),
        audits.load(Ordering::Relaxed),
        readings.len(),
        stats.flushes,
        stats.compactions,
        started.elapsed()
    );
    assert!(stats.flushes >= 2, "the run must flush memtables: {stats:?}");

    let mut rng = Rng::new(seed ^ 0xba4c);
    let history = check_history(&tree, init_ts, &committed, "after the run");
    check_times(&tree, &history, &readings, &mut rng, "after the run");

    tree.close().unwrap();
    drop(tree);
    let tree = open(dir.path(), false);
    let history2 = check_history(&tree, init_ts, &committed, "after reopen");
    assert_eq!(history2, history, "reopen changed the history");
    check_times(&tree, &history, &readings, &mut rng, "after reopen");

    // More transfers, single-threaded with inline maintenance, until a memtable fills and
    // waits for its flush; then run every pending flush and compaction now.
    let mut committed = committed;
    // Repeated until the maintenance included a compaction.
    let mut extra = 0;
    let mut ran = 0;
    let before = tree.stats();
    let mut after = before.clone();
    for _round in 0..20 {
        while tree.stats().immutable_memtables == 0 {
            let log = writer(tree.clone(), seed, 1_000 + extra, 1);
            committed.extend(log.transfers);
            readings.extend(log.readings);
            extra += 1;
            assert!(extra < 20_000, "the memtable never filled");
        }
        let flushes = tree.stats().flushes;
        let n = tree.maintenance_step(usize::MAX).unwrap();
        after = tree.stats();
        assert!(n >= 1 && after.flushes > flushes, "maintenance ran nothing: {after:?}");
        ran += n;
        if after.compactions > before.compactions {
            break;
        }
    }
    assert!(after.compactions > before.compactions, "no compaction in 20 memtables: {after:?}");
    let history = check_history(&tree, init_ts, &committed, "after maintenance");
    check_times(&tree, &history, &readings, &mut rng, "after maintenance");
    // New commits still get timestamps after all of it.
    let mut txn = tree.begin().unwrap();
    let a = decode(&txn.get(&account(0)).unwrap().unwrap());
    txn.set(&account(0), &encode(a, 0)).unwrap();
    txn.commit_blocking().unwrap();
    let newest =
        tree.begin().unwrap().scan_all_versions(&account(0), &account(1), Some(1)).unwrap()[0].2;
    let max_ts = history.values().flatten().map(|&(t, _)| t).max().unwrap();
    assert!(newest > max_ts, "a commit after reopen sorts after the whole history");
    eprintln!(
        "seed {seed}: checked {} readings in 3 phases ({extra} more transfers, then {ran} maintenance jobs: {} flushes, {} compactions), {:?} in all",
        readings.len(),
        after.flushes - before.flushes,
        after.compactions - before.compactions,
        started.elapsed()
    );
}

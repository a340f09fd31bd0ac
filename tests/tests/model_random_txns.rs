//! Model test: random transactions against a `BTreeMap` oracle.
//!
//! Several transactions are open at once over a small key space, so overwrites, deletes of
//! absent keys and write-write conflicts are common. Every read (point, range in both
//! directions and mixed, with limits and empty or inverted bounds, keys-only, unbounded) is
//! checked against the model of what that transaction must see: its snapshot plus its own
//! pending writes. Commits are predicted (conflict or not) by the model; rollbacks, drops and
//! failed commits must leave no trace. The database is closed and reopened at random and must
//! come back equal to the model.
//!
//! Replay a run with `STRATA_SEED=<seed>`. `STRATA_SOAK=1` runs more seeds (not longer runs:
//! the memtable keeps every version, so a run's cost per step grows with its length).
//!
//! Every test runs on both filesystem stacks ([`Stack`]): `_plain` on `MemFs` (or the host
//! filesystem), `_encrypted` through `EncryptedFs` over it.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use strata::{Durability, Error, Mode, RangeIter, ReadOptions, Transaction, Tree, TreeBuilder};
use strata_tests::{Model, Rng, Stack, dump, scaled, show, test_seeds};
use strata_vfs::MemFs;

/// Keys: prefixes of each other, the empty key, 0xff bytes, so ordering edge cases show up.
fn key_space() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"a".to_vec(),
        b"a\x00".to_vec(),
        b"aa".to_vec(),
        b"ab".to_vec(),
        b"b".to_vec(),
        b"b\xff".to_vec(),
        b"ba".to_vec(),
        b"\xff".to_vec(),
        b"\xff\xff".to_vec(),
    ];
    for i in 0..14 {
        keys.push(format!("k{i:02}").into_bytes());
    }
    keys
}

/// Range bounds: the keys plus points between and around them.
fn bound_space() -> Vec<Vec<u8>> {
    let mut b = key_space();
    b.extend([
        b"a\x00\x00".to_vec(),
        b"c".to_vec(),
        b"k".to_vec(),
        b"k05\x00".to_vec(),
        b"z".to_vec(),
        b"\xff\xff\xff".to_vec(),
    ]);
    b
}

/// What the model knows about one open transaction.
struct ModelTxn {
    txn: Transaction,
    id: u64,
    mode: Mode,
    /// Commit count of the model when it began (its snapshot).
    begin_seq: u64,
    snapshot: Model,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl ModelTxn {
    /// What the transaction must see: its snapshot with its own writes on top.
    fn view(&self) -> Model {
        let mut v = self.snapshot.clone();
        for (k, w) in &self.pending {
            match w {
                Some(val) => {
                    v.insert(k.clone(), val.clone());
                }
                None => {
                    v.remove(k);
                }
            }
        }
        v
    }
}

/// The committed model plus the bookkeeping to predict conflicts.
struct Oracle {
    committed: Model,
    /// Number of commits that wrote something.
    seq: u64,
    /// Per key, the model sequence number of the last commit that wrote it.
    last_write: BTreeMap<Vec<u8>, u64>,
}

impl Oracle {
    /// A write-only transaction never conflicts (it read nothing; the last commit wins).
    fn conflicts(&self, t: &ModelTxn) -> bool {
        t.mode != Mode::WriteOnly
            && t.pending.keys().any(|k| self.last_write.get(k).is_some_and(|&s| s > t.begin_seq))
    }

    fn apply(&mut self, t: &ModelTxn) {
        self.seq += 1;
        for (k, w) in &t.pending {
            self.last_write.insert(k.clone(), self.seq);
            match w {
                Some(v) => {
                    self.committed.insert(k.clone(), v.clone());
                }
                None => {
                    self.committed.remove(k);
                }
            }
        }
    }
}

struct Stats {
    commits: u64,
    conflicts: u64,
    rollbacks: u64,
    reopens: u64,
    reads: u64,
    /// Memtable flushes and compactions, summed over every open of the run.
    flushes: u64,
    compactions: u64,
}

/// Checks a range iterator against `expected` (ascending), stepping from the front, the back
/// or both at random, with `limit` counting entries from both ends.
fn check_range(
    mut it: RangeIter,
    expected: &[(Vec<u8>, Vec<u8>)],
    limit: Option<usize>,
    keys_only: bool,
    rng: &mut Rng,
    ctx: &str,
) {
    let pattern = rng.below(3); // 0 forward, 1 backward, 2 mixed
    let (mut lo, mut hi) = (0usize, expected.len());
    let mut remaining = limit;
    let mut done = limit == Some(0);
    let mut nones = 0;
    let mut steps = 0;
    while nones < 2 {
        steps += 1;
        assert!(steps < expected.len() + 10, "{ctx}: iterator did not end");
        let forward = match pattern {
            0 => true,
            1 => false,
            _ => rng.percent(50),
        };
        // Owned or by reference, at random: both must give the same entries, mixed freely.
        let by_ref = rng.percent(50);
        let failed =
            |e: strata::Error| -> (Vec<u8>, Vec<u8>) { panic!("{ctx}: range read failed: {e}") };
        let got = match (forward, by_ref) {
            (true, false) => it.next().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec()))),
            (false, false) => it.next_back().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec()))),
            (true, true) => it.next_ref().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec()))),
            (false, true) => it.next_back_ref().map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec()))),
        };
        let got = got.map(|r| r.unwrap_or_else(failed));
        let want = if done || lo >= hi {
            done = true;
            None
        } else {
            let e = if forward {
                lo += 1;
                expected[lo - 1].clone()
            } else {
                hi -= 1;
                expected[hi].clone()
            };
            if let Some(n) = remaining.as_mut() {
                *n -= 1;
                if *n == 0 {
                    done = true;
                }
            }
            Some(e)
        };
        let got = if keys_only { got.map(|(k, _)| (k, Vec::new())) } else { got };
        let want = if keys_only { want.map(|(k, _)| (k, Vec::new())) } else { want };
        assert_eq!(
            got.as_ref().map(|(k, v)| (show(k), v.len())),
            want.as_ref().map(|(k, v)| (show(k), v.len())),
            "{ctx}: step {steps} ({})",
            match (forward, by_ref) {
                (true, false) => "next",
                (false, false) => "next_back",
                (true, true) => "next_ref",
                (false, true) => "next_back_ref",
            }
        );
        assert_eq!(got, want, "{ctx}: step {steps} value");
        if got.is_none() {
            nones += 1;
        }
    }
}

/// Runs `steps` random steps against a tree opened by `open`, reopening it at random.
/// `big_percent`: how often a set writes a 1-6 KiB value instead of a small one.
fn run_model(
    seed: u64,
    steps: u64,
    open: &dyn Fn() -> Tree,
    allow_immediate: bool,
    big_percent: u64,
) -> Stats {
    let mut rng = Rng::new(seed);
    let keys = key_space();
    let bounds = bound_space();
    let mut tree = open();
    // The database may already hold data from an earlier run on the same filesystem.
    let mut oracle =
        Oracle { committed: dump(&tree).unwrap(), seq: 0, last_write: BTreeMap::new() };
    let mut open_txns: Vec<ModelTxn> = Vec::new();
    let mut next_id = 0u64;
    let mut stats = Stats {
        commits: 0,
        conflicts: 0,
        rollbacks: 0,
        reopens: 0,
        reads: 0,
        flushes: 0,
        compactions: 0,
    };

    for step in 0..steps {
        let roll = rng.below(100);
        // Begin a transaction.
        if open_txns.is_empty() || (open_txns.len() < 4 && roll < 12) {
            let mode = match rng.below(20) {
                0 => Mode::ReadOnly,
                1 => Mode::WriteOnly,
                _ => Mode::ReadWrite,
            };
            let txn = tree.begin_with_mode(mode).unwrap();
            open_txns.push(ModelTxn {
                txn,
                id: next_id,
                mode,
                begin_seq: oracle.seq,
                snapshot: oracle.committed.clone(),
                pending: BTreeMap::new(),
            });
            next_id += 1;
            continue;
        }
        // Close (or drop) and reopen. Transactions left open must then be refused.
        if roll < 14 && rng.percent(25) {
            let st = tree.stats();
            stats.flushes += st.flushes;
            stats.compactions += st.compactions;
            if rng.percent(50) {
                tree.close().unwrap();
            }
            drop(tree);
            for mut t in open_txns.drain(..) {
                check_refused_after_close(&mut t, step);
                stats.rollbacks += 1;
            }
            tree = open();
            stats.reopens += 1;
            let got = dump(&tree).unwrap();
            assert_eq!(
                got, oracle.committed,
                "step {step}: state after reopen differs from the model"
            );
            oracle.last_write.clear();
            continue;
        }
        // A whole-database check through a fresh transaction.
        if roll < 16 {
            let got = dump(&tree).unwrap();
            assert_eq!(got, oracle.committed, "step {step}: full scan differs from the model");
            continue;
        }
        // Flush and compact now (a no-op while the memtable is small), with transactions open.
        if roll < 17 {
            tree.maintenance_step(2).unwrap();
            continue;
        }

        let ti = rng.index(open_txns.len());
        let t = &mut open_txns[ti];
        let ctx = format!("step {step} txn {} ({:?})", t.id, t.mode);
        let op = rng.below(100);
        if op < 30 {
            // set
            let k = rng.pick(&keys).clone();
            let len = if rng.percent(big_percent) { rng.range(1000, 6000) } else { rng.below(24) }
                as usize;
            let v = rng.bytes(len);
            let r = t.txn.set(&k, &v);
            if t.mode == Mode::ReadOnly {
                assert!(matches!(r, Err(Error::TransactionReadOnly)), "{ctx}: set gave {r:?}");
            } else {
                r.unwrap();
                t.pending.insert(k, Some(v));
            }
        } else if op < 42 {
            // delete (often of an absent key)
            let k = rng.pick(&keys).clone();
            let r = t.txn.delete(&k);
            if t.mode == Mode::ReadOnly {
                assert!(matches!(r, Err(Error::TransactionReadOnly)), "{ctx}: delete gave {r:?}");
            } else {
                r.unwrap();
                t.pending.insert(k, None);
            }
        } else if op < 60 {
            // get
            stats.reads += 1;
            let k =
                if rng.percent(90) { rng.pick(&keys).clone() } else { rng.pick(&bounds).clone() };
            let r = t.txn.get(&k);
            if t.mode == Mode::WriteOnly {
                assert!(matches!(r, Err(Error::TransactionWriteOnly)), "{ctx}: get gave {r:?}");
            } else {
                let got = r.unwrap().map(|b| b.to_vec());
                let want = t.view().get(&k).cloned();
                assert_eq!(got, want, "{ctx}: get {}", show(&k));
            }
        } else if op < 80 {
            // range / keys over [start, end)
            stats.reads += 1;
            let start = rng.pick(&bounds).clone();
            let end = rng.pick(&bounds).clone();
            let limit = if rng.percent(40) { Some(rng.below(6) as usize) } else { None };
            let keys_only = rng.percent(25);
            let ctx = format!(
                "{ctx}: {}({}..{}, limit {limit:?})",
                if keys_only { "keys" } else { "range" },
                show(&start),
                show(&end)
            );
            if t.mode == Mode::WriteOnly {
                let r = t.txn.range(&start, &end, limit);
                assert!(matches!(r, Err(Error::TransactionWriteOnly)), "{ctx}: gave {r:?}");
                continue;
            }
            let expected: Vec<(Vec<u8>, Vec<u8>)> = if start < end {
                t.view()
                    .range(start.clone()..end.clone())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            if keys_only {
                let mut it = t.txn.keys(&start, &end, limit).unwrap();
                // KeysIter wraps the same iterator; check it with its own little loop.
                let want: Vec<Vec<u8>> = expected.iter().map(|(k, _)| k.clone()).collect();
                let want: Vec<Vec<u8>> = match limit {
                    Some(n) => want.into_iter().take(n).collect(),
                    None => want,
                };
                let backward = rng.percent(50);
                let mut got = Vec::new();
                loop {
                    let x = if backward { it.next_back() } else { it.next() };
                    match x {
                        Some(k) => got.push(k.unwrap().to_vec()),
                        None => break,
                    }
                    assert!(got.len() <= want.len() + 1, "{ctx}: too many keys");
                }
                if backward {
                    // From the back, a limit keeps the greatest keys.
                    let all: Vec<Vec<u8>> = expected.iter().rev().map(|(k, _)| k.clone()).collect();
                    let want: Vec<Vec<u8>> = match limit {
                        Some(n) => all.into_iter().take(n).collect(),
                        None => all,
                    };
                    assert_eq!(got, want, "{ctx} backward");
                } else {
                    assert_eq!(got, want, "{ctx}");
                }
            } else {
                let it = t.txn.range(&start, &end, limit).unwrap();
                check_range(it, &expected, limit, false, &mut rng, &ctx);
            }
        } else if op < 84 {
            // unbounded or half-bounded range through ReadOptions
            stats.reads += 1;
            if t.mode == Mode::WriteOnly {
                continue;
            }
            let lower = rng.percent(50).then(|| rng.pick(&bounds).clone());
            let upper = rng.percent(50).then(|| rng.pick(&bounds).clone());
            let limit = if rng.percent(40) { Some(rng.below(6) as usize) } else { None };
            let opts = ReadOptions::new()
                .with_iterate_lower_bound(lower.clone())
                .with_iterate_upper_bound(upper.clone())
                .with_limit(limit);
            let view = t.view();
            let expected: Vec<(Vec<u8>, Vec<u8>)> = view
                .iter()
                .filter(|(k, _)| lower.as_ref().is_none_or(|l| *k >= l))
                .filter(|(k, _)| upper.as_ref().is_none_or(|u| *k < u))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let ctx = format!(
                "{ctx}: range_with_options({:?}..{:?}, limit {limit:?})",
                lower.as_deref().map(show),
                upper.as_deref().map(show)
            );
            let it = t.txn.range_with_options(&opts).unwrap();
            check_range(it, &expected, limit, false, &mut rng, &ctx);
        } else {
            // finish: commit, rollback or drop
            let t = open_txns.swap_remove(ti);
            finish(t, &tree, &mut oracle, &mut rng, &mut stats, allow_immediate, step);
        }
    }
    for t in open_txns.drain(..) {
        drop(t);
        stats.rollbacks += 1;
    }
    assert_eq!(dump(&tree).unwrap(), oracle.committed, "final state differs from the model");
    let st = tree.stats();
    stats.flushes += st.flushes;
    stats.compactions += st.compactions;
    tree.close().unwrap();
    drop(tree);
    let tree = open();
    assert_eq!(dump(&tree).unwrap(), oracle.committed, "state after the final reopen differs");
    tree.close().unwrap();
    stats
}

fn finish(
    mut t: ModelTxn,
    tree: &Tree,
    oracle: &mut Oracle,
    rng: &mut Rng,
    stats: &mut Stats,
    allow_immediate: bool,
    step: u64,
) {
    let ctx = format!("step {step} txn {} ({:?})", t.id, t.mode);
    let how = rng.below(10);
    if how < 2 {
        // Rollback: nothing of it may show.
        t.txn.rollback().unwrap();
        assert!(
            matches!(t.txn.get(b"a"), Err(Error::TransactionClosed)),
            "{ctx}: read after rollback"
        );
        assert!(
            matches!(t.txn.rollback(), Err(Error::TransactionClosed)),
            "{ctx}: second rollback"
        );
        stats.rollbacks += 1;
    } else if how < 3 {
        drop(t);
        stats.rollbacks += 1;
    } else {
        if allow_immediate && rng.percent(20) {
            t.txn.set_durability(Durability::Immediate);
        }
        let conflict = oracle.conflicts(&t);
        let r = t.txn.commit_blocking();
        if conflict {
            assert!(
                matches!(r, Err(Error::TransactionConflict)),
                "{ctx}: expected a conflict, got {r:?}"
            );
            stats.conflicts += 1;
        } else {
            r.unwrap_or_else(|e| panic!("{ctx}: commit failed: {e:?}"));
            if !t.pending.is_empty() {
                oracle.apply(&t);
            }
            stats.commits += 1;
        }
        assert!(
            matches!(t.txn.commit_blocking(), Err(Error::TransactionClosed)),
            "{ctx}: second commit"
        );
        assert!(
            matches!(t.txn.set(b"a", b"x"), Err(Error::TransactionClosed)),
            "{ctx}: write after commit"
        );
    }
    // Rolled back, dropped, refused or committed: the committed state is exactly the model.
    assert_eq!(dump(tree).unwrap(), oracle.committed, "{ctx}: state after finishing");
}

/// A transaction left open across `close`: its reads and its commit must be refused (its
/// own pending writes may still be read back from its buffer).
fn check_refused_after_close(t: &mut ModelTxn, step: u64) {
    let ctx = format!("step {step} txn {} ({:?}) after close", t.id, t.mode);
    if t.mode != Mode::WriteOnly {
        let unwritten = key_space().into_iter().find(|k| !t.pending.contains_key(k));
        if let Some(k) = unwritten {
            let r = t.txn.get(&k);
            assert!(matches!(r, Err(Error::Closed)), "{ctx}: get gave {r:?}");
        }
        let r = t.txn.range(b"", b"\xff", None).map(|_| ());
        assert!(matches!(r, Err(Error::Closed)), "{ctx}: range gave {r:?}");
    }
    let r = t.txn.commit_blocking();
    if t.pending.is_empty() {
        // Nothing to write: committing an empty transaction may succeed trivially.
        assert!(matches!(r, Ok(()) | Err(Error::Closed)), "{ctx}: empty commit gave {r:?}");
    } else {
        assert!(matches!(r, Err(Error::Closed)), "{ctx}: commit gave {r:?}");
    }
}

#[test]
fn random_transactions_on_memfs_plain() {
    random_transactions_on_memfs(Stack::Plain, scaled(3));
}

/// One seed instead of three on the encrypted stack (CI time); the same checks.
#[test]
fn random_transactions_on_memfs_encrypted() {
    random_transactions_on_memfs(Stack::Encrypted, scaled(1));
}

fn random_transactions_on_memfs(stack: Stack, seeds: u64) {
    let seeds = test_seeds(&format!("random_transactions_on_memfs_{}", stack.name()), seeds);
    for seed in seeds {
        let mem = MemFs::new();
        let open = || stack.builder_on(mem.clone()).build().unwrap();
        let s = run_model(seed, 20_000, &open, true, 5);
        eprintln!(
            "seed {seed}: {} commits, {} conflicts, {} rollbacks, {} reopens, {} reads checked",
            s.commits, s.conflicts, s.rollbacks, s.reopens, s.reads
        );
        assert!(
            s.commits > 100 && s.conflicts > 0 && s.reopens > 0,
            "the run exercised too little"
        );
    }
}

/// The same with a 64 KiB memtable, so reads go through flushed tables and compactions run
/// (on background threads, and inline through `maintenance_step`) while transactions are
/// open; once with background threads and once without.
#[test]
fn random_transactions_with_flushes_and_compactions_plain() {
    random_transactions_with_flushes_and_compactions(Stack::Plain);
}

#[test]
fn random_transactions_with_flushes_and_compactions_encrypted() {
    random_transactions_with_flushes_and_compactions(Stack::Encrypted);
}

fn random_transactions_with_flushes_and_compactions(stack: Stack) {
    let seeds = test_seeds(
        &format!("random_transactions_with_flushes_and_compactions_{}", stack.name()),
        scaled(2),
    );
    for (i, seed) in seeds.into_iter().enumerate() {
        let background = i % 2 == 0;
        let mem = MemFs::new();
        let open = || {
            stack
                .builder_on(mem.clone())
                .with_max_memtable_size(64 * 1024)
                .with_background_threads(background)
                .build()
                .unwrap()
        };
        let s = run_model(seed, 20_000, &open, true, 25);
        eprintln!(
            "seed {seed} (background threads {background}): {} commits, {} conflicts, {} reopens, \
             {} reads checked, {} flushes, {} compactions",
            s.commits, s.conflicts, s.reopens, s.reads, s.flushes, s.compactions
        );
        assert!(s.flushes > 0, "the run never flushed a memtable");
    }
}

#[test]
fn random_transactions_on_std_fs_plain() {
    random_transactions_on_std_fs(Stack::Plain);
}

#[test]
fn random_transactions_on_std_fs_encrypted() {
    random_transactions_on_std_fs(Stack::Encrypted);
}

fn random_transactions_on_std_fs(stack: Stack) {
    for seed in test_seeds(&format!("random_transactions_on_std_fs_{}", stack.name()), scaled(1)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let open = || {
            stack
                .apply(TreeBuilder::new().with_path(path.clone()).with_wal_segment_size(64 * 1024))
                .build()
                .unwrap()
        };
        // Real fsyncs are slow: few Immediate commits, fewer steps.
        let s = run_model(seed, 3000, &open, false, 5);
        eprintln!(
            "seed {seed}: {} commits, {} conflicts, {} rollbacks, {} reopens, {} reads checked",
            s.commits, s.conflicts, s.rollbacks, s.reopens, s.reads
        );
        // A second run continues on the same directory, starting from what the first left.
        let s = run_model(seed ^ 1, 300, &open, true, 5);
        assert!(s.commits > 0);
    }
}

/// T1 and T2 both begin; T1 writes k and commits; T2 still reads its snapshot, writes k, and
/// its commit fails with a conflict, writing nothing.
#[test]
fn interleaved_write_write_conflict_plain() {
    interleaved_write_write_conflict(Stack::Plain);
}

#[test]
fn interleaved_write_write_conflict_encrypted() {
    interleaved_write_write_conflict(Stack::Encrypted);
}

fn interleaved_write_write_conflict(stack: Stack) {
    let mem = MemFs::new();
    let tree = stack.builder_on(mem.clone()).build().unwrap();
    let mut t0 = tree.begin().unwrap();
    t0.set(b"k", b"v0").unwrap();
    t0.set(b"other", b"o0").unwrap();
    t0.commit_blocking().unwrap();

    let mut t1 = tree.begin().unwrap();
    let mut t2 = tree.begin().unwrap();
    t1.set(b"k", b"v1").unwrap();
    t1.set_durability(Durability::Immediate);
    t1.commit_blocking().unwrap();

    // T2 still sees its snapshot, point and range.
    assert_eq!(t2.get(b"k").unwrap().as_deref(), Some(&b"v0"[..]));
    let seen: Vec<_> = t2.range(b"", b"\xff", None).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(seen.len(), 2);
    assert_eq!(&seen[0].1[..], b"v0");
    // A new transaction sees T1.
    assert_eq!(tree.begin().unwrap().get(b"k").unwrap().as_deref(), Some(&b"v1"[..]));

    t2.set(b"k", b"v2").unwrap();
    t2.set(b"t2-only", b"x").unwrap();
    assert_eq!(t2.get(b"k").unwrap().as_deref(), Some(&b"v2"[..]), "T2 reads its own write");
    assert_eq!(t2.get(b"other").unwrap().as_deref(), Some(&b"o0"[..]));
    let r = t2.commit_blocking();
    assert!(matches!(r, Err(Error::TransactionConflict)), "got {r:?}");
    assert!(matches!(t2.get(b"k"), Err(Error::TransactionClosed)));

    let mut want = Model::new();
    want.insert(b"k".to_vec(), b"v1".to_vec());
    want.insert(b"other".to_vec(), b"o0".to_vec());
    assert_eq!(dump(&tree).unwrap(), want, "T2 left no trace");
    assert_eq!(tree.stats().conflicts, 1);

    // A delete conflicts like a set; a disjoint write set does not.
    let mut t3 = tree.begin().unwrap();
    let mut t4 = tree.begin().unwrap();
    let mut t5 = tree.begin().unwrap();
    t3.delete(b"k").unwrap();
    t3.commit_blocking().unwrap();
    t4.set(b"k", b"v4").unwrap();
    assert!(matches!(t4.commit_blocking(), Err(Error::TransactionConflict)));
    // Write skew is allowed under snapshot isolation: t5 read k but writes only `other`.
    assert_eq!(t5.get(b"k").unwrap().as_deref(), Some(&b"v1"[..]));
    t5.set(b"other", b"o5").unwrap();
    t5.commit_blocking().unwrap();
    want.remove(&b"k"[..]);
    want.insert(b"other".to_vec(), b"o5".to_vec());
    assert_eq!(dump(&tree).unwrap(), want);

    tree.close().unwrap();
    drop(tree);
    let tree = stack.builder_on(mem).build().unwrap();
    assert_eq!(dump(&tree).unwrap(), want, "after reopen");
}

/// Write-only transactions read nothing, so they cannot lose an update: two that overlap and
/// write the same key both commit, the later commit's value wins, and neither counts as a
/// conflict. A read-write transaction that began before a write-only one and writes one of its
/// keys still conflicts with it, whichever commits first.
#[test]
fn write_only_transactions_never_conflict_and_the_last_commit_wins() {
    let tree = Stack::Plain.builder_on(MemFs::new()).build().unwrap();
    let mut rw = tree.begin().unwrap();
    let mut w1 = tree.begin_with_mode(Mode::WriteOnly).unwrap();
    let mut w2 = tree.begin_with_mode(Mode::WriteOnly).unwrap();
    w1.set(b"k", b"w1").unwrap();
    w1.set(b"only-w1", b"x").unwrap();
    w2.set(b"k", b"w2").unwrap();
    w2.delete(b"only-w1").unwrap();
    w2.commit_blocking().unwrap();
    w1.commit_blocking().unwrap();
    assert_eq!(tree.begin().unwrap().get(b"k").unwrap().as_deref(), Some(&b"w1"[..]));
    assert_eq!(tree.begin().unwrap().get(b"only-w1").unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(tree.stats().conflicts, 0, "blind writes are not conflicts");

    // The read-write transaction began before both and writes k: it lost the race.
    rw.set(b"k", b"rw").unwrap();
    assert!(matches!(rw.commit_blocking(), Err(Error::TransactionConflict)));
    assert_eq!(tree.stats().conflicts, 1);

    // A write-only commit landing between a read-write transaction's read and its commit
    // makes that commit fail (the read-write one read k), not the write-only one.
    let mut rw = tree.begin().unwrap();
    assert_eq!(rw.get(b"k").unwrap().as_deref(), Some(&b"w1"[..]));
    let mut w3 = tree.begin_with_mode(Mode::WriteOnly).unwrap();
    w3.set(b"k", b"w3").unwrap();
    w3.commit_blocking().unwrap();
    rw.set(b"k", b"from-w1").unwrap();
    assert!(matches!(rw.commit_blocking(), Err(Error::TransactionConflict)));
    assert_eq!(tree.begin().unwrap().get(b"k").unwrap().as_deref(), Some(&b"w3"[..]));

    // A write-only transaction begun before a read-write commit of k overwrites it.
    let mut w4 = tree.begin_with_mode(Mode::WriteOnly).unwrap();
    let mut rw = tree.begin().unwrap();
    rw.set(b"k", b"rw").unwrap();
    rw.commit_blocking().unwrap();
    w4.set(b"k", b"w4").unwrap();
    w4.commit_blocking().unwrap();
    assert_eq!(tree.begin().unwrap().get(b"k").unwrap().as_deref(), Some(&b"w4"[..]));
    assert_eq!(tree.stats().conflicts, 2);
}

/// The conflict oracle forgets old writes once it holds many keys; a long-lived transaction
/// must still conflict with a write committed after it began, however many keys were
/// committed since.
#[test]
fn long_lived_transaction_conflicts_after_oracle_pruning_plain() {
    long_lived_transaction_conflicts_after_oracle_pruning(Stack::Plain);
}

#[test]
fn long_lived_transaction_conflicts_after_oracle_pruning_encrypted() {
    long_lived_transaction_conflicts_after_oracle_pruning(Stack::Encrypted);
}

fn long_lived_transaction_conflicts_after_oracle_pruning(stack: Stack) {
    let tree = stack.builder_on(MemFs::new()).build().unwrap();
    let mut old = tree.begin().unwrap();
    let mut first = tree.begin().unwrap();
    first.set(b"hot", b"1").unwrap();
    first.commit_blocking().unwrap();
    for batch in 0..40u32 {
        let mut t = tree.begin().unwrap();
        for i in 0..100u32 {
            t.set(format!("filler{batch:03}-{i:03}").as_bytes(), b"x").unwrap();
        }
        t.commit_blocking().unwrap();
    }
    assert_eq!(old.get(b"hot").unwrap(), None, "the old snapshot does not see `hot`");
    old.set(b"hot", b"2").unwrap();
    assert!(matches!(old.commit_blocking(), Err(Error::TransactionConflict)));
    // A fresh transaction writing the same key commits.
    let mut fresh = tree.begin().unwrap();
    fresh.set(b"hot", b"3").unwrap();
    fresh.commit_blocking().unwrap();
    assert_eq!(dump(&tree).unwrap().get(&b"hot"[..]).map(Vec::as_slice), Some(&b"3"[..]));
}

/// Transactions still open when the tree closes are refused, and leave no trace.
#[test]
fn open_transactions_are_refused_after_close_plain() {
    open_transactions_are_refused_after_close(Stack::Plain);
}

#[test]
fn open_transactions_are_refused_after_close_encrypted() {
    open_transactions_are_refused_after_close(Stack::Encrypted);
}

fn open_transactions_are_refused_after_close(stack: Stack) {
    let mem = MemFs::new();
    let tree = stack.builder_on(mem.clone()).build().unwrap();
    let mut t = tree.begin().unwrap();
    t.set(b"a", b"1").unwrap();
    t.commit_blocking().unwrap();
    let mut pending = tree.begin().unwrap();
    pending.set(b"b", b"2").unwrap();
    let reader = tree.begin().unwrap();
    tree.close().unwrap();
    assert!(matches!(tree.begin(), Err(Error::Closed)));
    assert!(matches!(reader.get(b"a"), Err(Error::Closed)), "read after close");
    assert!(matches!(reader.range(b"", b"z", None), Err(Error::Closed)), "range after close");
    assert!(matches!(pending.commit_blocking(), Err(Error::Closed)));
    tree.close().unwrap(); // idempotent
    drop((tree, reader, pending));
    let tree = stack.builder_on(mem).build().unwrap();
    let mut want = Model::new();
    want.insert(b"a".to_vec(), b"1".to_vec());
    assert_eq!(dump(&tree).unwrap(), want);
}

/// The async commit path agrees with the model too, with commits racing in one group.
#[test]
fn concurrent_async_commits_match_the_model_plain() {
    concurrent_async_commits_match_the_model(Stack::Plain);
}

#[test]
fn concurrent_async_commits_match_the_model_encrypted() {
    concurrent_async_commits_match_the_model(Stack::Encrypted);
}

fn concurrent_async_commits_match_the_model(stack: Stack) {
    let seed =
        test_seeds(&format!("concurrent_async_commits_match_the_model_{}", stack.name()), 1)[0];
    let mut rng = Rng::new(seed);
    let mem = MemFs::new();
    let tree = stack.builder_on(mem.clone()).build().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let rounds = scaled(30);
    let mut model = Model::new();
    for round in 0..rounds {
        // Eight transactions on distinct keys, plus two on one shared key (one must lose).
        let mut txns = Vec::new();
        let mut writes = Vec::new();
        for i in 0..8u64 {
            let mut t = tree.begin().unwrap();
            let k = format!("r{round:03}-{i}").into_bytes();
            let len = rng.below(64) as usize;
            let v = rng.bytes(len);
            t.set(&k, &v).unwrap();
            if rng.percent(30) {
                t.set_durability(Durability::Immediate);
            }
            txns.push(t);
            writes.push(Some((k, v)));
        }
        for _ in 0..2 {
            let mut t = tree.begin().unwrap();
            let v = rng.bytes(8);
            t.set(b"shared", &v).unwrap();
            txns.push(t);
            writes.push(Some((b"shared".to_vec(), v)));
        }
        let results: Vec<strata::Result<()>> = rt.block_on(async {
            let handles: Vec<_> = txns
                .into_iter()
                .map(|mut t| tokio::spawn(async move { t.commit().await }))
                .collect();
            let mut out = Vec::new();
            for h in handles {
                out.push(h.await.unwrap());
            }
            out
        });
        let mut shared_ok = 0;
        for (r, w) in results.iter().zip(writes) {
            let (k, v) = w.unwrap();
            match r {
                Ok(()) => {
                    if k == b"shared" {
                        shared_ok += 1;
                    }
                    model.insert(k, v);
                }
                Err(Error::TransactionConflict) => assert_eq!(k, b"shared", "round {round}"),
                Err(e) => panic!("round {round}: {e:?}"),
            }
        }
        assert_eq!(shared_ok, 1, "round {round}: exactly one writer of `shared` wins");
        assert_eq!(dump(&tree).unwrap(), model, "round {round}");
    }
    tree.close().unwrap();
    drop(tree);
    let tree = stack.builder_on(mem).build().unwrap();
    assert_eq!(dump(&tree).unwrap(), model);
}

//! Model test for versioning (time travel) against a per-key history oracle.
//!
//! Random transactions mix `set_at_version` with random explicit timestamps (older than the
//! key's newest version, duplicates of an existing version's timestamp, 0, `u64::MAX`, and
//! times in the future) with plain `set` and `delete`, whose commit timestamp the test knows
//! exactly: the tree runs on a manual clock the test sets before every commit, and the engine
//! stamps `max(clock, last commit timestamp + 1)`. The clock also steps backwards at times,
//! and is reset to 0 after some reopens, so the `last + 1` rule and its recovery are exercised.
//!
//! Memtables are 64 KiB, so the history spreads over many flushes and compactions; the tree is
//! closed and reopened at random; some cases run maintenance inline, some on background threads.
//! Read-only snapshots are held across later writes and checked against the model of their
//! time. Checked: plain `get` and `range` (the version with the greatest timestamp, then the
//! greatest sequence), `get_at_version`, `range_at_version` / `keys_at_version` /
//! `range_with_options` with a timestamp, forward, backward and mixed, with limits, and
//! `scan_all_versions` (all of it, sub-ranges, limits) against the full model history.
//!
//! A later write at the same (key, timestamp) replaces the earlier one for readers (newest
//! sequence wins). `scan_all_versions` lists only the newest write at each (key, timestamp): the earlier
//! writes it replaced are never listed (checked strictly).
//!
//! Replay with `STRATA_SEED=<seed>` (runs that seed inline and with background threads;
//! thread timing still varies); `STRATA_SOAK` runs more seeds.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use strata::{Mode, RangeIter, ReadOptions, Transaction, Tree, TreeBuilder};
use strata_core::ManualClock;
use strata_tests::versioned::{History, Op, Writes, drop_commit_ts_clashes};
use strata_tests::{Rng, scaled, show, tagged_value, test_seeds};
use strata_vfs::MemFs;

/// A range entry: key, and value unless keys only.
type Entry = (Vec<u8>, Option<Vec<u8>>);
type EntryIter = Box<dyn DoubleEndedIterator<Item = Entry>>;

type Scanned = Vec<(Bytes, Bytes, u64, bool)>;

/// Checks a `scan_all_versions(lo, hi, None)` result against the history. Returns how many
/// shadowed (same key and timestamp, older sequence) entries it listed.
fn check_scan(got: &Scanned, model: &History, lo: &[u8], hi: &[u8], ctx: &str) -> usize {
    let mut want: Vec<(&Vec<u8>, u64, &Writes)> = Vec::new();
    for (k, versions) in &model.keys {
        if k.as_slice() < lo || k.as_slice() >= hi {
            continue;
        }
        for (ts, writes) in versions.iter().rev() {
            want.push((k, *ts, writes));
        }
    }
    let shadowed = 0;
    let mut i = 0;
    for (n, (key, ts, writes)) in want.iter().enumerate() {
        // The newest write first, then possibly some older writes at the same (key, ts),
        // newest first.
        let mut expect = writes.iter().rev();
        let mut first = true;
        while let Some((gk, gv, gts, gdel)) = got.get(i) {
            if gk.as_ref() != key.as_slice() || gts != ts {
                break;
            }
            let Some(w) = expect.next() else {
                panic!(
                    "{ctx}: scan lists more versions at ({}, {ts}) than were written ({})",
                    show(key),
                    writes.len()
                );
            };
            let got_value = if *gdel {
                assert!(gv.is_empty(), "{ctx}: tombstone with a value at ({}, {ts})", show(key));
                None
            } else {
                Some(gv.to_vec())
            };
            assert!(
                got_value.as_ref() == w.as_ref(),
                "{ctx}: scan entry {i} at ({}, {ts}): got {} want {}{}",
                show(key),
                describe(got_value.as_deref()),
                describe(w.as_deref()),
                if first { " (the newest write must come first)" } else { " (shadowed write)" }
            );
            assert!(
                first,
                "{ctx}: scan lists a write at ({}, {ts}) that a newer write at the same time replaced",
                show(key)
            );
            first = false;
            i += 1;
        }
        assert!(
            !first,
            "{ctx}: scan is missing version {n} ({}, {ts}); got at that position {:?}",
            show(key),
            got.get(i).map(|(k, _, t, d)| (show(k), *t, *d))
        );
    }
    assert!(
        i == got.len(),
        "{ctx}: scan lists {} unexpected trailing versions, first {:?}",
        got.len() - i,
        got.get(i).map(|(k, _, t, d)| (show(k), *t, *d))
    );
    shadowed
}

fn describe(v: Option<&[u8]>) -> String {
    match v {
        None => "tombstone".into(),
        Some(v) => format!("{} bytes {}", v.len(), show(&v[..v.len().min(12)])),
    }
}

fn key_space() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"a".to_vec(),
        b"a\x00".to_vec(),
        b"aa".to_vec(),
        b"b".to_vec(),
        b"b\xff".to_vec(),
        b"\xff".to_vec(),
        b"\xff\xff".to_vec(),
    ];
    for i in 0..16 {
        keys.push(format!("k{i:02}").into_bytes());
    }
    keys
}

fn bound_space() -> Vec<Vec<u8>> {
    let mut b = key_space();
    b.extend([
        b"a\x00\x00".to_vec(),
        b"c".to_vec(),
        b"k".to_vec(),
        b"k07\x00".to_vec(),
        b"z".to_vec(),
    ]);
    b
}

struct Case {
    seed: u64,
    rng: Rng,
    mem: MemFs,
    clock: Arc<ManualClock>,
    background: bool,
    tree: Option<Tree>,
    model: History,
    /// The clock reading the test set last.
    clock_now: u64,
    /// The last commit timestamp the engine handed out.
    last_commit_ts: u64,
    value_tag: u64,
    keys: Vec<Vec<u8>>,
    bounds: Vec<Vec<u8>>,
    held: Option<(Transaction, History, u64)>,
    stats: Counters,
}

#[derive(Debug, Default)]
struct Counters {
    commits: u64,
    explicit: u64,
    older: u64,
    duplicates: u64,
    tombstones: u64,
    rollbacks: u64,
    reopens: u64,
    clock_resets: u64,
    flushes: u64,
    compactions: u64,
    reads: u64,
    /// Shadowed same-(key, ts) entries scans listed, summed over every scan checked.
    shadowed_seen: usize,
    snapshot_checks: u64,
}

impl Case {
    fn open(&self) -> Tree {
        TreeBuilder::new()
            .with_vfs(self.mem.clone())
            .with_versioning(true, 0)
            .with_clock(self.clock.clone())
            .with_max_memtable_size(64 * 1024)
            .with_wal_segment_size(64 * 1024)
            .with_background_threads(self.background)
            .build()
            .unwrap_or_else(|e| panic!("seed {}: open: {e}", self.seed))
    }

    fn tree(&self) -> &Tree {
        self.tree.as_ref().unwrap()
    }

    fn value(&mut self) -> Vec<u8> {
        self.value_tag += 1;
        let len = match self.rng.below(100) {
            0 => 0,
            1..=69 => self.rng.range(8, 300),
            70..=95 => self.rng.range(1024, 4096),
            _ => self.rng.range(8 * 1024, 20 * 1024),
        } as usize;
        tagged_value(self.value_tag, len)
    }

    /// A timestamp to read at.
    fn read_ts(&mut self) -> u64 {
        let all = self.model.timestamps();
        match self.rng.below(10) {
            0 => 0,
            1 => u64::MAX,
            2 => self.last_commit_ts,
            3 | 4 => self.rng.range(0, self.last_commit_ts + 50),
            _ if !all.is_empty() => {
                let t = *self.rng.pick(&all);
                match self.rng.below(3) {
                    0 => t.saturating_sub(1),
                    1 => t,
                    _ => t.saturating_add(1),
                }
            }
            _ => self.rng.range(0, self.last_commit_ts + 50),
        }
    }

    /// An explicit timestamp for a write of `key`.
    fn write_ts(&mut self, key: &[u8]) -> u64 {
        let existing: Vec<u64> = self.model.timestamps_of(key);
        let r = self.rng.below(100);
        if r < 25 && !existing.is_empty() {
            self.stats.duplicates += 1;
            return *self.rng.pick(&existing);
        }
        if r < 50 && !existing.is_empty() {
            self.stats.older += 1;
            let newest = *existing.last().unwrap();
            return self.rng.range(0, newest.saturating_sub(1));
        }
        match r {
            50..=52 => 0,
            53 => u64::MAX,
            _ => self.rng.range(1, self.last_commit_ts + 100),
        }
    }

    fn step(&mut self, step: u64) {
        match self.rng.below(100) {
            0..=2 => self.reopen(),
            3..=5 => self.rollback_txn(),
            6 => {
                // An empty transaction commits without taking a timestamp.
                let mut txn = self.tree().begin().unwrap();
                txn.commit_blocking().unwrap();
            }
            7..=9 => self.toggle_snapshot(step),
            _ => self.write_txn(step),
        }
        self.random_reads(step, 3);
        if self.held.is_some() && self.rng.percent(30) {
            self.check_held(step);
        }
        if step % 40 == 39 {
            self.full_check(&format!("step {step}"));
        }
    }

    fn gen_ops(&mut self) -> Vec<Op> {
        let n = self.rng.range(1, 5);
        let mut ops = Vec::new();
        for _ in 0..n {
            let key = self.rng.pick(&self.keys).clone();
            let op = match self.rng.below(100) {
                0..=54 => {
                    let v = self.value();
                    let ts = self.write_ts(&key);
                    Op::SetAt(key, v, ts)
                }
                55..=84 => Op::Set(key, self.value()),
                _ => Op::Delete(key),
            };
            ops.push(op);
        }
        ops
    }

    fn apply_ops(txn: &mut Transaction, ops: &[Op]) {
        for op in ops {
            op.run(txn).unwrap();
        }
    }

    fn write_txn(&mut self, step: u64) {
        // The clock: usually forward, sometimes still, sometimes backwards.
        match self.rng.below(100) {
            0..=69 => self.clock_now += self.rng.range(1, 40),
            70..=84 => {}
            _ => self.clock_now = self.clock_now.saturating_sub(self.rng.range(1, 200)),
        }
        self.clock.set(self.clock_now);
        let commit_ts = self.clock_now.max(self.last_commit_ts + 1);

        let mut ops = self.gen_ops();
        // The same user key written plainly and explicitly at the commit timestamp in one
        // transaction gives two identical internal keys; leave that ambiguity out.
        drop_commit_ts_clashes(&mut ops, commit_ts);
        if ops.is_empty() {
            return;
        }

        let mut txn = self.tree().begin().unwrap();
        if self.rng.percent(20) {
            txn.set_durability(strata::Durability::Immediate);
        }
        Self::apply_ops(&mut txn, &ops);
        if self.rng.percent(10) {
            // Pending writes are not part of committed history.
            let key = self.rng.pick(&self.keys).clone();
            let ts = self.read_ts();
            let got = txn.get_at_version(&key, ts).unwrap().map(|b| b.to_vec());
            assert_eq!(
                got.as_ref(),
                self.model.value_at(&key, Some(ts)),
                "seed {}: step {step}: get_at_version({}, {ts}) in a writing transaction",
                self.seed,
                show(&key)
            );
        }
        txn.commit_blocking()
            .unwrap_or_else(|e| panic!("seed {}: step {step}: commit: {e}", self.seed));

        // The model applies the transaction as TxnCore does: the last plain write of each key,
        // the last explicit write of each (key, ts).
        let applied = self.model.apply(&ops, commit_ts);
        self.stats.tombstones += applied.tombstones as u64;
        self.stats.explicit += applied.explicit as u64;
        self.last_commit_ts = commit_ts;
        self.stats.commits += 1;

        if step.is_multiple_of(7) {
            self.check_commit_ts(step, commit_ts);
        }
    }

    /// The commit timestamp the engine stamped is the one the model predicted: a plain write
    /// to a scratch key reads back at exactly that time.
    fn check_commit_ts(&mut self, step: u64, prev: u64) {
        self.clock_now += 1;
        self.clock.set(self.clock_now);
        let commit_ts = self.clock_now.max(self.last_commit_ts + 1);
        let key = b"~probe".to_vec();
        let v = self.value();
        let mut txn = self.tree().begin().unwrap();
        txn.set(&key, &v).unwrap();
        txn.commit_blocking().unwrap();
        self.model.write(&key, commit_ts, Some(v));
        self.last_commit_ts = commit_ts;
        self.stats.commits += 1;
        let txn = self.tree().begin_with_mode(Mode::ReadOnly).unwrap();
        let scan = txn.scan_all_versions(b"~probe", b"~probe\x00", Some(1)).unwrap();
        assert_eq!(
            scan.first().map(|e| e.2),
            Some(commit_ts),
            "seed {}: step {step}: commit timestamp (clock {}, previous commit {})",
            self.seed,
            self.clock_now,
            prev
        );
    }

    fn rollback_txn(&mut self) {
        let ops = self.gen_ops();
        let mut txn = self.tree().begin().unwrap();
        Self::apply_ops(&mut txn, &ops);
        if self.rng.percent(50) {
            txn.rollback().unwrap();
        } else {
            drop(txn);
        }
        self.stats.rollbacks += 1;
    }

    fn toggle_snapshot(&mut self, step: u64) {
        if let Some((txn, model, _)) = self.held.take() {
            self.check_snapshot(&txn, &model, &format!("held snapshot at step {step}"));
        } else {
            let txn = self.tree().begin_with_mode(Mode::ReadOnly).unwrap();
            self.held = Some((txn, self.model.clone(), step));
        }
    }

    fn check_held(&mut self, step: u64) {
        let Some((txn, model, since)) = self.held.take() else { return };
        let key = self.rng.pick(&self.keys).clone();
        let ts = self.read_ts();
        let got = txn.get_at_version(&key, ts).unwrap().map(|b| b.to_vec());
        assert_eq!(
            got.as_ref(),
            model.value_at(&key, Some(ts)),
            "seed {}: step {step}: snapshot from step {since}: get_at_version({}, {ts})",
            self.seed,
            show(&key)
        );
        let got = txn.get(&key).unwrap().map(|b| b.to_vec());
        assert_eq!(got.as_ref(), model.value_at(&key, None), "seed {}: snapshot get", self.seed);
        self.stats.snapshot_checks += 1;
        self.held = Some((txn, model, since));
    }

    fn check_snapshot(&mut self, txn: &Transaction, model: &History, ctx: &str) {
        let ctx = format!("seed {}: {ctx}", self.seed);
        let scan = txn.scan_all_versions(b"", b"\xff\xff\xff", None).unwrap();
        self.stats.shadowed_seen += check_scan(&scan, model, b"", b"\xff\xff\xff", &ctx);
        let ts = self.read_ts();
        let got = collect(txn.range_at_version(b"", b"\xff\xff\xff", ts, None).unwrap());
        assert_eq!(
            got,
            model.view(Some(ts), Some(b""), Some(b"\xff\xff\xff")),
            "{ctx}: range at {ts}"
        );
        self.stats.snapshot_checks += 1;
    }

    fn reopen(&mut self) {
        if let Some((txn, model, since)) = self.held.take() {
            self.check_snapshot(&txn, &model, &format!("snapshot from step {since} before reopen"));
        }
        let tree = self.tree.take().unwrap();
        let s = tree.stats();
        self.stats.flushes += s.flushes;
        self.stats.compactions += s.compactions;
        tree.close().unwrap();
        drop(tree);
        if self.rng.percent(40) {
            // The clock went back (or a host without one): timestamps must still increase,
            // from the recovered last commit timestamp.
            self.clock_now = self.rng.range(0, 5);
            self.stats.clock_resets += 1;
        }
        self.clock.set(self.clock_now);
        self.tree = Some(self.open());
        self.stats.reopens += 1;
        if self.rng.percent(50) {
            let n = self.stats.reopens;
            self.full_check(&format!("after reopen {n}"));
        }
    }

    fn random_reads(&mut self, step: u64, n: usize) {
        let txn = self.tree().begin_with_mode(Mode::ReadOnly).unwrap();
        for _ in 0..n {
            self.stats.reads += 1;
            let ctx = format!("seed {}: step {step}", self.seed);
            match self.rng.below(6) {
                0 => {
                    let key = self.rng.pick(&self.keys).clone();
                    let got = txn.get(&key).unwrap().map(|b| b.to_vec());
                    assert_eq!(
                        got.as_ref(),
                        self.model.value_at(&key, None),
                        "{ctx}: get({})",
                        show(&key)
                    );
                }
                1 | 2 => {
                    let key = self.rng.pick(&self.keys).clone();
                    let ts = self.read_ts();
                    let got = txn.get_at_version(&key, ts).unwrap().map(|b| b.to_vec());
                    assert_eq!(
                        got.as_ref(),
                        self.model.value_at(&key, Some(ts)),
                        "{ctx}: get_at_version({}, {ts})",
                        show(&key)
                    );
                }
                3 | 4 => self.random_range(&txn, &ctx),
                _ => {
                    // A sub-range of the history, maybe limited: a prefix of the full scan of
                    // that sub-range, which must match the model.
                    let lo = self.rng.pick(&self.bounds).clone();
                    let hi = self.rng.pick(&self.bounds).clone();
                    let full = txn.scan_all_versions(&lo, &hi, None).unwrap();
                    let c = format!("{ctx}: scan_all_versions({}, {})", show(&lo), show(&hi));
                    self.stats.shadowed_seen += check_scan(&full, &self.model, &lo, &hi, &c);
                    let limit = self.rng.index(full.len() + 3);
                    let part = txn.scan_all_versions(&lo, &hi, Some(limit)).unwrap();
                    assert_eq!(
                        part.as_slice(),
                        &full[..limit.min(full.len())],
                        "{c} limit {limit}"
                    );
                }
            }
        }
    }

    fn random_range(&mut self, txn: &Transaction, ctx: &str) {
        let ts = if self.rng.percent(15) { None } else { Some(self.read_ts()) };
        let lo = self.rng.percent(85).then(|| self.rng.pick(&self.bounds).clone());
        let hi = self.rng.percent(85).then(|| self.rng.pick(&self.bounds).clone());
        let limit = self.rng.percent(50).then(|| self.rng.index(8));
        let keys_only = self.rng.percent(20);
        let mut want = self.model.view(ts, lo.as_deref(), hi.as_deref());
        if lo.as_ref().zip(hi.as_ref()).is_some_and(|(l, h)| l >= h) {
            want.clear();
        }
        let ctx = format!(
            "{ctx}: range ts {ts:?} [{:?}, {:?}) limit {limit:?} keys_only {keys_only}",
            lo.as_deref().map(show),
            hi.as_deref().map(show)
        );
        // Both bounds and a timestamp: the dedicated calls; otherwise ReadOptions.
        let iter = |this: &mut Self| -> EntryIter {
            let dedicated = this.rng.percent(60);
            match (&lo, &hi, ts) {
                (Some(l), Some(h), Some(t)) if dedicated => {
                    if keys_only {
                        Box::new(
                            txn.keys_at_version(l, h, t, limit)
                                .unwrap()
                                .map(|r| (r.unwrap().to_vec(), None)),
                        )
                    } else {
                        Box::new(txn.range_at_version(l, h, t, limit).unwrap().map(pair))
                    }
                }
                (Some(l), Some(h), None) if dedicated => {
                    if keys_only {
                        Box::new(
                            txn.keys(l, h, limit).unwrap().map(|r| (r.unwrap().to_vec(), None)),
                        )
                    } else {
                        Box::new(txn.range(l, h, limit).unwrap().map(pair))
                    }
                }
                _ => {
                    let opts = ReadOptions::new()
                        .with_timestamp(ts)
                        .with_limit(limit)
                        .with_iterate_lower_bound(lo.clone())
                        .with_iterate_upper_bound(hi.clone())
                        .with_keys_only(keys_only);
                    if keys_only {
                        Box::new(
                            txn.keys_with_options(&opts)
                                .unwrap()
                                .map(|r| (r.unwrap().to_vec(), None)),
                        )
                    } else {
                        Box::new(txn.range_with_options(&opts).unwrap().map(pair))
                    }
                }
            }
        };
        let shape = |(k, v): &(Vec<u8>, Vec<u8>)| (k.clone(), (!keys_only).then(|| v.clone()));
        match self.rng.below(3) {
            0 => {
                let got: Vec<_> = iter(self).collect();
                let want: Vec<_> =
                    want.iter().take(limit.unwrap_or(usize::MAX)).map(shape).collect();
                assert!(got == want, "{ctx} forward: got {} want {}", keys(&got), keys(&want));
            }
            1 => {
                let got: Vec<_> = iter(self).rev().collect();
                let want: Vec<_> =
                    want.iter().rev().take(limit.unwrap_or(usize::MAX)).map(shape).collect();
                assert!(got == want, "{ctx} backward: got {} want {}", keys(&got), keys(&want));
            }
            _ => {
                // Mixed: front and back meet in the middle; the limit counts both.
                let mut it = iter(self);
                let (mut i, mut j) = (0usize, want.len());
                let mut remaining = limit.unwrap_or(usize::MAX);
                for n in 0..want.len() + 3 {
                    let front = self.rng.percent(50);
                    let got = if front { it.next() } else { it.next_back() };
                    let expect = if i < j && remaining > 0 {
                        remaining -= 1;
                        if front {
                            i += 1;
                            Some(shape(&want[i - 1]))
                        } else {
                            j -= 1;
                            Some(shape(&want[j]))
                        }
                    } else {
                        None
                    };
                    assert!(
                        got == expect,
                        "{ctx} mixed step {n} ({}): got {:?} want {:?}",
                        if front { "front" } else { "back" },
                        got.as_ref().map(|g| show(&g.0)),
                        expect.as_ref().map(|e| show(&e.0))
                    );
                }
            }
        }
    }

    fn full_check(&mut self, what: &str) {
        let ctx = format!("seed {}: {what}", self.seed);
        let txn = self.tree().begin_with_mode(Mode::ReadOnly).unwrap();
        // Every key, now and at every version's time (and just before it).
        for key in self.keys.iter().chain(std::iter::once(&b"~probe".to_vec())) {
            let got = txn.get(key).unwrap().map(|b| b.to_vec());
            assert_eq!(got.as_ref(), self.model.value_at(key, None), "{ctx}: get({})", show(key));
            let times: Vec<u64> = self.model.timestamps_of(key);
            for t in times {
                for ts in [t.saturating_sub(1), t] {
                    let got = txn.get_at_version(key, ts).unwrap().map(|b| b.to_vec());
                    assert_eq!(
                        got.as_ref(),
                        self.model.value_at(key, Some(ts)),
                        "{ctx}: get_at_version({}, {ts})",
                        show(key)
                    );
                }
            }
        }
        // The whole history.
        let scan = txn.scan_all_versions(b"", b"\xff\xff\xff", None).unwrap();
        self.stats.shadowed_seen += check_scan(&scan, &self.model, b"", b"\xff\xff\xff", &ctx);
        // Whole-range time travel at a few times, both directions.
        for _ in 0..4 {
            let ts = self.read_ts();
            let want = self.model.view(Some(ts), None, None);
            let opts = ReadOptions::new().with_timestamp(Some(ts));
            let fwd = collect(txn.range_with_options(&opts).unwrap());
            assert!(fwd == want, "{ctx}: range at {ts}: got {} want {}", keys2(&fwd), keys2(&want));
            let mut back: Vec<_> = txn
                .range_with_options(&opts)
                .unwrap()
                .rev()
                .map(pair)
                .map(|(k, v)| (k, v.unwrap()))
                .collect();
            back.reverse();
            assert!(back == want, "{ctx}: backward range at {ts}");
        }
        let now = collect(txn.range_with_options(&ReadOptions::new()).unwrap());
        assert!(now == self.model.view(None, None, None), "{ctx}: current range");
    }
}

fn pair(r: strata::Result<(Bytes, Bytes)>) -> (Vec<u8>, Option<Vec<u8>>) {
    let (k, v) = r.unwrap();
    (k.to_vec(), Some(v.to_vec()))
}

fn collect(it: RangeIter) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

fn keys(v: &[(Vec<u8>, Option<Vec<u8>>)]) -> String {
    v.iter().map(|(k, _)| show(k)).collect::<Vec<_>>().join(",")
}

fn keys2(v: &[(Vec<u8>, Vec<u8>)]) -> String {
    v.iter().map(|(k, _)| show(k)).collect::<Vec<_>>().join(",")
}

fn run_case(seed: u64, background: bool, steps: u64) -> Counters {
    let clock = Arc::new(ManualClock::default());
    let mut case = Case {
        seed,
        rng: Rng::new(seed),
        mem: MemFs::new(),
        clock,
        background,
        tree: None,
        model: History::default(),
        clock_now: 1_000,
        last_commit_ts: 0,
        value_tag: seed.rotate_left(20),
        keys: key_space(),
        bounds: bound_space(),
        held: None,
        stats: Counters::default(),
    };
    case.clock.set(case.clock_now);
    case.tree = Some(case.open());
    for step in 0..steps {
        case.step(step);
    }
    case.held = None;
    case.full_check("end");
    // Everything compacted as far as it goes, then once more after a reopen.
    case.tree().maintenance_step(usize::MAX).unwrap();
    case.full_check("end, after maintenance");
    case.reopen();
    case.full_check("end, after the last reopen");
    let s = case.tree().stats();
    case.stats.flushes += s.flushes;
    case.stats.compactions += s.compactions;
    case.tree.take().unwrap().close().unwrap();
    eprintln!(
        "seed {seed} (background {background}): {steps} steps, {} versions, {:?}",
        case.model.version_count(),
        case.stats
    );
    case.stats
}

#[test]
fn versioned_history_matches_the_model_across_flushes_compactions_and_reopens() {
    // Alternate cases run maintenance on background threads; a pinned seed runs both ways.
    let cases: Vec<(u64, bool)> = match strata_tests::pinned_seed() {
        Some(_) => {
            let seed = test_seeds("versioning_model", 1)[0];
            vec![(seed, false), (seed, true)]
        }
        None => test_seeds("versioning_model", scaled(4))
            .into_iter()
            .enumerate()
            .map(|(i, seed)| (seed, i % 2 == 1))
            .collect(),
    };
    let mut total = Counters::default();
    for (seed, background) in cases {
        let s = run_case(seed, background, 1200);
        total.flushes += s.flushes;
        total.compactions += s.compactions;
        total.reopens += s.reopens;
        total.older += s.older;
        total.duplicates += s.duplicates;
        total.tombstones += s.tombstones;
    }
    assert!(total.flushes >= 5, "the workload must flush: {total:?}");
    assert!(total.compactions >= 1, "the workload must compact: {total:?}");
    assert!(total.older > 0 && total.duplicates > 0 && total.tombstones > 0, "{total:?}");
}

//! Versioning with the value log: a model test whose history lives mostly in the log.
//!
//! Random transactions mix plain `set` / `delete` (at the commit timestamp, which the test
//! predicts exactly from a manual clock) with `set_at_version` at older timestamps, at
//! timestamps a version of the key already has (replacing it: the dead records garbage
//! collection finds), and at near-future ones. Most values are above the 512-byte threshold,
//! so nearly every version is a pointer. Between transactions: flushes (a checkpoint into a
//! scratch MemFs flushes every memtable and seals the head file), compactions, explicit
//! `run_vlog_gc` with a discard ratio of 0 (any file with a dead record is rewritten, so
//! history is relocated again and again), reopens, and read-only snapshots held across all
//! of it. Every `get`, `get_at_version`, `range_at_version` (both directions) and
//! `scan_all_versions` must match the model: history survives relocation, and a snapshot
//! older than a relocation keeps reading the files it began on.
//!
//! Model: key -> timestamp -> the newest write at that (key, timestamp) (`None`: tombstone).
//! Replay with `STRATA_SEED=<seed>` (runs inline and with background threads).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use strata::{Mode, Transaction, Tree, TreeBuilder};
use strata_core::ManualClock;
use strata_tests::versioned::{History, Op, ScanEntry, drop_commit_ts_clashes};
use strata_tests::{Rng, scaled, show, tagged_value, test_seeds};
use strata_vfs::MemFs;

type Hist = History;
type Scan = Vec<ScanEntry>;

fn describe_scan_diff(want: &Scan, got: &Scan) -> String {
    let n = want.len().max(got.len());
    for i in 0..n {
        let (w, g) = (want.get(i), got.get(i));
        if w != g {
            let d = |e: Option<&(Vec<u8>, Vec<u8>, u64, bool)>| {
                e.map(|(k, v, ts, del)| {
                    format!(
                        "({}, ts {ts}, {})",
                        show(k),
                        if *del {
                            "tombstone".into()
                        } else {
                            format!("{} bytes tag {:?}", v.len(), v.get(..8))
                        }
                    )
                })
            };
            return format!("first difference at entry {i}: want {:?}, got {:?}", d(w), d(g));
        }
    }
    String::new()
}

#[derive(Debug, Default)]
struct Counters {
    commits: u64,
    explicit: u64,
    replaced: u64,
    gc_runs: u64,
    gc_collected: u64,
    /// Files any GC (explicit or background) rewrote, summed over every open.
    gc_all: u64,
    gc_relocated: u64,
    gc_deleted: u64,
    flushes: u64,
    maintenance: u64,
    reopens: u64,
    checks: u64,
    snapshot_checks: u64,
}

struct Case {
    seed: u64,
    rng: Rng,
    mem: MemFs,
    clock: Arc<ManualClock>,
    background: bool,
    tree: Option<Tree>,
    model: Hist,
    clock_now: u64,
    last_ts: u64,
    tag: u64,
    keys: Vec<Vec<u8>>,
    held: Option<(Transaction, Hist, u64)>,
    n: Counters,
}

impl Case {
    fn new(seed: u64, background: bool) -> Self {
        let clock_now = 1_000;
        let mut c = Case {
            seed,
            rng: Rng::new(seed),
            mem: MemFs::new(),
            clock: ManualClock::at(clock_now),
            background,
            tree: None,
            model: Hist::default(),
            clock_now,
            last_ts: 0,
            tag: 0,
            keys: (0..20).map(|i| format!("k{i:02}").into_bytes()).collect(),
            held: None,
            n: Counters::default(),
        };
        c.tree = Some(c.open());
        c
    }

    fn open(&self) -> Tree {
        TreeBuilder::new()
            .with_vfs(self.mem.clone())
            .with_versioning(true, 0)
            .with_clock(self.clock.clone())
            .with_vlog_value_threshold(512)
            .with_vlog_max_file_size(1024 * 1024)
            .with_vlog_gc_discard_ratio(0.0)
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
        self.tag += 1;
        let len =
            if self.rng.percent(15) { self.rng.range(1, 400) } else { self.rng.range(600, 6000) };
        tagged_value(self.tag, len as usize)
    }

    fn write_ts(&mut self, key: &[u8]) -> u64 {
        let existing = self.model.timestamps_of(key);
        let r = self.rng.below(100);
        if r < 35 && !existing.is_empty() {
            self.n.replaced += 1;
            return *self.rng.pick(&existing);
        }
        if r < 70 && !existing.is_empty() {
            let newest = *existing.last().unwrap();
            return self.rng.range(0, newest.saturating_sub(1));
        }
        self.rng.range(1, self.last_ts + 60)
    }

    fn write_txn(&mut self, step: u64) {
        if self.rng.percent(85) {
            self.clock_now += self.rng.range(1, 30);
        }
        self.clock.set(self.clock_now);
        let commit_ts = self.clock_now.max(self.last_ts + 1);
        let mut ops = Vec::new();
        for _ in 0..self.rng.range(1, 5) {
            let key = self.rng.pick(&self.keys).clone();
            ops.push(match self.rng.below(100) {
                0..=49 => {
                    let v = self.value();
                    let ts = self.write_ts(&key);
                    Op::SetAt(key, v, ts)
                }
                50..=84 => Op::Set(key, self.value()),
                _ => Op::Delete(key),
            });
        }
        // A plain write and an explicit one at the commit timestamp of one key in one
        // transaction would be two identical internal keys: leave that out.
        drop_commit_ts_clashes(&mut ops, commit_ts);
        let mut txn = self.tree().begin().unwrap();
        for op in &ops {
            op.run(&mut txn).unwrap();
        }
        txn.commit_blocking()
            .unwrap_or_else(|e| panic!("seed {}: step {step}: commit: {e}", self.seed));
        // As TxnCore applies it: the last plain write per key, the last explicit write per
        // (key, ts); explicit writes at the commit timestamp (of other keys) after plain ones.
        let applied = self.model.apply(&ops, commit_ts);
        if applied.plain + applied.explicit == 0 {
            return;
        }
        self.n.explicit += applied.explicit as u64;
        self.last_ts = commit_ts;
        self.n.commits += 1;
    }

    fn gc(&mut self, step: u64) {
        let r = self
            .tree()
            .run_vlog_gc()
            .unwrap_or_else(|e| panic!("seed {}: step {step}: run_vlog_gc: {e}", self.seed));
        self.n.gc_runs += 1;
        self.n.gc_collected += r.files_collected;
        self.n.gc_relocated += r.bytes_relocated;
        self.n.gc_deleted += r.files_deleted;
    }

    fn reopen(&mut self, step: u64) {
        if let Some((txn, model, since)) = self.held.take() {
            self.check_reader(&txn, &model, &format!("snapshot from step {since} at reopen"));
        }
        let tree = self.tree.take().unwrap();
        self.n.gc_all += tree.stats().vlog_gc_files;
        tree.close().unwrap_or_else(|e| panic!("seed {}: step {step}: close: {e}", self.seed));
        drop(tree);
        self.tree = Some(self.open());
        self.n.reopens += 1;
    }

    /// Every read kind against `model`, through `txn`.
    fn check_reader(&mut self, txn: &Transaction, model: &Hist, ctx: &str) {
        let ctx = format!("seed {}: {ctx}", self.seed);
        let got: Scan = txn
            .scan_all_versions(b"", b"\xff", None)
            .unwrap_or_else(|e| panic!("{ctx}: scan_all_versions: {e}"))
            .into_iter()
            .map(|(k, v, ts, del)| (k.to_vec(), v.to_vec(), ts, del))
            .collect();
        let want = model.expected_scan(b"", b"\xff");
        assert!(got == want, "{ctx}: scan_all_versions: {}", describe_scan_diff(&want, &got));
        for k in &self.keys {
            let g = txn.get(k).unwrap_or_else(|e| panic!("{ctx}: get: {e}"));
            assert!(
                g.as_deref() == model.value_at(k, None).map(Vec::as_slice),
                "{ctx}: get({})",
                show(k)
            );
        }
        let times = model.timestamps();
        for _ in 0..4 {
            let ts = match times.len() {
                0 => self.rng.below(2_000),
                n => times[self.rng.index(n)].saturating_add(self.rng.below(3)).saturating_sub(1),
            };
            let fwd: Vec<(Vec<u8>, Vec<u8>)> = txn
                .range_at_version(b"", b"\xff", ts, None)
                .unwrap()
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<strata::Result<_>>()
                .unwrap_or_else(|e| panic!("{ctx}: range_at_version({ts}): {e}"));
            assert!(fwd == model.view(Some(ts), None, None), "{ctx}: range_at_version({ts})");
            let mut back: Vec<(Vec<u8>, Vec<u8>)> = txn
                .range_at_version(b"", b"\xff", ts, None)
                .unwrap()
                .rev()
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<strata::Result<_>>()
                .unwrap_or_else(|e| panic!("{ctx}: range_at_version({ts}) backwards: {e}"));
            back.reverse();
            assert!(back == fwd, "{ctx}: range_at_version({ts}) backwards");
            for k in &self.keys {
                let g = txn.get_at_version(k, ts).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                assert!(
                    g.as_deref() == model.value_at(k, Some(ts)).map(Vec::as_slice),
                    "{ctx}: get_at_version({}, {ts})",
                    show(k)
                );
            }
        }
    }

    fn full_check(&mut self, ctx: &str) {
        let txn = self.tree().begin_with_mode(Mode::ReadOnly).unwrap();
        let model = self.model.clone();
        self.check_reader(&txn, &model, ctx);
        self.n.checks += 1;
    }

    fn random_reads(&mut self, step: u64) {
        let txn = self.tree().begin_with_mode(Mode::ReadOnly).unwrap();
        for _ in 0..3 {
            let key = self.rng.pick(&self.keys).clone();
            let ts = self.rng.range(0, self.last_ts + 40);
            let g = txn
                .get_at_version(&key, ts)
                .unwrap_or_else(|e| panic!("seed {}: step {step}: get_at_version: {e}", self.seed));
            assert!(
                g.as_deref() == self.model.value_at(&key, Some(ts)).map(Vec::as_slice),
                "seed {}: step {step}: get_at_version({}, {ts})",
                self.seed,
                show(&key)
            );
        }
        let key = self.rng.pick(&self.keys).clone();
        let mut hi = key.clone();
        hi.push(0);
        let got: Scan = txn
            .scan_all_versions(&key, &hi, None)
            .unwrap_or_else(|e| panic!("seed {}: step {step}: scan: {e}", self.seed))
            .into_iter()
            .map(|(k, v, ts, del)| (k.to_vec(), v.to_vec(), ts, del))
            .collect();
        let want = self.model.expected_scan(&key, &hi);
        assert!(
            got == want,
            "seed {}: step {step}: scan_all_versions({}): {}",
            self.seed,
            show(&key),
            describe_scan_diff(&want, &got)
        );
    }

    fn step(&mut self, step: u64) {
        match self.rng.below(100) {
            0..=59 => self.write_txn(step),
            60..=66 => {
                // Flushes every memtable and seals the head value log file.
                self.tree().create_checkpoint_in(MemFs::new()).unwrap_or_else(|e| {
                    panic!("seed {}: step {step}: flush (checkpoint): {e}", self.seed)
                });
                self.n.flushes += 1;
            }
            67..=72 => {
                self.tree().maintenance_step(usize::MAX).unwrap_or_else(|e| {
                    panic!("seed {}: step {step}: maintenance: {e}", self.seed)
                });
                self.n.maintenance += 1;
            }
            73..=84 => {
                self.gc(step);
                if self.rng.percent(30) {
                    self.full_check(&format!("step {step} after gc"));
                }
            }
            85..=87 => self.reopen(step),
            _ => {
                if let Some((txn, model, since)) = self.held.take() {
                    let ctx = format!("step {step}: snapshot from step {since}");
                    self.check_reader(&txn, &model, &ctx);
                    self.n.snapshot_checks += 1;
                } else {
                    let txn = self.tree().begin_with_mode(Mode::ReadOnly).unwrap();
                    self.held = Some((txn, self.model.clone(), step));
                }
            }
        }
        self.random_reads(step);
        if step % 50 == 49 {
            self.full_check(&format!("step {step}"));
        }
    }

    fn run(mut self, steps: u64) {
        for step in 0..steps {
            self.step(step);
        }
        if let Some((txn, model, since)) = self.held.take() {
            self.check_reader(&txn, &model, &format!("snapshot from step {since} at the end"));
        }
        // Settle: compact, collect until nothing is left to collect, reopen; still the same.
        self.tree().maintenance_step(usize::MAX).unwrap();
        for _ in 0..5 {
            let r = self.tree().run_vlog_gc().unwrap();
            self.n.gc_collected += r.files_collected;
            self.n.gc_deleted += r.files_deleted;
            if r.files_collected == 0 {
                break;
            }
        }
        self.full_check("settled");
        self.reopen(steps);
        self.full_check("settled and reopened");
        let s = self.tree().stats();
        eprintln!(
            "seed {} background {}: {:?}; vlog files {}, {} bytes; versions {}",
            self.seed,
            self.background,
            self.n,
            s.vlog_files,
            s.vlog_disk_bytes,
            self.model.version_count()
        );
        assert!(self.n.gc_all > 0, "seed {}: GC never relocated any history", self.seed);
        self.tree().close().unwrap();
    }
}

#[test]
fn versioned_history_survives_gc_relocation_inline() {
    for seed in test_seeds("vlog_versioning_inline", 2) {
        Case::new(seed, false).run(scaled(800));
    }
}

#[test]
fn versioned_history_survives_gc_relocation_with_background_threads() {
    for seed in test_seeds("vlog_versioning_background", 1) {
        Case::new(seed, true).run(scaled(800));
    }
}

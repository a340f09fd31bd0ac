//! The random crash loop on MemFs (in the style of RocksDB's crash test): one long randomized
//! workload mixing every feature, cut by a power cut at a random filesystem call under a
//! random crash policy, recovered, checked against the expected-state oracle
//! (`strata_tests::oracle`), and continued.
//!
//! Each episode runs a few random steps on the live tree: transactions of both durabilities
//! and both isolation levels (reads of the latest and of past timestamps checked as they run,
//! overwrites, deletes, explicit-timestamp writes, values from a few dozen bytes to a few KiB
//! so the large ones go through the value log), two interleaved transactions whose conflict
//! the model predicts (a write-write overlap, or under Serializable a write into what the
//! other read, must fail it), flushes, compactions, value log GC, checkpoints, restores from
//! the last checkpoint (which must then read exactly as it was taken) and reopens. A power cut
//! armed at a random changing call (`MemFs::arm_crash_at_change`: any create, append, sync,
//! rename, remove or directory sync) ends the episode wherever it lands, or the episode ends
//! and the power goes while it is idle. A quarter of the recoveries are themselves cut at a
//! random call and recovered again. Then every version of every key is read back: the
//! recovered history must be exactly the committed one followed by a prefix of the pending
//! events (all-or-nothing and commit order), holding every acknowledged Immediate commit and
//! every completed flush, close and restore (every acknowledged commit under `KeepUnsynced`);
//! latest and time-travel reads must answer as the model says. Every so many episodes the loop
//! starts over on a fresh database with other options (memtable, value log threshold, block
//! size, compression, default isolation).
//!
//! Everything runs on one thread without background threads, so a seed determines the whole
//! run: `STRATA_SEED` replays it, and a failure names the crash it happened at. CI runs 1,000
//! crashes; `STRATA_SOAK=<n>` runs n times as many (`STRATA_SOAK=100`: 100,000).

use std::collections::BTreeSet;
use std::sync::Arc;

use strata::{Durability, Error, Isolation, Mode, Tree, TreeBuilder};
use strata_core::ManualClock;
use strata_tests::oracle::{
    self, Event, Oracle, OracleWrite, Versions, Written, check_point, decode_pairs, describe,
    read_versions, value_at, view,
};
use strata_tests::{Rng, scaled, show, test_seed};
use strata_vfs::{CrashPolicy, MemFs};

/// Crashes in the CI tier.
const CI_CRASHES: u64 = 1_000;
/// Episodes on one database before the loop starts a fresh one (bounds the history).
const EPISODES_PER_DATABASE: u64 = 25;
/// Keys of the workload: `key000`.. .
const KEYS: u64 = 40;
/// Commit timestamps are multiples of this; explicit-timestamp writes fall between them.
const TS_STEP: u64 = 1_000;

fn key(i: u64) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// The options one database of the loop runs with.
#[derive(Debug, Clone)]
struct Config {
    memtable: usize,
    wal_segment: u64,
    vlog_threshold: usize,
    vlog_file: u64,
    block_size: usize,
    compression: bool,
    isolation: Isolation,
}

impl Config {
    fn random(rng: &mut Rng) -> Self {
        Config {
            memtable: *rng.pick(&[64 * 1024, 128 * 1024]),
            wal_segment: *rng.pick(&[64 * 1024, 128 * 1024]),
            vlog_threshold: *rng.pick(&[128, 512, 1024]),
            vlog_file: 1024 * 1024,
            block_size: *rng.pick(&[1024, 4096]),
            compression: rng.percent(50),
            isolation: if rng.percent(50) { Isolation::Snapshot } else { Isolation::Serializable },
        }
    }
}

/// Why a step stopped: the power went.
#[derive(Debug)]
struct PowerCut;

type Step = Result<(), PowerCut>;

/// Counters for the summary line.
#[derive(Debug, Default)]
struct Totals {
    crashes: u64,
    idle_cuts: u64,
    recovery_cuts: u64,
    databases: u64,
    commits: u64,
    immediate: u64,
    serializable: u64,
    conflicts_predicted: u64,
    conflicts_unpredicted: u64,
    flushes: u64,
    maintenance_jobs: u64,
    gc_runs: u64,
    checkpoints: u64,
    restores: u64,
    reopens: u64,
    reads_checked: u64,
    versions_checked: u64,
    lost_in_flight: u64,
    kept_unacked: u64,
}

struct Loop {
    rng: Rng,
    cfg: Config,
    clock: Arc<ManualClock>,
    fs: MemFs,
    tree: Option<Tree>,
    oracle: Oracle,
    next_txn: u64,
    /// The next commit's timestamp.
    next_ts: u64,
    explicit_ts: BTreeSet<u64>,
    checkpoint: Option<(MemFs, Versions)>,
    totals: Totals,
    /// Where we are, for failure messages.
    ctx: String,
}

impl Loop {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let cfg = Config::random(&mut rng);
        Loop {
            rng,
            cfg,
            clock: Arc::new(ManualClock::default()),
            fs: MemFs::new(),
            tree: None,
            oracle: Oracle::new(),
            next_txn: 1,
            next_ts: TS_STEP,
            explicit_ts: BTreeSet::new(),
            checkpoint: None,
            totals: Totals::default(),
            ctx: String::new(),
        }
    }

    fn builder(&self, fs: &MemFs) -> TreeBuilder {
        TreeBuilder::new()
            .with_vfs(fs.clone())
            .with_clock(self.clock.clone())
            .with_versioning(true, 0)
            .with_background_threads(false)
            .with_max_memtable_size(self.cfg.memtable)
            .with_wal_segment_size(self.cfg.wal_segment)
            .with_vlog_value_threshold(self.cfg.vlog_threshold)
            .with_vlog_max_file_size(self.cfg.vlog_file)
            .with_block_size(self.cfg.block_size)
            .with_compression(self.cfg.compression)
            // One coin for both, as before value-log compression had its own switch: a new
            // draw would change every seed's configuration.
            .with_vlog_compression(self.cfg.compression)
            .with_isolation(self.cfg.isolation)
    }

    fn tree(&self) -> &Tree {
        self.tree.as_ref().expect("the tree is open between steps")
    }

    /// Starts over on a fresh database with fresh options.
    fn fresh_database(&mut self) {
        self.tree = None;
        self.cfg = Config::random(&mut self.rng);
        self.fs = MemFs::new();
        self.oracle = Oracle::new();
        self.checkpoint = None;
        self.explicit_ts.clear();
        self.tree = Some(self.builder(&self.fs).build().expect("a fresh database opens"));
        self.totals.databases += 1;
    }

    /// An error from a step: the power cut, or a failure of the test.
    fn cut_or_fail(&self, what: &str, e: &Error) -> PowerCut {
        assert!(self.fs.is_crashed(), "{}: {what} failed without a power cut: {e:?}", self.ctx);
        PowerCut
    }

    fn fail(&self, msg: String) -> ! {
        panic!("{}: {msg}", self.ctx)
    }

    /// A value for `key` by transaction `txn`: mostly small, a third large (value log).
    fn value(&mut self, key: &[u8], txn: u64) -> Written {
        let len = if self.rng.percent(35) {
            self.rng.range(300, 3000)
        } else {
            self.rng.range(oracle::min_value_len(key) as u64, 200)
        };
        Written { writer: txn, len: describe(key, txn, len as usize).len() as u32 }
    }

    /// A past timestamp to read at (sometimes 0, sometimes between commits, sometimes now).
    fn past_ts(&mut self) -> u64 {
        match self.rng.below(10) {
            0 => 0,
            1 => self.next_ts,
            _ => self.rng.range(0, self.next_ts),
        }
    }

    /// A fresh explicit timestamp below the newest commit's, between two commit timestamps.
    fn explicit_ts(&mut self) -> Option<u64> {
        let steps = self.next_ts / TS_STEP;
        if steps < 2 {
            return None;
        }
        for _ in 0..8 {
            let ts = self.rng.range(1, steps - 1) * TS_STEP - self.rng.range(1, TS_STEP - 1);
            if self.explicit_ts.insert(ts) {
                return Some(ts);
            }
        }
        None
    }

    /// Random reads checked against `state` (what the transaction sees). Returns the keys and
    /// key ranges read, for the conflict prediction.
    fn random_reads(
        &mut self,
        txn: &strata::Transaction,
        state: &Versions,
        reads: usize,
        read_keys: &mut Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), String> {
        for _ in 0..reads {
            let at = if self.rng.percent(30) { Some(self.past_ts()) } else { None };
            if self.rng.percent(60) {
                let k = key(self.rng.below(KEYS));
                let got = match at {
                    Some(ts) => txn.get_at_version(&k, ts),
                    None => txn.get(&k),
                };
                if self.fs.is_crashed() {
                    return Ok(());
                }
                check_point(&k, got, value_at(state, &k, at), "get")?;
                // Only reads of the latest state are predicted to conflict with a later
                // write: one at a past timestamp may or may not (the write lands later).
                if at.is_none() {
                    let mut end = k.clone();
                    end.push(0);
                    read_keys.push((k, end));
                }
            } else {
                let a = self.rng.below(KEYS);
                let b = self.rng.range(a, KEYS);
                let (lo, hi) = (key(a), key(b));
                let limit =
                    if self.rng.percent(40) { Some(self.rng.range(1, 6) as usize) } else { None };
                let reverse = self.rng.percent(30);
                let iter = match at {
                    Some(ts) => txn.range_at_version(&lo, &hi, ts, limit),
                    None => txn.range(&lo, &hi, limit),
                };
                let iter = iter.map_err(|e| format!("range: {e:?}"));
                if self.fs.is_crashed() {
                    return Ok(());
                }
                let got = if reverse { decode_pairs(iter?.rev()) } else { decode_pairs(iter?) };
                if self.fs.is_crashed() {
                    return Ok(());
                }
                let got = got?;
                let mut want = view(state, at, &lo, &hi);
                if reverse {
                    want.reverse();
                }
                want.truncate(limit.unwrap_or(usize::MAX));
                if got != want {
                    return Err(format!(
                        "range [{}, {}) at {at:?} limit {limit:?} reverse {reverse}: got {:?}, \
                         the model says {:?}",
                        show(&lo),
                        show(&hi),
                        got.iter().map(|(k, w)| (show(k), w.writer)).collect::<Vec<_>>(),
                        want.iter().map(|(k, w)| (show(k), w.writer)).collect::<Vec<_>>()
                    ));
                }
                // A scan a limit stopped read only up to the last key it returned.
                let stopped = limit.is_some_and(|l| got.len() == l);
                let read = match got.last() {
                    Some((last, _)) if stopped && !reverse => {
                        let mut end = last.clone();
                        end.push(0);
                        (lo, end)
                    }
                    Some((last, _)) if stopped => (last.clone(), hi),
                    _ => (lo, hi),
                };
                if at.is_none() {
                    read_keys.push(read);
                }
            }
            self.totals.reads_checked += 1;
        }
        Ok(())
    }

    /// Random writes of transaction `txn_id` made in `txn`.
    fn random_writes(
        &mut self,
        txn: &mut strata::Transaction,
        txn_id: u64,
        count: u64,
    ) -> Result<Vec<OracleWrite>, Error> {
        let mut writes = Vec::new();
        for _ in 0..count {
            let k = key(self.rng.below(KEYS));
            let roll = self.rng.below(100);
            if roll < 15 {
                txn.delete(&k)?;
                writes.push(OracleWrite::Delete(k));
            } else if roll < 25
                && let Some(ts) = self.explicit_ts()
            {
                let w = self.value(&k, txn_id);
                txn.set_at_version(&k, &w.bytes(&k), ts)?;
                writes.push(OracleWrite::SetAt(k, w, ts));
            } else {
                let w = self.value(&k, txn_id);
                txn.set(&k, &w.bytes(&k))?;
                writes.push(OracleWrite::Set(k, w));
            }
        }
        Ok(writes)
    }

    /// Begins a transaction at a random isolation level.
    fn begin(&mut self) -> Result<(strata::Transaction, Isolation), PowerCut> {
        let mut txn = self.tree().begin().map_err(|e| self.cut_or_fail("begin", &e))?;
        let isolation =
            if self.rng.percent(50) { Isolation::Serializable } else { Isolation::Snapshot };
        txn.set_isolation(isolation).map_err(|e| self.cut_or_fail("set_isolation", &e))?;
        if isolation == Isolation::Serializable {
            self.totals.serializable += 1;
        }
        Ok((txn, isolation))
    }

    /// Commits `txn` (whose writes are recorded as `writes`), with the clock at the next
    /// timestamp. `Ok(true)` if it committed, `Ok(false)` on a conflict.
    fn commit(
        &mut self,
        mut txn: strata::Transaction,
        txn_id: u64,
        writes: Vec<OracleWrite>,
    ) -> Result<bool, PowerCut> {
        let immediate = self.rng.percent(35);
        txn.set_durability(if immediate { Durability::Immediate } else { Durability::Eventual });
        let ts = self.next_ts;
        self.next_ts += TS_STEP;
        self.clock.set(ts);
        self.oracle.begin(Event::Commit { txn: txn_id, ts, writes });
        match txn.commit_blocking() {
            Ok(()) => {
                assert!(!self.fs.is_crashed(), "{}: a commit acknowledged after the cut", self.ctx);
                self.oracle.acked(immediate);
                self.totals.commits += 1;
                self.totals.immediate += u64::from(immediate);
                Ok(true)
            }
            Err(Error::TransactionConflict) => {
                self.oracle.abandon();
                Ok(false)
            }
            Err(e) => Err(self.cut_or_fail("commit", &e)),
        }
    }

    /// One transaction: reads checked against the live state, then writes, then commit.
    fn step_transaction(&mut self) -> Step {
        let txn_id = self.next_txn;
        self.next_txn += 1;
        let (mut txn, _) = self.begin()?;
        let state = self.oracle.live().clone();
        let reads = self.rng.below(4) as usize;
        let mut read_keys = Vec::new();
        if let Err(msg) = self.random_reads(&txn, &state, reads, &mut read_keys) {
            self.fail(msg);
        }
        if self.fs.is_crashed() {
            return Err(PowerCut);
        }
        let count = self.rng.range(1, 5);
        let writes = self
            .random_writes(&mut txn, txn_id, count)
            .unwrap_or_else(|e| self.fail(format!("buffering a write: {e:?}")));
        let committed = self.commit(txn, txn_id, writes)?;
        assert!(committed, "{}: a lone transaction conflicted", self.ctx);
        Ok(())
    }

    /// Two overlapping transactions: B reads, A commits writes (some into what B read or
    /// writes), then B writes and commits. The model predicts when B must fail.
    fn step_interleaved(&mut self) -> Step {
        let (b_id, a_id) = (self.next_txn, self.next_txn + 1);
        self.next_txn += 2;
        let (mut b, b_isolation) = self.begin()?;
        let state = self.oracle.live().clone();
        let mut b_reads = Vec::new();
        let reads = self.rng.range(1, 3) as usize;
        if let Err(msg) = self.random_reads(&b, &state, reads, &mut b_reads) {
            self.fail(msg);
        }
        if self.fs.is_crashed() {
            return Err(PowerCut);
        }
        let (mut a, _) = self.begin()?;
        let count = self.rng.range(1, 3);
        let a_writes = self
            .random_writes(&mut a, a_id, count)
            .unwrap_or_else(|e| self.fail(format!("buffering a write: {e:?}")));
        let a_keys: BTreeSet<Vec<u8>> = a_writes.iter().map(write_key).cloned().collect();
        let committed = self.commit(a, a_id, a_writes)?;
        assert!(committed, "{}: A began after every other commit, yet conflicted", self.ctx);
        let count = self.rng.range(1, 3);
        let b_writes = self
            .random_writes(&mut b, b_id, count)
            .unwrap_or_else(|e| self.fail(format!("buffering a write: {e:?}")));
        let write_write = b_writes.iter().any(|w| a_keys.contains(write_key(w)));
        let read_write = b_isolation == Isolation::Serializable
            && a_keys.iter().any(|k| b_reads.iter().any(|(lo, hi)| lo <= k && k < hi));
        let must_conflict = write_write || read_write;
        let committed = self.commit(b, b_id, b_writes)?;
        if committed && must_conflict {
            self.fail(format!(
                "B ({b_isolation:?}) committed though A committed a write into what it {} after \
                 B began (a lost update or write skew): A wrote {:?}, B read {:?}",
                if write_write { "wrote" } else { "read" },
                a_keys.iter().map(|k| show(k)).collect::<Vec<_>>(),
                b_reads.iter().map(|(l, h)| (show(l), show(h))).collect::<Vec<_>>()
            ));
        }
        if !committed {
            if must_conflict {
                self.totals.conflicts_predicted += 1;
            } else {
                self.totals.conflicts_unpredicted += 1;
            }
        }
        Ok(())
    }

    /// Read-only checks of the latest state and of past timestamps.
    fn step_time_travel(&mut self) -> Step {
        let txn = self
            .tree()
            .begin_with_mode(Mode::ReadOnly)
            .map_err(|e| self.cut_or_fail("begin read-only", &e))?;
        let state = self.oracle.live().clone();
        let reads = self.rng.range(2, 6) as usize;
        if let Err(msg) = self.random_reads(&txn, &state, reads, &mut Vec::new()) {
            self.fail(msg);
        }
        if self.fs.is_crashed() { Err(PowerCut) } else { Ok(()) }
    }

    fn step_flush(&mut self) -> Step {
        self.tree().flush().map_err(|e| self.cut_or_fail("flush", &e))?;
        self.oracle.all_durable();
        self.totals.flushes += 1;
        Ok(())
    }

    fn step_maintenance(&mut self) -> Step {
        let budget = self.rng.range(1, 8) as usize;
        let jobs = self
            .tree()
            .maintenance_step(budget)
            .map_err(|e| self.cut_or_fail("maintenance", &e))?;
        self.totals.maintenance_jobs += jobs as u64;
        Ok(())
    }

    fn step_gc(&mut self) -> Step {
        self.tree().run_vlog_gc().map_err(|e| self.cut_or_fail("value log GC", &e))?;
        self.totals.gc_runs += 1;
        Ok(())
    }

    fn step_checkpoint(&mut self) -> Step {
        let dest = MemFs::new();
        self.tree()
            .create_checkpoint_in(dest.clone())
            .map_err(|e| self.cut_or_fail("create checkpoint", &e))?;
        self.checkpoint = Some((dest, self.oracle.live().clone()));
        self.totals.checkpoints += 1;
        Ok(())
    }

    /// Restores the last checkpoint and checks the tree then holds exactly its state.
    fn step_restore(&mut self) -> Step {
        let Some((ckpt, state)) = self.checkpoint.clone() else { return self.step_checkpoint() };
        self.oracle.begin(Event::Restore { state: state.clone() });
        self.tree()
            .restore_from_checkpoint_in(ckpt)
            .map_err(|e| self.cut_or_fail("restore", &e))?;
        self.oracle.acked(true);
        self.totals.restores += 1;
        match read_versions(self.tree()) {
            Ok(got) if got == state => Ok(()),
            Ok(got) => self.fail(format!(
                "the restored tree is not the checkpoint's state: {}",
                oracle::diff(&state, &got)
            )),
            Err(_) if self.fs.is_crashed() => Err(PowerCut),
            Err(e) => self.fail(format!("reading the restored tree: {e}")),
        }
    }

    fn step_reopen(&mut self) -> Step {
        let tree = self.tree.take().expect("open");
        tree.close().map_err(|e| self.cut_or_fail("close", &e))?;
        drop(tree);
        self.oracle.all_durable();
        let tree = self.builder(&self.fs).build().map_err(|e| self.cut_or_fail("reopen", &e))?;
        self.tree = Some(tree);
        self.totals.reopens += 1;
        Ok(())
    }

    fn random_step(&mut self) -> Step {
        match self.rng.below(100) {
            0..=49 => self.step_transaction(),
            50..=61 => self.step_interleaved(),
            62..=69 => self.step_time_travel(),
            70..=75 => self.step_flush(),
            76..=83 => self.step_maintenance(),
            84..=88 => self.step_gc(),
            89..=92 => self.step_checkpoint(),
            93..=95 => self.step_restore(),
            _ => self.step_reopen(),
        }
    }

    /// One episode: steps until the armed cut fires (or the episode ends and the power goes
    /// while idle), then recovery (sometimes cut too) and verification.
    fn episode(&mut self, crash: u64) {
        let policy = *self.rng.pick(&CrashPolicy::ALL);
        let crash_seed = self.rng.next_u64();
        let at = self.fs.change_count() + self.rng.range(1, 120);
        self.ctx = format!("crash {crash} ({policy:?} {crash_seed}, at change call {at})");
        if self.tree.is_none() {
            self.fresh_database();
        }
        self.fs.arm_crash_at_change(at, policy, crash_seed);
        let steps = self.rng.range(4, 24);
        for _ in 0..steps {
            if self.random_step().is_err() {
                break;
            }
        }
        let image = match self.fs.take_crash_image() {
            Some(image) => image,
            None => {
                self.fs.disarm_crash();
                self.totals.idle_cuts += 1;
                self.fs.crash(policy, crash_seed)
            }
        };
        // The process is gone: whatever it held in memory goes with it.
        drop(self.tree.take());
        self.recover(image, policy);
        self.totals.crashes += 1;
    }

    /// Opens the image (sometimes with a second cut during recovery), checks it against the
    /// oracle, and makes the recovered state the committed one.
    fn recover(&mut self, image: MemFs, policy: CrashPolicy) {
        let mut image = image;
        let second = self.rng.percent(25);
        if second {
            let at = image.change_count() + self.rng.range(1, 16);
            let policy = *self.rng.pick(&CrashPolicy::ALL);
            image.arm_crash_at_change(at, policy, self.rng.next_u64());
        }
        let tree = match self.builder(&image).build() {
            Ok(tree) if !image.is_crashed() => {
                image.disarm_crash();
                tree
            }
            first => {
                assert!(
                    second && image.is_crashed(),
                    "{}: recovery failed: {:?}",
                    self.ctx,
                    first.err()
                );
                drop(first);
                self.totals.recovery_cuts += 1;
                image = image.take_crash_image().expect("the fired cut left an image");
                self.builder(&image).build().unwrap_or_else(|e| {
                    self.fail(format!("recovery after a cut during recovery fails: {e:?}"))
                })
            }
        };
        let got = read_versions(&tree).unwrap_or_else(|e| self.fail(e));
        let (pending, acked, _) = self.oracle.counts();
        let k = self
            .oracle
            .find_prefix(&got, policy == CrashPolicy::KeepUnsynced)
            .unwrap_or_else(|e| self.fail(e));
        self.totals.lost_in_flight += u64::from(k < pending && pending > acked);
        self.totals.kept_unacked += u64::from(k > acked);
        self.totals.versions_checked += got.len() as u64;
        self.oracle.confirm(k);
        self.fs = image;
        self.tree = Some(tree);
        // Latest and time-travel reads of the recovered tree.
        let txn = self.tree().begin_with_mode(Mode::ReadOnly).expect("begin");
        let state = self.oracle.live().clone();
        if let Err(msg) = self.random_reads(&txn, &state, 6, &mut Vec::new()) {
            self.fail(format!("after recovery: {msg}"));
        }
        drop(txn);
    }
}

fn write_key(w: &OracleWrite) -> &Vec<u8> {
    match w {
        OracleWrite::Set(k, _) | OracleWrite::Delete(k) | OracleWrite::SetAt(k, _, _) => k,
    }
}

#[test]
fn random_crash_loop_on_memfs() {
    let seed = test_seed("random_crash_loop_on_memfs");
    let crashes = scaled(CI_CRASHES);
    let started = std::time::Instant::now();
    let mut lp = Loop::new(seed);
    for crash in 0..crashes {
        if crash % EPISODES_PER_DATABASE == 0 {
            lp.tree = None;
        }
        lp.episode(crash);
    }
    let t = &lp.totals;
    eprintln!(
        "random crash loop, seed {seed}: {} crashes ({} while idle, {} more during recovery) \
         on {} databases in {:.1?}; {} commits ({} Immediate, {} transactions Serializable), \
         {} conflicts predicted and refused, {} other conflicts; {} flushes, {} maintenance \
         jobs, {} GC runs, {} checkpoints, {} restores, {} reopens; {} reads and {} recovered \
         versions checked; {} in-flight events lost, {} unacknowledged kept",
        t.crashes,
        t.idle_cuts,
        t.recovery_cuts,
        t.databases,
        started.elapsed(),
        t.commits,
        t.immediate,
        t.serializable,
        t.conflicts_predicted,
        t.conflicts_unpredicted,
        t.flushes,
        t.maintenance_jobs,
        t.gc_runs,
        t.checkpoints,
        t.restores,
        t.reopens,
        t.reads_checked,
        t.versions_checked,
        t.lost_in_flight,
        t.kept_unacked
    );
    assert_eq!(t.crashes, crashes);
    assert!(t.commits > crashes, "the loop commits");
    if crashes >= CI_CRASHES {
        assert!(t.recovery_cuts > 0 && t.restores > 0 && t.conflicts_predicted > 0);
        assert!(t.crashes > t.idle_cuts * 2, "most cuts land inside work");
    }
}

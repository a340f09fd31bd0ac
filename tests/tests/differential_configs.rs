//! Differential configurations: one random operation script run under many configurations
//! and against a model; every read must give the same answer everywhere.
//!
//! A script (derived from its seed alone) mixes single puts, deletes and overwrites, multi-write
//! transactions (some rolled back, with reads of their own pending writes), point reads, range
//! scans in both directions with and without limits (keys-only too), flushes, compactions and
//! value log garbage collection through the API, and close-and-reopen. Half the scripts run with
//! versioning on (the value log is then always on, with varying thresholds) and add
//! explicit-timestamp writes, time-travel point and range reads and full version scans.
//!
//! Each configuration changes how the data is laid out (memtable size, value log on or off and
//! its threshold, block size, compression, block cache, background threads, WAL segment size),
//! never what a read answers. The model is [`versioned::History`] (a `BTreeMap` of every key's
//! versions), which answers current reads as a plain `BTreeMap` would.
//!
//! On a mismatch the test prints the script's seed (`STRATA_SEED=<seed>` replays it), the index
//! and operation of the first operation whose answer differs anywhere, and the model's and
//! every configuration's answer to it. `STRATA_SOAK` runs more and longer scripts.

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hasher};
use std::sync::Arc;

use strata::{Durability, Mode, ReadOptions, Tree, TreeBuilder};
use strata_core::ManualClock;
use strata_tests::versioned::{self, History};
use strata_tests::{Rng, is_soak, scaled, show, tagged_value, test_seeds};
use strata_vfs::MemFs;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// The clock reading (so the commit timestamp) of the script's `n`-th commit.
fn commit_ts(n: u64) -> u64 {
    1_000_000 + 1_000 * n
}

// ---------------------------------------------------------------------------------------------
// Configurations.

/// One configuration: a name for reports and the options it changes from the defaults.
#[derive(Debug, Clone)]
struct Config {
    name: &'static str,
    memtable: usize,
    /// `None`: value log off (on anyway under versioning, with a threshold no value reaches).
    vlog_threshold: Option<usize>,
    block_size: usize,
    compression: bool,
    /// Value-log values lz4-compressed (`with_vlog_compression`; off by default).
    vlog_compression: bool,
    cache: usize,
    background: bool,
    wal_segment: u64,
}

/// Above every value the scripts write: a value log that holds nothing.
const UNREACHED_THRESHOLD: usize = 64 * KIB;

fn configs() -> Vec<Config> {
    let base = Config {
        name: "",
        memtable: 64 * MIB,
        vlog_threshold: None,
        block_size: 4 * KIB,
        compression: true,
        vlog_compression: false,
        cache: 64 * MIB,
        background: true,
        wal_segment: 64 * MIB as u64,
    };
    let tiny = Config { memtable: 64 * KIB, wal_segment: 64 * 1024, ..base.clone() };
    vec![
        Config { name: "large memtable, defaults", ..base.clone() },
        Config { name: "tiny memtable, no threads", background: false, ..tiny.clone() },
        Config { name: "tiny memtable, threads", ..tiny.clone() },
        Config {
            name: "vlog threshold 1, vlog compressed, no threads",
            vlog_threshold: Some(1),
            vlog_compression: true,
            background: false,
            ..tiny.clone()
        },
        Config {
            name: "vlog default threshold, threads",
            vlog_threshold: Some(4096),
            ..tiny.clone()
        },
        Config {
            name: "vlog default threshold, vlog compressed, large memtable",
            vlog_threshold: Some(4096),
            vlog_compression: true,
            ..base.clone()
        },
        Config {
            name: "block 1 KiB, no compression, cache 0",
            block_size: KIB,
            compression: false,
            cache: 0,
            ..tiny.clone()
        },
        Config {
            name: "block 64 KiB, cache 256 MiB, no threads",
            block_size: 64 * KIB,
            cache: 256 * MIB,
            background: false,
            ..tiny.clone()
        },
        Config {
            name: "vlog threshold 100, block 1 KiB, no compression, cache 0, no threads",
            vlog_threshold: Some(100),
            block_size: KIB,
            compression: false,
            cache: 0,
            background: false,
            ..tiny
        },
    ]
}

impl Config {
    fn builder(&self, mem: &MemFs, clock: &Arc<ManualClock>, versioning: bool) -> TreeBuilder {
        let threshold = match (self.vlog_threshold, versioning) {
            (Some(t), _) => Some(t),
            (None, true) => Some(UNREACHED_THRESHOLD),
            (None, false) => None,
        };
        let mut b = TreeBuilder::new()
            .with_vfs(mem.clone())
            .with_clock(clock.clone())
            .with_max_memtable_size(self.memtable)
            .with_block_size(self.block_size)
            .with_compression(self.compression)
            .with_vlog_compression(self.vlog_compression)
            .with_block_cache_capacity(self.cache)
            .with_background_threads(self.background)
            .with_wal_segment_size(self.wal_segment)
            .with_vlog_max_file_size(MIB as u64)
            .with_enable_vlog(threshold.is_some());
        if let Some(t) = threshold {
            b = b.with_vlog_value_threshold(t);
        }
        if versioning {
            b = b.with_versioning(true, 0);
        }
        b
    }
}

// ---------------------------------------------------------------------------------------------
// Scripts.

/// A read, inside a write transaction or on its own.
#[derive(Debug, Clone)]
enum Read {
    Get(Vec<u8>),
    /// Bounds (`None`: open), limit, direction, keys only, and whether the entries are read by
    /// reference (`next_ref`) rather than owned.
    Range {
        lo: Option<Vec<u8>>,
        hi: Option<Vec<u8>>,
        limit: Option<usize>,
        reverse: bool,
        keys_only: bool,
        by_ref: bool,
    },
}

#[derive(Debug, Clone)]
enum Op {
    /// One transaction of writes (a single put or delete, or several), with reads of its own
    /// pending writes after them; rolled back instead of committed when `commit` is false.
    Txn {
        writes: Vec<versioned::Op>,
        reads: Vec<Read>,
        durability: Durability,
        commit: bool,
    },
    /// A read in a fresh read-only transaction.
    Read(Read),
    /// A read at a past timestamp (versioning only).
    ReadAt(Read, u64),
    /// `scan_all_versions` (versioning only).
    ScanVersions {
        lo: Vec<u8>,
        hi: Vec<u8>,
        limit: Option<usize>,
    },
    Flush,
    Compact,
    VlogGc,
    Reopen,
}

/// Keys: the empty key, prefixes of each other, 0xff bytes, and a run of ordinary keys.
fn key_space() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> =
        [&b""[..], b"a", b"a\x00", b"aa", b"ab", b"b", b"b\xff", b"\xff", b"\xff\xff"]
            .iter()
            .map(|k| k.to_vec())
            .collect();
    keys.extend((0..48).map(|i| format!("key{i:03}").into_bytes()));
    keys
}

/// Bounds: the keys and points between and beyond them.
fn bound_space() -> Vec<Vec<u8>> {
    let mut b = key_space();
    b.extend(
        [&b"a\x00\x00"[..], b"c", b"key", b"key024\x00", b"z", b"\xff\xff\xff"]
            .iter()
            .map(|k| k.to_vec()),
    );
    b
}

/// A value length: empty, small, around the thresholds, or large (several per memtable).
fn value_len(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=4 => 0,
        5..=44 => rng.range(1, 99) as usize,
        45..=49 => *rng.pick(&[99, 100, 101, 4095, 4096, 4097]),
        50..=79 => rng.range(100, 4000) as usize,
        _ => rng.range(4097, 20 * KIB as u64) as usize,
    }
}

struct ScriptGen {
    rng: Rng,
    keys: Vec<Vec<u8>>,
    bounds: Vec<Vec<u8>>,
    versioning: bool,
    /// Commits so far (the model's clock); every generated transaction may commit.
    commits: u64,
    tag: u64,
}

impl ScriptGen {
    fn key(&mut self) -> Vec<u8> {
        // A hot quarter of the keys takes half the writes, so overwrites are common.
        if self.rng.percent(50) {
            let hot = self.keys.len() / 4;
            self.keys[self.rng.index(hot)].clone()
        } else {
            self.rng.pick(&self.keys).clone()
        }
    }

    fn bound(&mut self) -> Option<Vec<u8>> {
        if self.rng.percent(20) { None } else { Some(self.rng.pick(&self.bounds).clone()) }
    }

    fn value(&mut self) -> Vec<u8> {
        self.tag += 1;
        let len = value_len(&mut self.rng);
        tagged_value(self.tag, len)
    }

    fn read(&mut self) -> Read {
        if self.rng.percent(45) {
            return Read::Get(self.key());
        }
        let (mut lo, mut hi) = (self.bound(), self.bound());
        // Mostly ordered bounds; sometimes inverted or empty ranges.
        if let (Some(l), Some(h)) = (&lo, &hi)
            && l > h
            && self.rng.percent(85)
        {
            std::mem::swap(&mut lo, &mut hi);
        }
        let limit = match self.rng.below(4) {
            0 | 1 => None,
            2 => Some(self.rng.range(0, 3) as usize),
            _ => Some(self.rng.range(1, 40) as usize),
        };
        Read::Range {
            lo,
            hi,
            limit,
            reverse: self.rng.percent(50),
            keys_only: self.rng.percent(20),
            by_ref: self.rng.percent(50),
        }
    }

    /// A time to read at: before everything, at or next to a commit, or now.
    fn past(&mut self) -> u64 {
        match self.rng.below(6) {
            0 => self.rng.range(0, commit_ts(0)),
            1 => commit_ts(self.commits + 5),
            _ => {
                let n = self.rng.range(0, self.commits + 1);
                commit_ts(n) - self.rng.range(0, 1)
            }
        }
    }

    fn txn(&mut self) -> Op {
        let single = self.rng.percent(70);
        let n = if single { 1 } else { self.rng.range(2, 8) };
        let ts = commit_ts(self.commits + 1);
        let mut writes = Vec::new();
        for _ in 0..n {
            let k = self.key();
            let w = match self.rng.below(100) {
                0..=19 => versioned::Op::Delete(k),
                20..=29 if self.versioning && self.commits > 0 => {
                    // A write into the past: at or between earlier commits' timestamps.
                    let at =
                        commit_ts(self.rng.range(0, self.commits)) + self.rng.range(0, 1) * 500;
                    versioned::Op::SetAt(k, self.value(), at)
                }
                _ => versioned::Op::Set(k, self.value()),
            };
            writes.push(w);
        }
        versioned::drop_commit_ts_clashes(&mut writes, ts);
        let has_explicit = writes.iter().any(|w| matches!(w, versioned::Op::SetAt(..)));
        let reads = if single || has_explicit {
            Vec::new()
        } else {
            (0..self.rng.range(0, 3)).map(|_| self.read()).collect()
        };
        let commit = single || self.rng.percent(85);
        let writes_something = !writes.is_empty();
        if commit && writes_something {
            self.commits += 1;
        }
        let durability =
            if self.rng.percent(20) { Durability::Immediate } else { Durability::Eventual };
        Op::Txn { writes, reads, durability, commit }
    }

    fn op(&mut self) -> Op {
        match self.rng.below(1000) {
            0..=449 => self.txn(),
            450..=799 => Op::Read(self.read()),
            800..=899 if self.versioning => {
                let r = self.read();
                let at = self.past();
                Op::ReadAt(r, at)
            }
            900..=929 if self.versioning => {
                let (a, b) =
                    (self.rng.pick(&self.bounds).clone(), self.rng.pick(&self.bounds).clone());
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let limit =
                    if self.rng.percent(50) { None } else { Some(self.rng.range(1, 30) as usize) };
                Op::ScanVersions { lo, hi, limit }
            }
            930..=959 => Op::Flush,
            960..=984 => Op::Compact,
            985..=992 => Op::VlogGc,
            993..=999 => Op::Reopen,
            _ => Op::Read(self.read()),
        }
    }
}

/// The script of `seed`: whether it runs with versioning, and its operations.
fn script(seed: u64, len: usize) -> (bool, Vec<Op>) {
    let mut rng = Rng::new(seed);
    let versioning = rng.percent(50);
    let mut g =
        ScriptGen { rng, keys: key_space(), bounds: bound_space(), versioning, commits: 0, tag: 0 };
    (versioning, (0..len).map(|_| g.op()).collect())
}

// ---------------------------------------------------------------------------------------------
// Answers.

/// What an operation answered, rendered so that equal answers are equal strings and values
/// are compact: a value is its length and a 64-bit hash of its bytes.
fn render_value(v: &[u8]) -> String {
    let mut h = DefaultHasher::new();
    h.write(v);
    format!("{}B#{:016x}", v.len(), h.finish())
}

fn render_entries<'a>(entries: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>) -> String {
    let mut out = String::from("[");
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&show(k));
        if let Some(v) = v {
            write!(out, "={}", render_value(v)).unwrap();
        }
    }
    out.push(']');
    out
}

fn render_get(v: Option<&[u8]>) -> String {
    v.map_or_else(|| "absent".to_string(), render_value)
}

fn describe_read(read: &Read) -> String {
    let bound = |b: &Option<Vec<u8>>| b.as_deref().map_or_else(|| "open".to_string(), show);
    match read {
        Read::Get(k) => format!("get {}", show(k)),
        Read::Range { lo, hi, limit, reverse, keys_only, by_ref } => format!(
            "{} [{}, {}) limit {limit:?}{}{}",
            if *keys_only { "keys" } else { "range" },
            bound(lo),
            bound(hi),
            if *reverse { " reverse" } else { "" },
            if *by_ref && !*keys_only { " by reference" } else { "" }
        ),
    }
}

/// An operation's description for reports (keys escaped, values by length and hash).
fn describe(op: &Op) -> String {
    let w = |w: &versioned::Op| match w {
        versioned::Op::Set(k, v) => format!("set {} {}", show(k), render_value(v)),
        versioned::Op::Delete(k) => format!("delete {}", show(k)),
        versioned::Op::SetAt(k, v, ts) => format!("set {} {} at {ts}", show(k), render_value(v)),
    };
    match op {
        Op::Txn { writes, reads, durability, commit } => format!(
            "txn [{}] then [{}], {durability:?}, {}",
            writes.iter().map(w).collect::<Vec<_>>().join("; "),
            reads.iter().map(describe_read).collect::<Vec<_>>().join("; "),
            if *commit { "commit" } else { "rollback" }
        ),
        Op::Read(r) => describe_read(r),
        Op::ReadAt(r, ts) => format!("{} at {ts}", describe_read(r)),
        Op::ScanVersions { lo, hi, limit } => {
            format!("scan_all_versions [{}, {}) limit {limit:?}", show(lo), show(hi))
        }
        other => format!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The model.

/// Keys and values, ascending.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// What a reader sees between optional bounds (lower inclusive, upper exclusive).
type Visible<'a> = dyn Fn(Option<&[u8]>, Option<&[u8]>) -> Entries + 'a;

/// Answers a read from the entries it sees (ascending), as the engine must.
fn model_read(read: &Read, visible: &Visible<'_>) -> String {
    match read {
        Read::Get(k) => {
            let hi = [k.as_slice(), b"\x00"].concat();
            let found = visible(Some(k), Some(&hi));
            render_get(found.first().map(|(_, v)| v.as_slice()))
        }
        Read::Range { lo, hi, limit, reverse, keys_only, .. } => {
            let mut all = visible(lo.as_deref(), hi.as_deref());
            if *reverse {
                all.reverse();
            }
            let n = limit.unwrap_or(usize::MAX);
            render_entries(
                all.iter()
                    .take(n)
                    .map(|(k, v)| (k.as_slice(), (!keys_only).then_some(v.as_slice()))),
            )
        }
    }
}

/// Runs the script on the model; one answer per operation.
fn run_model(ops: &[Op]) -> Vec<String> {
    let mut h = History::<Vec<u8>>::default();
    let mut commits = 0u64;
    ops.iter()
        .map(|op| match op {
            Op::Txn { writes, reads, commit, .. } => {
                let mut answers = Vec::new();
                if !reads.is_empty() {
                    // The transaction sees the committed state with its own writes on top.
                    let mut mine = h.clone();
                    mine.apply(writes, u64::MAX);
                    for r in reads {
                        answers.push(model_read(r, &|lo, hi| mine.view(None, lo, hi)));
                    }
                }
                if *commit && !writes.is_empty() {
                    commits += 1;
                    h.apply(writes, commit_ts(commits));
                }
                format!("ok {}", answers.join(" | "))
            }
            Op::Read(r) => model_read(r, &|lo, hi| h.view(None, lo, hi)),
            Op::ReadAt(r, ts) => model_read(r, &|lo, hi| h.view(Some(*ts), lo, hi)),
            Op::ScanVersions { lo, hi, limit } => {
                let all = h.expected_scan(lo, hi);
                render_versions(
                    all.iter()
                        .take(limit.unwrap_or(usize::MAX))
                        .map(|(k, v, ts, t)| (k.as_slice(), v.as_slice(), *ts, *t)),
                )
            }
            Op::Flush | Op::Compact | Op::VlogGc | Op::Reopen => "ok".to_string(),
        })
        .collect()
}

fn render_versions<'a>(entries: impl Iterator<Item = (&'a [u8], &'a [u8], u64, bool)>) -> String {
    let mut out = String::from("[");
    for (i, (k, v, ts, tombstone)) in entries.enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if tombstone {
            write!(out, "{}@{ts}=deleted", show(k)).unwrap();
        } else {
            write!(out, "{}@{ts}={}", show(k), render_value(v)).unwrap();
        }
    }
    out.push(']');
    out
}

// ---------------------------------------------------------------------------------------------
// The engine.

fn engine_read(txn: &strata::Transaction, read: &Read, ts: Option<u64>) -> strata::Result<String> {
    match read {
        Read::Get(k) => {
            let v = match ts {
                None => txn.get(k)?,
                Some(ts) => txn.get_at_version(k, ts)?,
            };
            Ok(render_get(v.as_deref()))
        }
        Read::Range { lo, hi, limit, reverse, keys_only, by_ref } => {
            let opts = ReadOptions::new()
                .with_iterate_lower_bound(lo.clone())
                .with_iterate_upper_bound(hi.clone())
                .with_limit(*limit)
                .with_timestamp(ts);
            let mut got: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
            if *keys_only {
                let it = txn.keys_with_options(&opts)?;
                let it: Box<dyn Iterator<Item = _>> =
                    if *reverse { Box::new(it.rev()) } else { Box::new(it) };
                for k in it {
                    got.push((k?.to_vec(), None));
                }
            } else if *by_ref {
                let mut it = txn.range_with_options(&opts)?;
                while let Some(kv) = if *reverse { it.next_back_ref() } else { it.next_ref() } {
                    let (k, v) = kv?;
                    got.push((k.to_vec(), Some(v.to_vec())));
                }
            } else {
                let it = txn.range_with_options(&opts)?;
                let it: Box<dyn Iterator<Item = _>> =
                    if *reverse { Box::new(it.rev()) } else { Box::new(it) };
                for kv in it {
                    let (k, v) = kv?;
                    got.push((k.to_vec(), Some(v.to_vec())));
                }
            }
            Ok(render_entries(got.iter().map(|(k, v)| (k.as_slice(), v.as_deref()))))
        }
    }
}

/// Runs one configuration's tree through the script.
struct Runner {
    config: Config,
    versioning: bool,
    mem: MemFs,
    clock: Arc<ManualClock>,
    tree: Option<Tree>,
    commits: u64,
    /// Flushes, compactions and collected value log files of the opens before this one.
    earlier: (u64, u64, u64),
}

impl Runner {
    fn new(config: Config, versioning: bool) -> Self {
        let mem = MemFs::new();
        let clock = ManualClock::at(commit_ts(0));
        let tree = config.builder(&mem, &clock, versioning).build().unwrap_or_else(|e| {
            panic!("{}: does not open: {e:?}", config.name);
        });
        Runner { config, versioning, mem, clock, tree: Some(tree), commits: 0, earlier: (0, 0, 0) }
    }

    fn tree(&self) -> &Tree {
        self.tree.as_ref().unwrap()
    }

    /// Flushes, compactions and collected value log files since the runner began (the tree's
    /// statistics count from its open).
    fn maintenance_done(&self) -> (u64, u64, u64) {
        let s = self.tree().stats();
        let (f, c, g) = self.earlier;
        (f + s.flushes, c + s.compactions, g + s.vlog_gc_files)
    }

    fn apply(&mut self, op: &Op) -> String {
        self.try_apply(op).unwrap_or_else(|e| format!("error: {e:?}"))
    }

    fn try_apply(&mut self, op: &Op) -> strata::Result<String> {
        match op {
            Op::Txn { writes, reads, durability, commit } => {
                let mut txn = self.tree().begin()?;
                txn.set_durability(*durability);
                for w in writes {
                    w.run(&mut txn)?;
                }
                let mut answers = Vec::new();
                for r in reads {
                    answers.push(engine_read(&txn, r, None)?);
                }
                if *commit {
                    if !writes.is_empty() {
                        self.commits += 1;
                    }
                    self.clock.set(commit_ts(self.commits));
                    txn.commit_blocking()?;
                } else {
                    txn.rollback()?;
                }
                Ok(format!("ok {}", answers.join(" | ")))
            }
            Op::Read(r) => engine_read(&self.tree().begin_with_mode(Mode::ReadOnly)?, r, None),
            Op::ReadAt(r, ts) => {
                engine_read(&self.tree().begin_with_mode(Mode::ReadOnly)?, r, Some(*ts))
            }
            Op::ScanVersions { lo, hi, limit } => {
                let txn = self.tree().begin_with_mode(Mode::ReadOnly)?;
                let got = txn.scan_all_versions(lo, hi, *limit)?;
                Ok(render_versions(got.iter().map(|(k, v, ts, t)| (&k[..], &v[..], *ts, *t))))
            }
            Op::Flush => self.tree().flush().map(|()| "ok".to_string()),
            Op::Compact => self.tree().maintenance_step(usize::MAX).map(|_| "ok".to_string()),
            Op::VlogGc => self.tree().run_vlog_gc().map(|_| "ok".to_string()),
            Op::Reopen => {
                self.earlier = self.maintenance_done();
                let tree = self.tree.take().unwrap();
                tree.close()?;
                drop(tree);
                self.tree =
                    Some(self.config.builder(&self.mem, &self.clock, self.versioning).build()?);
                Ok("ok".to_string())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The comparison.

/// What one script's run across every configuration did.
#[derive(Debug, Default)]
struct Totals {
    ops: u64,
    reads: u64,
    flushes: u64,
    compactions: u64,
    gc_files: u64,
}

/// Runs script `seed` under every configuration and the model; panics with the first
/// differing operation.
fn differential(seed: u64, len: usize) -> Totals {
    let (versioning, ops) = script(seed, len);
    let want = run_model(&ops);
    let configs = configs();
    let mut answers: Vec<Vec<String>> = Vec::new();
    let mut totals = Totals::default();
    for config in &configs {
        let mut runner = Runner::new(config.clone(), versioning);
        let mut got = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let a = runner.apply(op);
            let differs = a != want[i];
            got.push(a);
            if differs {
                // Later operations build on a wrong state; the first difference is the finding.
                break;
            }
        }
        let (flushes, compactions, gc_files) = runner.maintenance_done();
        totals.flushes += flushes;
        totals.compactions += compactions;
        totals.gc_files += gc_files;
        drop(runner);
        answers.push(got);
    }
    let first =
        answers.iter().filter_map(|got| got.iter().zip(&want).position(|(g, w)| g != w)).min();
    if let Some(i) = first {
        let mut report = format!(
            "differential configurations: seed {seed} (replay with STRATA_SEED={seed}), versioning \
             {versioning}: operation {i} of {} answers differently\n  op: {}\n  model: {}\n",
            ops.len(),
            describe(&ops[i]),
            want[i]
        );
        for (config, got) in configs.iter().zip(&answers) {
            let a = got.get(i).map_or("(stopped earlier)", String::as_str);
            let mark = if a == want[i] { "same" } else { "DIFFERS" };
            writeln!(report, "  {} [{mark}]: {a}", config.name).unwrap();
        }
        panic!("{report}");
    }
    totals.ops = (ops.len() * configs.len()) as u64;
    totals.reads = ops
        .iter()
        .map(|op| match op {
            Op::Txn { reads, .. } => reads.len() as u64,
            Op::Read(_) | Op::ReadAt(..) | Op::ScanVersions { .. } => 1,
            _ => 0,
        })
        .sum::<u64>()
        * configs.len() as u64;
    totals
}

#[test]
fn every_configuration_answers_every_read_like_the_model() {
    let (scripts, len) = if is_soak() { (scaled(4), 4000) } else { (4, 2000) };
    let mut all = Totals::default();
    let mut versioned_scripts = 0;
    for seed in test_seeds("differential_configs", scripts) {
        let t = differential(seed, len);
        versioned_scripts += u64::from(script(seed, 0).0);
        eprintln!("seed {seed}: {t:?}");
        all.ops += t.ops;
        all.reads += t.reads;
        all.flushes += t.flushes;
        all.compactions += t.compactions;
        all.gc_files += t.gc_files;
    }
    eprintln!(
        "differential configurations: {} configurations, {versioned_scripts} versioned scripts, \
         {all:?}",
        configs().len()
    );
    // The configurations must really differ in layout: tables were written and merged.
    assert!(all.flushes > 0 && all.compactions > 0, "{all:?}");
}

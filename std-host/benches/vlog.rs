//! Large values with and without the value log (see `docs/performance.md`, "Value log").
//!
//! Run with `cargo bench -p strata --bench vlog`. Every tree lives in a temporary directory
//! (`TMPDIR` decides which disk) and is opened with `TreeBuilder::new().with_path(..)` and
//! default options (64 MiB memtable, 64 MiB block cache, lz4 on, background flush and
//! compaction threads); the `_vlog` variants add `with_enable_vlog(true)` and keep the default
//! threshold (4 KiB), so every value of both sizes goes to the value log. Writes use
//! `Durability::Eventual` and about 1 MiB of values per transaction (128 keys of 8 KiB, 16 of
//! 64 KiB).
//!
//! - Keys are 16 bytes: the key number as 16 zero-padded ASCII decimal digits
//!   (`0000000000000042`), as `db_bench` does, so byte order is numeric order.
//! - Values are 8 KiB or 64 KiB, each one whole piece of a 16 MiB pool made like `db_bench`'s:
//!   every piece is `len / 2` PRNG bytes followed by the same bytes again, so a value
//!   compresses to about half on its own and shares nothing with the other pieces. The `i`-th
//!   write of a load takes piece `i` (mod the piece count).
//! - A load is about 1 GiB of user data: 131,072 keys of 8 KiB or 16,384 keys of 64 KiB.
//! - `fillrandom_{8k,64k}[_vlog]` loads keys `0..N` in the order of a fixed-seed Fisher-Yates
//!   permutation (SplitMix64) into a fresh tree. One iteration is one whole load into a fresh
//!   directory; only the commits are timed (opening, settling, closing and deleting the
//!   directory are not, and neither is background work still pending when the last commit
//!   returns).
//! - `readrandom_{8k,64k}[_vlog]` uses one tree per variant, loaded in the `fillrandom` order
//!   and settled with `tree.maintenance_step(usize::MAX)`. One long-lived read-only transaction
//!   serves every read; an iteration is 1,000 gets of uniformly drawn loaded keys.
//!
//! Besides criterion's report, each benchmark prints to stderr, prefixed `[name]`: its own
//! throughput over all timed work (ops/s and MB/s of user data, key plus value per op), write
//! amplification from `tree.stats()` with its parts (WAL, value log, flush, compaction), time
//! writers stalled, the level shape, and the bytes on disk (sum of the directory's file
//! sizes, split into tables, WAL and value log).
//!
//! Under `cargo test` (criterion's quick pass, no `--bench` argument) a load is 2 MiB instead
//! of 1 GiB so the pass stays quick.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use strata::{Durability, Mode, Stats, Tree, TreeBuilder};
use tempfile::TempDir;

const KEY_LEN: usize = 16;
const SMALL_VALUE: usize = 8 * 1024;
const LARGE_VALUE: usize = 64 * 1024;
/// Bytes of values per transaction.
const BATCH_BYTES: usize = 1 << 20;
const READ_BATCH: u64 = 1_000;
const POOL_LEN: usize = 16 << 20;
const SEED: u64 = 0x5EED_0F15_3A11;

/// `true` under `cargo bench`; `false` in `cargo test`'s quick pass over the benchmarks.
fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// User data (values) per load: 1 GiB under `cargo bench`, 2 MiB under `cargo test`.
fn key_count(value_len: usize) -> u64 {
    let total: usize = if benchmarking() { 1 << 30 } else { 2 << 20 };
    (total / value_len) as u64
}

/// One configuration: a value size, with or without the value log.
#[derive(Clone, Copy)]
struct Config {
    value_len: usize,
    vlog: bool,
}

impl Config {
    const ALL: [Config; 4] = [
        Config { value_len: SMALL_VALUE, vlog: false },
        Config { value_len: SMALL_VALUE, vlog: true },
        Config { value_len: LARGE_VALUE, vlog: false },
        Config { value_len: LARGE_VALUE, vlog: true },
    ];

    /// `8k`, `64k_vlog`, ...
    fn suffix(&self) -> String {
        format!("{}k{}", self.value_len / 1024, if self.vlog { "_vlog" } else { "" })
    }

    /// User bytes per op: the key and the value.
    fn op_bytes(&self) -> usize {
        KEY_LEN + self.value_len
    }
}

/// Key `n`: 16 zero-padded ASCII decimal digits.
fn key(mut n: u64) -> [u8; KEY_LEN] {
    let mut k = [b'0'; KEY_LEN];
    for slot in k.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// SplitMix64: a small, fixed-seed PRNG so every run uses the same keys and values.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The value pool for `value_len`: pieces of `value_len / 2` PRNG bytes then the same again.
fn value_pool(value_len: usize) -> Vec<u8> {
    let mut rng = SplitMix64(SEED ^ 0xA11 ^ value_len as u64);
    let mut pool = Vec::with_capacity(POOL_LEN);
    let mut half = vec![0u8; value_len / 2];
    while pool.len() + value_len <= POOL_LEN {
        for chunk in half.chunks_mut(8) {
            let r = rng.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        pool.extend_from_slice(&half);
        pool.extend_from_slice(&half);
    }
    pool
}

/// The value of the `i`-th write: one whole piece of the pool.
fn value_at(pool: &[u8], value_len: usize, i: u64) -> &[u8] {
    let pieces = (pool.len() / value_len) as u64;
    let start = (i % pieces) as usize * value_len;
    &pool[start..start + value_len]
}

/// `0..n` in a fixed-seed Fisher-Yates order.
fn permutation(n: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n).collect();
    let mut rng = SplitMix64(SEED);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// Default options, plus the value log when the configuration asks for it.
fn open(dir: &Path, cfg: Config) -> Tree {
    TreeBuilder::new()
        .with_path(dir.to_path_buf())
        .with_enable_vlog(cfg.vlog)
        .build()
        .expect("open tree")
}

/// Writes every key number of `order`, `BATCH_BYTES` of values per Eventual transaction.
fn write_keys(tree: &Tree, pool: &[u8], cfg: Config, order: &[u64]) {
    let per_txn = (BATCH_BYTES / cfg.value_len).max(1);
    for (c, chunk) in order.chunks(per_txn).enumerate() {
        let mut txn = tree.begin().expect("begin");
        txn.set_durability(Durability::Eventual);
        for (j, &k) in chunk.iter().enumerate() {
            let i = (c * per_txn + j) as u64;
            txn.set(&key(k), value_at(pool, cfg.value_len, i)).expect("set");
        }
        txn.commit_blocking().expect("commit");
    }
}

/// Sum of the sizes of the files in `dir`, and the part of it in tables, the WAL and the value
/// log.
struct DiskUsage {
    total: u64,
    sst: u64,
    wal: u64,
    vlog: u64,
}

fn disk_usage(dir: &Path) -> DiskUsage {
    let mut usage = DiskUsage { total: 0, sst: 0, wal: 0, vlog: 0 };
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        // A background thread may delete a file between listing and `metadata`: skip it.
        let Ok(meta) = entry.and_then(|e| e.metadata().map(|m| (e, m))) else {
            continue;
        };
        let (entry, meta) = meta;
        if !meta.is_file() {
            continue;
        }
        let len = meta.len();
        usage.total += len;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".sst") {
            usage.sst += len;
        } else if name.ends_with(".wal") {
            usage.wal += len;
        } else if name.ends_with(".vlog") {
            usage.vlog += len;
        }
    }
    usage
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn disk_line(d: &DiskUsage) -> String {
    format!(
        "disk {:.1} MB (sst {:.1} MB, wal {:.1} MB, vlog {:.1} MB)",
        mb(d.total),
        mb(d.sst),
        mb(d.wal),
        mb(d.vlog)
    )
}

fn levels_line(s: &Stats) -> String {
    let parts: Vec<String> = s
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.files > 0)
        .map(|(i, l)| format!("L{i}:{}f/{:.1}MB", l.files, mb(l.bytes)))
        .collect();
    format!(
        "levels [{}] immutable_memtables={} vlog_files={}",
        parts.join(" "),
        s.immutable_memtables,
        s.vlog_files
    )
}

fn wa_line(s: &Stats) -> String {
    let user = s.user_bytes.max(1) as f64;
    format!(
        "write_amp {:.3} (wal {:.3} + vlog {:.3} + flush {:.3} + compaction {:.3}; user {:.1} MB, {} flushes, {} compactions) stall {:.1} ms",
        s.write_amplification(),
        s.wal_bytes as f64 / user,
        s.vlog_bytes as f64 / user,
        s.flush_bytes as f64 / user,
        s.compaction_write_bytes as f64 / user,
        mb(s.user_bytes),
        s.flushes,
        s.compactions,
        s.stall_ns as f64 / 1e6,
    )
}

/// What one benchmark measured over all its timed iterations (warm-up included).
struct Tally {
    name: String,
    op_bytes: usize,
    ops: u64,
    timed: Duration,
    per_iter: Vec<Duration>,
}

impl Tally {
    fn new(name: &str, op_bytes: usize) -> Self {
        Tally {
            name: name.to_string(),
            op_bytes,
            ops: 0,
            timed: Duration::ZERO,
            per_iter: Vec::new(),
        }
    }

    fn add(&mut self, ops: u64, d: Duration) {
        self.ops += ops;
        self.timed += d;
        self.per_iter.push(d);
    }

    fn report(&self) {
        if self.ops == 0 {
            return;
        }
        let secs = self.timed.as_secs_f64();
        let rate = self.ops as f64 / secs;
        let mut sorted = self.per_iter.clone();
        sorted.sort_unstable();
        let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
        eprintln!(
            "[{}] {} timed iterations, {} ops in {:.2} s: {:.0} ops/s, {:.1} MB/s of user data; per iteration min {:.3} s, median {:.3} s, max {:.3} s",
            self.name,
            self.per_iter.len(),
            self.ops,
            secs,
            rate,
            rate * self.op_bytes as f64 / 1e6,
            min.as_secs_f64(),
            sorted[sorted.len() / 2].as_secs_f64(),
            max.as_secs_f64(),
        );
    }
}

/// Settles `tree`: runs pending flushes and compactions on this thread until none is left
/// and no background job is in flight (the tables on disk are exactly the ones the levels
/// list). Gives up after two minutes.
fn settle(dir: &Path, tree: &Tree) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ran = tree.maintenance_step(usize::MAX).expect("maintenance");
        let listed: u64 = tree.stats().levels.iter().map(|l| l.bytes).sum();
        if ran == 0 && listed == disk_usage(dir).sst {
            return;
        }
        if Instant::now() > deadline {
            eprintln!(
                "(settle gave up after 120 s: tables listed {listed} B, on disk {} B)",
                disk_usage(dir).sst
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `fillrandom`: each iteration loads every key into a fresh tree.
fn fill(c: &mut Criterion, cfg: Config) {
    let name = format!("fillrandom_{}", cfg.suffix());
    let n = key_count(cfg.value_len);
    let order = permutation(n);
    let pool = value_pool(cfg.value_len);
    let mut tally = Tally::new(&name, cfg.op_bytes());
    let mut wa: Vec<f64> = Vec::new();
    let mut disk: Vec<u64> = Vec::new();
    let mut stall_ns: Vec<u64> = Vec::new();
    let mut first = true;

    let mut group = c.benchmark_group("vlog");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Bytes(n * cfg.op_bytes() as u64));
    group.bench_function(&name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("temporary directory");
                let tree = open(dir.path(), cfg);
                let started = Instant::now();
                write_keys(&tree, &pool, cfg, &order);
                let took = started.elapsed();
                total += took;
                tally.add(n, took);

                let at_last_commit = tree.stats();
                settle(dir.path(), &tree);
                let s = tree.stats();
                let usage = disk_usage(dir.path());
                wa.push(s.write_amplification());
                disk.push(usage.total);
                stall_ns.push(s.stall_ns);
                if first {
                    first = false;
                    eprintln!("[{name}] first load: {n} keys in {:.3} s", took.as_secs_f64());
                    eprintln!("[{name}]   at the last commit: {}", wa_line(&at_last_commit));
                    eprintln!("[{name}]   settled: {}", wa_line(&s));
                    eprintln!("[{name}]   settled: {}", levels_line(&s));
                    eprintln!("[{name}]   settled: {}", disk_line(&usage));
                    tree.close().expect("close");
                    eprintln!("[{name}]   closed:  {}", disk_line(&disk_usage(dir.path())));
                } else {
                    tree.close().expect("close");
                }
                drop(tree);
                drop(dir);
            }
            total
        });
    });
    group.finish();

    tally.report();
    if !wa.is_empty() {
        let range =
            |v: &[f64]| v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &w| (lo.min(w), hi.max(w)));
        let (lo, hi) = range(&wa);
        let disk_mb: Vec<f64> = disk.iter().map(|&d| mb(d)).collect();
        let (dlo, dhi) = range(&disk_mb);
        let stalled = stall_ns.iter().filter(|&&s| s > 0).count();
        let max_stall = stall_ns.iter().copied().max().unwrap_or(0);
        eprintln!(
            "[{name}] settled over {} loads: write_amp {lo:.3}..{hi:.3}, disk {dlo:.1}..{dhi:.1} MB; loads that stalled: {stalled}, longest stall {:.1} ms",
            wa.len(),
            max_stall as f64 / 1e6
        );
    }
}

fn fill_benches(c: &mut Criterion) {
    for cfg in Config::ALL {
        fill(c, cfg);
    }
}

/// A tree holding every key, loaded in the `fillrandom` order and settled, with a read-only
/// transaction over it.
fn loaded_tree(name: &str, pool: &[u8], cfg: Config) -> (Tree, TempDir) {
    let n = key_count(cfg.value_len);
    let dir = tempfile::tempdir().expect("temporary directory");
    let tree = open(dir.path(), cfg);
    let order = permutation(n);
    let started = Instant::now();
    write_keys(&tree, pool, cfg, &order);
    let took = started.elapsed();
    settle(dir.path(), &tree);
    let s = tree.stats();
    eprintln!("[{name}] setup: loaded {n} keys (random order) in {:.2} s", took.as_secs_f64());
    eprintln!("[{name}]   settled: {}", wa_line(&s));
    eprintln!("[{name}]   settled: {}", levels_line(&s));
    eprintln!("[{name}]   settled: {}", disk_line(&disk_usage(dir.path())));
    // Sanity: loaded keys are there with the value they were loaded with.
    let txn = tree.begin_with_mode(Mode::ReadOnly).expect("begin read-only");
    for (i, &k) in order.iter().enumerate().step_by(97) {
        let v = txn.get(&key(k)).expect("get").expect("loaded key present");
        assert_eq!(v.as_ref(), value_at(pool, cfg.value_len, i as u64), "value of key {k}");
    }
    drop(txn);
    (tree, dir)
}

/// `readrandom`: 1,000 gets of loaded keys per iteration.
fn read(c: &mut Criterion, cfg: Config) {
    let name = format!("readrandom_{}", cfg.suffix());
    let n = key_count(cfg.value_len);
    let pool = value_pool(cfg.value_len);
    let mut state: Option<(Tree, TempDir, strata::Transaction)> = None;
    let mut tally = Tally::new(&name, cfg.op_bytes());
    let mut counters: Option<(Stats, Stats)> = None;
    let mut rng = SplitMix64(SEED ^ 0x4EAD);

    let mut group = c.benchmark_group("vlog");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Auto)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(READ_BATCH * cfg.op_bytes() as u64));
    group.bench_function(&name, |b| {
        let (tree, _, txn) = state.get_or_insert_with(|| {
            let (tree, dir) = loaded_tree(&name, &pool, cfg);
            let txn = tree.begin_with_mode(Mode::ReadOnly).expect("begin read-only");
            (tree, dir, txn)
        });
        let before = tree.stats();
        b.iter_custom(|iters| {
            let started = Instant::now();
            let mut found = 0u64;
            for _ in 0..iters {
                for _ in 0..READ_BATCH {
                    found +=
                        u64::from(black_box(txn.get(&key(rng.below(n))).expect("get")).is_some());
                }
            }
            let took = started.elapsed();
            assert_eq!(found, iters * READ_BATCH, "every loaded key is found");
            tally.add(iters * READ_BATCH, took);
            took
        });
        let after = tree.stats();
        counters = Some(match counters.take() {
            None => (before, after),
            Some((first, _)) => (first, after),
        });
    });
    group.finish();

    tally.report();
    if let Some((before, after)) = counters {
        let hits = after.block_cache_hits - before.block_cache_hits;
        let misses = after.block_cache_misses - before.block_cache_misses;
        eprintln!(
            "[{name}] block cache: {hits} hits, {misses} misses ({:.1} % hits); {}",
            100.0 * hits as f64 / (hits + misses).max(1) as f64,
            levels_line(&after)
        );
    }
    if let Some((tree, dir, txn)) = state {
        drop(txn);
        tree.close().expect("close");
        drop(tree);
        drop(dir);
    }
}

fn read_benches(c: &mut Criterion) {
    for cfg in Config::ALL {
        read(c, cfg);
    }
}

criterion_group!(benches, fill_benches, read_benches);
criterion_main!(benches);

//! LSM workloads in the style of RocksDB's `db_bench` (see `docs/performance.md`).
//!
//! Run with `cargo bench -p strata --bench lsm`. Every tree lives in a temporary directory
//! (`TMPDIR` decides which disk) and is opened with `TreeBuilder::new().with_path(..)` and
//! default options (64 MiB memtable, 64 MiB block cache, lz4 on, background flush and
//! compaction threads). Writes use `Durability::Eventual` and 1,000 keys per transaction.
//!
//! - Keys are 16 bytes: the key number `0..1_000_000` as 16 zero-padded ASCII decimal digits
//!   (`0000000000000042`), as `db_bench` does, so byte order is numeric order.
//! - Values are 100 bytes taken from a 1 MiB pool made like `db_bench`'s: every 100-byte piece
//!   is 50 PRNG bytes followed by the same 50 bytes again, so a value compresses to about half
//!   on its own. The `i`-th write of a load takes piece `i` (mod 10,485), shifted per load.
//! - `fillseq` loads keys `0..N` in ascending order into a fresh tree; `fillrandom` loads the
//!   same keys in the order of a fixed-seed Fisher-Yates permutation (SplitMix64). One
//!   iteration is one whole load into a fresh directory; only the commits are timed (opening,
//!   settling, closing and deleting the directory are not, and neither is background work
//!   still pending when the last commit returns).
//! - `overwrite` loads a tree once (the `fillrandom` order), lets compaction settle, then each
//!   iteration overwrites N keys drawn uniformly *with replacement* (as `db_bench` does) and
//!   the tree is settled again outside the timed region.
//! - `fillrandom_4mib_memtable` and `overwrite_4mib_memtable` are the same with
//!   `with_max_memtable_size(4 MiB)`: with the default 64 MiB memtable 1M keys are only two
//!   flushes and no compaction, so these variants are the ones that exercise compaction.
//! - `readrandom` and `readseq` share one tree loaded in the `fillrandom` order and settled
//!   with `tree.maintenance_step(usize::MAX)`. One long-lived read-only transaction serves
//!   every read. `readrandom` does 1,000 gets of uniformly drawn loaded keys per iteration;
//!   `readseq` scans everything with `txn.range(b"", &[0xff; 17], None)`.
//!
//! Besides criterion's report, each benchmark prints to stderr, prefixed `[name]`: its own
//! throughput over all timed work (ops/s and MB/s of user data, 116 B per op), write
//! amplification from `tree.stats()` with its parts, time writers stalled, the level shape,
//! and the bytes on disk (sum of the directory's file sizes).
//!
//! Under `cargo test` (criterion's quick pass, no `--bench` argument) N is 20,000 instead of
//! 1,000,000 so the pass stays quick.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use strata::{Durability, Mode, Stats, Tree, TreeBuilder};
use tempfile::TempDir;

const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;
const BATCH: u64 = 1_000;
const READ_BATCH: u64 = 1_000;
const POOL_LEN: usize = 1 << 20;
const SEED: u64 = 0x5EED_0F15_3A11;

/// `true` under `cargo bench`; `false` in `cargo test`'s quick pass over the benchmarks.
fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

fn key_count() -> u64 {
    if benchmarking() { 1_000_000 } else { 20_000 }
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

/// The value pool: 100-byte pieces of 50 PRNG bytes then the same 50 again.
fn value_pool() -> Vec<u8> {
    let mut rng = SplitMix64(SEED ^ 0xA11);
    let mut pool = Vec::with_capacity(POOL_LEN);
    while pool.len() < POOL_LEN {
        let mut half = [0u8; VALUE_LEN / 2];
        for chunk in half.chunks_mut(8) {
            let r = rng.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        pool.extend_from_slice(&half);
        pool.extend_from_slice(&half);
    }
    pool.truncate(POOL_LEN);
    pool
}

/// The value of the `i`-th write: one whole 100-byte piece of the pool (so it compresses to
/// about half on its own and shares nothing with its neighbours); `salt` varies it between
/// loads.
fn value_at(pool: &[u8], i: u64, salt: u64) -> &[u8] {
    let pieces = (pool.len() / VALUE_LEN) as u64;
    let start = (i.wrapping_add(salt.wrapping_mul(7919)) % pieces) as usize * VALUE_LEN;
    &pool[start..start + VALUE_LEN]
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

/// Default options, except the memtable size when `memtable` is given.
fn open(dir: &Path, memtable: Option<usize>) -> Tree {
    let mut builder = TreeBuilder::new().with_path(dir.to_path_buf());
    if let Some(bytes) = memtable {
        builder = builder.with_max_memtable_size(bytes);
    }
    builder.build().expect("open tree")
}

/// The memtable size of the `*_4mib_memtable` variants: small enough that 1M keys go through
/// many flushes and compactions into deeper levels.
const SMALL_MEMTABLE: usize = 4 * 1024 * 1024;

/// Writes every key number `keys` yields, `BATCH` per Eventual transaction.
fn write_keys(tree: &Tree, pool: &[u8], keys: impl Iterator<Item = u64>, salt: u64) {
    let mut txn = tree.begin().expect("begin");
    txn.set_durability(Durability::Eventual);
    let mut in_txn = 0;
    for (i, k) in keys.enumerate() {
        txn.set(&key(k), value_at(pool, i as u64, salt)).expect("set");
        in_txn += 1;
        if in_txn == BATCH {
            txn.commit_blocking().expect("commit");
            txn = tree.begin().expect("begin");
            txn.set_durability(Durability::Eventual);
            in_txn = 0;
        }
    }
    txn.commit_blocking().expect("commit");
}

/// Sum of the sizes of the files in `dir`, and the part of it in tables and in the WAL.
struct DiskUsage {
    total: u64,
    sst: u64,
    wal: u64,
}

fn disk_usage(dir: &Path) -> DiskUsage {
    let mut usage = DiskUsage { total: 0, sst: 0, wal: 0 };
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
        }
    }
    usage
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn disk_line(d: &DiskUsage) -> String {
    format!("disk {:.1} MB (sst {:.1} MB, wal {:.1} MB)", mb(d.total), mb(d.sst), mb(d.wal))
}

fn levels_line(s: &Stats) -> String {
    let parts: Vec<String> = s
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.files > 0)
        .map(|(i, l)| format!("L{i}:{}f/{:.1}MB", l.files, mb(l.bytes)))
        .collect();
    format!("levels [{}] immutable_memtables={}", parts.join(" "), s.immutable_memtables)
}

/// The counters that moved between two snapshots.
fn delta(after: &Stats, before: &Stats) -> Stats {
    let mut d = after.clone();
    d.commits -= before.commits;
    d.wal_bytes -= before.wal_bytes;
    d.user_bytes -= before.user_bytes;
    d.flushes -= before.flushes;
    d.flush_bytes -= before.flush_bytes;
    d.compactions -= before.compactions;
    d.compaction_read_bytes -= before.compaction_read_bytes;
    d.compaction_write_bytes -= before.compaction_write_bytes;
    d.block_cache_hits -= before.block_cache_hits;
    d.block_cache_misses -= before.block_cache_misses;
    d.stall_ns -= before.stall_ns;
    d
}

fn wa_line(s: &Stats) -> String {
    let user = s.user_bytes.max(1) as f64;
    format!(
        "write_amp {:.2} (wal {:.2} + flush {:.2} + compaction {:.2}; user {:.1} MB, {} flushes, {} compactions) stall {:.1} ms",
        s.write_amplification(),
        s.wal_bytes as f64 / user,
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
    name: &'static str,
    ops: u64,
    timed: Duration,
    per_iter: Vec<Duration>,
}

impl Tally {
    fn new(name: &'static str) -> Self {
        Tally { name, ops: 0, timed: Duration::ZERO, per_iter: Vec::new() }
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
            rate * (KEY_LEN + VALUE_LEN) as f64 / 1e6,
            min.as_secs_f64(),
            sorted[sorted.len() / 2].as_secs_f64(),
            max.as_secs_f64(),
        );
    }
}

/// Settles `tree`: runs pending flushes and compactions on this thread until none is left
/// and no background job is in flight (the tables on disk are exactly the ones the levels
/// list, so no compaction is writing an output and no obsolete input is left). Gives up
/// after a minute.
fn settle(dir: &Path, tree: &Tree) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ran = tree.maintenance_step(usize::MAX).expect("maintenance");
        let listed: u64 = tree.stats().levels.iter().map(|l| l.bytes).sum();
        if ran == 0 && listed == disk_usage(dir).sst {
            return;
        }
        if Instant::now() > deadline {
            eprintln!(
                "(settle gave up after 60 s: tables listed {listed} B, on disk {} B)",
                disk_usage(dir).sst
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `fillseq` or `fillrandom`: each iteration loads every key into a fresh tree.
fn fill(
    c: &mut Criterion,
    name: &'static str,
    pool: &[u8],
    order: &[u64],
    memtable: Option<usize>,
) {
    let n = order.len() as u64;
    let mut tally = Tally::new(name);
    let mut wa: Vec<f64> = Vec::new();
    let mut stall_ns: Vec<u64> = Vec::new();
    let mut first = true;

    let mut group = c.benchmark_group("lsm");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(n));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().expect("temporary directory");
                let tree = open(dir.path(), memtable);
                let started = Instant::now();
                write_keys(&tree, pool, order.iter().copied(), 0);
                let took = started.elapsed();
                total += took;
                tally.add(n, took);

                let at_last_commit = tree.stats();
                settle(dir.path(), &tree);
                let s = tree.stats();
                wa.push(s.write_amplification());
                stall_ns.push(s.stall_ns);
                if first {
                    first = false;
                    eprintln!("[{name}] first load: {:.3} s", took.as_secs_f64());
                    eprintln!("[{name}]   at the last commit: {}", wa_line(&at_last_commit));
                    eprintln!("[{name}]   settled: {}", wa_line(&s));
                    eprintln!("[{name}]   settled: {}", levels_line(&s));
                    eprintln!("[{name}]   settled: {}", disk_line(&disk_usage(dir.path())));
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
        let (lo, hi) = wa.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &w| (lo.min(w), hi.max(w)));
        let stalled = stall_ns.iter().filter(|&&s| s > 0).count();
        let max_stall = stall_ns.iter().copied().max().unwrap_or(0);
        eprintln!(
            "[{name}] settled write_amp over {} loads: {lo:.2}..{hi:.2}; loads that stalled: {stalled}, longest stall {:.1} ms",
            wa.len(),
            max_stall as f64 / 1e6
        );
    }
}

fn fill_benches(c: &mut Criterion) {
    let n = key_count();
    let pool = value_pool();
    let ascending: Vec<u64> = (0..n).collect();
    let random = permutation(n);
    fill(c, "fillseq", &pool, &ascending, None);
    fill(c, "fillrandom", &pool, &random, None);
    fill(c, "fillrandom_4mib_memtable", &pool, &random, Some(SMALL_MEMTABLE));
}

/// A tree holding every key, loaded in the `fillrandom` order and settled.
fn loaded_tree(name: &str, pool: &[u8], memtable: Option<usize>) -> (Tree, TempDir) {
    let n = key_count();
    let dir = tempfile::tempdir().expect("temporary directory");
    let tree = open(dir.path(), memtable);
    let started = Instant::now();
    write_keys(&tree, pool, permutation(n).into_iter(), 0);
    let took = started.elapsed();
    settle(dir.path(), &tree);
    let s = tree.stats();
    eprintln!("[{name}] setup: loaded {n} keys (random order) in {:.2} s", took.as_secs_f64());
    eprintln!("[{name}]   settled: {}", wa_line(&s));
    eprintln!("[{name}]   settled: {}", levels_line(&s));
    eprintln!("[{name}]   settled: {}", disk_line(&disk_usage(dir.path())));
    (tree, dir)
}

fn overwrite_benches(c: &mut Criterion) {
    overwrite(c, "overwrite", None);
    overwrite(c, "overwrite_4mib_memtable", Some(SMALL_MEMTABLE));
}

fn overwrite(c: &mut Criterion, name: &'static str, memtable: Option<usize>) {
    let n = key_count();
    let pool = value_pool();
    let mut state: Option<(Tree, TempDir, Stats)> = None;
    let mut tally = Tally::new(name);
    let mut rng = SplitMix64(SEED ^ 0x0E7);
    let mut salt = 0;

    let mut group = c.benchmark_group("lsm");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(n));
    group.bench_function(name, |b| {
        let (tree, dir, _) = state.get_or_insert_with(|| {
            let (tree, dir) = loaded_tree(name, &pool, memtable);
            let before = tree.stats();
            (tree, dir, before)
        });
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                salt += 1;
                let keys = (0..n).map(|_| rng.below(n)).collect::<Vec<u64>>();
                let before = tree.stats();
                let started = Instant::now();
                write_keys(tree, &pool, keys.into_iter(), salt);
                let took = started.elapsed();
                total += took;
                tally.add(n, took);
                settle(dir.path(), tree);
                let d = delta(&tree.stats(), &before);
                eprintln!(
                    "[{name}] {:.3} s, settled: {}; {}",
                    took.as_secs_f64(),
                    wa_line(&d),
                    disk_line(&disk_usage(dir.path()))
                );
            }
            total
        });
    });
    group.finish();

    tally.report();
    if let Some((tree, dir, before)) = state {
        settle(dir.path(), &tree);
        let s = tree.stats();
        eprintln!("[{name}] all overwrites, settled: {}", wa_line(&delta(&s, &before)));
        eprintln!("[{name}] after: {}", levels_line(&s));
        eprintln!("[{name}] after: {}", disk_line(&disk_usage(dir.path())));
        tree.close().expect("close");
        eprintln!("[{name}] closed: {}", disk_line(&disk_usage(dir.path())));
        drop(tree);
        drop(dir);
    }
}

/// The tree both read benchmarks use, with the long-lived read-only transaction they share.
struct ReadState {
    tree: Tree,
    dir: TempDir,
    txn: strata::Transaction,
}

fn read_state(pool: &[u8]) -> ReadState {
    let n = key_count();
    let (tree, dir) = loaded_tree("read", pool, None);
    let txn = tree.begin_with_mode(Mode::ReadOnly).expect("begin read-only");
    // Sanity: loaded keys are there with the value they were loaded with.
    let order = permutation(n);
    for (i, &k) in order.iter().enumerate().step_by(997) {
        let v = txn.get(&key(k)).expect("get").expect("loaded key present");
        assert_eq!(v.as_ref(), value_at(pool, i as u64, 0), "value of key {k}");
    }
    ReadState { tree, dir, txn }
}

fn read_benches(c: &mut Criterion) {
    let n = key_count();
    let pool = value_pool();
    let mut state: Option<ReadState> = None;

    let mut group = c.benchmark_group("lsm");

    // readrandom: 1,000 gets of loaded keys per iteration.
    let mut tally = Tally::new("readrandom");
    let mut counters: Option<(Stats, Stats)> = None;
    let mut rng = SplitMix64(SEED ^ 0x4EAD);
    group
        .sample_size(20)
        .sampling_mode(SamplingMode::Auto)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8))
        .throughput(Throughput::Elements(READ_BATCH));
    group.bench_function("readrandom", |b| {
        let st = state.get_or_insert_with(|| read_state(&pool));
        let before = st.tree.stats();
        let txn = &st.txn;
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
        let after = st.tree.stats();
        counters = Some(match counters.take() {
            None => (before, after),
            Some((first, _)) => (first, after),
        });
    });
    tally.report();
    if let Some((before, after)) = counters {
        let d = delta(&after, &before);
        let lookups = d.block_cache_hits + d.block_cache_misses;
        eprintln!(
            "[readrandom] block cache: {} hits, {} misses ({:.1} % hits); {}",
            d.block_cache_hits,
            d.block_cache_misses,
            100.0 * d.block_cache_hits as f64 / lookups.max(1) as f64,
            levels_line(&after)
        );
    }

    // readseq: a full forward scan per iteration.
    let mut tally = Tally::new("readseq");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(n));
    group.bench_function("readseq", |b| {
        let st = state.get_or_insert_with(|| read_state(&pool));
        let txn = &st.txn;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let mut count = 0u64;
                let mut bytes = 0usize;
                for item in txn.range(b"", &[0xff; 17], None).expect("range") {
                    let (k, v) = item.expect("scan");
                    count += 1;
                    bytes += k.len() + v.len();
                }
                black_box(bytes);
                let took = started.elapsed();
                assert_eq!(count, n, "the scan sees every key");
                total += took;
                tally.add(n, took);
            }
            total
        });
    });
    group.finish();
    tally.report();

    if let Some(ReadState { tree, dir, txn }) = state {
        drop(txn);
        tree.close().expect("close");
        drop(tree);
        drop(dir);
    }
}

criterion_group!(benches, fill_benches, overwrite_benches, read_benches);
criterion_main!(benches);

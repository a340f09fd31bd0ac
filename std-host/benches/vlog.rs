//! Large values with and without the value log (see `docs/performance.md`, "Value log").
//!
//! Run with `cargo bench -p strata --bench vlog`. Every tree lives in a temporary directory
//! (`TMPDIR` decides which disk) and is opened with `TreeBuilder::new().with_path(..)` and
//! default options (64 MiB memtable, the default block cache, lz4 on, background flush and
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

mod support;

use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use strata::{Durability, Mode, Stats, Tree, TreeBuilder};
use support::{
    Fills, KEY_LEN, SplitMix64, Style, Tally, benchmarking, key, permutation, random_gets, track,
    value_at,
};
use tempfile::TempDir;

const SMALL_VALUE: usize = 8 * 1024;
const LARGE_VALUE: usize = 64 * 1024;
/// Bytes of values per transaction.
const BATCH_BYTES: usize = 1 << 20;
const READ_BATCH: u64 = 1_000;
const POOL_LEN: usize = 16 << 20;
const SEED: u64 = 0x5EED_0F15_3A11;
/// Settling gives up after two minutes; the summary lines have the value log's parts and
/// write amplification to three decimals.
const STYLE: Style = Style { vlog: true, wa_decimals: 3, settle_limit: Duration::from_secs(120) };

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

/// The value pool for `value_len`: pieces of `value_len / 2` PRNG bytes then the same again.
fn value_pool(value_len: usize) -> Vec<u8> {
    support::value_pool(SEED ^ 0xA11 ^ value_len as u64, value_len, POOL_LEN)
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

/// `fillrandom`: each iteration loads every key into a fresh tree.
fn fill(c: &mut Criterion, cfg: Config) {
    let name = format!("fillrandom_{}", cfg.suffix());
    let n = key_count(cfg.value_len);
    let order = permutation(n, SEED);
    let pool = value_pool(cfg.value_len);
    let mut fills = Fills::new(&name, n, cfg.op_bytes(), STYLE);

    let mut group = c.benchmark_group("vlog");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Bytes(n * cfg.op_bytes() as u64));
    group.bench_function(&name, |b| {
        b.iter_custom(|iters| {
            fills.run(iters, |dir| open(dir, cfg), |tree| write_keys(tree, &pool, cfg, &order))
        });
    });
    group.finish();
    fills.report();
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
    let order = permutation(n, SEED);
    let (tree, dir) = STYLE.loaded_tree(
        name,
        n,
        |dir| open(dir, cfg),
        |tree| write_keys(tree, pool, cfg, &order),
    );
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
        b.iter_custom(|iters| random_gets(txn, &mut rng, n, READ_BATCH, iters, &mut tally));
        track(&mut counters, before, tree.stats());
    });
    group.finish();

    tally.report();
    if let Some((before, after)) = counters {
        STYLE.print_block_cache(&name, &before, &after);
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

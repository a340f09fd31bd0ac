//! LSM workloads in the style of RocksDB's `db_bench` (see `docs/performance.md`).
//!
//! Run with `cargo bench -p strata --bench lsm`. Every tree lives in a temporary directory
//! (`TMPDIR` decides which disk) and is opened with `TreeBuilder::new().with_path(..)` and
//! default options (64 MiB memtable, the default block cache, lz4 on, background flush and
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

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use strata::{Durability, Mode, Stats, Tree, TreeBuilder};
use support::{
    Fills, KEY_LEN, SplitMix64, Style, Tally, benchmarking, delta, disk_usage, key, random_gets,
    track,
};
use tempfile::TempDir;

const VALUE_LEN: usize = 100;
const BATCH: u64 = 1_000;
const READ_BATCH: u64 = 1_000;
const POOL_LEN: usize = 1 << 20;
const SEED: u64 = 0x5EED_0F15_3A11;
/// Settling gives up after a minute; the summary lines have no value log parts and write
/// amplification to two decimals.
const STYLE: Style = Style { vlog: false, wa_decimals: 2, settle_limit: Duration::from_secs(60) };

fn key_count() -> u64 {
    if benchmarking() { 1_000_000 } else { 20_000 }
}

/// The value pool: 100-byte pieces of 50 PRNG bytes then the same 50 again.
fn value_pool() -> Vec<u8> {
    support::value_pool(SEED ^ 0xA11, VALUE_LEN, POOL_LEN)
}

/// The value of the `i`-th write: one whole 100-byte piece of the pool (so it compresses to
/// about half on its own and shares nothing with its neighbours); `salt` varies it between
/// loads.
fn value_at(pool: &[u8], i: u64, salt: u64) -> &[u8] {
    support::value_at(pool, VALUE_LEN, i.wrapping_add(salt.wrapping_mul(7919)))
}

/// `0..n` in a fixed-seed Fisher-Yates order.
fn permutation(n: u64) -> Vec<u64> {
    support::permutation(n, SEED)
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

/// `fillseq` or `fillrandom`: each iteration loads every key into a fresh tree.
fn fill(
    c: &mut Criterion,
    name: &'static str,
    pool: &[u8],
    order: &[u64],
    memtable: Option<usize>,
) {
    let n = order.len() as u64;
    let mut fills = Fills::new(name, n, KEY_LEN + VALUE_LEN, STYLE);

    let mut group = c.benchmark_group("lsm");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(n));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            fills.run(
                iters,
                |dir| open(dir, memtable),
                |tree| write_keys(tree, pool, order.iter().copied(), 0),
            )
        });
    });
    group.finish();
    fills.report();
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
    STYLE.loaded_tree(
        name,
        n,
        |dir| open(dir, memtable),
        |tree| write_keys(tree, pool, permutation(n).into_iter(), 0),
    )
}

fn overwrite_benches(c: &mut Criterion) {
    overwrite(c, "overwrite", None);
    overwrite(c, "overwrite_4mib_memtable", Some(SMALL_MEMTABLE));
}

fn overwrite(c: &mut Criterion, name: &'static str, memtable: Option<usize>) {
    let n = key_count();
    let pool = value_pool();
    let mut state: Option<(Tree, TempDir, Stats)> = None;
    let mut tally = Tally::new(name, KEY_LEN + VALUE_LEN);
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
                STYLE.settle(dir.path(), tree);
                let d = delta(&tree.stats(), &before);
                eprintln!(
                    "[{name}] {:.3} s, settled: {}; {}",
                    took.as_secs_f64(),
                    STYLE.wa(&d),
                    STYLE.disk(&disk_usage(dir.path()))
                );
            }
            total
        });
    });
    group.finish();

    tally.report();
    if let Some((tree, dir, before)) = state {
        STYLE.settle(dir.path(), &tree);
        let s = tree.stats();
        eprintln!("[{name}] all overwrites, settled: {}", STYLE.wa(&delta(&s, &before)));
        eprintln!("[{name}] after: {}", STYLE.levels(&s));
        eprintln!("[{name}] after: {}", STYLE.disk(&disk_usage(dir.path())));
        tree.close().expect("close");
        eprintln!("[{name}] closed: {}", STYLE.disk(&disk_usage(dir.path())));
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
    let mut tally = Tally::new("readrandom", KEY_LEN + VALUE_LEN);
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
        b.iter_custom(|iters| random_gets(txn, &mut rng, n, READ_BATCH, iters, &mut tally));
        track(&mut counters, before, st.tree.stats());
    });
    tally.report();
    if let Some((before, after)) = counters {
        STYLE.print_block_cache("readrandom", &before, &after);
    }

    // readseq: a full forward scan per iteration.
    let mut tally = Tally::new("readseq", KEY_LEN + VALUE_LEN);
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
                std::hint::black_box(bytes);
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

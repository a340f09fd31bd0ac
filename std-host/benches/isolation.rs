//! The cost of serializable isolation against snapshot isolation (see `docs/performance.md`).
//!
//! Run with `cargo bench -p strata --bench isolation`. 100,000 keys (16 B keys, 100 B
//! values) are loaded into a tree on the real filesystem with default options, then each
//! level runs two transaction shapes with no conflicts (every thread reads and writes its own
//! slice of the key space):
//!
//! - `rmw_10r_2w`: 10 point reads and 2 writes of random keys, then commit.
//! - `scan100_1w`: a 100-key range scan and 1 write, then commit.
//!
//! Every benchmark starts from a freshly loaded tree, so none runs on a memtable an earlier
//! one grew. Each runs on 1 thread and on 8 threads at once. A sample's time is for one transaction per
//! thread: on 8 threads, criterion's throughput line (8 elements per iteration) gives
//! transactions per second, and time / 8 the time per transaction. Commits are Eventual (no
//! fsync), so the figures measure the engine, not the disk.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use strata::{Isolation, Tree, TreeBuilder};
use support::{SplitMix64, key};
use tempfile::TempDir;

const KEYS: u64 = 100_000;
const LOAD_BATCH: u64 = 1_000;
const VALUE: [u8; 100] = [0x5A; 100];
const THREADS: u64 = 8;
const SCAN: u64 = 100;

fn load() -> (Tree, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let tree = TreeBuilder::new().with_path(dir.path().to_path_buf()).build().expect("open");
    for chunk in 0..KEYS / LOAD_BATCH {
        let mut txn = tree.begin().expect("begin");
        for i in chunk * LOAD_BATCH..(chunk + 1) * LOAD_BATCH {
            txn.set(&key(i), &VALUE).expect("set");
        }
        txn.commit_blocking().expect("commit");
    }
    (tree, dir)
}

/// One read-modify-write transaction inside keys `base..base + span`.
fn rmw(tree: &Tree, isolation: Isolation, rng: &mut SplitMix64, base: u64, span: u64) {
    let mut txn = tree.begin().expect("begin");
    txn.set_isolation(isolation).expect("isolation");
    for _ in 0..10 {
        black_box(txn.get(&key(base + rng.below(span))).expect("get"));
    }
    for _ in 0..2 {
        txn.set(&key(base + rng.below(span)), &VALUE).expect("set");
    }
    txn.commit_blocking().expect("no conflicts: each thread has its own keys");
}

/// One 100-key scan plus one write inside keys `base..base + span`.
fn scan(tree: &Tree, isolation: Isolation, rng: &mut SplitMix64, base: u64, span: u64) {
    let mut txn = tree.begin().expect("begin");
    txn.set_isolation(isolation).expect("isolation");
    let start = base + rng.below(span - SCAN);
    let n = txn.range(&key(start), &key(start + SCAN), None).expect("range").count();
    assert_eq!(n, SCAN as usize);
    txn.set(&key(base + rng.below(span)), &VALUE).expect("set");
    txn.commit_blocking().expect("no conflicts: each thread has its own keys");
}

type Shape = fn(&Tree, Isolation, &mut SplitMix64, u64, u64);

/// Runs `iters` transactions on each of `threads` threads and returns the wall time.
fn run_threads(
    tree: &Tree,
    shape: Shape,
    isolation: Isolation,
    threads: u64,
    iters: u64,
) -> Duration {
    let span = KEYS / threads;
    std::thread::scope(|s| {
        let start = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut rng = SplitMix64(0x1507 ^ t ^ iters);
                    for _ in 0..iters {
                        shape(tree, isolation, &mut rng, t * span, span);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        start.elapsed()
    })
}

fn isolation_benches(c: &mut Criterion) {
    let shapes: [(&str, Shape); 2] = [("rmw_10r_2w", rmw), ("scan100_1w", scan)];
    let levels = [("snapshot", Isolation::Snapshot), ("serializable", Isolation::Serializable)];
    for threads in [1, THREADS] {
        let mut group = c.benchmark_group(format!("isolation_{threads}t"));
        group
            .sample_size(15)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        group.throughput(Throughput::Elements(threads));
        for (shape_name, shape) in shapes {
            for (level_name, level) in levels {
                // A fresh tree each, so no benchmark runs on a memtable the previous one grew.
                let (tree, dir) = load();
                group.bench_function(format!("{shape_name}/{level_name}"), |b| {
                    b.iter_custom(|iters| run_threads(&tree, shape, level, threads, iters));
                });
                let stats = tree.stats();
                assert_eq!(stats.conflicts, 0, "the benchmark measures conflict-free transactions");
                drop(tree);
                drop(dir);
            }
        }
        group.finish();
    }
}

/// `STRATA_ISOLATION_COUNT=<shape>,<level>,<threads>,<transactions>` runs that many
/// transactions of one configuration on a fresh tree and exits, without criterion: run it
/// under `perf stat -e instructions:u` to compare levels by instruction counts, which a busy
/// machine does not disturb the way it disturbs wall time (see `docs/performance.md`).
fn count_mode() -> bool {
    let Ok(spec) = std::env::var("STRATA_ISOLATION_COUNT") else { return false };
    let parts: Vec<&str> = spec.split(',').collect();
    let [shape, level, threads, txns] = parts.as_slice() else {
        panic!("STRATA_ISOLATION_COUNT=<rmw|scan>,<snapshot|serializable>,<threads>,<txns>")
    };
    let shape: Shape = if *shape == "scan" { scan } else { rmw };
    let level =
        if *level == "serializable" { Isolation::Serializable } else { Isolation::Snapshot };
    let threads: u64 = threads.parse().expect("threads");
    let txns: u64 = txns.parse().expect("transactions");
    let (tree, _dir) = load();
    let elapsed = run_threads(&tree, shape, level, threads, txns / threads);
    eprintln!("{spec}: {:.2?} per transaction (wall)", elapsed / (txns / threads) as u32);
    true
}

criterion_group!(benches, isolation_benches);

fn main() {
    if count_mode() {
        return;
    }
    benches();
    criterion::Criterion::default().configure_from_args().final_summary();
}

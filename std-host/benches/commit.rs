//! Commit-path benchmarks on the real filesystem (see `docs/performance.md`).
//!
//! Run with `cargo bench -p strata --bench commit`. Every tree lives in a fresh temporary
//! directory (`TMPDIR` decides which disk), opened with `TreeBuilder::new().with_path(..)` and
//! default options. Keys are 16 bytes and values 100 bytes.
//!
//! Besides criterion's report, each benchmark prints a summary line to stderr: the engine's
//! counters (`commits`, `commit_groups`, `wal_syncs`) summed over every tree it used, its own
//! throughput over all timed work (warm-up included), and per-operation latency percentiles.
//! `immediate_64_committers` also prints its ratio to `immediate_1_committer` when both ran.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use strata::{Durability, Tree, TreeBuilder};
use tempfile::TempDir;

const VALUE: [u8; 100] = [0xA5; 100];

/// Entries written to one tree before the benchmark swaps in a fresh one, outside the timed
/// region. 200,000 entries stay under the default 64 MiB memtable and inside one 64 MiB WAL
/// segment, so no memtable flush, compaction, write stall or segment rotation (and its extra
/// sync) happens during a measurement: these figures are the commit path alone. (The
/// foundation engine the first figures were taken on did not flush at all, so this also kept
/// its memory bounded.)
const ENTRIES_PER_TREE: u64 = 200_000;

/// Concurrent committers in `immediate_64_committers`, and the commits each does per
/// iteration.
const COMMITTERS: u64 = 64;
const COMMITS_PER_COMMITTER: u64 = 50;

/// Writes done by raw `fdatasync` probe before criterion measures it.
const RAW_SYNC_PROBE: usize = 200;

/// Back-to-back pairs (one phase of each) measured for the 64-vs-1 ratio, and the commits
/// the single committer does in its phase (the 64 committers do one iteration, 64 x 50).
const RATIO_PAIRS: usize = 7;
const RATIO_SINGLE_COMMITS: u64 = 200;

/// Aggregate commits/s measured by `immediate_1_committer`, for the ratio printed by
/// `immediate_64_committers`.
static IMMEDIATE_1_RATE: Mutex<Option<f64>> = Mutex::new(None);

/// `true` under `cargo bench`; `false` in `cargo test`'s quick pass over the benchmarks,
/// which skips the extra probes.
fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// A 16-byte key: the writer's number, then a counter, both big-endian.
fn key(writer: u64, n: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&writer.to_be_bytes());
    k[8..].copy_from_slice(&n.to_be_bytes());
    k
}

fn commit_one(tree: &Tree, key: &[u8], durability: Durability) {
    let mut txn = tree.begin().expect("begin");
    txn.set_durability(durability);
    txn.set(key, &VALUE).expect("set");
    txn.commit_blocking().expect("commit");
}

/// Latencies of individual operations, in nanoseconds.
#[derive(Default)]
struct Latencies(Vec<u64>);

impl Latencies {
    fn push(&mut self, d: Duration) {
        self.0.push(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    fn summary(&mut self) -> String {
        if self.0.is_empty() {
            return "no samples".into();
        }
        self.0.sort_unstable();
        let at = |q: f64| {
            let last = self.0.len() - 1;
            let i = ((last as f64) * q).round() as usize;
            fmt_ns(self.0.get(i.min(last)).copied().unwrap_or(0))
        };
        format!(
            "n={} min={} p50={} p90={} p99={} max={}",
            self.0.len(),
            at(0.0),
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        )
    }
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.2}ms", ns as f64 / 1e6)
    } else {
        format!("{:.1}us", ns as f64 / 1e3)
    }
}

/// A tree in a temporary directory, replaced by a fresh one every [`ENTRIES_PER_TREE`]
/// entries, plus what the benchmark measured on it.
struct Bench {
    name: &'static str,
    tree: Option<(Tree, TempDir)>,
    written: u64,
    next_key: u64,
    commits: u64,
    groups: u64,
    syncs: u64,
    wal_bytes: u64,
    timed: Duration,
    timed_commits: u64,
    latencies: Latencies,
}

impl Bench {
    fn new(name: &'static str) -> Self {
        Bench {
            name,
            tree: Some(open_tree()),
            written: 0,
            next_key: 0,
            commits: 0,
            groups: 0,
            syncs: 0,
            wal_bytes: 0,
            timed: Duration::ZERO,
            timed_commits: 0,
            latencies: Latencies::default(),
        }
    }

    fn tree(&self) -> &Tree {
        &self.tree.as_ref().expect("tree is open").0
    }

    /// Closes the current tree (adding up its counters) and removes its directory.
    fn close(&mut self) {
        if let Some((tree, dir)) = self.tree.take() {
            let s = tree.stats();
            self.commits += s.commits;
            self.groups += s.commit_groups;
            self.syncs += s.wal_syncs;
            self.wal_bytes += s.wal_bytes;
            tree.close().expect("close");
            drop(tree);
            drop(dir);
        }
    }

    /// Makes room for `entries` more entries, swapping in a fresh tree if needed.
    fn make_room(&mut self, entries: u64) {
        if self.written + entries > ENTRIES_PER_TREE {
            self.close();
            self.tree = Some(open_tree());
            self.written = 0;
        }
    }

    /// Times `iters` sequential calls of `op`, each committing `commits` transactions that
    /// write `entries` entries in all. `op` gets the tree and the first unused key number.
    /// Tree swaps happen between calls, outside the timed region.
    fn run_sequential(
        &mut self,
        iters: u64,
        commits: u64,
        entries: u64,
        mut op: impl FnMut(&Tree, u64),
    ) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            self.make_room(entries);
            let first = self.next_key;
            let tree = self.tree();
            let start = Instant::now();
            op(tree, first);
            let took = start.elapsed();
            total += took;
            self.latencies.push(took);
            self.next_key += entries;
            self.written += entries;
        }
        self.timed += total;
        self.timed_commits += iters * commits;
        total
    }

    /// Commits/s over everything timed so far.
    fn rate(&self) -> f64 {
        self.timed_commits as f64 / self.timed.as_secs_f64().max(1e-9)
    }

    /// Closes the tree and prints the summary line; returns the measured commits/s, or `None`
    /// if the benchmark was filtered out and never ran.
    fn finish(mut self) -> Option<f64> {
        self.close();
        if self.timed_commits == 0 {
            return None;
        }
        let rate = self.rate();
        let per = |n: u64| n as f64 / (self.commits.max(1)) as f64;
        eprintln!(
            "[{}] commits={} commit_groups={} wal_syncs={} wal_bytes={} | syncs/commit={:.4} \
             commits/group={:.2} | {:.0} commits/s over {} timed commits | per-iteration \
             latency: {}",
            self.name,
            self.commits,
            self.groups,
            self.syncs,
            self.wal_bytes,
            per(self.syncs),
            self.commits as f64 / (self.groups.max(1)) as f64,
            rate,
            self.timed_commits,
            self.latencies.summary(),
        );
        Some(rate)
    }
}

fn open_tree() -> (Tree, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let tree = TreeBuilder::new().with_path(dir.path().to_path_buf()).build().expect("open tree");
    (tree, dir)
}

fn commit_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");

    // 1. One 16 B key + 100 B value per transaction, acknowledged once the WAL write reached
    //    the OS.
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let mut bench = Bench::new("eventual_single_key_commit");
    group.bench_function("eventual_single_key_commit", |b| {
        b.iter_custom(|iters| {
            bench.run_sequential(iters, 1, 1, |tree, n| {
                commit_one(tree, &key(0, n), Durability::Eventual);
            })
        });
    });
    bench.finish();

    // 2. 1000 keys per transaction; the transaction's `set` calls are inside the timed region.
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1000));
    let mut bench = Bench::new("eventual_batch_1000");
    group.bench_function("eventual_batch_1000", |b| {
        b.iter_custom(|iters| {
            bench.run_sequential(iters, 1, 1000, |tree, first| {
                let mut txn = tree.begin().expect("begin");
                for n in first..first + 1000 {
                    txn.set(&key(0, n), &VALUE).expect("set");
                }
                txn.commit_blocking().expect("commit");
            })
        });
    });
    bench.finish();

    // 3. Immediate durability, one committer: every commit waits for its own fdatasync.
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let mut bench = Bench::new("immediate_1_committer");
    group.bench_function("immediate_1_committer", |b| {
        b.iter_custom(|iters| {
            bench.run_sequential(iters, 1, 1, |tree, n| {
                commit_one(tree, &key(0, n), Durability::Immediate);
            })
        });
    });
    if let Some(rate) = bench.finish() {
        *IMMEDIATE_1_RATE.lock().expect("rate lock") = Some(rate);
    }

    // 4. Immediate durability, 64 std threads committing concurrently with `commit_blocking`.
    //    One iteration is 64 x 50 commits; its time runs from the first committer's start to
    //    the last committer's finish (thread start-up is not timed).
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(COMMITTERS * COMMITS_PER_COMMITTER));
    let mut bench = Bench::new("immediate_64_committers");
    let mut commit_latencies = Latencies::default();
    group.bench_function("immediate_64_committers", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (took, lats) = run_concurrent(&mut bench);
                total += took;
                for l in lats {
                    commit_latencies.push(l);
                }
            }
            bench.timed += total;
            bench.timed_commits += iters * COMMITTERS * COMMITS_PER_COMMITTER;
            total
        });
    });
    if let Some(rate) = bench.finish() {
        eprintln!("[immediate_64_committers] per-commit latency: {}", commit_latencies.summary());
        if let Some(single) = *IMMEDIATE_1_RATE.lock().expect("rate lock") {
            eprintln!(
                "[immediate_64_committers] {:.0} vs {:.0} commits/s: {:.1}x the single committer \
                 (measured seconds to minutes apart; see the paired ratio below)",
                rate,
                single,
                rate / single
            );
        }
        if benchmarking() {
            paired_ratio();
        }
    }

    group.finish();
}

/// The 64-vs-1 Immediate ratio measured in alternating, back-to-back phases, so both sides of
/// each pair see the same disk: this disk's sync latency changes by an order of magnitude from
/// one minute to the next, which skews a ratio of two figures measured at different times.
fn paired_ratio() {
    let mut bench = Bench::new("paired");
    let mut ratios = Vec::with_capacity(RATIO_PAIRS);
    for pair in 0..RATIO_PAIRS {
        let (one, many);
        if pair % 2 == 0 {
            one = single_rate(&mut bench);
            many = concurrent_rate(&mut bench);
        } else {
            many = concurrent_rate(&mut bench);
            one = single_rate(&mut bench);
        }
        eprintln!(
            "[paired ratio] pair {pair}: 1 committer {one:.0} commits/s, 64 committers \
             {many:.0} commits/s, ratio {:.1}x",
            many / one
        );
        ratios.push(many / one);
    }
    bench.close();
    ratios.sort_by(f64::total_cmp);
    let median = ratios.get(ratios.len() / 2).copied().unwrap_or(f64::NAN);
    eprintln!("[paired ratio] median of {RATIO_PAIRS} pairs: {median:.1}x");
}

fn single_rate(bench: &mut Bench) -> f64 {
    let took = bench.run_sequential(RATIO_SINGLE_COMMITS, 1, 1, |tree, n| {
        commit_one(tree, &key(0, n), Durability::Immediate);
    });
    RATIO_SINGLE_COMMITS as f64 / took.as_secs_f64()
}

fn concurrent_rate(bench: &mut Bench) -> f64 {
    let (took, _) = run_concurrent(bench);
    (COMMITTERS * COMMITS_PER_COMMITTER) as f64 / took.as_secs_f64()
}

/// One iteration of `immediate_64_committers`: returns the wall time from the first
/// committer's start to the last one's finish, and every commit's latency.
fn run_concurrent(bench: &mut Bench) -> (Duration, Vec<Duration>) {
    let entries = COMMITTERS * COMMITS_PER_COMMITTER;
    bench.make_room(entries);
    let base = bench.next_key;
    bench.next_key += entries;
    bench.written += entries;
    let tree = bench.tree();
    let barrier = Barrier::new(usize::try_from(COMMITTERS).expect("fits"));
    let results: Vec<(Instant, Instant, Vec<Duration>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..COMMITTERS)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut lats = Vec::with_capacity(COMMITS_PER_COMMITTER as usize);
                    barrier.wait();
                    let start = Instant::now();
                    for j in 0..COMMITS_PER_COMMITTER {
                        let t0 = Instant::now();
                        commit_one(tree, &key(t + 1, base + j), Durability::Immediate);
                        lats.push(t0.elapsed());
                    }
                    (start, Instant::now(), lats)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("committer thread")).collect()
    });
    let first = results.iter().map(|r| r.0).min().expect("committers ran");
    let last = results.iter().map(|r| r.1).max().expect("committers ran");
    let lats = results.into_iter().flat_map(|r| r.2).collect();
    (last.duration_since(first), lats)
}

/// The physical limit: append 100 bytes to a file and `fdatasync` it (what an Immediate
/// commit's WAL write costs at the very least), without any engine.
fn raw_sync_benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("probe");
    let mut file =
        OpenOptions::new().create(true).append(true).open(&path).expect("open probe file");
    let payload = [0x5Au8; 100];
    let mut probed = false;

    let mut group = c.benchmark_group("physical");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_write_100b_fdatasync", |b| {
        if !probed && benchmarking() {
            probed = true;
            raw_sync_probe(&mut file, &payload);
        }
        b.iter(|| {
            file.write_all(black_box(&payload)).expect("write");
            file.sync_data().expect("fdatasync");
        });
    });
    group.finish();
}

/// A fixed 200-write probe, reported as a latency distribution.
fn raw_sync_probe(file: &mut std::fs::File, payload: &[u8]) {
    let mut probe = Latencies::default();
    let start = Instant::now();
    for _ in 0..RAW_SYNC_PROBE {
        let t0 = Instant::now();
        file.write_all(payload).expect("write");
        file.sync_data().expect("fdatasync");
        probe.push(t0.elapsed());
    }
    let took = start.elapsed();
    eprintln!(
        "[raw_write_100b_fdatasync probe] {} writes in {:.3}s = {:.0}/s | latency: {}",
        RAW_SYNC_PROBE,
        took.as_secs_f64(),
        RAW_SYNC_PROBE as f64 / took.as_secs_f64(),
        probe.summary()
    );
}

criterion_group!(benches, raw_sync_benches, commit_benches);
criterion_main!(benches);

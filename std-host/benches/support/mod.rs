//! Pieces the benchmarks share: run-mode detection, keys, the fixed-seed PRNG and value pools,
//! disk-size accounting, settling a tree, and the summary lines they print to stderr.
//!
//! Each benchmark includes this file with `mod support;` (Cargo does not make
//! `benches/support/mod.rs` a bench target of its own). Not every benchmark uses every item.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use strata::{Stats, Transaction, Tree};
use tempfile::TempDir;

/// Length of the keys `key` makes.
pub const KEY_LEN: usize = 16;

/// `true` under `cargo bench`; `false` in `cargo test`'s quick pass over the benchmarks.
pub fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Key `n`: 16 zero-padded ASCII decimal digits, so byte order is numeric order.
pub fn key(mut n: u64) -> [u8; KEY_LEN] {
    let mut k = [b'0'; KEY_LEN];
    for slot in k.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    k
}

/// SplitMix64: a small, fixed-seed PRNG so every run uses the same keys and values.
#[derive(Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `0..n` in a Fisher-Yates order drawn from `SplitMix64(seed)`.
pub fn permutation(n: u64, seed: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n).collect();
    let mut rng = SplitMix64(seed);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

/// A value pool made like `db_bench`'s: as many whole `value_len`-byte pieces as fit in
/// `pool_len` bytes, each `value_len / 2` bytes from `SplitMix64(seed)` followed by the same
/// bytes again, so a value compresses to about half on its own and shares nothing with the
/// other pieces.
pub fn value_pool(seed: u64, value_len: usize, pool_len: usize) -> Vec<u8> {
    let mut rng = SplitMix64(seed);
    let mut pool = Vec::with_capacity(pool_len);
    let mut half = vec![0u8; value_len / 2];
    while pool.len() + value_len <= pool_len {
        for chunk in half.chunks_mut(8) {
            let r = rng.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        pool.extend_from_slice(&half);
        pool.extend_from_slice(&half);
    }
    pool
}

/// Piece `i` (mod the piece count) of a pool `value_pool` made with `value_len`.
pub fn value_at(pool: &[u8], value_len: usize, i: u64) -> &[u8] {
    let pieces = (pool.len() / value_len) as u64;
    let start = (i % pieces) as usize * value_len;
    &pool[start..start + value_len]
}

/// Sum of the sizes of the files in a directory, and the part of it in tables, the WAL and the
/// value log.
#[derive(Debug)]
pub struct DiskUsage {
    pub total: u64,
    pub sst: u64,
    pub wal: u64,
    pub vlog: u64,
}

pub fn disk_usage(dir: &Path) -> DiskUsage {
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

pub fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Smallest and largest of `v`.
pub fn range(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &w| (lo.min(w), hi.max(w)))
}

/// The counters that moved between two snapshots.
pub fn delta(after: &Stats, before: &Stats) -> Stats {
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

/// How a benchmark settles its trees and what its summary lines show.
#[derive(Clone, Copy, Debug)]
pub struct Style {
    /// The value log benchmark's lines: they add the value log's parts (bytes on disk, files,
    /// write amplification), the key count of the first load and the range of disk sizes over
    /// loads.
    pub vlog: bool,
    /// Decimals of write amplification figures.
    pub wa_decimals: usize,
    /// How long `settle` waits at most.
    pub settle_limit: Duration,
}

impl Style {
    pub fn settle(&self, dir: &Path, tree: &Tree) {
        settle(dir, tree, self.settle_limit);
    }

    /// A tree holding `n` keys in a fresh temporary directory: opened with `open`, loaded
    /// with `write` (in random order) and settled. Prints how long the load took and the
    /// settled lines.
    pub fn loaded_tree(
        &self,
        name: &str,
        n: u64,
        open: impl FnOnce(&Path) -> Tree,
        write: impl FnOnce(&Tree),
    ) -> (Tree, TempDir) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let tree = open(dir.path());
        let started = Instant::now();
        write(&tree);
        let took = started.elapsed();
        self.settle(dir.path(), &tree);
        let s = tree.stats();
        eprintln!("[{name}] setup: loaded {n} keys (random order) in {:.2} s", took.as_secs_f64());
        self.print_settled(name, &s, &disk_usage(dir.path()));
        (tree, dir)
    }

    pub fn disk(&self, d: &DiskUsage) -> String {
        let vlog = if self.vlog { format!(", vlog {:.1} MB", mb(d.vlog)) } else { String::new() };
        format!(
            "disk {:.1} MB (sst {:.1} MB, wal {:.1} MB{vlog})",
            mb(d.total),
            mb(d.sst),
            mb(d.wal)
        )
    }

    pub fn levels(&self, s: &Stats) -> String {
        let parts: Vec<String> = s
            .levels
            .iter()
            .enumerate()
            .filter(|(_, l)| l.files > 0)
            .map(|(i, l)| format!("L{i}:{}f/{:.1}MB", l.files, mb(l.bytes)))
            .collect();
        let vlog = if self.vlog { format!(" vlog_files={}", s.vlog_files) } else { String::new() };
        format!("levels [{}] immutable_memtables={}{vlog}", parts.join(" "), s.immutable_memtables)
    }

    pub fn wa(&self, s: &Stats) -> String {
        let p = self.wa_decimals;
        let user = s.user_bytes.max(1) as f64;
        let vlog = if self.vlog {
            format!(" + vlog {:.p$}", s.vlog_bytes as f64 / user)
        } else {
            String::new()
        };
        format!(
            "write_amp {:.p$} (wal {:.p$}{vlog} + flush {:.p$} + compaction {:.p$}; user {:.1} MB, {} flushes, {} compactions) stall {:.1} ms",
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

    /// Prints the write amplification, level shape and disk lines of a settled tree.
    pub fn print_settled(&self, name: &str, s: &Stats, usage: &DiskUsage) {
        eprintln!("[{name}]   settled: {}", self.wa(s));
        eprintln!("[{name}]   settled: {}", self.levels(s));
        eprintln!("[{name}]   settled: {}", self.disk(usage));
    }

    /// Prints the block cache counters that moved between `before` and `after`, with the level
    /// shape at `after`.
    pub fn print_block_cache(&self, name: &str, before: &Stats, after: &Stats) {
        let d = delta(after, before);
        let lookups = d.block_cache_hits + d.block_cache_misses;
        eprintln!(
            "[{name}] block cache: {} hits, {} misses ({:.1} % hits); {}",
            d.block_cache_hits,
            d.block_cache_misses,
            100.0 * d.block_cache_hits as f64 / lookups.max(1) as f64,
            self.levels(after)
        );
    }
}

/// A fill benchmark: each iteration loads `n` keys into a fresh tree. Only the commits are
/// timed; opening, settling, closing and deleting the directory are not.
#[derive(Debug)]
pub struct Fills {
    name: String,
    n: u64,
    style: Style,
    tally: Tally,
    /// Settled write amplification, bytes on disk and stall time of every load.
    wa: Vec<f64>,
    disk: Vec<u64>,
    stall_ns: Vec<u64>,
}

impl Fills {
    pub fn new(name: &str, n: u64, op_bytes: usize, style: Style) -> Self {
        Fills {
            name: name.to_string(),
            n,
            style,
            tally: Tally::new(name, op_bytes),
            wa: Vec::new(),
            disk: Vec::new(),
            stall_ns: Vec::new(),
        }
    }

    /// Runs `iters` loads, each opening a tree with `open` in a fresh temporary directory and
    /// loading it with `write`; returns the time the loads took. Prints what the first load
    /// left.
    pub fn run(
        &mut self,
        iters: u64,
        open: impl Fn(&Path) -> Tree,
        write: impl Fn(&Tree),
    ) -> Duration {
        let (name, n, style) = (&self.name, self.n, self.style);
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let dir = tempfile::tempdir().expect("temporary directory");
            let tree = open(dir.path());
            let started = Instant::now();
            write(&tree);
            let took = started.elapsed();
            total += took;
            self.tally.add(n, took);

            let at_last_commit = tree.stats();
            style.settle(dir.path(), &tree);
            let s = tree.stats();
            let usage = disk_usage(dir.path());
            let first = self.wa.is_empty();
            self.wa.push(s.write_amplification());
            self.disk.push(usage.total);
            self.stall_ns.push(s.stall_ns);
            if first {
                let secs = took.as_secs_f64();
                if style.vlog {
                    eprintln!("[{name}] first load: {n} keys in {secs:.3} s");
                } else {
                    eprintln!("[{name}] first load: {secs:.3} s");
                }
                eprintln!("[{name}]   at the last commit: {}", style.wa(&at_last_commit));
                style.print_settled(name, &s, &usage);
                tree.close().expect("close");
                eprintln!("[{name}]   closed:  {}", style.disk(&disk_usage(dir.path())));
            } else {
                tree.close().expect("close");
            }
            drop(tree);
            drop(dir);
        }
        total
    }

    /// Prints the tally and the settled figures over all loads.
    pub fn report(&self) {
        self.tally.report();
        if self.wa.is_empty() {
            return;
        }
        let name = &self.name;
        let (lo, hi) = range(&self.wa);
        let stalled = self.stall_ns.iter().filter(|&&s| s > 0).count();
        let max_stall = self.stall_ns.iter().copied().max().unwrap_or(0) as f64 / 1e6;
        let loads = self.wa.len();
        let p = self.style.wa_decimals;
        if self.style.vlog {
            let disk_mb: Vec<f64> = self.disk.iter().map(|&d| mb(d)).collect();
            let (dlo, dhi) = range(&disk_mb);
            eprintln!(
                "[{name}] settled over {loads} loads: write_amp {lo:.p$}..{hi:.p$}, disk {dlo:.1}..{dhi:.1} MB; loads that stalled: {stalled}, longest stall {max_stall:.1} ms"
            );
        } else {
            eprintln!(
                "[{name}] settled write_amp over {loads} loads: {lo:.p$}..{hi:.p$}; loads that stalled: {stalled}, longest stall {max_stall:.1} ms"
            );
        }
    }
}

/// What one benchmark measured over all its timed iterations (warm-up included).
#[derive(Debug)]
pub struct Tally {
    name: String,
    op_bytes: usize,
    ops: u64,
    timed: Duration,
    per_iter: Vec<Duration>,
}

impl Tally {
    /// A tally for benchmark `name`, whose ops each carry `op_bytes` bytes of user data.
    pub fn new(name: &str, op_bytes: usize) -> Self {
        Tally {
            name: name.to_string(),
            op_bytes,
            ops: 0,
            timed: Duration::ZERO,
            per_iter: Vec::new(),
        }
    }

    pub fn add(&mut self, ops: u64, d: Duration) {
        self.ops += ops;
        self.timed += d;
        self.per_iter.push(d);
    }

    pub fn report(&self) {
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
/// list, so no compaction is writing an output and no obsolete input is left). Gives up
/// after `limit`.
pub fn settle(dir: &Path, tree: &Tree, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let ran = tree.maintenance_step(usize::MAX).expect("maintenance");
        let listed: u64 = tree.stats().levels.iter().map(|l| l.bytes).sum();
        if ran == 0 && listed == disk_usage(dir).sst {
            return;
        }
        if Instant::now() > deadline {
            eprintln!(
                "(settle gave up after {} s: tables listed {listed} B, on disk {} B)",
                limit.as_secs(),
                disk_usage(dir).sst
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One `readrandom` iteration batch: `iters * batch` gets through `txn` of keys drawn
/// uniformly from `0..n`, every one of which must be found. Returns the time they took and
/// adds it to `tally`.
pub fn random_gets(
    txn: &Transaction,
    rng: &mut SplitMix64,
    n: u64,
    batch: u64,
    iters: u64,
    tally: &mut Tally,
) -> Duration {
    let started = Instant::now();
    let mut found = 0u64;
    for _ in 0..iters {
        for _ in 0..batch {
            found += u64::from(
                std::hint::black_box(txn.get(&key(rng.below(n))).expect("get")).is_some(),
            );
        }
    }
    let took = started.elapsed();
    assert_eq!(found, iters * batch, "every loaded key is found");
    tally.add(iters * batch, took);
    took
}

/// Keeps the stats from before the first and after the latest of a benchmark's runs.
pub fn track(counters: &mut Option<(Stats, Stats)>, before: Stats, after: Stats) {
    *counters = Some(match counters.take() {
        None => (before, after),
        Some((first, _)) => (first, after),
    });
}

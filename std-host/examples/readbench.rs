//! Read-side throughput probe (see `docs/performance.md`, "Read path").
//!
//! `cargo run --release -p strata --example readbench -- load DIR N` fills `DIR` with `N` keys
//! (16 B keys in random order, 100 B values compressible to half, 1000 keys per commit) and closes it cleanly (with `STRATA_FLUSH=1`, after flushing the memtable to tables);
//! `... -- run DIR N [VALUE_LEN]` reopens it and reports, one line per workload, keys/s for
//! readrandom (one thread and four), readseq (full scan), range scans of 100 keys and
//! (with `STRATA_VERSIONED=1` at load and run) time-travel point reads, then the process's peak RSS. `STRATA_ONLY=readseq,range100` runs only the named
//! workloads (to count one under `perf stat`). The load and run steps are separate
//! so that two builds can be compared on the same files, interleaved.

use std::path::PathBuf;
use std::time::Instant;

use strata::{Mode, ReadOptions, Tree, TreeBuilder};

const SEED: u64 = 0x5EED_0F57_4A7A;

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

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"strata-r");
    k[8..].copy_from_slice(&i.to_be_bytes());
    k
}

/// Default options; `STRATA_VERSIONED=1` turns versioning on (needed for time-travel reads).
fn open(dir: &str) -> Tree {
    let builder = TreeBuilder::new().with_path(PathBuf::from(dir));
    let builder = if versioned() { builder.with_versioning(true, u64::MAX) } else { builder };
    builder.build().expect("open tree")
}

fn versioned() -> bool {
    std::env::var("STRATA_VERSIONED").is_ok_and(|v| v == "1")
}

fn load(dir: &str, n: u64, value_len: usize) {
    let tree = open(dir);
    // Values compress to about half, like db_bench's: a random first half, then zeros.
    let mut value = vec![0u8; value_len];
    // A random permutation of 0..n: multiply by an odd constant modulo a power of two >= n.
    let size = n.next_power_of_two();
    let mut order = (0..size).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15 | 1) % size);
    let mut written = 0;
    while written < n {
        let mut txn = tree.begin().expect("begin");
        let mut in_batch = 0;
        for i in order.by_ref() {
            if i >= n {
                continue;
            }
            let mut rng = SplitMix64(i ^ SEED);
            for chunk in value[..value_len / 2].chunks_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
            }
            txn.set(&key(i), &value).expect("set");
            written += 1;
            in_batch += 1;
            if in_batch == 1000 {
                break;
            }
        }
        txn.commit_blocking().expect("commit");
    }
    if std::env::var("STRATA_FLUSH").is_ok_and(|v| v == "1") {
        // Reads after reopen then come from tables, not from the replayed memtable.
        tree.flush().expect("flush");
    }
    tree.close().expect("close");
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `STRATA_ONLY=readseq,range100` runs just those workloads (for `perf stat` on one).
fn wanted(name: &str) -> bool {
    std::env::var("STRATA_ONLY").map_or(true, |only| only.split(',').any(|w| w == name))
}

fn report(name: &str, ops: u64, start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    println!("{name:<16} {:>12.0} ops/s", ops as f64 / secs);
}

fn readrandom(tree: &Tree, n: u64, ops: u64, seed: u64) {
    let txn = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
    let mut rng = SplitMix64(seed);
    for _ in 0..ops {
        let v = txn.get(&key(rng.below(n))).expect("get");
        assert!(v.is_some(), "loaded key present");
    }
}

fn scan_all(txn: &strata::Transaction, n: u64) {
    let mut count = 0;
    for kv in txn.range_with_options(&ReadOptions::new()).expect("range") {
        kv.expect("entry");
        count += 1;
    }
    assert_eq!(count, n, "scan sees every key");
}

fn run(dir: &str, n: u64) {
    let t = Instant::now();
    let tree = open(dir);
    report("open", 1, t);
    // `STRATA_OPS` overrides the number of point reads (default: N).
    let ops = std::env::var("STRATA_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(n);
    let txn = tree.begin_with_mode(Mode::ReadOnly).expect("begin");

    if wanted("readrandom") {
        let t = Instant::now();
        readrandom(&tree, n, ops, SEED);
        report("readrandom", ops, t);
    }
    if wanted("readrandom4") {
        let t = Instant::now();
        std::thread::scope(|s| {
            for th in 0..4 {
                let tree = &tree;
                s.spawn(move || readrandom(tree, n, ops / 4, SEED ^ th));
            }
        });
        report("readrandom4", ops, t);
    }
    if wanted("readseq") {
        let t = Instant::now();
        scan_all(&txn, n);
        report("readseq", n, t);
    }
    if wanted("readseq4") {
        let t = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let txn = &txn;
                s.spawn(move || scan_all(txn, n));
            }
        });
        report("readseq4", 4 * n, t);
    }
    if wanted("range100") {
        let t = Instant::now();
        let mut rng = SplitMix64(SEED ^ 7);
        let scans = (n / 100).max(100);
        let mut seen = 0;
        for _ in 0..scans {
            let start = key(rng.below(n));
            let opts = ReadOptions::new()
                .with_iterate_lower_bound(Some(start.to_vec()))
                .with_limit(Some(100));
            for kv in txn.range_with_options(&opts).expect("range") {
                kv.expect("entry");
                seen += 1;
            }
        }
        report("range100(keys)", seen, t);
    }
    if versioned() && wanted("timetravel") {
        timetravel(&txn, n, ops / 2);
    }
    drop(txn);
    tree.close().expect("close");
    println!("peak_rss_mib     {:>12}", peak_rss_kib() / 1024);
}

/// Time travel: every key was written once, so a read at a time far ahead sees it.
fn timetravel(txn: &strata::Transaction, n: u64, tt_ops: u64) {
    let now = u64::MAX / 2;
    let t = Instant::now();
    let mut rng = SplitMix64(SEED ^ 9);
    for _ in 0..tt_ops {
        let v = txn.get_at_version(&key(rng.below(n)), now).expect("get_at");
        assert!(v.is_some());
    }
    report("timetravel_get", tt_ops, t);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: readbench load|run DIR N [VALUE_LEN]";
    let (cmd, dir) = (args.get(1).expect(usage), args.get(2).expect(usage));
    let n: u64 = args.get(3).expect(usage).parse().expect("N");
    let value_len: usize = args.get(4).map_or(100, |v| v.parse().expect("VALUE_LEN"));
    match cmd.as_str() {
        "load" => load(dir, n, value_len),
        "run" => run(dir, n),
        _ => panic!("{usage}"),
    }
}

//! Write-side and open-time workloads of issue #14 (see `docs/performance.md`, section
//! "Write path and open time"), as one plain program so two builds can be run interleaved.
//!
//! `cargo bench -p strata --bench writeopen` runs every workload once and prints one line per
//! workload: `name value unit`. `STRATA_BENCH_N` sets the key count (default 300,000; 2,000
//! under `cargo test`). Keys are 16 bytes (zero-padded decimal), values 100 bytes (50 random
//! bytes twice, so they compress to about half), default options, `commit().await` on a
//! current-thread runtime, as the side-by-side comparison does.
//!
//! - `fillseq`: one key per commit, ascending; `fillbatch`: 1000 keys per commit, ascending;
//!   `fillrandom`: 1000 keys per commit in a fixed-seed random order; `overwrite`: the same
//!   keys again in another random order into the `fillrandom` tree. Keys per second.
//! - `disk_mb`: bytes on disk after `fillrandom` + `overwrite` and a close.
//! - `reopen_clean_ms`: opening that closed database. `reopen_crash_ms`: opening a copy of
//!   the directory taken while the tree was open with every commit acknowledged (the files a
//!   crash of the process would leave: all writes are in the OS).
//! - `fill8k_vlog_off`, `overwrite8k_vlog_off`, `read8k_vlog_off` and the same with
//!   `_vlog_on`: 40,000 keys (N/7.5) of 8 KiB values, 100 keys per commit, with the value log
//!   off and on (threshold default); the reads are 10,000 random gets after a reopen.
//!   Keys per second, and `disk8k_*_mb` after the overwrite and a close.
//! - `fillsync_1`: one-key Immediate commits, one committer; `fillsync_64`: 64 committers
//!   (tokio tasks on a 2-thread runtime), each its own keys. Commits per second, 5,000 and
//!   64 x 200 commits.

use std::path::Path;
use std::time::Instant;

use strata::{Durability, Tree, TreeBuilder};

fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn key_count() -> u64 {
    match std::env::var("STRATA_BENCH_N").ok().and_then(|s| s.parse().ok()) {
        Some(n) => n,
        None if benchmarking() => 300_000,
        None => 2_000,
    }
}

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    let s = format!("{i:016}");
    k.copy_from_slice(s.as_bytes());
    k
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn value(rng: &mut Rng) -> [u8; 100] {
    let mut v = [0u8; 100];
    for byte in &mut v[..50] {
        *byte = rng.next() as u8;
    }
    let (a, b) = v.split_at_mut(50);
    b.copy_from_slice(a);
    v
}

fn permutation(n: u64, seed: u64) -> Vec<u64> {
    let mut rng = Rng(seed);
    let mut p: Vec<u64> = (0..n).collect();
    for i in (1..p.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        p.swap(i, j);
    }
    p
}

fn open(dir: &Path) -> Tree {
    TreeBuilder::new().with_path(dir.to_path_buf()).build().expect("open")
}

/// Bytes of every file under `dir`, subdirectories included.
fn disk_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some(if meta.is_dir() { disk_bytes(&e.path()) } else { meta.len() })
        })
        .sum()
}

async fn load(tree: &Tree, order: &[u64], batch: usize, rng: &mut Rng) {
    for chunk in order.chunks(batch) {
        let mut txn = tree.begin().expect("begin");
        for &i in chunk {
            txn.set(&key(i), &value(rng)).expect("set");
        }
        txn.commit().await.expect("commit");
    }
}

fn report(name: &str, value: f64, unit: &str) {
    println!("{name} {value:.3} {unit}");
}

fn rate(n: u64, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let n = key_count();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let scratch = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(42);
    let seq: Vec<u64> = (0..n).collect();

    // fillseq and fillbatch.
    for (name, batch) in [("fillseq", 1usize), ("fillbatch", 1000)] {
        let dir = scratch.path().join(name);
        let tree = open(&dir);
        let start = Instant::now();
        rt.block_on(load(&tree, &seq, batch, &mut rng));
        report(name, rate(n, start), "keys/s");
        tree.close().expect("close");
        std::fs::remove_dir_all(&dir).expect("remove");
    }

    // fillrandom, overwrite, disk footprint, reopen after clean close and after a crash.
    let dir = scratch.path().join("random");
    let tree = open(&dir);
    let start = Instant::now();
    rt.block_on(load(&tree, &permutation(n, 7), 1000, &mut rng));
    report("fillrandom", rate(n, start), "keys/s");
    let start = Instant::now();
    rt.block_on(load(&tree, &permutation(n, 8), 1000, &mut rng));
    report("overwrite", rate(n, start), "keys/s");
    let crashed = scratch.path().join("crashed");
    std::fs::create_dir(&crashed).expect("mkdir");
    for entry in std::fs::read_dir(&dir).expect("list").flatten() {
        let name = entry.file_name();
        if name != "LOCK" {
            std::fs::copy(entry.path(), crashed.join(&name)).expect("copy");
        }
    }
    tree.close().expect("close");
    drop(tree);
    report("disk_mb", disk_bytes(&dir) as f64 / 1e6, "MB");
    let start = Instant::now();
    let tree = open(&dir);
    report("reopen_clean_ms", start.elapsed().as_secs_f64() * 1e3, "ms");
    let mut txn = tree.begin().expect("begin");
    assert!(txn.get(&key(n - 1)).expect("get").is_some());
    txn.rollback().expect("rollback");
    tree.close().expect("close");
    drop(tree);
    let start = Instant::now();
    let tree = open(&crashed);
    report("reopen_crash_ms", start.elapsed().as_secs_f64() * 1e3, "ms");
    tree.close().expect("close");
    drop(tree);
    std::fs::remove_dir_all(&dir).expect("remove");
    std::fs::remove_dir_all(&crashed).expect("remove");

    // 8 KiB values with the value log off and on.
    let n8 = (n * 2 / 15).max(100);
    for vlog in [false, true] {
        let tag = if vlog { "vlog_on" } else { "vlog_off" };
        let dir = scratch.path().join(tag);
        let build = || TreeBuilder::new().with_path(dir.clone()).with_enable_vlog(vlog).build();
        let tree = build().expect("open");
        let big = |rng: &mut Rng| -> Vec<u8> {
            let piece = value(rng);
            piece.iter().cycle().take(8192).copied().collect()
        };
        for (name, seed) in [("fill8k", 11u64), ("overwrite8k", 12)] {
            let order = permutation(n8, seed);
            let start = Instant::now();
            rt.block_on(async {
                for chunk in order.chunks(100) {
                    let mut txn = tree.begin().expect("begin");
                    for &i in chunk {
                        txn.set(&key(i), &big(&mut rng)).expect("set");
                    }
                    txn.commit().await.expect("commit");
                }
            });
            report(&format!("{name}_{tag}"), rate(n8, start), "keys/s");
        }
        tree.close().expect("close");
        drop(tree);
        report(&format!("disk8k_{tag}_mb"), disk_bytes(&dir) as f64 / 1e6, "MB");
        let tree = build().expect("open");
        let txn = tree.begin().expect("begin");
        let mut pick = Rng(99);
        let gets = 10_000.min(n8 * 4);
        let start = Instant::now();
        for _ in 0..gets {
            assert!(txn.get(&key(pick.next() % n8)).expect("get").is_some());
        }
        report(&format!("read8k_{tag}"), rate(gets, start), "gets/s");
        drop(txn);
        tree.close().expect("close");
        drop(tree);
        std::fs::remove_dir_all(&dir).expect("remove");
    }

    // fillsync with 1 and 64 committers.
    let dir = scratch.path().join("sync1");
    let tree = open(&dir);
    let commits = if benchmarking() { 5_000 } else { 200 };
    let start = Instant::now();
    rt.block_on(async {
        for i in 0..commits {
            let mut txn = tree.begin().expect("begin");
            txn.set_durability(Durability::Immediate);
            txn.set(&key(i), &value(&mut Rng(i))).expect("set");
            txn.commit().await.expect("commit");
        }
    });
    report("fillsync_1", rate(commits, start), "commits/s");
    tree.close().expect("close");
    drop(tree);

    let dir = scratch.path().join("sync64");
    let tree = open(&dir);
    let per_task = if benchmarking() { 200 } else { 10 };
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    mt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..64u64 {
            let tree = tree.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per_task {
                    let k = t * 1_000_000 + i;
                    let mut txn = tree.begin().expect("begin");
                    txn.set_durability(Durability::Immediate);
                    txn.set(&key(k), &value(&mut Rng(k))).expect("set");
                    txn.commit().await.expect("commit");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    report("fillsync_64", rate(64 * per_task, start), "commits/s");
    tree.close().expect("close");
}

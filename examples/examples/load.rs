//! Scale check: load a dataset far larger than memory, then read it back at random.
//!
//! ```sh
//! cargo run --release -p strata-examples --example load -- [GIB] [DIR]
//! ```
//!
//! Loads `GIB` GiB (default 4) of random 16-byte keys with 1000-byte values in 1,000-key
//! transactions, with a 64 MiB memtable and a 64 MiB block cache; then reads 100,000 random
//! loaded keys. Prints load and read throughput, peak RSS (Linux: VmHWM), the shape of the LSM
//! tree and write amplification. The directory (default `./load-db`) is wiped first.

use std::path::PathBuf;
use std::time::Instant;

use strata::TreeBuilder;

const VALUE_LEN: usize = 1000;
const BATCH: u64 = 1000;
const READS: u64 = 100_000;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The i-th key: 16 bytes of a bijective mix of i, so keys are random but reproducible.
fn key(i: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&mix(i).to_be_bytes());
    out[8..].copy_from_slice(&mix(i ^ 0xa5a5_a5a5_a5a5_a5a5).to_be_bytes());
    out
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn value(i: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(VALUE_LEN);
    let mut x = i;
    while v.len() < VALUE_LEN {
        x = mix(x);
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(VALUE_LEN);
    v
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> Result<(), BoxError> {
    let gib: f64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(4.0);
    let dir = PathBuf::from(std::env::args().nth(2).unwrap_or_else(|| "load-db".into()));
    let _ = std::fs::remove_dir_all(&dir);
    let total = (gib * 1024.0 * 1024.0 * 1024.0 / (16 + VALUE_LEN) as f64) as u64;
    let tree = TreeBuilder::new()
        .with_path(dir.clone())
        .with_max_memtable_size(64 * 1024 * 1024)
        .with_block_cache_capacity(64 * 1024 * 1024)
        .build()?;

    println!("loading {total} keys ({gib} GiB of keys and values) into {}", dir.display());
    let t = Instant::now();
    let mut i = 0;
    while i < total {
        let mut txn = tree.begin()?;
        let end = (i + BATCH).min(total);
        for j in i..end {
            txn.set(&key(j), &value(j))?;
        }
        txn.commit_blocking()?;
        i = end;
        if i % (BATCH * 500) == 0 {
            let s = tree.stats();
            println!(
                "  {:>5.1}% {:>8.0} keys/s  L0 {} files, {} memtables waiting, stalled {:.1} s",
                i as f64 * 100.0 / total as f64,
                i as f64 / t.elapsed().as_secs_f64(),
                s.levels.first().map_or(0, |l| l.files),
                s.immutable_memtables,
                s.stall_ns as f64 / 1e9
            );
        }
    }
    let load_secs = t.elapsed().as_secs_f64();
    let bytes = total as f64 * (16 + VALUE_LEN) as f64;
    println!(
        "loaded in {load_secs:.1} s: {:.0} keys/s, {:.1} MiB/s of user data",
        total as f64 / load_secs,
        bytes / load_secs / 1048576.0
    );

    let t = Instant::now();
    let txn = tree.begin()?;
    let mut x = 12345u64;
    for _ in 0..READS {
        x = mix(x);
        let i = x % total;
        let got = txn.get(&key(i))?.ok_or("a loaded key is missing")?;
        if got.as_ref() != value(i).as_slice() {
            return Err("a loaded key has the wrong value".into());
        }
    }
    let read_secs = t.elapsed().as_secs_f64();
    drop(txn);
    let s = tree.stats();
    println!(
        "{READS} random reads in {read_secs:.2} s: {:.0} reads/s (all verified)",
        READS as f64 / read_secs
    );
    println!(
        "block cache: {} hits, {} misses; stalled {:.1} s in all",
        s.block_cache_hits,
        s.block_cache_misses,
        s.stall_ns as f64 / 1e9
    );
    for (level, l) in s.levels.iter().enumerate().filter(|(_, l)| l.files > 0) {
        println!("  L{level}: {:>4} files {:>10.1} MiB", l.files, l.bytes as f64 / 1048576.0);
    }
    println!(
        "write amplification {:.2} (WAL {:.0} MiB + flush {:.0} MiB + compaction {:.0} MiB for {:.0} MiB of user data)",
        s.write_amplification(),
        s.wal_bytes as f64 / 1048576.0,
        s.flush_bytes as f64 / 1048576.0,
        s.compaction_write_bytes as f64 / 1048576.0,
        s.user_bytes as f64 / 1048576.0
    );
    match peak_rss_mib() {
        Some(mib) => println!("peak RSS {mib:.0} MiB"),
        None => println!("peak RSS: not available on this platform"),
    }
    tree.close()?;
    Ok(())
}

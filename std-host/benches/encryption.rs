//! The cost of encryption at rest (see `docs/performance.md`, section "Encryption at rest",
//! and `docs/format/encryption.md`, "Cost"): the same workloads on a real temporary
//! directory with and without `TreeBuilder::with_encryption_key`, and the raw filesystem
//! layer, `EncryptedFs<StdFs>` against `StdFs`.
//!
//! Run with `cargo bench -p strata --bench encryption`. Keys are 16 bytes, values 1,000
//! bytes of fixed-seed random data (compression on, as by default, finds nothing to remove,
//! so every value byte is encrypted and decrypted).
//!
//! - `encryption_write/{plain,encrypted}`: one commit of 1,000 puts per iteration (the
//!   default `Eventual` durability: no fsync per commit), keys cycling over 50,000 so the
//!   tree flushes and compacts in the background at a steady size. Throughput in user bytes.
//! - `encryption_get/{plain,encrypted}`: random point reads of 50,000 loaded keys, after a
//!   flush and compaction so they come from tables; default block cache (warm after the first
//!   iterations). `encryption_get_uncached/...`: the same with the block cache off, so every
//!   get reads and decrypts its block.
//! - `encryption_scan_cold/{plain,encrypted}`: each iteration reopens the database (a cold
//!   block cache; the OS page cache stays warm, so this is decryption and decoding, not disk)
//!   and scans every key and value. The reopen is not timed.
//! - `encryption_fs_write/{StdFs,EncryptedFs}`: 16 MiB appended to a new file in 64 KiB
//!   pieces, flushed, no sync; `encryption_fs_read/...`: that file read back in 64 KiB pieces.
//!
//! Under `cargo test --benches` each runs once on a small load, as a smoke test.

mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use strata::fs::StdFs;
use strata::vfs::{AppendWrite, EncryptedFs, ErrorKind, FileKind, RandomRead, StaticKey, Vfs};
use strata::{Mode, OsRandom, ReadOptions, Tree, TreeBuilder};
use support::{SplitMix64, benchmarking, key, value_at};
use tempfile::TempDir;

const KEY: [u8; 32] = *b"benchmark key, not a secret!!!!!";
const VALUE_LEN: usize = 1_000;
const BATCH: u64 = 1_000;
const SEED: u64 = 0x5EED_E4C1_2026;

/// Keys loaded for the read benchmarks, and the key space the write benchmark cycles over.
fn key_count() -> u64 {
    if benchmarking() { 50_000 } else { 2_000 }
}

/// Incompressible values: random bytes, not the half-repeated pool other benchmarks use.
fn random_pool() -> Vec<u8> {
    let mut rng = SplitMix64(SEED);
    let mut pool = vec![0u8; 4 << 20];
    for chunk in pool.chunks_mut(8) {
        let r = rng.next().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    pool
}

#[derive(Clone, Copy)]
enum Setting {
    Plain,
    Encrypted,
}

impl Setting {
    const BOTH: [Setting; 2] = [Setting::Plain, Setting::Encrypted];

    fn name(self) -> &'static str {
        match self {
            Setting::Plain => "plain",
            Setting::Encrypted => "encrypted",
        }
    }

    fn builder(self, dir: &Path) -> TreeBuilder {
        let b = TreeBuilder::new().with_path(dir.to_path_buf());
        match self {
            Setting::Plain => b,
            Setting::Encrypted => b.with_encryption_key(KEY),
        }
    }
}

/// Writes keys `from..to` in commits of [`BATCH`].
fn write_range(tree: &Tree, pool: &[u8], from: u64, to: u64) {
    let mut i = from;
    while i < to {
        let mut txn = tree.begin().expect("begin");
        for k in i..(i + BATCH).min(to) {
            txn.set(&key(k), value_at(pool, VALUE_LEN, k)).expect("set");
        }
        txn.commit_blocking().expect("commit");
        i += BATCH;
    }
}

/// A closed database of `key_count()` keys, flushed and compacted into tables.
fn loaded(setting: Setting, pool: &[u8]) -> TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let tree = setting.builder(dir.path()).build().expect("open");
    write_range(&tree, pool, 0, key_count());
    tree.flush().expect("flush");
    while tree.maintenance_step(8).expect("maintenance") > 0 {}
    tree.close().expect("close");
    dir
}

/// Ten samples (the scans reopen the database per iteration); warm-up and measurement times
/// are criterion's defaults or the command line's (`--warm-up-time`, `--measurement-time`).
fn group_times(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    group.sample_size(10);
    if !benchmarking() {
        group.warm_up_time(Duration::from_millis(10)).measurement_time(Duration::from_millis(50));
    }
}

fn write_bench(c: &mut Criterion, pool: &[u8]) {
    let mut group = c.benchmark_group("encryption_write");
    group_times(&mut group);
    group.throughput(Throughput::Bytes(BATCH * (VALUE_LEN + support::KEY_LEN) as u64));
    for setting in Setting::BOTH {
        let dir = tempfile::tempdir().expect("temporary directory");
        let tree = setting.builder(dir.path()).build().expect("open");
        let keys = key_count();
        let mut next = 0u64;
        group.bench_function(setting.name(), |b| {
            b.iter(|| {
                let from = next % keys;
                write_range(&tree, pool, from, from + BATCH);
                next += BATCH;
            });
        });
        tree.close().expect("close");
    }
    group.finish();
}

fn get_bench(c: &mut Criterion, dirs: &[(Setting, TempDir)], pool: &[u8], cache: bool) {
    let name = if cache { "encryption_get" } else { "encryption_get_uncached" };
    let mut group = c.benchmark_group(name);
    group_times(&mut group);
    group.throughput(Throughput::Bytes((VALUE_LEN + support::KEY_LEN) as u64));
    for (setting, dir) in dirs {
        let mut b = setting.builder(dir.path());
        if !cache {
            b = b.with_block_cache_capacity(0);
        }
        let tree = b.build_read_only().expect("open read-only");
        let txn = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
        let mut rng = SplitMix64(SEED ^ 7);
        let k = rng.below(key_count());
        let got = txn.get(&key(k)).expect("get").expect("loaded key present");
        assert_eq!(&got[..], value_at(pool, VALUE_LEN, k), "reads back what was written");
        group.bench_function(setting.name(), |b| {
            b.iter(|| black_box(txn.get(&key(rng.below(key_count()))).expect("get")));
        });
    }
    group.finish();
}

fn scan_bench(c: &mut Criterion, dirs: &[(Setting, TempDir)]) {
    let mut group = c.benchmark_group("encryption_scan_cold");
    group_times(&mut group);
    group.throughput(Throughput::Bytes(key_count() * (VALUE_LEN + support::KEY_LEN) as u64));
    for (setting, dir) in dirs {
        group.bench_function(setting.name(), |b| {
            b.iter_batched(
                || setting.builder(dir.path()).build_read_only().expect("reopen"),
                |tree| {
                    let txn = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
                    let mut n = 0u64;
                    for kv in txn.range_with_options(&ReadOptions::new()).expect("scan") {
                        black_box(kv.expect("pair"));
                        n += 1;
                    }
                    assert_eq!(n, key_count(), "every key scanned");
                    tree
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

const FILE_LEN: usize = 16 << 20;
const PIECE: usize = 64 << 10;

fn raw_fs_bench<V: Vfs>(c: &mut Criterion, name: &str, fs: &V, pool: &[u8]) {
    let data = &pool[..PIECE];
    let len = if benchmarking() { FILE_LEN } else { PIECE * 4 };
    let mut group = c.benchmark_group("encryption_fs_write");
    group_times(&mut group);
    group.throughput(Throughput::Bytes(len as u64));
    group.bench_function(name, |b| {
        b.iter_batched(
            // The file of the previous iteration goes first, untimed: `create` makes a new one.
            || match fs.remove("000001.sst") {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => panic!("remove: {e}"),
            },
            |()| {
                let mut w = fs.create("000001.sst", FileKind::Table).expect("create");
                for _ in 0..len / PIECE {
                    w.append(data).expect("append");
                }
                w.flush().expect("flush");
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();

    let mut group = c.benchmark_group("encryption_fs_read");
    group_times(&mut group);
    group.throughput(Throughput::Bytes(len as u64));
    let file = fs.open("000001.sst", FileKind::Table).expect("open");
    assert_eq!(file.len().expect("len"), len as u64);
    let mut buf = vec![0u8; PIECE];
    file.read_exact_at(0, &mut buf).expect("read");
    assert_eq!(buf, data, "reads back what was written");
    group.bench_function(name, |b| {
        b.iter(|| {
            for at in (0..len).step_by(PIECE) {
                file.read_exact_at(at as u64, &mut buf).expect("read");
            }
            black_box(&buf);
        });
    });
    group.finish();
}

fn encryption_benches(c: &mut Criterion) {
    let pool = random_pool();
    write_bench(c, &pool);
    let dirs: Vec<(Setting, TempDir)> = Setting::BOTH.map(|s| (s, loaded(s, &pool))).into();
    get_bench(c, &dirs, &pool, true);
    get_bench(c, &dirs, &pool, false);
    scan_bench(c, &dirs);

    let plain_dir = tempfile::tempdir().expect("temporary directory");
    let plain = StdFs::open_dir(plain_dir.path()).expect("open dir");
    raw_fs_bench(c, "StdFs", &plain, &pool);
    let enc_dir = tempfile::tempdir().expect("temporary directory");
    let encrypted = EncryptedFs::open(
        StdFs::open_dir(enc_dir.path()).expect("open dir"),
        &StaticKey::new(KEY),
        OsRandom,
    )
    .expect("open encrypted");
    raw_fs_bench(c, "EncryptedFs", &encrypted, &pool);
}

criterion_group!(benches, encryption_benches);
criterion_main!(benches);

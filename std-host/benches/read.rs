//! Point-read benchmarks on the real filesystem (see `docs/performance.md`).
//!
//! Run with `cargo bench -p strata --bench read`. 100,000 keys (16 B keys, 100 B values) are
//! loaded into a tree with default options (64 MiB memtable, so they all stay in the
//! memtable), then one long-lived read-only transaction does `get` on keys drawn by a
//! fixed-seed PRNG: keys that exist (`memtable_point_get`) or keys that fall between them
//! (`memtable_point_get_miss`).

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata::{Mode, Tree, TreeBuilder};
use support::SplitMix64;
use tempfile::TempDir;

const KEYS: u64 = 100_000;
const LOAD_BATCH: u64 = 1_000;
const VALUE: [u8; 100] = [0xA5; 100];
const SEED: u64 = 0x5EED_0F57_4A7A;

/// Loaded key `i` holds the even number `2 * i`; `miss_key(i)` is the odd number right after
/// it, so misses land between real keys, not outside the key range.
fn hit_key(i: u64) -> [u8; 16] {
    encode(2 * i)
}

fn miss_key(i: u64) -> [u8; 16] {
    encode(2 * i + 1)
}

fn encode(n: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(b"strata-r");
    k[8..].copy_from_slice(&n.to_be_bytes());
    k
}

fn load() -> (Tree, TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let tree = TreeBuilder::new().with_path(dir.path().to_path_buf()).build().expect("open tree");
    for chunk in 0..KEYS / LOAD_BATCH {
        let mut txn = tree.begin().expect("begin");
        for i in chunk * LOAD_BATCH..(chunk + 1) * LOAD_BATCH {
            txn.set(&hit_key(i), &VALUE).expect("set");
        }
        txn.commit_blocking().expect("commit");
    }
    (tree, dir)
}

fn read_benches(c: &mut Criterion) {
    let (tree, dir) = load();
    let txn = tree.begin_with_mode(Mode::ReadOnly).expect("begin read-only");

    // Sanity: the loaded keys are there and the miss keys are not.
    let mut check = SplitMix64(SEED ^ 1);
    for _ in 0..1_000 {
        let i = check.below(KEYS);
        let value = txn.get(&hit_key(i)).expect("get").expect("loaded key present");
        assert_eq!(value.as_ref(), VALUE.as_slice());
        assert!(txn.get(&miss_key(i)).expect("get").is_none(), "miss key absent");
    }

    let mut group = c.benchmark_group("read");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));

    let mut rng = SplitMix64(SEED);
    group.bench_function("memtable_point_get", |b| {
        b.iter(|| black_box(txn.get(&hit_key(rng.below(KEYS))).expect("get")));
    });

    let mut rng = SplitMix64(SEED);
    group.bench_function("memtable_point_get_miss", |b| {
        b.iter(|| black_box(txn.get(&miss_key(rng.below(KEYS))).expect("get")));
    });

    group.finish();
    drop(txn);
    tree.close().expect("close");
    drop(tree);
    drop(dir);
}

criterion_group!(benches, read_benches);
criterion_main!(benches);

//! Time travel: a point-in-time range scan against a plain range scan over the same keys.
//!
//! 10,000 keys with 100 versions each (explicit timestamps 1,000 apart), flushed and compacted
//! into tables. `range_now` reads the newest version of every key; `range_at_version` reads the
//! version in force at the middle of the history. Both walk the same keys; the target is the
//! point-in-time scan within 2x of the plain one, which needs seeking to the time bound rather
//! than stepping through the 50 newer versions of each key.
//!
//! `cargo bench -p strata --bench versioning`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use strata::TreeBuilder;

const KEYS: u64 = 10_000;
const VERSIONS: u64 = 100;

fn key(i: u64) -> [u8; 8] {
    i.to_be_bytes()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = TreeBuilder::new()
        .with_path(dir.path().to_path_buf())
        .with_versioning(true, 0)
        .build()
        .expect("opens");
    // Oldest versions first, one transaction per version round.
    for v in 0..VERSIONS {
        let mut txn = tree.begin().expect("begin");
        for i in 0..KEYS {
            txn.set_at_version(&key(i), &v.to_le_bytes(), (v + 1) * 1_000).expect("set");
        }
        txn.commit_blocking().expect("commit");
    }
    tree.maintenance_step(usize::MAX).expect("maintenance");
    let middle = VERSIONS / 2 * 1_000;
    let txn = tree.begin().expect("begin");
    // Sanity: both scans see every key, with the right version.
    let now: Vec<_> = txn.range(&key(0), &key(KEYS), None).expect("range").collect();
    assert_eq!(now.len() as u64, KEYS);
    let then: Vec<_> =
        txn.range_at_version(&key(0), &key(KEYS), middle, None).expect("range").collect();
    assert_eq!(then.len() as u64, KEYS);
    let v = then[0].as_ref().expect("read").1.clone();
    assert_eq!(u64::from_le_bytes(v.as_ref().try_into().expect("8 bytes")), VERSIONS / 2 - 1);
    let s = tree.stats();
    eprintln!("versioning bench: {} keys x {} versions; levels {:?}", KEYS, VERSIONS, s.levels);

    let mut g = c.benchmark_group("time_travel_10k_keys_100_versions");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(KEYS));
    g.bench_function("range_now", |b| {
        b.iter(|| {
            let n = txn.range(&key(0), &key(KEYS), None).expect("range").fold(0usize, |n, r| {
                black_box(r.expect("read"));
                n + 1
            });
            assert_eq!(n as u64, KEYS);
        })
    });
    g.bench_function("range_at_version", |b| {
        b.iter(|| {
            let n = txn.range_at_version(&key(0), &key(KEYS), middle, None).expect("range").fold(
                0usize,
                |n, r| {
                    black_box(r.expect("read"));
                    n + 1
                },
            );
            assert_eq!(n as u64, KEYS);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

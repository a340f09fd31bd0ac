//! Object put and get throughput through `StrataObjectStore`, for 1 KiB, 64 KiB and 4 MiB
//! objects, on the real filesystem, in two tree configurations: defaults (values in the LSM
//! tree) and the value log on (chunks in the log).
//!
//! `put` overwrites one of 16 paths in turn (so the database stays the same size and each put
//! also deletes the chunks it replaces); `get` reads a whole object from 16 written before.
//! Run: `cargo bench -p strata-adapters --features object-store --bench object_store`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata::TreeBuilder;
use strata_adapters::object_store::StrataObjectStore;

const SIZES: [(usize, &str); 3] = [(1024, "1KiB"), (64 * 1024, "64KiB"), (4 * 1024 * 1024, "4MiB")];
const PATHS: usize = 16;

fn store(dir: &tempfile::TempDir, vlog: bool) -> StrataObjectStore {
    let tree = TreeBuilder::new()
        .with_path(dir.path().to_path_buf())
        .with_enable_vlog(vlog)
        .build()
        .expect("tree");
    StrataObjectStore::new(tree).expect("store")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    for (vlog, config) in [(false, "lsm"), (true, "vlog")] {
        let mut group = c.benchmark_group(format!("object_store_{config}"));
        group.sample_size(20).measurement_time(std::time::Duration::from_secs(4));
        for (size, label) in SIZES {
            let data = bytes::Bytes::from((0..size).map(|i| (i % 251) as u8).collect::<Vec<_>>());
            let dir = tempfile::tempdir().expect("tempdir");
            let store = store(&dir, vlog);
            let paths: Vec<Path> =
                (0..PATHS).map(|i| Path::from(format!("bench/{i:02}"))).collect();
            group.throughput(Throughput::Bytes(size as u64));

            let mut n = 0usize;
            group.bench_function(BenchmarkId::new("put", label), |b| {
                b.iter(|| {
                    n += 1;
                    let path = &paths[n % PATHS];
                    rt.block_on(store.put(path, data.clone().into())).expect("put");
                })
            });

            let mut n = 0usize;
            group.bench_function(BenchmarkId::new("get", label), |b| {
                b.iter(|| {
                    n += 1;
                    let path = &paths[n % PATHS];
                    let bytes =
                        rt.block_on(async { store.get(path).await?.bytes().await }).expect("get");
                    black_box(bytes.len())
                })
            });
            store.tree().close().expect("close");
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! SQL through GlueSQL on Strata, side by side with GlueSQL's own sled and redb storages:
//! loading 100,000 rows in 1,000-row transactions, point selects by primary key and by a
//! secondary index, and two index range queries returning 1,000 rows.
//!
//! `cargo bench -p strata-adapters --features gluesql --bench sql`. Figures and caveats are
//! in `docs/performance.md` (GlueSQL's redb storage has no secondary indexes, so its "index"
//! queries are table scans with a filter; redb fsyncs every commit).

#![allow(clippy::unwrap_used)]
// GlueSQL deprecates its sled storage in favour of redb, but sled's is the one of its storages
// with secondary indexes, so it is the fair peer for the index queries.
#![allow(deprecated)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gluesql_core::prelude::{Glue, Payload};
use gluesql_core::store::{GStore, GStoreMut, Planner};
use gluesql_redb_storage::RedbStorage;
use gluesql_sled_storage::SledStorage;
use strata::{Durability, TreeBuilder};
use strata_adapters::gluesql::StrataStorage;

const ROWS: u64 = 100_000;
const ROWS_PER_TXN: u64 = 1_000;

/// The secondary column: a permutation of the ids, so index order is not primary-key order.
fn k_of(id: u64) -> u64 {
    (id * 7_919) % ROWS
}

fn load<T: GStore + GStoreMut + Planner>(glue: &mut Glue<T>, with_index: bool) {
    glue.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, k INTEGER, v TEXT)").unwrap();
    if with_index {
        glue.execute("CREATE INDEX t_k ON t (k)").unwrap();
    }
    for first in (0..ROWS).step_by(ROWS_PER_TXN as usize) {
        let values: Vec<String> = (first..first + ROWS_PER_TXN)
            .map(|id| format!("({id}, {}, 'value-{id:08}')", k_of(id)))
            .collect();
        glue.execute("BEGIN").unwrap();
        glue.execute(format!("INSERT INTO t VALUES {}", values.join(","))).unwrap();
        glue.execute("COMMIT").unwrap();
    }
}

fn rows_of(payloads: Vec<Payload>) -> usize {
    match payloads.into_iter().last() {
        Some(Payload::Select { rows, .. }) => rows.len(),
        other => panic!("not a select: {other:?}"),
    }
}

/// One engine under test: how to open a fresh database in a directory, and whether it can
/// have secondary indexes.
struct Engine<T> {
    name: &'static str,
    open: fn(&std::path::Path) -> T,
    indexes: bool,
}

fn strata_eventual(dir: &std::path::Path) -> StrataStorage {
    StrataStorage::new(TreeBuilder::new().with_path(dir.join("db")).build().unwrap())
}

fn strata_immediate(dir: &std::path::Path) -> StrataStorage {
    strata_eventual(dir).with_durability(Durability::Immediate)
}

fn sled(dir: &std::path::Path) -> SledStorage {
    SledStorage::new(dir.join("db")).unwrap()
}

fn redb(dir: &std::path::Path) -> RedbStorage {
    RedbStorage::new(dir.join("db")).unwrap()
}

fn bench_engine<T: GStore + GStoreMut + Planner>(c: &mut Criterion, engine: &Engine<T>) {
    let mut group = c.benchmark_group(format!("sql/{}", engine.name));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));

    group.bench_function("load 100k rows, 1k-row txns", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let mut glue = Glue::new((engine.open)(dir.path()));
                let start = Instant::now();
                load(&mut glue, engine.indexes);
                total += start.elapsed();
            }
            total
        });
    });

    let dir = tempfile::tempdir().unwrap();
    let mut glue = Glue::new((engine.open)(dir.path()));
    load(&mut glue, engine.indexes);
    let mut n = 0_u64;
    let mut next = || {
        n = (n + 7_777) % ROWS;
        n
    };

    group.measurement_time(Duration::from_secs(5));
    group.bench_function("point select by primary key", |b| {
        b.iter(|| {
            let sql = format!("SELECT v FROM t WHERE id = {}", next());
            assert_eq!(rows_of(glue.execute(black_box(sql)).unwrap()), 1);
        });
    });
    group.bench_function("point select by index", |b| {
        b.iter(|| {
            let sql = format!("SELECT v FROM t WHERE k = {}", next());
            assert_eq!(rows_of(glue.execute(black_box(sql)).unwrap()), 1);
        });
    });
    // GlueSQL hands the storage one predicate of an AND: this reads the index from `low` to
    // its end and filters the rest, so it shows per-entry cost rather than the range width.
    group.bench_function("index range, 1000 rows", |b| {
        b.iter(|| {
            let low = next() % (ROWS - 1_000);
            let sql = format!("SELECT v FROM t WHERE k >= {low} AND k < {}", low + 1_000);
            assert_eq!(rows_of(glue.execute(black_box(sql)).unwrap()), 1_000);
        });
    });
    group.bench_function("index prefix range k < 1000", |b| {
        b.iter(|| {
            let sql = "SELECT v FROM t WHERE k < 1000";
            assert_eq!(rows_of(glue.execute(black_box(sql)).unwrap()), 1_000);
        });
    });
    group.finish();
}

fn sql(c: &mut Criterion) {
    bench_engine(c, &Engine { name: "strata", open: strata_eventual, indexes: true });
    bench_engine(c, &Engine { name: "strata-immediate", open: strata_immediate, indexes: true });
    bench_engine(c, &Engine { name: "sled", open: sled, indexes: true });
    bench_engine(c, &Engine { name: "redb", open: redb, indexes: false });
}

criterion_group!(benches, sql);
criterion_main!(benches);

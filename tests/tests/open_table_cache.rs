//! The cache of open tables at its smallest: with room for two open tables and six tables
//! to read, point reads from several threads keep opening, sharing and evicting tables, and
//! every read still finds its value.

use std::sync::Arc;

use strata_core::{Engine, EngineOptions, LogicalClock, Mode, TxnCore};
use strata_vfs::MemFs;

const TABLES: usize = 6;
const KEYS_PER_TABLE: usize = 200;

fn key(t: usize, i: usize) -> Vec<u8> {
    // Interleaved, so every table spans the whole key range and a read may need any table.
    format!("k{:05}", i * TABLES + t).into_bytes()
}

fn value(t: usize, i: usize) -> Vec<u8> {
    format!("table {t} key {i}").into_bytes()
}

#[test]
fn reads_from_many_threads_through_an_open_table_cache_of_two() {
    let mut o = EngineOptions::default();
    o.max_open_tables = 2;
    // Keep the six level-0 tables as they are: no compaction merges them.
    o.l0_compaction_trigger = 100;
    o.l0_stop_trigger = 200;
    let engine =
        Arc::new(Engine::open(MemFs::new(), o, Arc::new(LogicalClock::default())).expect("open"));
    for t in 0..TABLES {
        let mut txn = TxnCore::begin(&*engine, Mode::ReadWrite).expect("begin");
        for i in 0..KEYS_PER_TABLE {
            txn.set(&key(t, i), &value(t, i)).expect("set");
        }
        engine.commit(txn.finish().expect("finish")).expect("commit");
        engine.flush_all().expect("flush");
    }
    assert_eq!(engine.levels().first().map(|l| l.files), Some(TABLES), "six level-0 tables");

    let readers: Vec<_> = (0..4)
        .map(|r| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                let txn = TxnCore::begin(&*engine, Mode::ReadOnly).expect("begin");
                for round in 0..5 {
                    for n in 0..TABLES * KEYS_PER_TABLE {
                        // Each reader walks the keys in its own order, table by table.
                        let n = (n * (2 * r + 1) + round * 7) % (TABLES * KEYS_PER_TABLE);
                        let (t, i) = (n % TABLES, n / TABLES);
                        let got = txn.get(&engine, &key(t, i)).expect("get");
                        assert_eq!(got.as_deref(), Some(&value(t, i)[..]), "reader {r}, {t}/{i}");
                    }
                }
            })
        })
        .collect();
    for r in readers {
        r.join().expect("a reader panicked");
    }
}

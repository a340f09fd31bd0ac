//! The model test across many flushes and compactions run by the background threads: 64 KiB
//! memtables, random transactions (set, delete, get, ranges both ways with limits), random
//! close and reopen, against a `BTreeMap` oracle, on MemFs and on a real directory.

use std::collections::BTreeMap;

use strata::{Tree, TreeBuilder};
use strata_tests::Rng;
use strata_vfs::MemFs;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn check_range(tree: &Tree, model: &Model, rng: &mut Rng, ctx: &str) {
    let a = format!("k{:04}", rng.below(2_000)).into_bytes();
    let b = format!("k{:04}", rng.below(2_000)).into_bytes();
    let limit = if rng.percent(30) { Some(rng.below(50) as usize) } else { None };
    let txn = tree.begin().expect("begin");
    let mut want: Vec<(Vec<u8>, Vec<u8>)> = if a < b {
        model.range(a.clone()..b.clone()).map(|(k, v)| (k.clone(), v.clone())).collect()
    } else {
        Vec::new()
    };
    let backward = rng.percent(50);
    if backward {
        want.reverse();
    }
    if let Some(n) = limit {
        want.truncate(n);
    }
    let it = txn.range(&a, &b, limit).expect("range");
    let got: Vec<(Vec<u8>, Vec<u8>)> = if backward {
        it.rev().map(|r| r.expect("read")).map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    } else {
        it.map(|r| r.expect("read")).map(|(k, v)| (k.to_vec(), v.to_vec())).collect()
    };
    assert!(
        got == want,
        "{ctx}: range {:?}..{:?} limit {limit:?} backward {backward}",
        String::from_utf8_lossy(&a),
        String::from_utf8_lossy(&b)
    );
}

fn workload(open: &dyn Fn() -> Tree, test: &str) {
    let seed = strata_tests::test_seed(test);
    let mut rng = Rng::new(seed);
    let mut model = Model::new();
    let mut tree = open();
    let rounds = strata_tests::scaled(1_500);
    let (mut flushes, mut compactions) = (0, 0);
    for round in 0..rounds {
        let ctx = format!("seed {seed} round {round}");
        let mut txn = tree.begin().expect("begin");
        let mut pending = Vec::new();
        for _ in 0..rng.range(1, 6) {
            let key = format!("k{:04}", rng.below(2_000)).into_bytes();
            if rng.percent(20) {
                txn.delete(&key).expect("delete");
                pending.push((key, None));
            } else {
                let len = rng.range(10, 1_500) as usize;
                let value = rng.bytes(len);
                txn.set(&key, &value).expect("set");
                pending.push((key, Some(value)));
            }
        }
        let probe = format!("k{:04}", rng.below(2_000)).into_bytes();
        let mine = pending.iter().rev().find(|(k, _)| *k == probe).map(|(_, v)| v.clone());
        let expected = mine.unwrap_or_else(|| model.get(&probe).cloned());
        assert_eq!(
            txn.get(&probe).expect("get").map(|v| v.to_vec()),
            expected,
            "{ctx}: own writes"
        );
        if rng.percent(10) {
            txn.rollback().expect("rollback");
        } else {
            txn.commit_blocking().expect("commit");
            for (k, v) in pending {
                match v {
                    Some(v) => model.insert(k, v),
                    None => model.remove(&k),
                };
            }
        }
        if round % 10 == 0 {
            check_range(&tree, &model, &mut rng, &ctx);
        }
        if rng.percent(1) {
            let s = tree.stats();
            flushes += s.flushes;
            compactions += s.compactions;
            tree.close().expect("close");
            drop(tree);
            tree = open();
            let txn = tree.begin().expect("begin");
            for (k, v) in model.iter().step_by(37) {
                assert_eq!(
                    txn.get(k).expect("get").as_deref(),
                    Some(v.as_slice()),
                    "{ctx}: after reopen"
                );
            }
        }
    }
    let s = tree.stats();
    flushes += s.flushes;
    compactions += s.compactions;
    let all: Model = tree
        .begin()
        .expect("begin")
        .range(b"", b"\xff", None)
        .expect("range")
        .map(|r| r.expect("read"))
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect();
    assert!(all == model, "seed {seed}: final state");
    eprintln!(
        "{test}: seed {seed}: {flushes} flushes, {compactions} compactions, levels {:?}",
        s.levels
    );
    assert!(flushes > 5, "the workload must cross many flushes");
    assert!(compactions > 0, "the workload must compact");
}

#[test]
fn model_on_memfs_with_background_threads() {
    let fs = MemFs::new();
    let open = move || {
        TreeBuilder::new()
            .with_vfs(fs.clone())
            .with_max_memtable_size(64 * 1024)
            .with_wal_segment_size(64 * 1024)
            .with_compaction_threads(2)
            .build()
            .expect("opens")
    };
    workload(&open, "model_on_memfs_with_background_threads");
}

#[test]
fn model_on_a_real_directory_with_background_threads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let open = move || {
        TreeBuilder::new()
            .with_path(path.clone())
            .with_max_memtable_size(64 * 1024)
            .with_block_cache_capacity(128 * 1024)
            .build()
            .expect("opens")
    };
    workload(&open, "model_on_a_real_directory_with_background_threads");
}

//! Regression: a flush that chose its memtable before another thread's flush of that same
//! memtable finished used to flush it a second time, putting its old versions in a level-0
//! table newer than the tables after it, so reads went back in time. Found by
//! `differential_configs` (a `get` after `Tree::flush` with background threads returned the
//! value before the last write).
//!
//! Several threads call `Tree::flush` (each flushing the oldest memtable) while one thread
//! overwrites one key with increasing values and the background flush thread runs too; after
//! every write the key must read back as just written, and at the end every flush must have
//! flushed a different memtable.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strata::TreeBuilder;
use strata_tests::scaled;
use strata_vfs::MemFs;

#[test]
fn a_memtable_flushed_by_another_thread_is_not_flushed_again() {
    let tree = TreeBuilder::new()
        .with_vfs(MemFs::new())
        .with_max_memtable_size(64 * 1024)
        .with_wal_segment_size(64 * 1024)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flushers: Vec<_> = (0..3)
        .map(|_| {
            let (tree, stop) = (tree.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    tree.flush().unwrap();
                }
            })
        })
        .collect();
    let filler = vec![7u8; 3000];
    let rounds = scaled(10_000);
    for i in 0..rounds {
        let mut txn = tree.begin().unwrap();
        txn.set(b"k", i.to_string().as_bytes()).unwrap();
        txn.set(format!("fill{}", i % 64).as_bytes(), &filler).unwrap();
        txn.commit_blocking().unwrap();
        let got = tree.begin().unwrap().get(b"k").unwrap();
        assert_eq!(
            got.as_deref(),
            Some(i.to_string().as_bytes()),
            "round {i}: the key went back in time"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for f in flushers {
        f.join().unwrap();
    }
    eprintln!("{rounds} rounds, {} flushes", tree.stats().flushes);
}

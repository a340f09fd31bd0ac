//! The kvdb adapter, proven by the suite Parity publishes for every `KeyValueDB`
//! (`kvdb-shared-tests`, all nine functions, each on a fresh database with the column count
//! it asks for), plus what that suite never checks: reopening, concurrent writers, lossless
//! errors.

use std::sync::Arc;

use kvdb::KeyValueDB;
use strata::{Tree, TreeBuilder};
use strata_adapters::kvdb::StrataKvdb;

fn open_tree(dir: &tempfile::TempDir) -> Tree {
    TreeBuilder::new().with_path(dir.path().to_path_buf()).build().expect("open tree")
}

/// A fresh database with `columns` columns in its own directory (kept alive with it).
fn fresh(columns: u32) -> (tempfile::TempDir, StrataKvdb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = StrataKvdb::open(open_tree(&dir), columns).expect("open kvdb");
    (dir, db)
}

#[test]
fn shared_put_and_get() -> std::io::Result<()> {
    kvdb_shared_tests::test_put_and_get(&fresh(1).1)
}

#[test]
fn shared_delete_and_get() -> std::io::Result<()> {
    kvdb_shared_tests::test_delete_and_get(&fresh(1).1)
}

#[test]
fn shared_get_fails_with_non_existing_column() -> std::io::Result<()> {
    kvdb_shared_tests::test_get_fails_with_non_existing_column(&fresh(1).1)
}

#[test]
fn shared_write_clears_buffered_ops() -> std::io::Result<()> {
    kvdb_shared_tests::test_write_clears_buffered_ops(&fresh(1).1)
}

#[test]
fn shared_iter() -> std::io::Result<()> {
    kvdb_shared_tests::test_iter(&fresh(1).1)
}

#[test]
fn shared_iter_with_prefix() -> std::io::Result<()> {
    kvdb_shared_tests::test_iter_with_prefix(&fresh(1).1)
}

#[test]
fn shared_io_stats() -> std::io::Result<()> {
    kvdb_shared_tests::test_io_stats(&fresh(kvdb_shared_tests::IO_STATS_NUM_COLUMNS).1)
}

#[test]
fn shared_delete_prefix() -> std::io::Result<()> {
    kvdb_shared_tests::test_delete_prefix(&fresh(kvdb_shared_tests::DELETE_PREFIX_NUM_COLUMNS).1)
}

#[test]
fn shared_complex() -> std::io::Result<()> {
    kvdb_shared_tests::test_complex(&fresh(1).1)
}

#[test]
fn data_survives_closing_and_reopening_the_tree() -> std::io::Result<()> {
    let dir = tempfile::tempdir()?;
    {
        let db = StrataKvdb::open(open_tree(&dir), 2)?;
        let mut batch = db.transaction();
        for i in 0u32..500 {
            batch.put(i % 2, &i.to_be_bytes(), format!("value {i}").as_bytes());
        }
        batch.delete_prefix(1, &[0, 0, 1]);
        db.write(batch)?;
        db.tree().close().map_err(strata_adapters::kvdb::to_io_error)?;
    }
    let db = StrataKvdb::open(open_tree(&dir), 2)?;
    assert_eq!(db.get(0, &10u32.to_be_bytes())?, Some(b"value 10".to_vec()));
    // Odd keys went to column 1, and those from 256 to 511 were deleted by prefix.
    assert_eq!(db.iter(0).count(), 250);
    let column1: Vec<_> = db.iter(1).collect::<std::io::Result<_>>()?;
    assert_eq!(column1.len(), 128);
    assert!(column1.iter().all(|(k, _)| k[2] == 0));
    assert_eq!(db.get(1, &301u32.to_be_bytes())?, None);
    Ok(())
}

#[test]
fn concurrent_writers_to_the_same_keys_lose_no_batch() -> std::io::Result<()> {
    // Four threads write overlapping batches: every batch puts 64 keys of its own and the
    // shared key 0, so transactions overlap long enough to conflict on key 0 and the adapter
    // must run the losers again. At the end every batch's keys are present, the shared key
    // holds one batch's marker, and Strata counted conflicts (the condition really happened).
    const THREADS: u32 = 4;
    const BATCHES: u32 = 100;
    let (_dir, db) = fresh(1);
    let db = Arc::new(db);
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || -> std::io::Result<()> {
                for i in 0..BATCHES {
                    let mut batch = db.transaction();
                    let marker = (t * 1_000_000 + i * 1000 + 1).to_be_bytes();
                    batch.put(0, &0u32.to_be_bytes(), &marker);
                    for j in 0..64 {
                        batch.put(0, &(t * 1_000_000 + i * 1000 + 1 + j).to_be_bytes(), &marker);
                    }
                    db.write(batch)?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread panicked")?;
    }
    let all: Vec<_> = db.iter(0).collect::<std::io::Result<_>>()?;
    assert_eq!(all.len(), (THREADS * BATCHES * 64 + 1) as usize);
    let shared = db.get(0, &0u32.to_be_bytes())?.expect("shared key");
    assert!(all.iter().any(|(k, _)| k.as_slice() == shared.as_slice()));
    assert_eq!(db.io_stats(kvdb::IoStatsKind::Overall).transactions, u64::from(THREADS * BATCHES));
    let conflicts = db.tree().stats().conflicts;
    eprintln!("write-write conflicts retried: {conflicts}");
    assert!(conflicts > 0, "the writers never overlapped; the test did not test retries");
    Ok(())
}

#[test]
fn unknown_columns_and_strata_errors_come_back_as_errors() {
    let (_dir, db) = fresh(2);
    let err = db.get(2, b"k").expect_err("column 2 does not exist");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(db.iter(7).next().expect("one item").is_err());
    let mut batch = db.transaction();
    batch.put(0, b"fine", b"v");
    batch.put(9, b"bad", b"v");
    assert!(db.write(batch).is_err());
    assert_eq!(db.get(0, b"fine").expect("read"), None, "a rejected batch writes nothing");

    // A key over Strata's limit: the Strata error travels inside the io error.
    let mut batch = db.transaction();
    batch.put(0, &vec![7u8; strata::MAX_KEY_SIZE + 1], b"v");
    let err = db.write(batch).expect_err("key too large");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<strata::Error>());
    assert!(matches!(inner, Some(strata::Error::KeyTooLarge { .. })), "{err:?}");
}

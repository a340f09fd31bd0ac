//! The kvdb adapter, proven by the suite Parity publishes for every `KeyValueDB`
//! (`kvdb-shared-tests`, all nine functions, each on a fresh database with the column count
//! it asks for), plus what that suite never checks: reopening, concurrent writers, lossless
//! errors.

use std::sync::{Arc, Barrier};

use kvdb::{DBTransaction, KeyValueDB};
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

/// Runs `batch(db, thread, i)` for `BATCHES` batches on each of `THREADS` threads, the
/// threads starting each batch together so that their batches overlap.
fn write_concurrently(db: &Arc<StrataKvdb>, batch: fn(&StrataKvdb, u32, u32) -> DBTransaction) {
    let start = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (db, start) = (Arc::clone(db), Arc::clone(&start));
            std::thread::spawn(move || -> std::io::Result<()> {
                for i in 0..BATCHES {
                    start.wait();
                    db.write(batch(&db, t, i))?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread panicked").expect("every batch commits");
    }
}

const THREADS: u32 = 4;
const BATCHES: u32 = 100;

fn key(tag: u8, thread: u32, i: u32) -> Vec<u8> {
    let mut k = vec![tag];
    k.extend_from_slice(&thread.to_be_bytes());
    k.extend_from_slice(&i.to_be_bytes());
    k
}

#[test]
fn concurrent_batches_writing_the_same_key_all_commit_without_conflicts() -> std::io::Result<()> {
    // Four threads write overlapping batches: every batch puts 64 keys of its own and the
    // shared key. kvdb batches are blind writes (RocksDB's write batches): none may fail
    // because another writer got there first, so none is a conflict and none is run twice.
    let (_dir, db) = fresh(1);
    let db = Arc::new(db);
    write_concurrently(&db, |db, t, i| {
        let mut batch = db.transaction();
        let marker = key(b'm', t, i);
        batch.put(0, b"shared", &marker);
        for j in 0..64 {
            batch.put(0, &key(b'o', t, i * 64 + j), &marker);
        }
        batch
    });
    let all: Vec<_> = db.iter(0).collect::<std::io::Result<_>>()?;
    assert_eq!(all.len(), (THREADS * BATCHES * 64 + 1) as usize);
    // The shared key holds the marker of a batch whose own keys are all there.
    let shared = db.get(0, b"shared")?.expect("shared key");
    let word =
        |at: usize| u32::from_be_bytes(shared[at..at + 4].try_into().expect("a marker is 9 bytes"));
    let (t, i) = (word(1), word(5));
    for j in 0..64 {
        assert_eq!(db.get(0, &key(b'o', t, i * 64 + j))?.as_deref(), Some(shared.as_slice()));
    }
    assert_eq!(db.io_stats(kvdb::IoStatsKind::Overall).transactions, u64::from(THREADS * BATCHES));
    assert_eq!(db.tree().stats().conflicts, 0, "a blind batch was treated as a conflict");
    Ok(())
}

#[test]
fn concurrent_delete_prefix_batches_delete_what_the_prefix_holds_at_their_commit()
-> std::io::Result<()> {
    // Round i: four batches start together, each deleting prefix "s" ++ i and then putting
    // one key under it (and 64 keys of its own elsewhere). Run one at a time, they leave
    // exactly one key under the prefix. Run together, each scans the prefix empty; a batch
    // whose scan missed a key another batch committed under the prefix must not commit beside
    // it (that key would survive its delete): it conflicts, runs again and deletes it. Strata
    // counts the conflicts, so the test also shows the batches really overlapped.
    let (_dir, db) = fresh(1);
    let db = Arc::new(db);
    write_concurrently(&db, |db, t, i| {
        let mut batch = db.transaction();
        let prefix = key(b's', i, 0);
        batch.delete_prefix(0, &prefix);
        batch.put(0, &[prefix.as_slice(), &t.to_be_bytes()].concat(), b"last");
        for j in 0..64 {
            batch.put(0, &key(b'o', t, i * 64 + j), b"own");
        }
        batch
    });
    for i in 0..BATCHES {
        let under: Vec<_> =
            db.iter_with_prefix(0, &key(b's', i, 0)).collect::<std::io::Result<_>>()?;
        assert_eq!(under.len(), 1, "round {i}: {under:?} under the prefix; one at a time leaves 1");
    }
    assert_eq!(db.iter_with_prefix(0, b"o").count(), (THREADS * BATCHES * 64) as usize);
    let conflicts = db.tree().stats().conflicts;
    eprintln!("conflicts retried: {conflicts}");
    assert!(conflicts > 0, "the batches never overlapped; the test did not test retries");
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

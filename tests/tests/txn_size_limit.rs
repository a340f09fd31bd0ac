//! `max_transaction_size`: a write that would make its transaction's encoded batch larger
//! fails with `TransactionTooLarge` when it is buffered, the transaction keeps its earlier
//! writes, and the largest transaction the limit allows goes through the WAL and the memtable
//! and survives a power cut.

use strata::{Durability, Error, MAX_KEY_SIZE, MAX_VALUE_SIZE, Tree, TreeBuilder};
use strata_core::batch::{HEADER_LEN, op_encoded_len};
use strata_vfs::{CrashPolicy, MemFs};

const LIMIT: usize = 64 * 1024;

fn tree(fs: &MemFs, limit: usize, versioning: bool) -> Tree {
    TreeBuilder::new()
        .with_vfs(fs.clone())
        .with_max_transaction_size(limit)
        .with_versioning(versioning, 0)
        .build()
        .expect("opens")
}

fn set_op(key: &[u8], value_len: usize) -> usize {
    op_encoded_len(key.len(), Some(value_len), false)
}

/// The value length whose SET op under a key of `key_len` bytes is exactly `op_len` bytes.
fn value_len_for_op(key_len: usize, op_len: usize) -> usize {
    let mut len = op_len;
    while op_encoded_len(key_len, Some(len), false) > op_len {
        len -= 1;
    }
    assert_eq!(op_encoded_len(key_len, Some(len), false), op_len, "no value length fits");
    len
}

#[test]
fn a_write_over_the_limit_fails_and_keeps_the_transaction_usable() {
    let fs = MemFs::new();
    let tree = tree(&fs, LIMIT, false);
    let mut txn = tree.begin().expect("begin");
    let value = vec![7u8; 10_000];
    let mut size = HEADER_LEN;
    for i in 0..6 {
        let key = format!("k{i}");
        txn.set(key.as_bytes(), &value).expect("fits");
        size += set_op(key.as_bytes(), value.len());
    }
    // The seventh would cross 64 KiB: refused with the size it would have reached.
    match txn.set(b"k6", &value) {
        Err(Error::TransactionTooLarge { size: got, max }) => {
            assert_eq!(got as usize, size + set_op(b"k6", value.len()));
            assert_eq!(max as usize, LIMIT);
        }
        other => panic!("expected TransactionTooLarge, got {other:?}"),
    }
    // Deletes count too.
    let huge_key = vec![b'd'; LIMIT - size];
    assert!(matches!(txn.delete(&huge_key), Err(Error::TransactionTooLarge { .. })));
    // Nothing of the refused writes was buffered; the earlier ones are intact.
    assert_eq!(txn.get(b"k6").expect("read"), None);
    assert_eq!(txn.get(b"k0").expect("read").as_deref(), Some(&value[..]));
    // Overwriting a key replaces its op: a smaller value shrinks the transaction, so a write
    // that did not fit before fits now.
    txn.set(b"k0", b"small").expect("shrinks");
    txn.set(b"k6", &value[..5_000]).expect("fits after the shrink");
    txn.commit_blocking().expect("commit");
    let check = tree.begin().expect("begin");
    assert_eq!(check.get(b"k0").expect("read").as_deref(), Some(&b"small"[..]));
    assert_eq!(check.get(b"k5").expect("read").as_deref(), Some(&value[..]));
    assert_eq!(check.get(b"k6").expect("read").as_deref(), Some(&value[..5_000]));
}

#[test]
fn a_transaction_of_exactly_the_limit_commits_and_one_byte_more_does_not() {
    let fs = MemFs::new();
    let tree = tree(&fs, LIMIT, false);
    let mut txn = tree.begin().expect("begin");
    let filler = value_len_for_op(1, LIMIT - HEADER_LEN - set_op(b"a", 100));
    txn.set(b"a", &[1u8; 100]).expect("fits");
    match txn.set(b"b", &vec![2u8; filler + 1]) {
        Err(Error::TransactionTooLarge { size, max }) => {
            assert_eq!((size as usize, max as usize), (LIMIT + 1, LIMIT))
        }
        other => panic!("one byte over: expected TransactionTooLarge, got {other:?}"),
    }
    txn.set(b"b", &vec![2u8; filler]).expect("exactly the limit fits");
    txn.commit_blocking().expect("commit");
    assert_eq!(
        tree.begin().expect("begin").get(b"b").expect("read").map(|v| v.len()),
        Some(filler)
    );
}

#[test]
fn versioned_writes_count_against_the_limit() {
    let fs = MemFs::new();
    let tree = tree(&fs, LIMIT, true);
    let mut txn = tree.begin().expect("begin");
    let value = vec![3u8; 30_000];
    txn.set_at_version(b"v", &value, 10).expect("fits");
    txn.set_at_version(b"v", &value, 20).expect("fits");
    match txn.set_at_version(b"v", &value, 30) {
        Err(Error::TransactionTooLarge { size, max }) => {
            let op = op_encoded_len(1, Some(value.len()), true);
            assert_eq!((size as usize, max as usize), (HEADER_LEN + 3 * op, LIMIT));
        }
        other => panic!("expected TransactionTooLarge, got {other:?}"),
    }
    // Rewriting the same version replaces it rather than adding one.
    txn.set_at_version(b"v", &value[..10], 20).expect("replaces");
    txn.set_at_version(b"v", &value[..10], 30).expect("fits now");
    txn.commit_blocking().expect("commit");
}

/// The default limit is the largest transaction a user gets without changing options: one
/// write of a maximum-size key and value plus filler up to exactly 512 MiB of batch. It must
/// go through the WAL (one record of 512 MiB) and the memtable, read back, and come back from
/// the WAL after a power cut. MemFs keeps it off the disk; peak memory is a few copies of it.
#[test]
fn the_largest_default_transaction_goes_through_the_wal_and_the_memtable() {
    let limit = strata_core::EngineOptions::default().max_transaction_size;
    assert_eq!(limit, 512 * 1024 * 1024, "the documented default");
    let fs = MemFs::new();
    // A memtable large enough that the transaction stays in it until the power cut, so the
    // reopen below must replay it from the WAL; no threads, so nothing flushes behind us.
    let tree = TreeBuilder::new()
        .with_vfs(fs.clone())
        .with_max_memtable_size(1024 * 1024 * 1024)
        .with_background_threads(false)
        .build()
        .expect("opens");
    let big_key = vec![b'K'; MAX_KEY_SIZE];
    let big_value: Vec<u8> = (0..MAX_VALUE_SIZE).map(|i| (i % 251) as u8).collect();
    let chunk = 16 * 1024 * 1024;
    let filler: Vec<u8> = (0..chunk).map(|i| (i % 241) as u8).collect();

    let mut txn = tree.begin().expect("begin");
    txn.set_durability(Durability::Immediate);
    txn.set(&big_key, &big_value).expect("a maximum-size write fits the default");
    let mut size = HEADER_LEN + set_op(&big_key, big_value.len());
    let mut fillers = Vec::new();
    while limit - size > set_op(b"f000", chunk) {
        let key = format!("f{:03}", fillers.len());
        txn.set(key.as_bytes(), &filler).expect("fits");
        size += set_op(key.as_bytes(), chunk);
        fillers.push((key, chunk));
    }
    let last = value_len_for_op(4, limit - size);
    let key = format!("f{:03}", fillers.len());
    match txn.set(key.as_bytes(), &filler[..last + 1]) {
        Err(Error::TransactionTooLarge { size, max }) => {
            assert_eq!((size as usize, max as usize), (limit + 1, limit))
        }
        other => panic!("one byte over the default: expected TransactionTooLarge, got {other:?}"),
    }
    txn.set(key.as_bytes(), &filler[..last]).expect("exactly the default limit fits");
    fillers.push((key, last));
    txn.commit_blocking().expect("the largest transaction commits");

    let check = |tree: &Tree, when: &str| {
        let r = tree.begin().expect("begin");
        let got = r.get(&big_key).expect("read").expect("present");
        assert!(got[..] == big_value[..], "{when}: the maximum-size value reads back exactly");
        for (key, len) in &fillers {
            let got = r.get(key.as_bytes()).expect("read").expect("present");
            assert!(got[..] == filler[..*len], "{when}: {key} reads back exactly");
        }
    };
    check(&tree, "from the memtable");
    assert!(tree.stats().levels.iter().all(|l| l.files == 0), "nothing flushed");

    // Power cut: the synced WAL record is all there is; reopen replays it.
    let image = fs.crash(CrashPolicy::DropUnsynced, 0);
    drop(tree);
    drop(fs);
    let reopened = TreeBuilder::new()
        .with_vfs(image)
        .with_max_memtable_size(1024 * 1024 * 1024)
        .with_background_threads(false)
        .build()
        .expect("recovers");
    check(&reopened, "after the power cut");
}

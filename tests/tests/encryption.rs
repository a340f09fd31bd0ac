//! Encryption at rest through the public API: no plaintext in any database file (on a real
//! directory and on `MemFs`), a wrong key refused at open, encrypted checkpoints (and a move to
//! a new key through one).
//!
//! The crash, model and fault suites run on `EncryptedFs<MemFs>` themselves (their `_encrypted`
//! tests: `crash_every_sync_point`, `crash_lsm_flush_compaction`, `fault_io_errors`,
//! `model_random_txns`, `vlog_crash`), so the power-cut and fault tests that used to live here
//! went there.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use strata::fs::StdFs;
use strata::vfs::{EncryptedFs, ErrorKind, MemFs, StaticKey, Vfs};
use strata::{Error, OsRandom, Tree, TreeBuilder};
use strata_tests::{Model, dump, tagged_value};

const KEY: [u8; 32] = *b"an example key of 32 bytes, hi!!";
const OTHER_KEY: [u8; 32] = [0x5A; 32];
/// The known value looked for in the files; long and not compressible away (compression is
/// off besides, so the unencrypted control run shows it verbatim).
const SECRET: &[u8] = b"PLAINTEXT-CANARY-7f3a9c";

fn secret_value(i: usize, big: bool) -> Vec<u8> {
    let mut v = SECRET.to_vec();
    v.extend_from_slice(format!("-{i:05}-").as_bytes());
    if big {
        v.extend(tagged_value(i as u64, 2000));
    }
    v
}

/// Small memtables, the value log on for values over 100 bytes, no compression.
fn small(b: TreeBuilder) -> TreeBuilder {
    b.with_max_memtable_size(64 * 1024)
        .with_compression(false)
        .with_enable_vlog(true)
        .with_vlog_value_threshold(100)
        .with_background_threads(false)
}

/// Writes 400 keys (small values in the tree, big ones in the value log) and returns them.
fn fill(tree: &Tree) -> Model {
    let mut model = Model::new();
    for batch in 0..20usize {
        let mut txn = tree.begin().unwrap();
        for j in 0..20usize {
            let i = batch * 20 + j;
            let (k, v) = (format!("key{i:05}").into_bytes(), secret_value(i, i % 3 == 0));
            txn.set(&k, &v).unwrap();
            model.insert(k, v);
        }
        txn.commit_blocking().unwrap();
        while tree.maintenance_step(8).unwrap() > 0 {}
    }
    model
}

fn contains_secret(bytes: &[u8]) -> bool {
    bytes.windows(SECRET.len()).any(|w| w == SECRET)
}

/// Names of the files in `dir` holding the secret.
fn leaking_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if contains_secret(&std::fs::read(&path).unwrap()) {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn no_plaintext_in_database_files_on_disk() {
    for encrypted in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = tempfile::tempdir().unwrap();
        let mut b = small(TreeBuilder::new().with_path(dir.path().join("db")));
        if encrypted {
            b = b.with_encryption_key(KEY);
        }
        let tree = b.clone().build().unwrap();
        let model = fill(&tree);
        tree.create_checkpoint(ckpt.path().join("c")).unwrap();
        tree.close().unwrap();
        drop(tree);
        let files = std::fs::read_dir(dir.path().join("db")).unwrap().count();
        let mut leaks = leaking_files(&dir.path().join("db"));
        leaks.extend(leaking_files(&ckpt.path().join("c")));
        if encrypted {
            assert!(leaks.is_empty(), "plaintext in {leaks:?}");
            let tree = b.build().unwrap();
            assert_eq!(dump(&tree).unwrap(), model, "everything reads back");
            eprintln!("encrypted database: {files} files, none holds the plaintext");
        } else {
            // The control: the same workload unencrypted shows the value, so the check bites.
            assert!(leaks.len() >= 2, "control run must leak the plaintext: {leaks:?}");
        }
    }
}

#[test]
fn no_plaintext_in_database_files_on_memfs() {
    let mem = MemFs::new();
    let tree =
        small(TreeBuilder::new().with_vfs(mem.clone()).with_encryption_key(KEY)).build().unwrap();
    let model = fill(&tree);
    let ckpt = MemFs::new();
    let ckpt_fs = EncryptedFs::open(ckpt.clone(), &StaticKey::new(KEY), OsRandom).unwrap();
    tree.create_checkpoint_in(ckpt_fs).unwrap();
    // Before close (WAL and memtable contents live) and after.
    for (label, fs) in [("live", &mem), ("checkpoint", &ckpt)] {
        let names = fs.list().unwrap();
        assert!(names.len() > 3, "{label}: {names:?}");
        for name in names {
            assert!(!contains_secret(&fs.read_all(&name).unwrap()), "{label}: plaintext in {name}");
        }
    }
    tree.close().unwrap();
    drop(tree);
    for name in mem.list().unwrap() {
        assert!(!contains_secret(&mem.read_all(&name).unwrap()), "plaintext in {name}");
    }
    let tree =
        small(TreeBuilder::new().with_vfs(mem.clone()).with_encryption_key(KEY)).build().unwrap();
    assert_eq!(dump(&tree).unwrap(), model);
}

fn put(tree: &Tree, k: &[u8], v: &[u8]) {
    let mut t = tree.begin().unwrap();
    t.set(k, v).unwrap();
    t.commit_blocking().unwrap();
}

fn wrong_key_kind(e: &Error) -> Option<ErrorKind> {
    match e {
        Error::Io { source, .. } => Some(source.kind()),
        _ => None,
    }
}

#[test]
fn wrong_key_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let tree = TreeBuilder::new().with_path(path.clone()).with_encryption_key(KEY).build().unwrap();
    put(&tree, b"k", SECRET);
    tree.close().unwrap();
    drop(tree);

    let err = TreeBuilder::new()
        .with_path(path.clone())
        .with_encryption_key(OTHER_KEY)
        .build()
        .expect_err("wrong key");
    assert_eq!(wrong_key_kind(&err), Some(ErrorKind::WrongKey), "{err:?}");
    assert!(err.to_string().contains("wrong encryption key"), "{err}");

    // Without a key the files are not readable either (CURRENT is ciphertext).
    let err = TreeBuilder::new().with_path(path.clone()).build().expect_err("no key");
    eprintln!("opened without the key: {err}");

    // The right key still opens it: the refused attempts changed nothing.
    let tree = TreeBuilder::new().with_path(path).with_encryption_key(KEY).build().unwrap();
    assert_eq!(tree.begin().unwrap().get(b"k").unwrap().as_deref(), Some(SECRET));

    // An unencrypted database is refused by a tree with a key, not read as ciphertext.
    let plain = dir.path().join("plain");
    let tree = TreeBuilder::new().with_path(plain.clone()).build().unwrap();
    put(&tree, b"k", b"v");
    tree.close().unwrap();
    drop(tree);
    let err = TreeBuilder::new()
        .with_path(plain.clone())
        .with_encryption_key(KEY)
        .build()
        .expect_err("unencrypted database");
    assert!(err.to_string().contains("no ENCRYPTION marker"), "{err}");
    let tree = TreeBuilder::new().with_path(plain).build().unwrap();
    assert_eq!(tree.begin().unwrap().get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

#[test]
fn checkpoint_is_encrypted_restores_with_the_key_and_moves_to_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let b = small(TreeBuilder::new().with_path(dir.path().join("db")).with_encryption_key(KEY));
    let tree = b.clone().build().unwrap();
    let model = fill(&tree);
    let ckpt = dir.path().join("ckpt");
    tree.create_checkpoint(&ckpt).unwrap();
    assert!(leaking_files(&ckpt).is_empty(), "the checkpoint is encrypted");
    assert!(ckpt.join("ENCRYPTION").exists(), "with the key check marker");

    // Restore: writes after the checkpoint disappear, the checkpoint's contents read back.
    put(&tree, b"after", b"checkpoint");
    tree.restore_from_checkpoint(&ckpt).unwrap();
    assert_eq!(dump(&tree).unwrap(), model);
    tree.close().unwrap();
    drop(tree);

    // The checkpoint opens as a database with the key, and only with it.
    let err = small(TreeBuilder::new().with_path(ckpt.clone()).with_encryption_key(OTHER_KEY))
        .build()
        .expect_err("wrong key on the checkpoint");
    assert_eq!(wrong_key_kind(&err), Some(ErrorKind::WrongKey));

    // Key rotation: copy into a directory encrypted under the new key, open that.
    let tree = b.build().unwrap();
    let rotated = dir.path().join("rotated");
    let dest =
        EncryptedFs::open(StdFs::open_dir(&rotated).unwrap(), &StaticKey::new(OTHER_KEY), OsRandom)
            .unwrap();
    tree.create_checkpoint_in(dest).unwrap();
    tree.close().unwrap();
    drop(tree);
    assert!(leaking_files(&rotated).is_empty());
    let moved = small(TreeBuilder::new().with_path(rotated.clone()).with_encryption_key(OTHER_KEY))
        .build()
        .unwrap();
    assert_eq!(dump(&moved).unwrap(), model);
    moved.close().unwrap();
    drop(moved);
    let err = small(TreeBuilder::new().with_path(rotated).with_encryption_key(KEY))
        .build()
        .expect_err("old key on the rotated copy");
    assert_eq!(wrong_key_kind(&err), Some(ErrorKind::WrongKey));
}

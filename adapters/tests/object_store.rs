//! The object_store adapter, proven by the conformance functions the `object_store` crate
//! publishes for third-party stores (feature `integration`): every exported function that
//! applies to an embedded store, each on a fresh store from a `#[tokio::test]`. Two
//! configurations: the default tree, and a tree with versioning (objects then have versions,
//! which `get_opts` exercises) and the value log on (chunks then live in the log).
//!
//! The one exported function not called is `response_extensions`: it exists only with the
//! crate's `reqwest` feature and checks that HTTP response extensions reach the caller, which
//! has no meaning for a store without HTTP.
//!
//! Then what the suite never checks: reopening, concurrent writers, aborted uploads leaving
//! nothing behind, lossless errors, and the worked example of docs/format/object_store.md.

use std::sync::Arc;

use object_store::integration as suite;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use strata::{Tree, TreeBuilder};
use strata_adapters::object_store::{CHUNK_SIZE, StrataObjectStore};

fn tree(dir: &tempfile::TempDir, versioned: bool) -> Tree {
    let builder = TreeBuilder::new().with_path(dir.path().to_path_buf());
    let builder =
        if versioned { builder.with_versioning(true, 0).with_enable_vlog(true) } else { builder };
    builder.build().expect("open tree")
}

/// A fresh store in its own directory (kept alive with it).
fn fresh(versioned: bool) -> (tempfile::TempDir, StrataObjectStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StrataObjectStore::new(tree(&dir, versioned)).expect("store");
    (dir, store)
}

/// One `#[tokio::test]` per suite function and configuration.
macro_rules! conformance {
    ($($name:ident: |$s:ident| $call:expr;)*) => {
        mod plain {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_dir, $s) = fresh(false);
                $call;
            })*
        }
        mod versioned {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (_dir, $s) = fresh(true);
                $call;
            })*
        }
    };
}

conformance! {
    put_get_delete_list: |s| suite::put_get_delete_list(&s).await;
    put_get_attributes: |s| suite::put_get_attributes(&s).await;
    get_opts: |s| suite::get_opts(&s).await;
    put_opts: |s| suite::put_opts(&s, true).await;
    stream_get: |s| suite::stream_get(&s).await;
    list_uses_directories_correctly: |s| suite::list_uses_directories_correctly(&s).await;
    list_with_delimiter: |s| suite::list_with_delimiter(&s).await;
    get_nonexistent_object: |s| {
        let err = suite::get_nonexistent_object(&s, None).await.expect_err("no such object");
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    };
    rename_and_copy: |s| suite::rename_and_copy(&s).await;
    copy_if_not_exists: |s| suite::copy_if_not_exists(&s).await;
    copy_rename_nonexistent_object: |s| suite::copy_rename_nonexistent_object(&s).await;
    multipart: |s| suite::multipart(&s, &s).await;
    multipart_with_opts: |s| suite::multipart_with_opts(&s, &s).await;
    multipart_put_part_out_of_order: |s| suite::multipart_put_part_out_of_order(&s, &s).await;
    multipart_race_condition: |s| suite::multipart_race_condition(&s, true).await;
    multipart_out_of_order: |s| suite::multipart_out_of_order(&s).await;
    list_paginated: |s| suite::list_paginated(&s, &s).await;
    list_with_offset_exclusivity: |s| suite::list_with_offset_exclusivity(&s).await;
}

async fn bytes_of(store: &StrataObjectStore, path: &Path) -> object_store::Result<bytes::Bytes> {
    store.get(path).await?.bytes().await
}

#[tokio::test]
async fn objects_survive_closing_and_reopening_the_tree() -> object_store::Result<()> {
    let dir = tempfile::tempdir().expect("tempdir");
    let big: Vec<u8> = (0..3 * CHUNK_SIZE + 17).map(|i| (i % 251) as u8).collect();
    let (small_tag, big_tag) = {
        let store = StrataObjectStore::new(tree(&dir, false))?;
        let small = store.put(&Path::from("a/small"), "tiny".into()).await?;
        let big_put = store.put(&Path::from("a/big"), big.clone().into()).await?;
        let mut upload = store.put_multipart(&Path::from("a/staged")).await?;
        upload.put_part(vec![1u8; 10].into()).await?;
        store.tree().close().expect("close");
        (small.e_tag, big_put.e_tag)
    };
    let store = StrataObjectStore::new(tree(&dir, false))?;
    assert_eq!(bytes_of(&store, &Path::from("a/small")).await?, "tiny");
    assert_eq!(bytes_of(&store, &Path::from("a/big")).await?, big);
    assert_eq!(store.head(&Path::from("a/small")).await?.e_tag, small_tag);
    assert_eq!(store.head(&Path::from("a/big")).await?.e_tag, big_tag);
    let range = store
        .get_range(&Path::from("a/big"), 2 * CHUNK_SIZE as u64 - 3..2 * CHUNK_SIZE as u64 + 5)
        .await?;
    assert_eq!(range.as_ref(), &big[2 * CHUNK_SIZE - 3..2 * CHUNK_SIZE + 5]);
    // The unfinished upload is not an object.
    let listed: Vec<_> =
        futures_util::TryStreamExt::try_collect::<Vec<_>>(store.list(None)).await?;
    assert_eq!(listed.len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conditional_writers_from_threads_lose_no_update() {
    // Like the suite's RACE case, but from several OS threads with their own runtimes'
    // tasks, so commits really interleave: every increment is applied exactly once.
    let (_dir, store) = fresh(false);
    let store = Arc::new(store);
    let path = Path::from("counter");
    store.put(&path, "0".into()).await.expect("seed");
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            let path = path.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    loop {
                        let current = store.get(&path).await.expect("get");
                        let e_tag = current.meta.e_tag.clone();
                        let n: u64 = std::str::from_utf8(&current.bytes().await.expect("bytes"))
                            .expect("utf8")
                            .parse()
                            .expect("number");
                        let mode =
                            PutMode::Update(object_store::UpdateVersion { e_tag, version: None });
                        match store.put_opts(&path, (n + 1).to_string().into(), mode.into()).await {
                            Ok(_) => break,
                            Err(object_store::Error::Precondition { .. }) => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(bytes_of(&store, &path).await.expect("read"), "100");
}

#[test]
fn concurrent_overwrites_leave_one_whole_object_and_no_stray_chunks() {
    // Four OS threads overwrite one path with 2 MiB objects of their own byte. The writes
    // overlap (Strata counts the conflicts; the test insists some happened), the losers run
    // again, and at the end the object is one writer's bytes throughout and exactly its two
    // chunks remain: no chunk of a replaced or retried write is left behind.
    let (_dir, store) = fresh(false);
    let store = Arc::new(store);
    let path = Path::from("contended");
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let (store, path) = (Arc::clone(&store), path.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
                for _ in 0..20 {
                    rt.block_on(store.put(&path, vec![t; 2 * CHUNK_SIZE].into())).expect("put");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer panicked");
    }
    let conflicts = store.tree().stats().conflicts;
    eprintln!("write-write conflicts retried: {conflicts}");
    assert!(conflicts > 0, "the writers never overlapped; the test did not test retries");
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let data = rt.block_on(bytes_of(&store, &path)).expect("get");
    assert_eq!(data.len(), 2 * CHUNK_SIZE);
    assert!(data.iter().all(|b| *b == data[0]), "bytes of two writes mixed");
    assert_eq!(adapter_keys(&store).len(), 3, "one record and two chunks");
}

/// Every key the adapter has in the tree.
fn adapter_keys(store: &StrataObjectStore) -> Vec<Vec<u8>> {
    let txn = store.tree().begin().expect("begin");
    txn.keys(b"objstore\0", b"objstore\x01", None)
        .expect("keys")
        .map(|k| k.expect("key").to_vec())
        .collect()
}

#[tokio::test]
async fn abort_overwrite_and_delete_leave_no_chunks_behind() -> object_store::Result<()> {
    let (_dir, store) = fresh(false);
    let path = Path::from("obj");
    let mut upload = store.put_multipart(&path).await?;
    upload.put_part(vec![7u8; CHUNK_SIZE + 1].into()).await?;
    upload.put_part(vec![8u8; 100].into()).await?;
    upload.abort().await?;
    assert!(adapter_keys(&store).is_empty(), "abort left {:?}", adapter_keys(&store).len());

    store.put(&path, vec![1u8; 2 * CHUNK_SIZE].into()).await?;
    assert_eq!(adapter_keys(&store).len(), 3, "a record and two chunks");
    store.put(&path, vec![2u8; 10_000].into()).await?;
    assert_eq!(adapter_keys(&store).len(), 2, "the old chunks went with the overwrite");
    store.rename(&path, &Path::from("moved")).await?;
    assert_eq!(adapter_keys(&store).len(), 2, "a rename moves the record only");
    store.delete(&Path::from("moved")).await?;
    assert!(adapter_keys(&store).is_empty());
    Ok(())
}

#[tokio::test]
async fn errors_keep_strata_kind_and_message() {
    let (_dir, store) = fresh(false);
    // A version on a tree without history: Strata's VersioningDisabled, kept as the source.
    let err = store
        .get_opts(&Path::from("x"), object_store::GetOptions::new().with_version(Some("5")))
        .await
        .expect_err("no history");
    let object_store::Error::NotSupported { source } = &err else { panic!("{err:?}") };
    assert!(matches!(
        source.downcast_ref::<strata::Error>(),
        Some(strata::Error::VersioningDisabled)
    ));
    assert!(err.to_string().contains(&strata::Error::VersioningDisabled.to_string()));

    // A path longer than Strata's key limit.
    let long = Path::from("k".repeat(strata::MAX_KEY_SIZE + 1));
    let err = store.put(&long, "v".into()).await.expect_err("key too large");
    let object_store::Error::Generic { store: name, source } = &err else { panic!("{err:?}") };
    assert_eq!(*name, "Strata");
    assert!(matches!(
        source.downcast_ref::<strata::Error>(),
        Some(strata::Error::KeyTooLarge { .. })
    ));
}

#[tokio::test]
async fn versions_read_the_past_and_guard_updates() -> object_store::Result<()> {
    let (_dir, store) = fresh(true);
    let path = Path::from("doc");
    let v1 = store.put(&path, vec![1u8; CHUNK_SIZE + 5].into()).await?;
    let v2 = store.put(&path, "second".into()).await?;
    let (Some(first), Some(second)) = (v1.version.clone(), v2.version.clone()) else {
        panic!("a versioned tree gives versions: {v1:?} {v2:?}");
    };
    assert!(first.parse::<u64>().expect("ts") < second.parse::<u64>().expect("ts"));
    let old = store
        .get_opts(&path, object_store::GetOptions::new().with_version(Some(first.clone())))
        .await?;
    assert_eq!(
        old.bytes().await?,
        vec![1u8; CHUNK_SIZE + 5],
        "the chunks of the first version are still readable"
    );
    let stale = PutMode::Update(object_store::UpdateVersion { e_tag: None, version: Some(first) });
    let err = store.put_opts(&path, "third".into(), stale.into()).await.expect_err("stale version");
    assert!(matches!(err, object_store::Error::Precondition { .. }), "{err}");
    let fresh = PutMode::Update(object_store::UpdateVersion { e_tag: None, version: Some(second) });
    store.put_opts(&path, "third".into(), fresh.into()).await?;
    assert_eq!(bytes_of(&store, &path).await?, "third");
    Ok(())
}

#[test]
fn put_payload_of_several_pieces_is_one_object() {
    // The payload type can hold several buffers; they are stored as one object.
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let (_dir, store) = fresh(false);
        let payload = PutPayload::from_iter([
            bytes::Bytes::from_static(b"ab"),
            bytes::Bytes::from_static(b"cd"),
        ]);
        store.put(&Path::from("p"), payload).await.expect("put");
        assert_eq!(bytes_of(&store, &Path::from("p")).await.expect("get"), "abcd");
    });
}

#[tokio::test]
async fn a_put_over_the_transaction_limit_is_refused_and_multipart_goes_beyond_it()
-> object_store::Result<()> {
    // A tree whose transactions hold at most 3 MiB: a 4 MiB put is refused with Strata's
    // TransactionTooLarge kept as the source, writing nothing; the same bytes as two 2 MiB
    // parts (one transaction each) become one 4 MiB object.
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = TreeBuilder::new()
        .with_path(dir.path().to_path_buf())
        .with_max_transaction_size(3 * CHUNK_SIZE)
        .build()
        .expect("tree");
    let store = StrataObjectStore::new(tree)?;
    let path = Path::from("big");
    let err = store.put(&path, vec![9u8; 4 * CHUNK_SIZE].into()).await.expect_err("over the limit");
    let object_store::Error::Generic { source, .. } = &err else { panic!("{err:?}") };
    assert!(
        matches!(
            source.downcast_ref::<strata::Error>(),
            Some(strata::Error::TransactionTooLarge { .. })
        ),
        "{err}"
    );
    assert!(adapter_keys(&store).is_empty(), "a refused put writes nothing");

    let mut upload = store.put_multipart(&path).await?;
    upload.put_part(vec![9u8; 2 * CHUNK_SIZE].into()).await?;
    upload.put_part(vec![9u8; 2 * CHUNK_SIZE].into()).await?;
    upload.complete().await?;
    assert_eq!(bytes_of(&store, &path).await?, vec![9u8; 4 * CHUNK_SIZE]);
    Ok(())
}

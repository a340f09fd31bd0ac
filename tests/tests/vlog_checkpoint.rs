//! Checkpoints of a database with a value log: a checkpoint keeps every value it needs while
//! the live tree overwrites, compacts and garbage-collects the files it was taken from; restore
//! installs its value log files (and the live tree's own GC then leaves the checkpoint alone);
//! new value log files after a restore never collide with restored ones; a damaged value log
//! file in a checkpoint is refused before the live database is touched.
//!
//! Everything runs on real directories: checkpoints hard-link the live files, which is the
//! case where a live deletion and a checkpoint's copy share an inode.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strata::{Error, Tree, TreeBuilder};
use strata_tests::{
    Model, Rng, diff, dump, file_sizes, scaled, soak_factor, tagged_value, test_seed,
};
use strata_vfs::MemFs;

fn builder(dir: &Path) -> TreeBuilder {
    TreeBuilder::new()
        .with_path(dir.to_path_buf())
        .with_enable_vlog(true)
        .with_vlog_value_threshold(1024)
        .with_vlog_max_file_size(1024 * 1024)
        .with_vlog_gc_discard_ratio(0.5)
        .with_max_memtable_size(64 * 1024)
        .with_wal_segment_size(64 * 1024)
        .with_background_threads(false)
}

fn open(dir: &Path) -> Tree {
    builder(dir).build().unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// Applies `writes` (`None` deletes) in transactions of 16, to the tree and the model.
fn apply(tree: &Tree, model: &mut Model, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
    for chunk in writes.chunks(16) {
        let mut t = tree.begin().expect("begin");
        for (k, v) in chunk {
            match v {
                Some(v) => {
                    t.set(k, v).expect("set");
                    model.insert(k.clone(), v.clone());
                }
                None => {
                    t.delete(k).expect("delete");
                    model.remove(k);
                }
            }
        }
        t.commit_blocking().expect("commit");
    }
}

/// `n` keys, mostly large values (in the log), some small (inline), tags from `tag0`.
fn load(tree: &Tree, model: &mut Model, n: u64, tag0: u64) {
    let writes: Vec<_> = (0..n)
        .map(|i| {
            let len = if i % 7 == 0 { 200 } else { 1500 + (i as usize * 131) % 4000 };
            (key(i), Some(tagged_value(tag0 + i, len)))
        })
        .collect();
    apply(tree, model, &writes);
}

/// Overwrites or deletes every key but each tenth: every value log file written so far is
/// about 90% dead.
fn churn(tree: &Tree, model: &mut Model, n: u64, tag0: u64) {
    let writes: Vec<_> = (0..n)
        .filter(|i| i % 10 != 3)
        .map(|i| {
            let v = (i % 5 != 0).then(|| tagged_value(tag0 + i, 1200 + (i as usize * 17) % 3000));
            (key(i), v)
        })
        .collect();
    apply(tree, model, &writes);
}

fn vlog_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .filter(|n| n.ends_with(".vlog"))
        .collect()
}

/// Background GC may delete a file between the listing and its stat; it then counts as gone.
fn vlog_bytes_on_disk(dir: &Path) -> u64 {
    file_sizes(dir)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".vlog"))
        .map(|(_, len)| len)
        .sum()
}

/// Compaction (inline, background threads off) and GC until a GC run collects nothing more;
/// returns the files deleted.
fn compact_and_gc(tree: &Tree) -> u64 {
    let mut deleted = 0;
    for _ in 0..10 {
        tree.maintenance_step(usize::MAX).expect("maintenance");
        let r = tree.run_vlog_gc().expect("gc");
        deleted += r.files_deleted;
        if r.files_collected == 0 {
            break;
        }
    }
    deleted
}

/// Opens `dir` (a checkpoint) as a database and checks it holds exactly `want`; closes it.
fn check_checkpoint(dir: &Path, want: &Model, ctx: &str) {
    let t = open(dir);
    let got = dump(&t).unwrap_or_else(|e| panic!("{ctx}: dump of the checkpoint: {e}"));
    assert!(got == *want, "{ctx}: checkpoint contents: {}", diff(want, &got));
    t.close().expect("close");
}

/// Files, bytes and the manifest's view of them agree.
fn check_files(tree: &Tree, dir: &Path, ctx: &str) {
    let s = tree.stats();
    assert_eq!(s.vlog_files, vlog_names(dir).len(), "{ctx}: files the manifest names vs on disk");
    assert_eq!(s.vlog_disk_bytes, vlog_bytes_on_disk(dir), "{ctx}: vlog bytes");
}

/// Issue #6 item 4: a checkpoint stays intact while the live tree's GC deletes the value log
/// files it was taken from; restoring it, and GC on the restored tree, leave it intact too.
#[test]
fn checkpoint_survives_live_gc_and_restore_then_gc() {
    let root = tempfile::tempdir().expect("tempdir");
    let db = root.path().join("db");
    let ckpt = root.path().join("ckpt");
    let tree = open(&db);
    let mut model = Model::new();
    load(&tree, &mut model, 600, 0);
    // Some history the checkpoint holds: deletes and a second version of a few keys.
    churn(&tree, &mut model, 60, 10_000);
    let at_checkpoint = model.clone();
    tree.create_checkpoint(&ckpt).expect("checkpoint");
    let ckpt_vlogs = vlog_names(&ckpt);
    assert!(ckpt_vlogs.len() >= 2, "the checkpoint holds several value log files: {ckpt_vlogs:?}");

    // The live tree moves on and collects the files the checkpoint holds.
    churn(&tree, &mut model, 600, 20_000);
    let deleted = compact_and_gc(&tree);
    assert!(deleted >= 2, "live GC deleted files: {deleted}");
    let live_vlogs = vlog_names(&db);
    assert!(
        live_vlogs.is_disjoint(&ckpt_vlogs),
        "every file the checkpoint holds was collected in the live tree: live {live_vlogs:?}, \
         checkpoint {ckpt_vlogs:?}"
    );
    assert_eq!(dump(&tree).expect("dump"), model);
    check_files(&tree, &db, "live after gc");
    check_checkpoint(&ckpt, &at_checkpoint, "after live gc");

    // Restore it, then collect garbage on the restored tree: the restored files are links to
    // the checkpoint's.
    tree.restore_from_checkpoint(&ckpt).expect("restore");
    let mut model = at_checkpoint.clone();
    assert!(dump(&tree).expect("dump") == model, "restored state");
    check_files(&tree, &db, "after restore");
    churn(&tree, &mut model, 600, 30_000);
    let deleted = compact_and_gc(&tree);
    assert!(deleted >= 2, "GC on the restored tree deleted files: {deleted}");
    assert!(dump(&tree).expect("dump") == model, "restored tree after gc");
    check_files(&tree, &db, "restored tree after gc");
    check_checkpoint(&ckpt, &at_checkpoint, "after restore and gc on the restored tree");

    // And across a reopen of the live tree.
    tree.close().expect("close");
    drop(tree);
    let tree = open(&db);
    assert!(dump(&tree).expect("dump") == model, "after reopen");
    check_files(&tree, &db, "after reopen");
    drop(tree);
    // Restorable still (it was only read).
    let other = open(&root.path().join("other"));
    other.restore_from_checkpoint(&ckpt).expect("restore elsewhere");
    assert!(dump(&other).expect("dump") == at_checkpoint);
}

/// A checkpoint taken while a snapshot keeps collected files alive: it must not depend on
/// files about to be deleted, and it restores.
#[test]
fn checkpoint_while_collected_files_await_deletion() {
    let root = tempfile::tempdir().expect("tempdir");
    let db = root.path().join("db");
    let tree = open(&db);
    let mut model = Model::new();
    load(&tree, &mut model, 500, 0);
    let old = model.clone();
    let reader = tree.begin_with_mode(strata::Mode::ReadOnly).expect("begin");
    churn(&tree, &mut model, 500, 5_000);
    let r = tree.run_vlog_gc().expect("gc");
    assert!(r.files_collected >= 1 && r.files_deleted == 0, "held by the reader: {r:?}");
    let ckpt = root.path().join("ckpt");
    tree.create_checkpoint(&ckpt).expect("checkpoint");
    let at_checkpoint = model.clone();
    // The reader still sees its snapshot.
    for (k, v) in old.iter().step_by(37) {
        assert_eq!(reader.get(k).expect("get").as_deref(), Some(&v[..]));
    }
    let deleted_before = tree.stats().vlog_deleted_files;
    drop(reader);
    churn(&tree, &mut model, 500, 9_000);
    compact_and_gc(&tree);
    // With the reader gone, the file it held and at least one collected since are deleted:
    // by a GC run or by the compactions before it (counted in the statistics either way;
    // which one deletes them depends on where the memtables happened to fill).
    let deleted = tree.stats().vlog_deleted_files - deleted_before;
    assert!(deleted >= 2, "value log files deleted after the reader ended: {deleted}");
    check_checkpoint(&ckpt, &at_checkpoint, "pending files");
    tree.restore_from_checkpoint(&ckpt).expect("restore");
    assert!(dump(&tree).expect("dump") == at_checkpoint);
    check_files(&tree, &db, "after restore");
}

/// After a restore, new large values go to new value log files whose ids collide with no
/// restored file: written, compacted, collected, reopened, everything reads back. Restores
/// into the source database itself, into a fresh database (lower file numbers than the
/// checkpoint's ids) and into a database with many more files (higher numbers).
#[test]
fn new_values_after_restore_never_collide_with_restored_files() {
    let seed = test_seed("vlog_checkpoint_ids");
    let root = tempfile::tempdir().expect("tempdir");
    let src = root.path().join("src");
    let ckpt = root.path().join("ckpt");
    let mut model = Model::new();
    {
        let tree = open(&src);
        load(&tree, &mut model, 400, 0);
        churn(&tree, &mut model, 400, 1_000);
        compact_and_gc(&tree);
        tree.create_checkpoint(&ckpt).expect("checkpoint");
        // The source moves on (more files, more numbers) before it is restored into.
        let mut scratch = model.clone();
        churn(&tree, &mut scratch, 400, 2_000);
        tree.close().expect("close");
    }
    let at_checkpoint = model;

    let fresh = root.path().join("fresh");
    let big = root.path().join("big");
    {
        // Many files: numbers far above the checkpoint's ids.
        let tree = open(&big);
        let mut m = Model::new();
        for round in 0..4 {
            load(&tree, &mut m, 400, 100_000 * (round + 1));
            compact_and_gc(&tree);
        }
        tree.close().expect("close");
    }
    for (name, target) in [("source", &src), ("fresh", &fresh), ("many files", &big)] {
        let mut rng = Rng::new(seed ^ name.len() as u64);
        let tree = open(target);
        tree.restore_from_checkpoint(&ckpt).unwrap_or_else(|e| panic!("{name}: restore: {e}"));
        let mut model = at_checkpoint.clone();
        assert!(dump(&tree).expect("dump") == model, "{name}: restored");
        // New large values, enough for several new files; some rewrite restored keys, some
        // are new keys.
        let writes: Vec<_> = (0..900u64)
            .map(|i| {
                let k = if rng.percent(50) { key(rng.below(400)) } else { key(1000 + i) };
                (k, Some(tagged_value(500_000 + i, 1024 + rng.index(4000))))
            })
            .collect();
        apply(&tree, &mut model, &writes);
        let got = dump(&tree).expect("dump");
        assert!(got == model, "{name}: after new writes: {}", diff(&model, &got));
        check_files(&tree, target, name);
        tree.close().expect("close");
        drop(tree);
        let tree = open(target);
        let got = dump(&tree).expect("dump");
        assert!(got == model, "{name}: after reopen: {}", diff(&model, &got));
        churn(&tree, &mut model, 400, 700_000);
        compact_and_gc(&tree);
        let got = dump(&tree).expect("dump");
        assert!(got == model, "{name}: after gc: {}", diff(&model, &got));
        check_files(&tree, target, name);
        tree.close().expect("close");
        drop(tree);
        let tree = open(target);
        assert!(dump(&tree).expect("dump") == model, "{name}: after gc and reopen");
        tree.close().expect("close");
        check_checkpoint(&ckpt, &at_checkpoint, name);
    }
}

/// Copies a checkpoint directory (so damage to the copy never reaches the live files it was
/// hard-linked from).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("list") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

/// A damaged value log file in a checkpoint: restore fails with a corruption error naming the
/// file, and the live database is untouched (same contents, still writable, reopens).
#[test]
fn damaged_vlog_file_in_a_checkpoint_is_refused_and_the_live_db_is_untouched() {
    let root = tempfile::tempdir().expect("tempdir");
    let db = root.path().join("db");
    let tree = open(&db);
    let mut model = Model::new();
    load(&tree, &mut model, 400, 0);
    let good = root.path().join("good");
    tree.create_checkpoint(&good).expect("checkpoint");
    churn(&tree, &mut model, 400, 50_000);
    let live = model.clone();
    let names: Vec<String> = vlog_names(&good).into_iter().collect();
    assert!(names.len() >= 2);
    let mut cases = 0;
    for name in &names {
        let len = std::fs::metadata(good.join(name)).expect("stat").len() as usize;
        for how in ["flip-record", "flip-header", "truncate", "remove"] {
            let bad: PathBuf = root.path().join(format!("bad-{name}-{how}"));
            copy_dir(&good, &bad);
            let f = bad.join(name);
            match how {
                "flip-record" | "flip-header" => {
                    let mut b = std::fs::read(&f).expect("read");
                    let at = if how == "flip-header" { 3 } else { len / 2 };
                    b[at] ^= 0x04;
                    std::fs::write(&f, b).expect("write");
                }
                "truncate" => {
                    let b = std::fs::read(&f).expect("read");
                    std::fs::write(&f, &b[..len - 5]).expect("write");
                }
                _ => std::fs::remove_file(&f).expect("remove"),
            }
            match tree.restore_from_checkpoint(&bad) {
                Err(Error::Corruption { file, .. }) => {
                    assert_eq!(&file, name, "{how}: the error names the damaged file");
                }
                other => panic!("{name} {how}: expected a corruption error, got {other:?}"),
            }
            let got = dump(&tree).expect("dump");
            assert!(got == live, "{name} {how}: live database changed: {}", diff(&live, &got));
            cases += 1;
        }
    }
    // Still writable, and everything survives a reopen.
    let mut model = live;
    churn(&tree, &mut model, 50, 90_000);
    tree.close().expect("close");
    drop(tree);
    let tree = open(&db);
    assert!(dump(&tree).expect("dump") == model);
    check_files(&tree, &db, "after refused restores");
    // The intact checkpoint restores.
    tree.restore_from_checkpoint(&good).expect("restore");
    eprintln!("{cases} damaged checkpoints refused");
}

/// Checkpoints taken while writers commit large values and background threads flush, compact
/// and collect: every one restores. (A commit between sealing the head and listing the files
/// used to put the new, unsealed head into the checkpoint, which restore then refused as
/// `BadChain`: about 1 checkpoint in 100 here.) Each restored state holds, for every key,
/// the value of one of its writer's commits.
#[test]
fn checkpoints_under_large_value_writers_all_restore() {
    let source = MemFs::new();
    let tree = strata_tests::builder_on(source)
        .with_enable_vlog(true)
        .with_vlog_value_threshold(1024)
        .with_vlog_max_file_size(1024 * 1024)
        .with_max_memtable_size(64 * 1024)
        .with_background_threads(true)
        .build()
        .expect("open");
    let stop = Arc::new(AtomicBool::new(false));
    let value = |w: u64, n: u64| tagged_value((w << 32) | n, 1500);
    let writers: Vec<_> = (0..3u64)
        .map(|w| {
            let (tree, stop) = (tree.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut t = tree.begin().expect("begin");
                    t.set(format!("w{w}-{:03}", n % 200).as_bytes(), &value(w, n)).expect("set");
                    t.commit_blocking().expect("writers on disjoint keys always commit");
                    n += 1;
                    // Keep the log small: the point is many checkpoints, not much data.
                    std::thread::sleep(std::time::Duration::from_micros(20));
                }
                n
            })
        })
        .collect();
    let target = strata_tests::builder_on(MemFs::new())
        .with_enable_vlog(true)
        .with_background_threads(false)
        .build()
        .expect("open");
    let started = std::time::Instant::now();
    let want = scaled(1500);
    let mut failures = Vec::new();
    let mut taken = 0u64;
    while taken < want && started.elapsed() < std::time::Duration::from_secs(8 * soak_factor()) {
        taken += 1;
        let image = MemFs::new();
        tree.create_checkpoint_in(image.clone()).expect("checkpoint");
        if let Err(e) = target.restore_from_checkpoint_in(image) {
            failures.push(format!("checkpoint {taken}: {e}"));
            continue;
        }
        if taken % 100 == 1 {
            for (k, v) in dump(&target).expect("dump") {
                let k = String::from_utf8(k).expect("utf8");
                let (w, i) = k[1..].split_once('-').expect("w-i");
                let (w, i): (u64, u64) = (w.parse().expect("w"), i.parse().expect("i"));
                let tag = u64::from_le_bytes(v[..8].try_into().expect("8"));
                let n = tag & 0xffff_ffff;
                assert!(tag >> 32 == w && n % 200 == i && v == value(w, n), "{k}: a wrong value");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let commits: Vec<u64> = writers.into_iter().map(|h| h.join().expect("writer")).collect();
    eprintln!("{taken} checkpoints in {:?}, writers committed {commits:?}", started.elapsed());
    assert!(failures.is_empty(), "{} good checkpoints refused: {failures:#?}", failures.len());
}

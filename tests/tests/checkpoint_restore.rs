//! Checkpoints: consistency under concurrent writers, restore, reopening a checkpoint as a
//! database, bad input, and power cuts during creation and during restore (and during the
//! recovery after each). Crash seeds are random and printed (`STRATA_SEED` replays);
//! `STRATA_SOAK` runs more of them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strata::{Error, Tree, TreeBuilder};
use strata_tests::crash::{RecoveryCuts, power_cut_during_recovery, report_crash_states};
use strata_tests::{Model, Rng, copy_fs, dump, scaled, test_seed};
use strata_vfs::{CrashPolicy, MemFs, Vfs};

fn put(tree: &Tree, k: &str, v: &str) {
    let mut t = tree.begin().expect("begin");
    t.set(k.as_bytes(), v.as_bytes()).expect("set");
    t.commit_blocking().expect("commit");
}

/// A checkpoint taken while 4 writers commit holds exactly the commits up to its sequence
/// number: each writer's keys form a prefix of its commit order, and their count is the
/// number of commits after the initial load up to that sequence number.
#[test]
fn checkpoint_under_four_writers_is_consistent_at_its_sequence_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("db");
    let tree = TreeBuilder::new()
        .with_path(db.clone())
        .with_max_memtable_size(64 * 1024)
        .build()
        .expect("opens");
    put(&tree, "base", "0");
    let before = tree.stats().commits; // one commit so far: sequence number 1
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (tree, stop) = (tree.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut n = 0u32;
                while !stop.load(Ordering::Relaxed) || n < 50 {
                    put(&tree, &format!("w{w}-{n:06}"), &"x".repeat(200));
                    n += 1;
                }
                n
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let ckpt = dir.path().join("ckpt");
    let meta = tree.create_checkpoint(&ckpt).expect("checkpoint");
    stop.store(true, Ordering::Relaxed);
    let written: Vec<u32> = writers.into_iter().map(|h| h.join().expect("writer")).collect();
    assert_eq!(before, 1);

    // Inspect it as a database without changing it (no background compaction, no writes).
    let inspect = |p: &std::path::Path| {
        TreeBuilder::new().with_path(p.to_path_buf()).with_background_threads(false).build()
    };
    let snapshot = inspect(&ckpt).expect("a checkpoint opens as a database");
    let state = dump(&snapshot).expect("dump");
    let mut in_ckpt = 0u64;
    for (w, &count) in written.iter().enumerate() {
        let keys: Vec<String> = state
            .keys()
            .map(|k| String::from_utf8(k.clone()).expect("utf8"))
            .filter(|k| k.starts_with(&format!("w{w}-")))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(*k, format!("w{w}-{i:06}"), "writer {w}: a prefix of its commits");
        }
        assert!(keys.len() as u32 <= count);
        in_ckpt += keys.len() as u64;
    }
    assert_eq!(in_ckpt + 1, meta.sequence_number, "exactly the commits up to the sequence number");
    assert!(meta.sstable_count >= 1 && meta.total_size > 0);
    drop(snapshot);

    // Restore: the live tree returns to the checkpoint, later writes are gone.
    let old_txn = tree.begin().expect("begin");
    tree.restore_from_checkpoint(&ckpt).expect("restore");
    assert!(
        matches!(old_txn.get(b"base"), Err(Error::Closed)),
        "transactions across a restore fail clearly"
    );
    assert_eq!(dump(&tree).expect("dump"), state);
    // The live tree keeps working: write, compact, close, reopen.
    for i in 0..300 {
        put(&tree, &format!("after{i:04}"), &"y".repeat(300));
    }
    tree.maintenance_step(usize::MAX).expect("maintenance");
    tree.close().expect("close");
    drop(tree);
    // The checkpoint is unaffected by the live tree's writes and compactions.
    let again = inspect(&ckpt).expect("reopen checkpoint");
    assert_eq!(dump(&again).expect("dump"), state);
    // Used as a database (written to), it is no longer a checkpoint to restore from.
    put(&again, "new", "write");
    again.close().expect("close");
    drop(again);
    let live = TreeBuilder::new().with_path(db).build().expect("reopen live");
    assert_eq!(dump(&live).expect("dump").len(), state.len() + 300);
    assert!(matches!(live.restore_from_checkpoint(&ckpt), Err(Error::InvalidArgument { .. })));
    assert_eq!(dump(&live).expect("dump").len(), state.len() + 300, "live untouched");
}

#[test]
fn bad_checkpoints_give_clear_errors_and_leave_the_database_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = TreeBuilder::new().with_path(dir.path().join("db")).build().expect("opens");
    put(&tree, "k", "live");
    let expect_untouched = |tree: &Tree| {
        let t = tree.begin().expect("begin");
        assert_eq!(t.get(b"k").expect("read").as_deref(), Some(&b"live"[..]));
    };

    let missing = dir.path().join("nope");
    assert!(matches!(tree.restore_from_checkpoint(&missing), Err(Error::InvalidArgument { .. })));
    let not_ckpt = dir.path().join("junk");
    std::fs::create_dir_all(&not_ckpt).expect("mkdir");
    std::fs::write(not_ckpt.join("notes.txt"), b"hello").expect("write");
    assert!(matches!(tree.restore_from_checkpoint(&not_ckpt), Err(Error::InvalidArgument { .. })));
    assert!(
        matches!(tree.create_checkpoint(&not_ckpt), Err(Error::InvalidArgument { .. })),
        "a checkpoint needs an empty directory"
    );
    expect_untouched(&tree);

    // Damage each kind of file of a real checkpoint (copies, so the live tables stay intact).
    let good = dir.path().join("good");
    tree.create_checkpoint(&good).expect("checkpoint");
    let names: Vec<String> = std::fs::read_dir(&good)
        .expect("list")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    for name in names
        .iter()
        .filter(|n| n.ends_with(".sst") || *n == "CHECKPOINT" || n.starts_with("MANIFEST"))
    {
        for how in ["flip", "truncate", "remove"] {
            let bad = dir.path().join(format!("bad-{name}-{how}"));
            std::fs::create_dir_all(&bad).expect("mkdir");
            for n in &names {
                std::fs::copy(good.join(n), bad.join(n)).expect("copy");
            }
            let f = bad.join(name);
            match how {
                "flip" => {
                    let mut b = std::fs::read(&f).expect("read");
                    let at = b.len() / 2;
                    b[at] ^= 0x40;
                    std::fs::write(&f, b).expect("write");
                }
                "truncate" => {
                    let b = std::fs::read(&f).expect("read");
                    std::fs::write(&f, &b[..b.len() - 3]).expect("write");
                }
                _ => std::fs::remove_file(&f).expect("remove"),
            }
            let r = tree.restore_from_checkpoint(&bad);
            assert!(
                matches!(r, Err(Error::Corruption { .. } | Error::InvalidArgument { .. })),
                "{name} {how}: {r:?}"
            );
            expect_untouched(&tree);
        }
    }
    tree.restore_from_checkpoint(&good).expect("the intact checkpoint restores");
    expect_untouched(&tree);
}

/// A tree on `fs`; with `vlog`, the 700-byte values of [`load`] go to the value log (1 MiB
/// files), so checkpoints and restores carry value log files too.
fn mem_tree(fs: &MemFs, vlog: bool) -> strata::Result<Tree> {
    TreeBuilder::new()
        .with_vfs(fs.clone())
        .with_max_memtable_size(64 * 1024)
        .with_wal_segment_size(64 * 1024)
        .with_background_threads(false)
        .with_enable_vlog(vlog)
        .with_vlog_value_threshold(512)
        .with_vlog_max_file_size(1024 * 1024)
        .build()
}

fn load(tree: &Tree, prefix: &str, n: u32) {
    for i in 0..n {
        put(tree, &format!("{prefix}{i:04}"), &"v".repeat(700));
    }
}

/// The crash seeds to try each crash policy with: one for the deterministic policies, and
/// `STRATA_SOAK`-scaled random ones for the others.
fn policy_seeds(rng: &mut Rng) -> Vec<(CrashPolicy, u64)> {
    let mut out = Vec::new();
    for policy in CrashPolicy::ALL {
        let seeds = match policy {
            CrashPolicy::DropUnsynced | CrashPolicy::KeepUnsynced => 1,
            CrashPolicy::TornTail | CrashPolicy::GarbageTail => scaled(1),
        };
        for _ in 0..seeds {
            out.push((policy, rng.next_u64()));
        }
    }
    out
}

/// A power cut before every durability call of checkpoint creation, in the checkpoint's
/// directory and in the database's own (creation flushes the memtable there first). The
/// checkpoint image is either complete (restores to exactly the source's state) or refused as
/// incomplete, with the target untouched; the database's image recovers its whole state,
/// also when its recovery is cut before each of its own durability calls.
#[test]
fn power_cut_during_checkpoint_creation() {
    let seed = test_seed("power_cut_during_checkpoint_creation");
    let mut rng = Rng::new(seed);
    let mut states = 0;
    states += power_cut_during_checkpoint_creation_with(false, &mut rng);
    states += power_cut_during_checkpoint_creation_with(true, &mut rng);
    report_crash_states("checkpoint_restore: checkpoint creation", states);
}

/// The source of the creation tests: 150 values then one durable commit, so a power cut keeps
/// every commit; the memtable is not empty, so creation flushes it.
fn creation_source(fs: &MemFs, vlog: bool) -> Tree {
    let tree = mem_tree(fs, vlog).expect("opens");
    load(&tree, "a", 150);
    let mut t = tree.begin().expect("begin");
    t.set_durability(strata::Durability::Immediate);
    t.set(b"a-end", b"synced").expect("set");
    t.commit_blocking().expect("commit");
    tree
}

fn power_cut_during_checkpoint_creation_with(vlog: bool, rng: &mut Rng) -> u64 {
    let src = MemFs::new();
    let tree = creation_source(&src, vlog);
    let want: Model = dump(&tree).expect("dump");
    let probe = MemFs::new();
    let src_base = src.sync_count();
    tree.create_checkpoint_in(probe.clone()).expect("checkpoint");
    let src_calls = src.sync_count() - src_base;
    let vlog_files =
        probe.list().expect("list").into_iter().filter(|n| n.ends_with(".vlog")).count();
    assert_eq!(vlog_files > 0, vlog, "the checkpoint holds value log files iff the log is on");
    let calls = probe.sync_count();
    let (mut complete, mut refused) = (0u64, 0u64);
    for n in 1..=calls + 1 {
        for (policy, crash_seed) in policy_seeds(rng) {
            let ctx = format!(
                "vlog {vlog}: crash {n} of {calls} of the checkpoint, {policy:?} {crash_seed}"
            );
            let dest = MemFs::new();
            dest.arm_crash(n, policy, crash_seed);
            let _ = tree.create_checkpoint_in(dest.clone());
            let image = dest.take_crash_image().unwrap_or_else(|| dest.crash(policy, crash_seed));
            let target = MemFs::new();
            let t = mem_tree(&target, vlog).expect("opens");
            put(&t, "other", "state");
            match t.restore_from_checkpoint_in(image) {
                Ok(()) => {
                    assert_eq!(dump(&t).expect("dump"), want, "{ctx}: partial checkpoint");
                    complete += 1;
                }
                Err(Error::InvalidArgument { .. } | Error::Corruption { .. }) => {
                    assert_eq!(
                        dump(&t).expect("dump").len(),
                        1,
                        "{ctx}: refused restore left the target alone"
                    );
                    refused += 1;
                }
                Err(e) => panic!("{ctx}: {e:?}"),
            }
        }
    }
    assert!(complete > 0 && refused > 0);
    drop(tree);

    // Power cuts in the database's own directory while it makes a checkpoint.
    assert!(src_calls > 0, "vlog {vlog}: creation flushes the memtable");
    let (mut source_images, mut recovery_cuts) = (0u64, 0u64);
    for n in 1..=src_calls {
        for (policy, crash_seed) in policy_seeds(rng) {
            let ctx = format!(
                "vlog {vlog}: crash {n} of {src_calls} in the database during checkpoint \
                 creation, {policy:?} {crash_seed}"
            );
            let fs = MemFs::new();
            let tree = creation_source(&fs, vlog);
            assert_eq!(fs.sync_count(), src_base, "{ctx}: deterministic setup");
            fs.arm_crash(src_base + n, policy, crash_seed);
            assert!(tree.create_checkpoint_in(MemFs::new()).is_err(), "{ctx}: must fail");
            drop(tree);
            let image = fs.take_crash_image().unwrap_or_else(|| panic!("{ctx}: no image"));
            let pristine = copy_fs(&image);
            let reopened =
                mem_tree(&image, vlog).unwrap_or_else(|e| panic!("{ctx}: does not open: {e}"));
            assert_eq!(dump(&reopened).expect("dump"), want, "{ctx}: lost data");
            drop(reopened);
            let open = |fs: &MemFs| mem_tree(fs, vlog);
            recovery_cuts += power_cut_during_recovery(
                &pristine,
                open,
                RecoveryCuts::Every,
                rng,
                &ctx,
                |cut, ctx| {
                    let t = open(cut).unwrap_or_else(|e| panic!("{ctx}: does not open: {e}"));
                    assert_eq!(dump(&t).expect("dump"), want, "{ctx}: recovered differently");
                },
            );
            source_images += 1;
        }
    }
    eprintln!(
        "checkpoint creation (vlog {vlog}): {calls} durability calls in the checkpoint \
         ({complete} complete images, {refused} refused), {src_calls} in the database \
         ({source_images} images, +{recovery_cuts} power cuts during their recovery)"
    );
    complete + refused + source_images + recovery_cuts
}

/// A power cut before every durability call of a restore: reopening gives exactly the old
/// state or exactly the checkpoint's, also when that reopening is itself cut before each of
/// its durability calls (it then gives the same state).
#[test]
fn power_cut_during_restore() {
    let seed = test_seed("power_cut_during_restore");
    let mut rng = Rng::new(seed);
    let mut states = 0;
    states += power_cut_during_restore_with(false, &mut rng);
    states += power_cut_during_restore_with(true, &mut rng);
    report_crash_states("checkpoint_restore: restore", states);
}

fn power_cut_during_restore_with(vlog: bool, rng: &mut Rng) -> u64 {
    let ckpt = MemFs::new();
    let (old, new): (Model, Model);
    {
        let fs = MemFs::new();
        let tree = mem_tree(&fs, vlog).expect("opens");
        load(&tree, "c", 120);
        tree.create_checkpoint_in(ckpt.clone()).expect("checkpoint");
        new = dump(&tree).expect("dump");
    }
    let setup = |fs: &MemFs| -> Tree {
        let tree = mem_tree(fs, vlog).expect("opens");
        load(&tree, "live", 130);
        // End durable, so the old state is exactly what a crash keeps.
        let mut t = tree.begin().expect("begin");
        t.set_durability(strata::Durability::Immediate);
        t.set(b"live-end", b"synced").expect("set");
        t.commit_blocking().expect("commit");
        tree
    };
    let fs = MemFs::new();
    let tree = setup(&fs);
    old = dump(&tree).expect("dump");
    let base = fs.sync_count();
    tree.restore_from_checkpoint_in(ckpt.clone()).expect("restore");
    assert_eq!(dump(&tree).expect("dump"), new);
    let calls = fs.sync_count() - base;
    drop(tree);
    let mut outcomes = BTreeMap::new();
    let (mut images, mut recovery_cuts) = (0u64, 0u64);
    for n in 1..=calls + 1 {
        for (policy, crash_seed) in policy_seeds(rng) {
            let ctx = format!("vlog {vlog}: restore crash {n} of {calls}, {policy:?} {crash_seed}");
            let fs = MemFs::new();
            let tree = setup(&fs);
            assert_eq!(fs.sync_count(), base, "deterministic setup");
            fs.arm_crash(base + n, policy, crash_seed);
            let _ = tree.restore_from_checkpoint_in(ckpt.clone());
            drop(tree);
            let image = fs.take_crash_image().unwrap_or_else(|| fs.crash(policy, crash_seed));
            let pristine = copy_fs(&image);
            let reopened =
                mem_tree(&image, vlog).unwrap_or_else(|e| panic!("{ctx}: does not open: {e}"));
            let got = dump(&reopened).expect("dump");
            drop(reopened);
            let (which, want) = if got == old {
                ("old", &old)
            } else if got == new {
                ("checkpoint", &new)
            } else {
                panic!("{ctx}: neither old nor checkpoint")
            };
            *outcomes.entry(which).or_insert(0) += 1;
            images += 1;
            let open = |fs: &MemFs| mem_tree(fs, vlog);
            recovery_cuts += power_cut_during_recovery(
                &pristine,
                open,
                RecoveryCuts::Every,
                rng,
                &ctx,
                |cut, ctx| {
                    let t = open(cut).unwrap_or_else(|e| panic!("{ctx}: does not open: {e}"));
                    let got = dump(&t).expect("dump");
                    assert!(&got == want, "{ctx}: recovered to another state than {which}");
                },
            );
        }
    }
    eprintln!(
        "restore (vlog {vlog}): {calls} durability calls, outcomes {outcomes:?}, {images} images \
         (+{recovery_cuts} power cuts during their recovery)"
    );
    assert_eq!(outcomes.len(), 2, "both outcomes occur");
    images + recovery_cuts
}

/// Restore keeps the directory lock from the old engine's close to the new one's open: an
/// opener spinning on the same directory throughout never gets in.
#[test]
fn restore_never_lets_another_opener_in() {
    let ckpt = MemFs::new();
    let fs = MemFs::new();
    let tree = mem_tree(&fs, true).expect("opens");
    load(&tree, "c", 200);
    tree.create_checkpoint_in(ckpt.clone()).expect("checkpoint");
    let stop = Arc::new(AtomicBool::new(false));
    let opener = {
        let (fs, stop) = (fs.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut attempts, mut got_in) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                attempts += 1;
                match mem_tree(&fs, true) {
                    Err(Error::Locked) => {}
                    Ok(t) => {
                        got_in += 1;
                        drop(t);
                    }
                    Err(_) => {}
                }
            }
            (attempts, got_in)
        })
    };
    for _ in 0..30 {
        tree.restore_from_checkpoint_in(ckpt.clone()).expect("restore");
    }
    stop.store(true, Ordering::Relaxed);
    let (attempts, got_in) = opener.join().expect("opener");
    eprintln!("opener: {attempts} attempts during 30 restores");
    assert!(attempts > 30, "the opener ran throughout");
    assert_eq!(got_in, 0, "another opener got the directory during a restore");
}

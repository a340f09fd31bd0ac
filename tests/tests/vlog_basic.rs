//! The value log end to end: large values round-trip through commits, flushes, compactions
//! and reopens; keys-only reads never touch the log; GC reclaims space; snapshots and
//! iterators opened before a GC keep reading; a flipped byte is reported as corruption.

use strata::{Error, Mode, ReadOptions, Tree, TreeBuilder, VLogChecksumLevel};
use strata_tests::{Model, builder_on, dump, tagged_value};
use strata_vfs::{MemFs, Vfs};

fn vlog_builder(mem: &MemFs) -> TreeBuilder {
    builder_on(mem.clone())
        .with_enable_vlog(true)
        .with_vlog_value_threshold(1024)
        .with_vlog_max_file_size(1024 * 1024)
        .with_max_memtable_size(64 * 1024)
        .with_background_threads(false)
}

fn put(tree: &Tree, key: &[u8], value: &[u8]) {
    let mut t = tree.begin().expect("begin");
    t.set(key, value).expect("set");
    t.commit_blocking().expect("commit");
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:06}").into_bytes()
}

fn vlog_files(mem: &MemFs) -> Vec<String> {
    let mut v: Vec<String> =
        mem.list().expect("list").into_iter().filter(|n| n.ends_with(".vlog")).collect();
    v.sort();
    v
}

#[test]
fn large_values_round_trip_through_flush_compaction_and_reopen() {
    let mem = MemFs::new();
    let mut model = Model::new();
    {
        let tree = vlog_builder(&mem).build().expect("open");
        for i in 0..600u64 {
            // Mixed sizes: some inline, most in the log.
            let len = if i % 3 == 0 { 100 } else { 1024 + (i as usize * 37) % 5000 };
            let v = tagged_value(i, len);
            put(&tree, &key(i % 400), &v);
            model.insert(key(i % 400), v);
        }
        tree.maintenance_step(usize::MAX).expect("maintenance");
        assert_eq!(dump(&tree).expect("dump"), model);
        let stats = tree.stats();
        assert!(stats.vlog_bytes > 1_000_000, "values went to the log: {stats:?}");
        assert!(stats.vlog_files >= 2, "1 MiB files rotated: {stats:?}");
        let t = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
        for (k, v) in &model {
            assert_eq!(t.get(k).expect("get").as_deref(), Some(&v[..]));
        }
        // Backwards too.
        let back: Vec<_> =
            t.range(b"", b"\xff", None).expect("range").rev().map(|r| r.expect("kv")).collect();
        assert_eq!(back.len(), model.len());
        tree.close().expect("close");
    }
    let tree = vlog_builder(&mem).build().expect("reopen");
    assert_eq!(dump(&tree).expect("dump"), model);
}

#[test]
fn keys_only_reads_never_touch_the_log() {
    let mem = MemFs::new();
    let tree = vlog_builder(&mem).build().expect("open");
    for i in 0..50u64 {
        put(&tree, &key(i), &tagged_value(i, 4000));
    }
    tree.close().expect("close");
    // Destroy every value log file's records: a read of any value now fails.
    for name in vlog_files(&mem) {
        let len = mem.read_all(&name).expect("read").len();
        for off in (20..len).step_by(97) {
            mem.flip_byte(&name, off as u64, 0x20).expect("flip");
        }
    }
    let tree = vlog_builder(&mem).build().expect("reopen");
    let t = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
    let keys: Vec<_> = t.keys(b"", b"\xff", None).expect("keys").map(|k| k.expect("k")).collect();
    assert_eq!(keys.len(), 50);
    let opts = ReadOptions::new();
    assert_eq!(t.keys_with_options(&opts).expect("keys").count(), 50);
    assert!(t.keys_with_options(&opts).expect("keys").all(|k| k.is_ok()));
    // A value read does touch the log, and finds the damage.
    assert!(matches!(t.get(&key(3)), Err(Error::Corruption { .. })));
}

#[test]
fn a_flipped_byte_is_corruption_with_full_checksums_and_skipped_when_disabled() {
    let mem = MemFs::new();
    let tree = vlog_builder(&mem).build().expect("open");
    let v = tagged_value(9, 3000);
    put(&tree, b"k", &v);
    tree.close().expect("close");
    let name = vlog_files(&mem).pop().expect("a vlog file");
    // Header 16 bytes, then crc (4), flags, key len, value len, key "k": byte 40 is in the value.
    mem.flip_byte(&name, 40, 0x01).expect("flip");
    {
        let tree = vlog_builder(&mem).build().expect("reopen");
        let t = tree.begin().expect("begin");
        match t.get(b"k") {
            Err(Error::Corruption { file, offset, .. }) => {
                assert_eq!(file, name);
                assert_eq!(offset, 16);
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        drop(t);
        tree.close().expect("close");
    }
    let tree = vlog_builder(&mem)
        .with_vlog_checksum_verification(VLogChecksumLevel::Disabled)
        .build()
        .expect("reopen");
    let got = tree.begin().expect("begin").get(b"k").expect("no verification").expect("some");
    assert_eq!(got.len(), v.len());
    assert_ne!(&got[..], &v[..], "the damaged byte comes back unverified");
}

#[test]
fn gc_reclaims_space_and_earlier_snapshots_and_iterators_still_read_old_values() {
    let mem = MemFs::new();
    let tree = vlog_builder(&mem).with_vlog_gc_discard_ratio(0.5).build().expect("open");
    let mut model = Model::new();
    for i in 0..300u64 {
        let v = tagged_value(i, 4000);
        put(&tree, &key(i), &v);
        model.insert(key(i), v);
    }
    let old_model = model.clone();
    // A snapshot and an iterator from before the overwrites and the GC.
    let snap = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
    let mut iter = snap.range(b"", b"\xff", None).expect("range");
    let first = iter.next().expect("one").expect("kv");
    assert_eq!(first.0.as_ref(), key(0));
    for i in 0..270u64 {
        let v = tagged_value(1000 + i, 4000);
        put(&tree, &key(i), &v);
        model.insert(key(i), v);
    }
    let before = tree.stats().vlog_disk_bytes;
    let report = tree.run_vlog_gc().expect("gc");
    assert!(report.files_collected >= 1, "{report:?}");
    assert_eq!(report.files_deleted, 0, "the snapshot still reaches them: {report:?}");
    // The old snapshot and the iterator still read the old values.
    for (k, v) in &old_model {
        assert_eq!(snap.get(k).expect("get").as_deref(), Some(&v[..]));
    }
    let rest: Vec<_> = iter.map(|r| r.expect("kv")).collect();
    assert_eq!(rest.len() + 1, old_model.len());
    for (k, v) in rest {
        assert_eq!(old_model.get(k.as_ref()).map(|x| &x[..]), Some(&v[..]));
    }
    drop(snap);
    // Now nothing reaches the collected files: the next run deletes them.
    let second = tree.run_vlog_gc().expect("gc");
    assert!(second.files_deleted >= 1, "{second:?}");
    let after = tree.stats().vlog_disk_bytes;
    assert!(after < before, "space reclaimed: {before} -> {after}");
    assert_eq!(dump(&tree).expect("dump"), model);
    tree.close().expect("close");
    let tree = vlog_builder(&mem).build().expect("reopen");
    assert_eq!(dump(&tree).expect("dump"), model);
}

/// Garbage collection rewrites values through the commit path, but it changes no value: a
/// transaction that began before it and writes a relocated key still commits, and the
/// commit timestamps users see are not consumed by it.
#[test]
fn gc_relocations_never_conflict_with_user_transactions() {
    let mem = MemFs::new();
    let tree = vlog_builder(&mem).with_vlog_gc_discard_ratio(0.1).build().expect("open");
    for i in 0..300u64 {
        put(&tree, &key(i), &tagged_value(i, 4000));
    }
    // Make the first file mostly dead, keeping key 0 live in it.
    for i in 1..250u64 {
        put(&tree, &key(i), &tagged_value(5000 + i, 4000));
    }
    let mut early = tree.begin().expect("begin");
    assert_eq!(early.get(&key(0)).expect("get").as_deref(), Some(&tagged_value(0, 4000)[..]));
    let report = tree.run_vlog_gc().expect("gc");
    assert!(report.bytes_relocated > 0, "key 0 was relocated: {report:?}");
    early.set(&key(0), b"mine").expect("set");
    early.commit_blocking().expect("a relocation is not a conflicting write");
    let t = tree.begin().expect("begin");
    assert_eq!(t.get(&key(0)).expect("get").as_deref(), Some(&b"mine"[..]));
}

/// After an unclean stop, a damaged record in the middle of the head file is corruption, not
/// a torn tail: the acknowledged Immediate commits whose values follow it are not dropped
/// silently.
#[test]
fn damage_inside_the_head_after_an_unclean_stop_is_corruption_not_a_torn_tail() {
    let mem = MemFs::new();
    let tree = vlog_builder(&mem).build().expect("open");
    for i in 0..10u64 {
        let mut t = tree.begin().expect("begin");
        t.set_durability(strata::Durability::Immediate);
        t.set(&key(i), &tagged_value(i, 3000)).expect("set");
        t.commit_blocking().expect("commit");
    }
    // The image a kill -9 leaves (everything written is kept), taken while the tree is open.
    let image = strata_tests::copy_fs(&mem);
    drop(tree);
    let head = vlog_files(&image).pop().expect("head");
    // Records are 4 + 1 + 1 + 2 + 9 + 3000 = 3017 bytes after the 16-byte header: damage the
    // value of record 3.
    image.flip_byte(&head, 16 + 3 * 3017 + 100, 0x04).expect("flip");
    match vlog_builder(&image).build() {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, head);
            assert_eq!(offset, 16 + 3 * 3017);
        }
        Ok(t) => panic!("opened with {} keys", dump(&t).expect("dump").len()),
        Err(e) => panic!("expected corruption, got {e}"),
    }
    // The same image without the damage opens with all ten.
    let clean = strata_tests::copy_fs(&mem);
    let t = vlog_builder(&clean).build().expect("clean image opens");
    assert_eq!(dump(&t).expect("dump").len(), 10);
}

/// Compressible values are stored raw in the log by default and lz4-compressed with
/// `with_vlog_compression(true)` (the table switch `with_compression` does not decide it), read
/// back exactly, and survive garbage collection and reopen; a log holding both kinds of record
/// (compression switched between opens) reads back too.
#[test]
fn compressible_values_are_compressed_in_the_log_only_when_asked() {
    let text = |i: u64| format!("{{\"id\":{i},\"body\":\"{}\"}}", "lorem ipsum ".repeat(700));
    let user: u64 = (0..200u64).map(|i| text(i).len() as u64).sum::<u64>() * 350 / 200;
    for vlog_compression in [None, Some(true), Some(false)] {
        let mem = MemFs::new();
        let builder = |mem: &MemFs| {
            // Table compression stays on: it must not decide the log's.
            let b = vlog_builder(mem).with_compression(true);
            match vlog_compression {
                Some(on) => b.with_vlog_compression(on),
                None => b,
            }
        };
        let tree = builder(&mem).build().expect("open");
        for i in 0..200u64 {
            put(&tree, &key(i), text(i).as_bytes());
        }
        for i in 0..150u64 {
            put(&tree, &key(i), text(1000 + i).as_bytes());
        }
        let disk = tree.stats().vlog_disk_bytes;
        if vlog_compression == Some(true) {
            assert!(disk < user / 4, "compressed: {disk} bytes for {user}");
        } else {
            assert!(disk > user, "raw ({vlog_compression:?}): {disk} bytes for {user}");
        }
        tree.run_vlog_gc().expect("gc");
        tree.close().expect("close");
        let tree = builder(&mem).build().expect("reopen");
        let t = tree.begin().expect("begin");
        for i in 0..200u64 {
            let want = if i < 150 { text(1000 + i) } else { text(i) };
            assert_eq!(t.get(&key(i)).expect("get").as_deref(), Some(want.as_bytes()));
        }
    }

    // Compressed records, then raw ones after a reopen with compression off: both read back,
    // before and after GC moves them.
    let mem = MemFs::new();
    let tree = vlog_builder(&mem).with_vlog_compression(true).build().expect("open");
    for i in 0..100u64 {
        put(&tree, &key(i), text(i).as_bytes());
    }
    tree.close().expect("close");
    let tree = vlog_builder(&mem).with_vlog_compression(false).build().expect("reopen");
    for i in 50..150u64 {
        put(&tree, &key(i), text(2000 + i).as_bytes());
    }
    let check = |tree: &Tree| {
        let t = tree.begin().expect("begin");
        for i in 0..150u64 {
            let want = if i < 50 { text(i) } else { text(2000 + i) };
            assert_eq!(t.get(&key(i)).expect("get").as_deref(), Some(want.as_bytes()), "{i}");
        }
    };
    check(&tree);
    tree.run_vlog_gc().expect("gc");
    check(&tree);
    tree.close().expect("close");
    check(&vlog_builder(&mem).build().expect("reopen"));
}

/// A tree on `mem` whose 600-byte values go to the log, with GC at `ratio`.
fn open_small_values(mem: &MemFs, ratio: f64) -> Tree {
    vlog_builder(mem)
        .with_vlog_value_threshold(512)
        .with_vlog_gc_discard_ratio(ratio)
        .build()
        .expect("open")
}

/// Six rounds overwriting 1,000 keys with 600-byte values: pointers fill 64 KiB memtables,
/// so flushes and compactions run and drop old pointers. Returns the final state.
fn overwrite_six_rounds(tree: &Tree) -> Model {
    let mut model = Model::new();
    for round in 0..6u64 {
        for i in 0..1000u64 {
            let v = tagged_value(round * 10_000 + i, 600);
            put(tree, &key(i), &v);
            model.insert(key(i), v);
        }
    }
    model
}

/// Discard statistics: compaction counts the records whose pointers it drops, the counts are
/// in the manifest (they survive a reopen), and background garbage collection (here the
/// inline maintenance of a tree without threads) collects the files they mark dead enough,
/// without any explicit `run_vlog_gc`.
#[test]
fn discard_statistics_come_from_compaction_persist_and_drive_background_gc() {
    let mem = MemFs::new();
    let open = |ratio: f64| open_small_values(&mem, ratio);
    // Ratio 1.0: background GC takes only wholly dead files, so partly dead ones keep their
    // statistics for this test to see.
    let tree = open(1.0);
    let model = overwrite_six_rounds(&tree);
    tree.maintenance_step(usize::MAX).expect("maintenance");
    let s = tree.stats();
    assert!(s.compactions > 0 && s.vlog_dead_bytes > 0, "compaction recorded dead bytes: {s:?}");
    let dead = s.vlog_dead_bytes;
    tree.close().expect("close");

    let tree = open(1.0);
    assert_eq!(tree.stats().vlog_dead_bytes, dead, "the statistics are persisted");
    tree.close().expect("close");

    // A lower ratio: the next maintenance collects the files the statistics mark.
    let tree = open(0.2);
    tree.maintenance_step(usize::MAX).expect("maintenance");
    let s = tree.stats();
    assert!(s.vlog_gc_files > 0 && s.vlog_deleted_files > 0, "background GC ran: {s:?}");
    assert!(s.vlog_dead_bytes < dead, "collected files take their dead bytes along: {s:?}");
    assert_eq!(dump(&tree).expect("dump"), model);
    tree.close().expect("close");
    assert_eq!(dump(&open(0.2)).expect("dump"), model);
}

/// Damage to synced bytes of the head file before an unclean stop, when the tree (not the WAL)
/// points past it, makes recovery seal the head short. Garbage collection must not then delete
/// the file with the intact records after the damage: it finds the pointers past the sealed end
/// and reports `Corruption`, and those values stay readable.
#[test]
fn gc_refuses_a_head_sealed_short_that_the_tree_still_points_past() {
    let mem = MemFs::new();
    let tree = vlog_builder(&mem).build().expect("open");
    for i in 0..10u64 {
        put(&tree, &key(i), &tagged_value(i, 3000));
    }
    // Fill the memtable with small values so it is flushed: the pointers move to a table and
    // their WAL segment is deleted.
    for i in 0..400u64 {
        put(&tree, format!("filler{i:05}").as_bytes(), &[7u8; 300]);
    }
    tree.maintenance_step(usize::MAX).expect("maintenance");
    assert!(tree.stats().flushes > 0);
    let image = strata_tests::copy_fs(&mem); // an unclean stop: the head is not sealed
    drop(tree);
    let head = vlog_files(&image).into_iter().next().expect("head");
    // Records are 3017 bytes: damage the value of record 2.
    image.flip_byte(&head, 16 + 2 * 3017 + 500, 0x10).expect("flip");
    let tree = vlog_builder(&image).build().expect("opens: the WAL no longer points there");
    // Make the two records before the damage dead, so the file looks collectable.
    for i in 0..2u64 {
        put(&tree, &key(i), b"small");
    }
    match tree.run_vlog_gc() {
        Err(Error::Corruption { file, offset, .. }) => {
            assert_eq!(file, head);
            assert_eq!(offset, 16 + 2 * 3017);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(vlog_files(&image).contains(&head), "the file is kept");
    let t = tree.begin().expect("begin");
    assert!(matches!(t.get(&key(2)), Err(Error::Corruption { .. })), "the damaged value");
    for i in 3..10u64 {
        assert_eq!(t.get(&key(i)).expect("get").as_deref(), Some(&tagged_value(i, 3000)[..]));
    }
}

/// Background garbage collection that finds a damaged file reports it once and then leaves
/// the file alone (until the next open), instead of walking it again at every idle moment.
#[test]
fn background_gc_skips_a_damaged_file_after_reporting_it() {
    let mem = MemFs::new();
    let open = |ratio: f64| open_small_values(&mem, ratio);
    let tree = open(1.0);
    overwrite_six_rounds(&tree);
    tree.maintenance_step(usize::MAX).expect("maintenance");
    assert!(tree.stats().vlog_dead_bytes > 0);
    tree.close().expect("close");
    // Damage the first record of every file.
    let files = vlog_files(&mem);
    for name in &files {
        mem.flip_byte(name, 40, 0x08).expect("flip");
    }
    let tree = open(0.01);
    let mut errors = 0;
    for _ in 0..files.len() + 1 {
        match tree.maintenance_step(usize::MAX) {
            Err(Error::Corruption { .. }) => errors += 1,
            Err(e) => panic!("unexpected {e}"),
            Ok(_) => break,
        }
    }
    assert!(errors >= 1, "the damage was reported");
    assert!(errors <= files.len(), "each damaged file at most once");
    assert!(tree.maintenance_step(usize::MAX).is_ok(), "then left alone");
    assert!(files.iter().all(|f| vlog_files(&mem).contains(f)), "no damaged file deleted");
}

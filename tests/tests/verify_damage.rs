//! `strata_core::verify` (what `strata verify` and `strata::verify_dir` run) against real
//! damage: bytes flipped in tables, value log files, WAL segments and the manifest of a
//! database built on `MemFs`. Every damaged block or record is reported with its file and
//! offset, the walk goes on past each, a clean database reports nothing, and the torn tail a
//! crash leaves is told apart from damage.

use strata::{Error, TreeBuilder};
use strata_core::sstable::{BlockRole, Table};
use strata_core::verify::{VerifyReport, verify};
use strata_tests::builder_on;
use strata_vfs::{CrashPolicy, FileKind, MemFs, Vfs};

fn builder(mem: &MemFs) -> TreeBuilder {
    builder_on(mem.clone())
        .with_enable_vlog(true)
        .with_vlog_value_threshold(100)
        .with_block_size(512)
        .with_background_threads(false)
}

/// 300 keys with values in the value log and small ones inline, flushed to a table, plus a
/// few writes left in the WAL.
fn fill(mem: &MemFs) -> strata::Tree {
    let tree = builder(mem).build().expect("open");
    for i in 0..300u32 {
        let mut t = tree.begin().expect("begin");
        t.set(format!("key{i:05}").as_bytes(), format!("{i:0>200}").as_bytes()).expect("set");
        t.set(format!("inline{i:05}").as_bytes(), b"v").expect("set");
        t.commit_blocking().expect("commit");
    }
    tree.flush().expect("flush");
    for i in 0..5u32 {
        let mut t = tree.begin().expect("begin");
        t.set(format!("late{i}").as_bytes(), b"in the wal").expect("set");
        t.commit_blocking().expect("commit");
    }
    tree
}

fn names(mem: &MemFs, ext: &str) -> Vec<String> {
    let mut v: Vec<String> =
        mem.list().expect("list").into_iter().filter(|n| n.ends_with(ext)).collect();
    v.sort();
    v
}

fn run(mem: &MemFs) -> VerifyReport {
    verify(mem, &mut |_| {}).expect("verify runs")
}

/// `(file, offset)` of every damage, sorted.
fn places(r: &VerifyReport) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = r
        .damage
        .iter()
        .map(|e| match e {
            Error::Corruption { file, offset, .. } => (file.clone(), *offset),
            other => panic!("unexpected non-corruption problem: {other}"),
        })
        .collect();
    v.sort();
    v
}

/// Offsets of a table's data blocks.
fn data_blocks(mem: &MemFs, name: &str) -> Vec<u64> {
    let file = mem.open(name, FileKind::Table).expect("open");
    let table = Table::open(file, name.into(), 0, None).expect("table");
    let mut out = Vec::new();
    table
        .walk_blocks(|v| {
            if v.role == BlockRole::Data {
                out.push(v.handle.offset);
            }
            Ok(())
        })
        .expect("walk");
    out
}

/// Offsets of a value log file's records.
fn vlog_records(mem: &MemFs, name: &str) -> Vec<u64> {
    let file = mem.open(name, FileKind::ValueLog).expect("open");
    let size = mem.size(name).expect("size");
    let mut out = Vec::new();
    strata_core::vlog::scan_file(&file, name, size, |offset, _, _| {
        out.push(offset);
        Ok(())
    })
    .expect("scan");
    out
}

#[test]
fn a_clean_database_verifies_clean_and_every_file_is_read() {
    let mem = MemFs::new();
    fill(&mem).close().expect("close");
    let r = run(&mem);
    assert!(r.is_clean(), "{:?}", r.damage);
    assert!(r.torn_tails.is_empty(), "{:?}", r.torn_tails);
    let kinds: Vec<FileKind> = r.files.iter().map(|f| f.kind).collect();
    for kind in [FileKind::Manifest, FileKind::Table, FileKind::ValueLog, FileKind::Wal] {
        assert!(kinds.contains(&kind), "{kind:?} checked: {:?}", r.files);
    }
    let table = r.files.iter().find(|f| f.kind == FileKind::Table).expect("table");
    assert!(table.units > 10, "every block counted: {table:?}");
    let vlog = r.files.iter().find(|f| f.kind == FileKind::ValueLog).expect("vlog");
    assert_eq!(vlog.units, 300, "every record counted");
}

#[test]
fn every_damaged_block_and_record_is_reported_and_the_walk_goes_on() {
    let mem = MemFs::new();
    fill(&mem).close().expect("close");
    let sst = names(&mem, ".sst").pop().expect("a table");
    let vlog = names(&mem, ".vlog").pop().expect("a value log file");
    let blocks = data_blocks(&mem, &sst);
    let records = vlog_records(&mem, &vlog);
    assert!(blocks.len() > 5 && records.len() == 300);

    // Two data blocks and two records (in the key, past the lengths): each must be reported.
    for &b in [blocks[1], blocks[4]].iter() {
        mem.flip_byte(&sst, b + 3, 0x40).expect("flip");
    }
    for &rec in [records[0], records[200]].iter() {
        mem.flip_byte(&vlog, rec + 8, 0x01).expect("flip");
    }
    let r = run(&mem);
    let mut expected = vec![
        (sst.clone(), blocks[1]),
        (sst.clone(), blocks[4]),
        (vlog.clone(), records[0]),
        (vlog.clone(), records[200]),
    ];
    expected.sort();
    assert_eq!(places(&r), expected);
    assert!(
        r.damage
            .iter()
            .all(|e| matches!(e, Error::Corruption { kind: strata::CorruptionKind::Checksum, .. }))
    );
}

#[test]
fn damage_in_the_wal_and_the_manifest_is_reported() {
    let mem = MemFs::new();
    fill(&mem).close().expect("close");
    let wal = names(&mem, ".wal").pop().expect("a segment");
    // Inside the first record's payload (header 40 bytes, fragment header 7).
    mem.flip_byte(&wal, 40 + 7 + 10, 0x08).expect("flip");
    let r = run(&mem);
    assert_eq!(places(&r), vec![(wal.clone(), 40)], "{:?}", r.damage);

    let mem = MemFs::new();
    fill(&mem).close().expect("close");
    let manifest = names(&mem, "").into_iter().find(|n| n.starts_with("MANIFEST-")).expect("m");
    mem.flip_byte(&manifest, 40 + 7 + 2, 0x08).expect("flip");
    let r = run(&mem);
    assert!(
        places(&r).iter().any(|(f, _)| *f == manifest),
        "manifest damage reported: {:?}",
        r.damage
    );
    // Without a readable manifest every file is checked by its name: the tables still are.
    assert!(r.files.iter().any(|f| f.kind == FileKind::Table), "{:?}", r.files);
}

#[test]
fn a_torn_tail_left_by_a_crash_is_not_damage() {
    let mem = MemFs::new();
    let tree = fill(&mem);
    // A power cut while open: the WAL is not closed and the head value log file not sealed;
    // its last record is then cut short.
    let image = mem.crash(CrashPolicy::KeepUnsynced, 7);
    drop(tree);
    let vlog = names(&image, ".vlog").pop().expect("a value log file");
    let size = image.size(&vlog).expect("size");
    image.truncate(&vlog, size - 5).expect("truncate");
    let last = *vlog_records(&image, &vlog).last().expect("records");
    let r = run(&image);
    assert!(r.is_clean(), "{:?}", r.damage);
    assert_eq!(r.torn_tails.len(), 1, "{:?}", r.torn_tails);
    assert_eq!(r.torn_tails[0].file, vlog);
    assert!(r.torn_tails[0].offset > last, "the tail starts after the last whole record");
}

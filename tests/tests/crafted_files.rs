//! Crafted files: every checksum is right, so only the check under test can refuse them, and
//! each must be `Corruption` naming the file, never a panic, a huge allocation or silently
//! dropped records.
//!
//! - A WAL record holding a value pointer whose record length is more than any record can be
//!   (`MAX_RECORD_LEN`). Without the cap the pointer was accepted (it names a file id the
//!   manifest no longer has, which recovery takes as a value garbage collection replaced) and
//!   a read would have allocated up to 4 GiB before reading the log.
//! - A manifest whose clean-close record (`WAL_CLOSED`) gives the last WAL segment a length
//!   inside the segment header (the replay arithmetic underflowed), shorter than what was
//!   synced (the records after it were dropped without a word), or longer than the file.
//! - A stray WAL segment numbered near `u64::MAX`: the next flush tried to remove every
//!   segment number below it, one by one, and never finished.
//!
//! The crafted bytes are also the fuzz targets' seeds (`fuzz/seeds/`): run with
//! `STRATA_WRITE_FUZZ_SEEDS=1` to rewrite them; otherwise the test checks they are current.

use std::path::PathBuf;
use std::sync::Arc;

use strata_core::batch::WriteBatch;
use strata_core::manifest::{self, ManifestWriter, VersionEdit};
use strata_core::vlog::format::{MAX_RECORD_LEN, ValuePointer};
use strata_core::wal::{self, RecoveryMode, SEGMENT_HEADER_LEN};
use strata_core::{Bytes, filenames};
use strata_core::{CorruptionKind, Engine, EngineOptions, Error, LogicalClock, Mode, TxnCore};
use strata_vfs::{CrashPolicy, MemFs, Vfs};

fn open(fs: &MemFs) -> strata_core::Result<Engine<MemFs>> {
    Engine::open(fs.clone(), EngineOptions::default(), Arc::new(LogicalClock::default()))
}

fn commit(engine: &Engine<MemFs>, key: &[u8], value: &[u8]) {
    let mut txn = TxnCore::begin(engine, Mode::ReadWrite).expect("begin");
    txn.set(key, value).expect("set");
    engine.commit(txn.finish().expect("finish")).expect("commit");
}

fn get(engine: &Engine<MemFs>, key: &[u8]) -> Option<Bytes> {
    let txn = TxnCore::begin(engine, Mode::ReadOnly).expect("begin");
    txn.get(engine, key).expect("read")
}

/// The newest WAL segment of `fs`.
fn last_segment(fs: &MemFs) -> u64 {
    fs.list()
        .expect("list")
        .iter()
        .filter_map(|name| name.strip_suffix(".wal")?.parse::<u64>().ok())
        .max()
        .expect("a WAL segment")
}

fn expect_corruption(
    result: strata_core::Result<Engine<MemFs>>,
    file: &str,
    what: &str,
) -> CorruptionKind {
    match result {
        Err(Error::Corruption { file: got, kind, .. }) => {
            assert_eq!(got, file, "{what}: the error names the file");
            kind
        }
        Err(other) => panic!("{what}: expected Corruption naming {file}, got {other:?}"),
        Ok(_) => panic!("{what}: expected Corruption naming {file}, the database opened"),
    }
}

/// `fuzz/seeds/<target>/<name>` holds `bytes`: written with `STRATA_WRITE_FUZZ_SEEDS=1`,
/// checked otherwise.
fn fuzz_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds").join(target);
    let path = dir.join(name);
    if std::env::var_os("STRATA_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).expect("seed dir");
        std::fs::write(&path, bytes).expect("write seed");
    }
    let stored = std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; run with STRATA_WRITE_FUZZ_SEEDS=1 to write it", path.display())
    });
    assert!(stored == bytes, "{} is stale; rerun with STRATA_WRITE_FUZZ_SEEDS=1", path.display());
}

#[test]
fn an_oversized_value_pointer_is_corruption_naming_the_wal_segment() {
    let fs = MemFs::new();
    let engine = open(&fs).expect("opens");
    commit(&engine, b"before", b"kept");
    // The engine writes the crafted op itself, so the WAL record's framing and checksums are
    // right: only the pointer's length is wrong, one byte more than any record can be.
    let pointer = ValuePointer { file: 77, offset: 16, len: MAX_RECORD_LEN + 1 }.encode();
    let mut batch = WriteBatch::new();
    batch.set_pointer(b"k", &pointer, None);
    let mut request =
        TxnCore::begin(&engine, Mode::ReadWrite).expect("begin").finish().expect("finish");
    let batch_bytes = batch.clone();
    request.batch = batch;
    request.sync = true;
    engine.commit(request).expect("the commit path does not decode pointers");
    let image = fs.crash(CrashPolicy::DropUnsynced, 0);
    drop(engine);

    let segment = filenames::wal(last_segment(&image));
    let kind = expect_corruption(open(&image), &segment, "oversized pointer");
    assert_eq!(kind, CorruptionKind::BadBatch, "a pointer that does not decode");

    // One byte less is a record that could exist: the same crafted WAL then opens (the id is
    // one the manifest does not name, which recovery accepts as a value GC replaced).
    let fs = MemFs::new();
    let engine = open(&fs).expect("opens");
    let fits = ValuePointer { file: 77, offset: 16, len: MAX_RECORD_LEN }.encode();
    let mut batch = WriteBatch::new();
    batch.set_pointer(b"k", &fits, None);
    let mut request =
        TxnCore::begin(&engine, Mode::ReadWrite).expect("begin").finish().expect("finish");
    request.batch = batch;
    request.sync = true;
    engine.commit(request).expect("commit");
    let image = fs.crash(CrashPolicy::DropUnsynced, 0);
    drop(engine);
    open(&image).expect("a pointer at the cap decodes");

    fuzz_seed("vlog", "oversized_pointer", &pointer);
    fuzz_seed("batch", "oversized_pointer", batch_bytes.as_bytes());
}

/// A database closed cleanly after three commits, and what its manifest recovered to.
fn closed_cleanly() -> (MemFs, manifest::Recovered, Vec<u64>) {
    let fs = MemFs::new();
    let engine = open(&fs).expect("opens");
    for i in 0..3u8 {
        commit(&engine, &[b'k', i], &[i; 100]);
    }
    engine.close().expect("clean close");
    drop(engine);
    let recovered = manifest::recover(&fs, EngineOptions::default().level_count)
        .expect("recover")
        .expect("a manifest");
    // Where each record of the last segment starts: the end of the one before.
    let (segment, _) = recovered.wal_closed.expect("a clean close is recorded");
    let mut starts = Vec::new();
    wal::replay(&fs, &[segment], filenames::wal, RecoveryMode::AbsoluteConsistency, |_, pos| {
        starts.push(pos.offset);
        Ok(())
    })
    .expect("replays");
    (fs, recovered, starts)
}

/// A copy of `fs` whose live manifest is a new, checksum-valid one: the recovered state with
/// the clean-close record saying `len` for the last segment.
fn with_clean_close_len(fs: &MemFs, recovered: &manifest::Recovered, len: u64) -> MemFs {
    let image = fs.crash(CrashPolicy::KeepUnsynced, 0);
    let mut snapshot = recovered.snapshot_edit();
    snapshot.wal_closed = None;
    let (segment, _) = recovered.wal_closed.expect("closed");
    // As a clean close writes it: the snapshot, then an edit carrying only the close.
    let mut writer = ManifestWriter::create(&image, recovered.next_file_number, &snapshot)
        .expect("writes a manifest");
    let close = VersionEdit { wal_closed: Some((segment, len)), ..VersionEdit::default() };
    writer.append(&close).expect("appends the clean close");
    image
}

#[test]
fn a_clean_close_length_that_does_not_match_the_segment_is_corruption_naming_it() {
    let (fs, recovered, starts) = closed_cleanly();
    let (segment, synced) = recovered.wal_closed.expect("closed");
    let name = filenames::wal(segment);
    // A clean close leaves the synced bytes, then at most the writer's reserved space, zeros
    // (docs/format/wal.md, "Zero tail").
    let bytes = fs.read_all(&name).expect("segment");
    let file_len = bytes.len() as u64;
    assert!(file_len >= synced, "the file holds the synced bytes");
    assert!(bytes[synced as usize..].iter().all(|&b| b == 0), "then only zeros");
    assert_eq!(starts.len(), 3, "three commits, three records");

    // The crafted manifest with the true length opens and has everything: the manifest
    // itself is sound, only the length is under test.
    let sound = with_clean_close_len(&fs, &recovered, synced);
    let engine = open(&sound).expect("the true length opens");
    assert_eq!(get(&engine, &[b'k', 2]).as_deref(), Some(&[2u8; 100][..]));
    drop(engine);

    let last_record = *starts.last().expect("a record");
    let cases = [
        ("inside the segment header", SEGMENT_HEADER_LEN as u64 - 1),
        ("zero", 0),
        ("shorter than synced, at a record boundary", last_record),
        ("shorter than synced, inside a record", last_record + 3),
        ("longer than synced, inside the zero tail", synced + 1),
        ("longer than the file", file_len + 1),
    ];
    for (what, len) in cases {
        let image = with_clean_close_len(&fs, &recovered, len);
        if what.starts_with("shorter than synced, at") {
            let manifest_name = filenames::manifest(recovered.next_file_number);
            let mut seed = image.read_all(&name).expect("segment");
            // Without the zero tail: the seed is the segment's records (a smaller input for
            // the fuzzer; zero tails have their own tests).
            seed.truncate(synced as usize);
            seed.extend_from_slice(&len.to_le_bytes());
            fuzz_seed("wal_replay", "clean_close_short", &seed);
            fuzz_seed(
                "manifest_edit",
                "clean_close_short",
                &manifest_edit_payload(&image, &manifest_name),
            );
        }
        expect_corruption(open(&image), &name, what);
    }
}

/// The payload of the last record (the clean close) of manifest `name`.
fn manifest_edit_payload(fs: &MemFs, name: &str) -> Vec<u8> {
    let number = name.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()).expect("number");
    let mut last = None;
    let named = |_| name.to_string();
    wal::replay(fs, &[number], named, RecoveryMode::AbsoluteConsistency, |payload, _| {
        last = Some(payload.to_vec());
        Ok(())
    })
    .expect("the crafted manifest replays");
    last.expect("a record")
}

/// A stray WAL segment with a number near `u64::MAX` (a damaged directory, or a crafted one):
/// the flush that retires the segments below the new log number used to try every number of
/// the range `[old log number, new log number)` and ran for ever (found by the `open_db` fuzz
/// target as a timeout). It now removes the segments the directory holds, and nothing is lost.
#[test]
fn a_wal_segment_numbered_near_u64_max_does_not_hang_the_flush() {
    let fs = MemFs::new();
    {
        let engine = open(&fs).expect("create");
        commit(&engine, b"before", b"1");
        engine.close().expect("close");
    }
    // An empty segment far beyond every other file, chained to the last real one (a valid
    // header): recovery replays it (nothing in it) and the file counter continues after it.
    let last = last_segment(&fs);
    // Its records' end (the file goes on with reserved zeros, which a bound must not cover).
    let last_len = fs.appended_len(&filenames::wal(last)).expect("length");
    let stray_no = u64::MAX / 2;
    let header =
        wal::SegmentHeader { segment: stray_no, prev_segment: last, prev_valid_len: last_len };
    fs.write_whole(&filenames::wal(stray_no), &header.encode()).expect("write stray");
    let engine = open(&fs).expect("a valid empty segment opens");
    commit(&engine, b"after", b"2");
    engine.flush_all().expect("flush returns");
    let names = fs.list().expect("list");
    assert!(!names.contains(&filenames::wal(last)), "the retired segment is removed: {names:?}");
    assert_eq!(get(&engine, b"before").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&engine, b"after").as_deref(), Some(&b"2"[..]));
    engine.close().expect("close");
    let engine = open(&fs).expect("reopen");
    assert_eq!(get(&engine, b"before").as_deref(), Some(&b"1"[..]));
    assert_eq!(get(&engine, b"after").as_deref(), Some(&b"2"[..]));
}

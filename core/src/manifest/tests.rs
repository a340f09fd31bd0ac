//! Manifest tests: round trips, rewrites, crash at every sync point, damage, missing files.

#![expect(clippy::indexing_slicing, reason = "tests index fixed positions")]

extern crate std;

use alloc::vec;
use alloc::vec::Vec;
use std::println;

use strata_vfs::{AppendWrite, CrashPolicy, FileKind, MemFs, SyncMode, Vfs};

use super::*;
use crate::error::{CorruptionKind, Error};
use crate::filenames;
use crate::key::ValueKind;
use crate::version::Version;
use crate::version::testkit::{EditGen, Rng, key, meta};
use crate::wal::{self, RecoveryMode, SegmentHeader, WalWriter};

const LEVELS: usize = 4;

/// What the manifest should describe after some prefix of edits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    version: Version,
    log_number: u64,
    last_seq: u64,
    last_ts: u64,
    pointers: Vec<Option<InternalKey>>,
}

impl State {
    fn new() -> Self {
        State {
            version: Version::new(LEVELS),
            log_number: 1,
            last_seq: 0,
            last_ts: 0,
            pointers: vec![None; LEVELS],
        }
    }

    fn apply(&self, e: &VersionEdit) -> State {
        let mut s = self.clone();
        s.version = self.version.apply(e).expect("valid edit");
        s.log_number = e.log_number.unwrap_or(s.log_number);
        s.last_seq = e.last_seq.unwrap_or(s.last_seq);
        s.last_ts = e.last_ts.unwrap_or(s.last_ts);
        for (level, k) in &e.compaction_pointers {
            s.pointers[usize::from(*level)] = Some(k.clone());
        }
        s
    }

    fn snapshot(&self, next_file: u64) -> VersionEdit {
        snapshot_edit(
            &self.version,
            self.log_number,
            next_file,
            self.last_seq,
            self.last_ts,
            &self.pointers,
        )
    }

    fn matches(&self, r: &Recovered) -> bool {
        self.version == r.version
            && self.log_number == r.log_number
            && self.last_seq == r.last_seq
            && self.last_ts == r.last_ts
            && self.pointers == r.compaction_pointers
    }
}

/// A scripted history: edits, the state after each prefix, and when to rewrite the manifest.
struct Plan {
    edits: Vec<VersionEdit>,
    /// `states[i]`: after the first `i` edits.
    states: Vec<State>,
    rewrite_before: Vec<usize>,
    /// Remove a table once the edit deleting it is acknowledged (as the engine does). Off for
    /// damage tests, which recover states older than the acknowledged one.
    remove_deleted: bool,
}

impl Plan {
    fn new(seed: u64, n: usize, rewrite_before: Vec<usize>) -> Self {
        let mut g = EditGen::new(seed);
        let mut states = vec![State::new()];
        let mut edits = Vec::new();
        for _ in 0..n {
            let last = states.last().expect("initial state");
            let e = g.edit(&last.version);
            states.push(last.apply(&e));
            edits.push(e);
        }
        Plan { edits, states, rewrite_before, remove_deleted: false }
    }
}

/// How far a run got.
#[derive(Debug, Default)]
struct Progress {
    /// `create` of the first manifest returned.
    born: bool,
    /// Edits acknowledged.
    acked: usize,
    /// An append was running (its edit may or may not be durable).
    in_flight: bool,
}

fn write_table(fs: &MemFs, no: u64, size: u64) -> crate::Result<()> {
    let name = filenames::table(no);
    let mut f =
        fs.create(&name, FileKind::Table).map_err(|e| Error::io(crate::IoOp::Create, &name, e))?;
    f.append(&vec![0xab; size as usize]).map_err(|e| Error::io(crate::IoOp::Append, &name, e))?;
    f.sync(SyncMode::Data).map_err(|e| Error::io(crate::IoOp::Sync, &name, e))
}

/// Creates the tables an edit adds (those not on disk yet: a move re-adds a live file) and
/// makes them durable, as the engine does before installing an edit.
fn write_tables(fs: &MemFs, e: &VersionEdit) -> crate::Result<()> {
    let mut created = false;
    for (_, f) in &e.added {
        if !fs
            .exists(&filenames::table(f.file_no))
            .map_err(|e| Error::io(crate::IoOp::Size, "", e))?
        {
            write_table(fs, f.file_no, f.size)?;
            created = true;
        }
    }
    if created {
        fs.sync_dir().map_err(|e| Error::io(crate::IoOp::SyncDir, "", e))?;
    }
    Ok(())
}

const FIRST_MANIFEST: u64 = 1_000_000;

/// Runs `plan` against `fs` as the engine would: create, then per edit write its tables,
/// append it, and remove the tables it deleted (without a directory sync); rewrite the
/// manifest where planned (removing the old one, without a directory sync).
fn run(fs: &MemFs, plan: &Plan, p: &mut Progress) -> crate::Result<()> {
    let mut manifest_no = FIRST_MANIFEST;
    let mut w = ManifestWriter::create(fs, manifest_no, &plan.states[0].snapshot(10))?;
    p.born = true;
    for (i, e) in plan.edits.iter().enumerate() {
        if plan.rewrite_before.contains(&i) {
            manifest_no += 1;
            w = ManifestWriter::create(fs, manifest_no, &plan.states[i].snapshot(10_000))?;
            let _ = fs.remove(&filenames::manifest(manifest_no - 1));
        }
        write_tables(fs, e)?;
        p.in_flight = true;
        w.append(e)?;
        p.acked = i + 1;
        p.in_flight = false;
        for &(_, no) in e.deleted.iter().filter(|_| plan.remove_deleted) {
            if !e.added.iter().any(|(_, f)| f.file_no == no) {
                let _ = fs.remove(&filenames::table(no));
            }
        }
    }
    assert_eq!(w.file_no(), manifest_no);
    assert!(w.size() > 40);
    Ok(())
}

/// Recovery of a crash image must succeed and give the state after exactly the acknowledged
/// edits (or one more, if an append was running); then a new manifest started from it must
/// recover to the same state.
fn check_image(image: &MemFs, plan: &Plan, p: &Progress, what: &str) {
    let r =
        recover(image, LEVELS).unwrap_or_else(|e| panic!("{what}: recovery failed: {e} ({p:?})"));
    let Some(r) = r else {
        assert!(!p.born, "{what}: a born database recovered as new ({p:?})");
        return;
    };
    let hi = if p.in_flight { p.acked + 1 } else { p.acked };
    let ok = (p.acked..=hi).any(|j| plan.states[j].matches(&r));
    assert!(ok, "{what}: recovered state is not the acknowledged one ({p:?})");
    assert!(r.next_file_number > r.manifest_file_no);
    // Continue as the engine does: a fresh manifest from the recovered snapshot.
    let w = ManifestWriter::create(image, r.next_file_number, &r.snapshot_edit())
        .unwrap_or_else(|e| panic!("{what}: new manifest: {e}"));
    let again = recover(image, LEVELS).expect("second recovery").expect("exists");
    assert_eq!(again.manifest_file_no, w.file_no());
    assert!(again.stale_manifests.contains(&r.manifest_file_no));
    assert_eq!(
        (&again.version, again.log_number, again.last_seq),
        (&r.version, r.log_number, r.last_seq)
    );
    assert_eq!(again.compaction_pointers, r.compaction_pointers);
}

#[test]
fn create_append_recover_round_trip() {
    let seed = Rng::seed_from_env();
    println!("seed {seed}");
    let plan = Plan::new(seed, 100, vec![]);
    let fs = MemFs::new();
    let mut p = Progress::default();
    run(&fs, &plan, &mut p).expect("run");
    let r = recover(&fs, LEVELS).expect("recover").expect("exists");
    assert!(plan.states[100].matches(&r));
    assert_eq!(r.manifest_file_no, FIRST_MANIFEST);
    assert_eq!(r.manifest_size, fs.size(&filenames::manifest(FIRST_MANIFEST)).expect("size"));
    assert!(r.stale_manifests.is_empty());
    assert!(r.next_file_number > FIRST_MANIFEST, "raised above every file number present");
    assert_eq!(r.version.validate(), Ok(()));
}

#[test]
fn rewrite_then_recover() {
    let seed = Rng::seed_from_env();
    println!("seed {seed}");
    let plan = Plan { remove_deleted: true, ..Plan::new(seed, 60, vec![20, 40]) };
    let fs = MemFs::new();
    run(&fs, &plan, &mut Progress::default()).expect("run");
    let r = recover(&fs, LEVELS).expect("recover").expect("exists");
    assert!(plan.states[60].matches(&r));
    assert_eq!(r.manifest_file_no, FIRST_MANIFEST + 2);
    assert!(r.stale_manifests.is_empty(), "old manifests were removed");
    // A rewrite from the recovered snapshot, then one more edit.
    let mut w =
        ManifestWriter::create(&fs, r.next_file_number, &r.snapshot_edit()).expect("create");
    let e = VersionEdit { last_seq: Some(r.last_seq + 1), ..VersionEdit::default() };
    w.append(&e).expect("append");
    let again = recover(&fs, LEVELS).expect("recover").expect("exists");
    assert_eq!(again.version, r.version);
    assert_eq!(again.last_seq, r.last_seq + 1);
    assert_eq!(again.stale_manifests, [FIRST_MANIFEST + 2]);
}

/// Outcome counts of a crash enumeration, to show every case was reached.
#[derive(Debug, Default)]
struct Tally {
    images: u64,
    new_database: u64,
    acknowledged: u64,
    with_in_flight_edit: u64,
}

fn crash_every_sync_point(plan: &Plan, seed: u64, tally: &mut Tally) {
    let dry = MemFs::new();
    run(&dry, plan, &mut Progress::default()).expect("dry run");
    let total = dry.sync_count();
    for n in 1..=total + 1 {
        for policy in CrashPolicy::ALL {
            let fs = MemFs::new();
            let crash_seed = seed ^ n.wrapping_mul(0x9e37_79b9);
            fs.arm_crash(n, policy, crash_seed);
            let mut p = Progress::default();
            let outcome = run(&fs, plan, &mut p);
            let image = match fs.take_crash_image() {
                Some(image) => image,
                None => {
                    outcome.expect("no crash, no error");
                    fs.crash(policy, crash_seed)
                }
            };
            let what = alloc::format!("seed {seed}, sync point {n}/{total}, {policy:?}");
            check_image(&image, plan, &p, &what);
            tally.images += 1;
            match recover(&image, LEVELS).expect("recovers") {
                None => tally.new_database += 1,
                Some(r) if p.born && plan.states[p.acked].matches(&r) => tally.acknowledged += 1,
                Some(_) => tally.with_in_flight_edit += 1,
            }
        }
    }
}

#[test]
fn crash_at_every_sync_point() {
    let seed = Rng::seed_from_env();
    println!("seed {seed}");
    let mut tally = Tally::default();
    for k in 0..4 {
        let plan = Plan { remove_deleted: true, ..Plan::new(seed + k, 40, vec![15, 30]) };
        crash_every_sync_point(&plan, seed + k, &mut tally);
    }
    println!("{tally:?}");
    println!("crash states: {} (manifest: crash at every sync point)", tally.images);
    assert!(tally.new_database > 0 && tally.acknowledged > 0 && tally.with_in_flight_edit > 0);
}

/// The same with records of 20-60 KiB, so torn and garbage tails cut records spanning blocks.
#[test]
fn crash_at_every_sync_point_with_multi_block_records() {
    let seed = Rng::seed_from_env();
    println!("seed {seed}");
    let mut plan = Plan::new(seed, 12, vec![8]);
    plan.remove_deleted = true;
    let mut rng = Rng::new(seed);
    let mut states = vec![plan.states[0].clone()];
    for e in &mut plan.edits {
        let len = 20_000 + rng.below(40_000) as usize;
        let user = vec![b'a' + rng.below(26) as u8; len];
        e.compaction_pointers.push((2, key(&user, rng.below(100), 1, ValueKind::Set)));
        let next = states.last().expect("state").apply(e);
        states.push(next);
    }
    plan.states = states;
    let mut tally = Tally::default();
    crash_every_sync_point(&plan, seed, &mut tally);
    println!("{tally:?}");
    println!("crash states: {} (manifest: multi-block records)", tally.images);
    assert!(tally.with_in_flight_edit > 0);
}

/// Start offset and framed length of every record of a single-segment manifest.
fn records(fs: &MemFs, no: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    wal::replay(
        fs,
        &[no],
        filenames::manifest,
        RecoveryMode::AbsoluteConsistency,
        |payload, pos| {
            out.push((pos.offset, payload.len() as u64));
            Ok(())
        },
    )
    .expect("replay");
    out
}

fn assert_corruption(r: crate::Result<Option<Recovered>>, file: &str, kind: CorruptionKind) {
    match r {
        Err(Error::Corruption { file: f, kind: k, .. }) => {
            assert_eq!((f.as_str(), k), (file, kind));
        }
        other => panic!("expected {kind:?} in {file}, got {other:?}"),
    }
}

#[test]
fn a_flipped_byte_before_the_last_record_is_corruption_and_in_it_a_torn_tail() {
    let seed = Rng::seed_from_env();
    println!("seed {seed}");
    let plan = Plan::new(seed, 12, vec![]);
    let fs = MemFs::new();
    run(&fs, &plan, &mut Progress::default()).expect("run");
    let name = filenames::manifest(FIRST_MANIFEST);
    let recs = records(&fs, FIRST_MANIFEST);
    assert_eq!(recs.len(), 13);
    let (last_start, _) = recs[12];
    let len = fs.size(&name).expect("size");
    for at in 0..len {
        for xor in [0x01, 0x80] {
            let image = fs.crash(CrashPolicy::KeepUnsynced, 0);
            image.flip_byte(&name, at, xor).expect("flip");
            let r = recover(&image, LEVELS);
            if at < last_start {
                match r {
                    Err(Error::Corruption { file, .. }) => assert_eq!(file, name, "byte {at}"),
                    other => panic!("byte {at}: expected corruption, got {other:?}"),
                }
            } else {
                // Damage in the last record reads as a write torn by a crash.
                let r = r.expect("torn tail").expect("exists");
                assert!(plan.states[11].matches(&r), "byte {at}");
            }
        }
    }
}

#[test]
fn every_truncation_recovers_a_prefix_or_fails_cleanly() {
    let seed = Rng::seed_from_env();
    println!("seed {seed}");
    let plan = Plan::new(seed, 8, vec![]);
    let fs = MemFs::new();
    run(&fs, &plan, &mut Progress::default()).expect("run");
    let name = filenames::manifest(FIRST_MANIFEST);
    let recs = records(&fs, FIRST_MANIFEST);
    let len = fs.size(&name).expect("size");
    for cut in 0..len {
        let image = fs.crash(CrashPolicy::KeepUnsynced, 0);
        image.truncate(&name, cut).expect("truncate");
        let r = recover(&image, LEVELS);
        // Records wholly before the cut survive; the one it cuts is a torn tail.
        let whole = recs.iter().filter(|(off, l)| off + 7 + l <= cut).count();
        match r {
            Ok(Some(r)) => {
                assert!(whole >= 1, "cut {cut}");
                assert!(plan.states[whole - 1].matches(&r), "cut {cut}");
            }
            Err(e @ Error::Corruption { .. }) => {
                assert_eq!(whole, 0, "cut {cut}: the snapshot is gone, yet {e}");
            }
            other => panic!("cut {cut}: {other:?}"),
        }
    }
}

/// A manifest whose records span several blocks: damage in an early block with records in
/// later ones is corruption; a torn record spanning blocks at the end is a torn tail.
#[test]
fn multi_block_records() {
    let fs = MemFs::new();
    let big = |n: u64| VersionEdit {
        compaction_pointers: vec![(1, key(&vec![b'p'; 40_000], n, n, ValueKind::Set))],
        ..VersionEdit::default()
    };
    let mut s = State::new();
    let mut w = ManifestWriter::create(&fs, 5, &s.snapshot(6)).expect("create");
    for n in 0..4 {
        w.append(&big(n)).expect("append");
        s = s.apply(&big(n));
    }
    let name = filenames::manifest(5);
    let r = recover(&fs, LEVELS).expect("recover").expect("exists");
    assert!(s.matches(&r));
    let recs = records(&fs, 5);
    // Damage in record 2 (records 3 and 4 follow): corruption.
    let image = fs.crash(CrashPolicy::KeepUnsynced, 0);
    image.flip_byte(&name, recs[2].0 + 100, 1).expect("flip");
    assert_corruption(recover(&image, LEVELS), &name, CorruptionKind::Checksum);
    // Torn inside the last record, in its second block: the previous state.
    let image = fs.crash(CrashPolicy::KeepUnsynced, 0);
    let len = fs.size(&name).expect("size");
    image.truncate(&name, len - 5).expect("truncate");
    let r = recover(&image, LEVELS).expect("recover").expect("exists");
    assert_eq!(r.compaction_pointers[1].as_ref().map(|k| k.ts), Some(2));
}

/// Where a record of `payload` bytes appended at `start` ends, by the writer's framing: a
/// block tail shorter than a fragment header is padded, and every fragment has a header.
fn framed_end(mut at: u64, mut payload: u64) -> u64 {
    let (block, header) = (wal::BLOCK_SIZE as u64, wal::FRAGMENT_HEADER_LEN as u64);
    loop {
        let left = block - at % block;
        if left < header {
            at += left;
            continue;
        }
        let piece = payload.min(left - header);
        at += header + piece;
        payload -= piece;
        if payload == 0 {
            return at;
        }
    }
}

/// Found by the random crash enumeration (seed 1796427855542921901, multi-block records): the
/// last acknowledged record ended fewer than 7 bytes before a block boundary, so the writer
/// padded the block and began the next record, the one being written when the power went, at
/// the boundary. Recovery took that record's first fragment for another record after the
/// torn bytes, and so for damage, and refused the manifest. A torn record after block padding
/// is a torn tail: recovery gives the acknowledged state.
#[test]
fn torn_record_after_block_padding_is_a_torn_tail() {
    let pointer = |len: usize, n: u64| VersionEdit {
        compaction_pointers: vec![(1, key(&vec![b'p'; len], n, n, ValueKind::Set))],
        ..VersionEdit::default()
    };
    let block = wal::BLOCK_SIZE as u64;
    for gap in 1..wal::FRAGMENT_HEADER_LEN as u64 {
        let fs = MemFs::new();
        let mut s = State::new();
        let mut w = ManifestWriter::create(&fs, 5, &s.snapshot(6)).expect("create");
        // A record whose end leaves `gap` bytes in its block.
        let filler = (100..40_000)
            .map(|len| pointer(len, 1))
            .find(|e| {
                let end = framed_end(w.size(), e.encode_to_vec().len() as u64);
                end % block == block - gap
            })
            .expect("some length ends there");
        w.append(&filler).expect("append");
        s = s.apply(&filler);
        assert_eq!(w.size() % block, block - gap, "the framing model matches the writer");
        // The record in flight at the crash: padded to the next block, spanning two.
        let name = filenames::manifest(5);
        let good_len = fs.size(&name).expect("size");
        w.append(&pointer(40_000, 2)).expect("append");
        let full_len = fs.size(&name).expect("size");
        assert!(full_len > good_len + block, "the record spans blocks");
        for cut in [good_len + gap + 100, good_len + gap + block, full_len - 5] {
            let image = fs.crash(CrashPolicy::KeepUnsynced, 0);
            image.truncate(&name, cut).expect("truncate");
            let r = recover(&image, LEVELS)
                .unwrap_or_else(|e| panic!("gap {gap}, cut at {cut}: {e}"))
                .expect("exists");
            assert!(s.matches(&r), "gap {gap}, cut at {cut}: the acknowledged state");
        }
    }
}

#[test]
fn missing_and_mismatched_files() {
    let fs = MemFs::new();
    let mut s = State::new();
    let mut w = ManifestWriter::create(&fs, 1, &s.snapshot(2)).expect("create");
    let e = VersionEdit { added: vec![(0, meta(7, b"a", b"b", 100))], ..VersionEdit::default() };
    write_tables(&fs, &e).expect("tables");
    w.append(&e).expect("append");
    s = s.apply(&e);
    assert!(s.matches(&recover(&fs, LEVELS).expect("ok").expect("exists")));

    let table = filenames::table(7);
    let short = fs.crash(CrashPolicy::KeepUnsynced, 0);
    short.truncate(&table, 99).expect("truncate");
    assert_corruption(recover(&short, LEVELS), &table, CorruptionKind::MissingFile);
    let gone = fs.crash(CrashPolicy::KeepUnsynced, 0);
    gone.remove(&table).expect("remove");
    assert_corruption(recover(&gone, LEVELS), &table, CorruptionKind::MissingFile);

    // CURRENT naming a manifest that does not exist.
    let dangling = fs.crash(CrashPolicy::KeepUnsynced, 0);
    set_current(&dangling, 99).expect("set");
    assert_corruption(
        recover(&dangling, LEVELS),
        &filenames::manifest(99),
        CorruptionKind::MissingFile,
    );

    // CURRENT removed while a real manifest exists.
    let headless = fs.crash(CrashPolicy::KeepUnsynced, 0);
    headless.remove(filenames::CURRENT).expect("remove");
    assert_corruption(recover(&headless, LEVELS), filenames::CURRENT, CorruptionKind::MissingFile);

    // CURRENT damaged.
    let bad = fs.crash(CrashPolicy::KeepUnsynced, 0);
    bad.flip_byte(filenames::CURRENT, 3, 1).expect("flip");
    assert_corruption(recover(&bad, LEVELS), filenames::CURRENT, CorruptionKind::Checksum);
    let torn = fs.crash(CrashPolicy::KeepUnsynced, 0);
    torn.truncate(filenames::CURRENT, 10).expect("truncate");
    assert_corruption(recover(&torn, LEVELS), filenames::CURRENT, CorruptionKind::Truncated);

    // Another level count.
    assert!(matches!(recover(&fs, LEVELS + 1), Err(Error::InvalidArgument { .. })));
}

/// Writes a manifest by hand: header, the given records, synced, directory synced.
fn raw_manifest(fs: &MemFs, no: u64, records: &[Vec<u8>]) {
    let name = filenames::manifest(no);
    let file = fs.create(&name, FileKind::Manifest).expect("create");
    let header = SegmentHeader { segment: no, prev_segment: 0, prev_valid_len: 0 };
    let mut w = WalWriter::new(file, name, header).expect("header");
    for r in records {
        w.add_record(r).expect("record");
    }
    w.sync().expect("sync");
    fs.sync_dir().expect("sync dir");
}

#[test]
fn new_databases_and_unborn_manifests() {
    let empty_snapshot = State::new().snapshot(2).encode_to_vec();
    // Nothing at all, or only files that are not manifests.
    let fs = MemFs::new();
    assert!(recover(&fs, LEVELS).expect("ok").is_none());
    fs.write_whole("LOCK", b"").expect("lock");
    fs.write_whole(&filenames::wal(3), b"junk").expect("wal");
    assert!(recover(&fs, LEVELS).expect("ok").is_none());

    // A creation that crashed before CURRENT: a lone empty snapshot, or a torn one.
    raw_manifest(&fs, 1, core::slice::from_ref(&empty_snapshot));
    raw_manifest(&fs, 2, &[]);
    fs.write_whole(&filenames::manifest(4), b"STRAT").expect("torn header");
    assert!(recover(&fs, LEVELS).expect("ok").is_none());
    // ... also with a torn CURRENT.
    fs.write_whole(filenames::CURRENT, b"MANIFEST-0000").expect("torn current");
    assert!(recover(&fs, LEVELS).expect("ok").is_none());
    fs.remove(filenames::CURRENT).expect("remove");

    // A manifest with more than a snapshot, or one naming files, is a real database.
    let born = MemFs::new();
    raw_manifest(&born, 1, &[empty_snapshot.clone(), VersionEdit::default().encode_to_vec()]);
    assert_corruption(recover(&born, LEVELS), filenames::CURRENT, CorruptionKind::MissingFile);
    let with_files = MemFs::new();
    let mut snap = State::new().snapshot(2);
    snap.added.push((1, meta(9, b"a", b"b", 1)));
    raw_manifest(&with_files, 1, &[snap.encode_to_vec()]);
    assert_corruption(
        recover(&with_files, LEVELS),
        filenames::CURRENT,
        CorruptionKind::MissingFile,
    );
    with_files.write_whole(filenames::CURRENT, b"MANIF").expect("torn current");
    assert_corruption(recover(&with_files, LEVELS), filenames::CURRENT, CorruptionKind::Truncated);
}

#[test]
fn a_live_manifest_must_start_with_a_snapshot() {
    let fs = MemFs::new();
    raw_manifest(
        &fs,
        3,
        &[VersionEdit { last_seq: Some(1), ..VersionEdit::default() }.encode_to_vec()],
    );
    set_current(&fs, 3).expect("current");
    assert_corruption(recover(&fs, LEVELS), &filenames::manifest(3), CorruptionKind::BadChain);

    let fs = MemFs::new();
    raw_manifest(&fs, 3, &[]);
    set_current(&fs, 3).expect("current");
    assert_corruption(recover(&fs, LEVELS), &filenames::manifest(3), CorruptionKind::Truncated);

    // A record that decodes but cannot apply.
    let fs = MemFs::new();
    let snap = State::new().snapshot(2).encode_to_vec();
    let bad = VersionEdit { deleted: vec![(0, 42)], ..VersionEdit::default() }.encode_to_vec();
    raw_manifest(&fs, 3, &[snap.clone(), bad]);
    set_current(&fs, 3).expect("current");
    assert_corruption(recover(&fs, LEVELS), &filenames::manifest(3), CorruptionKind::BadChain);

    // A record with an unknown tag (checksummed, so not a torn tail even when last).
    let fs = MemFs::new();
    raw_manifest(&fs, 3, &[snap, vec![0x63, 0x00]]);
    set_current(&fs, 3).expect("current");
    assert_corruption(
        recover(&fs, LEVELS),
        &filenames::manifest(3),
        CorruptionKind::UnknownTag(0x63),
    );
}

#[test]
fn create_guards_and_stale_files() {
    let fs = MemFs::new();
    let snap = State::new().snapshot(2);
    let not_snapshot = VersionEdit { last_seq: Some(1), ..VersionEdit::default() };
    assert!(matches!(
        ManifestWriter::create(&fs, 1, &not_snapshot),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(matches!(ManifestWriter::create(&fs, 0, &snap), Err(Error::InvalidArgument { .. })));
    // A leftover of the same name (a creation that crashed) and a stale CURRENT.tmp.
    fs.write_whole(&filenames::manifest(1), b"garbage").expect("stale");
    fs.write_whole(filenames::CURRENT_TMP, b"old").expect("stale tmp");
    let w = ManifestWriter::create(&fs, 1, &snap).expect("create");
    assert_eq!((w.file_no(), w.name()), (1, "MANIFEST-000001"));
    assert!(!fs.exists(filenames::CURRENT_TMP).expect("exists"));
    assert_eq!(fs.read_all(filenames::CURRENT).expect("current"), encode_current(1));
    // The live number is refused.
    assert!(matches!(ManifestWriter::create(&fs, 1, &snap), Err(Error::InvalidArgument { .. })));
    let r = recover(&fs, LEVELS).expect("ok").expect("exists");
    assert!(State::new().matches(&r));
}

#[test]
fn recovered_counters_and_snapshot() {
    let fs = MemFs::new();
    let mut s = State::new();
    s.pointers[2] = Some(key(b"q", 1, 1, ValueKind::Set));
    let mut w = ManifestWriter::create(&fs, 8, &s.snapshot(9)).expect("create");
    let e = VersionEdit {
        log_number: Some(4),
        next_file_number: Some(12),
        last_seq: Some(77),
        last_ts: Some(78),
        ..VersionEdit::default()
    };
    w.append(&e).expect("append");
    fs.write_whole(&filenames::wal(30), b"").expect("wal");
    let r = recover(&fs, LEVELS).expect("ok").expect("exists");
    assert_eq!((r.log_number, r.last_seq, r.last_ts, r.manifest_file_no), (4, 77, 78, 8));
    assert_eq!(r.next_file_number, 31, "raised above 000030.wal");
    let snap = r.snapshot_edit();
    assert!(snap.is_snapshot());
    assert_eq!(snap.compaction_pointers, [(2, key(b"q", 1, 1, ValueKind::Set))]);
    assert_eq!(snap.level_count, Some(LEVELS as u32));
}

/// Found by the `roundtrip_manifest_edit` fuzz target: `Recovered::snapshot_edit` left out the
/// versioning flag, so a manifest rewritten from a recovered state forgot that the database
/// keeps history (and the next open would accept it without versioning, letting compaction
/// drop that history). Both values, and an older manifest's "not recorded", must survive the
/// rewrite.
#[test]
fn recovered_snapshot_edit_keeps_the_versioning_flag() {
    for flag in [Some(true), Some(false), None] {
        let fs = MemFs::new();
        let mut snap = State::new().snapshot(2);
        snap.versioning = flag;
        drop(ManifestWriter::create(&fs, 1, &snap).expect("create"));
        let r = recover(&fs, LEVELS).expect("ok").expect("exists");
        assert_eq!(r.versioning, flag);
        assert_eq!(r.snapshot_edit().versioning, flag, "the snapshot of the recovered state");
        drop(ManifestWriter::create(&fs, 3, &r.snapshot_edit()).expect("rewrite"));
        let again = recover(&fs, LEVELS).expect("ok").expect("exists");
        assert_eq!(again.versioning, flag, "after the rewrite");
    }
}

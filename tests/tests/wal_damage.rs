//! WAL damage through the engine: truncation of the newest segment at (nearly) every byte
//! offset, byte flips inside the log, and the directory lock.
//!
//! A cut in the newest segment is a torn tail: the default recovery mode must open and give
//! exactly the transactions whose records lie wholly before the cut; `AbsoluteConsistency`
//! must refuse every cut that is not at a record boundary. A flipped byte anywhere a torn
//! write cannot explain (a segment before the newest, or a block of the newest followed by a
//! valid block) must be reported as `Corruption` naming the segment, never a panic and never
//! wrong data; `PointInTime` must give the prefix before the damage.
//!
//! Offsets are sampled (every byte near record and block boundaries and in the last 2 KiB,
//! every 13th / 97th elsewhere); `STRATA_SOAK=<n>` divides the strides by n (`STRATA_SOAK=1`:
//! every byte for cuts, every 4th for flips).

#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};

use strata::{Durability, Error, RecoveryMode, Tree, TreeBuilder};
use strata_tests::{
    MARKER_KEY, Model, Rng, TxnSpec, builder_on, copy_fs, diff, dump, newest_wal, prefix_states,
    soak_factor, tagged_value, test_seed, wal_segments,
};
use strata_vfs::MemFs;

const BLOCK: u64 = 32 * 1024;
const HEADER: u64 = 40;
const FRAGMENT_HEADER: u64 = 7;

/// Where one commit's record lies.
#[derive(Debug, Clone)]
struct Record {
    segment: String,
    start: u64,
    end: u64,
}

/// A closed database of 30 Eventual transactions over three WAL segments, the newest holding
/// a record cut into fragments across a block boundary.
struct Fixture {
    /// The same database after a clean close.
    closed: MemFs,
    mem: MemFs,
    states: Vec<Model>,
    records: Vec<Record>,
    segments: Vec<String>,
}

impl Fixture {
    fn new() -> Fixture {
        let mut txns = Vec::new();
        for i in 0..30usize {
            let len = match i {
                0..=19 => 6 * 1024 + 100 * i,
                24 => 40 * 1024,
                _ => 20 + 37 * i,
            };
            let mut writes =
                vec![(format!("key{:02}", i % 11).into_bytes(), Some(tagged_value(i as u64, len)))];
            if i % 4 == 1 {
                writes.push((format!("key{:02}", (i + 3) % 11).into_bytes(), None));
            }
            writes.push((MARKER_KEY.to_vec(), Some(i.to_string().into_bytes())));
            txns.push(TxnSpec { writes, durability: Durability::Eventual });
        }
        let mem = MemFs::new();
        let tree = builder_on(mem.clone()).build().unwrap();
        let mut records: Vec<Record> = Vec::new();
        for t in &txns {
            t.run(&tree).unwrap();
            let segment = newest_wal(&mem).unwrap();
            let end = mem.appended_len(&segment).unwrap();
            let start = match records.last() {
                Some(r) if r.segment == segment => r.end,
                _ => HEADER,
            };
            records.push(Record { segment, start, end });
        }
        // The image a crash leaves with every write kept, taken while the tree is open: the
        // newest segment then has no clean-close bound, so its tail may be torn. (After a
        // clean close the manifest bounds it, and any damage there is corruption; see
        // `damage_after_a_clean_close_is_corruption`.)
        let mem_open = mem.crash(strata_vfs::CrashPolicy::KeepUnsynced, 0);
        tree.close().unwrap();
        drop(tree);
        let closed = mem;
        let mem = mem_open;
        let segments = wal_segments(&mem);
        let f = Fixture { mem, closed, states: prefix_states(&txns), records, segments };
        // The premises of the tests below.
        assert!(f.segments.len() >= 3, "segments: {:?}", f.segments);
        let last = f.last();
        let len = f.len(&last);
        assert!(len > BLOCK + FRAGMENT_HEADER, "the newest segment spans two blocks ({len} bytes)");
        assert!(
            f.records.iter().any(|r| r.segment == last && r.start / BLOCK != (r.end - 1) / BLOCK),
            "a record of the newest segment crosses a block boundary"
        );
        f
    }

    fn last(&self) -> String {
        self.segments.last().unwrap().clone()
    }

    /// The file's length, reserved zeros included (docs/format/wal.md, "Zero tail").
    fn len(&self, segment: &str) -> u64 {
        self.mem.read_all(segment).unwrap().len() as u64
    }

    /// Where the segment's records end (its file goes on with zeros to `len`).
    fn data_len(&self, segment: &str) -> u64 {
        self.mem.appended_len(segment).unwrap()
    }

    /// Records before `segment`, plus those of `segment` ending at or before `offset`.
    fn prefix_at(&self, segment: &str, offset: u64) -> usize {
        self.records
            .iter()
            .filter(|r| r.segment.as_str() < segment || (r.segment == segment && r.end <= offset))
            .count()
    }

    /// Record ends of `segment` (with the header end first).
    fn ends(&self, segment: &str) -> Vec<u64> {
        let mut e = vec![HEADER];
        e.extend(self.records.iter().filter(|r| r.segment == segment).map(|r| r.end));
        e
    }

    /// Offsets to try in `segment` within `lo..hi`: every byte near record and block
    /// boundaries, every `stride`-th elsewhere (every byte when soaking).
    /// `stride` is divided by the soak factor (so `STRATA_SOAK=1` tries every byte for cuts and
    /// every 4th byte for flips, which cost four opens each).
    fn offsets(&self, segment: &str, lo: u64, hi: u64, stride: u64, dense_tail: u64) -> Vec<u64> {
        let stride = (stride / soak_factor()).max(1);
        let mut near: Vec<u64> = self.ends(segment);
        near.extend((1..=hi / BLOCK).map(|b| b * BLOCK));
        (lo..hi)
            .filter(|&o| {
                o % stride == 0
                    || o + dense_tail >= hi
                    || near.iter().any(|&n| o + 12 >= n && o <= n + 12)
            })
            .collect()
    }
}

fn open_with(fs: &MemFs, mode: RecoveryMode, ctx: &str) -> strata::Result<Tree> {
    let b = builder_on(fs.clone()).with_wal_recovery_mode(mode);
    match catch_unwind(AssertUnwindSafe(|| b.build())) {
        Ok(r) => r,
        Err(_) => panic!("{ctx}: opening panicked"),
    }
}

fn expect_state(tree: &Tree, want: &Model, ctx: &str) {
    let got = dump(tree).unwrap_or_else(|e| panic!("{ctx}: read failed: {e:?}"));
    assert!(got == *want, "{ctx}: wrong state: {}", diff(want, &got));
}

/// The newest segment cut at every offset from 0 to its length.
#[test]
fn truncated_newest_segment_recovers_the_records_before_the_cut() {
    let f = Fixture::new();
    let last = f.last();
    let bytes = f.mem.read_all(&last).unwrap();
    let len = bytes.len() as u64;
    let data_len = f.data_len(&last);
    assert!(len > data_len, "the newest segment ends in reserved zeros");
    let ends = f.ends(&last);
    let before_last = f.prefix_at(&last, 0);
    let mut rng = Rng::new(test_seed("truncated_newest_segment (follow-up write sampling)"));
    let (mut cuts, mut refused) = (0u64, 0u64);
    // Every offset of the records (by a stride), then cuts inside the zero tail.
    let tail_cuts = [data_len + 1, data_len + 7, data_len + BLOCK, len];
    for cut in f.offsets(&last, 0, data_len + 1, 13, 2048).into_iter().chain(tail_cuts) {
        let ctx = format!("{last} cut at {cut} of {len}");
        cuts += 1;
        let p = if cut < HEADER { before_last } else { f.prefix_at(&last, cut) };
        let want = &f.states[p];

        // AbsoluteConsistency: only a cut at a record boundary, or one after which only zeros
        // follow the last whole record (block padding, reserved space: a zero tail), opens.
        let prev_end = ends.iter().copied().filter(|&e| e <= cut).max().unwrap_or(0);
        let clean = cut >= HEADER
            && (ends.contains(&cut)
                || bytes[prev_end as usize..cut as usize].iter().all(|&b| b == 0));
        let img = copy_fs(&f.mem);
        img.truncate(&last, cut).unwrap();
        match open_with(&img, RecoveryMode::AbsoluteConsistency, &ctx) {
            Ok(tree) => {
                assert!(clean, "{ctx}: AbsoluteConsistency accepted a torn record");
                expect_state(&tree, want, &format!("{ctx}, AbsoluteConsistency"));
                drop(tree);
                // The image now has a new segment: start the default-mode check afresh.
            }
            Err(Error::Corruption { file, offset, kind }) => {
                assert!(
                    !clean,
                    "{ctx}: AbsoluteConsistency refused a clean cut: {kind:?} at {offset}"
                );
                assert_eq!(file, last, "{ctx}: {kind:?}");
                assert!(offset <= cut.max(HEADER), "{ctx}: corruption reported at {offset}");
                refused += 1;
            }
            Err(e) => panic!("{ctx}: AbsoluteConsistency: unexpected error {e:?}"),
        }

        // The default mode forgives the torn tail.
        let img = copy_fs(&f.mem);
        img.truncate(&last, cut).unwrap();
        let tree = open_with(&img, RecoveryMode::TolerateTornTail, &ctx)
            .unwrap_or_else(|e| panic!("{ctx}: default mode refused a torn tail: {e:?}"));
        expect_state(&tree, want, &ctx);
        // Sometimes: the recovered log keeps working across writes and reopens.
        if rng.percent(10) {
            let extra = TxnSpec {
                writes: vec![(b"after".to_vec(), Some(b"cut".to_vec()))],
                durability: Durability::Immediate,
            };
            extra.run(&tree).unwrap();
            tree.close().unwrap();
            drop(tree);
            let mut want = want.clone();
            extra.apply(&mut want);
            for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::AbsoluteConsistency] {
                let tree = open_with(&img, mode, &ctx)
                    .unwrap_or_else(|e| panic!("{ctx}: reopen {mode:?}: {e:?}"));
                expect_state(&tree, &want, &format!("{ctx}, reopened {mode:?}"));
            }
        }
    }
    eprintln!("checked {cuts} cuts of {last} ({len} bytes); AbsoluteConsistency refused {refused}");
    assert!(refused > 0 && refused < cuts);
}

/// How a flipped byte must be reported.
fn check_flip(f: &Fixture, segment: &str, offset: u64, xor: u8, stats: &mut FlipStats) {
    let ctx = format!("{segment} byte {offset} ^ {xor:#04x}");
    let is_last = segment == f.last();
    let rec_start = f.ends(segment).into_iter().filter(|&e| e <= offset).max().unwrap_or(0);
    for mode in [RecoveryMode::TolerateTornTail, RecoveryMode::AbsoluteConsistency] {
        let img = copy_fs(&f.mem);
        img.flip_byte(segment, offset, xor).unwrap();
        match open_with(&img, mode, &ctx) {
            Err(Error::Corruption { file, offset: at, kind }) => {
                assert_eq!(file, segment, "{ctx}, {mode:?}: {kind:?} at {at} names the wrong file");
                if offset < HEADER {
                    assert_eq!(at, 0, "{ctx}, {mode:?}: header damage reported at {at} ({kind:?})");
                } else {
                    assert!(
                        (rec_start..=offset).contains(&at),
                        "{ctx}, {mode:?}: {kind:?} reported at {at}, outside the damaged record \
                         ({rec_start}..={offset})"
                    );
                }
            }
            Err(e) => panic!("{ctx}, {mode:?}: expected Corruption, got {e:?}"),
            Ok(tree) => {
                let got = dump(&tree).unwrap();
                panic!(
                    "{ctx}, {mode:?}: damage not detected; opened with {} keys ({})",
                    got.len(),
                    which(&f.states, &got)
                );
            }
        }
    }
    // PointInTime: the prefix before the damaged record.
    let img = copy_fs(&f.mem);
    img.flip_byte(segment, offset, xor).unwrap();
    let mode = RecoveryMode::PointInTime;
    match open_with(&img, mode, &ctx) {
        Ok(tree) => {
            let p = if offset < HEADER {
                f.prefix_at(segment, 0)
            } else {
                f.prefix_at(segment, offset)
            };
            assert!(
                offset >= HEADER || is_last,
                "{ctx}: PointInTime opened despite a damaged header"
            );
            expect_state(&tree, &f.states[p], &format!("{ctx}, PointInTime"));
            tree.close().unwrap();
            drop(tree);
            // What PointInTime kept is now the log: the default mode opens it unchanged.
            let tree = open_with(&img, RecoveryMode::TolerateTornTail, &ctx)
                .unwrap_or_else(|e| panic!("{ctx}: default mode after PointInTime: {e:?}"));
            expect_state(&tree, &f.states[p], &format!("{ctx}, default mode after PointInTime"));
            stats.point_in_time_prefixes += 1;
        }
        Err(Error::Corruption { file, offset: at, kind }) => {
            assert!(offset < HEADER, "{ctx}: PointInTime refused record damage: {kind:?} at {at}");
            assert_eq!((file.as_str(), at), (segment, 0), "{ctx}: PointInTime {kind:?}");
        }
        Err(e) => panic!("{ctx}: PointInTime: {e:?}"),
    }
    stats.flips += 1;
}

fn which(states: &[Model], got: &Model) -> String {
    match got.get(MARKER_KEY) {
        None => "no marker".into(),
        Some(m) => {
            let m = String::from_utf8_lossy(m).parse::<usize>().map_or(0, |m| m + 1);
            match states.get(m) {
                Some(s) if s == got => format!("exactly prefix {m}"),
                Some(s) => format!("marker says prefix {m}: {}", diff(s, got)),
                None => "marker out of range".into(),
            }
        }
    }
}

#[derive(Default)]
struct FlipStats {
    flips: u64,
    point_in_time_prefixes: u64,
}

/// A flipped byte in a segment before the newest, or in a block of the newest that a valid
/// block follows, is never mistaken for a torn tail.
#[test]
fn flipped_byte_inside_the_log_is_corruption() {
    let f = Fixture::new();
    let mut rng = Rng::new(test_seed("flipped_byte_inside_the_log_is_corruption"));
    let mut stats = FlipStats::default();
    for segment in &f.segments {
        // The records only: past them an older segment is bounded by its successor's header
        // and the newest has its zero tail (flips there are the newest block's test).
        let len = f.data_len(segment);
        // In the newest segment only blocks followed by another block that holds a fragment.
        let hi = if *segment == f.last() { (len - FRAGMENT_HEADER) / BLOCK * BLOCK } else { len };
        for offset in f.offsets(segment, 0, hi, 97, 0) {
            let xor = rng.nonzero_byte();
            check_flip(&f, segment, offset, xor, &mut stats);
        }
    }
    eprintln!(
        "checked {} byte flips over {} segments; PointInTime recovered a prefix for {}",
        stats.flips,
        f.segments.len(),
        stats.point_in_time_prefixes
    );
}

/// Damage in the newest block of the newest segment looks like a torn write. The default mode
/// forgives it only when no intact fragment follows it (the damaged record was the last one
/// written), and then gives exactly the records before the damage; damage followed by intact,
/// acknowledged records is `Corruption`.
#[test]
fn flipped_byte_in_the_newest_block_is_corruption_or_a_prefix() {
    let f = Fixture::new();
    let mut rng = Rng::new(test_seed("flipped_byte_in_the_newest_block"));
    let last = f.last();
    let len = f.data_len(&last);
    let lo = (len - FRAGMENT_HEADER) / BLOCK * BLOCK;
    let (mut forgiven, mut refused, mut lost_acked) = (0u64, 0u64, 0u64);
    // The newest block's records, then the first bytes of the zero tail (a nonzero byte there
    // is a torn tail after the last record: everything is kept).
    for offset in f.offsets(&last, lo, len, 41, 0).into_iter().chain(len..len + 64) {
        let xor = rng.nonzero_byte();
        let ctx = format!("{last} byte {offset} ^ {xor:#04x}");
        let img = copy_fs(&f.mem);
        img.flip_byte(&last, offset, xor).unwrap();
        match open_with(&img, RecoveryMode::TolerateTornTail, &ctx) {
            Ok(tree) => {
                let p = f.prefix_at(&last, offset);
                expect_state(&tree, &f.states[p], &ctx);
                forgiven += 1;
                if p + 1 < f.states.len() - 1 {
                    lost_acked += 1;
                }
            }
            Err(Error::Corruption { file, .. }) => {
                assert_eq!(file, last, "{ctx}");
                refused += 1;
            }
            Err(e) => panic!("{ctx}: {e:?}"),
        }
    }
    eprintln!(
        "newest block of {last}: {forgiven} flips forgiven as a torn tail ({lost_acked} of them \
         dropping intact acknowledged records after the damaged one), {refused} reported"
    );
    assert_eq!(lost_acked, 0, "damage followed by intact records must not be forgiven");
    assert!(refused > 0 && forgiven > 0, "both outcomes are exercised");
}

/// A second open of an open directory fails with `Locked`; the first handle keeps working and
/// after it closes the directory opens again.
#[test]
fn second_open_is_locked_on_memfs() {
    let mem = MemFs::new();
    check_lock(&|| builder_on(mem.clone()).build());
}

#[test]
fn second_open_is_locked_on_std_fs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    check_lock(&|| TreeBuilder::new().with_path(path.clone()).build());
}

fn check_lock(open: &dyn Fn() -> strata::Result<Tree>) {
    let first = open().unwrap();
    let put = |tree: &Tree, k: &[u8], v: &[u8]| {
        let mut t = tree.begin().unwrap();
        t.set(k, v).unwrap();
        t.set_durability(Durability::Immediate);
        t.commit_blocking()
    };
    put(&first, b"a", b"1").unwrap();
    for _ in 0..3 {
        let second = open();
        assert!(matches!(second, Err(Error::Locked)), "second open: {second:?}");
    }
    put(&first, b"b", b"2").unwrap();
    let mut want = Model::new();
    want.insert(b"a".to_vec(), b"1".to_vec());
    want.insert(b"b".to_vec(), b"2".to_vec());
    assert_eq!(dump(&first).unwrap(), want);
    // A clone is the same handle, not a second open; dropping it keeps the lock.
    let clone = first.clone();
    drop(clone);
    assert!(matches!(open(), Err(Error::Locked)));
    first.close().unwrap();
    let again = open().unwrap();
    assert_eq!(dump(&again).unwrap(), want);
    assert!(matches!(open(), Err(Error::Locked)));
    // Dropping the last handle releases the lock too.
    drop(again);
    drop(first);
    let third = open().unwrap();
    assert_eq!(dump(&third).unwrap(), want);
}

/// After a clean close the manifest records the newest segment's synced length, so damage
/// anywhere in it, even in its last record, is `Corruption` rather than a torn tail.
#[test]
fn damage_after_a_clean_close_is_corruption() {
    let f = Fixture::new();
    let last = f.last();
    let len = f.closed.appended_len(&last).unwrap();
    let file_len = f.closed.read_all(&last).unwrap().len() as u64;
    assert!(file_len > len, "the closed segment ends in reserved zeros");
    // In the last records, and in the zero tail (any nonzero byte after the recorded length).
    for offset in [len - 1, len - 5, len / 2, len, len + 1000, file_len - 1] {
        let img = copy_fs(&f.closed);
        img.flip_byte(&last, offset, 0x20).unwrap();
        let r = open_with(&img, RecoveryMode::TolerateTornTail, "flip after close");
        assert!(matches!(r, Err(Error::Corruption { .. })), "flip at {offset}: {r:?}");
    }
    let img = copy_fs(&f.closed);
    img.truncate(&last, len - 3).unwrap();
    let r = open_with(&img, RecoveryMode::TolerateTornTail, "cut after close");
    assert!(matches!(r, Err(Error::Corruption { .. })), "cut: {r:?}");
    // Cutting only reserved zeros loses nothing: it opens with everything.
    let img = copy_fs(&f.closed);
    img.truncate(&last, len + 100).unwrap();
    let tree = open_with(&img, RecoveryMode::TolerateTornTail, "cut in the zero tail").unwrap();
    expect_state(&tree, &f.states[f.states.len() - 1], "cut in the zero tail");
    drop(tree);
    let tree = open_with(&copy_fs(&f.closed), RecoveryMode::TolerateTornTail, "clean").unwrap();
    expect_state(&tree, &f.states[f.states.len() - 1], "clean reopen");
}

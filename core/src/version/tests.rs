//! Version tests: apply, overlap and point lookups against a brute-force model; shape checks.

#![expect(clippy::indexing_slicing, reason = "tests index fixed positions")]

extern crate std;

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use std::println;

use super::*;
use crate::version::testkit::{EditGen, Rng, meta, ukey};

const LEVELS: usize = 4;

/// The model: file number → (level, file).
type Model = BTreeMap<u64, (usize, FileMeta)>;

fn model_apply(m: &mut Model, e: &VersionEdit) {
    for &(level, no) in &e.deleted {
        let (l, _) = m.remove(&no).expect("model: deleted file exists");
        assert_eq!(l, usize::from(level));
    }
    for (level, f) in &e.added {
        assert!(m.insert(f.file_no, (usize::from(*level), f.clone())).is_none());
    }
}

fn nos(files: &[Arc<FileMeta>]) -> Vec<u64> {
    files.iter().map(|f| f.file_no).collect()
}

fn check_against_model(v: &Version, m: &Model, rng: &mut Rng) {
    for level in 0..LEVELS {
        let mut expect: Vec<&FileMeta> =
            m.values().filter(|(l, _)| *l == level).map(|(_, f)| f).collect();
        if level == 0 {
            expect.sort_by_key(|f| core::cmp::Reverse((f.max_seq, f.file_no)));
        } else {
            expect.sort_by(|a, b| a.smallest.cmp(&b.smallest));
        }
        let got: Vec<&FileMeta> = v.files(level).iter().map(|f| &**f).collect();
        assert_eq!(got, expect, "level {level}");
        assert_eq!(v.level_bytes(level), expect.iter().map(|f| f.size).sum::<u64>());
        for _ in 0..20 {
            let lo = rng.below(215);
            let hi = lo + rng.below(20);
            let (lo, hi) = (ukey(lo), ukey(hi));
            let brute: Vec<u64> =
                expect.iter().filter(|f| f.overlaps(&lo, &hi)).map(|f| f.file_no).collect();
            assert_eq!(nos(&v.overlapping(level, &lo, &hi)), brute, "overlapping L{level}");
            let brute: Vec<u64> =
                expect.iter().filter(|f| f.contains(&lo)).map(|f| f.file_no).collect();
            let got: Vec<u64> = v.files_for_key(level, &lo).map(|f| f.file_no).collect();
            assert_eq!(got, brute, "files_for_key L{level}");
            assert!(level == 0 || got.len() <= 1);
        }
    }
    assert_eq!(v.file_count(), m.len());
    assert_eq!(v.all_files().count(), m.len());
}

#[test]
fn apply_overlap_and_lookup_match_a_model() {
    let seed = Rng::seed_from_env();
    println!("seed {seed}");
    let mut edits = EditGen::new(seed);
    let mut rng = Rng::new(seed ^ 1);
    let mut v = Version::new(LEVELS);
    let mut m = Model::new();
    for step in 0..400 {
        let e = edits.edit(&v);
        v = v.apply(&e).expect("valid edit");
        model_apply(&mut m, &e);
        check_against_model(&v, &m, &mut rng);
        assert_eq!(v.validate(), Ok(()));
        if step % 50 == 0 {
            // The snapshot rebuilds the same version from nothing.
            let rebuilt = Version::new(LEVELS).apply(&v.snapshot_edit()).expect("snapshot");
            assert_eq!(rebuilt, v);
        }
    }
}

#[test]
fn l0_is_newest_first_and_deeper_levels_sorted() {
    let e = VersionEdit {
        added: vec![
            (0, meta(3, b"a", b"z", 1)),
            (0, meta(7, b"m", b"n", 1)),
            (0, meta(5, b"b", b"c", 1)),
            (1, meta(9, b"x", b"y", 1)),
            (1, meta(8, b"a", b"b", 1)),
        ],
        ..VersionEdit::default()
    };
    let v = Version::new(3).apply(&e).expect("apply");
    assert_eq!(nos(v.files(0)), [7, 5, 3]);
    assert_eq!(nos(v.files(1)), [8, 9]);
    let hits: Vec<u64> = v.files_for_key(0, b"m").map(|f| f.file_no).collect();
    assert_eq!(hits, [7, 3]);
    assert_eq!(v.files_for_key(1, b"c").count(), 0);
    assert_eq!(v.files_for_key(1, b"zz").count(), 0);
    assert_eq!(v.files_for_key(5, b"a").count(), 0);
    assert!(v.files(9).is_empty());
    assert_eq!(v.level_bytes(9), 0);
    assert_eq!(v.level_count(), 3);
}

#[test]
fn apply_rejects_impossible_edits() {
    let base = Version::new(3)
        .apply(&VersionEdit {
            added: vec![(0, meta(1, b"a", b"c", 1)), (1, meta(2, b"d", b"f", 1))],
            ..VersionEdit::default()
        })
        .expect("base");
    let bad = [
        // Deleting a file that is absent, or in another level.
        VersionEdit { deleted: vec![(0, 9)], ..VersionEdit::default() },
        VersionEdit { deleted: vec![(1, 1)], ..VersionEdit::default() },
        // A level out of range.
        VersionEdit { added: vec![(3, meta(4, b"a", b"b", 1))], ..VersionEdit::default() },
        VersionEdit { deleted: vec![(7, 1)], ..VersionEdit::default() },
        // A live file number added again (same or another level).
        VersionEdit { added: vec![(2, meta(2, b"x", b"y", 1))], ..VersionEdit::default() },
        // An overlap in L1: shares user key "f" with file 2.
        VersionEdit { added: vec![(1, meta(5, b"f", b"g", 1))], ..VersionEdit::default() },
        // A different level count.
        VersionEdit { level_count: Some(4), ..VersionEdit::default() },
        // A pointer for a level that does not exist.
        VersionEdit {
            compaction_pointers: vec![(3, meta(1, b"a", b"a", 1).smallest)],
            ..VersionEdit::default()
        },
    ];
    for e in bad {
        assert_eq!(base.apply(&e), Err(CorruptionKind::BadChain), "{e:?}");
    }
    // A move within one edit: deletions go first.
    let moved = base
        .apply(&VersionEdit {
            deleted: vec![(1, 2)],
            added: vec![(2, FileMeta::clone(&base.files(1)[0]))],
            ..VersionEdit::default()
        })
        .expect("move");
    assert_eq!(nos(moved.files(2)), [2]);
    assert!(moved.files(1).is_empty());
}

#[test]
fn validate_catches_a_user_key_spanning_two_files() {
    // Built directly: the builder sorts, validate judges.
    let mut b = VersionBuilder::new(&Version::new(2));
    b.apply(&VersionEdit {
        added: vec![(1, meta(1, b"a", b"c", 1)), (1, meta(2, b"c", b"d", 1))],
        ..VersionEdit::default()
    })
    .expect("builder does not validate");
    assert_eq!(b.build().validate(), Err(CorruptionKind::BadChain));
    let mut b = VersionBuilder::new(&Version::new(2));
    b.apply(&VersionEdit {
        added: vec![(1, meta(1, b"a", b"c", 1)), (1, meta(2, b"ca", b"d", 1))],
        ..VersionEdit::default()
    })
    .expect("apply");
    assert_eq!(b.build().validate(), Ok(()));
}

#[test]
fn key_range_spans_files() {
    let files = [Arc::new(meta(1, b"c", b"f", 1)), Arc::new(meta(2, b"a", b"d", 1))];
    assert_eq!(key_range(&files), Some((&b"a"[..], &b"f"[..])));
    assert_eq!(key_range(&[]), None);
}

/// The version layer never imports the manifest (the manifest imports the version layer's
/// edit types and versions): the layers read one way.
#[test]
fn the_version_layer_does_not_import_the_manifest() {
    let sources = [
        ("mod.rs", include_str!("mod.rs")),
        ("builder.rs", include_str!("builder.rs")),
        ("edit.rs", include_str!("edit.rs")),
        ("testkit.rs", include_str!("testkit.rs")),
        ("tests.rs", include_str!("tests.rs")),
    ];
    for (name, text) in sources {
        for line in text.lines().map(str::trim_start) {
            let code = !line.starts_with("//");
            assert!(
                !(code && line.contains(concat!("crate::", "manifest"))),
                "version/{name} imports the manifest: {line}"
            );
        }
    }
}

//! Table-driven tests of the pure picker: small versions built by hand, one expectation each.

#![expect(clippy::indexing_slicing, reason = "tests index fixed positions")]

use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::version::testkit::meta;

/// L1 target 100 bytes, ratio 10 (L2 1000, L3 10000), L0 trigger 4, stop 8, four levels.
fn cfg() -> CompactionConfig {
    CompactionConfig {
        level_count: 4,
        l0_trigger: 4,
        l0_stop: 8,
        base_level_bytes: 100,
        size_ratio: 10,
        target_file_size: 50,
    }
}

/// A file spec: (level, file number, smallest user key, largest user key, size).
type Spec = (u8, u64, &'static str, &'static str, u64);

fn version(files: &[Spec]) -> Version {
    let added = files
        .iter()
        .map(|&(l, no, lo, hi, size)| (l, meta(no, lo.as_bytes(), hi.as_bytes(), size)))
        .collect();
    Version::new(4).apply(&VersionEdit { added, ..VersionEdit::default() }).expect("valid version")
}

fn nos(files: &[Arc<FileMeta>]) -> Vec<u64> {
    files.iter().map(|f| f.file_no).collect()
}

fn none_busy(_: u64) -> bool {
    false
}

/// What a case expects: `None`, or (kind, level, inputs, next inputs, bottommost).
type Expect = Option<(TaskKind, usize, &'static [u64], &'static [u64], bool)>;

struct Case {
    name: &'static str,
    files: &'static [Spec],
    pointers: &'static [(usize, &'static str)],
    busy: &'static [u64],
    expect: Expect,
}

const CASES: &[Case] = &[
    Case { name: "empty", files: &[], pointers: &[], busy: &[], expect: None },
    Case {
        name: "L0 below trigger",
        files: &[(0, 1, "a", "c", 1), (0, 2, "a", "c", 1), (0, 3, "a", "c", 1)],
        pointers: &[],
        busy: &[],
        expect: None,
    },
    Case {
        name: "L0 at trigger takes every L0 file and the L1 files of the union range",
        files: &[
            (0, 1, "b", "c", 1),
            (0, 2, "d", "e", 1),
            (0, 3, "c", "d", 1),
            (0, 4, "m", "n", 1),
            (1, 10, "a", "b", 10),
            (1, 11, "f", "g", 10),
            (1, 12, "h", "i", 10),
            (1, 13, "n", "p", 10),
            (1, 14, "q", "r", 10),
        ],
        pointers: &[],
        busy: &[],
        // Newest first; L1 files 10 (touches "b"), 11 and 12 (inside the union b..n) and 13.
        expect: Some((TaskKind::Merge, 0, &[4, 3, 2, 1], &[10, 11, 12, 13], true)),
    },
    Case {
        name: "busy L0 file blocks L0",
        files: &[
            (0, 1, "a", "b", 1),
            (0, 2, "a", "b", 1),
            (0, 3, "a", "b", 1),
            (0, 4, "a", "b", 1),
        ],
        pointers: &[],
        busy: &[3],
        expect: None,
    },
    Case {
        name: "busy overlapping L1 file blocks L0",
        files: &[
            (0, 1, "a", "b", 1),
            (0, 2, "a", "b", 1),
            (0, 3, "a", "b", 1),
            (0, 4, "a", "b", 1),
            (1, 10, "b", "c", 10),
        ],
        pointers: &[],
        busy: &[10],
        expect: None,
    },
    Case {
        name: "L1 under target",
        files: &[(1, 10, "a", "b", 60), (1, 11, "c", "d", 39)],
        pointers: &[],
        busy: &[],
        expect: None,
    },
    Case {
        name: "L1 at target, no overlap below: a move",
        files: &[(1, 10, "a", "b", 60), (1, 11, "c", "d", 40)],
        pointers: &[],
        busy: &[],
        expect: Some((TaskKind::Move, 1, &[10], &[], true)),
    },
    Case {
        name: "L1 file with L2 overlap: a merge; an L3 file in range clears bottommost",
        files: &[
            (1, 10, "c", "f", 120),
            (2, 20, "a", "c", 10),
            (2, 21, "e", "h", 10),
            (2, 22, "i", "j", 10),
            (3, 30, "h", "h", 10),
        ],
        pointers: &[],
        busy: &[],
        expect: Some((TaskKind::Merge, 1, &[10], &[20, 21], false)),
    },
    Case {
        name: "L3 file outside the range keeps bottommost",
        files: &[(1, 10, "c", "f", 120), (2, 21, "e", "h", 10), (3, 30, "i", "z", 10)],
        pointers: &[],
        busy: &[],
        expect: Some((TaskKind::Merge, 1, &[10], &[21], true)),
    },
    Case {
        name: "highest score wins: L2 at 3.0 over L1 at 2.0",
        files: &[
            (1, 10, "a", "b", 200),
            (2, 20, "a", "b", 1500),
            (2, 21, "c", "d", 1500),
            (3, 30, "c", "c", 10),
        ],
        pointers: &[],
        busy: &[],
        expect: Some((TaskKind::Move, 2, &[20], &[], true)),
    },
    Case {
        name: "round robin: resume after the pointer",
        files: &[(1, 10, "a", "b", 50), (1, 11, "c", "d", 50), (1, 12, "e", "f", 50)],
        pointers: &[(1, "d")],
        busy: &[],
        expect: Some((TaskKind::Move, 1, &[12], &[], true)),
    },
    Case {
        name: "round robin: wrap around past the last file",
        files: &[(1, 10, "a", "b", 50), (1, 11, "c", "d", 50), (1, 12, "e", "f", 50)],
        pointers: &[(1, "f")],
        busy: &[],
        expect: Some((TaskKind::Move, 1, &[10], &[], true)),
    },
    Case {
        name: "round robin: pointer between files",
        files: &[(1, 10, "a", "b", 50), (1, 11, "c", "d", 50), (1, 12, "e", "f", 50)],
        pointers: &[(1, "bb")],
        busy: &[],
        expect: Some((TaskKind::Move, 1, &[11], &[], true)),
    },
    Case {
        name: "busy files and files with busy overlaps are skipped",
        files: &[
            (1, 10, "a", "b", 50),
            (1, 11, "c", "d", 50),
            (1, 12, "e", "f", 50),
            (2, 20, "d", "d", 10),
        ],
        pointers: &[],
        busy: &[10, 20],
        expect: Some((TaskKind::Move, 1, &[12], &[], true)),
    },
    Case {
        name: "everything busy",
        files: &[(1, 10, "a", "b", 50), (1, 11, "c", "d", 50)],
        pointers: &[],
        busy: &[10, 11],
        expect: None,
    },
    Case {
        name: "a blocked level falls back to the next score",
        files: &[(1, 10, "a", "b", 300), (2, 20, "x", "y", 1000)],
        pointers: &[],
        busy: &[10],
        expect: Some((TaskKind::Move, 2, &[20], &[], true)),
    },
    Case {
        name: "the last level is never a source",
        files: &[(3, 30, "a", "z", 1_000_000)],
        pointers: &[],
        busy: &[],
        expect: None,
    },
    Case {
        name: "a move into the last level",
        files: &[(2, 20, "a", "b", 1000)],
        pointers: &[],
        busy: &[],
        expect: Some((TaskKind::Move, 2, &[20], &[], true)),
    },
];

#[test]
fn table() {
    for case in CASES {
        let v = version(case.files);
        let mut pointers: Vec<Option<InternalKey>> = vec![None; 4];
        for &(level, k) in case.pointers {
            // The largest possible internal key of user key `k` (its oldest version).
            pointers[level] = Some(InternalKey::seek_last(bytes::Bytes::from_static(k.as_bytes())));
        }
        let busy = |no: u64| case.busy.contains(&no);
        let got = pick(&v, &cfg(), &pointers, &busy);
        let got = got.map(|t| {
            assert_eq!(t.output_level, t.level + 1, "{}", case.name);
            assert!(t.score >= 1.0, "{}", case.name);
            assert!(t.all_inputs().all(|f| !busy(f.file_no)), "{}", case.name);
            (t.kind, t.level, nos(&t.inputs), nos(&t.next_inputs), t.bottommost)
        });
        let want = case.expect.map(|(k, l, i, n, b)| (k, l, i.to_vec(), n.to_vec(), b));
        assert_eq!(got, want, "case: {}", case.name);
    }
}

#[test]
fn scores_and_targets() {
    let c = cfg();
    assert_eq!(
        [c.level_target(0), c.level_target(1), c.level_target(2), c.level_target(3)],
        [0, 100, 1000, 10000]
    );
    let v = version(&[
        (0, 1, "a", "b", 1),
        (0, 2, "a", "b", 1),
        (1, 10, "a", "b", 150),
        (2, 20, "a", "b", 500),
    ]);
    let s = level_scores(&v, &c);
    assert_eq!(s.len(), 3, "the last level has no score");
    assert_eq!((s[0].score, s[0].size, s[0].target), (0.5, 2, 4));
    assert_eq!((s[1].score, s[1].size, s[1].target), (1.5, 150, 100));
    assert_eq!((s[2].score, s[2].size, s[2].target), (0.5, 500, 1000));
    let huge = CompactionConfig { size_ratio: u64::MAX, ..c };
    assert_eq!(huge.level_target(3), u64::MAX, "saturates");
    assert_eq!(CompactionConfig::default().level_target(2), 640 * 1024 * 1024);
}

#[test]
fn stall_at_l0_stop() {
    let specs: Vec<Spec> = (1..=8).map(|n| (0, n, "a", "b", 1)).collect();
    let leaked: &'static [Spec] = alloc::boxed::Box::leak(specs.into_boxed_slice());
    assert!(needs_stall(&version(leaked), &cfg()));
    assert!(!needs_stall(&version(&leaked[..7]), &cfg()));
}

#[test]
fn move_edit_and_pointer_update() {
    let v = version(&[(1, 10, "a", "b", 60), (1, 11, "c", "d", 60)]);
    let t = pick(&v, &cfg(), &[], &none_busy).expect("task");
    assert_eq!(t.kind, TaskKind::Move);
    let (level, key) = t.pointer_update().expect("pointer");
    assert_eq!((level, key.user_key.as_ref()), (1, &b"b"[..]));
    let e = t.move_edit().expect("move edit");
    assert_eq!(e.deleted, [(1, 10)]);
    assert_eq!(e.added.len(), 1);
    assert_eq!(e.added[0].0, 2);
    let after = v.apply(&e).expect("installs");
    assert_eq!(nos(after.files(2)), [10]);
    // The next pick resumes after the pointer.
    let next = pick(&after, &cfg(), &[None, Some(key)], &none_busy);
    assert!(next.is_none(), "L1 is now at 60/100");
    let l0 = version(&[
        (0, 1, "a", "b", 1),
        (0, 2, "a", "b", 1),
        (0, 3, "a", "b", 1),
        (0, 4, "a", "b", 1),
    ]);
    let t = pick(&l0, &cfg(), &[], &none_busy).expect("L0 task");
    assert!(t.pointer_update().is_none() && t.move_edit().is_none());
    assert_eq!(t.input_bytes(), 4);
    assert_eq!(t.key_range(), Some((&b"a"[..], &b"b"[..])));
}

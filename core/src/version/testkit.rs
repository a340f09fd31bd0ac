//! Test helpers shared by the manifest, version and compaction tests: a seeded generator and
//! shorthand constructors.

#![expect(clippy::unwrap_used, reason = "test helpers")]

extern crate std;

use alloc::vec::Vec;
use bytes::Bytes;

use super::FileMeta;
use crate::key::{InternalKey, MAX_SEQ, ValueKind};

pub(crate) use crate::testutil::Rng;

/// Generators for manifest, version and compaction tests.
impl Rng {
    /// A value of random width (small ones are common, so every varint length shows up).
    pub(crate) fn wide(&mut self) -> u64 {
        let bits = self.below(65);
        if bits == 64 { self.next() } else { self.next() & ((1u64 << bits) - 1) }
    }

    /// A short user key over a small alphabet (so keys collide and ranges overlap).
    pub(crate) fn user_key(&mut self) -> Vec<u8> {
        let len = self.below(4) + 1;
        (0..len).map(|_| b'a' + self.below(6) as u8).collect()
    }

    pub(crate) fn ikey(&mut self) -> InternalKey {
        let user = self.user_key();
        let kind = if self.chance(2) { ValueKind::Set } else { ValueKind::Delete };
        InternalKey::new(Bytes::from(user), self.wide(), self.below(MAX_SEQ + 1), kind)
    }

    /// A consistent file description with random keys and counters.
    pub(crate) fn meta(&mut self) -> FileMeta {
        let (mut a, mut b) = (self.ikey(), self.ikey());
        if a > b {
            core::mem::swap(&mut a, &mut b);
        }
        let (s1, s2) = (self.below(MAX_SEQ + 1), self.below(MAX_SEQ + 1));
        let (t1, t2) = (self.wide(), self.wide());
        FileMeta {
            file_no: self.wide(),
            size: self.wide(),
            smallest: a,
            largest: b,
            min_seq: s1.min(s2),
            max_seq: s1.max(s2),
            min_ts: t1.min(t2),
            max_ts: t1.max(t2),
            entries: self.wide(),
        }
    }
}

/// An internal key.
pub(crate) fn key(user: &[u8], ts: u64, seq: u64, kind: ValueKind) -> InternalKey {
    InternalKey::new(Bytes::copy_from_slice(user), ts, seq, kind)
}

/// A file spanning user keys `lo..=hi` with `size` bytes, sequence numbers `file_no * 10` to
/// `file_no * 10 + 5` (so newer numbers hold newer data).
pub(crate) fn meta(file_no: u64, lo: &[u8], hi: &[u8], size: u64) -> FileMeta {
    let (min_seq, max_seq) = (file_no * 10, file_no * 10 + 5);
    FileMeta {
        file_no,
        size,
        smallest: key(lo, max_seq, max_seq, ValueKind::Set),
        largest: key(hi, min_seq, min_seq, ValueKind::Set),
        min_seq,
        max_seq,
        min_ts: min_seq,
        max_ts: max_seq,
        entries: 2,
    }
}

/// User key `n` of the generator's key space: `k000`, `k001`, ...
pub(crate) fn ukey(n: u64) -> Vec<u8> {
    alloc::format!("k{n:03}").into_bytes()
}

/// Inverse of [`ukey`].
fn unkey(k: &[u8]) -> u64 {
    core::str::from_utf8(k.get(1..).unwrap()).unwrap().parse().unwrap()
}

/// Generates random edits that are valid against the version they are applied to: flushes to
/// L0, files added to deeper levels in free ranges, deletions, moves, compaction-like rewrites
/// (a file and its overlaps in the next level replaced by new files), pointers and counters.
#[derive(Debug, Clone)]
pub(crate) struct EditGen {
    pub(crate) rng: Rng,
    pub(crate) next_file: u64,
    pub(crate) last_seq: u64,
    pub(crate) log_number: u64,
}

impl EditGen {
    pub(crate) fn new(seed: u64) -> Self {
        EditGen { rng: Rng::new(seed), next_file: 10, last_seq: 0, log_number: 1 }
    }

    fn file(&mut self, lo: u64, hi: u64) -> FileMeta {
        let no = self.next_file;
        self.next_file += 1;
        let size = self.rng.below(3000) + 1;
        meta(no, &ukey(lo), &ukey(hi), size)
    }

    fn range(&mut self) -> (u64, u64) {
        let lo = self.rng.below(200);
        (lo, lo + self.rng.below(12))
    }

    /// One edit valid against `v` (checked: panics if the generator got it wrong).
    pub(crate) fn edit(&mut self, v: &crate::version::Version) -> crate::version::VersionEdit {
        use crate::version::VersionEdit;
        let levels = v.level_count();
        let mut e = VersionEdit::default();
        let all: Vec<(usize, alloc::sync::Arc<FileMeta>)> =
            v.all_files().map(|(l, f)| (l, f.clone())).collect();
        match self.rng.below(10) {
            4 | 5 if levels > 1 => {
                let level = 1 + self.rng.below(levels as u64 - 1) as usize;
                let (lo, hi) = self.range();
                if v.overlapping(level, &ukey(lo), &ukey(hi)).is_empty() {
                    let f = self.file(lo, hi);
                    e.added.push((level as u8, f));
                }
            }
            6 if !all.is_empty() => {
                let (level, f) = &all[self.rng.below(all.len() as u64) as usize];
                e.deleted.push((*level as u8, f.file_no));
            }
            7 | 8 if !all.is_empty() && levels > 1 => {
                let (level, f) = all[self.rng.below(all.len() as u64) as usize].clone();
                let out = (level + 1).min(levels - 1);
                let lo_key = f.smallest.user_key.clone();
                let hi_key = f.largest.user_key.clone();
                let next: Vec<_> = if out == level {
                    alloc::vec![f.clone()]
                } else {
                    v.overlapping(out, &lo_key, &hi_key)
                };
                let mut lo = unkey(&lo_key);
                let mut hi = unkey(&hi_key);
                for g in &next {
                    lo = lo.min(unkey(&g.smallest.user_key));
                    hi = hi.max(unkey(&g.largest.user_key));
                }
                if out != level {
                    e.deleted.push((level as u8, f.file_no));
                }
                for g in &next {
                    e.deleted.push((out as u8, g.file_no));
                }
                if self.rng.chance(3) && next.is_empty() && out != level {
                    // A move.
                    e.added.push((out as u8, FileMeta::clone(&f)));
                } else if hi > lo && self.rng.chance(2) {
                    let mid = lo + self.rng.below(hi - lo);
                    let a = self.file(lo, mid);
                    let b = self.file(mid + 1, hi);
                    e.added.push((out as u8, a));
                    e.added.push((out as u8, b));
                } else {
                    let a = self.file(lo, hi);
                    e.added.push((out as u8, a));
                }
            }
            9 => {
                let level = self.rng.below(levels as u64) as u8;
                let k = key(&ukey(self.rng.below(200)), 5, 5, ValueKind::Set);
                e.compaction_pointers.push((level, k));
            }
            _ => {}
        }
        if e.added.is_empty() && e.deleted.is_empty() && e.compaction_pointers.is_empty() {
            // A flush to L0.
            let (lo, hi) = self.range();
            let f = self.file(lo, hi);
            e.added.push((0, f));
        }
        if self.rng.chance(2) {
            self.last_seq += self.rng.below(100) + 1;
            e.last_seq = Some(self.last_seq);
            e.last_ts = Some(self.last_seq * 3);
        }
        if self.rng.chance(4) {
            self.log_number += 1;
            e.log_number = Some(self.log_number);
        }
        e.next_file_number = Some(self.next_file);
        if let Err(k) = v.apply(&e) {
            panic!("generator made an invalid edit ({k:?}): {e:?}");
        }
        e
    }
}

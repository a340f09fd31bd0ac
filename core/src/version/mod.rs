//! [`Version`]: the set of live table files, level by level, at one point in time.
//!
//! A version is immutable and shared through `Arc`: readers keep the one they started with
//! while flushes and compactions install new ones ([`Version::apply`]). The manifest is the
//! durable log of the edits between versions (`crate::manifest`); the edit types live here
//! (`edit.rs`) and the manifest imports them, never the other way round.
//!
//! Shape (checked by [`Version::validate`]):
//! - level 0 holds flushed memtables; its files may overlap and are ordered newest first
//!   (by `max_seq` descending, then file number descending);
//! - every deeper level is sorted by smallest key and its files do not overlap in *user keys*:
//!   all versions of a user key live in one file of the level. Compaction output splitting must
//!   cut only between user keys to keep this.

mod builder;
pub mod edit;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use alloc::vec::Vec;

pub use builder::VersionBuilder;
pub use edit::{FileMeta, MAX_LEVELS, VersionEdit, VlogEdit};

use crate::error::CorruptionKind;
use crate::key::user_keys_cmp;

/// The live table files, per level. Cheap to share (`Arc<Version>`), never mutated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Files per level: L0 newest first, L1+ by smallest key.
    levels: Vec<Vec<Arc<FileMeta>>>,
    /// Sum of file sizes per level.
    bytes: Vec<u64>,
}

impl Version {
    /// An empty version with `levels` levels. Level indices are one byte on disk, so at most
    /// [`MAX_LEVELS`] levels exist; a larger count is clamped to it (the engine's options
    /// validation should refuse it first).
    pub fn new(levels: usize) -> Self {
        let levels = levels.min(MAX_LEVELS);
        Version { levels: alloc::vec![Vec::new(); levels], bytes: alloc::vec![0; levels] }
    }

    /// Assembles a version from per-level file lists that are already in order.
    fn from_levels(levels: Vec<Vec<Arc<FileMeta>>>) -> Self {
        let bytes = levels
            .iter()
            .map(|files| files.iter().fold(0u64, |acc, f| acc.saturating_add(f.size)))
            .collect();
        Version { levels, bytes }
    }

    /// The version after `edit`: its deletions first, then its additions (so a file may move
    /// between levels in one edit). Compaction pointers are not part of a version.
    ///
    /// Errors (`BadChain`): a level out of range, a level count other than this version's,
    /// deleting a file that is not in that level, adding a file number that is already live,
    /// or a result that breaks the level shape ([`validate`](Self::validate)). For an edit the
    /// engine built, any of these is a bug; recovery reports them as corruption of the
    /// manifest.
    pub fn apply(&self, edit: &VersionEdit) -> Result<Version, CorruptionKind> {
        let mut b = VersionBuilder::new(self);
        b.apply(edit)?;
        let v = b.build();
        v.validate()?;
        Ok(v)
    }

    /// Checks the level shape: L0 newest first; in every deeper level, files sorted and no user
    /// key in two files. `BadChain` otherwise (a manifest describing an impossible tree).
    pub fn validate(&self) -> Result<(), CorruptionKind> {
        for (level, files) in self.levels.iter().enumerate() {
            for pair in files.windows(2) {
                let [a, b] = pair else { continue };
                let ok = if level == 0 {
                    (a.max_seq, a.file_no) > (b.max_seq, b.file_no)
                } else {
                    a.largest.user_key < b.smallest.user_key
                };
                if !ok {
                    return Err(CorruptionKind::BadChain);
                }
            }
        }
        Ok(())
    }

    /// Number of levels.
    pub fn level_count(&self) -> usize {
        self.levels.len()
    }

    /// The files of `level` (empty if out of range): L0 newest first, L1+ by smallest key.
    pub fn files(&self, level: usize) -> &[Arc<FileMeta>] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// Total size of the files of `level` (0 if out of range).
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.bytes.get(level).copied().unwrap_or(0)
    }

    /// Number of live files over all levels.
    pub fn file_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }

    /// Every live file with its level, level by level, in each level's order.
    pub fn all_files(&self) -> impl Iterator<Item = (usize, &Arc<FileMeta>)> + '_ {
        self.levels.iter().enumerate().flat_map(|(l, files)| files.iter().map(move |f| (l, f)))
    }

    /// The files of `level` whose user-key range intersects `[lo, hi]` (inclusive), in the
    /// level's order. L1+ is searched by bisection.
    pub fn overlapping(&self, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<FileMeta>> {
        let files = self.files(level);
        if level == 0 {
            return files.iter().filter(|f| f.overlaps(lo, hi)).cloned().collect();
        }
        let start = files.partition_point(|f| f.largest.user_key.as_ref() < lo);
        files
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|f| f.smallest.user_key.as_ref() <= hi)
            .cloned()
            .collect()
    }

    /// For a point read: the files of `level` that may hold `user_key`. L0: every file whose
    /// range contains it, newest first. L1+: at most one, found by bisection.
    pub fn files_for_key<'a>(&'a self, level: usize, user_key: &'a [u8]) -> FilesForKey<'a> {
        let files = self.files(level);
        let candidates = if level == 0 {
            files
        } else {
            let i = files.partition_point(|f| user_keys_cmp(&f.largest.user_key, user_key).is_lt());
            files.get(i..=i).unwrap_or_default()
        };
        FilesForKey { files: candidates.iter(), key: user_key }
    }

    /// The edit that rebuilds this version from nothing: the level count and every file as
    /// `added`, level by level. The caller fills in `log_number`, `next_file_number`,
    /// `last_seq`, `last_ts` and the compaction pointers to make it a manifest snapshot (or
    /// uses `manifest::snapshot_edit`).
    pub fn snapshot_edit(&self) -> VersionEdit {
        let added = self
            .all_files()
            .map(|(level, f)| (u8::try_from(level).unwrap_or(u8::MAX), FileMeta::clone(f)))
            .collect();
        // At most MAX_LEVELS (256) levels, so the cast is lossless.
        let level_count = Some(self.levels.len() as u32);
        VersionEdit { level_count, added, ..VersionEdit::default() }
    }
}

/// Iterator of [`Version::files_for_key`].
#[derive(Debug, Clone)]
pub struct FilesForKey<'a> {
    files: core::slice::Iter<'a, Arc<FileMeta>>,
    key: &'a [u8],
}

impl<'a> Iterator for FilesForKey<'a> {
    type Item = &'a Arc<FileMeta>;

    fn next(&mut self) -> Option<Self::Item> {
        let key = self.key;
        self.files.find(|f| f.contains(key))
    }
}

/// The user-key range `[min smallest, max largest]` covered by `files`; `None` if empty.
pub fn key_range<'a>(
    files: impl IntoIterator<Item = &'a Arc<FileMeta>>,
) -> Option<(&'a [u8], &'a [u8])> {
    files.into_iter().fold(None, |acc, f| {
        let (lo, hi) = (f.smallest.user_key.as_ref(), f.largest.user_key.as_ref());
        Some(match acc {
            None => (lo, hi),
            Some((a, b)) => (if lo < a { lo } else { a }, if hi > b { hi } else { b }),
        })
    })
}

//! [`VersionBuilder`]: applies many edits to a version and builds the result once.
//!
//! Recovery replays every record of a manifest; building a full version per record would cost
//! O(files) each. The builder keeps each level as a map keyed by file number, so an edit costs
//! O(changes · log files), and sorts once in [`build`](VersionBuilder::build).

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::Version;
use super::{FileMeta, VersionEdit};
use crate::error::CorruptionKind;

/// A version under construction.
#[derive(Debug, Clone)]
pub struct VersionBuilder {
    /// Per level, file number → file.
    levels: Vec<BTreeMap<u64, Arc<FileMeta>>>,
    /// File number → level, over all levels (a file is live in one level at most).
    location: BTreeMap<u64, usize>,
}

impl VersionBuilder {
    /// Starts from `base` (its files are shared, not copied).
    pub fn new(base: &Version) -> Self {
        let mut levels = alloc::vec![BTreeMap::new(); base.level_count()];
        let mut location = BTreeMap::new();
        for (level, f) in base.all_files() {
            if let Some(map) = levels.get_mut(level) {
                map.insert(f.file_no, Arc::clone(f));
            }
            location.insert(f.file_no, level);
        }
        VersionBuilder { levels, location }
    }

    /// Applies `edit`: deletions, then additions. On error the builder is left partly
    /// updated and must be discarded. Errors: see [`Version::apply`].
    pub fn apply(&mut self, edit: &VersionEdit) -> Result<(), CorruptionKind> {
        if edit.level_count.is_some_and(|n| n as usize != self.levels.len()) {
            return Err(CorruptionKind::BadChain);
        }
        // A file deleted and added by one edit (a trivial move) keeps its `Arc`: readers
        // holding an older version share it, and the engine deletes a table only when nothing
        // but its obsolete list holds that `Arc`.
        let mut removed: Vec<Arc<FileMeta>> = Vec::new();
        for &(level, file_no) in &edit.deleted {
            let map = self.levels.get_mut(usize::from(level)).ok_or(CorruptionKind::BadChain)?;
            removed.push(map.remove(&file_no).ok_or(CorruptionKind::BadChain)?);
            self.location.remove(&file_no);
        }
        for (level, meta) in &edit.added {
            let level = usize::from(*level);
            let map = self.levels.get_mut(level).ok_or(CorruptionKind::BadChain)?;
            if self.location.insert(meta.file_no, level).is_some() {
                return Err(CorruptionKind::BadChain);
            }
            let kept = removed.iter().find(|f| f.file_no == meta.file_no && ***f == *meta);
            let arc = kept.map_or_else(|| Arc::new(meta.clone()), Arc::clone);
            map.insert(meta.file_no, arc);
        }
        for (level, _) in &edit.compaction_pointers {
            if usize::from(*level) >= self.levels.len() {
                return Err(CorruptionKind::BadChain);
            }
        }
        Ok(())
    }

    /// Number of levels.
    pub fn level_count(&self) -> usize {
        self.levels.len()
    }

    /// The version: L0 newest first (`max_seq`, then file number, descending), deeper levels
    /// by smallest key (then file number). Not validated; see [`Version::validate`].
    pub fn build(&self) -> Version {
        let levels = self
            .levels
            .iter()
            .enumerate()
            .map(|(level, map)| {
                let mut files: Vec<Arc<FileMeta>> = map.values().cloned().collect();
                if level == 0 {
                    files.sort_by_key(|f| core::cmp::Reverse((f.max_seq, f.file_no)));
                } else {
                    files.sort_by(|a, b| (&a.smallest, a.file_no).cmp(&(&b.smallest, b.file_no)));
                }
                files
            })
            .collect();
        Version::from_levels(levels)
    }
}

//! The pure compaction picker. See the module docs of `crate::compaction` for the policy.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::key::InternalKey;
use crate::manifest::{FileMeta, VersionEdit};
use crate::version::{Version, key_range};

const MIB: u64 = 1024 * 1024;

/// Shape and thresholds of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionConfig {
    /// Number of levels (L0 included). The last one is never a compaction source.
    pub level_count: usize,
    /// L0 file count that triggers an L0 → L1 compaction.
    pub l0_trigger: usize,
    /// L0 file count at which writers must wait for compaction.
    pub l0_stop: usize,
    /// Target size of L1 in bytes.
    pub base_level_bytes: u64,
    /// Each level below L1 targets this many times the size of the level above.
    pub size_ratio: u64,
    /// Size at which compaction output is cut into a new file.
    pub target_file_size: u64,
}

impl Default for CompactionConfig {
    /// 7 levels, L0 trigger 4 and stop 20, L1 64 MiB, ratio 10, 64 MiB files.
    fn default() -> Self {
        CompactionConfig {
            level_count: 7,
            l0_trigger: 4,
            l0_stop: 20,
            base_level_bytes: 64 * MIB,
            size_ratio: 10,
            target_file_size: 64 * MIB,
        }
    }
}

impl CompactionConfig {
    /// Target size in bytes of `level` (≥ 1): `base_level_bytes × size_ratio^(level - 1)`,
    /// saturating. Level 0 is judged by file count and has no byte target (0).
    pub fn level_target(&self, level: usize) -> u64 {
        if level == 0 {
            return 0;
        }
        (1..level)
            .fold(self.base_level_bytes.max(1), |t, _| t.saturating_mul(self.size_ratio.max(1)))
    }
}

/// How a task is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    /// Merge the inputs into new files of the output level.
    Merge,
    /// Move the single input to the output level: a manifest edit, no data rewritten.
    Move,
}

/// One compaction to run.
#[derive(Debug, Clone)]
pub struct CompactionTask {
    /// Merge or move.
    pub kind: TaskKind,
    /// Source level.
    pub level: usize,
    /// Destination level (`level + 1`).
    pub output_level: usize,
    /// Files from `level` (L0: newest first).
    pub inputs: Vec<Arc<FileMeta>>,
    /// Files from `output_level` overlapping the inputs, by smallest key.
    pub next_inputs: Vec<Arc<FileMeta>>,
    /// No file in any level below `output_level` overlaps the task's key range: tombstones
    /// and versions hidden from every snapshot may be dropped.
    pub bottommost: bool,
    /// The score of the source level when picked (≥ 1).
    pub score: f64,
}

impl CompactionTask {
    /// Every input file, source level first.
    pub fn all_inputs(&self) -> impl Iterator<Item = &Arc<FileMeta>> + '_ {
        self.inputs.iter().chain(self.next_inputs.iter())
    }

    /// The user-key range `[lo, hi]` the task covers (inputs and next inputs).
    pub fn key_range(&self) -> Option<(&[u8], &[u8])> {
        key_range(self.all_inputs())
    }

    /// Total input bytes.
    pub fn input_bytes(&self) -> u64 {
        self.all_inputs().fold(0u64, |acc, f| acc.saturating_add(f.size))
    }

    /// The compaction pointer to record when this task is installed: for a source level ≥ 1,
    /// the largest key of its inputs (the next pick of that level starts after it).
    pub fn pointer_update(&self) -> Option<(u8, InternalKey)> {
        if self.level == 0 {
            return None;
        }
        let largest = self.inputs.iter().map(|f| &f.largest).max()?;
        Some((u8::try_from(self.level).ok()?, largest.clone()))
    }

    /// The edit that installs a [`TaskKind::Move`]: the input deleted from its level and added
    /// to the output level, plus the pointer update. `None` for a merge.
    pub fn move_edit(&self) -> Option<VersionEdit> {
        let (TaskKind::Move, [file]) = (self.kind, self.inputs.as_slice()) else { return None };
        let (from, to) = (u8::try_from(self.level).ok()?, u8::try_from(self.output_level).ok()?);
        Some(VersionEdit {
            deleted: alloc::vec![(from, file.file_no)],
            added: alloc::vec![(to, FileMeta::clone(file))],
            compaction_pointers: self.pointer_update().into_iter().collect(),
            ..VersionEdit::default()
        })
    }
}

/// How urgently a level needs compaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelScore {
    /// The level.
    pub level: usize,
    /// L0: file count / `l0_trigger`; L1+: bytes / target. A level is due at 1 or more.
    pub score: f64,
    /// L0: file count; L1+: bytes.
    pub size: u64,
    /// L0: `l0_trigger`; L1+: the byte target.
    pub target: u64,
}

/// The score of every level that can be a source (all but the last), in level order.
pub fn level_scores(version: &Version, cfg: &CompactionConfig) -> Vec<LevelScore> {
    let levels = cfg.level_count.min(version.level_count());
    (0..levels.saturating_sub(1))
        .map(|level| {
            let (size, target) = if level == 0 {
                (version.files(0).len() as u64, cfg.l0_trigger.max(1) as u64)
            } else {
                (version.level_bytes(level), cfg.level_target(level))
            };
            LevelScore { level, score: size as f64 / target as f64, size, target }
        })
        .collect()
}

/// `true` when L0 holds `l0_stop` files or more: writers should wait for compaction.
pub fn needs_stall(version: &Version, cfg: &CompactionConfig) -> bool {
    version.files(0).len() >= cfg.l0_stop
}

/// The next compaction to run, if any level is due and has work not blocked by `busy` (true
/// for a file number that is an input of a running compaction). `pointers[level]` is the
/// level's round-robin pointer (missing or `None`: start at the first file).
///
/// Levels with a score of at least 1 are tried from the highest score (ties: the lower level);
/// the first that yields a task wins.
pub fn pick(
    version: &Version,
    cfg: &CompactionConfig,
    pointers: &[Option<InternalKey>],
    busy: &dyn Fn(u64) -> bool,
) -> Option<CompactionTask> {
    let mut due: Vec<LevelScore> =
        level_scores(version, cfg).into_iter().filter(|s| s.score >= 1.0).collect();
    // Stable: equal scores keep level order.
    due.sort_by(|a, b| b.score.total_cmp(&a.score));
    due.into_iter().find_map(|s| {
        let pointer = pointers.get(s.level).and_then(Option::as_ref);
        let picked = if s.level == 0 {
            pick_l0(version, busy)
        } else {
            pick_level(version, s.level, pointer, busy)
        };
        picked.map(|(inputs, next_inputs)| task(version, s, inputs, next_inputs))
    })
}

type Picked = (Vec<Arc<FileMeta>>, Vec<Arc<FileMeta>>);

/// Every L0 file and the L1 files they overlap; nothing if any of them is busy.
fn pick_l0(version: &Version, busy: &dyn Fn(u64) -> bool) -> Option<Picked> {
    let inputs = version.files(0);
    if inputs.iter().any(|f| busy(f.file_no)) {
        return None;
    }
    let (lo, hi) = key_range(inputs)?;
    // L1 files do not overlap each other, so the L1 files overlapping the L0 range cover the
    // whole union range: widening it to them adds no further L1 file.
    let next = version.overlapping(1, lo, hi);
    if next.iter().any(|f| busy(f.file_no)) {
        return None;
    }
    Some((inputs.to_vec(), next))
}

/// The first file of `level` after `pointer` (wrapping) that is not busy and whose
/// overlapping files in the next level are not busy, with those files.
fn pick_level(
    version: &Version,
    level: usize,
    pointer: Option<&InternalKey>,
    busy: &dyn Fn(u64) -> bool,
) -> Option<Picked> {
    let files = version.files(level);
    let start = pointer.map_or(0, |p| files.partition_point(|f| f.largest <= *p));
    let n = files.len();
    (0..n).find_map(|i| {
        let f = files.get((start + i) % n)?;
        if busy(f.file_no) {
            return None;
        }
        let next = version.overlapping(level + 1, &f.smallest.user_key, &f.largest.user_key);
        if next.iter().any(|g| busy(g.file_no)) {
            return None;
        }
        Some((alloc::vec![Arc::clone(f)], next))
    })
}

fn task(
    version: &Version,
    s: LevelScore,
    inputs: Vec<Arc<FileMeta>>,
    next_inputs: Vec<Arc<FileMeta>>,
) -> CompactionTask {
    let output_level = s.level + 1;
    let kind =
        if inputs.len() == 1 && next_inputs.is_empty() { TaskKind::Move } else { TaskKind::Merge };
    let bottommost = key_range(inputs.iter().chain(next_inputs.iter())).is_none_or(|(lo, hi)| {
        (output_level + 1..version.level_count()).all(|l| version.overlapping(l, lo, hi).is_empty())
    });
    CompactionTask {
        kind,
        level: s.level,
        output_level,
        inputs,
        next_inputs,
        bottommost,
        score: s.score,
    }
}

#[cfg(test)]
mod tests;

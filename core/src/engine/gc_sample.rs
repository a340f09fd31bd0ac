//! Finding value log garbage without discard statistics: background garbage collection samples
//! sealed files against the tree.
//!
//! Discard statistics grow only when compaction drops versions, and compaction runs only while
//! writes arrive. Once a tree goes idle, overwritten versions can sit in tables that are never
//! merged again, and the value log files their overwrites emptied look live for ever. So when no
//! file's estimate passes `vlog_gc_discard_ratio`, a background step ([`Engine::gc_sample_step`])
//! walks a bounded slice of one sealed file, at most [`SAMPLE_RECORDS`] records: it reads each
//! record's prefix and key (never the value), asks the tree at a snapshot whether a version
//! still points at the record (the question collection itself asks), and adds the record's
//! length to the file's dead or live bytes.
//!
//! - **Dead stays dead.** No write ever points at an existing record again (a relocation
//!   writes a new one), and every record of a sealed file belongs to a commit that is visible
//!   to the snapshot (it is taken under the commit lock, after the file was seen sealed). So
//!   the dead bytes a sample found remain a lower bound for as long as the process runs, and
//!   the picker in `gc.rs` goes by the larger of the discard statistics and the sampled dead
//!   bytes. Both are lower bounds, so neither can make a mostly live file look dead.
//! - **A pass ends early** once the dead bytes found reach the threshold (the next
//!   [`Engine::gc_step`] collects the file) or once the live bytes found rule it out.
//! - **No walk twice over an unchanged file.** A file whose pass ended is walked again only
//!   when the tree changed since that pass began: a newer visible sequence number (a commit,
//!   which may have overwritten its values) or a compaction (which, with versioning, may drop
//!   the last version pointing at a record). The oldest files go first, so those written
//!   longest ago, usually the deadest, are found first.
//! - **Writers come first.** Each step is bounded; steps run back to back only while the tree
//!   is idle (no commit since the previous step). With writers active a worker takes one step
//!   per wake-up, and it runs only when flushes and compactions have nothing to do.
//! - Samples live in memory: after a reopen, files are sampled afresh. Nothing on disk changes.

use alloc::collections::BTreeMap;
use core::sync::atomic::Ordering;

use strata_vfs::FileKind;

use super::gc::KeyPointers;
use super::{Engine, EngineFs};
use crate::vlog::VlogFileMeta;
use crate::vlog::format::FILE_HEADER_LEN;
use crate::{Error, IoOp, Result, SeqNo, filenames};

/// Records looked up per sampling step: a few milliseconds of point lookups, so a step never
/// holds a worker long, while a 4 MiB file of 4 KiB values takes a handful of steps.
pub const SAMPLE_RECORDS: usize = 256;

/// What the tree looked like when a pass began: a finished pass is repeated only once this
/// changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TreeEpoch {
    /// The visible sequence number.
    seq: SeqNo,
    /// Compactions run since open.
    compactions: u64,
}

/// The sampling of one sealed file.
#[derive(Debug, Clone, Copy)]
struct FileSample {
    /// Offset of the next record to look at (0: the pass has not read the header yet).
    next: u64,
    /// Bytes of records this pass found dead.
    dead: u64,
    /// Bytes of records this pass found live.
    live: u64,
    /// Dead bytes earlier passes found: still dead, so still a lower bound.
    dead_before: u64,
    /// The tree when this pass began.
    epoch: TreeEpoch,
    /// The pass ended (reached the end, or decided the file either way).
    done: bool,
}

impl FileSample {
    fn new(epoch: TreeEpoch, dead_before: u64) -> Self {
        FileSample { next: 0, dead: 0, live: 0, dead_before, epoch, done: false }
    }

    /// Bytes of the file known dead.
    fn dead_bytes(&self) -> u64 {
        self.dead.max(self.dead_before)
    }
}

/// Garbage collection's own state, behind the engine's GC lock (one run at a time).
#[derive(Debug, Default)]
pub(super) struct GcState {
    /// Per value log file id, its sampling.
    samples: BTreeMap<u64, FileSample>,
    /// The visible sequence number when the previous background step ended: the same at the
    /// next step means nobody committed in between (the tree is idle).
    last_step_seq: Option<SeqNo>,
}

impl GcState {
    /// Bytes of file `id` known dead: the larger of its discard statistics and its samples.
    pub(super) fn known_dead(&self, id: u64, meta: &VlogFileMeta) -> u64 {
        self.samples.get(&id).map_or(0, FileSample::dead_bytes).max(meta.discarded)
    }

    /// Forgets file `id` (collected).
    pub(super) fn forget(&mut self, id: u64) {
        self.samples.remove(&id);
    }

    /// Records the end of a background step.
    pub(super) fn step_ended(&mut self, visible: SeqNo) {
        self.last_step_seq = Some(visible);
    }
}

impl<V: EngineFs> Engine<V> {
    /// One bounded step of background sampling (see the module doc): walks up to
    /// [`SAMPLE_RECORDS`] records of the sealed file that most needs it, if any. Returns
    /// whether the caller should take another step right away: `true` when it sampled
    /// something while the tree is idle. Does nothing on a closed or poisoned engine, or while
    /// another garbage collection run holds the lock.
    pub fn gc_sample_step(&self) -> Result<bool> {
        self.check_writable()?;
        let Some(mut state) = self.gc_lock.try_lock() else { return Ok(false) };
        let idle = state.last_step_seq == Some(self.snapshots.visible());
        let sampled = self.sample_one_slice(&mut state);
        state.step_ended(self.snapshots.visible());
        Ok(sampled? && idle)
    }

    fn sample_one_slice(&self, state: &mut GcState) -> Result<bool> {
        let epoch = TreeEpoch {
            seq: self.snapshots.visible(),
            compactions: self.stats.compactions.load(Ordering::Relaxed),
        };
        let failed = self.lsm.lock().vlog_gc_failed.clone();
        let files: BTreeMap<u64, VlogFileMeta> =
            self.gc_candidates().into_iter().filter(|(id, _)| !failed.contains(id)).collect();
        state.samples.retain(|id, _| files.contains_key(id));
        // A pass under way first; then the oldest file never sampled, or sampled before the
        // tree last changed.
        let unfinished = state.samples.iter().find(|(_, s)| !s.done).map(|(&id, _)| id);
        let stale = || {
            files.keys().copied().find(|id| state.samples.get(id).is_none_or(|s| s.epoch != epoch))
        };
        let Some(id) = unfinished.or_else(stale) else { return Ok(false) };
        let Some(meta) = files.get(&id).copied() else { return Ok(false) };
        let Some(sealed) = meta.sealed_len else { return Ok(false) };
        let sample = state.samples.entry(id).or_insert_with(|| FileSample::new(epoch, 0));
        if sample.done {
            *sample = FileSample::new(epoch, sample.dead_bytes());
        }

        let total = sealed.saturating_sub(FILE_HEADER_LEN);
        let need = self.opts.vlog_gc_discard_ratio * total as f64;
        let (mut dead, mut live) = (sample.dead, sample.live);
        let dead_before = sample.dead_before;
        let decided = |dead: u64, live: u64| {
            let known = dead.max(dead_before);
            (known > 0 && known as f64 >= need) || ((total.saturating_sub(live)) as f64) < need
        };
        let name = filenames::vlog(meta.file_no);
        let file = self
            .vfs()
            .open(&name, FileKind::ValueLog)
            .map_err(|e| Error::io(IoOp::Open, &name, e))?;
        let snapshot = self.gc_snapshot();
        let mut seen = KeyPointers::new();
        let mut looked = 0usize;
        let scan =
            crate::vlog::scan_keys(&file, &name, sample.next, sealed, |offset, len, key| {
                let versions =
                    self.live_versions_cached(&mut seen, snapshot.seq(), id, offset, key)?;
                if versions.is_empty() {
                    dead += u64::from(len);
                } else {
                    live += u64::from(len);
                }
                looked += 1;
                Ok(looked < SAMPLE_RECORDS && !decided(dead, live))
            })?;
        drop(snapshot);
        self.stats.gc_read_bytes.fetch_add(scan.read_bytes, Ordering::Relaxed);
        self.stats.gc_sampled_records.fetch_add(looked as u64, Ordering::Relaxed);
        sample.next = scan.next;
        sample.dead = dead;
        sample.live = live;
        if scan.damage.is_some() {
            // A sealed file holds whole records up to its length: this one is damaged. Leave
            // it to reads (which report it) and to an explicit run (which names it).
            self.lsm.lock().vlog_gc_failed.insert(id);
            sample.done = true;
        }
        sample.done |= scan.next >= sealed || decided(dead, live);
        Ok(true)
    }
}

//! The engine's side of the value log: moving large values out of commit batches, the head
//! file's life (create, rotate, seal), and deleting files no reader can reach.
//!
//! Ordering (the crash tests enumerate it): a commit appends its large values to the head
//! file, then its batch (holding pointers) to the WAL. The head is flushed before the WAL and,
//! whenever the WAL is synced (an Immediate commit, a segment or memtable rotation, close),
//! synced before it. So a WAL record that survives a power cut points at durable bytes, except
//! in the WAL's unsynced tail, where recovery checks every pointer into the head file and
//! treats the first one that names missing bytes as the end of the log.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::{CommitState, Engine, EngineFs};
use crate::batch::{BatchOp, WriteBatch};
use crate::filenames;
use crate::manifest::{VersionEdit, VlogEdit};
use crate::vlog::{VlogFileMeta, VlogWriter};
use crate::{Error, Result, SeqNo};

impl<V: EngineFs> Engine<V> {
    /// Rewrites each accepted batch holding a value of at least the threshold: the value is
    /// appended to the head value log file and the op becomes a pointer op. Batches without
    /// large values are left as they are.
    pub(super) fn separate_values(
        &self,
        st: &mut CommitState<V::Write>,
        requests: &mut [super::CommitRequest],
        accepted: &[(usize, SeqNo, crate::Timestamp)],
    ) -> Result<()> {
        if !self.opts.vlog_enabled {
            return Ok(());
        }
        let threshold = self.opts.vlog_value_threshold;
        for &(i, _, _) in accepted {
            let Some(req) = requests.get_mut(i) else { continue };
            let large = |op: &Result<BatchOp<'_>, _>| matches!(op, Ok(BatchOp::Set { value, .. }) if value.len() >= threshold);
            if !req.batch.ops().any(|op| large(&op)) {
                continue;
            }
            let mut separated = WriteBatch::new();
            for op in req.batch.ops() {
                let op = op.map_err(|_| Error::invalid("batch", "does not decode"))?;
                match op {
                    BatchOp::Set { key, value, ts } if value.len() >= threshold => {
                        let head = self.vlog_head(st)?;
                        let ptr = head.append(key, value)?;
                        self.stats.vlog_bytes.fetch_add(u64::from(ptr.len), Ordering::Relaxed);
                        if req.relocation {
                            self.stats
                                .gc_write_bytes
                                .fetch_add(u64::from(ptr.len), Ordering::Relaxed);
                        }
                        separated.set_pointer(key, &ptr.encode(), ts);
                    }
                    other => separated.push_op(&other),
                }
            }
            let (seq, ts) = req.batch.stamped();
            separated.stamp(seq, ts);
            req.batch = separated;
        }
        Ok(())
    }

    /// The head file, created or rotated first if needed. A full head is synced and sealed,
    /// and the new one is recorded in the manifest before any pointer into it is written.
    fn vlog_head<'a>(
        &self,
        st: &'a mut CommitState<V::Write>,
    ) -> Result<&'a mut VlogWriter<V::Write>> {
        let full = st.vlog_head.as_ref().is_none_or(|h| h.len() >= self.opts.vlog_max_file_size);
        if full {
            let mut edit = VersionEdit::default();
            if let Some(mut old) = st.vlog_head.take() {
                old.sync()?;
                edit.vlog.push(VlogEdit::Seal { id: old.id(), len: old.len() });
            }
            let id = self.next_file.fetch_add(1, Ordering::Relaxed);
            let head = VlogWriter::create(self.vfs(), id, self.opts.vlog_compression)?;
            edit.vlog.push(VlogEdit::Add { id, file_no: id });
            edit.next_file_number = Some(self.next_file.load(Ordering::Relaxed));
            self.append_vlog_edit(&edit)?;
            self.vlog.add_file(id, id);
            st.vlog_head = Some(head);
        }
        st.vlog_head.as_mut().ok_or(Error::Closed)
    }

    /// Appends `edit` (value log changes only) to the manifest and applies it to the in-memory
    /// file set.
    pub(super) fn append_vlog_edit(&self, edit: &VersionEdit) -> Result<()> {
        let mut lsm = self.lsm.lock();
        self.live_manifest(&mut lsm)?.append(edit)?;
        crate::manifest::apply_vlog(&mut lsm.vlog_files, &edit.vlog)
            .map_err(|k| Error::corruption("MANIFEST", 0, k))
    }

    /// Hands the head's appended records to the OS (before the WAL record pointing at them).
    pub(super) fn flush_vlog(st: &mut CommitState<V::Write>) -> Result<()> {
        match st.vlog_head.as_mut() {
            Some(h) => h.flush(),
            None => Ok(()),
        }
    }

    /// Makes the head's records durable (before the WAL is synced).
    pub(super) fn sync_vlog(st: &mut CommitState<V::Write>) -> Result<()> {
        match st.vlog_head.as_mut() {
            Some(h) => h.sync(),
            None => Ok(()),
        }
    }

    /// Deletes value log files garbage collection emptied once no snapshot older than the
    /// relocation is alive (every reader then finds the values at their new place). The
    /// deletion is recorded in the manifest before the file is removed. Returns how many.
    pub(super) fn delete_unreachable_vlog_files(&self) -> usize {
        let oldest = self.snapshots.oldest();
        let mut lsm = self.lsm.lock();
        let ready: Vec<u64> =
            lsm.vlog_pending.iter().filter(|&&(_, seq)| oldest >= seq).map(|&(id, _)| id).collect();
        if ready.is_empty() {
            return 0;
        }
        let edit = VersionEdit {
            vlog: ready.iter().map(|&id| VlogEdit::Delete { id }).collect(),
            ..VersionEdit::default()
        };
        if lsm.manifest.is_none() && lsm.manifest_deferred.is_none() {
            return 0;
        }
        if self.live_manifest(&mut lsm).and_then(|manifest| manifest.append(&edit)).is_err() {
            // Whether the edit is durable is unknown and the manifest writer is failed: stop
            // installing anything until a reopen recovers what was durable. The files stay.
            drop(lsm);
            self.poison();
            return 0;
        }
        let mut removed: Vec<VlogFileMeta> = Vec::new();
        for id in &ready {
            if let Some(meta) = lsm.vlog_files.remove(id) {
                removed.push(meta);
            }
        }
        lsm.vlog_pending.retain(|(id, _)| !ready.contains(id));
        drop(lsm);
        for (id, meta) in ready.iter().zip(&removed) {
            self.vlog.remove_file(*id);
            let bytes = meta.sealed_len.unwrap_or(0);
            // A failed remove leaves a file the manifest no longer names; the next open
            // removes it.
            let _ = self.vfs().remove(&filenames::vlog(meta.file_no));
            self.stats.gc_deleted_files.fetch_add(1, Ordering::Relaxed);
            self.stats.gc_deleted_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
        removed.len()
    }

    /// The value log files, as `(id, meta)`, for statistics and garbage collection.
    pub fn vlog_files(&self) -> Vec<(u64, VlogFileMeta)> {
        self.lsm.lock().vlog_files.iter().map(|(&id, m)| (id, *m)).collect()
    }

    /// Total bytes of the value log files on disk (the head at its current length).
    pub fn vlog_disk_bytes(&self) -> u64 {
        let names: Vec<alloc::string::String> =
            self.lsm.lock().vlog_files.values().map(|m| filenames::vlog(m.file_no)).collect();
        names.iter().filter_map(|n| self.vfs().size(n).ok()).sum()
    }
}

//! Flush: the oldest immutable memtable becomes a level-0 table.
//!
//! Order of effects, each a crash point the tests enumerate:
//! 1. write the table and sync it; sync the directory (the table exists, nobody names it);
//! 2. append a synced manifest edit adding the table and advancing the log number past the
//!    memtable's WAL segments (now the table is part of the database);
//! 3. install the new version and drop the memtable from the read view;
//! 4. delete the WAL segments below the log number (a crash before this leaves files that the
//!    next open ignores and removes).

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use strata_vfs::FileKind;

use super::{Engine, EngineFs, ReadView};
use crate::filenames::{self, FileName};
use crate::iter::Cursor;
use crate::manifest::{FileMeta, VersionEdit};
use crate::memtable::{MemCursor, Memtable};
use crate::sstable::{TableBuilder, TableProps};
use crate::{Error, IoOp, Result};

impl<V: EngineFs> Engine<V> {
    /// Flushes the oldest immutable memtable, if there is one and no flush is running.
    /// Returns whether it did.
    pub fn flush_one(&self) -> Result<bool> {
        self.check_writable()?;
        {
            let mut lsm = self.lsm.lock();
            if lsm.flushing {
                return Ok(false);
            }
            lsm.flushing = true;
        }
        // The memtable is chosen only now, holding the flag: one chosen from a view read before
        // another thread's flush of it finished is already in a table, and flushing it again
        // would put its old versions in a level-0 table newer than the ones after it.
        let view = self.current_view();
        let result = match view.memtables.len() {
            0 | 1 => Ok(false),
            n => {
                // The next newer memtable's first segment is where replay must start once the
                // oldest is in a table.
                let (mem, successor) = (&view.memtables[n - 1], &view.memtables[n - 2]);
                self.flush_memtable(mem, successor.first_wal_segment()).map(|()| true)
            }
        };
        self.lsm.lock().flushing = false;
        if result.is_err() {
            self.poison();
        }
        result
    }

    /// Flushes every memtable: the active one is made immutable first, then all are written to
    /// tables (waiting for a flush another thread runs). Returns the sequence number the tables
    /// now hold everything up to. Writers keep committing meanwhile, into a new memtable.
    pub fn flush_all(&self) -> Result<crate::SeqNo> {
        let covered = self.rotate_active_memtable()?;
        loop {
            if self.current_view().memtables.len() < 2 {
                break;
            }
            if !self.flush_one()? {
                // Another thread is flushing the oldest memtable; wait for it.
                core::hint::spin_loop();
                #[cfg(feature = "std")]
                std::thread::yield_now();
            }
            if self.lsm.lock().flushed_seq >= covered {
                break;
            }
        }
        Ok(self.lsm.lock().flushed_seq)
    }

    fn flush_memtable(&self, mem: &Arc<Memtable>, new_log_number: u64) -> Result<()> {
        let file_no = self.next_file.fetch_add(1, Ordering::Relaxed);
        let props = self.write_table(file_no, &mut MemCursor::new(Arc::clone(mem), true, None))?;
        let mut edit = VersionEdit {
            log_number: Some(new_log_number),
            next_file_number: Some(self.next_file.load(Ordering::Relaxed)),
            last_seq: Some(mem.max_seq().max(self.lsm.lock().flushed_seq)),
            last_ts: Some(self.last_ts.load(Ordering::Acquire)),
            ..VersionEdit::default()
        };
        if let Some(props) = &props {
            edit.added.push((0, file_meta(file_no, props)));
            self.stats.flush_bytes.fetch_add(props.file_size, Ordering::Relaxed);
        }

        let old_log_number;
        {
            let mut lsm = self.lsm.lock();
            self.live_manifest(&mut lsm)?.append(&edit)?;
            old_log_number = lsm.log_number;
            lsm.log_number = new_log_number;
            lsm.flushed_seq = lsm.flushed_seq.max(mem.max_seq());
            let mut guard = self.view.write();
            let version = Arc::new(
                guard.version.apply(&edit).map_err(|k| Error::corruption("MANIFEST", 0, k))?,
            );
            let memtables =
                guard.memtables.iter().filter(|m| !Arc::ptr_eq(m, mem)).cloned().collect();
            *guard = Arc::new(ReadView { memtables, version });
        }
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        self.delete_wal_segments(old_log_number, new_log_number);
        self.maybe_rewrite_manifest()?;
        Ok(())
    }

    /// Writes every entry of `cursor` into table `file_no` and syncs it and the directory.
    /// Returns `None` (and leaves no file) if there was nothing to write.
    pub(super) fn write_table(
        &self,
        file_no: u64,
        cursor: &mut dyn Cursor,
    ) -> Result<Option<TableProps>> {
        if cursor.head().is_none() {
            return Ok(None);
        }
        let name = filenames::table(file_no);
        let file = self
            .vfs()
            .create(&name, FileKind::Table)
            .map_err(|e| Error::io(IoOp::Create, &name, e))?;
        let mut builder = TableBuilder::new(file, name, self.store.table_options.clone());
        while let Some((key, value)) = cursor.take()? {
            builder.add(&key, &value)?;
        }
        let props = builder.finish()?;
        self.vfs().sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))?;
        Ok(Some(props))
    }

    /// Best-effort removal of obsolete WAL segments `[from, to)`: a segment that survives (a
    /// failed remove or listing, or a crash before the directory is synced) is below the log
    /// number and is removed again at the next open.
    ///
    /// The segments are found by listing the directory, not by trying every number of the
    /// range: segment numbers share one counter with every other file, so the range is sparse,
    /// and a damaged or crafted directory (a segment numbered near `u64::MAX`) made that loop
    /// run for ever (found by the `open_db` fuzz target).
    fn delete_wal_segments(&self, from: u64, to: u64) {
        let Ok(names) = self.vfs().list() else { return };
        for name in names {
            if let Some(FileName::Wal(n)) = filenames::parse(&name)
                && (from..to).contains(&n)
            {
                let _ = self.vfs().remove(&name);
            }
        }
    }
}

/// The manifest's record of a table.
pub(super) fn file_meta(file_no: u64, props: &TableProps) -> FileMeta {
    FileMeta {
        file_no,
        size: props.file_size,
        smallest: props.smallest.clone(),
        largest: props.largest.clone(),
        min_seq: props.min_seq,
        max_seq: props.max_seq,
        min_ts: props.min_ts,
        max_ts: props.max_ts,
        entries: props.entries,
    }
}

impl<V: EngineFs> Engine<V> {
    /// Writes a checkpoint into `dest` (an empty directory; see `crate::checkpoint`):
    /// flushes every memtable, then hard-links (`link(name)` returns `true` when it managed to)
    /// or copies each table of the pinned version, writes a manifest and `CURRENT`, and
    /// publishes the `CHECKPOINT` metadata last. Writers keep committing meanwhile; the
    /// checkpoint holds exactly the commits up to the returned sequence number.
    pub fn create_checkpoint<D: strata_vfs::Vfs>(
        &self,
        dest: &D,
        link: &dyn Fn(&str) -> bool,
    ) -> Result<crate::checkpoint::CheckpointMeta> {
        let existing = dest.list().map_err(|e| Error::io(IoOp::List, "", e))?;
        if !existing.is_empty() {
            return Err(Error::invalid("checkpoint directory", "must be empty or absent"));
        }
        // Registered for the whole copy: value log files that garbage collection empties
        // from now on stay until it ends.
        let pin = self.snapshots.take();
        self.flush_all()?;
        // The version and the sequence number it covers, read together; holding the view pins
        // its tables (compaction cannot delete them while we copy).
        let (view, seq, vlog_files) = {
            // Every value the tables point at is then in a sealed (immutable, synced) file.
            // The head is sealed and the state read under one hold of the commit lock: a
            // commit in between would start a new head, which the list below would name
            // unsealed (restore refuses that) while the live tree keeps appending to it.
            let mut st = self.commit.lock();
            self.seal_vlog_head(&mut st)?;
            let lsm = self.lsm.lock();
            // Files emptied by a collection every reader of the checkpoint's state sees past
            // are not needed (and may be deleted any moment).
            let files: crate::manifest::VlogFiles = lsm
                .vlog_files
                .iter()
                .filter(|(id, _)| {
                    !lsm.vlog_pending.iter().any(|(p, g)| p == *id && *g <= pin.seq())
                })
                .map(|(&id, m)| (id, *m))
                .collect();
            (self.current_view(), lsm.flushed_seq, files)
        };
        let mut total_size = 0;
        let mut max_no = 0;
        for (_, meta) in view.version.all_files() {
            let name = filenames::table(meta.file_no);
            if !link(&name) {
                crate::checkpoint::copy_file(self.vfs(), &name, dest, &name)?;
            }
            total_size += meta.size;
            max_no = max_no.max(meta.file_no);
        }
        let mut vlog_files = vlog_files;
        let mut gone = Vec::new();
        for (&id, meta) in &vlog_files {
            let name = filenames::vlog(meta.file_no);
            if !link(&name)
                && let Err(e) = crate::checkpoint::copy_file(self.vfs(), &name, dest, &name)
            {
                // A collection that finished after the list was taken may have deleted a file
                // whose values every reader of this state finds elsewhere: leave it out.
                if self.lsm.lock().vlog_files.contains_key(&id) {
                    return Err(e);
                }
                let _ = dest.remove(&name);
                gone.push(id);
                continue;
            }
            total_size += meta.sealed_len.unwrap_or(0);
            max_no = max_no.max(meta.file_no);
        }
        for id in gone {
            vlog_files.remove(&id);
        }
        dest.sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))?;
        let mut snapshot = view.version.snapshot_edit();
        snapshot.vlog = crate::manifest::vlog_snapshot(&vlog_files);
        let manifest_no = max_no + 1;
        snapshot.log_number = Some(manifest_no + 1);
        let max_id = vlog_files.keys().next_back().copied().unwrap_or(0);
        snapshot.next_file_number = Some((manifest_no + 2).max(max_id + 1));
        snapshot.last_seq = Some(seq);
        snapshot.versioning = Some(self.opts.versioning);
        snapshot.last_ts = Some(self.last_ts.load(Ordering::Acquire));
        drop(crate::manifest::ManifestWriter::create(dest, manifest_no, &snapshot)?);
        let meta = crate::checkpoint::CheckpointMeta {
            timestamp: self.clock.now_ns(),
            sequence_number: seq,
            sstable_count: view.version.all_files().count() as u64,
            total_size,
        };
        crate::checkpoint::publish_metadata(dest, &meta)?;
        drop(pin);
        Ok(meta)
    }

    /// Syncs and seals the head value log file; the next large value starts a new one.
    fn seal_vlog_head(&self, st: &mut super::CommitState<V::Write>) -> Result<()> {
        self.check_writable()?;
        let Some(head) = st.vlog_head.as_mut() else { return Ok(()) };
        let sealed = head.sync().and_then(|()| {
            let edit = VersionEdit {
                vlog: alloc::vec![crate::manifest::VlogEdit::Seal {
                    id: head.id(),
                    len: head.len()
                }],
                ..VersionEdit::default()
            };
            self.append_vlog_edit(&edit)
        });
        if sealed.is_err() {
            self.poison();
        }
        st.vlog_head = None;
        sealed
    }
}

//! [`ManifestWriter`]: appends version edits to the live manifest, one synced record each.

use strata_vfs::{AppendWrite, FileKind, Vfs};

use super::current;
use crate::error::{Error, IoOp, Result};
use crate::filenames;
use crate::version::VersionEdit;
use crate::wal::{SegmentHeader, WalWriter};

/// The live manifest, open for appending.
///
/// A manifest uses the WAL's framing (`docs/format/wal.md`): a segment header whose number is
/// the manifest's, with no predecessor, then one record per [`VersionEdit`]. Every record is
/// synced before [`append`](Self::append) returns, so an edit is durable when acknowledged and
/// only the last record can ever be torn.
///
/// After any error the writer is failed (every later call returns [`Error::Poisoned`]): how
/// much of the failed record reached the disk is unknown. The engine must stop installing
/// versions (poison itself) until it reopens, which recovers the edits that were durable.
#[derive(Debug)]
pub struct ManifestWriter<W: AppendWrite> {
    log: WalWriter<W>,
    file_no: u64,
}

impl<W: AppendWrite> ManifestWriter<W> {
    /// Starts manifest `file_no` with `snapshot` as its first record and makes it the live one.
    ///
    /// Order (each step durable before the next): create `MANIFEST-file_no`, write the
    /// snapshot record and sync it, then switch `CURRENT` to it ([`current::set_current`]).
    /// So `CURRENT` never names a manifest without its snapshot. This is both how a database
    /// is born and how a grown manifest is rewritten; in the latter case the previous manifest
    /// is obsolete once this returns `Ok`.
    ///
    /// A leftover file of the same name (from a create that crashed before switching
    /// `CURRENT`) is removed first. Refuses (`InvalidArgument`) a `file_no` of 0, the number
    /// `CURRENT` names now, or a `snapshot` that is not one ([`VersionEdit::is_snapshot`]).
    /// On an I/O error, `CURRENT` names either the old or the new manifest: the engine must
    /// poison itself, and recovery picks whichever it is.
    pub fn create<V: Vfs<Write = W>>(
        vfs: &V,
        file_no: u64,
        snapshot: &VersionEdit,
    ) -> Result<Self> {
        if !snapshot.is_snapshot() {
            return Err(Error::invalid(
                "manifest snapshot",
                "must carry every scalar field and no deletions",
            ));
        }
        if file_no == 0 {
            return Err(Error::invalid("manifest number", "must not be 0"));
        }
        if current::read_current(vfs)? == Some(Ok(file_no)) {
            return Err(Error::invalid("manifest number", "names the live manifest"));
        }
        let name = filenames::manifest(file_no);
        let stale = vfs.exists(&name).map_err(|e| Error::io(IoOp::Size, &name, e))?;
        if stale {
            vfs.remove(&name).map_err(|e| Error::io(IoOp::Remove, &name, e))?;
        }
        let file =
            vfs.create(&name, FileKind::Manifest).map_err(|e| Error::io(IoOp::Create, &name, e))?;
        let header = SegmentHeader { segment: file_no, prev_segment: 0, prev_valid_len: 0 };
        let mut log = WalWriter::new(file, name, header)?;
        log.add_record(&snapshot.encode_to_vec())?;
        log.sync()?;
        current::set_current(vfs, file_no)?;
        Ok(ManifestWriter { log, file_no })
    }

    /// Appends `edit` and syncs it: durable when this returns `Ok`.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        self.log.add_record(&edit.encode_to_vec())?;
        self.log.sync()
    }

    /// Bytes written so far (header and framing included): the engine rewrites the manifest
    /// when this grows past its limit.
    pub fn size(&self) -> u64 {
        self.log.len()
    }

    /// This manifest's number.
    pub fn file_no(&self) -> u64 {
        self.file_no
    }

    /// This manifest's file name.
    pub fn name(&self) -> &str {
        self.log.name()
    }
}

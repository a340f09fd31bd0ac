//! Reading a database's files one at a time, for tools (`verify`, the `strata` command-line
//! tool's dump commands) and hosts that open a database they did not create.
//!
//! - [`database_shape`]: `CURRENT` → the live manifest → its snapshot record, which fixes what
//!   the database must be opened with (level count, versioning).
//! - [`replay_log_file`]: any file in the WAL's framing (a WAL segment or a manifest), record
//!   by record, whatever its name: the segment number comes from its own header.
//!
//! Nothing here writes.

use alloc::string::String;

use strata_vfs::{FileKind, RandomRead, Vfs};

use crate::error::{CorruptionKind, Error, IoOp, Result};
use crate::filenames;
use crate::manifest::{self, VersionEdit};
use crate::wal::{self, RecordPos, RecoveryMode, SEGMENT_HEADER_LEN, SegmentHeader, WalReplay};

/// What a database fixes when it is created, as its live manifest records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseShape {
    /// The live manifest's number (`CURRENT` names it).
    pub manifest_file_no: u64,
    /// Levels of the tree: a database opens only with this count.
    pub level_count: usize,
    /// The database keeps version history: it must be opened with versioning.
    pub versioning: bool,
}

/// The shape of the database in `vfs`, from its live manifest; `Ok(None)` when there is no
/// `CURRENT` (no database). A damaged `CURRENT` or manifest is [`Error::Corruption`].
pub fn database_shape<V: Vfs>(vfs: &V) -> Result<Option<DatabaseShape>> {
    let file_no = match manifest::read_current(vfs)? {
        None => return Ok(None),
        Some(Ok(n)) => n,
        Some(Err(kind)) => return Err(Error::corruption(filenames::CURRENT, 0, kind)),
    };
    let name = filenames::manifest(file_no);
    let mut first: Option<VersionEdit> = None;
    let mut versioning = None;
    replay_log_file(vfs, &name, |payload, pos| {
        let edit = VersionEdit::decode(payload)
            .map_err(|kind| Error::corruption(&name, pos.offset, kind))?;
        if edit.versioning.is_some() {
            versioning = edit.versioning;
        }
        if first.is_none() {
            first = Some(edit);
        }
        Ok(())
    })?;
    let level_count = first.and_then(|e| e.level_count).ok_or_else(|| {
        Error::corruption(&name, SEGMENT_HEADER_LEN as u64, CorruptionKind::BadChain)
    })?;
    Ok(Some(DatabaseShape {
        manifest_file_no: file_no,
        // Bounded by MAX_LEVELS when decoded.
        level_count: level_count as usize,
        versioning: versioning.unwrap_or(false),
    }))
}

/// Replays the records of the WAL-framed file `name` (a WAL segment or a manifest) as the
/// last segment of a log, forgiving a torn tail ([`RecoveryMode::TolerateTornTail`]), and
/// calls `on_record(payload, position)` for each. The segment number is taken from the file's
/// own header, so a renamed or copied file reads as well.
pub fn replay_log_file<V: Vfs>(
    vfs: &V,
    name: &str,
    on_record: impl FnMut(&[u8], RecordPos) -> Result<()>,
) -> Result<WalReplay> {
    let header = read_log_header(vfs, name)?;
    let owned = String::from(name);
    wal::replay(
        vfs,
        &[header.segment],
        move |_| owned.clone(),
        RecoveryMode::TolerateTornTail,
        on_record,
    )
}

/// The segment header at the start of the WAL-framed file `name`.
pub fn read_log_header<V: Vfs>(vfs: &V, name: &str) -> Result<SegmentHeader> {
    let file = vfs.open(name, FileKind::Wal).map_err(|e| Error::io(IoOp::Open, name, e))?;
    let len = file.len().map_err(|e| Error::io(IoOp::Size, name, e))?;
    if len < SEGMENT_HEADER_LEN as u64 {
        return Err(Error::corruption(name, 0, CorruptionKind::Truncated));
    }
    let mut buf = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact_at(0, &mut buf).map_err(|e| Error::io(IoOp::Read, name, e))?;
    SegmentHeader::decode(&buf).map_err(|kind| Error::corruption(name, 0, kind))
}

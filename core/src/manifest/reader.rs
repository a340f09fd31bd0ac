//! Recovery: find the live manifest through `CURRENT`, replay its edits, check the result.

#![deny(clippy::indexing_slicing)]

use alloc::vec;
use alloc::vec::Vec;

use strata_vfs::{ErrorKind, FileKind, RandomRead, Vfs};

use super::VlogFiles;
use super::current;
use crate::codec::Decoder;
use crate::error::{CorruptionKind, Error, IoOp, Result};
use crate::filenames::{self, CURRENT, FileName};
use crate::key::{InternalKey, SeqNo, Timestamp};
use crate::version::{Version, VersionBuilder};
use crate::version::{VersionEdit, VlogEdit};
use crate::vlog::VlogFileMeta;
use crate::wal::{
    self, BLOCK_SIZE, FragmentType, RecoveryMode, SEGMENT_HEADER_LEN, fragment_checksum,
};

/// What [`recover`] found: the live version and the counters the manifest carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The live files.
    pub version: Version,
    /// WAL segments numbered below this are obsolete; replay starts at this number.
    pub log_number: u64,
    /// The next unused file number: the manifest's value, raised above every numbered file
    /// (`.wal`, `.sst`, `MANIFEST-`) present in the directory, so a number left behind by a
    /// crash (a table written but never installed, a manifest never made live) is never
    /// handed out again.
    pub next_file_number: u64,
    /// Newest sequence number recorded by the manifest (the WAL may hold newer ones).
    pub last_seq: SeqNo,
    /// Newest commit timestamp recorded by the manifest.
    pub last_ts: Timestamp,
    /// Round-robin compaction pointers, one slot per level.
    pub compaction_pointers: Vec<Option<InternalKey>>,
    /// Set when the last thing the manifest recorded was a clean close: the last WAL segment
    /// and its fully synced length.
    pub wal_closed: Option<(u64, u64)>,
    /// Whether the database keeps history, when the manifest says (older manifests do not).
    pub versioning: Option<bool>,
    /// The value log files, by id.
    pub vlog: VlogFiles,
    /// The live manifest's number.
    pub manifest_file_no: u64,
    /// Bytes of the live manifest up to the end of its last good record.
    pub manifest_size: u64,
    /// Other `MANIFEST-*` files in the directory (older ones, or one whose creation crashed
    /// before `CURRENT` named it): obsolete, to be removed by the engine.
    pub stale_manifests: Vec<u64>,
}

impl Recovered {
    /// The full-snapshot edit of this state, to start a new manifest with.
    pub fn snapshot_edit(&self) -> VersionEdit {
        let mut edit = super::snapshot_edit(
            &self.version,
            self.log_number,
            self.next_file_number,
            self.last_seq,
            self.last_ts,
            &self.compaction_pointers,
        );
        edit.vlog = super::vlog_snapshot(&self.vlog);
        // Whether the database keeps history is part of its state: a manifest rewritten
        // without it would let the next open proceed without versioning.
        edit.versioning = self.versioning;
        edit
    }
}

/// Recovers the live version of the database in `vfs`, which the caller expects to have
/// `level_count` levels.
///
/// - `CURRENT` absent, or torn (not the two-line shape): a new database (`Ok(None)`) if no
///   manifest exists or every manifest is *unborn* — at most one record, a snapshot naming no
///   files, as a database creation that crashed before switching `CURRENT` leaves it. With any
///   other manifest present: `Corruption { file: "CURRENT", kind: MissingFile }` (or
///   `Truncated` when torn).
/// - `CURRENT` with a bad checksum (`Checksum`) or naming something else (`BadMagic`):
///   corruption. Naming a manifest that does not exist: `MissingFile` on that manifest.
/// - The manifest is replayed as in [`RecoveryMode::AbsoluteConsistency`], except that the
///   *last* record may be torn (every record is synced before the next is written, so a torn
///   last record is an edit that was never acknowledged). Damage followed by the start of
///   another record is corruption. The first record must be a snapshot (`BadChain`), every
///   record must decode and apply (`VersionEdit::decode`, [`Version::apply`] errors), and the
///   result must have the level shape (`BadChain`).
/// - The level count is fixed when the database is created and recorded in every snapshot: a
///   different `level_count` is refused with `InvalidArgument` (nothing is modified).
/// - Every file the version names must exist with its recorded size:
///   `Corruption { file: "NNNNNN.sst", kind: MissingFile }` otherwise (offset 0 when absent,
///   the smaller of the two sizes when the size differs).
///
/// Nothing is modified. The engine must not append to the recovered manifest (its tail may be
/// torn): it starts a new one with [`Recovered::snapshot_edit`].
pub fn recover<V: Vfs>(vfs: &V, level_count: usize) -> Result<Option<Recovered>> {
    let mut manifests = Vec::new();
    let mut max_number = 0;
    for name in vfs.list().map_err(|e| Error::io(IoOp::List, "", e))? {
        match filenames::parse(&name) {
            Some(FileName::Manifest(n)) => {
                manifests.push(n);
                max_number = max_number.max(n);
            }
            Some(FileName::Wal(n) | FileName::Table(n) | FileName::ValueLog(n)) => {
                max_number = max_number.max(n);
            }
            _ => {}
        }
    }
    manifests.sort_unstable();
    let live = match current::read_current(vfs)? {
        Some(Ok(n)) => n,
        None => return unborn_or(vfs, &manifests, CorruptionKind::MissingFile),
        Some(Err(CorruptionKind::Truncated)) => {
            return unborn_or(vfs, &manifests, CorruptionKind::Truncated);
        }
        Some(Err(kind)) => return Err(Error::corruption(CURRENT, 0, kind)),
    };
    let name = filenames::manifest(live);
    if manifests.binary_search(&live).is_err() {
        return Err(Error::corruption(&name, 0, CorruptionKind::MissingFile));
    }
    let r = replay_live(vfs, live)?;
    let Some(builder) = r.builder else {
        // replay_live fails when no record was replayed.
        return Err(Error::corruption(&name, 0, CorruptionKind::Truncated));
    };
    if builder.level_count() != level_count {
        return Err(Error::invalid(
            "level_count",
            "differs from the level count the database was created with",
        ));
    }
    let version = builder.build();
    version.validate().map_err(|k| Error::corruption(&name, 0, k))?;
    check_tables(vfs, &version)?;
    Ok(Some(Recovered {
        version,
        log_number: r.log_number,
        next_file_number: r.next_file_number.max(max_number.saturating_add(1)),
        last_seq: r.last_seq,
        last_ts: r.last_ts,
        compaction_pointers: r.pointers,
        wal_closed: r.wal_closed,
        versioning: r.versioning,
        vlog: r.vlog,
        manifest_file_no: live,
        manifest_size: r.good_end,
        stale_manifests: manifests.into_iter().filter(|&m| m != live).collect(),
    }))
}

/// `Ok(None)` (a new database) if every manifest in `manifests` is unborn, else corruption of
/// `CURRENT` with `kind`.
fn unborn_or<V: Vfs>(
    vfs: &V,
    manifests: &[u64],
    kind: CorruptionKind,
) -> Result<Option<Recovered>> {
    for &m in manifests {
        if !is_unborn(vfs, m)? {
            return Err(Error::corruption(CURRENT, 0, kind));
        }
    }
    Ok(None)
}

/// `true` if manifest `file_no` holds at most one record, a snapshot with no files (or a torn
/// header or record): what a crash during database creation leaves.
fn is_unborn<V: Vfs>(vfs: &V, file_no: u64) -> Result<bool> {
    let mut records = 0u64;
    let mut names_files = false;
    let outcome = wal::replay(
        vfs,
        &[file_no],
        filenames::manifest,
        RecoveryMode::TolerateTornTail,
        |payload, _| {
            records += 1;
            names_files |= VersionEdit::decode(payload).map_or(true, |e| !e.added.is_empty());
            Ok(())
        },
    );
    match outcome {
        Ok(_) => Ok(records <= 1 && !names_files),
        Err(e) if e.is_corruption() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The state accumulated while replaying the live manifest.
#[derive(Debug)]
struct Replayed {
    /// Created from the first record (a snapshot, which carries the level count).
    builder: Option<VersionBuilder>,
    log_number: u64,
    next_file_number: u64,
    last_seq: SeqNo,
    last_ts: Timestamp,
    pointers: Vec<Option<InternalKey>>,
    wal_closed: Option<(u64, u64)>,
    versioning: Option<bool>,
    vlog: VlogFiles,
    records: u64,
    good_end: u64,
}

impl Replayed {
    fn apply(&mut self, name: &str, payload: &[u8], offset: u64) -> Result<()> {
        let bad = |kind| Error::corruption(name, offset, kind);
        let edit = VersionEdit::decode(payload).map_err(bad)?;
        let builder = match (&mut self.builder, edit.level_count) {
            (Some(b), _) => b,
            (None, Some(levels)) if edit.is_snapshot() => {
                // The decoder bounds the count by MAX_LEVELS.
                let levels = levels as usize;
                self.pointers = vec![None; levels];
                self.builder.insert(VersionBuilder::new(&Version::new(levels)))
            }
            (None, _) => return Err(bad(CorruptionKind::BadChain)),
        };
        builder.apply(&edit).map_err(bad)?;
        let scalars = [
            (&mut self.log_number, edit.log_number),
            (&mut self.next_file_number, edit.next_file_number),
            (&mut self.last_seq, edit.last_seq),
            (&mut self.last_ts, edit.last_ts),
        ];
        for (slot, v) in scalars {
            if let Some(v) = v {
                *slot = v;
            }
        }
        // Only the newest edit counts: a clean-close mark followed by any other edit no longer
        // describes the end of the log.
        self.wal_closed = edit.wal_closed;
        if edit.versioning.is_some() {
            self.versioning = edit.versioning;
        }
        apply_vlog(&mut self.vlog, &edit.vlog).map_err(bad)?;
        for (level, key) in edit.compaction_pointers {
            // The builder checked the level is in range.
            if let Some(slot) = self.pointers.get_mut(usize::from(level)) {
                *slot = Some(key);
            }
        }
        self.records += 1;
        Ok(())
    }
}

/// Applies value log edits to `files`: adding a known id, or sealing or deleting an unknown
/// one, is `BadChain`. Dead bytes of an unknown (already deleted) file are ignored: compaction
/// may drop pointers into a file garbage collection deleted.
pub(crate) fn apply_vlog(files: &mut VlogFiles, edits: &[VlogEdit]) -> Result<(), CorruptionKind> {
    for e in edits {
        match *e {
            VlogEdit::Add { id, file_no } => {
                let meta = VlogFileMeta { file_no, sealed_len: None, discarded: 0 };
                if files.insert(id, meta).is_some() {
                    return Err(CorruptionKind::BadChain);
                }
            }
            VlogEdit::Seal { id, len } => {
                files.get_mut(&id).ok_or(CorruptionKind::BadChain)?.sealed_len = Some(len);
            }
            VlogEdit::Discard { id, bytes } => {
                if let Some(f) = files.get_mut(&id) {
                    f.discarded = f.discarded.saturating_add(bytes);
                }
            }
            VlogEdit::Delete { id } => {
                files.remove(&id).ok_or(CorruptionKind::BadChain)?;
            }
        }
    }
    Ok(())
}

fn replay_live<V: Vfs>(vfs: &V, file_no: u64) -> Result<Replayed> {
    let name = filenames::manifest(file_no);
    let mut st = Replayed {
        builder: None,
        log_number: 0,
        next_file_number: 0,
        last_seq: 0,
        last_ts: 0,
        pointers: Vec::new(),
        wal_closed: None,
        versioning: None,
        vlog: VlogFiles::new(),
        records: 0,
        good_end: 0,
    };
    let outcome = wal::replay(
        vfs,
        &[file_no],
        filenames::manifest,
        RecoveryMode::TolerateTornTail,
        |payload, pos| st.apply(&name, payload, pos.offset),
    )?;
    let good_end = match outcome.last {
        Some((_, end)) if st.records > 0 => end,
        // No snapshot: CURRENT is switched only after the snapshot is synced, so it was lost.
        _ => return Err(strict_error(vfs, file_no, SEGMENT_HEADER_LEN as u64)),
    };
    let len = vfs.size(&name).map_err(|e| Error::io(IoOp::Size, &name, e))?;
    // The replay forgave bytes after the last good record. They may only be the one record
    // that was being written: if another record starts after it, they are damage. That record
    // starts at the good end, or at the next block when the writer padded the block's tail.
    if good_end < len && record_start_after(vfs, &name, wal::record_start(good_end), len)? {
        return Err(strict_error(vfs, file_no, good_end));
    }
    st.good_end = good_end;
    Ok(st)
}

/// The error a strict replay reports for manifest `file_no` (the damaged fragment's offset
/// and kind); `Truncated` at `offset` if even a strict replay finds nothing wrong with the
/// framing (a manifest with a header and no records).
fn strict_error<V: Vfs>(vfs: &V, file_no: u64, offset: u64) -> Error {
    let strict = wal::replay(
        vfs,
        &[file_no],
        filenames::manifest,
        RecoveryMode::AbsoluteConsistency,
        |_, _| Ok(()),
    );
    match strict {
        Err(e) => e,
        Ok(_) => {
            Error::corruption(&filenames::manifest(file_no), offset, CorruptionKind::Truncated)
        }
    }
}

/// `true` if a valid FULL or FIRST fragment (the start of a record) begins anywhere in
/// `(after, len)` of the file. Fragments never cross blocks, so the scan is block by block.
fn record_start_after<V: Vfs>(vfs: &V, name: &str, after: u64, len: u64) -> Result<bool> {
    let file = vfs.open(name, FileKind::Manifest).map_err(|e| Error::io(IoOp::Open, name, e))?;
    let block = BLOCK_SIZE as u64;
    let mut buf = vec![0u8; BLOCK_SIZE];
    let mut block_start = after - after % block;
    while block_start < len {
        // At most one block, so the casts are lossless.
        let chunk_len = (len - block_start).min(block) as usize;
        let Some(chunk) = buf.get_mut(..chunk_len) else { break };
        file.read_exact_at(block_start, chunk).map_err(|e| Error::io(IoOp::Read, name, e))?;
        let first = if after >= block_start { (after - block_start) as usize + 1 } else { 0 };
        if (first..chunk_len).any(|p| starts_record(chunk, p)) {
            return Ok(true);
        }
        block_start += block;
    }
    Ok(false)
}

/// `true` if `chunk[p..]` begins with a complete FULL or FIRST fragment whose checksum holds.
fn starts_record(chunk: &[u8], p: usize) -> bool {
    let Some(rest) = chunk.get(p..) else { return false };
    let mut d = Decoder::new(rest);
    let (Ok(stored), Ok(len), Ok(ty)) = (d.u32(), d.u16(), d.u8()) else { return false };
    if !matches!(FragmentType::from_u8(ty), Some(FragmentType::Full | FragmentType::First)) {
        return false;
    }
    d.bytes(usize::from(len)).is_ok_and(|payload| fragment_checksum(ty, payload) == stored)
}

/// Every file of `version` must exist with its recorded size.
fn check_tables<V: Vfs>(vfs: &V, version: &Version) -> Result<()> {
    for (_, f) in version.all_files() {
        let name = filenames::table(f.file_no);
        match vfs.size(&name) {
            Ok(size) if size == f.size => {}
            Ok(size) => {
                return Err(Error::corruption(
                    &name,
                    size.min(f.size),
                    CorruptionKind::MissingFile,
                ));
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Error::corruption(&name, 0, CorruptionKind::MissingFile));
            }
            Err(e) => return Err(Error::io(IoOp::Size, &name, e)),
        }
    }
    Ok(())
}

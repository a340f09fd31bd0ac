//! Checkpoints: a consistent copy of the database in another directory, and restoring one.
//!
//! A checkpoint is an ordinary database directory (it opens as a tree) plus a `CHECKPOINT`
//! metadata file (`docs/format/checkpoint.md`):
//!
//! 1. the engine flushes every memtable, so the tables alone hold everything up to the flushed
//!    sequence number `S` (writers keep committing meanwhile; their writes are newer than `S`);
//! 2. the version naming those tables is pinned (its tables cannot be deleted meanwhile) and
//!    each table is hard-linked into the target when the host can, copied and synced otherwise;
//! 3. a fresh manifest describing exactly that version is written in the target, which
//!    switches its `CURRENT`;
//! 4. `CHECKPOINT` is written to `CHECKPOINT.tmp`, synced, renamed into place and the directory
//!    synced. It is written last: a checkpoint without it is incomplete and is refused.
//!
//! Restore links (or copies) the checkpoint's tables into the live directory under fresh file
//! numbers, then writes a new manifest naming only them, with a log number above every WAL
//! segment present. Switching `CURRENT` to it is the single atomic step: a crash before leaves
//! the old database, after it the checkpoint's; the next open removes whatever is unnamed.

use alloc::vec::Vec;

use strata_vfs::{FileKind, RandomRead, Vfs};

use crate::codec::{self, Decoder};
use crate::filenames::{self, FileName};
use crate::manifest::{self, FileMeta, ManifestWriter, VersionEdit};
use crate::{CorruptionKind, Error, IoOp, Result, SeqNo, checksum};

/// The metadata file's name.
pub const METADATA: &str = "CHECKPOINT";
/// Where the metadata is written before it is renamed into place.
pub const METADATA_TMP: &str = "CHECKPOINT.tmp";
/// Magic number at the start of the metadata file.
pub const MAGIC: [u8; 8] = *b"STRATCKP";
/// Format version of the metadata file.
pub const FORMAT_VERSION: u32 = 1;
/// Encoded size of the metadata file.
pub const METADATA_LEN: usize = 52;

/// What a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointMeta {
    /// When it was taken (nanoseconds, from the engine's clock).
    pub timestamp: u64,
    /// Every commit up to this sequence number is in it, none after.
    pub sequence_number: SeqNo,
    /// Number of table files.
    pub sstable_count: u64,
    /// Bytes of table and value log files.
    pub total_size: u64,
}

impl CheckpointMeta {
    /// The metadata file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(METADATA_LEN);
        out.extend_from_slice(&MAGIC);
        codec::put_u32(&mut out, FORMAT_VERSION);
        codec::put_u32(&mut out, 0);
        for v in [self.timestamp, self.sequence_number, self.sstable_count, self.total_size] {
            codec::put_u64(&mut out, v);
        }
        let crc = checksum::mask(checksum::crc32c(&out));
        codec::put_u32(&mut out, crc);
        out
    }

    /// Decodes and checks the metadata file.
    pub fn decode(b: &[u8]) -> Result<Self, CorruptionKind> {
        if b.len() != METADATA_LEN {
            return Err(CorruptionKind::Truncated);
        }
        let mut d = Decoder::new(b);
        d.magic_and_version(&MAGIC, FORMAT_VERSION)?;
        let body = b.get(..METADATA_LEN - 4).ok_or(CorruptionKind::Truncated)?;
        let stored = codec::get_u32(b.get(METADATA_LEN - 4..).unwrap_or_default())
            .ok_or(CorruptionKind::Truncated)?;
        if checksum::unmask(stored) != checksum::crc32c(body) {
            return Err(CorruptionKind::Checksum);
        }
        let t = |_| CorruptionKind::Truncated;
        let _reserved = d.u32().map_err(t)?;
        Ok(CheckpointMeta {
            timestamp: d.u64().map_err(t)?,
            sequence_number: d.u64().map_err(t)?,
            sstable_count: d.u64().map_err(t)?,
            total_size: d.u64().map_err(t)?,
        })
    }
}

/// Copies file `name` from `src` to `dest` (same name unless `dest_name` differs) and syncs it.
pub fn copy_file<S: Vfs, D: Vfs>(src: &S, name: &str, dest: &D, dest_name: &str) -> Result<u64> {
    let from = src.open(name, FileKind::Table).map_err(|e| Error::io(IoOp::Open, name, e))?;
    let len = from.len().map_err(|e| Error::io(IoOp::Size, name, e))?;
    let mut to = dest
        .create(dest_name, FileKind::Table)
        .map_err(|e| Error::io(IoOp::Create, dest_name, e))?;
    let mut buf = alloc::vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        // At most 1 MiB, so the cast is lossless.
        let n = (len - at).min(buf.len() as u64) as usize;
        let chunk = buf.get_mut(..n).unwrap_or_default();
        from.read_exact_at(at, chunk).map_err(|e| Error::io(IoOp::Read, name, e))?;
        strata_vfs::AppendWrite::append(&mut to, chunk)
            .map_err(|e| Error::io(IoOp::Append, dest_name, e))?;
        at += n as u64;
    }
    strata_vfs::AppendWrite::sync(&mut to, strata_vfs::SyncMode::All)
        .map_err(|e| Error::io(IoOp::Sync, dest_name, e))?;
    Ok(len)
}

/// Writes the metadata file atomically (temp file, sync, rename, directory sync).
pub fn publish_metadata<D: Vfs>(dest: &D, meta: &CheckpointMeta) -> Result<()> {
    let _ = dest.remove(METADATA_TMP);
    let mut f = dest
        .create(METADATA_TMP, FileKind::Marker)
        .map_err(|e| Error::io(IoOp::Create, METADATA_TMP, e))?;
    strata_vfs::AppendWrite::append(&mut f, &meta.encode())
        .map_err(|e| Error::io(IoOp::Append, METADATA_TMP, e))?;
    strata_vfs::AppendWrite::sync(&mut f, strata_vfs::SyncMode::All)
        .map_err(|e| Error::io(IoOp::Sync, METADATA_TMP, e))?;
    drop(f);
    dest.rename(METADATA_TMP, METADATA).map_err(|e| Error::io(IoOp::Rename, METADATA, e))?;
    dest.sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))
}

/// Reads and checks a checkpoint: its metadata, its manifest, and every table it names (with
/// the recorded sizes). Changes nothing.
pub fn validate<S: Vfs>(
    src: &S,
    level_count: usize,
) -> Result<(CheckpointMeta, manifest::Recovered)> {
    let not_a_checkpoint = Error::invalid(
        "checkpoint",
        "the directory holds no complete checkpoint (no CHECKPOINT file)",
    );
    let file = match src.open(METADATA, FileKind::Marker) {
        Ok(f) => f,
        Err(e) if e.kind() == strata_vfs::ErrorKind::NotFound => return Err(not_a_checkpoint),
        Err(e) => return Err(Error::io(IoOp::Open, METADATA, e)),
    };
    let len = file.len().map_err(|e| Error::io(IoOp::Size, METADATA, e))?;
    if len != METADATA_LEN as u64 {
        return Err(Error::corruption(METADATA, 0, CorruptionKind::Truncated));
    }
    let mut b = [0u8; METADATA_LEN];
    file.read_exact_at(0, &mut b).map_err(|e| Error::io(IoOp::Read, METADATA, e))?;
    let meta = CheckpointMeta::decode(&b).map_err(|k| Error::corruption(METADATA, 0, k))?;
    let recovered = manifest::recover(src, level_count)?
        .ok_or_else(|| Error::corruption(filenames::CURRENT, 0, CorruptionKind::MissingFile))?;
    if recovered.last_seq != meta.sequence_number
        || recovered.version.all_files().count() as u64 != meta.sstable_count
    {
        // Opened and written (or compacted) as a database since it was taken: its tables are
        // no longer the checkpoint, and any newer writes would sit in a WAL restore ignores.
        return Err(Error::invalid(
            "checkpoint",
            "the directory changed since the checkpoint was taken (it was used as a database)",
        ));
    }
    // Writes made after opening it as a database sit in its WAL, which restore does not take:
    // refuse rather than drop them. A segment holds some if anything but zeros (its reserved
    // space, `docs/format/wal.md`) follows its header.
    for name in src.list().map_err(|e| Error::io(IoOp::List, "", e))? {
        if let Some(FileName::Wal(n)) = filenames::parse(&name)
            && n >= recovered.log_number
            && wal_has_records(src, &name)?
        {
            return Err(Error::invalid(
                "checkpoint",
                "the directory changed since the checkpoint was taken (it was used as a database)",
            ));
        }
    }
    // Read every table through: a damaged block is found now, before the live database is
    // touched, not after it has been replaced.
    for (_, meta) in recovered.version.all_files() {
        let name = filenames::table(meta.file_no);
        let file = src.open(&name, FileKind::Table).map_err(|e| Error::io(IoOp::Open, &name, e))?;
        let table =
            alloc::sync::Arc::new(crate::sstable::Table::open(file, name, meta.file_no, None)?);
        let mut cursor = crate::sstable::TableCursor::new(table, true, None)?;
        while cursor.head().is_some() {
            cursor.advance()?;
        }
    }
    // Every value log file it names must hold its sealed length of whole, checksummed
    // records.
    for vmeta in recovered.vlog.values() {
        let name = filenames::vlog(vmeta.file_no);
        let Some(len) = vmeta.sealed_len else {
            return Err(Error::corruption(&name, 0, CorruptionKind::BadChain));
        };
        let file = match src.open(&name, FileKind::ValueLog) {
            Ok(f) => f,
            Err(e) if e.kind() == strata_vfs::ErrorKind::NotFound => {
                return Err(Error::corruption(&name, 0, CorruptionKind::MissingFile));
            }
            Err(e) => return Err(Error::io(IoOp::Open, &name, e)),
        };
        let size = file.len().map_err(|e| Error::io(IoOp::Size, &name, e))?;
        if size < len {
            return Err(Error::corruption(&name, size, CorruptionKind::Truncated));
        }
        let end = crate::vlog::scan_file(&file, &name, len, |_, _, _| Ok(()))?;
        if let Some(kind) = end.damage {
            return Err(Error::corruption(&name, end.valid_end, kind));
        }
    }
    Ok((meta, recovered))
}

/// `true` if the WAL segment `name` holds anything after its header other than zeros (a
/// record, or damage), the test for "written to since it was opened".
fn wal_has_records<S: Vfs>(src: &S, name: &str) -> Result<bool> {
    let file = src.open(name, FileKind::Wal).map_err(|e| Error::io(IoOp::Open, name, e))?;
    let len = file.len().map_err(|e| Error::io(IoOp::Size, name, e))?;
    let header = crate::wal::SEGMENT_HEADER_LEN as u64;
    if len <= header {
        return Ok(false);
    }
    let mut buf = alloc::vec![0u8; crate::wal::BLOCK_SIZE];
    Ok(!crate::wal::all_zeros(&file, name, header, len, &mut buf)?)
}

/// Installs a validated checkpoint into the (closed) live database directory `live`:
/// `link(src_name, dest_name)` hard-links a table when it can (returns `false` to fall back to
/// a copy). The only step that changes what `live` means is the final `CURRENT` switch.
pub fn install<V: Vfs, S: Vfs>(
    live: &V,
    src: &S,
    recovered: &manifest::Recovered,
    level_count: usize,
    link: &dyn Fn(&str, &str) -> bool,
) -> Result<()> {
    // Fresh numbers above every numbered file in the live directory.
    let mut next = 1u64;
    for name in live.list().map_err(|e| Error::io(IoOp::List, "", e))? {
        if let Some(
            FileName::Wal(n) | FileName::Table(n) | FileName::Manifest(n) | FileName::ValueLog(n),
        ) = filenames::parse(&name)
        {
            next = next.max(n + 1);
        }
    }
    let mut edit = VersionEdit {
        last_seq: Some(recovered.last_seq),
        last_ts: Some(recovered.last_ts),
        level_count: u32::try_from(level_count).ok(),
        versioning: recovered.versioning,
        ..VersionEdit::default()
    };
    for (level, meta) in recovered.version.all_files() {
        let new_no = next;
        next += 1;
        let from = filenames::table(meta.file_no);
        let to = filenames::table(new_no);
        if !link(&from, &to) {
            copy_file(src, &from, live, &to)?;
        }
        let level = u8::try_from(level).map_err(|_| Error::invalid("level", "too deep"))?;
        edit.added.push((level, FileMeta { file_no: new_no, ..FileMeta::clone(meta) }));
    }
    // Value log files keep their ids (the tables' pointers name them) under fresh numbers.
    for (&id, vmeta) in &recovered.vlog {
        let new_no = next;
        next += 1;
        let from = filenames::vlog(vmeta.file_no);
        let to = filenames::vlog(new_no);
        if !link(&from, &to) {
            copy_file(src, &from, live, &to)?;
        }
        edit.vlog.push(crate::manifest::VlogEdit::Add { id, file_no: new_no });
        if let Some(len) = vmeta.sealed_len {
            edit.vlog.push(crate::manifest::VlogEdit::Seal { id, len });
        }
        if vmeta.discarded > 0 {
            edit.vlog.push(crate::manifest::VlogEdit::Discard { id, bytes: vmeta.discarded });
        }
    }
    live.sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))?;
    // WAL segments of the old database are all below the new log number: obsolete. New files
    // are numbered above every live file and every value log id of the checkpoint.
    let manifest_no = next;
    edit.log_number = Some(manifest_no + 1);
    edit.next_file_number = Some((manifest_no + 2).max(recovered.next_file_number));
    ManifestWriter::create(live, manifest_no, &edit)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of docs/format/checkpoint.md.
    #[test]
    fn worked_example_bytes() {
        let meta =
            CheckpointMeta { timestamp: 1, sequence_number: 2, sstable_count: 3, total_size: 4 };
        let b = meta.encode();
        #[rustfmt::skip]
        let head: &[u8] = &[
            b'S', b'T', b'R', b'A', b'T', b'C', b'K', b'P',
            1, 0, 0, 0,  0, 0, 0, 0,
            1, 0, 0, 0, 0, 0, 0, 0,
            2, 0, 0, 0, 0, 0, 0, 0,
            3, 0, 0, 0, 0, 0, 0, 0,
            4, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(&b[..48], head);
        // Computed independently for docs/format/checkpoint.md.
        assert_eq!(&b[48..], &[0x97, 0x80, 0x20, 0x60]);
        assert_eq!(CheckpointMeta::decode(&b), Ok(meta));
    }

    #[test]
    fn every_damage_is_detected() {
        let meta =
            CheckpointMeta { timestamp: 9, sequence_number: 8, sstable_count: 7, total_size: 6 };
        let b = meta.encode();
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut d = b.clone();
                d[i] ^= 1 << bit;
                assert!(CheckpointMeta::decode(&d).is_err(), "flip {i}:{bit}");
            }
            assert!(CheckpointMeta::decode(&b[..i]).is_err());
        }
    }
}

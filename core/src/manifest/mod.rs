//! The manifest: the durable log of [`VersionEdit`]s that says which table files are live.
//!
//! - `MANIFEST-NNNNNN` files use the WAL's framing (`docs/format/wal.md`); each record is one
//!   encoded [`VersionEdit`], and the first record of every manifest is a full snapshot.
//! - `CURRENT` names the live manifest and is switched atomically ([`set_current`]).
//! - [`ManifestWriter`] creates a manifest (snapshot first, then `CURRENT`) and appends edits,
//!   each synced before it is acknowledged; the engine rewrites the manifest with a fresh
//!   number when it grows.
//! - [`recover`] finds the live manifest, replays it into a [`Version`] and checks that every
//!   table it names is present.
//!
//! `docs/format/manifest.md` is the byte-level description.

mod current;
mod edit;
mod reader;
#[cfg(test)]
mod tests;
mod writer;

/// The edit types belong to the version layer; re-exported so `manifest::VersionEdit` keeps
/// naming the record a manifest holds.
pub use crate::version::{FileMeta, MAX_LEVELS, VersionEdit, VlogEdit};
pub use current::{decode_current, encode_current, read_current, set_current};
pub(crate) use reader::apply_vlog;
pub use reader::{Recovered, recover};
pub use writer::ManifestWriter;

use crate::key::{InternalKey, SeqNo, Timestamp};
use crate::vlog::VlogFileMeta;

/// The value log files a manifest names, by id.
pub type VlogFiles = alloc::collections::BTreeMap<u64, VlogFileMeta>;

/// The value log part of a snapshot edit: every file added, sealed if it is, with its dead
/// bytes.
pub fn vlog_snapshot(files: &VlogFiles) -> alloc::vec::Vec<VlogEdit> {
    let mut out = alloc::vec::Vec::new();
    for (&id, f) in files {
        out.push(VlogEdit::Add { id, file_no: f.file_no });
        if let Some(len) = f.sealed_len {
            out.push(VlogEdit::Seal { id, len });
        }
        if f.discarded > 0 {
            out.push(VlogEdit::Discard { id, bytes: f.discarded });
        }
    }
    out
}
use crate::version::Version;

/// The full-snapshot edit a new manifest starts with: the level count and every file of
/// `version` ([`Version::snapshot_edit`]), the four counters, and one compaction pointer per
/// level that has one (`pointers[level]`).
pub fn snapshot_edit(
    version: &Version,
    log_number: u64,
    next_file_number: u64,
    last_seq: SeqNo,
    last_ts: Timestamp,
    pointers: &[Option<InternalKey>],
) -> VersionEdit {
    let mut edit = version.snapshot_edit();
    edit.log_number = Some(log_number);
    edit.next_file_number = Some(next_file_number);
    edit.last_seq = Some(last_seq);
    edit.last_ts = Some(last_ts);
    edit.compaction_pointers = pointers
        .iter()
        .enumerate()
        .filter_map(|(level, k)| Some((u8::try_from(level).ok()?, k.clone()?)))
        .collect();
    edit
}

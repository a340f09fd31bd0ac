//! [`VersionEdit`]: one change from a version to the next (files added and removed,
//! counters advanced, value log files added, sealed, discarded, deleted), with the
//! [`FileMeta`] of each table and the [`VlogEdit`]s.
//!
//! These are the version layer's own types: [`VersionBuilder`](super::VersionBuilder) applies
//! edits to a [`Version`](super::Version). The manifest (`crate::manifest`) is the durable log
//! of them; it imports them from here and owns their encoding (`manifest/edit.rs`), so the
//! layers read one way: manifest -> version.

use alloc::vec::Vec;

use crate::error::CorruptionKind;
use crate::key::{InternalKey, SeqNo, Timestamp, user_keys_cmp};

/// One change to the set of value log files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VlogEdit {
    /// File `id` exists, stored under number `file_no`; nothing is sealed yet.
    Add {
        /// The id pointers name.
        id: u64,
        /// The file's number.
        file_no: u64,
    },
    /// File `id` takes no more appends; its records end at `len`.
    Seal {
        /// The file.
        id: u64,
        /// End of its last valid record.
        len: u64,
    },
    /// `bytes` more of file `id` are dead.
    Discard {
        /// The file.
        id: u64,
        /// Dead bytes to add.
        bytes: u64,
    },
    /// File `id` is gone.
    Delete {
        /// The file.
        id: u64,
    },
}

/// Most levels a tree can have: level indices are stored as one byte.
pub const MAX_LEVELS: usize = 256;

/// What the manifest records about one table file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The table's number (its file is `filenames::table(file_no)`).
    pub file_no: u64,
    /// Its size in bytes; recovery checks the file has exactly this size.
    pub size: u64,
    /// Its first internal key.
    pub smallest: InternalKey,
    /// Its last internal key.
    pub largest: InternalKey,
    /// Smallest sequence number of any entry.
    pub min_seq: SeqNo,
    /// Largest sequence number of any entry (orders L0 files, newest first).
    pub max_seq: SeqNo,
    /// Smallest version timestamp of any entry.
    pub min_ts: Timestamp,
    /// Largest version timestamp of any entry.
    pub max_ts: Timestamp,
    /// Number of entries (versions and tombstones).
    pub entries: u64,
}

impl FileMeta {
    /// `true` if the file's user-key range `[smallest, largest]` intersects `[lo, hi]`.
    #[inline]
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        // Asked for every file a point read passes (through `contains`): compared word-wise.
        user_keys_cmp(&self.smallest.user_key, hi).is_le()
            && user_keys_cmp(&self.largest.user_key, lo).is_ge()
    }

    /// `true` if `user_key` lies in the file's user-key range.
    #[inline]
    pub fn contains(&self, user_key: &[u8]) -> bool {
        self.overlaps(user_key, user_key)
    }

    /// Checks the fields agree with each other: keys in order, ranges not inverted.
    pub(crate) fn check(&self) -> Result<(), CorruptionKind> {
        let ordered = self.smallest <= self.largest
            && self.min_seq <= self.max_seq
            && self.min_ts <= self.max_ts;
        if ordered { Ok(()) } else { Err(CorruptionKind::BadChain) }
    }
}

/// One change to the set of live files and the engine's counters: the payload of one manifest
/// record. The first record of every manifest is a full snapshot (every live file in `added`,
/// every scalar present).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VersionEdit {
    /// WAL segments numbered below this are no longer needed (their data is in tables).
    pub log_number: Option<u64>,
    /// The next unused file number (WAL segments, tables and manifests share the space).
    pub next_file_number: Option<u64>,
    /// The newest sequence number whose data the live files or WAL segments hold.
    pub last_seq: Option<SeqNo>,
    /// The newest commit timestamp handed out.
    pub last_ts: Option<Timestamp>,
    /// Number of levels of the tree (1 to [`MAX_LEVELS`]). Set in snapshots (fixed when the
    /// database is created); any later edit that carries it must repeat the same value.
    pub level_count: Option<u32>,
    /// Per level, where round-robin compaction picking resumes: the largest key of the last
    /// file compacted out of that level.
    pub compaction_pointers: Vec<(u8, InternalKey)>,
    /// Files removed: `(level, file_no)`. Applied before `added`, so a file may move levels
    /// within one edit.
    pub deleted: Vec<(u8, u64)>,
    /// Files added: `(level, meta)`.
    pub added: Vec<(u8, FileMeta)>,
    /// Written by a clean close: `(segment, length)` of the last WAL segment, fully synced.
    /// Recovery then reads that segment to exactly this length, so damage inside it is
    /// corruption rather than a torn tail.
    pub wal_closed: Option<(u64, u64)>,
    /// Written in snapshots: the database keeps history (versioning). A database that keeps
    /// history must not be opened without it: reads would pick versions inconsistently.
    pub versioning: Option<bool>,
    /// Changes to the value log files, in order.
    pub vlog: Vec<VlogEdit>,
}

impl VersionEdit {
    /// `true` if every scalar field is present and nothing is deleted, as in the first record
    /// of a manifest.
    pub fn is_snapshot(&self) -> bool {
        self.log_number.is_some()
            && self.next_file_number.is_some()
            && self.last_seq.is_some()
            && self.last_ts.is_some()
            && self.level_count.is_some()
            && self.deleted.is_empty()
    }
}

//! The value log (WiscKey): large values live in append-only files, and the LSM tree holds
//! small [`ValuePointer`]s to them, so flushes and compactions move pointers, not values.
//!
//! - [`format`]: file header, records, pointers (`docs/format/vlog.md`).
//! - [`writer`]: the head file the commit path appends to.
//! - [`store`]: reading values back (with or without checksum verification) and walking a
//!   file's records (recovery, garbage collection).
//!
//! Which files exist, how long each is, and how many of its bytes are known dead is recorded
//! in the manifest ([`VlogFileMeta`]); the engine's `gc` module rewrites the live values of
//! mostly-dead files and deletes them.

pub mod format;
pub mod store;
pub mod writer;

pub use format::ValuePointer;
pub use store::{KeyScan, ScanEnd, VlogStore, scan_file, scan_keys};
pub use writer::VlogWriter;

/// What the manifest knows about one value log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlogFileMeta {
    /// The file's number: it is stored as `filenames::vlog(file_no)`. Equal to the id unless
    /// a checkpoint restore installed the file under a fresh number.
    pub file_no: u64,
    /// The length of its valid records once the file is sealed (no more appends); `None` for
    /// the head file being written.
    pub sealed_len: Option<u64>,
    /// Bytes of records known dead: compaction dropped every version pointing at them.
    pub discarded: u64,
}

impl VlogFileMeta {
    /// Dead bytes (the discard statistics) over the records' length (0 for an unsealed file).
    pub fn discard_ratio(&self) -> f64 {
        self.dead_fraction(self.discarded)
    }

    /// `dead` bytes over the length of the file's records (0 for an unsealed file).
    pub fn dead_fraction(&self, dead: u64) -> f64 {
        match self.sealed_len {
            Some(len) if len > format::FILE_HEADER_LEN => {
                dead as f64 / (len - format::FILE_HEADER_LEN) as f64
            }
            _ => 0.0,
        }
    }
}

//! The write-ahead log: every committed batch is a record here before it is acknowledged.
//!
//! The log is a chain of *segments* (`000007.wal`, ...), each a 40-byte header followed by
//! records cut into checksummed fragments laid out in 32 KiB blocks, in the manner of
//! LevelDB's log. `docs/format/wal.md` is the byte-level description.
//!
//! - [`WalWriter`] appends records to one segment; the engine syncs it and rotates to a new
//!   segment (never appending to an old one after a restart).
//! - [`replay`] reads a chain of segments back at recovery. Each segment's header names its
//!   predecessor and how many of its bytes are valid, so damage in any segment but the last is
//!   told apart from a write torn by a crash, which can only be at the end of the last.
//!
//! The payload of a record is opaque here; the engine stores one encoded
//! [`WriteBatch`](crate::batch::WriteBatch) per record.

mod format;
mod reader;
mod writer;

pub use format::{
    BLOCK_SIZE, FORMAT_VERSION, FRAGMENT_HEADER_LEN, FragmentType, MAGIC, MAX_FRAGMENT_PAYLOAD,
    SEGMENT_HEADER_LEN, SegmentHeader, fragment_checksum, record_start,
};
pub(crate) use reader::all_zeros;
pub use reader::{RecordPos, RecoveryMode, WalReplay, replay, replay_bounded};
pub use writer::{RESERVE_STEP, WalWriter};

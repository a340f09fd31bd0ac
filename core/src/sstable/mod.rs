//! Sorted string tables: immutable files of `(InternalKey, value)` entries in internal-key
//! order, written once by a [`TableBuilder`] and read many times, concurrently, through a
//! [`Table`].
//!
//! ```text
//! data block 0 .. data block n-1   (index partitions interleaved, when partitioned)
//! filter block                      bloom filter over user keys
//! properties block                  counts, key and sequence ranges
//! index block                       single-level, or top level over partitions
//! footer (68 bytes)                 handles, index kind, version, checksum, magic "STRATSST"
//! ```
//!
//! Every block carries a 5-byte trailer (compression type and masked CRC-32C). Data blocks
//! hold prefix-compressed keys with restart points ([`Block`]), optionally lz4-compressed.
//! `docs/format/sstable.md` and `docs/format/block.md` are the byte-level descriptions.
//!
//! - [`TableBuilder`] streams entries into a file, cutting blocks at `block_size`.
//! - [`Table`] opens a file (footer, properties, filter, top-level index), answers point
//!   lookups with [`Table::get`] and shares decoded blocks through an optional
//!   [`BlockCache`](crate::cache::BlockCache).
//! - [`TableCursor`] walks a table in either direction, one block in memory at a time.
//! - [`Table::walk_blocks`] visits every block the index reaches, for verification and dumps.

mod block;
mod bloom;
mod builder;
mod cursor;
mod format;
mod reader;
#[cfg(test)]
mod tests;
mod walk;

use crate::error::{Error, Result};
use crate::key::InternalKey;

pub use block::{Block, BlockBuilder, BlockIter};
pub use bloom::{Filter, FilterBuilder, hash64};
pub use builder::TableBuilder;
pub use cursor::TableCursor;
pub use format::{
    BLOCK_TRAILER_LEN, BlockHandle, Compression, FOOTER_LEN, FORMAT_VERSION, Footer, IndexKind,
    MAGIC, decode_key, encode_key,
};
pub use reader::Table;
pub use walk::{BlockRole, BlockVisit};

/// Smallest accepted [`TableOptions::block_size`].
pub const MIN_BLOCK_SIZE: usize = 64;
/// Largest accepted [`TableOptions::block_size`].
pub const MAX_BLOCK_SIZE: usize = 16 * 1024 * 1024;

/// How tables are written. Reading needs none of it: every table describes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// Target size of an uncompressed data block, in bytes (64 B ..= 16 MiB). A block is cut
    /// after the entry that reaches it, so one large entry makes one large block.
    pub block_size: usize,
    /// Compress data blocks with lz4 when that saves at least 12.5%.
    pub compression: bool,
    /// Bloom filter bits per distinct user key (0 = no filter; at most 64). 10 gives about 1%
    /// false positives.
    pub bloom_bits_per_key: u32,
    /// Entries between restart points in data blocks (1 ..= 1024).
    pub restart_interval: usize,
}

impl Default for TableOptions {
    fn default() -> Self {
        TableOptions {
            block_size: 4096,
            compression: true,
            bloom_bits_per_key: 10,
            restart_interval: 4,
        }
    }
}

impl TableOptions {
    /// Checks every field's range.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&self.block_size) {
            return Err(Error::invalid("block_size", "must be between 64 B and 16 MiB"));
        }
        if self.bloom_bits_per_key > 64 {
            return Err(Error::invalid("bloom_bits_per_key", "must be at most 64"));
        }
        if !(1..=1024).contains(&self.restart_interval) {
            return Err(Error::invalid("restart_interval", "must be between 1 and 1024"));
        }
        Ok(())
    }
}

/// What a table holds, as recorded in its properties block (plus the file size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableProps {
    /// Number of entries (versions), tombstones included.
    pub entries: u64,
    /// Number of tombstones.
    pub deletions: u64,
    /// The first internal key.
    pub smallest: InternalKey,
    /// The last internal key.
    pub largest: InternalKey,
    /// Smallest sequence number of any entry.
    pub min_seq: u64,
    /// Largest sequence number of any entry.
    pub max_seq: u64,
    /// Smallest timestamp of any entry.
    pub min_ts: u64,
    /// Largest timestamp of any entry.
    pub max_ts: u64,
    /// Sum of encoded internal key lengths (user key + 16 per entry), before prefix
    /// compression.
    pub raw_key_bytes: u64,
    /// Sum of value lengths, before compression.
    pub raw_value_bytes: u64,
    /// Number of data blocks.
    pub data_blocks: u64,
    /// Size of the whole file in bytes (not stored: taken from the file).
    pub file_size: u64,
    /// Bytes of every index block (partitions and top level), trailers included.
    pub index_size: u64,
    /// Number of index partitions; 0 for a single-level index.
    pub index_partitions: u64,
    /// Bytes of the filter block, trailer included.
    pub filter_size: u64,
    /// Whether data blocks were written with compression enabled (each block records whether
    /// it actually is compressed).
    pub compression: bool,
    /// The table format version.
    pub format_version: u32,
}

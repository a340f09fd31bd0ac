//! Options the core understands. The host's builder maps its user-facing options onto these
//! and validates them through [`EngineOptions::validate`].

use crate::wal::RecoveryMode;
use crate::{Error, Result};

/// Largest key accepted, in bytes. Keys live in memtables, index blocks and conflict sets, so
/// they are kept small; 64 KiB also fits every length field of the table formats.
pub const MAX_KEY_SIZE: usize = 64 * 1024;

/// Largest value accepted, in bytes. A value travels whole through the WAL and the memtable.
pub const MAX_VALUE_SIZE: usize = 256 * 1024 * 1024;

/// Engine configuration.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EngineOptions {
    /// How WAL damage is handled at open.
    pub recovery_mode: RecoveryMode,
    /// A WAL segment is closed and a new one started once it reaches this size.
    pub wal_segment_size: u64,
    /// Memtable size that triggers a flush.
    pub max_memtable_size: usize,
    /// Keep every version and allow time-travel reads and explicit-timestamp writes.
    pub versioning: bool,
    /// With versioning, how long old versions are kept (0 = forever).
    pub retention_ns: u64,
    /// Number of LSM levels, L0 included.
    pub level_count: usize,
    /// Target size of table data blocks.
    pub block_size: usize,
    /// Compress table blocks and value log values with lz4 when it saves space.
    pub compression: bool,
    /// Bloom filter bits per key (10 gives about 1% false positives).
    pub bloom_bits_per_key: u32,
    /// Bytes of decoded blocks kept in the block cache (0 disables it).
    pub block_cache_bytes: usize,
    /// Open table files kept in the table cache.
    pub max_open_tables: usize,
    /// L0 file count that triggers an L0 to L1 compaction.
    pub l0_compaction_trigger: usize,
    /// L0 file count at which writers wait for compaction.
    pub l0_stop_trigger: usize,
    /// Immutable memtables waiting for flush at which writers wait.
    pub max_immutable_memtables: usize,
    /// Target size of L1; each deeper level is `level_size_ratio` times larger.
    pub base_level_bytes: u64,
    /// Size ratio between adjacent levels.
    pub level_size_ratio: u64,
    /// Target size of compaction output files.
    pub target_file_size: u64,
    /// A manifest larger than this is rewritten from a snapshot of the current version.
    pub max_manifest_size: u64,
    /// Keep large values in the value log, with pointers in the tree.
    pub vlog_enabled: bool,
    /// Values of at least this many bytes go to the value log (when it is enabled).
    pub vlog_value_threshold: usize,
    /// A value log file takes no more records once it reaches this size.
    pub vlog_max_file_size: u64,
    /// Garbage collection rewrites a value log file once this fraction of it is dead.
    pub vlog_gc_discard_ratio: f64,
    /// Verify the checksum of every value read from the value log.
    pub vlog_verify_checksums: bool,
}

/// Default [`EngineOptions::vlog_value_threshold`]: 4 KiB. Below about a page, a pointer
/// (~10 bytes) saves little compaction work but costs every read a second random I/O; from a
/// page up, compaction rewriting values dominates and separating them pays (WiscKey, Titan and
/// RocksDB's BlobDB report the crossover in the 1-4 KiB range on SSDs).
pub const DEFAULT_VLOG_VALUE_THRESHOLD: usize = 4096;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            recovery_mode: RecoveryMode::default(),
            wal_segment_size: 64 * 1024 * 1024,
            max_memtable_size: 64 * 1024 * 1024,
            versioning: false,
            retention_ns: 0,
            level_count: 7,
            block_size: 4096,
            compression: true,
            bloom_bits_per_key: 10,
            block_cache_bytes: 64 * 1024 * 1024,
            max_open_tables: 512,
            l0_compaction_trigger: 4,
            l0_stop_trigger: 20,
            max_immutable_memtables: 4,
            base_level_bytes: 256 * 1024 * 1024,
            level_size_ratio: 10,
            target_file_size: 64 * 1024 * 1024,
            max_manifest_size: 4 * 1024 * 1024,
            vlog_enabled: false,
            vlog_value_threshold: DEFAULT_VLOG_VALUE_THRESHOLD,
            vlog_max_file_size: 256 * 1024 * 1024,
            vlog_gc_discard_ratio: 0.5,
            vlog_verify_checksums: true,
        }
    }
}

impl EngineOptions {
    /// Checks every option, returning the first one out of range.
    pub fn validate(&self) -> Result<()> {
        if self.wal_segment_size < 64 * 1024 {
            return Err(Error::invalid("wal_segment_size", "must be at least 64 KiB"));
        }
        if self.wal_segment_size > 4 * 1024 * 1024 * 1024 {
            return Err(Error::invalid("wal_segment_size", "must be at most 4 GiB"));
        }
        if self.max_memtable_size < 64 * 1024 {
            return Err(Error::invalid("max_memtable_size", "must be at least 64 KiB"));
        }
        if self.max_memtable_size as u64 > 4 * 1024 * 1024 * 1024 {
            return Err(Error::invalid("max_memtable_size", "must be at most 4 GiB"));
        }
        if !(2..=16).contains(&self.level_count) {
            return Err(Error::invalid("level_count", "must be between 2 and 16"));
        }
        if !(512..=1024 * 1024).contains(&self.block_size) {
            return Err(Error::invalid("block_size", "must be between 512 B and 1 MiB"));
        }
        if !(1..=64).contains(&self.bloom_bits_per_key) {
            return Err(Error::invalid("bloom_bits_per_key", "must be between 1 and 64"));
        }
        if self.max_open_tables == 0 {
            return Err(Error::invalid("max_open_tables", "must be at least 1"));
        }
        if self.l0_compaction_trigger == 0 || self.l0_stop_trigger <= self.l0_compaction_trigger {
            return Err(Error::invalid(
                "l0_stop_trigger",
                "must be greater than l0_compaction_trigger, which must be at least 1",
            ));
        }
        if self.max_immutable_memtables == 0 {
            return Err(Error::invalid("max_immutable_memtables", "must be at least 1"));
        }
        if self.level_size_ratio < 2 {
            return Err(Error::invalid("level_size_ratio", "must be at least 2"));
        }
        if self.target_file_size < 64 * 1024 || self.base_level_bytes < self.target_file_size {
            return Err(Error::invalid(
                "target_file_size",
                "must be at least 64 KiB and at most the base level size",
            ));
        }
        if self.vlog_value_threshold == 0 || self.vlog_value_threshold > MAX_VALUE_SIZE {
            return Err(Error::invalid(
                "vlog_value_threshold",
                "must be between 1 byte and the largest value size (256 MiB)",
            ));
        }
        if !(1024 * 1024..=4 * 1024 * 1024 * 1024).contains(&self.vlog_max_file_size) {
            return Err(Error::invalid("vlog_max_file_size", "must be between 1 MiB and 4 GiB"));
        }
        if !(0.0..=1.0).contains(&self.vlog_gc_discard_ratio) {
            return Err(Error::invalid("vlog_gc_discard_ratio", "must be between 0.0 and 1.0"));
        }
        if !self.versioning && self.retention_ns != 0 {
            return Err(Error::invalid("retention_ns", "requires versioning to be enabled"));
        }
        Ok(())
    }
}

/// Checks a key against [`MAX_KEY_SIZE`].
pub fn check_key(key: &[u8]) -> Result<()> {
    if key.len() > MAX_KEY_SIZE {
        return Err(Error::KeyTooLarge { len: key.len(), max: MAX_KEY_SIZE });
    }
    Ok(())
}

/// Checks a value against [`MAX_VALUE_SIZE`].
pub fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_SIZE {
        return Err(Error::ValueTooLarge { len: value.len(), max: MAX_VALUE_SIZE });
    }
    Ok(())
}

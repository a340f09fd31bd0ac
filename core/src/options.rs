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
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            recovery_mode: RecoveryMode::default(),
            wal_segment_size: 64 * 1024 * 1024,
            max_memtable_size: 64 * 1024 * 1024,
            versioning: false,
            retention_ns: 0,
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

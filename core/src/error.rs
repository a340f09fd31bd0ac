//! The engine's error type. Structured: callers match on variants and fields, never on text.

use alloc::string::String;
use core::fmt;

/// Which filesystem call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoOp {
    /// `Vfs::create`.
    Create,
    /// `Vfs::open`.
    Open,
    /// `RandomRead::read_exact_at`.
    Read,
    /// `AppendWrite::append`.
    Append,
    /// `AppendWrite::flush`.
    Flush,
    /// `AppendWrite::sync`.
    Sync,
    /// `Vfs::sync_dir`.
    SyncDir,
    /// `Vfs::remove`.
    Remove,
    /// `Vfs::rename`.
    Rename,
    /// `Vfs::list`.
    List,
    /// `Vfs::size` or `RandomRead::len`.
    Size,
    /// `Vfs::lock`.
    Lock,
    /// `Vfs::link`.
    Link,
}

/// What a corrupt file got wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CorruptionKind {
    /// A stored checksum does not match the data.
    Checksum,
    /// The file does not start with the expected magic number.
    BadMagic,
    /// The file's format version is not one this build reads.
    UnsupportedVersion(u32),
    /// A record or structure ends before its declared length.
    Truncated,
    /// An on-disk tag has a value this build does not know.
    UnknownTag(u8),
    /// Log fragments out of order (a MIDDLE without a FIRST, ...).
    BadFragment,
    /// A write batch does not decode (bad count, bad varint, trailing bytes).
    BadBatch,
    /// Sequence numbers are not contiguous where they must be.
    SequenceGap,
    /// A file the database needs is missing.
    MissingFile,
    /// A log segment's header contradicts its neighbours (wrong chain link or length), or the
    /// manifest's clean-close length of the last segment is not the segment's length.
    BadChain,
    /// A value pointer does not decode (trailing bytes, an offset inside the file header, a
    /// record length outside what a record can be) or names bytes the value log does not
    /// hold (beyond a file's end, or not a record of the key that points at it).
    BadPointer,
}

/// Every error Strata returns.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A filesystem call failed.
    Io {
        /// The call.
        op: IoOp,
        /// The file name, or empty for directory-wide calls.
        file: String,
        /// The filesystem's error.
        source: strata_vfs::Error,
    },
    /// Stored data failed validation; `offset` is where in `file` the bad structure starts.
    Corruption {
        /// The damaged file.
        file: String,
        /// Byte offset of the damaged structure.
        offset: u64,
        /// What is wrong.
        kind: CorruptionKind,
    },
    /// The device is full. The failed commit wrote nothing visible.
    NoSpace {
        /// The file being written.
        file: String,
    },
    /// An option or argument is out of range. Nothing was changed.
    InvalidArgument {
        /// The option or argument.
        what: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// A key is longer than the engine accepts.
    KeyTooLarge {
        /// The key's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A value is longer than the engine accepts.
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// A write would make its transaction larger than the `max_transaction_size` option.
    /// The write was not buffered; the transaction keeps its earlier writes and stays usable.
    TransactionTooLarge {
        /// The size, in encoded bytes of its write batch, the transaction would have reached.
        size: u64,
        /// The limit (`max_transaction_size`).
        max: u64,
    },
    /// Another handle or process has this database open.
    Locked,
    /// The database was closed.
    Closed,
    /// An earlier write or sync failed, so durability can no longer be promised; reads still
    /// work, writes fail until the database is reopened.
    Poisoned,
    /// Another transaction committed a write to a key this one writes, after this one began
    /// (under [`Isolation::Serializable`](crate::Isolation::Serializable), also to a key or
    /// range this one read). Nothing of this transaction was written; retry it.
    TransactionConflict,
    /// A write was attempted in a read-only transaction.
    TransactionReadOnly,
    /// A read was attempted in a write-only transaction.
    TransactionWriteOnly,
    /// The transaction was already committed or rolled back.
    TransactionClosed,
    /// A versioned call was made on a database opened without versioning.
    VersioningDisabled,
    /// A time-travel read asked for a time older than the retention horizon (now minus the
    /// retention period), where history may already have been compacted away.
    TimestampExpired {
        /// The timestamp asked for.
        ts: u64,
        /// The oldest timestamp that can still be read.
        horizon: u64,
    },
}

/// Result alias for engine calls.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// Wraps a filesystem error for `op` on `file`. `NoSpace` and `Locked` become their own
    /// variants so callers can react to them without digging.
    pub fn io(op: IoOp, file: &str, source: strata_vfs::Error) -> Error {
        match source.kind() {
            strata_vfs::ErrorKind::NoSpace => Error::NoSpace { file: file.into() },
            strata_vfs::ErrorKind::Locked => Error::Locked,
            _ => Error::Io { op, file: file.into(), source },
        }
    }

    /// A corruption error.
    pub fn corruption(file: &str, offset: u64, kind: CorruptionKind) -> Error {
        Error::Corruption { file: file.into(), offset, kind }
    }

    /// An invalid-argument error.
    pub const fn invalid(what: &'static str, rule: &'static str) -> Error {
        Error::InvalidArgument { what, rule }
    }

    /// `true` for [`Error::Corruption`].
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corruption { .. })
    }

    /// `true` for [`Error::TransactionConflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::TransactionConflict)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, file, source } => write!(f, "{op:?} failed on '{file}': {source}"),
            Error::Corruption { file, offset, kind } => {
                write!(f, "corruption in '{file}' at offset {offset}: {kind:?}")
            }
            Error::NoSpace { file } => write!(f, "no space left on device while writing '{file}'"),
            Error::InvalidArgument { what, rule } => write!(f, "invalid {what}: {rule}"),
            Error::KeyTooLarge { len, max } => {
                write!(f, "key of {len} bytes exceeds the maximum of {max}")
            }
            Error::ValueTooLarge { len, max } => {
                write!(f, "value of {len} bytes exceeds the maximum of {max}")
            }
            Error::TransactionTooLarge { size, max } => write!(
                f,
                "transaction would reach {size} bytes, over the max_transaction_size of {max}"
            ),
            Error::Locked => f.write_str("database is locked by another process or handle"),
            Error::Closed => f.write_str("database is closed"),
            Error::Poisoned => f.write_str(
                "database is poisoned by an earlier write failure; reopen it to write again",
            ),
            Error::TransactionConflict => f.write_str(
                "transaction conflict: a key it writes (under Serializable, also one it read) \
                 was written by a transaction that committed after it began",
            ),
            Error::TransactionReadOnly => f.write_str("transaction is read-only"),
            Error::TransactionWriteOnly => f.write_str("transaction is write-only"),
            Error::TransactionClosed => {
                f.write_str("transaction is already committed or rolled back")
            }
            Error::VersioningDisabled => f.write_str("versioning is not enabled for this database"),
            Error::TimestampExpired { ts, horizon } => write!(
                f,
                "timestamp {ts} is older than the retention horizon {horizon}; its history may be gone"
            ),
        }
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

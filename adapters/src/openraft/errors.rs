//! The adapter's errors, and their lossless mapping into openraft's [`StorageError`].
//!
//! openraft carries a storage failure as an [`AnyError`]: a type name, a message and a chain
//! of sources. The mapping puts Strata's error kind (its variant, such as
//! `strata::Error::Corruption`) in the type name and Strata's own message (file, offset, what
//! went wrong) in the message, so a caller holding only the `StorageError` can still tell a
//! corrupt file from a full disk; [`strata_error_kind`] reads the kind back.

use std::fmt;

use openraft::{AnyError, ErrorSubject, ErrorVerb, NodeId, StorageError, StorageIOError};

/// What went wrong inside the adapter.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Strata failed (I/O, corruption, a closed or poisoned tree, ...).
    Strata(strata::Error),
    /// A stored value does not decode as what its key says it holds.
    Decode {
        /// The key whose value is bad.
        key: Vec<u8>,
        /// Why it does not decode.
        reason: String,
    },
    /// Snapshot bytes are not a valid snapshot (docs/format/openraft.md).
    Snapshot {
        /// Byte offset of the bad structure in the snapshot.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

impl From<strata::Error> for Error {
    fn from(e: strata::Error) -> Self {
        Error::Strata(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Strata(e) => write!(f, "{e}"),
            Error::Decode { key, reason } => {
                write!(f, "value of key {} does not decode: {reason}", key.escape_ascii())
            }
            Error::Snapshot { offset, reason } => {
                write!(f, "bad snapshot at byte {offset}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Strata(e) => e.source(),
            _ => None,
        }
    }
}

impl Error {
    /// The kind of this error: for a Strata error its variant (`strata::Error::Corruption`,
    /// `strata::Error::NoSpace`, ...), otherwise the adapter's own.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Strata(e) => strata_kind(e),
            Error::Decode { .. } => "strata_adapters::openraft::Error::Decode",
            Error::Snapshot { .. } => "strata_adapters::openraft::Error::Snapshot",
        }
    }

    /// This error as openraft's [`AnyError`]: the kind as its type, the message as its
    /// message, the sources below.
    pub fn to_any_error(&self) -> AnyError {
        AnyError::new(self).with_type(Some(self.kind()))
    }

    /// This error as openraft's [`StorageError`] for an operation `verb` on `subject`.
    pub fn into_storage<NID: NodeId>(
        self,
        subject: ErrorSubject<NID>,
        verb: ErrorVerb,
    ) -> StorageError<NID> {
        StorageIOError::new(subject, verb, self.to_any_error()).into()
    }
}

fn strata_kind(e: &strata::Error) -> &'static str {
    use strata::Error as E;
    match e {
        E::Io { .. } => "strata::Error::Io",
        E::Corruption { .. } => "strata::Error::Corruption",
        E::NoSpace { .. } => "strata::Error::NoSpace",
        E::InvalidArgument { .. } => "strata::Error::InvalidArgument",
        E::KeyTooLarge { .. } => "strata::Error::KeyTooLarge",
        E::ValueTooLarge { .. } => "strata::Error::ValueTooLarge",
        E::TransactionTooLarge { .. } => "strata::Error::TransactionTooLarge",
        E::Locked => "strata::Error::Locked",
        E::Closed => "strata::Error::Closed",
        E::Poisoned => "strata::Error::Poisoned",
        E::TransactionConflict => "strata::Error::TransactionConflict",
        E::TransactionReadOnly => "strata::Error::TransactionReadOnly",
        E::TransactionWriteOnly => "strata::Error::TransactionWriteOnly",
        E::TransactionClosed => "strata::Error::TransactionClosed",
        E::VersioningDisabled => "strata::Error::VersioningDisabled",
        E::TimestampExpired { .. } => "strata::Error::TimestampExpired",
        _ => "strata::Error",
    }
}

/// The kind of the adapter error inside `err` (see [`Error::kind`]), if `err` came from this
/// adapter.
pub fn strata_error_kind<NID: NodeId>(err: &StorageError<NID>) -> Option<&str> {
    let StorageError::IO { source } = err else { return None };
    let any = std::error::Error::source(source)?.downcast_ref::<AnyError>()?;
    any.get_type()
}

/// Shorthand for the adapter's results before they reach openraft.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use strata::CorruptionKind;

    #[test]
    fn strata_kind_and_message_survive_the_mapping() {
        let strata = strata::Error::Corruption {
            file: "000007.sst".into(),
            offset: 4096,
            kind: CorruptionKind::Checksum,
        };
        let message = strata.to_string();
        let err: StorageError<u64> =
            Error::from(strata).into_storage(ErrorSubject::Logs, ErrorVerb::Read);
        assert_eq!(strata_error_kind(&err), Some("strata::Error::Corruption"));
        let shown = err.to_string();
        assert!(shown.contains(&message), "{shown} lacks {message}");
        assert!(shown.contains("Read"), "{shown} lacks the verb");
    }

    #[test]
    fn decode_errors_name_the_key() {
        let err = Error::Decode { key: b"raft/meta/vote".to_vec(), reason: "eof".into() };
        let mapped: StorageError<u64> = err.into_storage(ErrorSubject::Vote, ErrorVerb::Read);
        assert_eq!(strata_error_kind(&mapped), Some("strata_adapters::openraft::Error::Decode"));
        assert!(mapped.to_string().contains("raft/meta/vote"));
    }
}

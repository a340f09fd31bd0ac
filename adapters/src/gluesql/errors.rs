//! Errors: Strata's errors, damaged stored data and writes through a read-only view, all as
//! GlueSQL's `Error::StorageMsg`, the one variant GlueSQL gives storages.
//!
//! A Strata error keeps its kind and its message: the text is `[strata KIND] MESSAGE`, where
//! `KIND` is the name of the `strata::Error` variant (`TransactionConflict`, `Io`, ...).
//! [`strata_error_kind`] reads the kind back, so callers can retry a conflict without
//! matching on message text.

use gluesql_core::error::Error;

const STRATA_TAG: &str = "[strata ";

/// A Strata error as a GlueSQL error: `[strata KIND] MESSAGE`.
pub fn from_strata(error: strata::Error) -> Error {
    let debug = format!("{error:?}");
    // The variant name is what `Debug` prints before any field list.
    let kind = debug.split([' ', '{', '(']).next().unwrap_or_default();
    Error::StorageMsg(format!("{STRATA_TAG}{kind}] {error}"))
}

/// The name of the Strata error variant an error from this storage came from, e.g.
/// `Some("TransactionConflict")`; `None` for errors that did not come from Strata.
pub fn strata_error_kind(error: &Error) -> Option<&str> {
    let Error::StorageMsg(message) = error else {
        return None;
    };
    let rest = message.strip_prefix(STRATA_TAG)?;
    rest.split_once(']').map(|(kind, _)| kind)
}

/// Whether `error` is Strata's write conflict: another session committed a write to a row,
/// index entry or schema this transaction also wrote. Nothing of the transaction was written;
/// running it again may succeed.
pub fn is_conflict(error: &Error) -> bool {
    strata_error_kind(error) == Some("TransactionConflict")
}

/// Stored bytes that do not decode.
pub fn corrupt(what: &str) -> Error {
    Error::StorageMsg(format!("[strata-gluesql] damaged stored data: {what}"))
}

/// A stored record that postcard could not decode.
pub fn undecodable(what: &str, error: &postcard::Error) -> Error {
    corrupt(&format!("{what}: {error}"))
}

/// A write attempted through a time-travel view.
pub fn read_only_view(ts: u64) -> Error {
    Error::StorageMsg(format!(
        "[strata-gluesql] read-only: this storage is a time-travel view at timestamp {ts}; \
         write through a storage made with StrataStorage::new"
    ))
}

/// `BEGIN` inside a transaction that `BEGIN` already started.
pub fn nested_begin() -> Error {
    Error::StorageMsg(
        "[strata-gluesql] nested transaction: BEGIN inside a transaction; COMMIT or ROLLBACK \
         first"
            .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strata_errors_keep_kind_and_message() {
        let error = from_strata(strata::Error::TransactionConflict);
        assert_eq!(strata_error_kind(&error), Some("TransactionConflict"));
        assert!(is_conflict(&error));
        let text = error.to_string();
        assert!(text.contains(&strata::Error::TransactionConflict.to_string()), "{text}");

        let error = from_strata(strata::Error::KeyTooLarge { len: 70_000, max: 65_536 });
        assert_eq!(strata_error_kind(&error), Some("KeyTooLarge"));
        assert!(!is_conflict(&error));
        assert!(error.to_string().contains("70000"), "{error}");

        assert_eq!(strata_error_kind(&corrupt("x")), None);
        assert_eq!(strata_error_kind(&Error::StorageMsg("other".to_owned())), None);
    }
}

//! Errors: what this adapter itself can report, and how Strata's errors become
//! [`object_store::Error`]s.
//!
//! Lossless: a Strata error becomes the `source` of the object store error (boxed whole), so
//! its kind (the variant) and message are kept and `downcast_ref::<strata::Error>()` on the
//! source gives it back. The object store variant is chosen by meaning: a versioned read on a
//! tree without versioning is `NotSupported`, a version older than the retention horizon is
//! `NotFound`, everything else is `Generic { store: "Strata" }`.

use std::fmt;

/// The `store` name in [`object_store::Error::Generic`].
pub(super) const STORE: &str = "Strata";

/// An error found by the adapter rather than by Strata.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// A stored record failed to decode: the tree holds data this adapter did not write.
    CorruptRecord {
        /// Which record.
        record: &'static str,
        /// The field that is wrong.
        field: &'static str,
        /// Where in the record.
        offset: usize,
    },
    /// An object record names a chunk that is not in the tree.
    MissingChunk {
        /// The object.
        path: String,
        /// The part the chunk belongs to.
        part: u32,
        /// The chunk's index within the part.
        piece: u32,
    },
    /// Something exceeds what the layout can address.
    TooLarge {
        /// What.
        what: &'static str,
    },
    /// An attribute kind this adapter does not know how to store.
    UnsupportedAttribute(String),
    /// A multipart id that this store did not hand out, or whose upload is finished.
    NoSuchUpload(String),
    /// A part id that does not name a part staged for the upload.
    UnknownPart(String),
    /// A part listed twice in one completion.
    DuplicatePart(u32),
    /// A version string that is not a Strata timestamp.
    BadVersion(String),
    /// A range outside the object.
    BadRange(String),
    /// A page token this store did not hand out.
    BadPageToken(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::CorruptRecord { record, field, offset } => {
                write!(f, "corrupt {record}: bad {field} at byte {offset}")
            }
            StoreError::MissingChunk { path, part, piece } => {
                write!(f, "object {path} is missing chunk {piece} of part {part}")
            }
            StoreError::TooLarge { what } => write!(f, "{what} too large for the object layout"),
            StoreError::UnsupportedAttribute(a) => write!(f, "attribute {a} is not supported"),
            StoreError::NoSuchUpload(id) => write!(f, "no multipart upload {id} in progress"),
            StoreError::UnknownPart(id) => write!(f, "part {id} was not uploaded"),
            StoreError::DuplicatePart(n) => write!(f, "part {n} is listed twice"),
            StoreError::BadVersion(v) => write!(f, "version {v:?} is not a Strata timestamp"),
            StoreError::BadRange(why) => write!(f, "bad range: {why}"),
            StoreError::BadPageToken(t) => write!(f, "page token {t:?} was not made by this store"),
        }
    }
}

impl std::error::Error for StoreError {}

/// `error` as a generic object store error.
pub(super) fn generic(
    error: impl std::error::Error + Send + Sync + 'static,
) -> ::object_store::Error {
    ::object_store::Error::Generic { store: STORE, source: Box::new(error) }
}

/// A Strata error met while working on `path`.
pub(super) fn from_strata(path: &str, error: strata::Error) -> ::object_store::Error {
    match error {
        strata::Error::VersioningDisabled => {
            ::object_store::Error::NotSupported { source: Box::new(error) }
        }
        strata::Error::TimestampExpired { .. } => {
            ::object_store::Error::NotFound { path: path.to_owned(), source: Box::new(error) }
        }
        other => generic(other),
    }
}

/// The object store error for `error` (found by the adapter) while working on `path`.
pub(super) fn from_store(path: &str, error: StoreError) -> ::object_store::Error {
    match error {
        StoreError::NoSuchUpload(_) | StoreError::BadVersion(_) => {
            ::object_store::Error::NotFound { path: path.to_owned(), source: Box::new(error) }
        }
        StoreError::UnsupportedAttribute(_) => ::object_store::Error::NotImplemented {
            operation: error.to_string(),
            implementer: STORE.to_owned(),
        },
        other => generic(other),
    }
}

/// `NotFound` for `path`.
pub(super) fn not_found(path: &str) -> ::object_store::Error {
    ::object_store::Error::NotFound {
        path: path.to_owned(),
        source: format!("no object at {path}").into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strata_errors_keep_their_kind_and_message() {
        let err = from_strata("p", strata::Error::TransactionConflict);
        let ::object_store::Error::Generic { store, source } = &err else { panic!("{err:?}") };
        assert_eq!(*store, STORE);
        assert!(matches!(
            source.downcast_ref::<strata::Error>(),
            Some(strata::Error::TransactionConflict)
        ));
        assert!(err.to_string().contains(&strata::Error::TransactionConflict.to_string()));
        let err = from_strata("p", strata::Error::VersioningDisabled);
        assert!(matches!(err, ::object_store::Error::NotSupported { .. }));
    }
}

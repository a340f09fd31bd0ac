//! The one error type every [`crate::Vfs`] returns. The engine branches only on [`ErrorKind`].

use alloc::boxed::Box;
use core::fmt;

/// What went wrong, as far as the engine needs to know to react.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The named file does not exist.
    NotFound,
    /// `create` found a file of that name already.
    AlreadyExists,
    /// A read went past the end of the file.
    UnexpectedEof,
    /// The device (or a quota) is full. As with any failed append, how much of the call's
    /// data reached the file is unknown.
    NoSpace,
    /// A transient failure; the same call may succeed if retried.
    Interrupted,
    /// The implementation does not offer this operation (for example `link`).
    Unsupported,
    /// The lock is held by another handle or process.
    Locked,
    /// Anything else: permissions, a failed fsync, a device error.
    Other,
    /// Encrypted data was written with another key than the one supplied (its key check value
    /// does not match), so it cannot be read.
    WrongKey,
}

impl ErrorKind {
    /// A short lower-case name for messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::UnexpectedEof => "unexpected end of file",
            ErrorKind::NoSpace => "no space left on device",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Locked => "locked by another handle",
            ErrorKind::Other => "i/o error",
            ErrorKind::WrongKey => "wrong encryption key",
        }
    }
}

/// A filesystem error: a kind, a static note saying where it arose, and the platform error
/// underneath when there is one.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    note: &'static str,
    source: Option<Box<dyn core::error::Error + Send + Sync + 'static>>,
}

/// Result alias for filesystem calls.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a static note (for example `"memfs: read past end"`).
    pub const fn new(kind: ErrorKind, note: &'static str) -> Self {
        Error { kind, note, source: None }
    }

    /// An error carrying the platform error that caused it.
    pub fn with_source(
        kind: ErrorKind,
        note: &'static str,
        source: impl core::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error { kind, note, source: Some(Box::new(source)) }
    }

    /// The kind the engine branches on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The static note saying where the error arose.
    pub fn note(&self) -> &'static str {
        self.note
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.as_str())?;
        if !self.note.is_empty() {
            write!(f, " ({})", self.note)?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match &self.source {
            Some(source) => Some(source.as_ref()),
            None => None,
        }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Error::new(kind, "")
    }
}

//! Strata errors as [`std::io::Error`]s, the error type of kvdb.
//!
//! Lossless: the io error's kind is chosen from the Strata error's variant, and the Strata
//! error itself is the io error's inner error, so its message is the io error's message and
//! `err.get_ref().and_then(|e| e.downcast_ref::<strata::Error>())` gives it back whole.

use std::io::{self, ErrorKind};

use strata::Error;

/// The io error kind closest to each Strata error.
fn kind_of(error: &Error) -> ErrorKind {
    match error {
        Error::Corruption { .. } => ErrorKind::InvalidData,
        Error::NoSpace { .. } => ErrorKind::StorageFull,
        Error::InvalidArgument { .. }
        | Error::KeyTooLarge { .. }
        | Error::ValueTooLarge { .. }
        | Error::TransactionTooLarge { .. } => ErrorKind::InvalidInput,
        Error::Locked => ErrorKind::ResourceBusy,
        Error::Closed => ErrorKind::BrokenPipe,
        Error::Poisoned => ErrorKind::ReadOnlyFilesystem,
        _ => ErrorKind::Other,
    }
}

/// `error` as an io error that keeps it (see the module docs).
pub fn to_io_error(error: Error) -> io::Error {
    io::Error::new(kind_of(&error), error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strata_error_survives_the_trip() {
        let io = to_io_error(Error::ValueTooLarge { len: 10, max: 5 });
        assert_eq!(io.kind(), ErrorKind::InvalidInput);
        assert_eq!(io.to_string(), Error::ValueTooLarge { len: 10, max: 5 }.to_string());
        let inner = io.get_ref().and_then(|e| e.downcast_ref::<Error>());
        assert!(matches!(inner, Some(Error::ValueTooLarge { len: 10, max: 5 })));
        assert_eq!(to_io_error(Error::Closed).kind(), ErrorKind::BrokenPipe);
    }
}

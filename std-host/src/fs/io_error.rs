//! Turning `std::io::Error` into the VFS error the engine branches on.

use std::io;

use strata_vfs::{Error, ErrorKind};

/// The [`ErrorKind`] the engine should see for a platform error.
pub(super) fn kind_of(err: &io::Error) -> ErrorKind {
    #[cfg(unix)]
    if err.raw_os_error() == Some(libc::ENOSPC) {
        return ErrorKind::NoSpace;
    }
    match err.kind() {
        io::ErrorKind::NotFound => ErrorKind::NotFound,
        io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        io::ErrorKind::UnexpectedEof => ErrorKind::UnexpectedEof,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ErrorKind::NoSpace,
        io::ErrorKind::Interrupted => ErrorKind::Interrupted,
        io::ErrorKind::Unsupported => ErrorKind::Unsupported,
        _ => ErrorKind::Other,
    }
}

/// Wraps `err`, keeping it as the source, with `op` naming the failed operation.
pub(super) fn map_io(op: &'static str, err: io::Error) -> Error {
    Error::with_source(kind_of(&err), op, err)
}

/// `|err| map_io(op, err)`, for `map_err`.
pub(super) fn io_err(op: &'static str) -> impl FnOnce(io::Error) -> Error {
    move |err| map_io(op, err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map() {
        let cases = [
            (io::ErrorKind::NotFound, ErrorKind::NotFound),
            (io::ErrorKind::AlreadyExists, ErrorKind::AlreadyExists),
            (io::ErrorKind::UnexpectedEof, ErrorKind::UnexpectedEof),
            (io::ErrorKind::StorageFull, ErrorKind::NoSpace),
            (io::ErrorKind::QuotaExceeded, ErrorKind::NoSpace),
            (io::ErrorKind::Interrupted, ErrorKind::Interrupted),
            (io::ErrorKind::Unsupported, ErrorKind::Unsupported),
            (io::ErrorKind::PermissionDenied, ErrorKind::Other),
            (io::ErrorKind::WouldBlock, ErrorKind::Other),
        ];
        for (io_kind, kind) in cases {
            let err = map_io("op", io::Error::from(io_kind));
            assert_eq!(err.kind(), kind, "{io_kind:?}");
            assert_eq!(err.note(), "op");
            assert!(std::error::Error::source(&err).is_some());
        }
    }

    #[cfg(unix)]
    #[test]
    fn raw_enospc_is_no_space() {
        let err = map_io("append", io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(err.kind(), ErrorKind::NoSpace);
        assert!(err.to_string().contains("append"), "{err}");
    }
}

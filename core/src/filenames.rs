//! Every file name the engine uses, in one place.
//!
//! | name          | what                                  |
//! |---------------|---------------------------------------|
//! | `LOCK`        | held while a process has the db open  |
//! | `NNNNNN.wal`  | write-ahead log segment number N      |
//!
//! Numbers are decimal, zero-padded to six digits (wider numbers simply grow).

use alloc::format;
use alloc::string::String;

/// The lock file.
pub const LOCK: &str = "LOCK";

/// What a file name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileName {
    /// The lock file.
    Lock,
    /// WAL segment with this number.
    Wal(u64),
}

/// Name of WAL segment `n`.
pub fn wal(n: u64) -> String {
    format!("{n:06}.wal")
}

/// Parses a file name the engine owns; `None` for anything else (left alone).
pub fn parse(name: &str) -> Option<FileName> {
    if name == LOCK {
        return Some(FileName::Lock);
    }
    let (stem, ext) = name.split_once('.')?;
    if stem.len() < 6 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = stem.parse().ok()?;
    match ext {
        "wal" => Some(FileName::Wal(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(wal(7), "000007.wal");
        assert_eq!(parse("000007.wal"), Some(FileName::Wal(7)));
        assert_eq!(parse(&wal(12_345_678)), Some(FileName::Wal(12_345_678)));
        assert_eq!(parse("LOCK"), Some(FileName::Lock));
        assert_eq!(parse("7.wal"), None);
        assert_eq!(parse("00000x.wal"), None);
        assert_eq!(parse("000007.txt"), None);
        assert_eq!(parse("notes"), None);
    }
}

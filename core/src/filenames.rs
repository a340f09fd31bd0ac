//! Every file name the engine uses, in one place.
//!
//! | name               | what                                                   |
//! |--------------------|--------------------------------------------------------|
//! | `LOCK`             | held while a process has the db open                   |
//! | `NNNNNN.wal`       | write-ahead log segment number N                       |
//! | `NNNNNN.sst`       | sorted table number N                                  |
//! | `NNNNNN.vlog`      | value log file number N                                |
//! | `MANIFEST-NNNNNN`  | manifest (log of version edits) number N               |
//! | `CURRENT`          | names the live manifest (see `docs/format/manifest.md`) |
//! | `*.tmp`            | scratch file, renamed into place or removed (`CURRENT.tmp`) |
//!
//! Numbers are decimal, zero-padded to six digits (wider numbers simply grow). WAL segments,
//! tables, value log files and manifests share one number space (`next_file_number` in the
//! manifest), so a number names at most one file.

use alloc::format;
use alloc::string::String;

/// The lock file.
pub const LOCK: &str = "LOCK";

/// The file naming the live manifest.
pub const CURRENT: &str = "CURRENT";

/// The scratch file `CURRENT` is written to before it is renamed into place.
pub const CURRENT_TMP: &str = "CURRENT.tmp";

/// Prefix of manifest file names.
const MANIFEST_PREFIX: &str = "MANIFEST-";

/// Suffix of scratch files.
const TMP_SUFFIX: &str = ".tmp";

/// What a file name denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileName {
    /// The lock file.
    Lock,
    /// WAL segment with this number.
    Wal(u64),
    /// Sorted table with this number.
    Table(u64),
    /// Value log file with this number.
    ValueLog(u64),
    /// Manifest with this number.
    Manifest(u64),
    /// The `CURRENT` file.
    Current,
    /// A scratch file (`*.tmp`): garbage if found at open.
    Temp,
}

/// Name of WAL segment `n`.
pub fn wal(n: u64) -> String {
    format!("{n:06}.wal")
}

/// Name of table `n`.
pub fn table(n: u64) -> String {
    format!("{n:06}.sst")
}

/// Name of value log file `n`.
pub fn vlog(n: u64) -> String {
    format!("{n:06}.vlog")
}

/// Name of manifest `n`.
pub fn manifest(n: u64) -> String {
    format!("{MANIFEST_PREFIX}{n:06}")
}

/// Parses a file name the engine owns; `None` for anything else (left alone).
pub fn parse(name: &str) -> Option<FileName> {
    match name {
        LOCK => return Some(FileName::Lock),
        CURRENT => return Some(FileName::Current),
        _ => {}
    }
    if let Some(digits) = name.strip_prefix(MANIFEST_PREFIX) {
        return number(digits).map(FileName::Manifest);
    }
    if name.len() > TMP_SUFFIX.len() && name.ends_with(TMP_SUFFIX) {
        return Some(FileName::Temp);
    }
    let (stem, ext) = name.split_once('.')?;
    let n = number(stem)?;
    match ext {
        "wal" => Some(FileName::Wal(n)),
        "sst" => Some(FileName::Table(n)),
        "vlog" => Some(FileName::ValueLog(n)),
        _ => None,
    }
}

/// At least six ASCII digits, as a number.
fn number(digits: &str) -> Option<u64> {
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
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

    #[test]
    fn tables_manifests_current_and_temps() {
        assert_eq!(table(42), "000042.sst");
        assert_eq!(parse("000042.sst"), Some(FileName::Table(42)));
        assert_eq!(vlog(43), "000043.vlog");
        assert_eq!(parse("000043.vlog"), Some(FileName::ValueLog(43)));
        assert_eq!(manifest(3), "MANIFEST-000003");
        assert_eq!(parse("MANIFEST-000003"), Some(FileName::Manifest(3)));
        assert_eq!(parse(&manifest(1_234_567)), Some(FileName::Manifest(1_234_567)));
        assert_eq!(parse("MANIFEST-3"), None);
        assert_eq!(parse("MANIFEST-00000a"), None);
        assert_eq!(parse("MANIFEST-"), None);
        assert_eq!(parse("CURRENT"), Some(FileName::Current));
        assert_eq!(parse(CURRENT_TMP), Some(FileName::Temp));
        assert_eq!(parse("000009.sst.tmp"), Some(FileName::Temp));
        assert_eq!(parse(".tmp"), None);
        assert_eq!(parse("current"), None);
    }
}

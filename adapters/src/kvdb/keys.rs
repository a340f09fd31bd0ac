//! The key layout: `"kvdb\0" ++ column (u32, big-endian) ++ key`.
//!
//! Big-endian column numbers keep each column one contiguous range in key order, after the
//! columns before it; the namespace keeps kvdb's keys apart from other data in the same tree.

use std::io;

/// The prefix of every key this adapter writes.
pub(crate) const NAMESPACE: &[u8] = b"kvdb\0";

/// The columns of one database, and the mapping between their keys and the tree's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Columns {
    count: u32,
}

impl Columns {
    pub(super) fn new(count: u32) -> Columns {
        Columns { count }
    }

    pub(super) fn count(&self) -> u32 {
        self.count
    }

    /// An error unless `col` is one of the database's columns.
    pub(super) fn check(&self, col: u32) -> io::Result<()> {
        if col < self.count {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no column {col}: the database has {} column(s)", self.count),
            ))
        }
    }

    /// `NAMESPACE ++ col`, the prefix of the column's keys.
    fn column_prefix(&self, col: u32) -> io::Result<Vec<u8>> {
        self.check(col)?;
        let mut out = Vec::with_capacity(NAMESPACE.len() + 4);
        out.extend_from_slice(NAMESPACE);
        out.extend_from_slice(&col.to_be_bytes());
        Ok(out)
    }

    /// The tree key of `key` in column `col`.
    pub(super) fn key(&self, col: u32, key: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = self.column_prefix(col)?;
        out.extend_from_slice(key);
        Ok(out)
    }

    /// The tree key range `[start, end)` holding exactly the keys of column `col` that start
    /// with `prefix`.
    pub(super) fn prefix_range(&self, col: u32, prefix: &[u8]) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let start = self.key(col, prefix)?;
        // The namespace starts with a byte below 0xff, so a successor always exists.
        let end = ::kvdb::end_prefix(&start).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "key prefix has no successor")
        })?;
        Ok((start, end))
    }

    /// The kvdb key inside tree key `tree_key` of column `col`.
    pub(super) fn user_key<'k>(&self, col: u32, tree_key: &'k [u8]) -> io::Result<&'k [u8]> {
        let prefix = self.column_prefix(col)?;
        tree_key.strip_prefix(prefix.as_slice()).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "a scan returned a key outside its column")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_column_sort_together_and_prefix_ranges_are_tight() {
        let cols = Columns::new(3);
        assert_eq!(cols.key(1, b"ab").expect("valid in this test"), b"kvdb\0\0\0\0\x01ab");
        let (start, end) = cols.prefix_range(1, &[0xff, 0xff]).expect("valid in this test");
        assert_eq!(start, b"kvdb\0\0\0\0\x01\xff\xff");
        assert_eq!(end, b"kvdb\0\0\0\0\x02");
        let (start, end) = cols.prefix_range(2, b"").expect("valid in this test");
        assert_eq!(
            (start.as_slice(), end.as_slice()),
            (&b"kvdb\0\0\0\0\x02"[..], &b"kvdb\0\0\0\0\x03"[..])
        );
        assert!(cols.key(3, b"x").is_err());
        assert_eq!(cols.user_key(1, b"kvdb\0\0\0\0\x01ab").expect("valid in this test"), b"ab");
        assert!(cols.user_key(0, b"kvdb\0\0\0\0\x01ab").is_err());
    }
}

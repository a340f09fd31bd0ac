//! Where the openraft adapter keeps each fact in the tree (docs/format/openraft.md).
//!
//! Every key starts with the layout's prefix (`raft/` unless the user picks another), so one
//! tree can hold a Raft node beside other data. Below the prefix, one sub-range per concern:
//!
//! ```text
//! prefix "log/"  index (u64 big-endian)  -> log entry     (the log store)
//! prefix "meta/vote"                     -> vote          (the log store)
//! prefix "meta/committed"                -> log id        (the log store)
//! prefix "meta/purged"                   -> log id        (the log store)
//! prefix "sm/applied"                    -> log id        (the state machine)
//! prefix "sm/membership"                 -> membership    (the state machine)
//! prefix "sm/snapshot_meta"              -> snapshot meta (the state machine)
//! prefix "sm/snapshot_data"              -> snapshot bytes
//! prefix "data/" user key                -> user value    (the state machine's data)
//! ```
//!
//! The index is big-endian so that byte order is index order: a range scan over `log/` walks
//! the log in order, and `truncate`/`purge` are range deletes.

/// The prefix used when the user does not choose one.
pub const DEFAULT_PREFIX: &[u8] = b"raft/";

const LOG: &[u8] = b"log/";
const VOTE: &[u8] = b"meta/vote";
const COMMITTED: &[u8] = b"meta/committed";
const PURGED: &[u8] = b"meta/purged";
const APPLIED: &[u8] = b"sm/applied";
const MEMBERSHIP: &[u8] = b"sm/membership";
const SNAPSHOT_META: &[u8] = b"sm/snapshot_meta";
const SNAPSHOT_DATA: &[u8] = b"sm/snapshot_data";
const DATA: &[u8] = b"data/";

/// The keys of one Raft node's state inside a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    prefix: Vec<u8>,
}

impl Default for KeyLayout {
    fn default() -> Self {
        KeyLayout::new(DEFAULT_PREFIX)
    }
}

impl KeyLayout {
    /// A layout whose keys all start with `prefix`. Two nodes sharing a tree need prefixes
    /// where neither is a prefix of the other.
    pub fn new(prefix: &[u8]) -> Self {
        KeyLayout { prefix: prefix.to_vec() }
    }

    /// The prefix every key of this layout starts with.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    fn key(&self, parts: &[&[u8]]) -> Vec<u8> {
        let len = self.prefix.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut key = Vec::with_capacity(len);
        key.extend_from_slice(&self.prefix);
        for part in parts {
            key.extend_from_slice(part);
        }
        key
    }

    /// The key of the log entry at `index`.
    pub fn log_entry(&self, index: u64) -> Vec<u8> {
        self.key(&[LOG, &index.to_be_bytes()])
    }

    /// The first key past every log entry: the exclusive end of the log's range.
    pub fn log_end(&self) -> Vec<u8> {
        // `log/` + 0xff.. sorts after every 8-byte index; `log0` is the next prefix after `log/`.
        self.key(&[b"log0"])
    }

    /// The index encoded in a log entry key, or `None` if `key` is not one.
    pub fn log_index(&self, key: &[u8]) -> Option<u64> {
        let rest = key.strip_prefix(self.prefix.as_slice())?.strip_prefix(LOG)?;
        let bytes: [u8; 8] = rest.try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    }

    /// The key of the saved vote.
    pub fn vote(&self) -> Vec<u8> {
        self.key(&[VOTE])
    }

    /// The key of the saved committed log id.
    pub fn committed(&self) -> Vec<u8> {
        self.key(&[COMMITTED])
    }

    /// The key of the id of the last purged log entry.
    pub fn purged(&self) -> Vec<u8> {
        self.key(&[PURGED])
    }

    /// The key of the state machine's last applied log id.
    pub fn applied(&self) -> Vec<u8> {
        self.key(&[APPLIED])
    }

    /// The key of the state machine's last applied membership.
    pub fn membership(&self) -> Vec<u8> {
        self.key(&[MEMBERSHIP])
    }

    /// The key of the current snapshot's metadata.
    pub fn snapshot_meta(&self) -> Vec<u8> {
        self.key(&[SNAPSHOT_META])
    }

    /// The key of the current snapshot's bytes.
    pub fn snapshot_data(&self) -> Vec<u8> {
        self.key(&[SNAPSHOT_DATA])
    }

    /// The key under which the state machine keeps `user_key`.
    pub fn data(&self, user_key: &[u8]) -> Vec<u8> {
        self.key(&[DATA, user_key])
    }

    /// The range `[start, end)` of every state machine data key.
    pub fn data_range(&self) -> (Vec<u8>, Vec<u8>) {
        (self.key(&[DATA]), self.key(&[b"data0"]))
    }

    /// The user key inside a data key, or `None` if `key` is not one.
    pub fn user_key<'k>(&self, key: &'k [u8]) -> Option<&'k [u8]> {
        key.strip_prefix(self.prefix.as_slice())?.strip_prefix(DATA)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_index_and_stay_in_range() {
        let layout = KeyLayout::default();
        let indexes = [0u64, 1, 255, 256, 65_535, 1 << 32, u64::MAX];
        for pair in indexes.windows(2) {
            assert!(layout.log_entry(pair[0]) < layout.log_entry(pair[1]));
        }
        for &i in &indexes {
            let key = layout.log_entry(i);
            assert!(key < layout.log_end());
            assert_eq!(layout.log_index(&key), Some(i));
        }
        assert_eq!(layout.log_index(&layout.vote()), None);
    }

    #[test]
    fn data_keys_stay_in_the_data_range() {
        let layout = KeyLayout::new(b"n1/");
        let (start, end) = layout.data_range();
        for user_key in [&b""[..], b"a", b"\xff\xff\xff"] {
            let key = layout.data(user_key);
            assert!(start <= key && key < end);
            assert_eq!(layout.user_key(&key), Some(user_key));
        }
        for other in [layout.applied(), layout.membership(), layout.log_entry(3), layout.vote()] {
            assert!(!(start <= other && other < end));
        }
    }
}

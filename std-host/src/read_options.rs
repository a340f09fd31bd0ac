//! Options for one range read.

/// Bounds, limit, time and shape of a range read.
///
/// The lower bound is inclusive and the upper bound exclusive; a missing bound is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    pub(crate) limit: Option<usize>,
    pub(crate) lower: Option<Vec<u8>>,
    pub(crate) upper: Option<Vec<u8>>,
    pub(crate) keys_only: bool,
    pub(crate) timestamp: Option<u64>,
}

impl ReadOptions {
    /// No bounds, no limit, current data, keys and values.
    pub fn new() -> Self {
        Self::default()
    }

    /// At most this many entries (`None`: no limit).
    pub fn with_limit(mut self, limit: Option<usize>) -> Self {
        self.limit = limit;
        self
    }

    /// Start at this key, inclusive (`None`: from the first key).
    pub fn with_iterate_lower_bound(mut self, bound: Option<Vec<u8>>) -> Self {
        self.lower = bound;
        self
    }

    /// Stop before this key, exclusive (`None`: to the last key).
    pub fn with_iterate_upper_bound(mut self, bound: Option<Vec<u8>>) -> Self {
        self.upper = bound;
        self
    }

    /// Marks a keys-only read. [`Transaction::keys_with_options`](crate::Transaction::keys_with_options)
    /// reads keys only whatever this says (with the value log, values are never read);
    /// [`Transaction::range_with_options`](crate::Transaction::range_with_options) always
    /// returns values and ignores it. Kept so code written for the guide's `ReadOptions`
    /// compiles unchanged.
    pub fn with_keys_only(mut self, keys_only: bool) -> Self {
        self.keys_only = keys_only;
        self
    }

    /// Read the data as it was at this timestamp (requires versioning).
    pub fn with_timestamp(mut self, timestamp: Option<u64>) -> Self {
        self.timestamp = timestamp;
        self
    }
}

//! Operation counters for [`KeyValueDB::io_stats`](kvdb::KeyValueDB::io_stats).
//!
//! Counted RocksDB-style, which is what kvdb's shared tests check:
//! - a `get` is one read of `key.len()` bytes plus the value's length when there is one (a
//!   miss still costs its key); each pair an iterator yields is one read of key and value;
//! - a `write` is one transaction; each of its operations is one write, of key plus value
//!   bytes for an insert, key bytes for a delete and prefix bytes for a prefix delete.
//!
//! Strata serves reads from its own caches, which these counters do not see, so
//! `cache_reads` and `cache_read_bytes` stay 0 (Strata's block cache counts its hits in
//! `Tree::stats`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use ::kvdb::{DBOp, IoStats, IoStatsKind};

#[derive(Debug, Default)]
struct Totals {
    transactions: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

/// A copy of the totals at one moment.
#[derive(Debug, Clone, Copy)]
struct Mark {
    transactions: u64,
    reads: u64,
    writes: u64,
    bytes_read: u64,
    bytes_written: u64,
    at: Instant,
}

/// Running totals since open, and where the last `SincePrevious` report left off.
#[derive(Debug)]
pub(super) struct Counters {
    totals: Totals,
    opened: Instant,
    previous: Mutex<Mark>,
}

fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Counters {
    pub(super) fn new() -> Counters {
        let now = Instant::now();
        let zero =
            Mark { transactions: 0, reads: 0, writes: 0, bytes_read: 0, bytes_written: 0, at: now };
        Counters { totals: Totals::default(), opened: now, previous: Mutex::new(zero) }
    }

    /// One read of a `key_len`-byte key that found a `value_len`-byte value, or nothing.
    pub(super) fn read(&self, key_len: usize, value_len: Option<usize>) {
        self.totals.reads.fetch_add(1, Relaxed);
        self.totals.bytes_read.fetch_add(len64(key_len) + len64(value_len.unwrap_or(0)), Relaxed);
    }

    /// One committed batch.
    pub(super) fn wrote(&self, ops: &[DBOp]) {
        let bytes: u64 = ops
            .iter()
            .map(|op| match op {
                DBOp::Insert { key, value, .. } => len64(key.len()) + len64(value.len()),
                DBOp::Delete { key, .. } => len64(key.len()),
                DBOp::DeletePrefix { prefix, .. } => len64(prefix.len()),
            })
            .sum();
        self.totals.transactions.fetch_add(1, Relaxed);
        self.totals.writes.fetch_add(len64(ops.len()), Relaxed);
        self.totals.bytes_written.fetch_add(bytes, Relaxed);
    }

    fn mark(&self) -> Mark {
        Mark {
            transactions: self.totals.transactions.load(Relaxed),
            reads: self.totals.reads.load(Relaxed),
            writes: self.totals.writes.load(Relaxed),
            bytes_read: self.totals.bytes_read.load(Relaxed),
            bytes_written: self.totals.bytes_written.load(Relaxed),
            at: Instant::now(),
        }
    }

    /// The counts since open (`Overall`) or since the previous `SincePrevious` report, which
    /// this call then replaces.
    pub(super) fn take(&self, kind: IoStatsKind) -> IoStats {
        let now = self.mark();
        let since = match kind {
            IoStatsKind::Overall => Mark {
                transactions: 0,
                reads: 0,
                writes: 0,
                bytes_read: 0,
                bytes_written: 0,
                at: self.opened,
            },
            IoStatsKind::SincePrevious => {
                let mut previous = self.previous.lock().unwrap_or_else(|p| p.into_inner());
                std::mem::replace(&mut *previous, now)
            }
        };
        let mut stats = IoStats::empty();
        stats.transactions = now.transactions.saturating_sub(since.transactions);
        stats.reads = now.reads.saturating_sub(since.reads);
        stats.writes = now.writes.saturating_sub(since.writes);
        stats.bytes_read = now.bytes_read.saturating_sub(since.bytes_read);
        stats.bytes_written = now.bytes_written.saturating_sub(since.bytes_written);
        stats.started = since.at;
        stats.span = now.at.saturating_duration_since(since.at);
        stats
    }
}

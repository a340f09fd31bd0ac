//! Where commit timestamps come from. The core has no wall clock; the host supplies one.

use core::sync::atomic::Ordering;
use strata_vfs::sync::AtomicU64;

/// A source of nanosecond timestamps. Need not be monotonic: the engine makes commit
/// timestamps strictly increasing itself (`max(now, last + 1)`).
pub trait Clock: Send + Sync {
    /// Nanoseconds since an epoch the host chooses (the Unix epoch for `strata`).
    fn now_ns(&self) -> u64;
}

/// A clock that counts: each call returns one more than the last. For no_std hosts without a
/// time source, and for deterministic tests.
#[derive(Debug, Default)]
pub struct LogicalClock(AtomicU64);

impl LogicalClock {
    /// A clock whose next reading is `start + 1`.
    pub const fn starting_at(start: u64) -> Self {
        LogicalClock(AtomicU64::new(start))
    }
}

impl Clock for LogicalClock {
    fn now_ns(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

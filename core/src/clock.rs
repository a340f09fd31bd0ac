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

/// A clock that reads whatever its owner last set, and counts how often it was read: for
/// tests and simulations that need exact, repeatable timestamps.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
    reads: AtomicU64,
}

impl ManualClock {
    /// A shared clock reading `ns`.
    pub fn at(ns: u64) -> alloc::sync::Arc<Self> {
        let c = alloc::sync::Arc::new(ManualClock::default());
        c.set(ns);
        c
    }

    /// Sets the time every later reading returns.
    pub fn set(&self, ns: u64) {
        self.now.store(ns, Ordering::SeqCst);
    }

    /// How many times the clock was read.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.now.load(Ordering::SeqCst)
    }
}

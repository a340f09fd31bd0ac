//! The wall clock commit timestamps come from.

use std::time::{SystemTime, UNIX_EPOCH};

use strata_core::Clock;

/// Nanoseconds since the Unix epoch. The engine makes commit timestamps strictly increasing
/// even if this clock steps backwards.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

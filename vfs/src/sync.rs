//! Minimal locks shared by the no_std crates: std's mutexes with the `std` feature (they park
//! waiting threads), spin locks without it (a bare-metal target has nothing to park on).
//!
//! Poisoning is ignored: every critical section in Strata leaves its data consistent before it
//! can panic, and the engine has its own poisoned state for failed syncs.

#[cfg(feature = "std")]
mod imp {
    use std::sync as s;

    /// A mutual-exclusion lock.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(s::Mutex<T>);
    /// Guard of [`Mutex`].
    pub type MutexGuard<'a, T> = s::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(value: T) -> Self {
            Mutex(s::Mutex::new(value))
        }
        /// Locks, waiting as long as needed.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(s::PoisonError::into_inner)
        }
        /// Locks if free.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(s::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(s::TryLockError::WouldBlock) => None,
            }
        }
        /// The value, consuming the lock.
        pub fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(s::PoisonError::into_inner)
        }
    }

    /// A reader-writer lock.
    #[derive(Debug, Default)]
    pub struct RwLock<T>(s::RwLock<T>);
    /// Shared guard of [`RwLock`].
    pub type RwLockReadGuard<'a, T> = s::RwLockReadGuard<'a, T>;
    /// Exclusive guard of [`RwLock`].
    pub type RwLockWriteGuard<'a, T> = s::RwLockWriteGuard<'a, T>;

    impl<T> RwLock<T> {
        /// A new unlocked lock.
        pub const fn new(value: T) -> Self {
            RwLock(s::RwLock::new(value))
        }
        /// Shared access.
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(s::PoisonError::into_inner)
        }
        /// Exclusive access.
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(s::PoisonError::into_inner)
        }
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    /// A mutual-exclusion lock.
    #[derive(Debug, Default)]
    pub struct Mutex<T>(spin::Mutex<T>);
    /// Guard of [`Mutex`].
    pub type MutexGuard<'a, T> = spin::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        /// A new unlocked mutex.
        pub const fn new(value: T) -> Self {
            Mutex(spin::Mutex::new(value))
        }
        /// Locks, spinning as long as needed.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
        /// Locks if free.
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
        /// The value, consuming the lock.
        pub fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    /// A reader-writer lock.
    #[derive(Debug, Default)]
    pub struct RwLock<T>(spin::RwLock<T>);
    /// Shared guard of [`RwLock`].
    pub type RwLockReadGuard<'a, T> = spin::RwLockReadGuard<'a, T>;
    /// Exclusive guard of [`RwLock`].
    pub type RwLockWriteGuard<'a, T> = spin::RwLockWriteGuard<'a, T>;

    impl<T> RwLock<T> {
        /// A new unlocked lock.
        pub const fn new(value: T) -> Self {
            RwLock(spin::RwLock::new(value))
        }
        /// Shared access.
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read()
        }
        /// Exclusive access.
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write()
        }
    }
}

pub use imp::*;

/// A 64-bit atomic counter: the native one where the target has 64-bit atomics, a spin-locked
/// `u64` elsewhere (32-bit microcontrollers such as Cortex-M4). Orderings are accepted for the
/// same signatures; the locked fallback is always sequentially consistent.
#[cfg(target_has_atomic = "64")]
pub use core::sync::atomic::AtomicU64;

#[cfg(not(target_has_atomic = "64"))]
mod atomic64 {
    use core::sync::atomic::Ordering;

    /// Spin-locked stand-in for `core::sync::atomic::AtomicU64`.
    #[derive(Debug, Default)]
    pub struct AtomicU64(spin::Mutex<u64>);

    impl AtomicU64 {
        /// A new counter.
        pub const fn new(v: u64) -> Self {
            AtomicU64(spin::Mutex::new(v))
        }
        /// Reads the value.
        pub fn load(&self, _: Ordering) -> u64 {
            *self.0.lock()
        }
        /// Writes the value.
        pub fn store(&self, v: u64, _: Ordering) {
            *self.0.lock() = v;
        }
        /// Adds, returning the previous value.
        pub fn fetch_add(&self, v: u64, _: Ordering) -> u64 {
            let mut g = self.0.lock();
            let old = *g;
            *g = old.wrapping_add(v);
            old
        }
        /// Bitwise or, returning the previous value.
        pub fn fetch_or(&self, v: u64, _: Ordering) -> u64 {
            let mut g = self.0.lock();
            let old = *g;
            *g = old | v;
            old
        }
        /// Stores the maximum, returning the previous value.
        pub fn fetch_max(&self, v: u64, _: Ordering) -> u64 {
            let mut g = self.0.lock();
            let old = *g;
            *g = old.max(v);
            old
        }
    }
}

#[cfg(not(target_has_atomic = "64"))]
pub use atomic64::AtomicU64;

//! One module per engine, each behind its cargo feature.

#[cfg(feature = "fjall")]
pub mod fjall;
#[cfg(feature = "redb")]
pub mod redb;
#[cfg(feature = "rocksdb")]
pub mod rocksdb;
#[cfg(feature = "sled")]
pub mod sled;
#[cfg(feature = "strata")]
pub mod strata;
#[cfg(feature = "surrealkv")]
pub mod surrealkv;

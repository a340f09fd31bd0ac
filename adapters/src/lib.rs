//! # Strata adapters
//!
//! Each module implements another database's storage traits over a [`strata::Tree`], so that
//! database runs on Strata. Every adapter sits behind a cargo feature named after its host and
//! is proven by the test suite the host project itself publishes (see `adapters/tests/`).
//!
//! The adapters share two conventions:
//! - the user builds, configures and owns the tree; an adapter keeps its data under a key
//!   prefix of its own, so one tree can hold an adapter's data beside other data;
//! - errors keep Strata's kind and message when they are mapped into the host's error type.

#[cfg(feature = "gluesql")]
pub mod gluesql;

#[cfg(feature = "kvdb")]
pub mod kvdb;

#[cfg(feature = "object-store")]
pub mod object_store;

#[cfg(feature = "openraft")]
pub mod openraft;

//! Compaction policy: which files to merge next, decided purely from a [`Version`].
//!
//! [`pick`] does no I/O and holds no state: the engine passes the version, the configuration,
//! the per-level round-robin pointers (recovered from the manifest) and a predicate telling
//! which files are already inputs of a running compaction. It returns a [`CompactionTask`]
//! that the engine runs (merge, or a manifest-only move) and installs as a `VersionEdit`.
//!
//! Policy (leveled, in the manner of LevelDB):
//! - L0 → L1 when L0 holds at least `l0_trigger` files: every L0 file plus the L1 files they
//!   overlap. Writers stall at `l0_stop` files ([`needs_stall`]).
//! - Ln → Ln+1 (n ≥ 1) when the level's bytes reach its target: `base_level_bytes` for L1,
//!   times `size_ratio` per level below. One file, chosen round-robin after the level's
//!   pointer, plus the files of Ln+1 it overlaps. The last level is never a source.
//! - Among levels over target, the highest score goes first ([`level_scores`]).
//!
//! [`Version`]: crate::version::Version

mod picker;

pub use picker::{
    CompactionConfig, CompactionTask, LevelScore, TaskKind, level_scores, needs_stall, pick,
};

//! A whole database from fuzzed files: WAL segments, tables, value log files, manifests,
//! `CURRENT` naming a (fuzzed) manifest, and `CHECKPOINT` metadata, split out of the input by
//! `strata_fuzz::files` (seeds: real small databases written by `fuzz/examples/make_seeds.rs`,
//! so mutations start past the magic numbers and footers). Runs `verify`, restores a checkpoint
//! when there is one, opens, reads, writes one Immediate commit, flushes, compacts, collects
//! value log garbage, closes and reopens (`strata_fuzz::database`).
//!
//! Errors are fine; panics, hangs (`-timeout`) and huge allocations (`-rss_limit_mb`,
//! `-malloc_limit_mb`) are not, and neither is an acknowledged commit missing after reopen.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| strata_fuzz::database::run(data));

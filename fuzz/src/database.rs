//! The `open_db` scenario: a database directory built from fuzzed files, checked without
//! opening (`verify`), restored when it holds a checkpoint, opened, read, written, maintained
//! and reopened.
//!
//! Errors are expected everywhere (most inputs are damaged databases); what must never happen
//! is a panic, a hang or an allocation sized by a damaged length field. Beyond that, one
//! property the engine owes even a damaged database: once it has opened one and acknowledged an
//! `Immediate` commit into it, the next open sees that commit.

use std::sync::Arc;
use std::sync::OnceLock;

use strata_core::iter::KeyRange;
use strata_core::options::VLogChecksumLevel;
use strata_core::{
    Durability, Engine, EngineOptions, LogicalClock, Mode, RecoveryMode, TxnCore, checkpoint,
};
use strata_vfs::{MemFs, Vfs};

use crate::files;

/// Entries read per scan at most: enough to walk every seed database, small enough that a
/// damaged table claiming millions of entries cannot make one input slow.
const MAX_SCAN: usize = 4096;
/// The key the scenario writes; no seed database holds it.
pub const WRITTEN_KEY: &[u8] = b"\xfffuzz-written";
/// A key whose value is large enough to go to the value log when it is enabled.
pub const LARGE_KEY: &[u8] = b"\xfffuzz-large";
/// Value log threshold of the scenario's options (seeds are written with the same).
pub const VLOG_THRESHOLD: usize = 64;

/// The meaning of the container's options byte.
pub mod option_bits {
    /// Bits 0-1: recovery mode (0 and 3: TolerateTornTail, 1: AbsoluteConsistency,
    /// 2: PointInTime).
    pub const RECOVERY_MASK: u8 = 0b11;
    /// Keep every version (turns the value log on).
    pub const VERSIONING: u8 = 1 << 2;
    /// Value log on.
    pub const VLOG: u8 = 1 << 3;
    /// Do not verify value log checksums on reads.
    pub const VLOG_UNVERIFIED: u8 = 1 << 4;
    /// Compress table blocks and values.
    pub const COMPRESSION: u8 = 1 << 5;
}

/// Engine options for an options byte: small sizes (so a write or two fills nothing up and the
/// block cache allocates little), the rest chosen by the byte.
pub fn options(byte: u8) -> EngineOptions {
    use option_bits::*;
    let mut o = EngineOptions::default();
    o.max_memtable_size = 64 * 1024;
    o.wal_segment_size = 64 * 1024;
    o.target_file_size = 64 * 1024;
    o.base_level_bytes = 256 * 1024;
    o.block_cache_bytes = 64 * 1024;
    o.max_transaction_size = 64 * 1024;
    o.vlog_max_file_size = 1 << 20;
    o.vlog_value_threshold = VLOG_THRESHOLD;
    o.recovery_mode = match byte & RECOVERY_MASK {
        1 => RecoveryMode::AbsoluteConsistency,
        2 => RecoveryMode::PointInTime,
        _ => RecoveryMode::TolerateTornTail,
    };
    o.versioning = byte & VERSIONING != 0;
    o.vlog_enabled = o.versioning || byte & VLOG != 0;
    o.vlog_checksum = if byte & VLOG_UNVERIFIED != 0 {
        VLogChecksumLevel::Disabled
    } else {
        VLogChecksumLevel::Full
    };
    o.compression = byte & COMPRESSION != 0;
    o
}

/// Set `STRATA_FUZZ_REQUIRE_OPEN=1` when replaying the committed seeds: each must then open
/// (and restore, for a checkpoint), so a seed that went stale after a format change fails CI
/// instead of silently no longer reaching past the first checks.
fn require_open() -> bool {
    static REQUIRE: OnceLock<bool> = OnceLock::new();
    *REQUIRE.get_or_init(|| std::env::var_os("STRATA_FUZZ_REQUIRE_OPEN").is_some_and(|v| v == "1"))
}

/// Runs the whole scenario on one fuzz input.
pub fn run(input: &[u8]) {
    run_checked(input, require_open());
}

/// [`run`], failing when `must_open` and the database (or its checkpoint) does not open.
pub fn run_checked(input: &[u8], must_open: bool) {
    let Some((byte, list)) = files::split(input) else { return };
    let fs = MemFs::new();
    for (name, contents) in &list {
        // Names MemFs refuses (path separators, ...) are simply absent.
        let _ = fs.write_whole(name, contents);
    }
    let opts = options(byte);

    // What `strata verify` does: read every byte without opening.
    let _ = strata_core::verify::verify(&fs, &mut |_| {});

    if fs.exists(checkpoint::METADATA).unwrap_or(false) {
        let restored = checkpoint::validate(&fs, opts.level_count).and_then(|(_, recovered)| {
            let live = MemFs::new();
            checkpoint::install(&live, &fs, &recovered, opts.level_count, &|_, _| false)?;
            Ok(live)
        });
        match restored {
            Ok(live) => exercise(&live, &opts, must_open),
            Err(e) => assert!(!must_open, "a seed checkpoint does not restore: {e}"),
        }
    }
    exercise(&fs, &opts, must_open);
}

fn open(fs: &MemFs, opts: &EngineOptions) -> strata_core::Result<Engine<MemFs>> {
    Engine::open(fs.clone(), opts.clone(), Arc::new(LogicalClock::default()))
}

/// Open, read, write, maintain, close, reopen, read the write back.
fn exercise(fs: &MemFs, opts: &EngineOptions, must_open: bool) {
    let engine = match open(fs, opts) {
        Ok(e) => e,
        Err(e) => {
            assert!(!must_open, "a seed database does not open: {e}");
            return;
        }
    };
    let seen = read_everything(&engine, opts);

    let large = vec![0x5a; VLOG_THRESHOLD * 2];
    let committed = write(&engine, seen.first().map(Vec::as_slice), &large).is_ok();
    let _ = engine.flush_all();
    let _ = engine.maintenance_step(usize::MAX);
    if opts.vlog_enabled {
        let _ = engine.collect_garbage();
    }
    let _ = read_everything(&engine, opts);
    let _ = engine.close();
    drop(engine);

    match open(fs, opts) {
        Ok(engine) => {
            let _ = read_everything(&engine, opts);
            if committed {
                let txn = TxnCore::begin(&engine, Mode::ReadOnly).expect("begin on an open engine");
                let small = txn.get(&engine, WRITTEN_KEY);
                let big = txn.get(&engine, LARGE_KEY);
                assert!(
                    matches!(&small, Ok(Some(v)) if v.as_ref() == b"written"),
                    "an acknowledged Immediate commit is lost after reopen: {small:?}"
                );
                assert!(
                    matches!(&big, Ok(Some(v)) if v.as_ref() == large.as_slice()),
                    "an acknowledged Immediate commit's large value is lost after reopen: {big:?}"
                );
            }
            let _ = engine.close();
        }
        Err(e) => assert!(
            !committed,
            "a database that opened and acknowledged an Immediate commit no longer opens: {e}"
        ),
    }
}

/// One transaction with `Immediate` durability: a small value, a large one (value log when it
/// is on) and a delete of a key the database held.
fn write(engine: &Engine<MemFs>, delete: Option<&[u8]>, large: &[u8]) -> strata_core::Result<()> {
    let mut txn = TxnCore::begin(engine, Mode::ReadWrite)?;
    txn.set_durability(Durability::Immediate);
    txn.set(WRITTEN_KEY, b"written")?;
    txn.set(LARGE_KEY, large)?;
    if let Some(key) = delete
        && key != WRITTEN_KEY
        && key != LARGE_KEY
    {
        txn.delete(key)?;
    }
    engine.commit(txn.finish()?)?;
    Ok(())
}

/// Scans both ways, reads each key seen with a point read, and with versioning lists versions
/// and reads at their timestamps. Returns the keys the forward scan saw.
fn read_everything(engine: &Engine<MemFs>, opts: &EngineOptions) -> Vec<Vec<u8>> {
    let Ok(txn) = TxnCore::begin(engine, Mode::ReadOnly) else { return Vec::new() };
    let mut seen = Vec::new();
    if let Ok(iter) = txn.range(engine, KeyRange::all(), None, Some(MAX_SCAN), false) {
        for item in iter {
            match item {
                Ok((k, _)) => seen.push(k.to_vec()),
                Err(_) => break,
            }
        }
    }
    if let Ok(iter) = txn.range(engine, KeyRange::all(), None, Some(MAX_SCAN), false) {
        for item in iter.rev() {
            if item.is_err() {
                break;
            }
        }
    }
    for key in seen.iter().take(64) {
        let _ = txn.get(engine, key);
    }
    if opts.versioning
        && let Ok(versions) = engine.scan_versions(txn.read_seq(), &KeyRange::all(), Some(MAX_SCAN))
    {
        for v in versions.iter().take(64) {
            let _ = txn.get_at(engine, &v.key, v.ts);
            let _ = txn
                .range(engine, KeyRange::all(), Some(v.ts), Some(16), false)
                .map(Iterator::count);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds() -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/open_db");
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .expect("seed directory")
            .map(|e| {
                let path = e.expect("entry").path();
                (path.display().to_string(), std::fs::read(&path).expect("read seed"))
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_seed_database_opens_and_survives_the_scenario() {
        let seeds = seeds();
        assert!(seeds.len() >= 4);
        for (name, bytes) in seeds {
            eprintln!("{name}");
            run_checked(&bytes, true);
        }
    }

    /// A cheap deterministic stand-in for the fuzzer: every byte of every seed flipped in turn
    /// (`STRATA_FUZZ_FLIP_STRIDE` sets the stride; default 97).
    #[test]
    fn flipped_bytes_in_seed_databases_are_errors_not_panics() {
        let stride = std::env::var("STRATA_FUZZ_FLIP_STRIDE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(97);
        for (name, bytes) in seeds() {
            for at in (1..bytes.len()).step_by(stride) {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0x5a;
                eprintln!("{name} byte {at}");
                run_checked(&damaged, false);
            }
        }
    }
}

//! WAL recovery over arbitrary segment bytes, in every recovery mode: an error or records,
//! never a panic, a hang or an allocation sized by a corrupt length. The last eight bytes of
//! the input are also used as a clean close's recorded length of the last segment (the
//! manifest's `WAL_CLOSED`), which replay must check against the segment rather than trust.
//!
//! Seeds: `fuzz/seeds/wal_replay/` (crafted by `tests/tests/crafted_files.rs`); run
//! `cargo fuzz run wal_replay fuzz/corpus/wal_replay fuzz/seeds/wal_replay`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_core::filenames;
use strata_core::wal::{RecoveryMode, replay, replay_bounded};
use strata_vfs::MemFs;

fuzz_target!(|data: &[u8]| {
    // Split the input into up to three segments so chain links are exercised too.
    let parts: Vec<&[u8]> = data.splitn(3, |&b| b == 0xfe).collect();
    let fs = MemFs::new();
    let mut segments = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let n = i as u64 + 1;
        fs.write_whole(&filenames::wal(n), part).expect("memfs write");
        segments.push(n);
    }
    for mode in [
        RecoveryMode::TolerateTornTail,
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::PointInTime,
    ] {
        let mut total = 0usize;
        let _ = replay(&fs, &segments, filenames::wal, mode, |payload, _| {
            total += payload.len();
            assert!(total <= data.len() * 2 + 64, "records cannot outgrow their segments");
            Ok(())
        });
        if let Some(tail) = data.len().checked_sub(8).and_then(|at| data.get(at..)) {
            let mut len = [0u8; 8];
            len.copy_from_slice(tail);
            let last = *segments.last().expect("at least one segment");
            let closed = Some((last, u64::from_le_bytes(len)));
            let mut total = 0usize;
            let _ = replay_bounded(&fs, &segments, filenames::wal, mode, closed, |payload, _| {
                total += payload.len();
                assert!(total <= data.len() * 2 + 64, "records cannot outgrow their segments");
                Ok(())
            });
        }
    }
});

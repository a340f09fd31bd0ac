//! WAL encoder round trip: arbitrary records (some made long by repetition, so they are cut
//! into first/middle/last fragments across 32 KiB blocks, and some empty) written by
//! `WalWriter` into a chain of segments (each segment's header naming its predecessor and that
//! one's exact length, as the engine rotates) must replay, in every recovery mode, to exactly
//! the same payloads in the same order, with the positions the records were written at.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata_core::filenames;
use strata_core::wal::{
    RecordPos, RecoveryMode, SegmentHeader, WalWriter, record_start, replay, replay_bounded,
};
use strata_vfs::{FileKind, MemFs, Vfs};

#[derive(Debug, Arbitrary)]
struct Record {
    payload: Vec<u8>,
    /// The payload is repeated this many times (at most 2,559), for records spanning blocks.
    repeat: u16,
    /// Start a new segment before this record.
    rotate: bool,
}

fuzz_target!(|records: Vec<Record>| {
    let fs = MemFs::new();
    let mut segments = vec![1u64];
    let name = filenames::wal(1);
    let file = fs.create(&name, FileKind::Wal).expect("create");
    let header = SegmentHeader { segment: 1, prev_segment: 0, prev_valid_len: 0 };
    let mut writer = WalWriter::new(file, name, header).expect("writer");
    let mut want: Vec<(Vec<u8>, RecordPos)> = Vec::new();
    for r in records.iter().take(64) {
        if r.rotate {
            writer.sync().expect("sync");
            let prev = writer.segment();
            let prev_len = writer.len();
            let n = prev + 1;
            let name = filenames::wal(n);
            let file = fs.create(&name, FileKind::Wal).expect("create");
            let header = SegmentHeader { segment: n, prev_segment: prev, prev_valid_len: prev_len };
            writer = WalWriter::new(file, name, header).expect("writer");
            segments.push(n);
        }
        let payload = r.payload.repeat(usize::from(r.repeat % 2560).max(1));
        // After block padding when the block has no room for a fragment header.
        let pos = RecordPos { segment: writer.segment(), offset: record_start(writer.len()) };
        writer.add_record(&payload).expect("add");
        want.push((payload, pos));
    }
    writer.sync().expect("sync");
    let closed = (writer.segment(), writer.len());
    drop(writer);

    for mode in [
        RecoveryMode::TolerateTornTail,
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::PointInTime,
    ] {
        for bounded in [false, true] {
            let mut got: Vec<(Vec<u8>, RecordPos)> = Vec::new();
            let collect = |payload: &[u8], pos: RecordPos| {
                got.push((payload.to_vec(), pos));
                Ok(())
            };
            let result = if bounded {
                replay_bounded(&fs, &segments, filenames::wal, mode, Some(closed), collect)
            } else {
                replay(&fs, &segments, filenames::wal, mode, collect)
            };
            let result = result.expect("a written log replays");
            assert_eq!(result.records as usize, want.len(), "{mode:?}");
            assert_eq!(got.len(), want.len(), "{mode:?}");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g == w,
                    "{mode:?}: record {i} differs ({} bytes at {:?}, want {} bytes at {:?})",
                    g.0.len(),
                    g.1,
                    w.0.len(),
                    w.1
                );
            }
            assert_eq!(result.last, Some(closed), "{mode:?}: the end of the last good record");
        }
    }
});

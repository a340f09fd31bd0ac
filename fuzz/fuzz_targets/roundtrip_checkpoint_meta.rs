//! Small fixed-layout encoders round trip: checkpoint metadata (`CHECKPOINT`), the `CURRENT`
//! pointer, and the WAL segment header, each from arbitrary field values. Each decoder also
//! rejects every single-byte change of the encoding (all three are checksummed or exact).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata_core::checkpoint::CheckpointMeta;
use strata_core::manifest::{decode_current, encode_current};
use strata_core::wal::SegmentHeader;

#[derive(Debug, Arbitrary)]
struct Input {
    timestamp: u64,
    sequence_number: u64,
    sstable_count: u64,
    total_size: u64,
    manifest_no: u64,
    segment: u64,
    prev_segment: u64,
    prev_valid_len: u64,
    flip_at: u16,
    flip_xor: u8,
}

fuzz_target!(|input: Input| {
    let meta = CheckpointMeta {
        timestamp: input.timestamp,
        sequence_number: input.sequence_number,
        sstable_count: input.sstable_count,
        total_size: input.total_size,
    };
    let bytes = meta.encode();
    assert_eq!(CheckpointMeta::decode(&bytes), Ok(meta));
    if let Some(flipped) = flip(&bytes, input.flip_at, input.flip_xor) {
        assert!(
            CheckpointMeta::decode(&flipped).is_err(),
            "a changed byte in CHECKPOINT is caught"
        );
    }

    let current = encode_current(input.manifest_no);
    assert_eq!(decode_current(&current), Ok(input.manifest_no));
    if let Some(flipped) = flip(&current, input.flip_at, input.flip_xor) {
        assert_ne!(
            decode_current(&flipped),
            Ok(input.manifest_no),
            "a changed byte in CURRENT is caught"
        );
    }

    let header = SegmentHeader {
        segment: input.segment,
        prev_segment: input.prev_segment,
        prev_valid_len: input.prev_valid_len,
    };
    let bytes = header.encode();
    assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
    if let Some(flipped) = flip(&bytes, input.flip_at, input.flip_xor) {
        assert!(
            SegmentHeader::decode(&flipped).is_err(),
            "a changed byte in a segment header is caught"
        );
    }
});

/// `bytes` with one byte changed, or `None` when `xor` is 0.
fn flip(bytes: &[u8], at: u16, xor: u8) -> Option<Vec<u8>> {
    if xor == 0 {
        return None;
    }
    let mut out = bytes.to_vec();
    let i = usize::from(at) % out.len();
    out[i] ^= xor;
    Some(out)
}

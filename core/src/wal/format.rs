//! The bytes of a log segment: constants, the segment header and the fragment types.
//!
//! `docs/format/wal.md` is the normative description; this file and that document change
//! together, and the worked example there is asserted by a test in `writer.rs`.

#![deny(clippy::indexing_slicing)]

use crate::checksum;
use crate::codec::Decoder;
use crate::error::CorruptionKind;

/// Size of a block. Blocks sit at absolute file offsets: block `k` is
/// `[k * BLOCK_SIZE, (k + 1) * BLOCK_SIZE)`, and block 0 starts with the segment header.
pub const BLOCK_SIZE: usize = 32 * 1024;

/// Size of the segment header at offset 0.
pub const SEGMENT_HEADER_LEN: usize = 40;

/// Size of a fragment header: masked CRC-32C (4), payload length (2), type (1).
pub const FRAGMENT_HEADER_LEN: usize = 7;

/// Where a record appended at file offset `end` begins: at `end`, or at the next block when
/// fewer than [`FRAGMENT_HEADER_LEN`] bytes are left in this one (the writer pads them with
/// zeros). The offset replay reports for that record ([`RecordPos`](super::RecordPos)).
pub fn record_start(end: u64) -> u64 {
    let block = BLOCK_SIZE as u64;
    let left = block - end % block;
    if left < FRAGMENT_HEADER_LEN as u64 { end + left } else { end }
}

/// The first eight bytes of every segment.
pub const MAGIC: [u8; 8] = *b"STRATWAL";

/// The segment format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Largest payload one fragment can carry (a whole block after the segment header is the
/// tightest case, but a fragment in any later block can use all of it but its header).
pub const MAX_FRAGMENT_PAYLOAD: usize = BLOCK_SIZE - FRAGMENT_HEADER_LEN;

/// Bytes covered by the header checksum: everything before it.
const HEADER_CRC_OFFSET: usize = SEGMENT_HEADER_LEN - 4;

/// What part of a record a fragment carries. Values are frozen; 0 is reserved because a zeroed
/// region (block padding, a preallocated or zero-filled tail) must never read as a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FragmentType {
    /// A whole record.
    Full = 1,
    /// The first piece of a record that continues in the next block.
    First = 2,
    /// An inner piece: the record began in an earlier block and continues in a later one.
    Middle = 3,
    /// The final piece of a record that began in an earlier block.
    Last = 4,
}

impl FragmentType {
    /// Decodes a stored type byte; `None` for 0 (reserved) and every unknown value.
    pub const fn from_u8(v: u8) -> Option<FragmentType> {
        match v {
            1 => Some(FragmentType::Full),
            2 => Some(FragmentType::First),
            3 => Some(FragmentType::Middle),
            4 => Some(FragmentType::Last),
            _ => None,
        }
    }
}

/// The masked CRC-32C stored in a fragment header: over the type byte, then the payload.
pub fn fragment_checksum(ty: u8, payload: &[u8]) -> u32 {
    checksum::mask(checksum::crc32c_parts(&[&[ty], payload]))
}

/// The 40-byte header at the start of every segment.
///
/// The chain fields let recovery bound every segment but the last: see `docs/format/wal.md`,
/// "Why segments are chained".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// This segment's number (the number in its file name).
    pub segment: u64,
    /// The segment written before this one, or 0 if there is none.
    pub prev_segment: u64,
    /// How many bytes of the previous segment are valid: its synced length at rotation, or the
    /// end of its last good record when it was recovered. Unused when `prev_segment` is 0.
    pub prev_valid_len: u64,
}

impl SegmentHeader {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut out = [0u8; SEGMENT_HEADER_LEN];
        let (body, crc) = out.split_at_mut(HEADER_CRC_OFFSET);
        let fields: [&[u8]; 5] = [
            &MAGIC,
            &FORMAT_VERSION.to_le_bytes(),
            &self.segment.to_le_bytes(),
            &self.prev_segment.to_le_bytes(),
            &self.prev_valid_len.to_le_bytes(),
        ];
        let mut pos = 0;
        for field in fields {
            if let Some(slot) = body.get_mut(pos..pos + field.len()) {
                slot.copy_from_slice(field);
            }
            pos += field.len();
        }
        crc.copy_from_slice(&checksum::mask(checksum::crc32c(body)).to_le_bytes());
        out
    }

    /// Decodes the header at the start of `b`, which must hold at least
    /// [`SEGMENT_HEADER_LEN`] bytes (extra bytes are ignored).
    ///
    /// Checks, in order: length (`Truncated`), magic (`BadMagic`), version
    /// (`UnsupportedVersion`), checksum (`Checksum`). The version is checked before the
    /// checksum because a future version may place its checksum elsewhere: a segment written by
    /// a newer build must be reported as such, never mistaken for a torn header.
    pub fn decode(b: &[u8]) -> Result<Self, CorruptionKind> {
        let body = b.get(..HEADER_CRC_OFFSET).ok_or(CorruptionKind::Truncated)?;
        let mut d = Decoder::new(b);
        d.magic_and_version(&MAGIC, FORMAT_VERSION)?;
        let fields = (d.u64(), d.u64(), d.u64(), d.u32());
        let (Ok(segment), Ok(prev_segment), Ok(prev_valid_len), Ok(stored)) = fields else {
            return Err(CorruptionKind::Truncated);
        };
        if stored != checksum::mask(checksum::crc32c(body)) {
            return Err(CorruptionKind::Checksum);
        }
        Ok(SegmentHeader { segment, prev_segment, prev_valid_len })
    }
}

#[cfg(test)]
#[expect(clippy::indexing_slicing, reason = "tests poke at fixed offsets")]
mod tests {
    use super::*;

    const H: SegmentHeader = SegmentHeader { segment: 7, prev_segment: 6, prev_valid_len: 4242 };

    /// A record appended fewer than 7 bytes before a block boundary starts at the boundary,
    /// after the padding, and replay reports it there. The `roundtrip_wal` fuzz target expected
    /// the writer's length before the append and failed on such a record in CI (its input is
    /// kept as `fuzz/seeds/roundtrip_wal/record-after-block-padding`, replayed by every CI
    /// run); the manifest's recovery made the same assumption (`manifest::tests::
    /// torn_record_after_block_padding_is_a_torn_tail`).
    #[test]
    fn record_start_skips_block_padding() {
        let b = BLOCK_SIZE as u64;
        assert_eq!(record_start(0), 0);
        assert_eq!(record_start(3 * b - 7), 3 * b - 7, "room for a header: no padding");
        for left in 1..FRAGMENT_HEADER_LEN as u64 {
            assert_eq!(record_start(3 * b - left), 3 * b, "{left} bytes left");
        }
        assert_eq!(record_start(3 * b), 3 * b);
    }

    #[test]
    fn header_round_trips_and_ignores_trailing_bytes() {
        let bytes = H.encode();
        assert_eq!(&bytes[..8], b"STRATWAL");
        assert_eq!(&bytes[8..12], &[1, 0, 0, 0]);
        assert_eq!(SegmentHeader::decode(&bytes), Ok(H));
        let mut longer = bytes.to_vec();
        longer.extend_from_slice(&[0xff; 9]);
        assert_eq!(SegmentHeader::decode(&longer), Ok(H));
    }

    #[test]
    fn header_rejects_short_magic_version_and_checksum() {
        let bytes = H.encode();
        for cut in 0..SEGMENT_HEADER_LEN {
            assert_eq!(SegmentHeader::decode(&bytes[..cut]), Err(CorruptionKind::Truncated));
        }
        let mut bad = bytes;
        bad[0] ^= 1;
        assert_eq!(SegmentHeader::decode(&bad), Err(CorruptionKind::BadMagic));
        let mut bad = bytes;
        bad[8] = 2;
        assert_eq!(SegmentHeader::decode(&bad), Err(CorruptionKind::UnsupportedVersion(2)));
        // Every single-bit flip after the version is caught by the checksum.
        for byte in 12..SEGMENT_HEADER_LEN {
            for bit in 0..8 {
                let mut bad = bytes;
                bad[byte] ^= 1 << bit;
                assert_eq!(SegmentHeader::decode(&bad), Err(CorruptionKind::Checksum), "{byte}");
            }
        }
        assert_eq!(SegmentHeader::decode(&[0u8; 40]), Err(CorruptionKind::BadMagic));
    }

    #[test]
    fn fragment_types_are_frozen() {
        assert_eq!(FragmentType::Full as u8, 1);
        assert_eq!(FragmentType::First as u8, 2);
        assert_eq!(FragmentType::Middle as u8, 3);
        assert_eq!(FragmentType::Last as u8, 4);
        for v in 0..=u8::MAX {
            let t = FragmentType::from_u8(v);
            assert_eq!(t.map(|t| t as u8), if (1..=4).contains(&v) { Some(v) } else { None });
        }
    }

    #[test]
    fn fragment_checksum_covers_type_and_payload() {
        let a = fragment_checksum(1, b"abc");
        assert_ne!(a, fragment_checksum(2, b"abc"));
        assert_ne!(a, fragment_checksum(1, b"abd"));
        assert_eq!(a, checksum::mask(checksum::crc32c(b"\x01abc")));
    }
}

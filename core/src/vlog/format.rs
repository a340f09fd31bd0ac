//! Value log bytes: the file header, records, and the pointer the LSM tree stores.
//!
//! `docs/format/vlog.md` is the normative description; its worked example is asserted below.
//!
//! ```text
//! file     header (16 bytes) | record | record | ...
//! header   magic "STRATVLG" (8) | format version u32 LE (1) | reserved u32 LE (0)
//! record   crc u32 LE | flags u8 | key_len varint | stored_len varint | key | stored value
//!          crc = masked CRC-32C of every byte after it (flags, lengths, key, value)
//!          flags 0: the stored value is the value; 1: it is `raw_len varint | lz4 block`
//! pointer  file id varint | record offset varint | record length varint
//! ```
//!
//! A record carries its key so that garbage collection, walking a file, can ask the LSM tree
//! whether the key's current version still points at it. Decoding never panics and never
//! allocates from a length it has not checked against the bytes it was given.

#![deny(clippy::indexing_slicing)]

use alloc::vec::Vec;

use crate::checksum;
use crate::codec::{self, Decoder};
use crate::error::CorruptionKind;
use crate::options::{MAX_KEY_SIZE, MAX_VALUE_SIZE};

/// Magic number at the start of every value log file.
pub const MAGIC: [u8; 8] = *b"STRATVLG";
/// Format version of value log files.
pub const FORMAT_VERSION: u32 = 1;
/// Length of the file header.
pub const FILE_HEADER_LEN: u64 = 16;
/// Longest possible record prefix: crc, flags and two 10-byte varints.
pub const MAX_PREFIX_LEN: usize = 4 + 1 + 10 + 10;

/// Longest possible record: the longest prefix, the largest key and the largest value (a
/// compressed value is never stored larger than the raw one). A pointer claiming more is
/// corruption, so no read ever allocates more than this for one value. Fits a `u32`.
pub const MAX_RECORD_LEN: u32 = (MAX_PREFIX_LEN + MAX_KEY_SIZE + MAX_VALUE_SIZE) as u32;

/// Record flags. Frozen; any other value is corruption.
pub mod flags {
    /// The stored value is the value.
    pub const RAW: u8 = 0;
    /// The stored value is the value's length (varint) followed by its lz4 block encoding.
    pub const LZ4: u8 = 1;
}

/// Values shorter than this are stored raw: lz4 saves nothing worth a decompression there.
const MIN_COMPRESS_LEN: usize = 64;

/// lz4 expands at most this much, so a declared length beyond `stored * LZ4_MAX_RATIO` is a lie.
const LZ4_MAX_RATIO: usize = 256;

/// Where one value lives: a record of a value log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValuePointer {
    /// The value log file's id (the manifest maps it to a file name).
    pub file: u64,
    /// Offset of the record's first byte.
    pub offset: u64,
    /// Length of the whole record.
    pub len: u32,
}

impl ValuePointer {
    /// The pointer's bytes, as stored in the LSM tree and the WAL.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        codec::put_varint(&mut out, self.file);
        codec::put_varint(&mut out, self.offset);
        codec::put_varint(&mut out, u64::from(self.len));
        out
    }

    /// Decodes a pointer; every byte must belong to it. A record length outside what a record
    /// can be (shorter than the smallest, longer than [`MAX_RECORD_LEN`]) is `BadPointer`.
    pub fn decode(b: &[u8]) -> Result<Self, CorruptionKind> {
        let mut d = Decoder::new(b);
        let bad = |_| CorruptionKind::BadPointer;
        let file = d.varint().map_err(bad)?;
        let offset = d.varint().map_err(bad)?;
        let len = d.varint_u32().map_err(bad)?;
        if !d.is_empty() || offset < FILE_HEADER_LEN || !(7..=MAX_RECORD_LEN).contains(&len) {
            return Err(CorruptionKind::BadPointer);
        }
        Ok(ValuePointer { file, offset, len })
    }

    /// Offset just past the record.
    pub fn end(&self) -> u64 {
        self.offset.saturating_add(u64::from(self.len))
    }
}

/// The file header's bytes.
pub fn file_header() -> [u8; FILE_HEADER_LEN as usize] {
    let mut h = [0u8; FILE_HEADER_LEN as usize];
    let mut v = Vec::with_capacity(FILE_HEADER_LEN as usize);
    v.extend_from_slice(&MAGIC);
    codec::put_u32(&mut v, FORMAT_VERSION);
    codec::put_u32(&mut v, 0);
    h.copy_from_slice(&v);
    h
}

/// Checks a file header.
pub fn check_file_header(b: &[u8]) -> Result<(), CorruptionKind> {
    let mut d = Decoder::new(b);
    d.magic_and_version(&MAGIC, FORMAT_VERSION)?;
    match d.u32() {
        Ok(0) => Ok(()),
        Ok(_) => Err(CorruptionKind::BadMagic),
        Err(_) => Err(CorruptionKind::Truncated),
    }
}

/// Appends the record of `(key, value)` to `out`; returns its length. With `compress`, the
/// value is stored lz4-compressed when that saves at least an eighth of it.
pub fn encode_record(out: &mut Vec<u8>, key: &[u8], value: &[u8], compress: bool) -> usize {
    let start = out.len();
    let packed = if compress && value.len() >= MIN_COMPRESS_LEN { lz4(value) } else { None };
    codec::put_u32(out, 0);
    out.push(if packed.is_some() { flags::LZ4 } else { flags::RAW });
    let stored = packed.as_deref().unwrap_or(value);
    codec::put_varint(out, key.len() as u64);
    codec::put_varint(out, stored.len() as u64);
    out.extend_from_slice(key);
    out.extend_from_slice(stored);
    let crc = checksum::mask(checksum::crc32c(out.get(start + 4..).unwrap_or_default()));
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&crc.to_le_bytes());
    }
    out.len() - start
}

/// `raw_len varint | lz4 block` of `value`, if that is at most seven eighths of it.
fn lz4(value: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    codec::put_varint(&mut out, value.len() as u64);
    let head = out.len();
    out.resize(head + lz4_flex::block::get_maximum_output_size(value.len()), 0);
    let n = lz4_flex::block::compress_into(value, out.get_mut(head..)?).ok()?;
    out.truncate(head + n);
    (out.len() <= value.len() - value.len() / 8).then_some(out)
}

/// The lengths a record prefix declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPrefix {
    /// Bytes of crc, flags and the two varints.
    pub header_len: usize,
    /// The record's flags.
    pub flags: u8,
    /// Key length.
    pub key_len: usize,
    /// Length of the stored value.
    pub value_len: usize,
}

impl RecordPrefix {
    /// Length of the whole record.
    pub fn record_len(&self) -> usize {
        self.header_len + self.key_len + self.value_len
    }
}

/// Parses the start of a record (at least its crc and varints; more bytes are ignored).
/// Lengths beyond the engine's key and value limits are corruption, so a caller may allocate
/// `record_len()` bytes once the file is known to hold them.
pub fn parse_prefix(b: &[u8]) -> Result<RecordPrefix, CorruptionKind> {
    let mut d = Decoder::new(b);
    let t = |_| CorruptionKind::Truncated;
    let _crc = d.u32().map_err(t)?;
    let flags = d.u8().map_err(t)?;
    if flags > flags::LZ4 {
        return Err(CorruptionKind::UnknownTag(flags));
    }
    let key_len = d.varint().map_err(t)?;
    let value_len = d.varint().map_err(t)?;
    if key_len > MAX_KEY_SIZE as u64 || value_len > MAX_VALUE_SIZE as u64 {
        return Err(CorruptionKind::Truncated);
    }
    // Both bounded above, so the casts are lossless.
    Ok(RecordPrefix {
        header_len: d.position(),
        flags,
        key_len: key_len as usize,
        value_len: value_len as usize,
    })
}

/// A decoded record: its key and stored value within the record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The key.
    pub key: &'a [u8],
    /// The value as stored (compressed when `compressed`).
    pub stored: &'a [u8],
    /// `true` if `stored` is lz4-compressed.
    pub compressed: bool,
}

impl RecordView<'_> {
    /// The value: the stored bytes, or their decompression (whose declared length is bounded
    /// before anything is allocated).
    pub fn value(&self) -> Result<alloc::borrow::Cow<'_, [u8]>, CorruptionKind> {
        if !self.compressed {
            return Ok(alloc::borrow::Cow::Borrowed(self.stored));
        }
        let mut d = Decoder::new(self.stored);
        let t = |_| CorruptionKind::Truncated;
        let declared = d.varint().map_err(t)?;
        let packed = d.bytes(d.remaining()).map_err(t)?;
        if declared > MAX_VALUE_SIZE as u64
            || declared > (packed.len() as u64).saturating_mul(LZ4_MAX_RATIO as u64)
        {
            return Err(CorruptionKind::Truncated);
        }
        // Bounded by MAX_VALUE_SIZE above; the decoder fails rather than grow past it.
        let declared = declared as usize;
        match lz4_flex::decompress(packed, declared) {
            Ok(out) if out.len() == declared => Ok(alloc::borrow::Cow::Owned(out)),
            _ => Err(CorruptionKind::Truncated),
        }
    }
}

/// Decodes a whole record (`b` must be exactly one record). With `verify`, the checksum is
/// checked; without, only the framing.
pub fn decode_record(b: &[u8], verify: bool) -> Result<RecordView<'_>, CorruptionKind> {
    let p = parse_prefix(b)?;
    if p.record_len() != b.len() {
        return Err(CorruptionKind::BadPointer);
    }
    if verify {
        let stored = codec::get_u32(b).ok_or(CorruptionKind::Truncated)?;
        let body = b.get(4..).ok_or(CorruptionKind::Truncated)?;
        if checksum::unmask(stored) != checksum::crc32c(body) {
            return Err(CorruptionKind::Checksum);
        }
    }
    let key_end = p.header_len + p.key_len;
    let key = b.get(p.header_len..key_end).ok_or(CorruptionKind::Truncated)?;
    let stored = b.get(key_end..).ok_or(CorruptionKind::Truncated)?;
    Ok(RecordView { key, stored, compressed: p.flags == flags::LZ4 })
}

#[cfg(test)]
#[expect(clippy::indexing_slicing, reason = "tests damage records at chosen offsets")]
mod tests {
    use super::*;

    /// The worked example of docs/format/vlog.md, byte for byte.
    #[test]
    fn worked_example_bytes() {
        #[rustfmt::skip]
        let header: &[u8] = &[
            b'S', b'T', b'R', b'A', b'T', b'V', b'L', b'G', // magic
            1, 0, 0, 0,                                     // format version 1
            0, 0, 0, 0,                                     // reserved
        ];
        assert_eq!(file_header(), header);
        assert_eq!(check_file_header(header), Ok(()));

        let mut rec = Vec::new();
        assert_eq!(encode_record(&mut rec, b"k1", b"hello", true), 14);
        let body = [0, 2, 5, b'k', b'1', b'h', b'e', b'l', b'l', b'o'];
        let crc = checksum::mask(checksum::crc32c(&body));
        let mut expected = crc.to_le_bytes().to_vec();
        #[rustfmt::skip]
        expected.extend_from_slice(&[
            0,                            // flags: raw (too short to compress)
            2,                            // key_len
            5,                            // stored_len
            b'k', b'1',                   // key
            b'h', b'e', b'l', b'l', b'o', // value
        ]);
        assert_eq!(rec, expected);
        assert_eq!(crc, CRC, "the doc's crc");
        let view = decode_record(&rec, true).expect("decodes");
        assert_eq!((view.key, &*view.value().expect("raw")), (&b"k1"[..], &b"hello"[..]));

        let ptr = ValuePointer { file: 7, offset: 16, len: 14 };
        assert_eq!(ptr.encode(), [7, 16, 14]);
        assert_eq!(ValuePointer::decode(&[7, 16, 14]), Ok(ptr));
    }

    /// The masked CRC-32C of the worked example's record.
    const CRC: u32 = 0x5542_2f9c;

    #[test]
    fn compressible_values_are_stored_compressed_and_read_back() {
        let value: Vec<u8> = (0..4000u32).map(|i| (i % 7) as u8).collect();
        let mut rec = Vec::new();
        let n = encode_record(&mut rec, b"key", &value, true);
        assert!(n < value.len() / 4, "compressed: {n} bytes");
        let view = decode_record(&rec, true).expect("decodes");
        assert!(view.compressed);
        assert_eq!(&*view.value().expect("decompresses"), &value[..]);
        // Without compression, or for incompressible bytes, the value is stored as it is.
        let mut raw = Vec::new();
        encode_record(&mut raw, b"key", &value, false);
        let view = decode_record(&raw, true).expect("decodes");
        assert!(!view.compressed);
        assert_eq!(view.stored, &value[..]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        let mut rec = Vec::new();
        encode_record(&mut rec, b"key", &noise, true);
        assert!(!decode_record(&rec, true).expect("decodes").compressed);
        // A lying declared length is an error, not an allocation.
        let mut lie = Vec::new();
        codec::put_varint(&mut lie, 200 * 1024 * 1024);
        lie.push(0);
        let view = RecordView { key: b"k", stored: &lie, compressed: true };
        assert!(view.value().is_err());
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let mut rec = Vec::new();
        encode_record(&mut rec, b"key", b"value value", false);
        for i in 0..rec.len() {
            let mut bad = rec.clone();
            bad[i] ^= 0x10;
            assert!(decode_record(&bad, true).is_err(), "flip at {i}");
        }
        for cut in 0..rec.len() {
            assert!(decode_record(&rec[..cut], true).is_err(), "cut at {cut}");
        }
        let mut bad_flags = rec.clone();
        bad_flags[4] = 2;
        assert_eq!(parse_prefix(&bad_flags), Err(CorruptionKind::UnknownTag(2)));
        assert!(ValuePointer::decode(&[7, 16]).is_err());
        assert!(ValuePointer::decode(&[7, 16, 13, 0]).is_err());
        assert!(ValuePointer::decode(&[7, 3, 13]).is_err(), "inside the header");
        // The length cap: the longest record there can be, and not one byte more.
        assert_eq!(MAX_RECORD_LEN as usize, 25 + 64 * 1024 + 256 * 1024 * 1024);
        let at_cap = ValuePointer { file: 7, offset: 16, len: MAX_RECORD_LEN };
        assert_eq!(ValuePointer::decode(&at_cap.encode()), Ok(at_cap));
        for len in [MAX_RECORD_LEN + 1, u32::MAX] {
            let over = ValuePointer { file: 7, offset: 16, len };
            assert_eq!(ValuePointer::decode(&over.encode()), Err(CorruptionKind::BadPointer));
        }
        assert!(check_file_header(b"STRATVLG").is_err());
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for len in 0..200 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = decode_record(&junk, true);
            if let Ok(v) = decode_record(&junk, false) {
                let _ = v.value();
            }
            let _ = ValuePointer::decode(&junk);
            let _ = parse_prefix(&junk);
        }
    }
}

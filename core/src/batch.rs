//! The write batch: the atomic unit of a commit, and the payload of one WAL record.
//!
//! Layout (`docs/format/batch.md`):
//!
//! ```text
//! header  seq u64 | commit_ts u64 | count u32 | flags u8          (21 bytes, little-endian)
//! op      tag u8 | key (varint len, bytes) | [value (varint len, bytes)] | [ts u64]
//! ```
//!
//! Every op of the batch carries the batch's sequence number. Ops without an explicit
//! timestamp take the batch's commit timestamp.

use alloc::vec::Vec;

use crate::codec::{self, DecodeError, Decoder};
use crate::key::{SeqNo, Timestamp};

/// Size of the fixed batch header.
pub const HEADER_LEN: usize = 21;

/// On-disk op tags. Frozen; unknown tags are corruption.
pub mod tag {
    /// Set, at the batch's commit timestamp.
    pub const SET: u8 = 1;
    /// Delete, at the batch's commit timestamp.
    pub const DELETE: u8 = 2;
    /// Set at an explicit timestamp (versioning).
    pub const SET_AT: u8 = 3;
    /// Delete at an explicit timestamp (versioning).
    pub const DELETE_AT: u8 = 4;
    /// Set whose value is in the value log: the op carries a value pointer.
    pub const SET_POINTER: u8 = 5;
    /// [`SET_POINTER`] at an explicit timestamp.
    pub const SET_POINTER_AT: u8 = 6;
}

/// Encoded size of one op: its tag, the length-prefixed key, the length-prefixed value (sets
/// only) and the explicit timestamp (versioned ops only). A batch's size is [`HEADER_LEN`]
/// plus this for each op; transactions use it to enforce their size limit before they build
/// the batch.
pub const fn op_encoded_len(key_len: usize, value_len: Option<usize>, explicit_ts: bool) -> usize {
    let key = codec::varint_len(key_len as u64) + key_len;
    let value = match value_len {
        Some(len) => codec::varint_len(len as u64) + len,
        None => 0,
    };
    let ts = if explicit_ts { 8 } else { 0 };
    1 + key + value + ts
}

/// Header flags. No flag is defined yet; a set bit is corruption for this build.
const KNOWN_FLAGS: u8 = 0;

/// One decoded operation, borrowing from the batch bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Write `value` under `key`.
    Set {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
        /// Explicit version timestamp, if any.
        ts: Option<Timestamp>,
    },
    /// Delete `key`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// Explicit version timestamp, if any.
        ts: Option<Timestamp>,
    },
    /// Write the value the encoded [`crate::vlog::ValuePointer`] names under `key`.
    SetPointer {
        /// The key.
        key: &'a [u8],
        /// The encoded pointer.
        pointer: &'a [u8],
        /// Explicit version timestamp, if any.
        ts: Option<Timestamp>,
    },
}

impl<'a> BatchOp<'a> {
    /// The op's key.
    pub fn key(&self) -> &'a [u8] {
        match *self {
            BatchOp::Set { key, .. }
            | BatchOp::Delete { key, .. }
            | BatchOp::SetPointer { key, .. } => key,
        }
    }
}

/// A batch being built. The header's sequence number and timestamp are filled in by the commit
/// path with [`WriteBatch::stamp`], once they are known.
#[derive(Debug, Clone)]
pub struct WriteBatch {
    buf: Vec<u8>,
    count: u32,
}

impl Default for WriteBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl WriteBatch {
    /// An empty batch, with room for a small transaction (a write or two of short values)
    /// before its buffer grows: one allocation for the common one-key commit.
    pub fn new() -> Self {
        Self::with_capacity(256)
    }

    /// An empty batch whose buffer holds `bytes` (header included) before it grows: a caller
    /// that knows the encoded size builds the batch without reallocating.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut buf = Vec::with_capacity(bytes.max(HEADER_LEN));
        buf.resize(HEADER_LEN, 0);
        WriteBatch { buf, count: 0 }
    }

    /// Grows the buffer, if needed, to hold `bytes` in all before it reallocates again.
    pub fn reserve_total(&mut self, bytes: usize) {
        self.buf.reserve(bytes.saturating_sub(self.buf.len()));
    }

    /// Adds a set at the commit timestamp.
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        self.push(tag::SET, key, Some(value), None);
    }

    /// Adds a delete at the commit timestamp.
    pub fn delete(&mut self, key: &[u8]) {
        self.push(tag::DELETE, key, None, None);
    }

    /// Adds a set at an explicit timestamp.
    pub fn set_at(&mut self, key: &[u8], value: &[u8], ts: Timestamp) {
        self.push(tag::SET_AT, key, Some(value), Some(ts));
    }

    /// Adds a delete at an explicit timestamp.
    pub fn delete_at(&mut self, key: &[u8], ts: Timestamp) {
        self.push(tag::DELETE_AT, key, None, Some(ts));
    }

    /// Adds a set whose value is in the value log (`pointer` is an encoded
    /// [`crate::vlog::ValuePointer`]), at the commit timestamp or at `ts`.
    pub fn set_pointer(&mut self, key: &[u8], pointer: &[u8], ts: Option<Timestamp>) {
        let tag = if ts.is_some() { tag::SET_POINTER_AT } else { tag::SET_POINTER };
        self.push(tag, key, Some(pointer), ts);
    }

    /// Adds `op` unchanged.
    pub fn push_op(&mut self, op: &BatchOp<'_>) {
        match *op {
            BatchOp::Set { key, value, ts: None } => self.set(key, value),
            BatchOp::Set { key, value, ts: Some(ts) } => self.set_at(key, value, ts),
            BatchOp::Delete { key, ts: None } => self.delete(key),
            BatchOp::Delete { key, ts: Some(ts) } => self.delete_at(key, ts),
            BatchOp::SetPointer { key, pointer, ts } => self.set_pointer(key, pointer, ts),
        }
    }

    /// The header's sequence number and commit timestamp.
    pub fn stamped(&self) -> (SeqNo, Timestamp) {
        let seq = codec::get_u64(self.buf.get(0..8).unwrap_or_default()).unwrap_or(0);
        let ts = codec::get_u64(self.buf.get(8..16).unwrap_or_default()).unwrap_or(0);
        (seq, ts)
    }

    fn push(&mut self, tag: u8, key: &[u8], value: Option<&[u8]>, ts: Option<Timestamp>) {
        let before = self.buf.len();
        // One growth for the whole op (pushing its parts one by one grew a fresh buffer two or
        // three times for a single 100-byte write).
        self.buf.reserve(op_encoded_len(key.len(), value.map(<[u8]>::len), ts.is_some()));
        self.buf.push(tag);
        codec::put_bytes(&mut self.buf, key);
        if let Some(value) = value {
            codec::put_bytes(&mut self.buf, value);
        }
        if let Some(ts) = ts {
            codec::put_u64(&mut self.buf, ts);
        }
        debug_assert_eq!(
            self.buf.len() - before,
            op_encoded_len(key.len(), value.map(<[u8]>::len), ts.is_some()),
            "the reservation above is the op's exact size"
        );
        self.count += 1;
        self.write_count();
    }

    fn write_count(&mut self) {
        if let Some(slot) = self.buf.get_mut(16..20) {
            slot.copy_from_slice(&self.count.to_le_bytes());
        }
    }

    /// Number of ops.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// `true` if no op was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded size in bytes, header included.
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// Writes the sequence number and commit timestamp into the header.
    pub fn stamp(&mut self, seq: SeqNo, commit_ts: Timestamp) {
        if let Some(slot) = self.buf.get_mut(0..8) {
            slot.copy_from_slice(&seq.to_le_bytes());
        }
        if let Some(slot) = self.buf.get_mut(8..16) {
            slot.copy_from_slice(&commit_ts.to_le_bytes());
        }
    }

    /// The encoded batch (the WAL record payload).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The op that starts at byte `at` of the encoded batch and the offset just past it;
    /// `None` if no whole op starts there. For callers that remember where they pushed an op
    /// (a transaction's write set indexes its ops this way).
    pub fn op_at(&self, at: usize) -> Option<(BatchOp<'_>, usize)> {
        let body = self.buf.get(at..).filter(|_| at >= HEADER_LEN)?;
        let mut dec = Decoder::new(body);
        let op = decode_op(&mut dec).ok()?;
        Some((op, at + dec.position()))
    }

    /// Iterates over the ops of this batch.
    pub fn ops(&self) -> BatchIter<'_> {
        BatchIter { dec: Decoder::new(self.buf.get(HEADER_LEN..).unwrap_or(&[])), left: self.count }
    }
}

/// A decoded batch header plus an iterator over its ops.
#[derive(Debug, Clone)]
pub struct BatchView<'a> {
    /// The batch's sequence number.
    pub seq: SeqNo,
    /// The batch's commit timestamp.
    pub commit_ts: Timestamp,
    /// Number of ops.
    pub count: u32,
    body: &'a [u8],
}

impl<'a> BatchView<'a> {
    /// Decodes and fully validates `payload`: every op must decode, the count must match, and
    /// nothing may trail. Never panics, never allocates from an untrusted length.
    pub fn parse(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut dec = Decoder::new(payload);
        let seq = dec.u64()?;
        let commit_ts = dec.u64()?;
        let count = dec.u32()?;
        let flags = dec.u8()?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::Truncated);
        }
        let body = dec.bytes(dec.remaining())?;
        let view = BatchView { seq, commit_ts, count, body };
        let mut iter = view.ops();
        for _ in 0..count {
            iter.next().ok_or(DecodeError::Truncated)??;
        }
        if !iter.dec.is_empty() {
            return Err(DecodeError::Truncated);
        }
        Ok(view)
    }

    /// The ops, in the order they were added.
    pub fn ops(&self) -> BatchIter<'a> {
        BatchIter { dec: Decoder::new(self.body), left: self.count }
    }
}

/// Iterator over the ops of a batch.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    dec: Decoder<'a>,
    left: u32,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<BatchOp<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(decode_op(&mut self.dec))
    }
}

fn decode_op<'a>(dec: &mut Decoder<'a>) -> Result<BatchOp<'a>, DecodeError> {
    let tag = dec.u8()?;
    let key = dec.length_prefixed()?;
    Ok(match tag {
        tag::SET => BatchOp::Set { key, value: dec.length_prefixed()?, ts: None },
        tag::DELETE => BatchOp::Delete { key, ts: None },
        tag::SET_AT => {
            let value = dec.length_prefixed()?;
            BatchOp::Set { key, value, ts: Some(dec.u64()?) }
        }
        tag::DELETE_AT => BatchOp::Delete { key, ts: Some(dec.u64()?) },
        tag::SET_POINTER => BatchOp::SetPointer { key, pointer: dec.length_prefixed()?, ts: None },
        tag::SET_POINTER_AT => {
            let pointer = dec.length_prefixed()?;
            BatchOp::SetPointer { key, pointer, ts: Some(dec.u64()?) }
        }
        _ => return Err(DecodeError::Truncated),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of docs/format/batch.md, byte for byte.
    #[test]
    fn worked_example_bytes() {
        let mut b = WriteBatch::new();
        b.set(b"k", b"v1");
        b.delete(b"old");
        b.set_at(b"k", b"v0", 7);
        b.stamp(5, 0x0100);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            5, 0, 0, 0, 0, 0, 0, 0,          // seq 5
            0, 1, 0, 0, 0, 0, 0, 0,          // commit_ts 256
            3, 0, 0, 0,                      // count 3
            0,                               // flags
            1, 1, b'k', 2, b'v', b'1',       // SET "k" = "v1"
            2, 3, b'o', b'l', b'd',          // DELETE "old"
            3, 1, b'k', 2, b'v', b'0',       // SET_AT "k" = "v0"
            7, 0, 0, 0, 0, 0, 0, 0,          //   at ts 7
        ];
        assert_eq!(b.as_bytes(), expected);
        let view = BatchView::parse(expected).expect("decodes");
        assert_eq!((view.seq, view.commit_ts, view.count), (5, 256, 3));
        let ops: Vec<_> = view.ops().map(|o| o.expect("op")).collect();
        assert_eq!(
            ops,
            [
                BatchOp::Set { key: b"k", value: b"v1", ts: None },
                BatchOp::Delete { key: b"old", ts: None },
                BatchOp::Set { key: b"k", value: b"v0", ts: Some(7) },
            ]
        );
    }

    #[test]
    fn every_truncation_and_garbage_is_an_error_not_a_panic() {
        let mut b = WriteBatch::new();
        b.set(b"key", b"value");
        b.delete_at(b"gone", 9);
        b.stamp(1, 2);
        let bytes = b.as_bytes();
        for cut in 0..bytes.len() {
            assert!(BatchView::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(BatchView::parse(&trailing).is_err());
        let mut p = WriteBatch::new();
        p.set_pointer(b"big", &[7, 16, 13], None);
        p.set_pointer(b"old", &[7, 29, 13], Some(3));
        p.stamp(4, 5);
        let view = BatchView::parse(p.as_bytes()).expect("pointer ops decode");
        let ops: Vec<_> = view.ops().map(|o| o.expect("op")).collect();
        assert_eq!(
            ops,
            [
                BatchOp::SetPointer { key: b"big", pointer: &[7, 16, 13], ts: None },
                BatchOp::SetPointer { key: b"old", pointer: &[7, 29, 13], ts: Some(3) },
            ]
        );
        assert_eq!(p.stamped(), (4, 5));
        let mut bad_tag = bytes.to_vec();
        bad_tag[HEADER_LEN] = 99;
        assert!(BatchView::parse(&bad_tag).is_err());
        let mut bad_flags = bytes.to_vec();
        bad_flags[20] = 1;
        assert!(BatchView::parse(&bad_flags).is_err());
        // Arbitrary bytes never panic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..300 {
            let mut junk = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                junk.push(x as u8);
            }
            let _ = BatchView::parse(&junk);
        }
    }
}

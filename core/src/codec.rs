//! The one little-endian codec every Strata format goes through: fixed-width integers,
//! LEB128 varints, and length-prefixed byte strings.
//!
//! Decoding is done by [`Decoder`], a cursor over a borrowed slice that never panics and never
//! reads past its end: every short or malformed input is a [`DecodeError`], which the caller
//! turns into a `Corruption` error naming the file and offset.

use alloc::vec::Vec;

/// Why a decode failed. Callers add the file and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended before the value did.
    Truncated,
    /// A varint ran longer than its type allows.
    VarintOverflow,
}

/// Maximum encoded length of a `u64` varint.
pub const MAX_VARINT64_LEN: usize = 10;

/// Appends `v` as 2 little-endian bytes.
pub fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as 4 little-endian bytes.
pub fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as 8 little-endian bytes.
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` as an unsigned LEB128 varint (7 bits per byte, low bits first, high bit set on
/// every byte but the last).
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        // Truncation is the point: keep the low 7 bits and set the continuation bit.
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encoded length of `v` as a varint.
pub const fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends a varint length followed by the bytes.
pub fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads a fixed little-endian `u32` at the start of `b`, if long enough.
pub fn get_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(..4)?.try_into().ok()?))
}

/// Reads a fixed little-endian `u64` at the start of `b`, if long enough.
pub fn get_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?))
}

/// A cursor over encoded bytes. Every getter checks bounds first.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Reads an 8-byte magic number and a u32 format version and checks both, in that order:
    /// `Truncated` if the bytes end first, then `BadMagic`, then `UnsupportedVersion(v)`. Every
    /// Strata file header starts this way.
    pub fn magic_and_version(
        &mut self,
        magic: &[u8; 8],
        version: u32,
    ) -> Result<(), crate::error::CorruptionKind> {
        use crate::error::CorruptionKind;
        let found: [u8; 8] = self.array().map_err(|_| CorruptionKind::Truncated)?;
        if &found != magic {
            return Err(CorruptionKind::BadMagic);
        }
        let v = self.u32().map_err(|_| CorruptionKind::Truncated)?;
        if v != version {
            return Err(CorruptionKind::UnsupportedVersion(v));
        }
        Ok(())
    }

    /// A decoder at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// `true` when everything was consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    /// The next fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// An unsigned LEB128 varint of at most 64 bits.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..MAX_VARINT64_LEN {
            let byte = self.u8()?;
            let low = u64::from(byte & 0x7f);
            // The tenth byte may carry only the top bit of a u64.
            if i == MAX_VARINT64_LEN - 1 && low > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// A varint that must fit in `u32`.
    pub fn varint_u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError::VarintOverflow)
    }

    /// A varint length followed by that many bytes. The length is checked against what is left
    /// before anything is sliced, so a corrupt length cannot cause a large allocation.
    pub fn length_prefixed(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
        self.bytes(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trips_at_every_width() {
        let mut values = alloc::vec![0u64, 1, 127, 128, 255, 300, 16_383, 16_384, u64::MAX];
        for shift in 0..64 {
            values.push(1u64 << shift);
            values.push((1u64 << shift) - 1);
        }
        for v in values {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!(buf.len(), varint_len(v), "length of {v}");
            let mut d = Decoder::new(&buf);
            assert_eq!(d.varint(), Ok(v));
            assert!(d.is_empty());
        }
    }

    #[test]
    fn varint_known_bytes() {
        let mut buf = Vec::new();
        put_varint(&mut buf, 300);
        assert_eq!(buf, [0xac, 0x02]);
    }

    #[test]
    fn varint_rejects_overflow_and_truncation() {
        let eleven = [0xffu8; 11];
        assert_eq!(Decoder::new(&eleven).varint(), Err(DecodeError::VarintOverflow));
        let tenth_too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Decoder::new(&tenth_too_big).varint(), Err(DecodeError::VarintOverflow));
        assert_eq!(Decoder::new(&[0x80, 0x80]).varint(), Err(DecodeError::Truncated));
        assert_eq!(Decoder::new(&[]).varint(), Err(DecodeError::Truncated));
    }

    #[test]
    fn length_prefixed_checks_length_before_slicing() {
        let mut buf = Vec::new();
        put_varint(&mut buf, u64::MAX);
        assert!(Decoder::new(&buf).length_prefixed().is_err());
        let mut buf = Vec::new();
        put_bytes(&mut buf, b"abc");
        let mut d = Decoder::new(&buf);
        assert_eq!(d.length_prefixed(), Ok(&b"abc"[..]));
        assert!(d.is_empty());
    }

    #[test]
    fn fixed_width_little_endian() {
        let mut buf = Vec::new();
        put_u16(&mut buf, 0x0102);
        put_u32(&mut buf, 0x0304_0506);
        put_u64(&mut buf, 0x0708_090a_0b0c_0d0e);
        assert_eq!(buf, [2, 1, 6, 5, 4, 3, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 9, 8, 7]);
        let mut d = Decoder::new(&buf);
        assert_eq!(d.u16(), Ok(0x0102));
        assert_eq!(d.u32(), Ok(0x0304_0506));
        assert_eq!(d.u64(), Ok(0x0708_090a_0b0c_0d0e));
        assert_eq!(d.u8(), Err(DecodeError::Truncated));
    }
}

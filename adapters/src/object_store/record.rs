//! The records stored under object and upload keys (docs/format/object_store.md).
//!
//! Object record, all integers little-endian:
//!
//! ```text
//! u8   format version (1)
//! u64  e-tag: the snapshot sequence number of the transaction that wrote the record
//! i64  last modified, nanoseconds since the Unix epoch (UTC)
//! u64  size in bytes
//! u32  attribute count, then per attribute:
//!        u8 kind (0 ContentDisposition, 1 ContentEncoding, 2 ContentLanguage, 3 ContentType,
//!                 4 CacheControl, 5 StorageClass, 6 Metadata)
//!        [kind 6 only: u32 name length, name bytes (UTF-8)]
//!        u32 value length, value bytes (UTF-8)
//! u8   body kind: 0 inline, 1 chunked
//!        inline:  `size` bytes, the object itself
//!        chunked: data id (16 bytes), u32 part count, per part: u32 part number, u64 length
//! ```
//!
//! An upload record is the version byte, `u32` path length and path bytes, then the
//! attributes as above. A part record is the version byte and the part's `u64` length.
//!
//! Decoding is total: every length is checked against the bytes that remain before anything
//! is sliced or allocated, unknown kinds and trailing bytes are errors, and the parts of a
//! chunked body must add up to the size.

use std::borrow::Cow;

use ::object_store::{Attribute, AttributeValue, Attributes};
use bytes::Bytes;

use super::error::StoreError;
use super::keys::DataId;

const FORMAT_VERSION: u8 = 1;

/// Where an object's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Body {
    /// In the record itself (small objects).
    Inline(Bytes),
    /// In chunks under `id`, part after part in the listed order.
    Chunked { id: DataId, parts: Vec<(u32, u64)> },
}

/// What the object key of a stored object holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ObjectRecord {
    pub(super) e_tag: u64,
    pub(super) last_modified_ns: i64,
    pub(super) size: u64,
    pub(super) attributes: Attributes,
    pub(super) body: Body,
}

/// What the upload key of a multipart upload in progress holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct UploadRecord {
    pub(super) path: String,
    pub(super) attributes: Attributes,
}

// ---- encoding ----

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// `s` with a `u32` length in front; fails past 4 GiB.
fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), StoreError> {
    let len =
        u32::try_from(s.len()).map_err(|_| StoreError::TooLarge { what: "attribute or path" })?;
    put_u32(out, len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn put_attributes(out: &mut Vec<u8>, attributes: &Attributes) -> Result<(), StoreError> {
    let count = u32::try_from(attributes.len())
        .map_err(|_| StoreError::TooLarge { what: "attribute set" })?;
    put_u32(out, count);
    for (attribute, value) in attributes {
        let kind = match attribute {
            Attribute::ContentDisposition => 0,
            Attribute::ContentEncoding => 1,
            Attribute::ContentLanguage => 2,
            Attribute::ContentType => 3,
            Attribute::CacheControl => 4,
            Attribute::StorageClass => 5,
            Attribute::Metadata(_) => 6,
            other => return Err(StoreError::UnsupportedAttribute(format!("{other:?}"))),
        };
        out.push(kind);
        if let Attribute::Metadata(name) = attribute {
            put_str(out, name)?;
        }
        put_str(out, value.as_ref())?;
    }
    Ok(())
}

impl ObjectRecord {
    pub(super) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let inline_len = match &self.body {
            Body::Inline(data) => data.len(),
            Body::Chunked { .. } => 0,
        };
        let mut out = Vec::with_capacity(64 + inline_len);
        out.push(FORMAT_VERSION);
        put_u64(&mut out, self.e_tag);
        out.extend_from_slice(&self.last_modified_ns.to_le_bytes());
        put_u64(&mut out, self.size);
        put_attributes(&mut out, &self.attributes)?;
        match &self.body {
            Body::Inline(data) => {
                out.push(0);
                out.extend_from_slice(data);
            }
            Body::Chunked { id, parts } => {
                out.push(1);
                out.extend_from_slice(id);
                let count = u32::try_from(parts.len())
                    .map_err(|_| StoreError::TooLarge { what: "part list" })?;
                put_u32(&mut out, count);
                for (number, len) in parts {
                    put_u32(&mut out, *number);
                    put_u64(&mut out, *len);
                }
            }
        }
        Ok(out)
    }

    /// Decodes a record; `Inline` bodies share `bytes` without copying.
    pub(super) fn decode(bytes: &Bytes) -> Result<ObjectRecord, StoreError> {
        let mut r = Reader { bytes, at: 0, what: "object record" };
        r.version()?;
        let e_tag = r.u64()?;
        let last_modified_ns = i64::from_le_bytes(r.array()?);
        let size = r.u64()?;
        let attributes = r.attributes()?;
        let body = match r.u8()? {
            0 => {
                let len = usize::try_from(size).map_err(|_| r.corrupt("inline size"))?;
                Body::Inline(r.bytes(len)?)
            }
            1 => {
                let id: DataId = r.array()?;
                let count = r.u32()?;
                // 12 bytes per part must remain before the list is allocated.
                let remaining = bytes.len().saturating_sub(r.at);
                if u64::from(count).saturating_mul(12) > remaining as u64 {
                    return Err(r.corrupt("part count"));
                }
                let mut parts = Vec::with_capacity(count as usize);
                let mut total: u64 = 0;
                for _ in 0..count {
                    let number = r.u32()?;
                    let len = r.u64()?;
                    total = total.checked_add(len).ok_or_else(|| r.corrupt("part lengths"))?;
                    parts.push((number, len));
                }
                if total != size {
                    return Err(r.corrupt("parts do not add up to the size"));
                }
                Body::Chunked { id, parts }
            }
            _ => return Err(r.corrupt("body kind")),
        };
        r.finish()?;
        Ok(ObjectRecord { e_tag, last_modified_ns, size, attributes, body })
    }
}

impl UploadRecord {
    pub(super) fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = vec![FORMAT_VERSION];
        put_str(&mut out, &self.path)?;
        put_attributes(&mut out, &self.attributes)?;
        Ok(out)
    }

    pub(super) fn decode(bytes: &Bytes) -> Result<UploadRecord, StoreError> {
        let mut r = Reader { bytes, at: 0, what: "upload record" };
        r.version()?;
        let path = r.string()?;
        let attributes = r.attributes()?;
        r.finish()?;
        Ok(UploadRecord { path, attributes })
    }
}

/// A part record: the staged part's length.
pub(super) fn encode_part(len: u64) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    put_u64(&mut out, len);
    out
}

pub(super) fn decode_part(bytes: &Bytes) -> Result<u64, StoreError> {
    let mut r = Reader { bytes, at: 0, what: "part record" };
    r.version()?;
    let len = r.u64()?;
    r.finish()?;
    Ok(len)
}

// ---- decoding ----

/// A cursor over a record that never reads past its end.
struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
    what: &'static str,
}

impl Reader<'_> {
    fn corrupt(&self, field: &'static str) -> StoreError {
        StoreError::CorruptRecord { record: self.what, field, offset: self.at }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| self.corrupt("length past the end"))?;
        let slice =
            self.bytes.get(self.at..end).ok_or_else(|| self.corrupt("length past the end"))?;
        self.at = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn bytes(&mut self, n: usize) -> Result<Bytes, StoreError> {
        let start = self.at;
        self.take(n)?;
        Ok(self.bytes.slice(start..self.at))
    }

    fn string(&mut self) -> Result<String, StoreError> {
        let len = self.u32()? as usize;
        let raw = self.take(len)?.to_vec();
        String::from_utf8(raw).map_err(|_| self.corrupt("UTF-8 text"))
    }

    fn version(&mut self) -> Result<(), StoreError> {
        match self.u8()? {
            FORMAT_VERSION => Ok(()),
            _ => Err(self.corrupt("format version")),
        }
    }

    fn attributes(&mut self) -> Result<Attributes, StoreError> {
        let count = self.u32()?;
        // Each attribute takes at least 5 bytes; refuse a count the record cannot hold.
        if u64::from(count).saturating_mul(5) > self.bytes.len().saturating_sub(self.at) as u64 {
            return Err(self.corrupt("attribute count"));
        }
        let mut attributes = Attributes::with_capacity(count as usize);
        for _ in 0..count {
            let attribute = match self.u8()? {
                0 => Attribute::ContentDisposition,
                1 => Attribute::ContentEncoding,
                2 => Attribute::ContentLanguage,
                3 => Attribute::ContentType,
                4 => Attribute::CacheControl,
                5 => Attribute::StorageClass,
                6 => Attribute::Metadata(Cow::Owned(self.string()?)),
                _ => return Err(self.corrupt("attribute kind")),
            };
            let value = AttributeValue::from(self.string()?);
            attributes.insert(attribute, value);
        }
        Ok(attributes)
    }

    fn finish(&self) -> Result<(), StoreError> {
        if self.at == self.bytes.len() { Ok(()) } else { Err(self.corrupt("trailing bytes")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ObjectRecord {
        ObjectRecord {
            e_tag: 0x2a,
            last_modified_ns: 1_700_000_000_000_000_000,
            size: 5,
            attributes: Attributes::from_iter([(Attribute::ContentType, "text/plain")]),
            body: Body::Inline(Bytes::from_static(b"hello")),
        }
    }

    #[test]
    fn records_round_trip() {
        let record = sample();
        let bytes = Bytes::from(record.encode().expect("valid in this test"));
        assert_eq!(ObjectRecord::decode(&bytes).expect("valid in this test"), record);

        let chunked = ObjectRecord {
            size: 3 << 20,
            body: Body::Chunked { id: [7; 16], parts: vec![(2, 1 << 20), (0, 2 << 20)] },
            attributes: Attributes::from_iter([(Attribute::Metadata("k".into()), "v")]),
            ..sample()
        };
        let bytes = Bytes::from(chunked.encode().expect("valid in this test"));
        assert_eq!(ObjectRecord::decode(&bytes).expect("valid in this test"), chunked);

        let upload = UploadRecord { path: "a/b".into(), attributes: Attributes::new() };
        let bytes = Bytes::from(upload.encode().expect("valid in this test"));
        assert_eq!(UploadRecord::decode(&bytes).expect("valid in this test"), upload);
        assert_eq!(decode_part(&Bytes::from(encode_part(99))).expect("valid in this test"), 99);
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_an_error_or_a_valid_record() {
        let bytes = sample().encode().expect("valid in this test");
        for len in 0..bytes.len() {
            assert!(ObjectRecord::decode(&Bytes::copy_from_slice(&bytes[..len])).is_err(), "{len}");
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                // Must not panic; a flip in the e-tag or the text may still decode.
                let _ = ObjectRecord::decode(&Bytes::from(bad));
            }
        }
        let mut huge_count = bytes.clone();
        // The attribute count sits after version, e-tag, time and size (25 bytes).
        huge_count[25..29].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(ObjectRecord::decode(&Bytes::from(huge_count)).is_err());
    }

    fn hex(text: &str) -> Vec<u8> {
        text.split_whitespace().map(|b| u8::from_str_radix(b, 16).expect("hex")).collect()
    }

    #[test]
    fn worked_example_of_the_format_page() {
        // docs/format/object_store.md, "Worked example".
        let inline = sample();
        assert_eq!(
            inline.encode().expect("encodes"),
            hex("01 2a 00 00 00 00 00 00 00 00 00 2a 36 fe 9c 97 17 05 00 00 00 00 00 00 00 \
                 01 00 00 00 03 0a 00 00 00 74 65 78 74 2f 70 6c 61 69 6e 00 68 65 6c 6c 6f")
        );
        assert_eq!(
            super::super::keys::object("data/a.txt"),
            hex("6f 62 6a 73 74 6f 72 65 00 6d 64 61 74 61 2f 61 2e 74 78 74")
        );
        let id: DataId = core::array::from_fn(|i| i as u8);
        let chunked = ObjectRecord {
            e_tag: 43,
            size: 1_572_864,
            attributes: Attributes::new(),
            body: Body::Chunked { id, parts: vec![(0, 1_572_864)] },
            ..sample()
        };
        assert_eq!(
            chunked.encode().expect("encodes"),
            hex("01 2b 00 00 00 00 00 00 00 00 00 2a 36 fe 9c 97 17 00 00 18 00 00 00 00 00 \
                 00 00 00 00 01 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 01 00 00 00 \
                 00 00 00 00 00 00 18 00 00 00 00 00")
        );
        let mut chunk_key = b"objstore\0c".to_vec();
        chunk_key.extend_from_slice(&id);
        chunk_key.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(super::super::keys::chunk(&id, 0, 1), chunk_key);
    }
}

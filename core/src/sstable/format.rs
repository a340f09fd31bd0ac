//! The bytes of a table: constants, block handles, the block trailer, encoded internal keys,
//! the footer and the properties block.
//!
//! `docs/format/sstable.md` and `docs/format/block.md` are the normative descriptions; this file
//! and those documents change together, and their worked examples are asserted by tests in
//! `tests.rs`.

#![deny(clippy::indexing_slicing)]

use alloc::vec::Vec;
use core::cmp::Ordering;

use bytes::Bytes;

use super::TableProps;
use crate::checksum;
use crate::codec::{self, DecodeError, Decoder};
use crate::error::CorruptionKind;
use crate::key::{InternalKey, MAX_SEQ, ValueKind};

/// The last eight bytes of every table.
pub const MAGIC: [u8; 8] = *b"STRATSST";

/// The table format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Size of the footer at the end of the file.
pub const FOOTER_LEN: usize = 68;

/// Size of the trailer after every block's stored payload: compression type (1) and masked
/// CRC-32C (4).
pub const BLOCK_TRAILER_LEN: usize = 5;

/// Length of the trailer of an encoded internal key: timestamp (8) and packed sequence/kind (8).
pub const KEY_TRAILER_LEN: usize = 16;
// `KeyRef::parse` splits the trailer as two `u64` chunks.
const _: () = assert!(KEY_TRAILER_LEN == 2 * size_of::<u64>());

/// Largest uncompressed length a compressed block may declare. Writers never compress a block
/// larger than this; readers refuse to allocate more for one.
pub const MAX_COMPRESSED_BLOCK_LEN: usize = 64 * 1024 * 1024;

/// lz4 cannot expand its input by more than this factor (a match length byte of 255 is the
/// densest encoding), so a declared length above `stored * LZ4_MAX_RATIO` is a lie.
const LZ4_MAX_RATIO: usize = 256;

/// Bytes of the footer covered by its checksum.
const FOOTER_CRC_OFFSET: usize = 56;

/// How a block's payload is stored. Values are frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Compression {
    /// The payload is the block itself.
    None = 0,
    /// The payload is a varint uncompressed length followed by the lz4 block-format encoding.
    Lz4 = 1,
}

impl Compression {
    /// Decodes a stored type; `None` for unknown values.
    pub const fn from_u8(v: u8) -> Option<Compression> {
        match v {
            0 => Some(Compression::None),
            1 => Some(Compression::Lz4),
            _ => None,
        }
    }
}

/// What the footer's index handle points at. Values are frozen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum IndexKind {
    /// One index block whose entries point at data blocks.
    Single = 1,
    /// A top-level index whose entries point at index partitions, whose entries point at data
    /// blocks.
    Partitioned = 2,
}

impl IndexKind {
    /// Decodes a stored kind; `None` for unknown values.
    pub const fn from_u8(v: u8) -> Option<IndexKind> {
        match v {
            1 => Some(IndexKind::Single),
            2 => Some(IndexKind::Partitioned),
            _ => None,
        }
    }
}

/// Where a block lives: the offset of its stored payload and the payload's length (the 5-byte
/// trailer follows and is not counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BlockHandle {
    /// Absolute file offset of the payload.
    pub offset: u64,
    /// Length of the stored payload, without the trailer.
    pub size: u64,
}

impl BlockHandle {
    /// Appends the handle as two varints (offset, size), the form used in index entries.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        codec::put_varint(out, self.offset);
        codec::put_varint(out, self.size);
    }

    /// Decodes an index entry's value, which must be exactly one handle.
    pub fn decode_exact(b: &[u8]) -> Result<BlockHandle, CorruptionKind> {
        let mut d = Decoder::new(b);
        let offset = d.varint().map_err(decode_err)?;
        let size = d.varint().map_err(decode_err)?;
        if !d.is_empty() {
            return Err(CorruptionKind::Truncated);
        }
        Ok(BlockHandle { offset, size })
    }

    /// End of the block including its trailer, or `None` on overflow.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.size)?.checked_add(BLOCK_TRAILER_LEN as u64)
    }
}

/// Maps a codec error to the corruption it means in a table.
pub fn decode_err(_: DecodeError) -> CorruptionKind {
    CorruptionKind::Truncated
}

/// The masked CRC-32C stored in a block trailer: over the stored payload, then the type byte.
pub fn block_checksum(payload: &[u8], ty: u8) -> u32 {
    checksum::mask(checksum::crc32c_parts(&[payload, &[ty]]))
}

/// Checks a block read from disk (`stored` is payload ‖ trailer) and returns its uncompressed
/// contents. Order: length, checksum, type, then (for lz4) the declared length and the
/// decompression itself.
pub fn unwrap_block(mut stored: Vec<u8>) -> Result<Bytes, CorruptionKind> {
    let (payload_len, compression) = check_block(&stored)?;
    match compression {
        Compression::None => {
            stored.truncate(payload_len);
            Ok(Bytes::from(stored))
        }
        Compression::Lz4 => {
            decompress(stored.get(..payload_len).unwrap_or_default()).map(Bytes::from)
        }
    }
}

/// [`unwrap_block`] for a block inside a larger buffer (a read of several blocks at once): an
/// uncompressed payload is copied out, a compressed one decompressed from where it lies.
pub fn unwrap_block_in(stored: &[u8]) -> Result<Bytes, CorruptionKind> {
    let (payload_len, compression) = check_block(stored)?;
    let payload = stored.get(..payload_len).unwrap_or_default();
    match compression {
        Compression::None => Ok(Bytes::copy_from_slice(payload)),
        Compression::Lz4 => decompress(payload).map(Bytes::from),
    }
}

/// Checks a stored block's length, checksum and type; returns the payload's length and how it
/// is compressed.
fn check_block(stored: &[u8]) -> Result<(usize, Compression), CorruptionKind> {
    let payload_len =
        stored.len().checked_sub(BLOCK_TRAILER_LEN).ok_or(CorruptionKind::Truncated)?;
    let (payload, trailer) = stored.split_at(payload_len);
    let mut d = Decoder::new(trailer);
    let (Ok(ty), Ok(crc)) = (d.u8(), d.u32()) else {
        return Err(CorruptionKind::Truncated);
    };
    if crc != block_checksum(payload, ty) {
        return Err(CorruptionKind::Checksum);
    }
    let compression = Compression::from_u8(ty).ok_or(CorruptionKind::UnknownTag(ty))?;
    Ok((payload_len, compression))
}

/// Decodes an lz4 payload: varint uncompressed length, then the compressed bytes. The length
/// is bounded before anything is allocated.
fn decompress(payload: &[u8]) -> Result<Vec<u8>, CorruptionKind> {
    let mut d = Decoder::new(payload);
    let declared = d.varint().map_err(decode_err)?;
    let compressed = d.bytes(d.remaining()).map_err(decode_err)?;
    let declared = usize::try_from(declared).map_err(|_| CorruptionKind::Truncated)?;
    if declared > MAX_COMPRESSED_BLOCK_LEN
        || declared > compressed.len().saturating_mul(LZ4_MAX_RATIO)
    {
        return Err(CorruptionKind::Truncated);
    }
    // Into a buffer of exactly the declared capacity (not zero-filled first): the decoder
    // fails rather than write past it.
    match lz4_flex::decompress(compressed, declared) {
        Ok(out) if out.len() == declared => Ok(out),
        _ => Err(CorruptionKind::Truncated),
    }
}

/// Compresses `raw` into `out` as an lz4 payload (varint length, then lz4 bytes) if that saves
/// at least 12.5%; returns `false` (and leaves `out` unspecified) otherwise.
pub fn compress_into(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    if raw.len() > MAX_COMPRESSED_BLOCK_LEN {
        return false;
    }
    codec::put_varint(out, raw.len() as u64);
    let head = out.len();
    out.resize(head + lz4_flex::block::get_maximum_output_size(raw.len()), 0);
    let Some(room) = out.get_mut(head..) else { return false };
    let Ok(n) = lz4_flex::block::compress_into(raw, room) else { return false };
    out.truncate(head + n);
    out.len() <= raw.len() - raw.len() / 8
}

// ---- encoded internal keys ----

/// The packed second word of a key trailer: `seq << 8 | kind`. Sorting this descending sorts by
/// sequence number descending, then kind descending, as [`InternalKey`] does.
pub const fn pack(seq: u64, kind: ValueKind) -> u64 {
    (seq << 8) | kind as u64
}

/// Appends `key` as `user_key ‖ ts (u64 LE) ‖ seq << 8 | kind (u64 LE)`.
pub fn encode_key(key: &InternalKey, out: &mut Vec<u8>) {
    out.extend_from_slice(&key.user_key);
    codec::put_u64(out, key.ts);
    codec::put_u64(out, pack(key.seq, key.kind));
}

/// An encoded key split into its parts, without copying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRef<'a> {
    /// The user key.
    pub user_key: &'a [u8],
    /// The version timestamp.
    pub ts: u64,
    /// `seq << 8 | kind`.
    pub packed: u64,
}

impl<'a> KeyRef<'a> {
    /// Splits an encoded key. Fails only if it is shorter than its trailer.
    #[inline]
    pub fn parse(enc: &'a [u8]) -> Result<KeyRef<'a>, CorruptionKind> {
        // Fixed-size pieces: one length check, no cursor (every block search probe parses).
        let (rest, packed) = enc.split_last_chunk::<8>().ok_or(CorruptionKind::Truncated)?;
        let (user_key, ts) = rest.split_last_chunk::<8>().ok_or(CorruptionKind::Truncated)?;
        Ok(KeyRef { user_key, ts: u64::from_le_bytes(*ts), packed: u64::from_le_bytes(*packed) })
    }

    /// The view of an in-memory key.
    pub fn of(key: &'a InternalKey) -> KeyRef<'a> {
        KeyRef { user_key: &key.user_key, ts: key.ts, packed: pack(key.seq, key.kind) }
    }

    /// The sequence number.
    pub const fn seq(&self) -> u64 {
        self.packed >> 8
    }

    /// The kind, or `UnknownTag` for a value this build does not know.
    pub fn kind(&self) -> Result<ValueKind, CorruptionKind> {
        let tag = (self.packed & 0xff) as u8;
        ValueKind::from_u8(tag).ok_or(CorruptionKind::UnknownTag(tag))
    }

    /// The same order as [`InternalKey`]'s: user key ascending, then timestamp descending,
    /// then sequence number and kind descending.
    #[inline]
    pub fn cmp_key(&self, other: &KeyRef<'_>) -> Ordering {
        crate::key::user_keys_cmp(self.user_key, other.user_key)
            .then_with(|| other.ts.cmp(&self.ts))
            .then_with(|| other.packed.cmp(&self.packed))
    }

    /// An owned [`InternalKey`] (copies the user key).
    pub fn to_owned_key(self) -> Result<InternalKey, CorruptionKind> {
        let kind = self.kind()?;
        debug_assert!(self.seq() <= MAX_SEQ);
        Ok(InternalKey::new(Bytes::copy_from_slice(self.user_key), self.ts, self.seq(), kind))
    }
}

/// Decodes an encoded internal key into an owned one.
pub fn decode_key(enc: &[u8]) -> Result<InternalKey, CorruptionKind> {
    KeyRef::parse(enc)?.to_owned_key()
}

// ---- footer ----

/// The fixed-size structure at the end of every table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// The index (single block or top level).
    pub index: BlockHandle,
    /// The bloom filter block.
    pub filter: BlockHandle,
    /// The properties block.
    pub props: BlockHandle,
    /// Whether the index is partitioned.
    pub index_kind: IndexKind,
}

impl Footer {
    /// The footer's bytes.
    pub fn encode(&self) -> [u8; FOOTER_LEN] {
        let mut v = Vec::with_capacity(FOOTER_LEN);
        for h in [self.index, self.filter, self.props] {
            codec::put_u64(&mut v, h.offset);
            codec::put_u64(&mut v, h.size);
        }
        v.extend_from_slice(&[self.index_kind as u8, 0, 0, 0]);
        codec::put_u32(&mut v, FORMAT_VERSION);
        let crc = checksum::mask(checksum::crc32c(&v));
        codec::put_u32(&mut v, crc);
        v.extend_from_slice(&MAGIC);
        let mut out = [0u8; FOOTER_LEN];
        if let Some(src) = v.get(..FOOTER_LEN) {
            out.copy_from_slice(src);
        }
        out
    }

    /// Decodes a footer from exactly its bytes. Checks, in order: length (`Truncated`), magic
    /// (`BadMagic`), version (`UnsupportedVersion`, before the checksum, so a table from a newer
    /// build is reported as such), checksum (`Checksum`), then the index kind and the reserved
    /// bytes (`UnknownTag`).
    pub fn decode(b: &[u8]) -> Result<Footer, CorruptionKind> {
        if b.len() != FOOTER_LEN {
            return Err(CorruptionKind::Truncated);
        }
        let body = b.get(..FOOTER_CRC_OFFSET).ok_or(CorruptionKind::Truncated)?;
        let mut d = Decoder::new(b);
        let mut words = [0u64; 6];
        for w in &mut words {
            *w = d.u64().map_err(decode_err)?;
        }
        let tags = d.array::<4>().map_err(decode_err)?;
        let version = d.u32().map_err(decode_err)?;
        let crc = d.u32().map_err(decode_err)?;
        let magic = d.array::<8>().map_err(decode_err)?;
        if magic != MAGIC {
            return Err(CorruptionKind::BadMagic);
        }
        if version != FORMAT_VERSION {
            return Err(CorruptionKind::UnsupportedVersion(version));
        }
        if crc != checksum::mask(checksum::crc32c(body)) {
            return Err(CorruptionKind::Checksum);
        }
        let [kind, r1, r2, r3] = tags;
        let index_kind = IndexKind::from_u8(kind).ok_or(CorruptionKind::UnknownTag(kind))?;
        if let Some(&r) = [r1, r2, r3].iter().find(|&&r| r != 0) {
            return Err(CorruptionKind::UnknownTag(r));
        }
        let [io, is, fo, fs, po, ps] = words;
        Ok(Footer {
            index: BlockHandle { offset: io, size: is },
            filter: BlockHandle { offset: fo, size: fs },
            props: BlockHandle { offset: po, size: ps },
            index_kind,
        })
    }
}

// ---- properties ----

/// Appends the properties block payload. `file_size` is not stored (the file knows it).
pub fn encode_props(p: &TableProps, out: &mut Vec<u8>) {
    for v in [
        u64::from(p.format_version),
        p.entries,
        p.deletions,
        p.data_blocks,
        p.index_partitions,
        p.index_size,
        p.filter_size,
        p.raw_key_bytes,
        p.raw_value_bytes,
        p.min_seq,
        p.max_seq,
        p.min_ts,
        p.max_ts,
    ] {
        codec::put_varint(out, v);
    }
    out.push(u8::from(p.compression));
    let mut key = Vec::new();
    for k in [&p.smallest, &p.largest] {
        key.clear();
        encode_key(k, &mut key);
        codec::put_bytes(out, &key);
    }
}

/// Decodes a properties block payload. Bytes after the last known field are ignored, so a
/// later build may append fields without a new format version.
pub fn decode_props(b: &[u8], file_size: u64) -> Result<TableProps, CorruptionKind> {
    let mut d = Decoder::new(b);
    let mut f = [0u64; 13];
    for v in &mut f {
        *v = d.varint().map_err(decode_err)?;
    }
    let [
        version,
        entries,
        deletions,
        data_blocks,
        index_partitions,
        index_size,
        filter_size,
        raw_key_bytes,
        raw_value_bytes,
        min_seq,
        max_seq,
        min_ts,
        max_ts,
    ] = f;
    let format_version = u32::try_from(version).unwrap_or(u32::MAX);
    if format_version != FORMAT_VERSION {
        return Err(CorruptionKind::UnsupportedVersion(format_version));
    }
    let compression = match d.u8().map_err(decode_err)? {
        0 => false,
        1 => true,
        t => return Err(CorruptionKind::UnknownTag(t)),
    };
    let smallest = decode_key(d.length_prefixed().map_err(decode_err)?)?;
    let largest = decode_key(d.length_prefixed().map_err(decode_err)?)?;
    Ok(TableProps {
        entries,
        deletions,
        smallest,
        largest,
        min_seq,
        max_seq,
        min_ts,
        max_ts,
        raw_key_bytes,
        raw_value_bytes,
        data_blocks,
        file_size,
        index_size,
        index_partitions,
        filter_size,
        compression,
        format_version,
    })
}

//! The file table and its on-flash records.
//!
//! The table is a fixed-capacity list ([`heapless::Vec`]) of [`FileRecord`]s: what a file is
//! called, where its block chain starts and how many of its bytes are durable. The flash holds
//! it as a log of checksummed records in a metadata area: a snapshot (the whole table) first,
//! then deltas (records that changed, ids removed), each with the next sequence number.
//!
//! Record layout (little endian), padded with `0xFF` to a multiple of the flash write size:
//!
//! ```text
//! magic u32 "STM1" | seq u32 | payload_len u32 | kind u8 (1 snapshot, 2 delta) | 3 x 0x00
//! payload: alloc_cursor u32 | upserts u16 | removes u16
//!          upsert: id u32 | first_block u32 | len u64 | name_len u8 | name | tail_len u8 | tail
//!          remove: id u32
//! crc u32: masked CRC-32C of everything before it
//! ```

use alloc::vec::Vec;

/// Most files a flash filesystem holds.
pub const MAX_FILES: usize = 48;
/// Longest file name, in bytes.
pub const MAX_NAME: usize = 32;
/// Largest flash write size supported: a synced file's partial last write unit lives in its
/// record until the unit is complete, so the tail is at most this minus one byte.
pub const MAX_WRITE_SIZE: usize = 32;
/// `first_block` of a file with no blocks yet.
pub(super) const NO_BLOCK: u32 = u32::MAX;

pub(super) const MAGIC: u32 = 0x314d_5453; // "STM1"
pub(super) const HEADER_LEN: usize = 16;
pub(super) const CRC_LEN: usize = 4;
pub(super) const KIND_SNAPSHOT: u8 = 1;
pub(super) const KIND_DELTA: u8 = 2;

const PAYLOAD_FIXED: usize = 8;
const UPSERT_MAX: usize = 4 + 4 + 8 + 1 + MAX_NAME + 1 + MAX_WRITE_SIZE;

/// Largest record the table can produce (a full snapshot), before padding.
pub(super) const MAX_RECORD: usize =
    HEADER_LEN + PAYLOAD_FIXED + MAX_FILES * UPSERT_MAX + MAX_FILES * 4 + CRC_LEN;

static CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// CRC-32C, masked as every Strata format stores it (docs/format/README.md).
fn checksum(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One file as the directory knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FileRecord {
    /// Never reused while the file is named by a durable record.
    pub id: u32,
    pub name: heapless::String<MAX_NAME>,
    /// First data block of the chain, or [`NO_BLOCK`].
    pub first_block: u32,
    /// Bytes made durable by the last sync.
    pub len: u64,
    /// The last `len % write_size` bytes, which are not on flash yet.
    pub tail: heapless::Vec<u8, MAX_WRITE_SIZE>,
}

/// The directory: every file, in no particular order.
pub(super) type FileTable = heapless::Vec<FileRecord, MAX_FILES>;

/// A decoded record.
#[derive(Debug)]
pub(super) struct Record {
    pub seq: u32,
    pub kind: u8,
    pub alloc_cursor: u32,
    pub upserts: Vec<FileRecord>,
    pub removes: Vec<u32>,
}

/// Rounds `n` up to a multiple of `unit`.
pub(super) fn round_up(n: usize, unit: usize) -> usize {
    n.div_ceil(unit) * unit
}

/// Encodes a record, padded to `write_size`.
pub(super) fn encode(
    seq: u32,
    kind: u8,
    alloc_cursor: u32,
    upserts: &[&FileRecord],
    removes: &[u32],
    write_size: usize,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAX_RECORD);
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // payload length, patched below
    out.extend_from_slice(&[kind, 0, 0, 0]);
    out.extend_from_slice(&alloc_cursor.to_le_bytes());
    // Both counts are bounded by MAX_FILES, far below u16::MAX.
    out.extend_from_slice(&(upserts.len() as u16).to_le_bytes());
    out.extend_from_slice(&(removes.len() as u16).to_le_bytes());
    for r in upserts {
        out.extend_from_slice(&r.id.to_le_bytes());
        out.extend_from_slice(&r.first_block.to_le_bytes());
        out.extend_from_slice(&r.len.to_le_bytes());
        out.push(r.name.len() as u8);
        out.extend_from_slice(r.name.as_bytes());
        out.push(r.tail.len() as u8);
        out.extend_from_slice(&r.tail);
    }
    for id in removes {
        out.extend_from_slice(&id.to_le_bytes());
    }
    let payload_len = (out.len() - HEADER_LEN) as u32;
    out[8..12].copy_from_slice(&payload_len.to_le_bytes());
    let crc = checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out.resize(round_up(out.len(), write_size), 0xFF);
    out
}

/// Reads the header fields `(magic, seq, payload_len, kind)`.
pub(super) fn header(bytes: &[u8; HEADER_LEN]) -> (u32, u32, usize, u8) {
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (word(0), word(4), word(8) as usize, bytes[12])
}

/// Decodes a whole record (header, payload and checksum, without padding). `None` if the
/// checksum fails or anything is out of bounds: a torn or never-written record.
pub(super) fn decode(bytes: &[u8]) -> Option<Record> {
    if bytes.len() < HEADER_LEN + PAYLOAD_FIXED + CRC_LEN {
        return None;
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes(crc.try_into().ok()?);
    if checksum(body) != stored {
        return None;
    }
    let head: &[u8; HEADER_LEN] = body.get(..HEADER_LEN)?.try_into().ok()?;
    let (magic, seq, payload_len, kind) = header(head);
    if magic != MAGIC || payload_len != body.len() - HEADER_LEN {
        return None;
    }
    let mut cur = Cursor { bytes: &body[HEADER_LEN..] };
    let alloc_cursor = cur.u32()?;
    let n_up = usize::from(cur.u16()?);
    let n_rm = usize::from(cur.u16()?);
    if n_up > MAX_FILES || n_rm > MAX_FILES {
        return None;
    }
    let mut upserts = Vec::with_capacity(n_up);
    for _ in 0..n_up {
        let id = cur.u32()?;
        let first_block = cur.u32()?;
        let len = cur.u64()?;
        let name_len = usize::from(cur.u8()?);
        let name = core::str::from_utf8(cur.take(name_len)?).ok()?;
        let name = heapless::String::try_from(name).ok()?;
        let tail_len = usize::from(cur.u8()?);
        let tail = heapless::Vec::from_slice(cur.take(tail_len)?).ok()?;
        upserts.push(FileRecord { id, name, first_block, len, tail });
    }
    let mut removes = Vec::with_capacity(n_rm);
    for _ in 0..n_rm {
        removes.push(cur.u32()?);
    }
    if !cur.bytes.is_empty() {
        return None;
    }
    Some(Record { seq, kind, alloc_cursor, upserts, removes })
}

/// Applies a decoded record to `table`. `false` if it does not fit (a corrupt record).
pub(super) fn apply(table: &mut FileTable, record: &Record) -> bool {
    if record.kind == KIND_SNAPSHOT {
        table.clear();
    }
    table.retain(|f| {
        !record.removes.contains(&f.id) && !record.upserts.iter().any(|u| u.id == f.id)
    });
    for up in &record.upserts {
        if table.push(up.clone()).is_err() {
            return false;
        }
    }
    // Names stay unique: checked once all changes are in (a rename and a create of the old
    // name travel in one record).
    table.iter().enumerate().all(|(i, f)| table[i + 1..].iter().all(|g| g.name != f.name))
}

struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: u32, name: &str, len: u64) -> FileRecord {
        FileRecord {
            id,
            name: heapless::String::try_from(name).expect("short name"),
            first_block: 7,
            len,
            tail: heapless::Vec::from_slice(&[1, 2, 3]).expect("short tail"),
        }
    }

    #[test]
    fn records_round_trip_and_reject_any_flipped_bit() {
        let a = file(1, "000001.wal", 1003);
        let b = file(2, "CURRENT", 16);
        let bytes = encode(9, KIND_DELTA, 5, &[&a, &b], &[4], 8);
        assert_eq!(bytes.len() % 8, 0);
        let (_, _, payload_len, _) = header(bytes[..HEADER_LEN].try_into().expect("header"));
        let exact = &bytes[..HEADER_LEN + payload_len + CRC_LEN];
        let rec = decode(exact).expect("decodes");
        assert_eq!((rec.seq, rec.kind, rec.alloc_cursor), (9, KIND_DELTA, 5));
        assert_eq!(rec.upserts, [a, b]);
        assert_eq!(rec.removes, [4]);
        for i in 0..exact.len() * 8 {
            let mut bad = exact.to_vec();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(decode(&bad).is_none(), "bit {i}");
        }
        for cut in 0..exact.len() {
            assert!(decode(&exact[..cut]).is_none(), "cut {cut}");
        }
    }

    /// The worked example of docs/format/flash.md, byte for byte.
    #[test]
    fn the_documented_example_record() {
        let current = FileRecord {
            id: 1,
            name: heapless::String::try_from("CURRENT").expect("short name"),
            first_block: 0,
            len: 16,
            tail: heapless::Vec::new(),
        };
        let bytes = encode(2, KIND_DELTA, 3, &[&current], &[4], 4);
        let hex: alloc::string::String = bytes.iter().map(|b| alloc::format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "53544d3102000000250000000200000003000000010001000100000000000000\
             10000000000000000743555252454e540004000000cbdbea10ffffff"
        );
        let rec = decode(&bytes[..57]).expect("decodes without its padding");
        assert_eq!((rec.upserts, rec.removes), (alloc::vec![current], alloc::vec![4]));
    }

    #[test]
    fn a_full_snapshot_stays_within_max_record() {
        let mut table = FileTable::new();
        for i in 0..MAX_FILES {
            let name = alloc::format!("{i:0>width$}", width = MAX_NAME);
            let mut f = file(i as u32, &name, u64::MAX);
            f.tail = heapless::Vec::from_slice(&[0; MAX_WRITE_SIZE - 1]).expect("fits");
            table.push(f).expect("fits");
        }
        let all: Vec<&FileRecord> = table.iter().collect();
        let bytes = encode(1, KIND_SNAPSHOT, 0, &all, &[], 1);
        assert!(bytes.len() <= MAX_RECORD, "{} > {MAX_RECORD}", bytes.len());
        let rec = decode(&bytes).expect("decodes");
        let mut back = FileTable::new();
        assert!(apply(&mut back, &rec));
        assert_eq!(back, table);
    }
}

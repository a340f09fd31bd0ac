//! Appending records to one log segment.

use alloc::string::String;

use strata_vfs::{AppendWrite, SyncMode};

use super::format::{
    BLOCK_SIZE, FRAGMENT_HEADER_LEN, FragmentType, SegmentHeader, fragment_checksum, record_start,
};
use crate::error::{Error, IoOp, Result};

/// Zeros for block padding (a block tail shorter than a fragment header).
const PADDING: [u8; FRAGMENT_HEADER_LEN - 1] = [0; FRAGMENT_HEADER_LEN - 1];

/// The file's space is reserved ([`AppendWrite::reserve`]) in steps of this many bytes ahead
/// of the appends, so that only one sync in each step records a new file size. A crash leaves
/// at most this many zero bytes after the last record, which readers accept
/// (`docs/format/wal.md`, "Zero tail").
pub const RESERVE_STEP: u64 = 256 * 1024;

/// Writes one log segment: the header, then records cut into fragments that never cross a
/// 32 KiB block boundary.
///
/// Nothing is durable until [`sync`](Self::sync) returns `Ok`. After any error the segment is
/// failed: how much of the failed call reached the file is unknown, so every later call
/// returns [`Error::Poisoned`] and the engine must rotate to a new segment (whose header bounds
/// this one at its last synced length, [`synced_len`](Self::synced_len)).
#[derive(Debug)]
pub struct WalWriter<W: AppendWrite> {
    file: W,
    name: String,
    segment: u64,
    /// Bytes appended so far, header included; also the absolute offset of the next byte.
    len: u64,
    /// `len` at the last successful sync (0 before the first).
    synced_len: u64,
    /// How far the file's space has been reserved (a multiple of `reserve_step`).
    reserved: u64,
    /// [`RESERVE_STEP`] for a segment made by [`reserving`](Self::reserving), 0 otherwise.
    reserve_step: u64,
    failed: bool,
}

impl<W: AppendWrite> WalWriter<W> {
    /// Starts a segment in `file`, which must be empty, by appending `header` (not synced).
    /// `name` is the file's name, used in errors.
    pub fn new(file: W, name: String, header: SegmentHeader) -> Result<Self> {
        Self::start(file, name, header, 0)
    }

    /// Like [`new`](Self::new), and the file's space is reserved [`RESERVE_STEP`] bytes at a
    /// time ahead of the appends, leaving a zero tail (`docs/format/wal.md`). For the WAL,
    /// whose many small synced appends this speeds up; the manifest, which shares this framing
    /// but syncs rarely and is read by stricter rules, does not reserve.
    pub fn reserving(file: W, name: String, header: SegmentHeader) -> Result<Self> {
        Self::start(file, name, header, RESERVE_STEP)
    }

    fn start(file: W, name: String, header: SegmentHeader, reserve_step: u64) -> Result<Self> {
        let mut w = WalWriter {
            file,
            name,
            segment: header.segment,
            len: 0,
            synced_len: 0,
            reserved: 0,
            reserve_step,
            failed: false,
        };
        w.append(&header.encode())?;
        Ok(w)
    }

    /// Appends one record, cut into fragments as needed. The bytes may stay buffered in the
    /// file until [`flush`](Self::flush) or [`sync`](Self::sync). Empty records are allowed.
    pub fn add_record(&mut self, payload: &[u8]) -> Result<()> {
        self.check()?;
        let mut rest = payload;
        let mut first = true;
        loop {
            // A block tail too small for a fragment header is padded with zeros and the
            // fragment starts in the next block (`record_start`, the rule readers use too).
            // Fewer than FRAGMENT_HEADER_LEN bytes, so the cast is lossless.
            let pad = (record_start(self.len) - self.len) as usize;
            if pad > 0 {
                self.append(PADDING.get(..pad).unwrap_or(&PADDING))?;
            }
            let room = BLOCK_SIZE - self.block_offset() - FRAGMENT_HEADER_LEN;
            let (piece, after) = rest.split_at(rest.len().min(room));
            let last = after.is_empty();
            let ty = match (first, last) {
                (true, true) => FragmentType::Full,
                (true, false) => FragmentType::First,
                (false, false) => FragmentType::Middle,
                (false, true) => FragmentType::Last,
            };
            self.emit(ty, piece)?;
            if last {
                return Ok(());
            }
            rest = after;
            first = false;
        }
    }

    /// Hands buffered bytes to the operating system (readers and a process crash see them; a
    /// power cut may not).
    pub fn flush(&mut self) -> Result<()> {
        self.check()?;
        let r = self.file.flush();
        self.guard(IoOp::Flush, r)
    }

    /// Makes every record appended so far durable (`SyncMode::Data`: the bytes and the file
    /// size). The file's directory entry is the engine's business (`Vfs::sync_dir`).
    pub fn sync(&mut self) -> Result<()> {
        self.check()?;
        let r = self.file.sync(SyncMode::Data);
        self.guard(IoOp::Sync, r)?;
        self.synced_len = self.len;
        Ok(())
    }

    /// Bytes appended so far, header included.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Always `false`: a segment holds at least its header.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes made durable by the last successful [`sync`](Self::sync); 0 before the first.
    /// Always the end of a record (or of the header).
    pub fn synced_len(&self) -> u64 {
        self.synced_len
    }

    /// This segment's number.
    pub fn segment(&self) -> u64 {
        self.segment
    }

    /// The file's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where in its block the next byte goes.
    fn block_offset(&self) -> usize {
        // The remainder is below BLOCK_SIZE, so the cast is lossless.
        (self.len % BLOCK_SIZE as u64) as usize
    }

    fn emit(&mut self, ty: FragmentType, piece: &[u8]) -> Result<()> {
        let mut header = [0u8; FRAGMENT_HEADER_LEN];
        let (crc, rest) = header.split_at_mut(4);
        let (len, tag) = rest.split_at_mut(2);
        crc.copy_from_slice(&fragment_checksum(ty as u8, piece).to_le_bytes());
        // `piece` fits in the block remainder, so its length fits in u16.
        len.copy_from_slice(&(piece.len() as u16).to_le_bytes());
        tag.copy_from_slice(&[ty as u8]);
        self.append(&header)?;
        self.append(piece)
    }

    fn append(&mut self, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = self.len.saturating_add(data.len() as u64);
        if self.reserve_step > 0 && end > self.reserved {
            let upto = end.div_ceil(self.reserve_step).saturating_mul(self.reserve_step);
            // A hint: a file that cannot reserve space is written as before.
            let _ = self.file.reserve(upto);
            self.reserved = upto;
        }
        let r = self.file.append(data);
        self.guard(IoOp::Append, r)?;
        self.len += data.len() as u64;
        Ok(())
    }

    fn check(&self) -> Result<()> {
        if self.failed { Err(Error::Poisoned) } else { Ok(()) }
    }

    /// Maps a filesystem error and marks the segment failed.
    fn guard(&mut self, op: IoOp, r: strata_vfs::Result<()>) -> Result<()> {
        r.map_err(|e| {
            self.failed = true;
            Error::io(op, &self.name, e)
        })
    }
}

#[cfg(test)]
#[expect(clippy::indexing_slicing, reason = "tests poke at fixed offsets")]
mod tests {
    extern crate std;

    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    use super::super::format::MAX_FRAGMENT_PAYLOAD;
    use super::*;

    /// An append-only byte vector that can be told to fail.
    #[derive(Debug, Default)]
    struct VecFile {
        bytes: Vec<u8>,
        fail_append_after: Option<usize>,
        fail_sync: bool,
        syncs: usize,
        /// Every `reserve` request, in order.
        reserves: Vec<u64>,
    }

    impl AppendWrite for VecFile {
        fn append(&mut self, data: &[u8]) -> strata_vfs::Result<()> {
            if let Some(n) = self.fail_append_after {
                if n == 0 {
                    return Err(strata_vfs::ErrorKind::Other.into());
                }
                self.fail_append_after = Some(n - 1);
            }
            self.bytes.extend_from_slice(data);
            Ok(())
        }
        fn flush(&mut self) -> strata_vfs::Result<()> {
            Ok(())
        }
        fn sync(&mut self, mode: SyncMode) -> strata_vfs::Result<()> {
            assert_eq!(mode, SyncMode::Data);
            if self.fail_sync {
                return Err(strata_vfs::ErrorKind::Other.into());
            }
            self.syncs += 1;
            Ok(())
        }
        fn len(&self) -> u64 {
            self.bytes.len() as u64
        }
        fn reserve(&mut self, upto: u64) -> strata_vfs::Result<()> {
            self.reserves.push(upto);
            Ok(())
        }
    }

    /// Space is reserved ahead of the appends, a whole step at a time: once when the segment
    /// starts and again only when an append would pass the reserved end. A writer made by
    /// `new` (the manifest's) never asks.
    #[test]
    fn space_is_reserved_a_step_ahead() {
        let mut plain = WalWriter::new(VecFile::default(), "m".to_string(), EXAMPLE).expect("new");
        plain.add_record(&vec![3u8; 2 * RESERVE_STEP as usize]).expect("add");
        assert!(plain.file.reserves.is_empty());
        let mut w =
            WalWriter::reserving(VecFile::default(), "w".to_string(), EXAMPLE).expect("new");
        assert_eq!(w.file.reserves, [RESERVE_STEP]);
        let record = vec![7u8; 1000];
        while w.len() + 1100 < RESERVE_STEP {
            w.add_record(&record).expect("add");
        }
        assert_eq!(w.file.reserves, [RESERVE_STEP], "no request while inside the step");
        w.add_record(&record).expect("add");
        w.add_record(&record).expect("add");
        assert_eq!(w.file.reserves, [RESERVE_STEP, 2 * RESERVE_STEP]);
        let big = vec![1u8; 3 * RESERVE_STEP as usize];
        w.add_record(&big).expect("add");
        assert!(w.file.reserves.windows(2).all(|p| p[0] < p[1]), "{:?}", w.file.reserves);
        let last = *w.file.reserves.last().expect("reserved");
        assert!(last >= w.len() && last % RESERVE_STEP == 0 && last - w.len() < RESERVE_STEP);
    }

    const EXAMPLE: SegmentHeader =
        SegmentHeader { segment: 7, prev_segment: 6, prev_valid_len: 4096 };

    fn writer(header: SegmentHeader) -> WalWriter<VecFile> {
        WalWriter::new(VecFile::default(), "000007.wal".to_string(), header).expect("header")
    }

    /// The worked example of docs/format/wal.md, byte for byte.
    #[test]
    fn worked_example_bytes() {
        let mut w = writer(EXAMPLE);
        w.add_record(b"strata").expect("append");
        #[rustfmt::skip]
        let expected: &[u8] = &[
            // segment header
            0x53, 0x54, 0x52, 0x41, 0x54, 0x57, 0x41, 0x4c, // magic "STRATWAL"
            0x01, 0x00, 0x00, 0x00,                         // format version 1
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // segment 7
            0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // previous segment 6
            0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // previous valid length 4096
            0x96, 0x10, 0xa9, 0x59,                         // masked CRC-32C of bytes 0..36
            // FULL record "strata" at offset 40
            0xd2, 0x33, 0x4b, 0x6e,                         // masked CRC-32C of 01 "strata"
            0x06, 0x00,                                     // payload length 6
            0x01,                                           // type FULL
            0x73, 0x74, 0x72, 0x61, 0x74, 0x61,             // "strata"
        ];
        assert_eq!(w.file.bytes, expected);
        assert_eq!(w.len(), 53);
        assert_eq!(SegmentHeader::decode(expected), Ok(EXAMPLE));
    }

    /// The second worked example: a record cut FIRST/LAST at the end of block 0.
    #[test]
    fn first_last_split_bytes() {
        let mut w = writer(SegmentHeader { segment: 1, prev_segment: 0, prev_valid_len: 0 });
        let payload = vec![b'a'; 32_724];
        w.add_record(&payload).expect("append");
        let b = &w.file.bytes;
        assert_eq!(b.len(), BLOCK_SIZE + 7 + 3);
        // Header of segment 1, no predecessor: only its number and checksum differ from the
        // first example.
        assert_eq!(&b[12..20], &[1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[20..36], &[0; 16]);
        assert_eq!(&b[36..40], &[0x98, 0x60, 0x4b, 0x8c]);
        // FIRST at offset 40 carries the 32721 bytes that fit in block 0.
        assert_eq!(&b[40..47], &[0x8e, 0x18, 0xc9, 0x54, 0xd1, 0x7f, 0x02]);
        assert!(b[47..BLOCK_SIZE].iter().all(|&x| x == b'a'));
        // LAST at offset 32768 carries the remaining 3.
        assert_eq!(&b[BLOCK_SIZE..], &[0x44, 0x4c, 0xb2, 0x1f, 0x03, 0x00, 0x04, b'a', b'a', b'a']);
    }

    #[test]
    fn pads_a_block_tail_shorter_than_a_fragment_header() {
        let mut w = writer(SegmentHeader { segment: 1, prev_segment: 0, prev_valid_len: 0 });
        // Leaves 3 bytes in block 0.
        w.add_record(&vec![7u8; BLOCK_SIZE - 40 - 7 - 3]).expect("append");
        assert_eq!(w.len(), (BLOCK_SIZE - 3) as u64);
        w.add_record(b"x").expect("append");
        let b = &w.file.bytes;
        assert_eq!(&b[BLOCK_SIZE - 3..BLOCK_SIZE], &[0, 0, 0]);
        assert_eq!(b[BLOCK_SIZE + 6], FragmentType::Full as u8);
        assert_eq!(&b[BLOCK_SIZE + 4..BLOCK_SIZE + 6], &[1, 0]);
        assert_eq!(b.len(), BLOCK_SIZE + 8);
    }

    #[test]
    fn exactly_a_header_left_gets_an_empty_fragment() {
        let mut w = writer(SegmentHeader { segment: 1, prev_segment: 0, prev_valid_len: 0 });
        w.add_record(&vec![7u8; BLOCK_SIZE - 40 - 7 - 7]).expect("append");
        assert_eq!(w.len(), (BLOCK_SIZE - 7) as u64);
        w.add_record(b"yz").expect("append");
        let b = &w.file.bytes;
        // An empty FIRST fills block 0 exactly, a LAST in block 1 carries the bytes.
        assert_eq!(&b[BLOCK_SIZE - 3..BLOCK_SIZE], &[0, 0, FragmentType::First as u8]);
        assert_eq!(&b[BLOCK_SIZE + 4..], &[2, 0, FragmentType::Last as u8, b'y', b'z']);
    }

    #[test]
    fn empty_records_and_multi_block_records() {
        let mut w = writer(SegmentHeader { segment: 1, prev_segment: 0, prev_valid_len: 0 });
        w.add_record(b"").expect("append");
        let crc = fragment_checksum(FragmentType::Full as u8, b"").to_le_bytes();
        assert_eq!(w.file.bytes[40..], [crc[0], crc[1], crc[2], crc[3], 0, 0, 1]);
        let start = w.len() as usize;
        w.add_record(&vec![9u8; 3 * BLOCK_SIZE]).expect("append");
        let b = &w.file.bytes;
        let types: Vec<u8> = [start, BLOCK_SIZE, 2 * BLOCK_SIZE, 3 * BLOCK_SIZE]
            .iter()
            .map(|&off| b[off + 6])
            .collect();
        assert_eq!(types, [2, 3, 3, 4]);
        let middle_len = u16::from_le_bytes([b[BLOCK_SIZE + 4], b[BLOCK_SIZE + 5]]) as usize;
        assert_eq!(middle_len, MAX_FRAGMENT_PAYLOAD);
    }

    #[test]
    fn accessors_and_sync() {
        let mut w = writer(EXAMPLE);
        assert_eq!((w.segment(), w.name(), w.len(), w.synced_len()), (7, "000007.wal", 40, 0));
        w.add_record(b"abc").expect("append");
        w.flush().expect("flush");
        w.sync().expect("sync");
        assert_eq!((w.len(), w.synced_len(), w.file.syncs), (50, 50, 1));
        assert!(!w.is_empty());
    }

    #[test]
    fn errors_name_the_call_and_poison_the_writer() {
        let file = VecFile { fail_append_after: Some(0), ..VecFile::default() };
        match WalWriter::new(file, "000009.wal".to_string(), EXAMPLE) {
            Err(Error::Io { op: IoOp::Append, file, .. }) => assert_eq!(file, "000009.wal"),
            other => panic!("unexpected {other:?}"),
        }
        // Header and the first fragment header succeed, the payload append fails.
        let file = VecFile { fail_append_after: Some(2), ..VecFile::default() };
        let mut w = WalWriter::new(file, "000009.wal".to_string(), EXAMPLE).expect("header");
        w.add_record(b"ok").map(|_| ()).expect_err("payload append fails");
        assert!(matches!(w.add_record(b"again"), Err(Error::Poisoned)));
        assert!(matches!(w.sync(), Err(Error::Poisoned)));

        let file = VecFile { fail_sync: true, ..VecFile::default() };
        let mut w = WalWriter::new(file, "000009.wal".to_string(), EXAMPLE).expect("header");
        w.add_record(b"ok").expect("append");
        assert!(matches!(w.sync(), Err(Error::Io { op: IoOp::Sync, .. })));
        assert_eq!(w.synced_len(), 0);
        assert!(matches!(w.flush(), Err(Error::Poisoned)));
    }
}

//! [`FlashFs`]: a [`Vfs`] on raw NOR flash (`embedded-storage`'s [`NorFlash`]), for devices
//! with no filesystem. Feature `flash`.
//!
//! ## Layout
//!
//! The flash is cut into erase units. The first `2 × m` units are two metadata areas of `m`
//! units each (`m` is the fewest units that hold two full file-table snapshots); the rest are
//! data blocks, one erase unit each.
//!
//! - **Data blocks.** A file is a chain of blocks. A block holds `ERASE_SIZE - slot` bytes of
//!   file data, then a *slot* (8 bytes padded to the write size) with the index of the next
//!   block and its complement, written when the next block is allocated, before any data goes
//!   there. Files are append-only: data is written once, in whole write units, to freshly
//!   erased blocks.
//! - **Metadata.** The file table (name, id, first block, durable length, and the partial last
//!   write unit) is a log of checksummed, sequence-numbered records (see `meta`) in the active
//!   area: a full snapshot, then deltas. When the next delta does not fit, or a record was torn
//!   by a power cut, the other area is erased and a snapshot written there with the next
//!   sequence number. At mount, the area whose first record is valid and newest wins, and its
//!   records are replayed up to the first one that is torn, out of sequence or missing.
//!
//! ## Data path
//!
//! `append` buffers in RAM; whole write units go to flash when a block's worth is buffered,
//! on `flush` and on `sync`. `sync` (and `sync_dir`) then writes one delta record with every
//! table entry that changed since the last record: the file's new length, and any create,
//! rename or remove done since. Readers see every appended byte (the buffer included).
//!
//! ## Power loss
//!
//! A crash between any two flash operations leaves the directory of the last complete record:
//! a record is one write, checksummed, so it is all or nothing; a compaction writes its
//! snapshot only after the new area is fully erased, and the old area stays intact until the
//! next compaction. A block is never erased while the durable table can reach it (blocks of a
//! removed file return to the pool only once the removal is in a record), so a file the
//! durable table names always reads back its synced bytes. Unsynced appends past the durable
//! length may be torn or lost, as the [`Vfs`] contract allows.
//!
//! ## Wear
//!
//! Data blocks are allocated round-robin from a cursor kept in every record, so erases spread
//! over all free units across reboots instead of reusing the lowest ones. The two metadata
//! areas take turns; each record is small (tens of bytes for a sync), so an area is erased once
//! per few dozen to hundreds of syncs depending on the erase size.
//!
//! ## Limits
//!
//! At most [`MAX_FILES`] files with names of at most [`MAX_NAME`] bytes; write sizes up to
//! [`MAX_WRITE_SIZE`]; no hard links ([`Caps::hard_links`] is `false`). Locks live in RAM (a
//! reboot releases them). A file cannot be reopened for appending after a remount, which the
//! engine never does.

mod io;
mod meta;
mod ram;

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use embedded_storage::nor_flash::{NorFlash, NorFlashError};

use crate::sync::Mutex;
use crate::{AppendWrite, Caps, Error, ErrorKind, FileKind, RandomRead, Result, SyncMode, Vfs};
use meta::{FileRecord, FileTable, KIND_DELTA, KIND_SNAPSHOT, NO_BLOCK};

pub use io::StreamReader;
pub use meta::{MAX_FILES, MAX_NAME, MAX_WRITE_SIZE};
pub use ram::{RamFlash, RamFlashError};

/// Bytes of a block's next-pointer before padding: the index and its complement.
const SLOT_BYTES: usize = 8;

fn flash_err<E: NorFlashError>(e: E, note: &'static str) -> Error {
    let _ = e.kind();
    Error::new(ErrorKind::Other, note)
}

fn corrupt(note: &'static str) -> Error {
    Error::new(ErrorKind::Other, note)
}

/// Sizes derived from the flash's constants and capacity.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    erase: u32,
    write: usize,
    read: usize,
    /// File bytes per block.
    payload: u32,
    /// Bytes of one metadata area.
    area: u32,
    /// Byte address of the first data block.
    data_start: u32,
    /// Number of data blocks.
    blocks: u32,
}

impl Geometry {
    fn of<F: NorFlash>(flash: &F) -> Result<Self> {
        let (erase, write, read) = (F::ERASE_SIZE, F::WRITE_SIZE, F::READ_SIZE.max(1));
        let unsupported = |note| Err(Error::new(ErrorKind::Unsupported, note));
        if write == 0 || write > MAX_WRITE_SIZE || erase == 0 || !erase.is_multiple_of(write) {
            return unsupported("flashfs: write size must divide the erase size and be <= 32");
        }
        let slot = meta::round_up(SLOT_BYTES, write);
        if erase < 4 * slot || erase > u32::MAX as usize / 4 {
            return unsupported("flashfs: erase unit too small or too large");
        }
        let units_per_area = (2 * meta::round_up(meta::MAX_RECORD, write)).div_ceil(erase);
        let units = flash.capacity() / erase;
        if units < 2 * units_per_area + 2 || flash.capacity() > u32::MAX as usize {
            return unsupported("flashfs: flash too small (or above 4 GiB)");
        }
        Ok(Geometry {
            erase: erase as u32,
            write,
            read,
            payload: (erase - slot) as u32,
            area: (units_per_area * erase) as u32,
            data_start: (2 * units_per_area * erase) as u32,
            blocks: (units - 2 * units_per_area) as u32,
        })
    }

    fn block_addr(&self, block: u32) -> u32 {
        self.data_start + block * self.erase
    }

    fn area_addr(&self, area: usize) -> u32 {
        area as u32 * self.area
    }

    /// Blocks holding the first `flushed` bytes of a file.
    fn blocks_for(&self, flushed: u64) -> usize {
        flushed.div_ceil(u64::from(self.payload)) as usize
    }
}

/// A file's bytes as this session knows them.
#[derive(Debug, Default)]
struct Inode {
    blocks: Vec<u32>,
    /// Bytes on flash (a multiple of the write size).
    flushed: u64,
    /// Bytes after `flushed`, not on flash yet.
    buf: Vec<u8>,
    /// Open readers and writers.
    handles: u32,
    /// Named in the table (not removed or renamed over).
    linked: bool,
}

impl Inode {
    fn len(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }
}

/// Where the metadata log goes next.
#[derive(Debug)]
struct MetaLog {
    active: usize,
    /// Next free byte in the active area.
    pos: u32,
    /// Sequence number of the last valid record.
    seq: u32,
    /// The active area's tail may hold a torn record: the next commit compacts.
    must_compact: bool,
}

#[derive(Debug)]
struct Inner<F> {
    flash: F,
    geo: Geometry,
    /// The directory now; each file's `len` is its last synced length.
    table: FileTable,
    /// The directory of the last record written.
    durable: FileTable,
    inodes: BTreeMap<u32, Inode>,
    /// Blocks held by an inode of this session.
    used: Vec<bool>,
    /// Blocks the durable table reaches: never erased, whatever this session does.
    durable_used: Vec<bool>,
    cursor: u32,
    next_id: u32,
    log: MetaLog,
    locks: Vec<String>,
}

/// A filesystem on a NOR flash. Cloning shares it.
#[derive(Debug)]
pub struct FlashFs<F> {
    inner: Arc<Mutex<Inner<F>>>,
}

impl<F> Clone for FlashFs<F> {
    fn clone(&self) -> Self {
        FlashFs { inner: Arc::clone(&self.inner) }
    }
}

impl<F: NorFlash> FlashFs<F> {
    /// Writes an empty filesystem, destroying whatever the flash held, and mounts it. Erases
    /// both metadata areas (the second first, so an interrupted format leaves either the old
    /// filesystem or nothing) and writes an empty snapshot; data blocks are erased when used.
    pub fn format(mut flash: F) -> Result<Self> {
        let geo = Geometry::of(&flash)?;
        for area in [1, 0] {
            let at = geo.area_addr(area);
            flash.erase(at, at + geo.area).map_err(|e| flash_err(e, "flashfs: erase failed"))?;
        }
        let rec = meta::encode(1, KIND_SNAPSHOT, 0, &[], &[], geo.write);
        flash
            .write(geo.area_addr(0), &rec)
            .map_err(|e| flash_err(e, "flashfs: metadata write failed"))?;
        Self::mount(flash)
    }

    /// Mounts the filesystem the flash holds. `NotFound` if it holds none (never formatted).
    pub fn mount(mut flash: F) -> Result<Self> {
        let geo = Geometry::of(&flash)?;
        let mut best: Option<(usize, Scan)> = None;
        for area in 0..2 {
            if let Some(scan) = scan_area(&mut flash, &geo, area)?
                && best.as_ref().is_none_or(|(_, b)| scan.first_seq > b.first_seq)
            {
                best = Some((area, scan));
            }
        }
        let Some((active, scan)) = best else {
            return Err(Error::new(ErrorKind::NotFound, "flashfs: no filesystem on this flash"));
        };
        let mut inner = Inner {
            flash,
            geo,
            table: scan.table.clone(),
            durable: scan.table,
            inodes: BTreeMap::new(),
            used: vec![false; geo.blocks as usize],
            durable_used: vec![false; geo.blocks as usize],
            cursor: scan.cursor % geo.blocks,
            next_id: 1,
            log: MetaLog {
                active,
                pos: scan.end,
                seq: scan.last_seq,
                must_compact: !scan.clean_tail,
            },
            locks: Vec::new(),
        };
        let files: Vec<FileRecord> = inner.durable.iter().cloned().collect();
        for f in files {
            let flushed = f.len.checked_sub(f.tail.len() as u64);
            let whole_units = |n: &u64| n.is_multiple_of(geo.write as u64);
            let Some(flushed) = flushed.filter(|n| f.tail.len() < geo.write && whole_units(n))
            else {
                return Err(corrupt("flashfs: file tail longer than a write unit"));
            };
            let blocks = inner.walk_chain(f.first_block, geo.blocks_for(flushed))?;
            for &b in &blocks {
                if inner.used[b as usize] {
                    return Err(corrupt("flashfs: two files share a block"));
                }
                inner.used[b as usize] = true;
            }
            inner.next_id = inner.next_id.max(f.id.saturating_add(1));
            let inode = Inode { blocks, flushed, buf: f.tail.to_vec(), handles: 0, linked: true };
            inner.inodes.insert(f.id, inode);
        }
        inner.durable_used.clone_from(&inner.used);
        Ok(FlashFs { inner: Arc::new(Mutex::new(inner)) })
    }

    /// Mounts the flash's filesystem, or formats it if it holds none.
    pub fn mount_or_format(flash: F) -> Result<Self>
    where
        F: Clone,
    {
        match Self::mount(flash.clone()) {
            Err(e) if e.kind() == ErrorKind::NotFound => Self::format(flash),
            other => other,
        }
    }

    /// Data blocks in total and free (neither held by this session nor by the durable table).
    pub fn blocks(&self) -> (u32, u32) {
        let inner = self.inner.lock();
        let free = inner.used.iter().zip(&inner.durable_used).filter(|(u, d)| !**u && !**d);
        (inner.geo.blocks, free.count() as u32)
    }

    /// File bytes each data block holds.
    pub fn block_payload(&self) -> u32 {
        self.inner.lock().geo.payload
    }
}

/// What replaying one metadata area found.
struct Scan {
    first_seq: u32,
    last_seq: u32,
    table: FileTable,
    cursor: u32,
    /// End of the last valid record.
    end: u32,
    /// Everything after `end` is erased.
    clean_tail: bool,
}

fn read_flash<F: NorFlash>(flash: &mut F, geo: &Geometry, addr: u32, out: &mut [u8]) -> Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let rs = geo.read as u32;
    if addr.is_multiple_of(rs) && out.len().is_multiple_of(geo.read) {
        return flash.read(addr, out).map_err(|e| flash_err(e, "flashfs: read failed"));
    }
    let start = addr / rs * rs;
    let end = meta::round_up(addr as usize + out.len(), geo.read);
    let mut bounce = vec![0u8; end - start as usize];
    flash.read(start, &mut bounce).map_err(|e| flash_err(e, "flashfs: read failed"))?;
    let skip = (addr - start) as usize;
    out.copy_from_slice(&bounce[skip..skip + out.len()]);
    Ok(())
}

fn scan_area<F: NorFlash>(flash: &mut F, geo: &Geometry, area: usize) -> Result<Option<Scan>> {
    let base = geo.area_addr(area);
    let mut pos = 0u32;
    let mut table = FileTable::new();
    let mut first_seq = None;
    let mut last_seq = 0u32;
    let mut cursor = 0;
    loop {
        let room = (geo.area - pos) as usize;
        if room < meta::HEADER_LEN + meta::CRC_LEN {
            break;
        }
        let mut head = [0u8; meta::HEADER_LEN];
        read_flash(flash, geo, base + pos, &mut head)?;
        let (magic, _, payload_len, _) = meta::header(&head);
        // Checked: a garbage length must not overflow a 32-bit usize.
        let total = payload_len.checked_add(meta::HEADER_LEN + meta::CRC_LEN);
        let Some(total) = total.filter(|&t| t <= room) else { break };
        if magic != meta::MAGIC {
            break;
        }
        let mut bytes = vec![0u8; total];
        read_flash(flash, geo, base + pos, &mut bytes)?;
        let Some(record) = meta::decode(&bytes) else { break };
        let seq = record.seq;
        let in_order = match first_seq {
            None => record.kind == KIND_SNAPSHOT,
            Some(_) => record.kind == KIND_DELTA && seq == last_seq.wrapping_add(1),
        };
        if !in_order || !meta::apply(&mut table, &record) {
            break;
        }
        first_seq.get_or_insert(seq);
        last_seq = seq;
        cursor = record.alloc_cursor;
        pos += meta::round_up(total, geo.write) as u32;
    }
    let Some(first_seq) = first_seq else { return Ok(None) };
    let mut clean_tail = true;
    let mut chunk = [0u8; 64];
    let mut at = pos;
    while at < geo.area && clean_tail {
        let n = chunk.len().min((geo.area - at) as usize);
        read_flash(flash, geo, base + at, &mut chunk[..n])?;
        clean_tail = chunk[..n].iter().all(|&b| b == 0xFF);
        at += n as u32;
    }
    Ok(Some(Scan { first_seq, last_seq, table, cursor, end: pos, clean_tail }))
}

impl<F: NorFlash> Inner<F> {
    fn walk_chain(&mut self, first: u32, count: usize) -> Result<Vec<u32>> {
        let mut blocks = Vec::with_capacity(count);
        let mut block = first;
        for i in 0..count {
            if block >= self.geo.blocks || blocks.contains(&block) {
                return Err(corrupt("flashfs: broken block chain"));
            }
            blocks.push(block);
            if i + 1 < count {
                let mut slot = [0u8; SLOT_BYTES];
                let at = self.geo.block_addr(block) + self.geo.payload;
                read_flash(&mut self.flash, &self.geo, at, &mut slot)?;
                let next = u32::from_le_bytes([slot[0], slot[1], slot[2], slot[3]]);
                let check = u32::from_le_bytes([slot[4], slot[5], slot[6], slot[7]]);
                if next != !check {
                    return Err(corrupt("flashfs: broken block chain"));
                }
                block = next;
            }
        }
        Ok(blocks)
    }

    /// Takes the next free block at or after the cursor and erases it.
    fn alloc_block(&mut self) -> Result<u32> {
        let n = self.geo.blocks;
        for k in 0..n {
            let b = (self.cursor + k) % n;
            if !self.used[b as usize] && !self.durable_used[b as usize] {
                let at = self.geo.block_addr(b);
                self.flash
                    .erase(at, at + self.geo.erase)
                    .map_err(|e| flash_err(e, "flashfs: erase failed"))?;
                self.used[b as usize] = true;
                self.cursor = (b + 1) % n;
                return Ok(b);
            }
        }
        Err(Error::new(ErrorKind::NoSpace, "flashfs: no free block"))
    }

    /// Writes every whole write unit of the inode's buffer to flash.
    fn flush_inode(&mut self, id: u32) -> Result<()> {
        let Some(mut inode) = self.inodes.remove(&id) else {
            return Err(corrupt("flashfs: file vanished"));
        };
        let result = self.flush_units(&mut inode);
        self.inodes.insert(id, inode);
        result
    }

    fn flush_units(&mut self, inode: &mut Inode) -> Result<()> {
        let whole = inode.buf.len() / self.geo.write * self.geo.write;
        let payload = u64::from(self.geo.payload);
        let mut done = 0;
        let result = (|| {
            while done < whole {
                let pos = inode.flushed + done as u64;
                let index = (pos / payload) as usize;
                let offset = (pos % payload) as u32;
                if index == inode.blocks.len() {
                    let block = self.alloc_block()?;
                    if let Some(&prev) = inode.blocks.last() {
                        self.write_slot(prev, block)?;
                    }
                    inode.blocks.push(block);
                }
                let n = (whole - done).min((self.geo.payload - offset) as usize);
                let at = self.geo.block_addr(inode.blocks[index]) + offset;
                self.flash
                    .write(at, &inode.buf[done..done + n])
                    .map_err(|e| flash_err(e, "flashfs: data write failed"))?;
                done += n;
            }
            Ok(())
        })();
        inode.buf.drain(..done);
        inode.flushed += done as u64;
        result
    }

    fn write_slot(&mut self, block: u32, next: u32) -> Result<()> {
        let mut slot = [0xFFu8; MAX_WRITE_SIZE];
        slot[..4].copy_from_slice(&next.to_le_bytes());
        slot[4..8].copy_from_slice(&(!next).to_le_bytes());
        let len = meta::round_up(SLOT_BYTES, self.geo.write);
        let at = self.geo.block_addr(block) + self.geo.payload;
        self.flash.write(at, &slot[..len]).map_err(|e| flash_err(e, "flashfs: slot write failed"))
    }

    /// Writes a record with every table change since the last one (or a snapshot into the
    /// other area when the active one is full or torn), then makes it the durable table.
    fn commit(&mut self) -> Result<()> {
        let upserts: Vec<&FileRecord> =
            self.table.iter().filter(|f| !self.durable.iter().any(|d| d == *f)).collect();
        let removes: Vec<u32> = self
            .durable
            .iter()
            .filter(|d| !self.table.iter().any(|f| f.id == d.id))
            .map(|d| d.id)
            .collect();
        if upserts.is_empty() && removes.is_empty() && !self.log.must_compact {
            return Ok(());
        }
        let seq = self.log.seq.wrapping_add(1);
        let delta = meta::encode(seq, KIND_DELTA, self.cursor, &upserts, &removes, self.geo.write);
        if !self.log.must_compact && self.log.pos as usize + delta.len() <= self.geo.area as usize {
            let at = self.geo.area_addr(self.log.active) + self.log.pos;
            if let Err(e) = self.flash.write(at, &delta) {
                self.log.must_compact = true;
                return Err(flash_err(e, "flashfs: metadata write failed"));
            }
            self.log.pos += delta.len() as u32;
        } else {
            let all: Vec<&FileRecord> = self.table.iter().collect();
            let snap = meta::encode(seq, KIND_SNAPSHOT, self.cursor, &all, &[], self.geo.write);
            let other = 1 - self.log.active;
            let at = self.geo.area_addr(other);
            self.flash
                .erase(at, at + self.geo.area)
                .map_err(|e| flash_err(e, "flashfs: metadata erase failed"))?;
            self.flash.write(at, &snap).map_err(|e| flash_err(e, "flashfs: snapshot failed"))?;
            self.log = MetaLog { active: other, pos: snap.len() as u32, seq, must_compact: false };
        }
        self.log.seq = seq;
        self.durable = self.table.clone();
        self.durable_used.fill(false);
        for f in &self.durable {
            if let Some(inode) = self.inodes.get(&f.id) {
                let n = self.geo.blocks_for(f.len - f.tail.len() as u64);
                for &b in inode.blocks.iter().take(n) {
                    self.durable_used[b as usize] = true;
                }
            }
        }
        Ok(())
    }

    fn sync_file(&mut self, id: u32) -> Result<()> {
        self.flush_inode(id)?;
        let Some(inode) = self.inodes.get(&id) else {
            return Err(corrupt("flashfs: file vanished"));
        };
        let (len, first) = (inode.len(), inode.blocks.first().copied().unwrap_or(NO_BLOCK));
        let tail = heapless::Vec::from_slice(&inode.buf)
            .map_err(|_| corrupt("flashfs: tail longer than a write unit"))?;
        if let Some(f) = self.table.iter_mut().find(|f| f.id == id) {
            f.len = len;
            f.first_block = first;
            f.tail = tail;
        }
        // A removed file has no record to update: its bytes are flushed for open readers.
        self.commit()
    }

    fn id_of(&self, name: &str) -> Result<u32> {
        self.table
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.id)
            .ok_or(Error::new(ErrorKind::NotFound, "flashfs: no such file"))
    }

    fn unlink(&mut self, id: u32) {
        if let Some(inode) = self.inodes.get_mut(&id) {
            inode.linked = false;
        }
        self.table.retain(|f| f.id != id);
        self.drop_if_unused(id);
    }

    /// Forgets an inode no name and no handle reaches, returning its blocks to this session's
    /// pool (the durable table may still hold them until the next record).
    fn drop_if_unused(&mut self, id: u32) {
        if self.inodes.get(&id).is_some_and(|i| i.handles == 0 && !i.linked)
            && let Some(inode) = self.inodes.remove(&id)
        {
            for b in inode.blocks {
                self.used[b as usize] = false;
            }
        }
    }

    fn release(&mut self, id: u32) {
        if let Some(inode) = self.inodes.get_mut(&id) {
            inode.handles = inode.handles.saturating_sub(1);
        }
        self.drop_if_unused(id);
    }

    fn read_at(&mut self, id: u32, offset: u64, out: &mut [u8]) -> Result<()> {
        let Some(inode) = self.inodes.get(&id) else {
            return Err(corrupt("flashfs: file vanished"));
        };
        let end = offset
            .checked_add(out.len() as u64)
            .filter(|&end| end <= inode.len())
            .ok_or(Error::new(ErrorKind::UnexpectedEof, "flashfs: read past end"))?;
        let payload = u64::from(self.geo.payload);
        let mut pos = offset;
        while pos < end.min(inode.flushed) {
            let block = inode.blocks[(pos / payload) as usize];
            let within = pos % payload;
            let n = (end.min(inode.flushed) - pos).min(payload - within) as usize;
            let at = self.geo.block_addr(block) + within as u32;
            let dst = (pos - offset) as usize;
            read_flash(&mut self.flash, &self.geo, at, &mut out[dst..dst + n])?;
            pos += n as u64;
        }
        if pos < end {
            let from = (pos - inode.flushed) as usize;
            let dst = (pos - offset) as usize;
            out[dst..].copy_from_slice(&inode.buf[from..from + (end - pos) as usize]);
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<heapless::String<MAX_NAME>> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::new(ErrorKind::Unsupported, "flashfs: bad file name"));
    }
    heapless::String::try_from(name)
        .map_err(|_| Error::new(ErrorKind::Unsupported, "flashfs: file name too long"))
}

/// A file open for reading.
#[derive(Debug)]
pub struct FlashFile<F: NorFlash> {
    inner: Arc<Mutex<Inner<F>>>,
    id: u32,
}

impl<F: NorFlash> Drop for FlashFile<F> {
    fn drop(&mut self) {
        self.inner.lock().release(self.id);
    }
}

impl<F: NorFlash> RandomRead for FlashFile<F> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.lock().read_at(self.id, offset, buf)
    }

    fn len(&self) -> Result<u64> {
        let inner = self.inner.lock();
        Ok(inner.inodes.get(&self.id).map_or(0, Inode::len))
    }
}

/// A file being written. Dropping it flushes whole write units (errors ignored: nothing was
/// promised durable without a sync).
#[derive(Debug)]
pub struct FlashWriter<F: NorFlash> {
    inner: Arc<Mutex<Inner<F>>>,
    id: u32,
    len: u64,
}

impl<F: NorFlash> Drop for FlashWriter<F> {
    fn drop(&mut self) {
        let mut inner = self.inner.lock();
        let _ = inner.flush_inode(self.id);
        inner.release(self.id);
    }
}

impl<F: NorFlash> AppendWrite for FlashWriter<F> {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let mut inner = self.inner.lock();
        let payload = inner.geo.payload as usize;
        let Some(inode) = inner.inodes.get_mut(&self.id) else {
            return Err(corrupt("flashfs: file vanished"));
        };
        inode.buf.extend_from_slice(data);
        self.len += data.len() as u64;
        // Keep at most about a block in RAM.
        if inode.buf.len() >= payload {
            inner.flush_inode(self.id)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.inner.lock().flush_inode(self.id)
    }

    fn sync(&mut self, _mode: SyncMode) -> Result<()> {
        self.inner.lock().sync_file(self.id)
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// A held lock; dropping it releases the name.
#[derive(Debug)]
pub struct FlashLock<F> {
    inner: Arc<Mutex<Inner<F>>>,
    name: String,
}

impl<F> Drop for FlashLock<F> {
    fn drop(&mut self) {
        self.inner.lock().locks.retain(|n| *n != self.name);
    }
}

impl<F: NorFlash> Vfs for FlashFs<F> {
    type Read = FlashFile<F>;
    type Write = FlashWriter<F>;
    type Lock = FlashLock<F>;

    fn caps(&self) -> Caps {
        Caps::new(false, true, self.inner.lock().geo.write as u32)
    }

    fn create(&self, name: &str, _kind: FileKind) -> Result<Self::Write> {
        let name = check_name(name)?;
        let mut inner = self.inner.lock();
        if inner.table.iter().any(|f| f.name == name) {
            return Err(Error::new(ErrorKind::AlreadyExists, "flashfs: file exists"));
        }
        let id = inner.next_id;
        let record =
            FileRecord { id, name, first_block: NO_BLOCK, len: 0, tail: Default::default() };
        if inner.table.push(record).is_err() {
            return Err(Error::new(ErrorKind::NoSpace, "flashfs: file table full"));
        }
        inner.next_id += 1;
        inner.inodes.insert(id, Inode { handles: 1, linked: true, ..Inode::default() });
        Ok(FlashWriter { inner: Arc::clone(&self.inner), id, len: 0 })
    }

    fn open(&self, name: &str, _kind: FileKind) -> Result<Self::Read> {
        let mut inner = self.inner.lock();
        let id = inner.id_of(name)?;
        if let Some(inode) = inner.inodes.get_mut(&id) {
            inode.handles += 1;
        }
        Ok(FlashFile { inner: Arc::clone(&self.inner), id })
    }

    fn remove(&self, name: &str) -> Result<()> {
        let mut inner = self.inner.lock();
        let id = inner.id_of(name)?;
        inner.unlink(id);
        Ok(())
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let new_name = check_name(to)?;
        let mut inner = self.inner.lock();
        let id = inner.id_of(from)?;
        if from == to {
            return Ok(());
        }
        if let Ok(old) = inner.id_of(to) {
            inner.unlink(old);
        }
        if let Some(f) = inner.table.iter_mut().find(|f| f.id == id) {
            f.name = new_name;
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<()> {
        self.inner.lock().commit()
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.inner.lock().table.iter().map(|f| f.name.to_string()).collect())
    }

    fn size(&self, name: &str) -> Result<u64> {
        let inner = self.inner.lock();
        let id = inner.id_of(name)?;
        Ok(inner.inodes.get(&id).map_or(0, Inode::len))
    }

    fn lock(&self, name: &str) -> Result<Self::Lock> {
        let mut inner = self.inner.lock();
        if inner.locks.iter().any(|n| n == name) {
            return Err(Error::new(ErrorKind::Locked, "flashfs: lock held"));
        }
        inner.locks.push(name.to_string());
        Ok(FlashLock { inner: Arc::clone(&self.inner), name: name.to_string() })
    }
}

//! Writing a table: entries stream into data blocks; index entries, filter hashes and
//! properties accumulate until [`TableBuilder::finish`].

use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;

use strata_vfs::{AppendWrite, SyncMode};

use super::block::BlockBuilder;
use super::bloom::FilterBuilder;
use super::format::{
    self, BlockHandle, Compression, FORMAT_VERSION, Footer, IndexKind, KeyRef, block_checksum,
};
use super::{TableOptions, TableProps};
use crate::error::{Error, IoOp, Result};
use crate::key::{InternalKey, MAX_SEQ, ValueKind};
use crate::options::{MAX_KEY_SIZE, MAX_VALUE_SIZE};

/// Index blocks are searched by binary search over every entry, so every entry is a restart
/// point (no prefix compression).
const INDEX_RESTART_INTERVAL: usize = 1;

/// The index is partitioned once it would exceed this many times `block_size`.
const PARTITION_FACTOR: usize = 4;

/// Running totals for the properties block.
#[derive(Debug, Default)]
struct Totals {
    entries: u64,
    deletions: u64,
    smallest: Option<InternalKey>,
    min_seq: u64,
    max_seq: u64,
    min_ts: u64,
    max_ts: u64,
    raw_key_bytes: u64,
    raw_value_bytes: u64,
    data_blocks: u64,
    index_bytes: u64,
    index_partitions: u64,
}

/// Writes one table file.
///
/// Keys must arrive in strictly increasing internal-key order. Nothing is durable until
/// [`finish`](Self::finish) returns `Ok`; after any I/O error the builder is failed (every later
/// call returns [`Error::Poisoned`]) and the caller removes the file.
#[derive(Debug)]
pub struct TableBuilder<W: AppendWrite> {
    file: W,
    name: String,
    opts: TableOptions,
    /// Bytes written so far: the offset of the next block.
    offset: u64,
    data: BlockBuilder,
    /// Encoded last key added (empty before the first).
    last_key: Vec<u8>,
    largest: Option<InternalKey>,
    filter: FilterBuilder,
    /// Index entries not yet written: `(last key of a data block, its handle)`.
    pending: Vec<(Vec<u8>, BlockHandle)>,
    pending_bytes: usize,
    partitioned: bool,
    /// Top-level entries: `(last key of a partition, its handle)`.
    top: Vec<(Vec<u8>, BlockHandle)>,
    totals: Totals,
    scratch: Vec<u8>,
    failed: bool,
}

impl<W: AppendWrite> TableBuilder<W> {
    /// A builder writing to `file` (empty, freshly created); `name` is used in errors. Invalid
    /// options are reported by the first [`add`](Self::add) or [`finish`](Self::finish).
    pub fn new(file: W, name: String, opts: TableOptions) -> Self {
        TableBuilder {
            offset: file.len(),
            file,
            name,
            data: BlockBuilder::new(opts.restart_interval),
            filter: FilterBuilder::new(opts.bloom_bits_per_key),
            opts,
            last_key: Vec::new(),
            largest: None,
            pending: Vec::new(),
            pending_bytes: 0,
            partitioned: false,
            top: Vec::new(),
            totals: Totals::default(),
            scratch: Vec::new(),
            failed: false,
        }
    }

    fn check(&self) -> Result<()> {
        if self.failed {
            return Err(Error::Poisoned);
        }
        self.opts.validate()
    }

    /// Adds one entry. Returns `InvalidArgument` (and adds nothing) if `key` is not greater than
    /// the previous key or its sequence number exceeds [`MAX_SEQ`]; `KeyTooLarge` /
    /// `ValueTooLarge` past the engine's limits.
    pub fn add(&mut self, key: &InternalKey, value: &[u8]) -> Result<()> {
        self.check()?;
        if key.user_key.len() > MAX_KEY_SIZE {
            return Err(Error::KeyTooLarge { len: key.user_key.len(), max: MAX_KEY_SIZE });
        }
        if value.len() > MAX_VALUE_SIZE {
            return Err(Error::ValueTooLarge { len: value.len(), max: MAX_VALUE_SIZE });
        }
        if key.seq > MAX_SEQ {
            return Err(Error::invalid("table key", "sequence number exceeds 2^56 - 1"));
        }
        let new_user_key = if self.totals.entries == 0 {
            true
        } else {
            let last = KeyRef::parse(&self.last_key).map_err(|_| Error::Poisoned)?;
            if last.cmp_key(&KeyRef::of(key)) != Ordering::Less {
                return Err(Error::invalid(
                    "table key",
                    "keys must be added in strictly increasing internal-key order",
                ));
            }
            last.user_key != key.user_key.as_ref()
        };
        if new_user_key {
            self.filter.add(&key.user_key);
        }
        self.last_key.clear();
        format::encode_key(key, &mut self.last_key);
        self.data.add(&self.last_key, value);
        self.note(key, value.len());
        if self.data.estimated_size() >= self.opts.block_size {
            self.flush_data_block()?;
        }
        Ok(())
    }

    fn note(&mut self, key: &InternalKey, value_len: usize) {
        let t = &mut self.totals;
        if t.entries == 0 {
            t.smallest = Some(key.clone());
            (t.min_seq, t.max_seq, t.min_ts, t.max_ts) = (key.seq, key.seq, key.ts, key.ts);
        }
        t.entries += 1;
        t.deletions += u64::from(key.kind == ValueKind::Delete);
        t.min_seq = t.min_seq.min(key.seq);
        t.max_seq = t.max_seq.max(key.seq);
        t.min_ts = t.min_ts.min(key.ts);
        t.max_ts = t.max_ts.max(key.ts);
        t.raw_key_bytes += self.last_key.len() as u64;
        t.raw_value_bytes += value_len as u64;
        self.largest = Some(key.clone());
    }

    /// Approximate size of the file if it were finished now.
    pub fn estimated_size(&self) -> u64 {
        self.offset
            + self.data.estimated_size() as u64
            + self.pending_bytes as u64
            + self.filter.estimated_size() as u64
            + 256
    }

    /// Entries added so far.
    pub fn entries(&self) -> u64 {
        self.totals.entries
    }

    /// Writes `payload` as a block with its trailer, compressed if allowed and worthwhile.
    fn write_block(&mut self, payload: &[u8], compress: bool) -> Result<BlockHandle> {
        let mut out = core::mem::take(&mut self.scratch);
        let ty = if compress && format::compress_into(payload, &mut out) {
            Compression::Lz4
        } else {
            out.clear();
            out.extend_from_slice(payload);
            Compression::None
        };
        let handle = BlockHandle { offset: self.offset, size: out.len() as u64 };
        let crc = block_checksum(&out, ty as u8);
        out.push(ty as u8);
        out.extend_from_slice(&crc.to_le_bytes());
        let r = self.file.append(&out);
        self.scratch = out;
        if let Err(e) = r {
            self.failed = true;
            return Err(Error::io(IoOp::Append, &self.name, e));
        }
        self.offset += handle.size + super::BLOCK_TRAILER_LEN as u64;
        Ok(handle)
    }

    fn flush_data_block(&mut self) -> Result<()> {
        if self.data.is_empty() {
            return Ok(());
        }
        let raw = self.data.finish();
        let handle = self.write_block(&raw, self.opts.compression)?;
        self.totals.data_blocks += 1;
        self.scratch.clear();
        handle.encode_to(&mut self.scratch);
        self.pending_bytes += self.last_key.len() + self.scratch.len() + 3 + 4;
        self.pending.push((self.last_key.clone(), handle));
        if !self.partitioned && self.pending_bytes > PARTITION_FACTOR * self.opts.block_size {
            self.partitioned = true;
        }
        if self.partitioned && self.pending_bytes >= self.opts.block_size {
            self.write_partitions(false)?;
        }
        Ok(())
    }

    /// Writes pending index entries as partitions of about `block_size` each; the remainder
    /// stays pending unless `all`.
    fn write_partitions(&mut self, all: bool) -> Result<()> {
        let pending = core::mem::take(&mut self.pending);
        let mut block = BlockBuilder::new(INDEX_RESTART_INTERVAL);
        let mut cut = 0;
        let mut value = Vec::new();
        for (i, (key, handle)) in pending.iter().enumerate() {
            value.clear();
            handle.encode_to(&mut value);
            block.add(key, &value);
            let last = i + 1 == pending.len();
            if block.estimated_size() >= self.opts.block_size || (all && last) {
                let raw = block.finish();
                let h = self.write_block(&raw, false)?;
                self.totals.index_bytes += h.size + super::BLOCK_TRAILER_LEN as u64;
                self.totals.index_partitions += 1;
                self.top.push((key.clone(), h));
                cut = i + 1;
            }
        }
        self.pending = pending.get(cut..).unwrap_or_default().to_vec();
        self.pending_bytes = self
            .pending
            .iter()
            .map(|(k, h)| {
                value.clear();
                h.encode_to(&mut value);
                k.len() + value.len() + 3 + 4
            })
            .sum();
        Ok(())
    }

    /// Encodes index entries as one block.
    fn index_block(entries: &[(Vec<u8>, BlockHandle)]) -> Vec<u8> {
        let mut block = BlockBuilder::new(INDEX_RESTART_INTERVAL);
        let mut value = Vec::new();
        for (key, handle) in entries {
            value.clear();
            handle.encode_to(&mut value);
            block.add(key, &value);
        }
        block.finish()
    }

    /// Writes the last data block, the last index partition (if partitioned), the filter, the
    /// properties, the index (or its top level) and the footer, then
    /// syncs the file ([`SyncMode::Data`]). A table must hold at least one entry
    /// (`InvalidArgument` otherwise). The caller syncs the directory.
    pub fn finish(mut self) -> Result<TableProps> {
        self.check()?;
        let (Some(smallest), Some(largest)) = (self.totals.smallest.take(), self.largest.take())
        else {
            return Err(Error::invalid("table", "must hold at least one entry"));
        };
        self.flush_data_block()?;
        // The last index partition goes with the data, before the filter: the blocks a reader
        // loads at open (filter, properties, top-level index) and the footer then form one
        // contiguous tail (docs/format/sstable.md).
        let (index_kind, top) = if self.partitioned {
            self.write_partitions(true)?;
            (IndexKind::Partitioned, Self::index_block(&self.top))
        } else {
            (IndexKind::Single, Self::index_block(&self.pending))
        };
        let filter_payload = self.filter.finish();
        let filter = self.write_block(&filter_payload, false)?;
        let t = &self.totals;
        let trailer = super::BLOCK_TRAILER_LEN as u64;
        let mut props = TableProps {
            entries: t.entries,
            deletions: t.deletions,
            smallest,
            largest,
            min_seq: t.min_seq,
            max_seq: t.max_seq,
            min_ts: t.min_ts,
            max_ts: t.max_ts,
            raw_key_bytes: t.raw_key_bytes,
            raw_value_bytes: t.raw_value_bytes,
            data_blocks: t.data_blocks,
            file_size: 0,
            index_size: t.index_bytes + top.len() as u64 + trailer,
            index_partitions: t.index_partitions,
            filter_size: filter.size + trailer,
            compression: self.opts.compression,
            format_version: FORMAT_VERSION,
        };
        let mut encoded = Vec::new();
        format::encode_props(&props, &mut encoded);
        let props_handle = self.write_block(&encoded, false)?;
        let index = self.write_block(&top, false)?;
        let footer = Footer { index, filter, props: props_handle, index_kind }.encode();
        if let Err(e) = self.file.append(&footer) {
            self.failed = true;
            return Err(Error::io(IoOp::Append, &self.name, e));
        }
        self.offset += footer.len() as u64;
        if let Err(e) = self.file.sync(SyncMode::Data) {
            self.failed = true;
            return Err(Error::io(IoOp::Sync, &self.name, e));
        }
        props.file_size = self.offset;
        Ok(props)
    }
}

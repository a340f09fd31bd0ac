//! Reading a table: open (footer, properties, filter, top-level index), block loading through
//! the cache, and point lookups.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;

use bytes::Bytes;
use strata_vfs::RandomRead;
use strata_vfs::sync::RwLock;

use super::TableProps;
use super::block::{Block, BlockIter};
use super::bloom::Filter;
use super::format::{self, BlockHandle, FOOTER_LEN, Footer, IndexKind, KeyRef};
use crate::cache::BlockCache;
use crate::error::{CorruptionKind, Error, IoOp, Result};
use crate::key::{MAX_SEQ, SeqNo, Timestamp, ValueKind, user_keys_cmp, user_keys_equal};
use crate::memtable::Lookup;

/// One index entry, decoded: the last key of the block (or partition) it points at.
#[derive(Debug, Clone)]
pub(super) struct IndexEntry {
    pub user_key: Bytes,
    pub ts: u64,
    pub packed: u64,
    pub handle: BlockHandle,
}

impl IndexEntry {
    pub fn key(&self) -> KeyRef<'_> {
        KeyRef { user_key: &self.user_key, ts: self.ts, packed: self.packed }
    }
}

/// Decodes every entry of an index block. The user keys are copied into one shared buffer
/// (one allocation per block, not one per entry).
pub(super) fn decode_index(block: Arc<Block>) -> Result<Vec<IndexEntry>, CorruptionKind> {
    let mut it = BlockIter::new(block);
    let mut arena = Vec::new();
    let mut staged = Vec::new();
    while it.advance()? {
        let k = KeyRef::parse(it.key())?;
        let handle = BlockHandle::decode_exact(it.value_slice())?;
        let at = arena.len();
        arena.extend_from_slice(k.user_key);
        staged.push((at..arena.len(), k.ts, k.packed, handle));
    }
    let keys = Bytes::from(arena);
    Ok(staged
        .into_iter()
        .map(|(range, ts, packed, handle)| IndexEntry {
            user_key: keys.slice(range),
            ts,
            packed,
            handle,
        })
        .collect())
}

/// First entry whose key is `>= target` (`entries.len()` if none).
pub(super) fn lower_bound(entries: &[IndexEntry], target: &KeyRef<'_>) -> usize {
    entries.partition_point(|e| e.key().cmp_key(target) == Ordering::Less)
}

/// An open table. Reads take `&self`; the table is `Send + Sync` when `R` is.
pub struct Table<R: RandomRead> {
    file: R,
    name: String,
    file_no: u64,
    cache: Option<Arc<BlockCache>>,
    /// End of the block area (start of the footer): every handle must end at or before it.
    data_end: u64,
    props: TableProps,
    filter: Filter,
    index_kind: IndexKind,
    /// The single-level index (data block handles) or the top level (partition handles).
    top: Arc<[IndexEntry]>,
    /// Partitioned index: each partition once decoded, kept so that point lookups and cursors
    /// binary-search decoded entries instead of decoding the partition block again each time.
    /// Filled lazily; no lock is held while a partition is read.
    decoded_parts: RwLock<Vec<Option<Arc<[IndexEntry]>>>>,
}

impl<R: RandomRead> core::fmt::Debug for Table<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("file_no", &self.file_no)
            .field("entries", &self.props.entries)
            .field("index_kind", &self.index_kind)
            .finish()
    }
}

impl<R: RandomRead> Table<R> {
    /// Reads and checks the footer, properties, filter and (top-level) index. `name` appears
    /// in errors; `file_no` keys this table's blocks in `cache`.
    pub fn open(
        file: R,
        name: String,
        file_no: u64,
        cache: Option<Arc<BlockCache>>,
    ) -> Result<Self> {
        let file_size = file.len().map_err(|e| Error::io(IoOp::Size, &name, e))?;
        let data_end = file_size
            .checked_sub(FOOTER_LEN as u64)
            .ok_or_else(|| Error::corruption(&name, 0, CorruptionKind::Truncated))?;
        let mut buf = [0u8; FOOTER_LEN];
        file.read_exact_at(data_end, &mut buf).map_err(|e| Error::io(IoOp::Read, &name, e))?;
        let footer = Footer::decode(&buf).map_err(|k| Error::corruption(&name, data_end, k))?;
        let bad = |h: BlockHandle, k| Error::corruption(&name, h.offset, k);
        let props = read_block_at(&file, &name, data_end, footer.props)?;
        let props = format::decode_props(&props, file_size).map_err(|k| bad(footer.props, k))?;
        let filter = read_block_at(&file, &name, data_end, footer.filter)?;
        let filter = Filter::new(filter).map_err(|k| bad(footer.filter, k))?;
        let index = read_block_at(&file, &name, data_end, footer.index)?;
        let index = Block::new(index).map_err(|k| bad(footer.index, k))?;
        let top: Arc<[IndexEntry]> =
            decode_index(Arc::new(index)).map_err(|k| bad(footer.index, k))?.into();
        let parts = match footer.index_kind {
            IndexKind::Single => 0,
            IndexKind::Partitioned => top.len(),
        };
        Ok(Table {
            file,
            name,
            file_no,
            cache,
            data_end,
            props,
            filter,
            index_kind: footer.index_kind,
            top,
            decoded_parts: RwLock::new(alloc::vec![None; parts]),
        })
    }

    fn bad(&self, h: BlockHandle, kind: CorruptionKind) -> Error {
        Error::corruption(&self.name, h.offset, kind)
    }

    /// Reads, checks and decompresses the block at `h`, bypassing the cache.
    fn read_raw(&self, h: BlockHandle) -> Result<Bytes> {
        read_block_at(&self.file, &self.name, self.data_end, h)
    }

    /// The block at `h`, from the cache if there, else read and cached.
    pub(super) fn block(&self, h: BlockHandle) -> Result<Arc<Block>> {
        match self.cached(h, true) {
            Some(b) => Ok(b),
            None => self.read_block(h, true),
        }
    }

    /// Counts a block read from the file, for a read that fills the cache, in the cache's
    /// misses (a block read ahead, when it is used: its lookup was not counted).
    pub(super) fn count_miss(&self) {
        if let Some(c) = &self.cache {
            c.count_miss();
        }
    }

    /// The block at `h` if the cache has it; `touch` counts the lookup as a use (a read that
    /// fills the cache) rather than a peek (a pass that goes around it).
    pub(super) fn cached(&self, h: BlockHandle, touch: bool) -> Option<Arc<Block>> {
        let c = self.cache.as_ref()?;
        if touch { c.get(self.file_no, h.offset) } else { c.peek(self.file_no, h.offset) }
    }

    /// Reads the block at `h` from the file, and caches it when `fill_cache`.
    pub(super) fn read_block(&self, h: BlockHandle, fill_cache: bool) -> Result<Arc<Block>> {
        let block = Arc::new(Block::new(self.read_raw(h)?).map_err(|k| self.bad(h, k))?);
        self.offer(h, &block, fill_cache);
        Ok(block)
    }

    /// Whether the data block at `h`, read ahead by a sequential walk and used now, should be
    /// cached ([`BlockCache::admit_read_ahead`]).
    pub(super) fn admit_read_ahead(&self, h: BlockHandle) -> bool {
        self.cache.as_ref().is_some_and(|c| c.admit_read_ahead(self.file_no, h.offset))
    }

    /// Caches `block` (read from the file) when `fill_cache`.
    pub(super) fn offer(&self, h: BlockHandle, block: &Arc<Block>, fill_cache: bool) {
        if fill_cache && let Some(c) = &self.cache {
            c.insert(self.file_no, h.offset, Arc::clone(block), block.charge());
        }
    }

    /// The blocks at `handles`, which must lie back to back in the file, read with one call
    /// (a sequential scan's readahead): each is checked and unpacked as a single read would,
    /// or taken from the cache when it is there (looked up without counting or touching),
    /// with `true` for the blocks read from the file. The first block, needed now, is cached
    /// when `fill_cache`; the others are not, so blocks read ahead that the scan never
    /// reaches do not push others out of the cache (the caller offers each it uses, if
    /// [`admit_read_ahead`](Self::admit_read_ahead) says so).
    /// `buf` is scratch for the stored bytes, kept by the caller so that its pages are reused.
    ///
    /// Only the first block is needed now: an error in it is returned, while a damaged block
    /// after it ends the run there (the walk reads it again, alone, if it gets that far, and
    /// reports the damage then), and a failed read of the whole run falls back to reading the
    /// first block alone.
    pub(super) fn read_run(
        &self,
        handles: &[BlockHandle],
        fill_cache: bool,
        buf: &mut Vec<u8>,
    ) -> Result<Vec<(BlockHandle, Arc<Block>, bool)>> {
        let Some(&first) = handles.first() else { return Ok(Vec::new()) };
        if self.read_span(handles, buf).is_none() {
            return Ok(alloc::vec![(first, self.read_block(first, fill_cache)?, true)]);
        };
        let mut out = Vec::with_capacity(handles.len());
        for &h in handles {
            if let Some(b) = self.cached(h, false) {
                out.push((h, b, false));
                continue;
            }
            let offset_in = |at: u64| usize::try_from(at.checked_sub(first.offset)?).ok();
            let unpacked = offset_in(h.offset)
                .zip(h.end().and_then(offset_in))
                .and_then(|(from, to)| buf.get(from..to))
                .ok_or(CorruptionKind::Truncated)
                .and_then(format::unwrap_block_in)
                .and_then(Block::new);
            match unpacked {
                Ok(block) => {
                    let block = Arc::new(block);
                    if out.is_empty() {
                        self.offer(h, &block, fill_cache);
                    }
                    out.push((h, block, true));
                }
                Err(k) if out.is_empty() => return Err(self.bad(h, k)),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// Reads the stored bytes from the first handle's start to the last one's end into `buf`;
    /// `None` if the span is not inside the block area or cannot be read.
    fn read_span(&self, handles: &[BlockHandle], buf: &mut Vec<u8>) -> Option<()> {
        let (first, last) = (handles.first()?, handles.last()?);
        let end = last.end().filter(|&e| e <= self.data_end && e >= first.offset)?;
        // Only bytes the buffer never held are zeroed: the read overwrites all of them (and
        // on failure the buffer is not used), so re-zeroing a reused buffer on every readahead
        // was 4% of a cold full scan's instructions.
        let len = usize::try_from(end - first.offset).ok()?;
        buf.truncate(len);
        buf.resize(len, 0);
        self.file.read_exact_at(first.offset, buf).ok()
    }

    /// The block at `h`: from the cache if there, else read without caching it.
    pub(super) fn block_uncached(&self, h: BlockHandle) -> Result<Arc<Block>> {
        match self.cached(h, false) {
            Some(b) => Ok(b),
            None => self.read_block(h, false),
        }
    }

    /// The decoded entries of index partition `p` (for a single-level index, `p` must be 0 and
    /// the answer is the index itself).
    pub(super) fn partition(&self, p: usize) -> Result<Arc<[IndexEntry]>> {
        match self.index_kind {
            IndexKind::Single => Ok(Arc::clone(&self.top)),
            IndexKind::Partitioned => {
                let Some(e) = self.top.get(p) else { return Ok(Arc::from(Vec::new())) };
                if let Some(Some(decoded)) = self.decoded_parts.read().get(p) {
                    return Ok(Arc::clone(decoded));
                }
                let block = self.block(e.handle)?;
                let decoded: Arc<[IndexEntry]> =
                    decode_index(block).map_err(|k| self.bad(e.handle, k))?.into();
                if let Some(slot) = self.decoded_parts.write().get_mut(p) {
                    *slot = Some(Arc::clone(&decoded));
                }
                Ok(decoded)
            }
        }
    }

    /// Number of index partitions (1 for a single-level index).
    pub(super) fn partition_count(&self) -> usize {
        match self.index_kind {
            IndexKind::Single => 1,
            IndexKind::Partitioned => self.top.len(),
        }
    }

    /// The top-level index entries.
    pub(super) fn top(&self) -> &[IndexEntry] {
        &self.top
    }

    /// How the index is organised.
    pub(super) fn index_kind(&self) -> IndexKind {
        self.index_kind
    }

    /// Wraps a decode error in the block at `h`.
    pub(super) fn corrupt(&self, h: BlockHandle, kind: CorruptionKind) -> Error {
        self.bad(h, kind)
    }

    /// The table's properties.
    pub fn props(&self) -> &TableProps {
        &self.props
    }

    /// The file name given at open.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file number given at open (the block cache key).
    pub fn file_no(&self) -> u64 {
        self.file_no
    }

    /// `false` only if the table certainly holds no version of `user_key` (bloom filter).
    pub fn may_contain(&self, user_key: &[u8]) -> bool {
        self.filter.may_contain(user_key)
    }

    /// The newest version of `user_key` with `seq <= snapshot` and, if `at_ts` is given,
    /// `ts <= at_ts`: the same answer as [`crate::memtable::Memtable::get`] would give for the
    /// same entries.
    pub fn get(
        &self,
        user_key: &[u8],
        snapshot: SeqNo,
        at_ts: Option<Timestamp>,
    ) -> Result<Lookup> {
        let outside = user_keys_cmp(user_key, &self.props.smallest.user_key).is_lt()
            || user_keys_cmp(user_key, &self.props.largest.user_key).is_gt();
        if outside || !self.may_contain(user_key) {
            return Ok(Lookup::Absent);
        }
        let target = KeyRef {
            user_key,
            ts: at_ts.unwrap_or(Timestamp::MAX),
            packed: format::pack(MAX_SEQ, ValueKind::FIRST),
        };
        let mut blocks = Handles::seek(self, target);
        let mut first = true;
        while let Some(h) = blocks.next(self)? {
            let mut it = BlockIter::new(self.block(h)?);
            let positioned = if first { it.seek(&target) } else { it.advance() };
            first = false;
            let mut more = positioned.map_err(|k| self.bad(h, k))?;
            while more {
                let k = KeyRef::parse(it.key()).map_err(|c| self.bad(h, c))?;
                if !user_keys_equal(k.user_key, user_key) {
                    return Ok(Lookup::Absent);
                }
                if k.seq() <= snapshot {
                    let (ts, seq) = (k.ts, k.seq());
                    return Ok(match k.kind().map_err(|c| self.bad(h, c))? {
                        ValueKind::Set => Lookup::Value { ts, seq, value: owned_value(&it) },
                        ValueKind::Pointer => {
                            Lookup::Pointer { ts, seq, pointer: owned_value(&it) }
                        }
                        ValueKind::Delete => Lookup::Deleted { ts, seq },
                    });
                }
                more = it.advance().map_err(|c| self.bad(h, c))?;
            }
        }
        Ok(Lookup::Absent)
    }
}

/// Values of at most this many bytes are copied out of their block by a point read rather than
/// shared with it: sharing takes a reference on the block's buffer, an atomic increment (and
/// later decrement) of a word that is rarely in the CPU's caches, which costs a point read more
/// than copying a small value; and a small copied value does not keep its whole block alive.
pub(super) const COPY_VALUE_MAX: usize = 512;

/// The value (or value pointer) at `it`'s entry, as a point read returns it (see
/// [`COPY_VALUE_MAX`]).
fn owned_value(it: &BlockIter) -> Bytes {
    let value = it.value_slice();
    if value.len() <= COPY_VALUE_MAX { Bytes::copy_from_slice(value) } else { it.value() }
}

/// Reads the block at `h` (which must end by `data_end`), checks its trailer and returns its
/// uncompressed contents.
fn read_block_at<R: RandomRead>(
    file: &R,
    name: &str,
    data_end: u64,
    h: BlockHandle,
) -> Result<Bytes> {
    let bad = |k| Error::corruption(name, h.offset, k);
    let end = h.end().ok_or_else(|| bad(CorruptionKind::Truncated))?;
    if end > data_end {
        return Err(bad(CorruptionKind::Truncated));
    }
    let len = usize::try_from(end - h.offset).map_err(|_| bad(CorruptionKind::Truncated))?;
    let mut buf = alloc::vec![0u8; len];
    file.read_exact_at(h.offset, &mut buf).map_err(|e| Error::io(IoOp::Read, name, e))?;
    format::unwrap_block(buf).map_err(bad)
}

/// Data block handles in order, from the first block that can hold a target key: the walk a
/// point lookup needs when a key's versions span blocks (or partitions).
///
/// Partitions are searched in their encoded blocks, not through [`Table::partition`]'s decoded
/// copies: measured on a point-read workload, the decoded entries (a key pointer each) cost more
/// cache misses than the block's compact restart array, and were slower despite running fewer
/// instructions.
struct Handles<'a> {
    /// Next top-level entry to use.
    top: usize,
    /// Partitioned index: the current partition's iterator and handle.
    part: Option<(BlockIter, BlockHandle)>,
    /// The first partition entered is searched for `target`; later ones are read from the
    /// start.
    seek_first: bool,
    target: KeyRef<'a>,
}

impl<'a> Handles<'a> {
    fn seek<R: RandomRead>(t: &Table<R>, target: KeyRef<'a>) -> Handles<'a> {
        Handles { top: lower_bound(t.top(), &target), part: None, seek_first: true, target }
    }

    fn next<R: RandomRead>(&mut self, t: &Table<R>) -> Result<Option<BlockHandle>> {
        if t.index_kind() == IndexKind::Single {
            let h = t.top().get(self.top).map(|e| e.handle);
            self.top += 1;
            return Ok(h);
        }
        loop {
            if let Some((it, ph)) = &mut self.part {
                let ph = *ph;
                let more = if self.seek_first {
                    self.seek_first = false;
                    it.seek(&self.target)
                } else {
                    it.advance()
                };
                if more.map_err(|k| t.corrupt(ph, k))? {
                    return BlockHandle::decode_exact(it.value_slice())
                        .map(Some)
                        .map_err(|k| t.corrupt(ph, k));
                }
                self.part = None;
            }
            let Some(e) = t.top().get(self.top) else { return Ok(None) };
            self.top += 1;
            self.part = Some((BlockIter::new(t.block(e.handle)?), e.handle));
        }
    }
}

//! Walking a table in one direction, one data block in memory at a time.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Range;

use bytes::Bytes;
use strata_vfs::RandomRead;

use super::block::{Block, BlockIter};
use super::format::{BlockHandle, IndexKind, KeyRef};
use super::reader::{IndexEntry, Table, lower_bound};
use crate::error::Result;
use crate::iter::{Cursor, EntryRef};
use crate::key::{InternalKey, ValueKind};

/// Readahead of a sequential walk: after two data blocks in a row missed the cache, the cursor
/// reads the following blocks of the partition with one call, starting with this many bytes
/// and doubling up to [`READAHEAD_MAX`]. One read per 4 KiB block cost a full scan of a cold
/// table more than a tenth of its time in system calls.
pub(super) const READAHEAD_START: usize = 16 * 1024;
/// The largest readahead, in stored bytes.
const READAHEAD_MAX: usize = 256 * 1024;

/// Bytes per entry assumed when sizing a fresh cursor's scratch: a 4 KiB block of 16-byte keys
/// and 100-byte values holds about 33 entries; this over-reserves that case about twice.
const ASSUMED_ENTRY_BYTES: usize = 64;

/// A one-directional cursor over a shared table, in internal-key order (forward) or reverse
/// order (backward).
///
/// It holds the current index partition's handles and the current data block, so memory is
/// bounded by one partition, one block and a readahead window whatever the table's size.
///
/// Forward, entries are decoded one at a time as the walk reaches them: a short range scan
/// decodes only what it reads, and [`Cursor::head`] reads the block iterator in place. The
/// first owned [`Cursor::take`] in a block decodes the rest of it into plain positions (user
/// keys copied into one buffer, values left in the block), so the keys handed out share one
/// allocation per block. Backward walks decode each block that way whole, since a block is
/// only readable front to back. After an error the cursor is exhausted.
pub struct TableCursor<R: RandomRead> {
    table: Arc<Table<R>>,
    forward: bool,
    /// Current index partition number (always 0 for a single-level index).
    part: usize,
    /// Data block handles of the current partition.
    blocks: Arc<[IndexEntry]>,
    /// Position of the current data block in `blocks`.
    blk: usize,
    /// Handle of the current data block (for error reports).
    handle: BlockHandle,
    /// The current data block of decoded entries, whose memory their values are.
    block: Option<Arc<Block>>,
    /// Decoded entries of the current block not yet passed, in walking order.
    buf: VecDeque<Slot>,
    /// Forward walks: the current block's iterator, at the current entry while `lazy` is set
    /// (a walk reads the iterator in place until an owned take decodes the rest of the block
    /// into `buf`).
    iter: Option<BlockIter>,
    /// The iterator's current entry's parsed key, while the walk reads in place.
    lazy: Option<LazyHead>,
    done: bool,
    /// Read blocks through the block cache (reads) or around it (compaction: a one-pass scan
    /// would only evict what readers need).
    fill_cache: bool,
    /// The current block's user keys, one after another (keys are prefix-compressed on disk,
    /// so they cannot be read in place); reused from block to block.
    key_arena: Vec<u8>,
    /// Blocks read ahead of the walk (forward only), in walking order, each with its handle
    /// and whether it was read from the file (else it was found in the cache).
    ahead: VecDeque<(BlockHandle, Arc<Block>, bool)>,
    /// Data blocks loaded in a row that missed the cache.
    misses: u32,
    /// Stored bytes the next readahead reads.
    readahead: usize,
    /// Scratch for the stored bytes of a readahead, kept so its pages are reused.
    readahead_buf: Vec<u8>,
    /// `key_arena` frozen into shared memory on the first [`Cursor::take`] in a block, so the
    /// owned keys handed out are slices of one allocation per block rather than one each.
    shared_keys: Option<Bytes>,
}

/// One decoded entry: its user key as a range of the cursor's key arena, its value as a range
/// of the block.
#[derive(Debug, Clone)]
struct Slot {
    key: Range<usize>,
    ts: u64,
    seq: u64,
    kind: ValueKind,
    value: Range<usize>,
}

/// The parsed internal key of the block iterator's current entry: its user key is the first
/// `user_len` bytes of the iterator's key.
#[derive(Debug, Clone, Copy)]
struct LazyHead {
    user_len: usize,
    ts: u64,
    seq: u64,
    kind: ValueKind,
}

impl<R: RandomRead> core::fmt::Debug for TableCursor<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TableCursor")
            .field("table", &self.table.name())
            .field("forward", &self.forward)
            .field("part", &self.part)
            .field("block", &self.blk)
            .finish()
    }
}

impl<R: RandomRead> TableCursor<R> {
    /// A cursor positioned at the first entry `>= start` (forward) or the last entry `<= start`
    /// (backward); `None` starts at the respective end.
    pub fn new(table: Arc<Table<R>>, forward: bool, start: Option<&InternalKey>) -> Result<Self> {
        Self::with_cache_fill(table, forward, start, true)
    }

    /// Like [`new`](Self::new); with `fill_cache == false` data blocks are read around the
    /// block cache (for compaction, whose one pass would evict what readers need).
    pub fn with_cache_fill(
        table: Arc<Table<R>>,
        forward: bool,
        start: Option<&InternalKey>,
        fill_cache: bool,
    ) -> Result<Self> {
        let mut c = TableCursor {
            table,
            forward,
            part: 0,
            blocks: Arc::from(Vec::new()),
            blk: 0,
            handle: BlockHandle::default(),
            block: None,
            buf: VecDeque::new(),
            iter: None,
            lazy: None,
            done: false,
            fill_cache,
            key_arena: Vec::new(),
            ahead: VecDeque::new(),
            misses: 0,
            readahead: READAHEAD_START,
            readahead_buf: Vec::new(),
            shared_keys: None,
        };
        let r = c.position(start);
        c.finish_step(r)?;
        Ok(c)
    }

    /// Finds the first block to read and loads it (filtered by `start`).
    fn position(&mut self, start: Option<&InternalKey>) -> Result<()> {
        // Nothing of the block being left may stay readable: a seek past the table's last key
        // ends the walk below without loading another block.
        self.clear_block();
        let parts = self.table.partition_count();
        let Some(start) = start else {
            let last = parts.saturating_sub(1);
            return self.enter_partition_at_end(if self.forward { 0 } else { last }, None);
        };
        let target = KeyRef::of(start);
        let in_top = lower_bound(self.table.top(), &target);
        let (part, at) = match self.table.index_kind() {
            IndexKind::Single => (0, Some(in_top)),
            IndexKind::Partitioned => (in_top, None),
        };
        if part >= parts || at.is_some_and(|b| b >= self.table.top().len()) {
            // Every key is smaller than `start`: nothing forward, the very end backward.
            if self.forward {
                self.done = true;
                return Ok(());
            }
            return self.enter_partition_at_end(parts.saturating_sub(1), None);
        }
        self.part = part;
        self.blocks = self.table.partition(part)?;
        self.blk = at.unwrap_or_else(|| lower_bound(&self.blocks, &target));
        if self.blk >= self.blocks.len() {
            // Only possible if the partition disagrees with the top level; take its end.
            self.blk = self.blocks.len().saturating_sub(1);
        }
        self.load(Some(start))
    }

    /// Enters partition `p` at its first (forward) or last (backward) block and loads it.
    fn enter_partition_at_end(&mut self, p: usize, start: Option<&InternalKey>) -> Result<()> {
        self.part = p;
        self.blocks = self.table.partition(p)?;
        self.blk = if self.forward { 0 } else { self.blocks.len().saturating_sub(1) };
        self.load(start)
    }

    /// Loads the current block at its first entry (forward: at or after `start`, read in
    /// place) or decodes it into `buf` (backward: its entries at or before `start`).
    fn load(&mut self, start: Option<&InternalKey>) -> Result<()> {
        self.clear_block();
        let Some(h) = self.blocks.get(self.blk).map(|e| e.handle) else { return Ok(()) };
        self.handle = h;
        let mut it = BlockIter::new(self.data_block(h)?);
        let target = start.map(KeyRef::of);
        if self.forward {
            let found = match &target {
                Some(t) => it.seek(t),
                None => it.advance(),
            }
            .map_err(|k| self.table.corrupt(h, k))?;
            if found {
                self.iter = Some(it);
                self.read_lazy_head()?;
            }
            return Ok(());
        }
        if it.advance().map_err(|k| self.table.corrupt(h, k))? {
            self.decode_run(&mut it, target.as_ref())?;
        }
        Ok(())
    }

    /// Forgets the current block's entries.
    fn clear_block(&mut self) {
        self.buf.clear();
        self.block = None;
        self.shared_keys = None;
        self.key_arena.clear();
        self.iter = None;
        self.lazy = None;
    }

    /// Decodes the entries of `it`'s block from its current one on into `buf` (forward: in
    /// order; backward: reversed, stopping after `last`), with their user keys in the arena.
    fn decode_run(&mut self, it: &mut BlockIter, last: Option<&KeyRef<'_>>) -> Result<()> {
        let h = self.handle;
        if self.buf.capacity() == 0 {
            // A fresh cursor: size the scratch for a typical block at once instead of growing
            // it by doubling, which measured 6% of a 100-key scan's instructions.
            let entries = (it.block().data().len() / ASSUMED_ENTRY_BYTES).clamp(16, 256);
            self.buf.reserve(entries);
            self.key_arena.reserve(entries * 32);
        }
        let mut more = it.valid();
        while more {
            let key = KeyRef::parse(it.key()).map_err(|k| self.table.corrupt(h, k))?;
            if last.is_some_and(|t| key.cmp_key(t) == Ordering::Greater) {
                break;
            }
            let kind = key.kind().map_err(|k| self.table.corrupt(h, k))?;
            let at = self.key_arena.len();
            self.key_arena.extend_from_slice(key.user_key);
            let slot = Slot {
                key: at..self.key_arena.len(),
                ts: key.ts,
                seq: key.seq(),
                kind,
                value: it.value_range(),
            };
            if self.forward {
                self.buf.push_back(slot);
            } else {
                self.buf.push_front(slot);
            }
            more = it.advance().map_err(|k| self.table.corrupt(h, k))?;
        }
        self.block = Some(Arc::clone(it.block()));
        Ok(())
    }

    /// Parses the block iterator's current entry's key into `lazy`.
    #[inline]
    fn read_lazy_head(&mut self) -> Result<()> {
        self.lazy = None;
        let Some(it) = &self.iter else { return Ok(()) };
        let h = self.handle;
        let key = KeyRef::parse(it.key()).map_err(|k| self.table.corrupt(h, k))?;
        let kind = key.kind().map_err(|k| self.table.corrupt(h, k))?;
        self.lazy =
            Some(LazyHead { user_len: key.user_key.len(), ts: key.ts, seq: key.seq(), kind });
        Ok(())
    }

    /// Reading in place: moves the block iterator to its next entry (none at the block's
    /// end).
    #[inline]
    fn step_lazy(&mut self) -> Result<()> {
        self.lazy = None;
        let Some(it) = self.iter.as_mut() else { return Ok(()) };
        if it.advance().map_err(|k| self.table.corrupt(self.handle, k))? {
            self.read_lazy_head()
        } else {
            self.iter = None;
            Ok(())
        }
    }

    /// Reading in place: decodes the current entry and the rest of the block into `buf`, so
    /// the owned entries taken from it share one copy of its keys.
    fn decode_rest(&mut self) -> Result<()> {
        let Some(mut it) = self.iter.take() else { return Ok(()) };
        self.lazy = None;
        self.key_arena.clear();
        self.shared_keys = None;
        self.decode_run(&mut it, None)
    }

    /// The data block at `h` (the current one): read ahead, cached, or read now; a second
    /// miss in a row going forward starts reading ahead.
    fn data_block(&mut self, h: BlockHandle) -> Result<Arc<Block>> {
        match self.ahead.pop_front() {
            Some((ah, b, from_file)) if ah == h => {
                // Used now: counted as if it had been read now, and cached unless the walk is
                // long (its readahead grew to the largest) and no walk read the block ahead
                // before: a long one-pass scan leaves the cache alone, short scans and
                // repeated passes are cached as they go.
                if !from_file && let Some(cached) = self.table.cached(h, self.fill_cache) {
                    return Ok(cached);
                }
                if self.fill_cache {
                    self.table.count_miss();
                    if self.readahead < READAHEAD_MAX || self.table.admit_read_ahead(h) {
                        self.table.offer(h, &b, true);
                    }
                }
                return Ok(b);
            }
            // The walk left the read-ahead run (a seek, another partition): drop the rest.
            Some(_) => self.ahead.clear(),
            None => {}
        }
        if let Some(b) = self.table.cached(h, self.fill_cache) {
            self.misses = 0;
            return Ok(b);
        }
        self.misses = self.misses.saturating_add(1);
        if !self.forward || self.misses < 2 {
            return self.table.read_block(h, self.fill_cache);
        }
        // Sequential and cold: read this block and the next ones of the partition that lie
        // back to back, up to the readahead size, with one call.
        let mut run = alloc::vec![h];
        let mut bytes = h.end().map_or(0, |e| e - h.offset);
        for e in self.blocks.iter().skip(self.blk + 1) {
            let (Some(prev_end), Some(end)) = (run.last().and_then(|p| p.end()), e.handle.end())
            else {
                break;
            };
            if e.handle.offset != prev_end || end - prev_end + bytes > self.readahead as u64 {
                break;
            }
            bytes += end - prev_end;
            run.push(e.handle);
        }
        self.readahead = (self.readahead * 2).min(READAHEAD_MAX);
        let mut blocks =
            self.table.read_run(&run, self.fill_cache, &mut self.readahead_buf)?.into_iter();
        let first = blocks.next().map(|(_, b, _)| b);
        self.ahead.extend(blocks);
        match first {
            Some(b) => Ok(b),
            None => self.table.read_block(h, self.fill_cache),
        }
    }

    /// Moves to the next block in the walking direction, crossing partitions; `false` at the
    /// end of the table. Terminates: every step moves `(part, blk)` strictly one way.
    fn next_block(&mut self) -> Result<bool> {
        if self.forward {
            if self.blk + 1 < self.blocks.len() {
                self.blk += 1;
                return Ok(true);
            }
            while self.part + 1 < self.table.partition_count() {
                self.part += 1;
                self.blocks = self.table.partition(self.part)?;
                if !self.blocks.is_empty() {
                    self.blk = 0;
                    return Ok(true);
                }
            }
        } else {
            if self.blk > 0 && self.blk <= self.blocks.len() {
                self.blk -= 1;
                return Ok(true);
            }
            while self.part > 0 {
                self.part -= 1;
                self.blocks = self.table.partition(self.part)?;
                if let Some(last) = self.blocks.len().checked_sub(1) {
                    self.blk = last;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Loads blocks until one has an entry or the table ends.
    fn fill(&mut self) -> Result<()> {
        while self.buf.is_empty() && self.lazy.is_none() && !self.done {
            if self.next_block()? {
                self.load(None)?;
            } else {
                self.done = true;
            }
        }
        Ok(())
    }

    /// After a positioning step: skip empty blocks, and on error become exhausted.
    #[inline]
    fn finish_step(&mut self, r: Result<()>) -> Result<()> {
        if r.is_ok() && (self.lazy.is_some() || !self.buf.is_empty() || self.done) {
            // Still inside a block (nearly every step): nothing to load.
            return r;
        }
        self.finish_step_slow(r)
    }

    /// [`finish_step`](Self::finish_step) at a block's end or after an error: kept out of
    /// line so that the step within a block stays small enough to inline.
    #[inline(never)]
    fn finish_step_slow(&mut self, r: Result<()>) -> Result<()> {
        let r = r.and_then(|()| self.fill());
        if r.is_err() {
            self.done = true;
            self.clear_block();
        }
        r
    }

    /// The current entry, borrowed.
    #[inline]
    pub fn head(&self) -> Option<EntryRef<'_>> {
        if let (Some(l), Some(it)) = (&self.lazy, &self.iter) {
            return Some(EntryRef {
                user_key: it.key().get(..l.user_len).unwrap_or_default(),
                ts: l.ts,
                seq: l.seq,
                kind: l.kind,
                value: it.value_slice(),
            });
        }
        let slot = self.buf.front()?;
        let block = self.block.as_ref()?;
        Some(EntryRef {
            user_key: self.key_arena.get(slot.key.clone()).unwrap_or_default(),
            ts: slot.ts,
            seq: slot.seq,
            kind: slot.kind,
            value: block.data().get(slot.value.clone()).unwrap_or_default(),
        })
    }

    /// The current entry, owned, and a step past it.
    pub fn take(&mut self) -> Result<Option<(InternalKey, Bytes)>> {
        if self.lazy.is_some() {
            let r = self.decode_rest();
            if r.is_err() {
                self.finish_step(r)?;
            }
        }
        let Some(slot) = self.buf.pop_front() else { return Ok(None) };
        let Some(block) = self.block.as_ref() else { return Ok(None) };
        let keys = self.shared_keys.get_or_insert_with(|| Bytes::copy_from_slice(&self.key_arena));
        let entry = (
            InternalKey::new(keys.slice(slot.key), slot.ts, slot.seq, slot.kind),
            block.data().slice(slot.value),
        );
        self.finish_step(Ok(()))?;
        Ok(Some(entry))
    }

    /// Forward cursors: moves to the first entry `>= target` (never backwards). Within the
    /// loaded block it skips in memory; otherwise it re-seeks through the index.
    pub fn seek_forward(&mut self, target: &InternalKey) -> Result<()> {
        if !self.forward || self.done {
            return Ok(());
        }
        if self.head().is_some_and(|e| e.cmp_key(target) != Ordering::Less) {
            return Ok(());
        }
        if let Some(it) = self.iter.as_mut().filter(|_| self.lazy.is_some()) {
            // Within the block if it reaches the target (a seek there lands past the current
            // entry, which is before the target); else through the index.
            let found =
                it.seek(&KeyRef::of(target)).map_err(|k| self.table.corrupt(self.handle, k));
            let r = match found {
                Ok(true) => return self.read_lazy_head().or_else(|e| self.finish_step(Err(e))),
                Ok(false) => self.position(Some(target)),
                Err(e) => Err(e),
            };
            return self.finish_step(r);
        }
        let last_reaches = self.buf.back().is_some_and(|slot| {
            let user_key = self.key_arena.get(slot.key.clone()).unwrap_or_default();
            let last =
                EntryRef { user_key, ts: slot.ts, seq: slot.seq, kind: slot.kind, value: &[] };
            last.cmp_key(target) != Ordering::Less
        });
        if last_reaches {
            while self.head().is_some_and(|e| e.cmp_key(target) == Ordering::Less) {
                self.buf.pop_front();
            }
            return Ok(());
        }
        self.buf.clear();
        let r = self.position(Some(target));
        self.finish_step(r)
    }

    /// Moves to the next entry in this cursor's direction.
    #[inline]
    pub fn advance(&mut self) -> Result<()> {
        if self.lazy.is_some() {
            let r = self.step_lazy();
            return self.finish_step(r);
        }
        self.buf.pop_front();
        self.finish_step(Ok(()))
    }
}

impl<R: RandomRead + Send + Sync + 'static> Cursor for TableCursor<R> {
    #[inline]
    fn head(&self) -> Option<EntryRef<'_>> {
        TableCursor::head(self)
    }

    fn exhausted(&self) -> bool {
        // There is a head exactly when an entry is read in place or a decoded one is left.
        self.lazy.is_none() && self.buf.is_empty()
    }

    fn seek(&mut self, target: &InternalKey) -> Result<()> {
        self.seek_forward(target)
    }

    fn advance(&mut self) -> Result<()> {
        TableCursor::advance(self)
    }

    fn take(&mut self) -> Result<Option<(InternalKey, Bytes)>> {
        TableCursor::take(self)
    }
}

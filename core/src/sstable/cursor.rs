//! Walking a table in one direction, one data block in memory at a time.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Range;

use bytes::Bytes;
use strata_vfs::RandomRead;

use super::block::BlockIter;
use super::format::{IndexKind, KeyRef};
use super::reader::{IndexEntry, Table, lower_bound};
use crate::error::Result;
use crate::iter::Cursor;
use crate::key::{InternalKey, ValueKind};

/// Bytes per entry assumed when sizing a fresh cursor's scratch: a 4 KiB block of 16-byte keys
/// and 100-byte values holds about 33 entries; this over-reserves that case about twice.
const ASSUMED_ENTRY_BYTES: usize = 64;

/// A one-directional cursor over a shared table, in internal-key order (forward) or reverse
/// order (backward).
///
/// It holds the current index partition's handles and the current data block's entries, decoded
/// (keys copied, values sharing the block's memory), so memory is bounded by one partition and
/// one block whatever the table's size. After an error the cursor is exhausted.
pub struct TableCursor<R: RandomRead> {
    table: Arc<Table<R>>,
    forward: bool,
    /// Current index partition number (always 0 for a single-level index).
    part: usize,
    /// Data block handles of the current partition.
    blocks: Arc<[IndexEntry]>,
    /// Position of the current data block in `blocks`.
    blk: usize,
    /// Entries of the current block not yet passed, in walking order.
    buf: VecDeque<(InternalKey, Bytes)>,
    done: bool,
    /// Read blocks through the block cache (reads) or around it (compaction: a one-pass scan
    /// would only evict what readers need).
    fill_cache: bool,
    /// Scratch for [`load`](Self::load), kept to reuse its capacity: the block's user keys.
    key_arena: Vec<u8>,
    /// Scratch for [`load`](Self::load): decoded entries waiting for the shared key buffer.
    staged: Vec<Staged>,
}

/// One decoded entry whose user key is still a range of the cursor's key arena.
struct Staged {
    key: Range<usize>,
    ts: u64,
    seq: u64,
    kind: ValueKind,
    value: Bytes,
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
            buf: VecDeque::new(),
            done: false,
            fill_cache,
            key_arena: Vec::new(),
            staged: Vec::new(),
        };
        let r = c.position(start);
        c.finish_step(r)?;
        Ok(c)
    }

    /// Finds the first block to read and loads it (filtered by `start`).
    fn position(&mut self, start: Option<&InternalKey>) -> Result<()> {
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

    /// Decodes the current block into `buf`: with `start`, only entries at or after it in the
    /// walking direction.
    ///
    /// The block's user keys are copied once into one shared buffer and every entry's key is a
    /// slice of it, so a block costs a couple of allocations rather than one per entry (keys
    /// are prefix-compressed on disk and cannot point into the block itself).
    fn load(&mut self, start: Option<&InternalKey>) -> Result<()> {
        self.buf.clear();
        let Some(h) = self.blocks.get(self.blk).map(|e| e.handle) else { return Ok(()) };
        let table = Arc::clone(&self.table);
        let block = if self.fill_cache { table.block(h)? } else { table.block_uncached(h)? };
        if self.staged.capacity() == 0 {
            // A fresh cursor (a range scan opens one per table and often reads a single block
            // of each): size the scratch for a typical block at once instead of growing it by
            // doubling, which measured 6% of a 100-key scan's instructions.
            let entries = (block.data().len() / ASSUMED_ENTRY_BYTES).clamp(16, 256);
            self.staged.reserve(entries);
            self.buf.reserve(entries);
            self.key_arena.reserve(entries * 32);
        }
        let mut it = BlockIter::new(block);
        let target = start.map(KeyRef::of);
        let mut more = match (&target, self.forward) {
            (Some(t), true) => it.seek(t),
            _ => it.advance(),
        }
        .map_err(|k| table.corrupt(h, k))?;
        let mut arena = core::mem::take(&mut self.key_arena);
        let mut staged = core::mem::take(&mut self.staged);
        arena.clear();
        staged.clear();
        while more {
            let key = KeyRef::parse(it.key()).map_err(|k| table.corrupt(h, k))?;
            if !self.forward && target.is_some_and(|t| key.cmp_key(&t) == Ordering::Greater) {
                break;
            }
            let kind = key.kind().map_err(|k| table.corrupt(h, k))?;
            let at = arena.len();
            arena.extend_from_slice(key.user_key);
            staged.push(Staged {
                key: at..arena.len(),
                ts: key.ts,
                seq: key.seq(),
                kind,
                value: it.value(),
            });
            more = it.advance().map_err(|k| table.corrupt(h, k))?;
        }
        let keys = Bytes::copy_from_slice(&arena);
        for e in staged.drain(..) {
            let owned = (InternalKey::new(keys.slice(e.key), e.ts, e.seq, e.kind), e.value);
            if self.forward {
                self.buf.push_back(owned);
            } else {
                self.buf.push_front(owned);
            }
        }
        self.key_arena = arena;
        self.staged = staged;
        Ok(())
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
        while self.buf.is_empty() && !self.done {
            if self.next_block()? {
                self.load(None)?;
            } else {
                self.done = true;
            }
        }
        Ok(())
    }

    /// After a positioning step: skip empty blocks, and on error become exhausted.
    fn finish_step(&mut self, r: Result<()>) -> Result<()> {
        let r = r.and_then(|()| self.fill());
        if r.is_err() {
            self.done = true;
            self.buf.clear();
        }
        r
    }

    /// The current entry.
    pub fn peek(&self) -> Option<&(InternalKey, Bytes)> {
        self.buf.front()
    }

    /// Forward cursors: moves to the first entry `>= target` (never backwards). Within the
    /// loaded block it skips in memory; otherwise it re-seeks through the index.
    pub fn seek_forward(&mut self, target: &InternalKey) -> Result<()> {
        if !self.forward || self.done {
            return Ok(());
        }
        match (self.buf.front(), self.buf.back()) {
            (Some((first, _)), _) if first >= target => return Ok(()),
            (_, Some((last, _))) if last >= target => {
                while self.buf.front().is_some_and(|(k, _)| k < target) {
                    self.buf.pop_front();
                }
                return Ok(());
            }
            _ => {}
        }
        self.buf.clear();
        let r = self.position(Some(target));
        self.finish_step(r)
    }

    /// Moves to the next entry in this cursor's direction.
    pub fn advance(&mut self) -> Result<()> {
        self.buf.pop_front();
        self.finish_step(Ok(()))
    }
}

impl<R: RandomRead + Send + Sync + 'static> Cursor for TableCursor<R> {
    fn peek(&self) -> Option<&(InternalKey, Bytes)> {
        TableCursor::peek(self)
    }

    fn seek(&mut self, target: &InternalKey) -> Result<()> {
        self.seek_forward(target)
    }

    fn advance(&mut self) -> Result<()> {
        TableCursor::advance(self)
    }

    fn take(&mut self) -> Result<Option<(InternalKey, Bytes)>> {
        let entry = self.buf.pop_front();
        self.finish_step(Ok(()))?;
        Ok(entry)
    }
}

//! Access to table files: the filesystem, a bounded cache of open tables, the shared block
//! cache, and cursors that walk a whole level.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;

use core::sync::atomic::Ordering;
use hashbrown::HashMap;
use strata_vfs::sync::{AtomicU64, RwLock};
use strata_vfs::{FileKind, Vfs};

use super::EngineFs;
use crate::cache::BlockCache;
use crate::filenames;
use crate::iter::{Cursor, EntryRef};
use crate::key::InternalKey;
use crate::manifest::FileMeta;
use crate::sstable::{Table, TableCursor, TableOptions};
use crate::{Error, IoOp, Result};

/// An open table as the engine shares it.
pub type SharedTable<V> = Arc<Table<<V as Vfs>::Read>>;

/// Open tables, each with the value of `OpenTables::opens` when it was last used: a coarse
/// clock that moves only when a table is opened. A read that finds its table open takes the
/// lock shared (readers no longer wait for each other) and stores its table's stamp only when
/// it changed, where it took the lock exclusively and bumped a global counter, a write to the
/// same memory by every reader on every core once per point read. Eviction picks the table
/// unused for the most opens.
struct OpenTables<V: Vfs> {
    tables: HashMap<u64, (SharedTable<V>, AtomicU64)>,
    opens: AtomicU64,
}

/// The filesystem plus everything needed to read tables.
pub struct TableStore<V: Vfs> {
    /// The database directory.
    pub vfs: V,
    /// Options for tables this engine writes.
    pub table_options: TableOptions,
    /// Decoded blocks shared by every table.
    pub block_cache: Arc<BlockCache>,
    max_open: usize,
    open: RwLock<OpenTables<V>>,
}

impl<V: Vfs> core::fmt::Debug for TableStore<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TableStore").field("max_open", &self.max_open).finish()
    }
}

impl<V: EngineFs> TableStore<V> {
    /// A store over `vfs` keeping at most `max_open` tables open.
    pub fn new(
        vfs: V,
        table_options: TableOptions,
        block_cache_bytes: usize,
        max_open: usize,
    ) -> Self {
        TableStore {
            vfs,
            table_options,
            block_cache: Arc::new(BlockCache::new(block_cache_bytes)),
            max_open: max_open.max(1),
            open: RwLock::new(OpenTables { tables: HashMap::new(), opens: AtomicU64::new(0) }),
        }
    }

    /// The open table for `meta`, opening it (and evicting the least recently used one when
    /// full) if needed. Open handles of evicted tables stay valid for their current users.
    pub fn table(&self, meta: &FileMeta) -> Result<SharedTable<V>> {
        {
            let open = self.open.read();
            if let Some((t, used)) = open.tables.get(&meta.file_no) {
                let now = open.opens.load(Ordering::Relaxed);
                if used.load(Ordering::Relaxed) != now {
                    used.store(now, Ordering::Relaxed);
                }
                return Ok(Arc::clone(t));
            }
        }
        let name = filenames::table(meta.file_no);
        let file =
            self.vfs.open(&name, FileKind::Table).map_err(|e| Error::io(IoOp::Open, &name, e))?;
        let table =
            Arc::new(Table::open(file, name, meta.file_no, Some(Arc::clone(&self.block_cache)))?);
        let mut open = self.open.write();
        if let Some((t, _)) = open.tables.get(&meta.file_no) {
            // Another reader opened it meanwhile: share that one.
            return Ok(Arc::clone(t));
        }
        if open.tables.len() >= self.max_open
            && let Some(victim) = open
                .tables
                .iter()
                .min_by_key(|(_, (_, used))| used.load(Ordering::Relaxed))
                .map(|(k, _)| *k)
        {
            open.tables.remove(&victim);
        }
        let now = open.opens.fetch_add(1, Ordering::Relaxed) + 1;
        open.tables.insert(meta.file_no, (Arc::clone(&table), AtomicU64::new(now)));
        Ok(table)
    }

    /// Forgets a table that is being deleted.
    pub fn evict(&self, file_no: u64) {
        self.open.write().tables.remove(&file_no);
        self.block_cache.erase_file(file_no);
    }

    /// A cursor over one table; `fill_cache` is false for compaction reads.
    pub fn cursor(
        &self,
        meta: &FileMeta,
        forward: bool,
        start: Option<&InternalKey>,
        fill_cache: bool,
    ) -> Result<Box<dyn Cursor>> {
        Ok(Box::new(self.table_cursor(meta, forward, start, fill_cache)?))
    }

    /// [`cursor`](Self::cursor) as its concrete type, for a walker that calls it directly.
    fn table_cursor(
        &self,
        meta: &FileMeta,
        forward: bool,
        start: Option<&InternalKey>,
        fill_cache: bool,
    ) -> Result<TableCursor<V::Read>> {
        TableCursor::with_cache_fill(self.table(meta)?, forward, start, fill_cache)
    }
}

/// Walks a sorted, non-overlapping level (L1 and deeper) as one source, opening one table at a
/// time, in one direction.
pub struct LevelCursor<V: EngineFs> {
    store: Arc<TableStore<V>>,
    files: Vec<Arc<FileMeta>>,
    forward: bool,
    /// Index into `files` of the table `current` walks.
    pos: usize,
    /// Held as its concrete type, not as a `dyn Cursor`, so that each step into it is a
    /// direct call the compiler can inline (a scan takes one per entry).
    current: Option<TableCursor<V::Read>>,
    fill_cache: bool,
}

impl<V: EngineFs> core::fmt::Debug for LevelCursor<V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LevelCursor")
            .field("files", &self.files.len())
            .field("pos", &self.pos)
            .finish()
    }
}

impl<V: EngineFs> LevelCursor<V> {
    /// A cursor over `files` (sorted by key) positioned at the first entry `>= start` forward
    /// or `<= start` backward. `fill_cache` is false for compaction reads.
    pub fn new(
        store: Arc<TableStore<V>>,
        files: Vec<Arc<FileMeta>>,
        forward: bool,
        start: Option<&InternalKey>,
        fill_cache: bool,
    ) -> Result<Self> {
        // The first file that can hold `start` in the walking direction.
        let pos = match start {
            None => {
                if forward {
                    0
                } else {
                    files.len().saturating_sub(1)
                }
            }
            Some(k) => {
                if forward {
                    files.partition_point(|f| f.largest < *k)
                } else {
                    files.partition_point(|f| f.smallest <= *k).saturating_sub(1)
                }
            }
        };
        let mut c = LevelCursor { store, files, forward, pos, current: None, fill_cache };
        if let Some(meta) = c.files.get(c.pos).cloned() {
            let in_range = match start {
                Some(k) if !forward => meta.smallest <= *k,
                _ => true,
            };
            if in_range {
                c.current = Some(c.store.table_cursor(&meta, forward, start, fill_cache)?);
            }
        }
        c.skip_exhausted()?;
        Ok(c)
    }

    /// Moves to the next file while the current one has nothing left.
    #[inline]
    fn skip_exhausted(&mut self) -> Result<()> {
        if self.current.as_ref().is_some_and(|c| c.exhausted()) {
            return self.next_file();
        }
        Ok(())
    }

    /// [`skip_exhausted`](Self::skip_exhausted) at a file's end: out of line, so that the step
    /// within a file stays small enough to inline.
    #[inline(never)]
    fn next_file(&mut self) -> Result<()> {
        while self.current.as_ref().is_some_and(|c| c.exhausted()) {
            let next = if self.forward { self.pos.checked_add(1) } else { self.pos.checked_sub(1) };
            match next.and_then(|p| self.files.get(p).cloned().map(|m| (p, m))) {
                Some((p, meta)) => {
                    self.pos = p;
                    self.current = Some(self.store.table_cursor(
                        &meta,
                        self.forward,
                        None,
                        self.fill_cache,
                    )?);
                }
                None => self.current = None,
            }
        }
        Ok(())
    }
}

impl<V: EngineFs> Cursor for LevelCursor<V> {
    fn head(&self) -> Option<EntryRef<'_>> {
        self.current.as_ref()?.head()
    }

    fn exhausted(&self) -> bool {
        // The current file is never left exhausted while another one follows.
        self.current.as_ref().is_none_or(|c| c.exhausted())
    }

    fn advance(&mut self) -> Result<()> {
        if let Some(c) = self.current.as_mut() {
            c.advance()?;
        }
        self.skip_exhausted()
    }

    fn take(&mut self) -> Result<Option<(InternalKey, Bytes)>> {
        let entry = match self.current.as_mut() {
            Some(c) => c.take()?,
            None => None,
        };
        self.skip_exhausted()?;
        Ok(entry)
    }

    fn seek(&mut self, target: &InternalKey) -> Result<()> {
        if !self.forward || self.current.is_none() {
            return Ok(());
        }
        let beyond_current = self.files.get(self.pos).is_some_and(|f| f.largest < *target);
        if beyond_current {
            // Jump straight to the file that can hold the target.
            let pos = self.files.partition_point(|f| f.largest < *target);
            match self.files.get(pos).cloned() {
                Some(meta) => {
                    self.pos = pos;
                    self.current = Some(self.store.table_cursor(
                        &meta,
                        true,
                        Some(target),
                        self.fill_cache,
                    )?);
                }
                None => {
                    self.pos = self.files.len();
                    self.current = None;
                }
            }
        } else if let Some(c) = self.current.as_mut() {
            c.seek(target)?;
        }
        self.skip_exhausted()
    }
}

impl<V: Vfs> crate::vlog::store::VfsRef<V> for TableStore<V>
where
    V: Send + Sync,
    V::Read: Send + Sync,
{
    fn vfs(&self) -> &V {
        &self.vfs
    }
}

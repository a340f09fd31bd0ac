//! Walking every block of a table, for tools: `verify` checks each one, `strata dump-sst`
//! prints them.
//!
//! [`Table::open`] has already read and checked the footer, properties, filter and top-level
//! index; the walk covers the rest of what the index reaches: the index partitions (when
//! partitioned) and every data block, in index order, each read around the block cache,
//! checksum-checked, decompressed and its entries decoded. A damaged block is reported and the
//! walk moves on to the next one the index names, so one bad block never hides another.

use alloc::sync::Arc;

use strata_vfs::RandomRead;

use super::block::{Block, BlockIter};
use super::format::{BlockHandle, IndexKind, KeyRef};
use super::reader::{Table, decode_index};
use crate::error::Result;

/// What a block is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockRole {
    /// A partition of a partitioned index: handles of data blocks.
    IndexPartition,
    /// Entries.
    Data,
}

/// One block the walk reached.
#[derive(Debug)]
pub struct BlockVisit {
    /// What the block is for.
    pub role: BlockRole,
    /// Where it is (offset and stored size, trailer excluded).
    pub handle: BlockHandle,
    /// The decoded block, or why it could not be read: [`Error::Corruption`](crate::Error::Corruption) naming the
    /// table and the block's offset, or [`Error::Io`](crate::Error::Io). For data blocks, every entry has been
    /// decoded (key shape and kind) before the block is handed over.
    pub block: Result<Arc<Block>>,
    /// Entries in the block (0 when it is damaged).
    pub entries: u64,
}

impl<R: RandomRead> Table<R> {
    /// Visits every index partition and data block the index reaches, in index order. Damage
    /// in one block is reported through its visit and the walk continues; a damaged index
    /// partition hides the data blocks it names (they are not visited). Returns the first
    /// error `visit` returns, if any.
    pub fn walk_blocks(&self, mut visit: impl FnMut(BlockVisit) -> Result<()>) -> Result<()> {
        match self.index_kind() {
            IndexKind::Single => {
                for e in self.top() {
                    visit(self.data_visit(e.handle))?;
                }
            }
            IndexKind::Partitioned => {
                for p in self.top() {
                    let read = self.block_uncached(p.handle).and_then(|b| {
                        let entries =
                            decode_index(Arc::clone(&b)).map_err(|k| self.corrupt(p.handle, k))?;
                        Ok((b, entries))
                    });
                    let (block, entries) = match read {
                        Ok((b, entries)) => (Ok(b), entries),
                        Err(e) => (Err(e), alloc::vec::Vec::new()),
                    };
                    visit(BlockVisit {
                        role: BlockRole::IndexPartition,
                        handle: p.handle,
                        block,
                        entries: entries.len() as u64,
                    })?;
                    for e in &entries {
                        visit(self.data_visit(e.handle))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Reads data block `h` and decodes every entry.
    fn data_visit(&self, h: BlockHandle) -> BlockVisit {
        let checked = self.block_uncached(h).and_then(|block| {
            let entries = count_entries(&block).map_err(|k| self.corrupt(h, k))?;
            Ok((block, entries))
        });
        match checked {
            Ok((block, entries)) => {
                BlockVisit { role: BlockRole::Data, handle: h, block: Ok(block), entries }
            }
            Err(e) => BlockVisit { role: BlockRole::Data, handle: h, block: Err(e), entries: 0 },
        }
    }
}

/// Decodes every entry of a data block (prefix compression, key trailer, kind).
fn count_entries(block: &Arc<Block>) -> core::result::Result<u64, crate::CorruptionKind> {
    let mut it = BlockIter::new(Arc::clone(block));
    let mut n = 0;
    while it.advance()? {
        KeyRef::parse(it.key())?.kind()?;
        n += 1;
    }
    Ok(n)
}

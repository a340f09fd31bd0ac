//! SurrealKV 1.2: one transaction per commit (`commit().await` on a Tokio runtime the engine
//! owns, as SurrealKV needs one), read-only transactions as reader snapshots, cursor
//! iterators with `value_ref` (no copy for inline values).

use std::path::Path;

use surrealkv::{Durability, LSMIterator, Mode, Transaction, Tree, TreeBuilder};
use tokio::runtime::Runtime;

use crate::engine::{Engine, OpenSpec, Reader, Result};

pub struct SurrealEngine {
    // Dropped in field order: the tree before the runtime its tasks run on.
    tree: Tree,
    rt: Runtime,
}

impl SurrealEngine {
    pub fn open(dir: &Path, spec: OpenSpec) -> Result<Self> {
        let rt =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        let _entered = rt.enter();
        let mut builder = TreeBuilder::new().with_path(dir.to_path_buf());
        if let Some(bytes) = spec.profile.cache_bytes() {
            builder = builder.with_block_cache_capacity(bytes as u64);
        }
        if spec.versioned {
            builder = builder.with_versioning(true, 0);
        }
        let tree = builder.build()?;
        Ok(SurrealEngine { tree, rt })
    }

    fn commit(&self, mut txn: Transaction, sync: bool) -> Result<()> {
        if sync {
            txn.set_durability(Durability::Immediate);
        }
        self.rt.block_on(txn.commit())?;
        Ok(())
    }
}

impl Engine for SurrealEngine {
    fn write(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        let mut txn = self.tree.begin()?;
        for (k, v) in pairs {
            txn.set(*k, *v)?;
        }
        self.commit(txn, sync)
    }

    fn write_at(&self, pairs: &[(&[u8], &[u8])], ts: u64) -> Result<()> {
        let mut txn = self.tree.begin()?;
        for (k, v) in pairs {
            txn.set_at(*k, *v, ts)?;
        }
        self.commit(txn, false)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(SurrealReader { txn: self.tree.begin_with_mode(Mode::ReadOnly)? }))
    }

    fn sync(&self) -> Result<()> {
        self.tree.flush_wal(true)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        let SurrealEngine { tree, rt } = *self;
        rt.block_on(tree.close())?;
        drop(tree);
        Ok(())
    }
}

struct SurrealReader {
    txn: Transaction,
}

impl Reader for SurrealReader {
    fn get(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool> {
        match self.txn.get(key)? {
            Some(v) => {
                visit(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn get_at(&mut self, key: &[u8], ts: u64, visit: &mut dyn FnMut(&[u8])) -> Result<bool> {
        match self.txn.get_at(key, ts)? {
            Some(v) => {
                visit(&v);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn scan(
        &mut self,
        start: Option<&[u8]>,
        limit: Option<usize>,
        visit: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<usize> {
        let limit = limit.unwrap_or(usize::MAX);
        match start {
            Some(s) => drain(self.txn.scan(s.to_vec()..)?, limit, visit),
            None => drain(self.txn.scan(..)?, limit, visit),
        }
    }
}

/// Visits up to `limit` pairs of a cursor from its first position.
fn drain(
    mut iter: impl LSMIterator,
    limit: usize,
    visit: &mut dyn FnMut(&[u8], &[u8]),
) -> Result<usize> {
    let mut valid = iter.seek_first()?;
    let mut n = 0;
    while valid && n < limit {
        let value = iter.value_ref()?;
        visit(iter.key().user_key(), &value);
        n += 1;
        valid = iter.next()?;
    }
    Ok(n)
}

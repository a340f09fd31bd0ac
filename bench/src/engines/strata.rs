//! Strata through its public API (`strata::Tree`): one transaction per commit,
//! `commit_blocking`, and read-only transactions as snapshots for readers.

use std::path::Path;

use strata::{Durability, Mode, ReadOptions, Transaction, Tree, TreeBuilder};

use crate::engine::{Engine, OpenSpec, Reader, Result};

pub struct StrataEngine {
    tree: Tree,
}

impl StrataEngine {
    pub fn open(dir: &Path, spec: OpenSpec) -> Result<Self> {
        let mut builder = TreeBuilder::new().with_path(dir.to_path_buf());
        if let Some(bytes) = spec.profile.cache_bytes() {
            builder = builder.with_block_cache_capacity(bytes);
        }
        if spec.large_values {
            builder = builder.with_enable_vlog(true);
        }
        if spec.versioned {
            // Keep every version for ever (retention 0), as the time-travel guide does.
            builder = builder.with_versioning(true, 0);
        }
        Ok(StrataEngine { tree: builder.build()? })
    }
}

impl Engine for StrataEngine {
    fn write(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        let mut txn = self.tree.begin()?;
        for (k, v) in pairs {
            txn.set(k, v)?;
        }
        if sync {
            txn.set_durability(Durability::Immediate);
        }
        txn.commit_blocking()?;
        Ok(())
    }

    fn write_at(&self, pairs: &[(&[u8], &[u8])], ts: u64) -> Result<()> {
        let mut txn = self.tree.begin()?;
        for (k, v) in pairs {
            txn.set_at_version(k, v, ts)?;
        }
        txn.commit_blocking()?;
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(StrataReader { txn: self.tree.begin_with_mode(Mode::ReadOnly)? }))
    }

    fn sync(&self) -> Result<()> {
        // Strata makes commits durable per transaction (`Durability::Immediate`); the one
        // standalone call that leaves everything on disk is `flush`, which also writes the
        // memtables to tables. The workloads never time it.
        self.tree.flush()?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.tree.close()?;
        Ok(())
    }
}

struct StrataReader {
    txn: Transaction,
}

impl Reader for StrataReader {
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
        match self.txn.get_at_version(key, ts)? {
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
        let opts = ReadOptions::new()
            .with_iterate_lower_bound(start.map(<[u8]>::to_vec))
            .with_limit(limit);
        // By reference: keys and values are read where the block or memtable holds them.
        let mut n = 0;
        let mut it = self.txn.range_with_options(&opts)?;
        while let Some(item) = it.next_ref() {
            let (k, v) = item?;
            visit(k, v);
            n += 1;
        }
        Ok(n)
    }
}

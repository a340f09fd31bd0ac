//! RocksDB 7.8 (Debian's librocksdb-dev) through the `rocksdb` crate: `WriteBatch` +
//! `write_opt` (single keys with `put_opt`), `get_pinned` (no copy of the value) and raw
//! iterators.

use std::path::Path;

use rocksdb::{BlockBasedOptions, Cache, DB, Options, ReadOptions, WriteBatch, WriteOptions};

use crate::engine::{Engine, OpenSpec, Reader, Result};

pub struct RocksEngine {
    db: DB,
    no_sync: WriteOptions,
    sync: WriteOptions,
}

impl RocksEngine {
    pub fn open(dir: &Path, spec: OpenSpec) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        if let Some(bytes) = spec.profile.cache_bytes() {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&Cache::new_lru_cache(bytes)?);
            opts.set_block_based_table_factory(&table);
        }
        let db = DB::open(&opts, dir)?;
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        Ok(RocksEngine { db, no_sync: WriteOptions::default(), sync })
    }
}

impl Engine for RocksEngine {
    fn write(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        let wo = if sync { &self.sync } else { &self.no_sync };
        if let [(k, v)] = pairs {
            self.db.put_opt(k, v, wo)?;
        } else {
            let mut batch = WriteBatch::default();
            for (k, v) in pairs {
                batch.put(k, v);
            }
            self.db.write_opt(batch, wo)?;
        }
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(RocksReader { db: &self.db }))
    }

    fn sync(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        // Dropping the handle is RocksDB's close: it stops background work and releases the
        // files; the WAL keeps whatever the memtable held.
        drop(self);
        Ok(())
    }
}

struct RocksReader<'a> {
    db: &'a DB,
}

impl Reader for RocksReader<'_> {
    fn get(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool> {
        match self.db.get_pinned(key)? {
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
        let mut ro = ReadOptions::default();
        if limit.is_none() {
            // A full scan: read ahead, as RocksDB's docs advise for long scans.
            ro.set_readahead_size(2 << 20);
        }
        let mut it = self.db.raw_iterator_opt(ro);
        match start {
            Some(s) => it.seek(s),
            None => it.seek_to_first(),
        }
        let limit = limit.unwrap_or(usize::MAX);
        let mut n = 0;
        while n < limit && it.valid() {
            if let (Some(k), Some(v)) = (it.key(), it.value()) {
                visit(k, v);
            }
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }
}

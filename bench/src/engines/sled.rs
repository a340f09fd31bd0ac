//! sled 1.0.0-alpha.124: `insert` for single keys, `Batch` + `apply_batch` for batches, and
//! `flush` for durability (sled's 1.0 line has no log: `flush` writes the dirty pages, and its
//! background thread does so every 200 ms by default).

use std::path::Path;
use std::sync::Mutex;

use sled::{Batch, Config, Db};

use crate::engine::{Engine, OpenSpec, Reader, Result};

/// sled's `Db` is `Send` but not `Sync`: it is meant to be cloned into each thread (a clone
/// shares the database). The mutex only hands out clones; readers clone once, writers once
/// per commit (an `Arc` increment, against microseconds for the write itself).
pub struct SledEngine {
    db: Mutex<Db>,
}

impl SledEngine {
    pub fn open(dir: &Path, spec: OpenSpec) -> Result<Self> {
        let mut config = Config::new().path(dir);
        if let Some(bytes) = spec.profile.cache_bytes() {
            config = config.cache_capacity_bytes(bytes);
        }
        Ok(SledEngine { db: Mutex::new(config.open()?) })
    }
}

impl SledEngine {
    fn handle(&self) -> Result<Db> {
        Ok(self.db.lock().map_err(|_| "sled handle mutex poisoned")?.clone())
    }
}

impl Engine for SledEngine {
    fn write(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        let db = self.handle()?;
        if let [(k, v)] = pairs {
            db.insert(*k, *v)?;
        } else {
            let mut batch = Batch::default();
            for (k, v) in pairs {
                batch.insert(*k, *v);
            }
            db.apply_batch(batch)?;
        }
        if sync {
            db.flush()?;
        }
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(SledReader { db: self.handle()? }))
    }

    fn sync(&self) -> Result<()> {
        self.handle()?.flush()?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        // No close call: flush, then drop (which stops the flusher thread).
        self.handle()?.flush()?;
        drop(self);
        Ok(())
    }
}

struct SledReader {
    db: Db,
}

impl Reader for SledReader {
    fn get(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool> {
        match self.db.get(key)? {
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
        let iter = match start {
            Some(s) => self.db.range(s..),
            None => self.db.iter(),
        };
        let mut n = 0;
        for item in iter.take(limit.unwrap_or(usize::MAX)) {
            let (k, v) = item?;
            visit(&k, &v);
            n += 1;
        }
        Ok(n)
    }
}

//! Fjall 3.1: one keyspace; `Keyspace::insert` for single keys, `WriteBatch` for batches,
//! `PersistMode::SyncData` for durable commits, and `Keyspace::get`/`range` for reads (values
//! are `Slice`s sharing the block, no copy).

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::engine::{Engine, OpenSpec, Reader, Result};

pub struct FjallEngine {
    db: Database,
    ks: Keyspace,
}

impl FjallEngine {
    pub fn open(dir: &Path, spec: OpenSpec) -> Result<Self> {
        let mut builder = Database::builder(dir);
        if let Some(bytes) = spec.profile.cache_bytes() {
            builder = builder.cache_size(bytes as u64);
        }
        let db = builder.open()?;
        let ks = db.keyspace("bench", KeyspaceCreateOptions::default)?;
        Ok(FjallEngine { db, ks })
    }
}

impl Engine for FjallEngine {
    fn write(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        if let [(k, v)] = pairs {
            self.ks.insert(*k, *v)?;
            if sync {
                self.db.persist(PersistMode::SyncData)?;
            }
            return Ok(());
        }
        let mut batch = self.db.batch();
        if sync {
            batch = batch.durability(Some(PersistMode::SyncData));
        }
        for (k, v) in pairs {
            batch.insert(&self.ks, *k, *v);
        }
        batch.commit()?;
        Ok(())
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        Ok(Box::new(FjallReader { ks: &self.ks }))
    }

    fn sync(&self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    fn close(self: Box<Self>) -> Result<()> {
        // Fjall has no close call: dropping the database persists the journal and stops its
        // workers.
        self.db.persist(PersistMode::SyncAll)?;
        drop(self);
        Ok(())
    }
}

struct FjallReader<'a> {
    ks: &'a Keyspace,
}

impl Reader for FjallReader<'_> {
    fn get(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool> {
        match self.ks.get(key)? {
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
            Some(s) => self.ks.range(s..),
            None => self.ks.iter(),
        };
        let mut n = 0;
        for guard in iter.take(limit.unwrap_or(usize::MAX)) {
            let (k, v) = guard.into_inner()?;
            visit(&k, &v);
            n += 1;
        }
        Ok(n)
    }
}

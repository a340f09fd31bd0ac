//! redb 4.6: one table of `&[u8] -> &[u8]`; one write transaction per commit with
//! `Durability::None` (or `Immediate` when synced), and one read transaction per reader.

use std::path::Path;

use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition};

use crate::engine::{Engine, OpenSpec, Reader, Result};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bench");

pub struct RedbEngine {
    db: Database,
}

impl RedbEngine {
    pub fn open(dir: &Path, spec: OpenSpec) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut builder = Database::builder();
        if let Some(bytes) = spec.profile.cache_bytes() {
            builder.set_cache_size(bytes);
        }
        let db = builder.create(dir.join("bench.redb"))?;
        // Create the table so readers of an empty database find it.
        let txn = db.begin_write()?;
        txn.open_table(TABLE)?;
        txn.commit()?;
        Ok(RedbEngine { db })
    }

    fn commit(&self, durability: Durability, pairs: &[(&[u8], &[u8])]) -> Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)?;
        {
            let mut table = txn.open_table(TABLE)?;
            for (k, v) in pairs {
                table.insert(*k, *v)?;
            }
        }
        txn.commit()?;
        Ok(())
    }
}

impl Engine for RedbEngine {
    fn write(&self, pairs: &[(&[u8], &[u8])], sync: bool) -> Result<()> {
        // `Durability::None` is redb's "no fsync" commit: visible at once, made durable by the
        // next Immediate commit (and lost by a crash before it).
        self.commit(if sync { Durability::Immediate } else { Durability::None }, pairs)
    }

    fn reader(&self) -> Result<Box<dyn Reader + '_>> {
        let txn = self.db.begin_read()?;
        Ok(Box::new(RedbReader { table: txn.open_table(TABLE)? }))
    }

    fn sync(&self) -> Result<()> {
        self.commit(Durability::Immediate, &[])
    }

    fn close(self: Box<Self>) -> Result<()> {
        self.sync()?;
        self.db.close()?;
        Ok(())
    }
}

struct RedbReader {
    table: ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Reader for RedbReader {
    fn get(&mut self, key: &[u8], visit: &mut dyn FnMut(&[u8])) -> Result<bool> {
        match self.table.get(key)? {
            Some(v) => {
                visit(v.value());
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
            Some(s) => self.table.range(s..)?,
            None => self.table.iter()?,
        };
        let mut n = 0;
        for item in iter.take(limit.unwrap_or(usize::MAX)) {
            let (k, v) = item?;
            visit(k.value(), v.value());
            n += 1;
        }
        Ok(n)
    }
}

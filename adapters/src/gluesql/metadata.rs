//! `Metadata`: when each table was created, for GlueSQL's `GLUE_OBJECTS` dictionary. One key
//! per table holds the creation time (postcard `NaiveDateTime`); it is written with the
//! table's first schema, moved on rename and deleted with the table.

use std::collections::BTreeMap;

use gluesql_core::chrono::NaiveDateTime;
use gluesql_core::data::Value;
use gluesql_core::error::Result;
use gluesql_core::store::{MetaIter, Metadata};

use super::StrataStorage;
use super::errors;
use super::store::decode;

impl Metadata for StrataStorage {
    fn scan_table_meta(&self) -> Result<MetaIter> {
        let (start, end) = self.layout.all_meta();
        // `MetaIter` may not borrow the storage, so the (small) list is read eagerly.
        let metas = self
            .read_range((&start, &end))?
            .map(|entry| {
                let (key, bytes) = entry.map_err(errors::from_strata)?;
                let table = self.layout.meta_name(&key)?;
                let created: NaiveDateTime = decode("table metadata", &bytes)?;
                let meta = BTreeMap::from([("CREATED".to_owned(), Value::Timestamp(created))]);
                Ok((table, meta))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(metas.into_iter().map(Ok)))
    }
}

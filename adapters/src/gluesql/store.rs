//! `Store`: reading schemas and rows, and the postcard codec of stored records.
//!
//! A table scan is one Strata range scan over the table's row prefix, so rows come back in
//! primary-key order (generated-key order, i.e. insertion order, for tables without one). A
//! primary-key lookup is one point read.

use gluesql_core::data::{Key, Schema, Value};
use gluesql_core::error::Result;
use gluesql_core::store::{RowIter, Store};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::StrataStorage;
use super::errors::{self, undecodable};
use super::key_encoding::{Layout, prefix_range};

/// Encodes a stored record (row, schema, function, metadata).
pub fn encode<T: Serialize>(what: &str, record: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(record).map_err(|e| {
        gluesql_core::error::Error::StorageMsg(format!(
            "[strata-gluesql] cannot encode {what}: {e}"
        ))
    })
}

/// Decodes a stored record; damaged bytes give an error.
pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| undecodable(what, &e))
}

/// Reads the schema of `table` in `txn`.
pub fn schema_in(
    txn: &strata::Transaction,
    layout: &Layout,
    table: &str,
) -> Result<Option<Schema>> {
    txn.get(&layout.schema(table))
        .map_err(errors::from_strata)?
        .map(|bytes| decode("schema", &bytes))
        .transpose()
}

impl Store for StrataStorage {
    fn fetch_schema(&self, table_name: &str) -> Result<Option<Schema>> {
        self.read_get(&self.layout.schema(table_name))?
            .map(|bytes| decode("schema", &bytes))
            .transpose()
    }

    fn fetch_all_schemas(&self) -> Result<Vec<Schema>> {
        let (start, end) = self.layout.all_schemas();
        self.read_range((&start, &end))?
            .map(|entry| {
                let (_, bytes) = entry.map_err(errors::from_strata)?;
                decode("schema", &bytes)
            })
            .collect()
    }

    fn fetch_data(&self, table_name: &str, key: &Key) -> Result<Option<Vec<Value>>> {
        self.read_get(&self.layout.row(table_name, key))?
            .map(|bytes| decode("row", &bytes))
            .transpose()
    }

    fn scan_data<'a>(&'a self, table_name: &str) -> Result<RowIter<'a>> {
        let (start, end) = prefix_range(self.layout.row_prefix(table_name));
        let rows = self.read_range((&start, &end))?.map(move |entry| {
            let (row_key, bytes) = entry.map_err(errors::from_strata)?;
            let key = Layout::row_key_of(&start, &row_key)?;
            Ok((key, decode("row", &bytes)?))
        });
        Ok(Box::new(rows))
    }
}

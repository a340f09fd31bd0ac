//! `StoreMut`: creating and dropping tables, writing and deleting rows. Every row write
//! updates the table's index entries in the same transaction ([`TableIndexes`]).
//!
//! Tables without a primary key get generated keys, `Key::U64` from a per-table counter
//! stored beside the table, so their scans return rows in insertion order.

use gluesql_core::chrono::{NaiveDateTime, Utc};
use gluesql_core::data::{Key, Schema, Value};
use gluesql_core::error::{Error, Result};
use gluesql_core::store::StoreMut;

use super::StrataStorage;
use super::errors::{self, corrupt};
use super::index::TableIndexes;
use super::key_encoding::{Layout, prefix_range};
use super::store::{decode, encode, schema_in};

/// Deletes every key in `[start, end)`.
pub fn delete_range(txn: &mut strata::Transaction, (start, end): (Vec<u8>, Vec<u8>)) -> Result<()> {
    let keys = txn
        .keys(&start, &end, None)
        .map_err(errors::from_strata)?
        .collect::<strata::Result<Vec<_>>>()
        .map_err(errors::from_strata)?;
    for key in keys {
        txn.delete(&key).map_err(errors::from_strata)?;
    }
    Ok(())
}

/// The schema of a table that must exist for a row write.
pub fn require_schema(txn: &strata::Transaction, layout: &Layout, table: &str) -> Result<Schema> {
    schema_in(txn, layout, table)?
        .ok_or_else(|| Error::StorageMsg(format!("[strata-gluesql] table not found: {table}")))
}

/// Writes `row` under `key`, replacing the row there and its index entries.
pub fn put_row(
    txn: &mut strata::Transaction,
    layout: &Layout,
    indexes: &TableIndexes,
    table: &str,
    key: &Key,
    row: &[Value],
) -> Result<()> {
    let row_key = layout.row(table, key);
    if let Some(old) = txn.get(&row_key).map_err(errors::from_strata)? {
        let old: Vec<Value> = decode("row", &old)?;
        indexes.delete(txn, layout, key, &old)?;
    }
    txn.set(&row_key, &encode("row", &row)?).map_err(errors::from_strata)?;
    indexes.insert(txn, layout, key, row)
}

/// Deletes the row under `key` and its index entries; nothing if there is none.
fn remove_row(
    txn: &mut strata::Transaction,
    layout: &Layout,
    indexes: &TableIndexes,
    table: &str,
    key: &Key,
) -> Result<()> {
    let row_key = layout.row(table, key);
    if let Some(old) = txn.get(&row_key).map_err(errors::from_strata)? {
        let old: Vec<Value> = decode("row", &old)?;
        indexes.delete(txn, layout, key, &old)?;
        txn.delete(&row_key).map_err(errors::from_strata)?;
    }
    Ok(())
}

/// Removes a table: schema, metadata, row-id counter, rows and index entries.
pub fn drop_table(txn: &mut strata::Transaction, layout: &Layout, table: &str) -> Result<()> {
    for key in [layout.schema(table), layout.meta(table), layout.next_row_id(table)] {
        txn.delete(&key).map_err(errors::from_strata)?;
    }
    delete_range(txn, prefix_range(layout.row_prefix(table)))?;
    delete_range(txn, prefix_range(layout.table_indexes_prefix(table)))
}

/// Records when a table was created, unless it already is (GlueSQL also calls
/// `insert_schema` to change an existing table's schema).
fn record_created(txn: &mut strata::Transaction, layout: &Layout, table: &str) -> Result<()> {
    let key = layout.meta(table);
    if txn.get(&key).map_err(errors::from_strata)?.is_none() {
        let created: NaiveDateTime = Utc::now().naive_utc();
        txn.set(&key, &encode("table metadata", &created)?).map_err(errors::from_strata)?;
    }
    Ok(())
}

fn read_next_row_id(txn: &strata::Transaction, key: &[u8]) -> Result<u64> {
    match txn.get(key).map_err(errors::from_strata)? {
        None => Ok(0),
        Some(bytes) => {
            let bytes: [u8; 8] =
                bytes.as_ref().try_into().map_err(|_| corrupt("row-id counter length"))?;
            Ok(u64::from_be_bytes(bytes))
        }
    }
}

impl StoreMut for StrataStorage {
    fn insert_schema(&mut self, schema: &Schema) -> Result<()> {
        self.write(|txn, layout| {
            txn.set(&layout.schema(&schema.table_name), &encode("schema", schema)?)
                .map_err(errors::from_strata)?;
            record_created(txn, layout, &schema.table_name)
        })
    }

    fn delete_schema(&mut self, table_name: &str) -> Result<()> {
        self.write(|txn, layout| drop_table(txn, layout, table_name))
    }

    fn append_data(&mut self, table_name: &str, rows: Vec<Vec<Value>>) -> Result<()> {
        self.write(|txn, layout| {
            let indexes = TableIndexes::of(layout, &require_schema(txn, layout, table_name)?);
            let counter = layout.next_row_id(table_name);
            let mut next = read_next_row_id(txn, &counter)?;
            for row in rows {
                put_row(txn, layout, &indexes, table_name, &Key::U64(next), &row)?;
                next = next.checked_add(1).ok_or_else(|| {
                    Error::StorageMsg("[strata-gluesql] row ids exhausted".into())
                })?;
            }
            txn.set(&counter, &next.to_be_bytes()).map_err(errors::from_strata)
        })
    }

    fn insert_data(&mut self, table_name: &str, rows: Vec<(Key, Vec<Value>)>) -> Result<()> {
        self.write(|txn, layout| {
            let indexes = TableIndexes::of(layout, &require_schema(txn, layout, table_name)?);
            for (key, row) in rows {
                put_row(txn, layout, &indexes, table_name, &key, &row)?;
            }
            Ok(())
        })
    }

    fn delete_data(&mut self, table_name: &str, keys: Vec<Key>) -> Result<()> {
        self.write(|txn, layout| {
            let indexes = TableIndexes::of(layout, &require_schema(txn, layout, table_name)?);
            for key in keys {
                remove_row(txn, layout, &indexes, table_name, &key)?;
            }
            Ok(())
        })
    }
}

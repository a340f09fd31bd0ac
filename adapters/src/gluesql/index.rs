//! Secondary indexes: `Index` (scans) and `IndexMut` (create, drop), and the upkeep of index
//! entries when rows change.
//!
//! An index entry is the key `index prefix ++ encode(index value) ++ encode(primary key)` with
//! an empty value. Entries of one index therefore sort by index value, then primary key, and
//! every comparison GlueSQL plans (`=`, `<`, `<=`, `>`, `>=`) is one contiguous Strata range;
//! descending order is the same range read backwards. NULL values sort last, as GlueSQL
//! expects (`x > 1` over an index includes rows where `x` is NULL, like its own storages).
//!
//! Entries are written and deleted in the same Strata transaction as the row they point to,
//! so an index is never out of step with its table, even across a crash.

use gluesql_core::ast::{IndexOperator, OrderByExpr};
use gluesql_core::chrono::Utc;
use gluesql_core::data::{Key, Schema, SchemaIndex, SchemaIndexOrd, Value};
use gluesql_core::error::Result;
use gluesql_core::executor::{RowContext, evaluate_stateless};
use gluesql_core::plan::{ExprPlan, plan_scalar_expr};
use gluesql_core::store::{Index, IndexError, IndexMut, RowIter};

use super::StrataStorage;
use super::errors::{self, corrupt};
use super::key_encoding::{Layout, encode_key, prefix_end, prefix_range};
use super::store::{decode, encode, schema_in};
use super::store_mut::delete_range;

/// What keeping one table's indexes up to date needs: its column names (index expressions
/// refer to them) and, per index, where its entries live and its planned expression.
#[derive(Debug)]
pub struct TableIndexes {
    columns: Vec<String>,
    indexes: Vec<(Vec<u8>, ExprPlan)>,
}

impl TableIndexes {
    pub fn of(layout: &Layout, schema: &Schema) -> Self {
        let columns =
            schema.column_defs.iter().flatten().map(|column| column.name.clone()).collect();
        let indexes = schema
            .indexes
            .iter()
            .map(|index| {
                let prefix = layout.index_prefix(&schema.table_name, &index.name);
                (prefix, plan_scalar_expr(index.expr.clone()))
            })
            .collect();
        TableIndexes { columns, indexes }
    }

    /// The entry keys of `row` (primary key `key`), one per index.
    fn entries(&self, layout: &Layout, key: &Key, row: &[Value]) -> Result<Vec<Vec<u8>>> {
        self.indexes
            .iter()
            .map(|(prefix, expr)| {
                let value = index_value(&self.columns, expr, row)?;
                Ok(layout.index_entry(prefix, &value, key))
            })
            .collect()
    }

    pub fn insert(
        &self,
        txn: &mut strata::Transaction,
        layout: &Layout,
        key: &Key,
        row: &[Value],
    ) -> Result<()> {
        for entry in self.entries(layout, key, row)? {
            txn.set(&entry, &[]).map_err(errors::from_strata)?;
        }
        Ok(())
    }

    pub fn delete(
        &self,
        txn: &mut strata::Transaction,
        layout: &Layout,
        key: &Key,
        row: &[Value],
    ) -> Result<()> {
        for entry in self.entries(layout, key, row)? {
            txn.delete(&entry).map_err(errors::from_strata)?;
        }
        Ok(())
    }
}

/// The value of an index expression for one row, as a key.
fn index_value(columns: &[String], expr: &ExprPlan, row: &[Value]) -> Result<Key> {
    let context = RowContext::RefVecData { columns, values: row };
    let value: Value = evaluate_stateless(Some(context), expr)?.try_into()?;
    Key::try_from(value)
}

/// `[start, end)` of the entries of the index at `prefix` that satisfy `op value`.
fn entry_range(prefix: &[u8], op: &IndexOperator, value: &Key) -> (Vec<u8>, Vec<u8>) {
    let (first, end_of_index) = prefix_range(prefix.to_vec());
    let mut at_value = prefix.to_vec();
    at_value.extend_from_slice(&encode_key(value));
    // Every entry for `value` starts with `at_value` (encodings are self-delimiting); the
    // encoding never ends in FF only, so the end exists.
    let after_value = prefix_end(&at_value).unwrap_or_else(|| end_of_index.clone());
    match op {
        IndexOperator::Eq => (at_value, after_value),
        IndexOperator::Gt => (after_value, end_of_index),
        IndexOperator::GtEq => (at_value, end_of_index),
        IndexOperator::Lt => (first, at_value),
        IndexOperator::LtEq => (first, after_value),
    }
}

impl Index for StrataStorage {
    fn scan_indexed_data<'a>(
        &'a self,
        table_name: &str,
        index_name: &str,
        asc: Option<bool>,
        cmp_value: Option<(&IndexOperator, Value)>,
    ) -> Result<RowIter<'a>> {
        let prefix = self.layout.index_prefix(table_name, index_name);
        let (start, end) = match cmp_value {
            None => prefix_range(prefix.clone()),
            Some((op, value)) => entry_range(&prefix, op, &Key::try_from(value)?),
        };
        let entries = self.read_range((&start, &end))?;
        let entries: Box<dyn Iterator<Item = _>> =
            if asc == Some(false) { Box::new(entries.rev()) } else { Box::new(entries) };
        let table = table_name.to_owned();
        let rows = entries.map(move |entry| {
            let (entry_key, _) = entry.map_err(errors::from_strata)?;
            let key = Layout::index_entry_key(&prefix, &entry_key)?;
            let bytes = self
                .read_get(&self.layout.row(&table, &key))?
                .ok_or(IndexError::ConflictOnEmptyIndexValueScan)?;
            Ok((key, decode("row", &bytes)?))
        });
        Ok(Box::new(rows))
    }
}

impl IndexMut for StrataStorage {
    fn create_index(
        &mut self,
        table_name: &str,
        index_name: &str,
        column: &OrderByExpr,
    ) -> Result<()> {
        self.write(|txn, layout| {
            let mut schema = schema_in(txn, layout, table_name)?
                .ok_or_else(|| IndexError::TableNotFound(table_name.to_owned()))?;
            if schema.indexes.iter().any(|index| index.name == index_name) {
                return Err(IndexError::IndexNameAlreadyExists(index_name.to_owned()).into());
            }
            let order = match column.asc {
                None => SchemaIndexOrd::Both,
                Some(true) => SchemaIndexOrd::Asc,
                Some(false) => SchemaIndexOrd::Desc,
            };
            schema.indexes.push(SchemaIndex {
                name: index_name.to_owned(),
                expr: column.expr.clone(),
                order,
                created: Utc::now().naive_utc(),
            });
            txn.set(&layout.schema(table_name), &encode("schema", &schema)?)
                .map_err(errors::from_strata)?;

            // Entries for the rows already there, built from a table scan.
            let one_index =
                Schema { indexes: schema.indexes.split_off(schema.indexes.len() - 1), ..schema };
            let upkeep = TableIndexes::of(layout, &one_index);
            let row_prefix = layout.row_prefix(table_name);
            let (start, end) = prefix_range(row_prefix.clone());
            let rows = txn.range(&start, &end, None).map_err(errors::from_strata)?;
            let mut entries = Vec::new();
            for row in rows {
                let (row_key, bytes) = row.map_err(errors::from_strata)?;
                let key = Layout::row_key_of(&row_prefix, &row_key)?;
                let values: Vec<Value> = decode("row", &bytes)?;
                entries.extend(upkeep.entries(layout, &key, &values)?);
            }
            for entry in entries {
                txn.set(&entry, &[]).map_err(errors::from_strata)?;
            }
            Ok(())
        })
    }

    fn drop_index(&mut self, table_name: &str, index_name: &str) -> Result<()> {
        self.write(|txn, layout| {
            let mut schema = schema_in(txn, layout, table_name)?
                .ok_or_else(|| IndexError::TableNotFound(table_name.to_owned()))?;
            let position = schema
                .indexes
                .iter()
                .position(|index| index.name == index_name)
                .ok_or_else(|| IndexError::IndexNameDoesNotExist(index_name.to_owned()))?;
            schema.indexes.remove(position);
            txn.set(&layout.schema(table_name), &encode("schema", &schema)?)
                .map_err(errors::from_strata)?;
            delete_range(txn, prefix_range(layout.index_prefix(table_name, index_name)))
        })
    }
}

impl StrataStorage {
    /// Whether every row of `table` has exactly its entries in every index of the table and
    /// no index has an entry without its row: the invariant that writing both in one
    /// transaction keeps. Reads one fresh snapshot of the live database; a table that does
    /// not exist is consistent.
    pub fn indexes_match_rows(&self, table: &str) -> Result<bool> {
        indexes_match_rows(self, table)
    }
}

fn indexes_match_rows(storage: &StrataStorage, table: &str) -> Result<bool> {
    let txn = storage.snapshot()?;
    let layout = &storage.layout;
    let Some(schema) = schema_in(&txn, layout, table)? else {
        return Ok(true);
    };
    let upkeep = TableIndexes::of(layout, &schema);
    let row_prefix = layout.row_prefix(table);
    let (start, end) = prefix_range(row_prefix.clone());
    let mut expected = Vec::new();
    for row in txn.range(&start, &end, None).map_err(errors::from_strata)? {
        let (row_key, bytes) = row.map_err(errors::from_strata)?;
        let key = Layout::row_key_of(&row_prefix, &row_key)?;
        let values: Vec<Value> = decode("row", &bytes)?;
        expected.extend(upkeep.entries(layout, &key, &values)?);
    }
    expected.sort();
    let (start, end) = prefix_range(layout.table_indexes_prefix(table));
    let mut found = Vec::new();
    for entry in txn.range(&start, &end, None).map_err(errors::from_strata)? {
        let (key, value) = entry.map_err(errors::from_strata)?;
        if !value.is_empty() {
            return Err(corrupt("index entry with a value"));
        }
        found.push(key.to_vec());
    }
    Ok(expected == found)
}

//! `AlterTable`: renaming tables and columns, adding and dropping columns, each in the
//! session transaction.
//!
//! GlueSQL's default implementations rewrite rows through `insert_data`, which would compute
//! old index entries from the new column list; these versions rewrite rows directly and keep
//! indexes consistent on their own terms:
//! - renaming a table moves its rows, index entries, metadata and row-id counter under the
//!   new name (the part of each key after the table name is unchanged);
//! - renaming a column renames it inside index expressions too (rows are positional);
//! - dropping a column drops the indexes whose expression uses it (GlueSQL's executor does
//!   that first; this covers direct callers), then removes the value from every row.

use gluesql_core::ast::{ColumnDef, Expr, Function};
use gluesql_core::data::{Schema, Value};
use gluesql_core::error::{Error, Result};
use gluesql_core::executor::evaluate_stateless;
use gluesql_core::plan::plan_scalar_expr;
use gluesql_core::store::{AlterTable, AlterTableError};

use super::StrataStorage;
use super::errors;
use super::key_encoding::{Layout, prefix_range};
use super::store::{decode, encode, schema_in};
use super::store_mut::delete_range;

/// Whether an index expression uses `column` (index expressions are built from columns,
/// literals, unary and binary operators, nesting and casts).
fn mentions(expr: &Expr, column: &str) -> bool {
    match expr {
        Expr::Identifier(name) => name == column,
        Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => mentions(inner, column),
        Expr::BinaryOp { left, right, .. } => mentions(left, column) || mentions(right, column),
        Expr::Function(function) => match function.as_ref() {
            Function::Cast { expr: inner, .. } => mentions(inner, column),
            _ => false,
        },
        _ => false,
    }
}

/// Renames `from` to `to` wherever an index expression uses it.
fn rename_in(expr: &mut Expr, from: &str, to: &str) {
    match expr {
        Expr::Identifier(name) if name == from => to.clone_into(name),
        Expr::Nested(inner) | Expr::UnaryOp { expr: inner, .. } => rename_in(inner, from, to),
        Expr::BinaryOp { left, right, .. } => {
            rename_in(left, from, to);
            rename_in(right, from, to);
        }
        Expr::Function(function) => {
            if let Function::Cast { expr: inner, .. } = function.as_mut() {
                rename_in(inner, from, to);
            }
        }
        _ => {}
    }
}

fn table_schema(txn: &strata::Transaction, layout: &Layout, table: &str) -> Result<Schema> {
    schema_in(txn, layout, table)?
        .ok_or_else(|| AlterTableError::TableNotFound(table.to_owned()).into())
}

fn save_schema(txn: &mut strata::Transaction, layout: &Layout, schema: &Schema) -> Result<()> {
    txn.set(&layout.schema(&schema.table_name), &encode("schema", schema)?)
        .map_err(errors::from_strata)
}

/// Moves every key that starts with `from` to the same suffix after `to`.
fn move_prefix(txn: &mut strata::Transaction, from: &[u8], to: &[u8]) -> Result<()> {
    let (start, end) = prefix_range(from.to_vec());
    let entries = txn
        .range(&start, &end, None)
        .map_err(errors::from_strata)?
        .collect::<strata::Result<Vec<_>>>()
        .map_err(errors::from_strata)?;
    for (key, value) in entries {
        let mut moved = to.to_vec();
        moved.extend_from_slice(&key[from.len()..]);
        txn.set(&moved, &value).map_err(errors::from_strata)?;
        txn.delete(&key).map_err(errors::from_strata)?;
    }
    Ok(())
}

/// Moves one key's value to another key, if it has one.
fn move_key(txn: &mut strata::Transaction, from: &[u8], to: &[u8]) -> Result<()> {
    if let Some(value) = txn.get(from).map_err(errors::from_strata)? {
        txn.set(to, &value).map_err(errors::from_strata)?;
        txn.delete(from).map_err(errors::from_strata)?;
    }
    Ok(())
}

/// Rewrites every row of `table` with `change`, leaving index entries alone.
fn rewrite_rows(
    txn: &mut strata::Transaction,
    layout: &Layout,
    table: &str,
    mut change: impl FnMut(&mut Vec<Value>),
) -> Result<()> {
    let (start, end) = prefix_range(layout.row_prefix(table));
    let rows = txn
        .range(&start, &end, None)
        .map_err(errors::from_strata)?
        .collect::<strata::Result<Vec<_>>>()
        .map_err(errors::from_strata)?;
    for (key, bytes) in rows {
        let mut row: Vec<Value> = decode("row", &bytes)?;
        change(&mut row);
        txn.set(&key, &encode("row", &row)?).map_err(errors::from_strata)?;
    }
    Ok(())
}

impl AlterTable for StrataStorage {
    fn rename_schema(&mut self, table_name: &str, new_table_name: &str) -> Result<()> {
        self.write(|txn, layout| {
            let mut schema = table_schema(txn, layout, table_name)?;
            if schema_in(txn, layout, new_table_name)?.is_some() {
                return Err(Error::StorageMsg(format!(
                    "[strata-gluesql] cannot rename {table_name}: table {new_table_name} exists"
                )));
            }
            new_table_name.clone_into(&mut schema.table_name);
            save_schema(txn, layout, &schema)?;
            txn.delete(&layout.schema(table_name)).map_err(errors::from_strata)?;
            move_key(txn, &layout.meta(table_name), &layout.meta(new_table_name))?;
            move_key(txn, &layout.next_row_id(table_name), &layout.next_row_id(new_table_name))?;
            move_prefix(txn, &layout.row_prefix(table_name), &layout.row_prefix(new_table_name))?;
            move_prefix(
                txn,
                &layout.table_indexes_prefix(table_name),
                &layout.table_indexes_prefix(new_table_name),
            )
        })
    }

    fn rename_column(
        &mut self,
        table_name: &str,
        old_column_name: &str,
        new_column_name: &str,
    ) -> Result<()> {
        self.write(|txn, layout| {
            let mut schema = table_schema(txn, layout, table_name)?;
            let columns = schema
                .column_defs
                .as_mut()
                .ok_or_else(|| AlterTableError::SchemalessTableFound(table_name.to_owned()))?;
            if columns.iter().any(|column| column.name == new_column_name) {
                return Err(
                    AlterTableError::AlreadyExistingColumn(new_column_name.to_owned()).into()
                );
            }
            let column = columns
                .iter_mut()
                .find(|column| column.name == old_column_name)
                .ok_or(AlterTableError::RenamingColumnNotFound)?;
            new_column_name.clone_into(&mut column.name);
            for index in &mut schema.indexes {
                rename_in(&mut index.expr, old_column_name, new_column_name);
            }
            save_schema(txn, layout, &schema)
        })
    }

    fn add_column(&mut self, table_name: &str, column_def: &ColumnDef) -> Result<()> {
        let default = match (&column_def.default, column_def.nullable) {
            (Some(expr), _) => {
                let expr = plan_scalar_expr(expr.clone());
                evaluate_stateless(None, &expr)?.try_into()?
            }
            (None, true) => Value::Null,
            (None, false) => {
                return Err(AlterTableError::DefaultValueRequired(column_def.clone()).into());
            }
        };
        self.write(|txn, layout| {
            let mut schema = table_schema(txn, layout, table_name)?;
            let columns = schema
                .column_defs
                .as_mut()
                .ok_or_else(|| AlterTableError::SchemalessTableFound(table_name.to_owned()))?;
            if columns.iter().any(|column| column.name == column_def.name) {
                return Err(AlterTableError::AlreadyExistingColumn(column_def.name.clone()).into());
            }
            columns.push(column_def.clone());
            save_schema(txn, layout, &schema)?;
            rewrite_rows(txn, layout, table_name, |row| row.push(default.clone()))
        })
    }

    fn drop_column(&mut self, table_name: &str, column_name: &str, if_exists: bool) -> Result<()> {
        self.write(|txn, layout| {
            let mut schema = table_schema(txn, layout, table_name)?;
            let columns = schema
                .column_defs
                .as_mut()
                .ok_or_else(|| AlterTableError::SchemalessTableFound(table_name.to_owned()))?;
            let Some(position) = columns.iter().position(|column| column.name == column_name)
            else {
                if if_exists {
                    return Ok(());
                }
                return Err(AlterTableError::DroppingColumnNotFound(column_name.to_owned()).into());
            };
            columns.remove(position);
            let (dropped, kept) = std::mem::take(&mut schema.indexes)
                .into_iter()
                .partition(|index| mentions(&index.expr, column_name));
            schema.indexes = kept;
            for index in dropped {
                delete_range(txn, prefix_range(layout.index_prefix(table_name, &index.name)))?;
            }
            save_schema(txn, layout, &schema)?;
            rewrite_rows(txn, layout, table_name, |row| {
                if position < row.len() {
                    row.remove(position);
                }
            })
        })
    }
}

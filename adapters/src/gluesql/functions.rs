//! `CustomFunction` and `CustomFunctionMut`: functions made with `CREATE FUNCTION`, stored
//! one per key (postcard-encoded) under the storage prefix.
//!
//! GlueSQL's `fetch_function` lends a reference into the storage, so the session keeps the
//! functions it can see in memory (by upper-case name: SQL function names are
//! case-insensitive, and GlueSQL looks them up upper-cased): reloaded from its transaction whenever one starts (GlueSQL
//! begins one before every statement) and after a rollback, and updated with its own writes.

use std::collections::BTreeMap;

use gluesql_core::data::CustomFunction as StoredFunction;
use gluesql_core::error::Result;
use gluesql_core::store::{CustomFunction, CustomFunctionMut};

use super::StrataStorage;
use super::errors;
use super::store::{decode, encode};

impl StrataStorage {
    /// Loads the functions visible to the session (its transaction, a fresh snapshot, or the
    /// view's timestamp) into the in-memory map.
    pub(super) fn reload_functions(&mut self) -> Result<()> {
        let (start, end) = self.layout.all_functions();
        let mut functions = BTreeMap::new();
        for entry in self.read_range((&start, &end))? {
            let (_, bytes) = entry.map_err(errors::from_strata)?;
            let function: StoredFunction = decode("function", &bytes)?;
            functions.insert(function.func_name.to_uppercase(), function);
        }
        self.functions = functions;
        Ok(())
    }
}

impl CustomFunction for StrataStorage {
    fn fetch_function<'a>(&'a self, func_name: &str) -> Result<Option<&'a StoredFunction>> {
        Ok(self.functions.get(&func_name.to_uppercase()))
    }

    fn fetch_all_functions(&self) -> Result<Vec<&StoredFunction>> {
        Ok(self.functions.values().collect())
    }
}

impl CustomFunctionMut for StrataStorage {
    fn insert_function(&mut self, func: StoredFunction) -> Result<()> {
        let bytes = encode("function", &func)?;
        let name = func.func_name.to_uppercase();
        self.write(|txn, layout| {
            txn.set(&layout.function(&name), &bytes).map_err(errors::from_strata)
        })?;
        self.functions.insert(name, func);
        Ok(())
    }

    fn delete_function(&mut self, func_name: &str) -> Result<()> {
        let name = func_name.to_uppercase();
        self.write(|txn, layout| txn.delete(&layout.function(&name)).map_err(errors::from_strata))?;
        self.functions.remove(&name);
        Ok(())
    }
}

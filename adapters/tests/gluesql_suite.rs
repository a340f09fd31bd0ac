//! GlueSQL's own test suite (`gluesql-test-suite` 0.20) on [`StrataStorage`]: every
//! `generate_*_tests!` macro the suite offers, each case on a fresh tree in its own
//! directory. Nothing is skipped or filtered.

#![cfg(feature = "gluesql")]
#![allow(clippy::unwrap_used)]

use gluesql_core::prelude::Glue;
use gluesql_test_suite::*;
use strata::TreeBuilder;
use strata_adapters::gluesql::StrataStorage;

/// One suite case's database: a Strata tree in a temporary directory, removed afterwards.
struct StrataTester {
    glue: Glue<StrataStorage>,
    _dir: tempfile::TempDir,
}

impl Tester<StrataStorage> for StrataTester {
    fn new(namespace: &str) -> Self {
        let dir = tempfile::Builder::new().prefix(namespace).tempdir().unwrap();
        let tree = TreeBuilder::new().with_path(dir.path().to_path_buf()).build().unwrap();
        StrataTester { glue: Glue::new(StrataStorage::new(tree)), _dir: dir }
    }

    fn get_glue(&mut self) -> &mut Glue<StrataStorage> {
        &mut self.glue
    }
}

generate_store_tests!(test, StrataTester);
generate_alter_table_tests!(test, StrataTester);
generate_custom_function_tests!(test, StrataTester);
generate_index_tests!(test, StrataTester);
generate_transaction_tests!(test, StrataTester);
generate_alter_table_index_tests!(test, StrataTester);
generate_transaction_alter_table_tests!(test, StrataTester);
generate_transaction_index_tests!(test, StrataTester);
generate_metadata_table_tests!(test, StrataTester);
generate_metadata_index_tests!(test, StrataTester);

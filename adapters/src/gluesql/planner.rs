//! `Planner`: GlueSQL's default planning plus its index planner, so filters and `ORDER BY`
//! on indexed expressions become index range scans ([`super::index`]).

use gluesql_core::error::Result;
use gluesql_core::plan::StatementPlan;
use gluesql_core::planner::{
    fetch_schema_map, plan_aggregate, plan_hash_join, plan_index, plan_primary_key,
    plan_schemaless, validate,
};
use gluesql_core::store::Planner;

use super::StrataStorage;

impl Planner for StrataStorage {
    fn plan(&self, statement: StatementPlan) -> Result<StatementPlan> {
        let schema_map = fetch_schema_map(self, &statement)?;
        validate(&schema_map, &statement)?;
        let statement = plan_schemaless(&schema_map, statement)?;
        let statement = plan_primary_key(&schema_map, statement);
        let statement = plan_index(&schema_map, statement);
        let statement = plan_hash_join(&schema_map, statement);
        Ok(plan_aggregate(statement))
    }
}

//! SQL on Strata through GlueSQL: tables with an index, inserts, a join, an aggregate, an
//! update in an explicit transaction, then a reopen and the same queries again.
//!
//! Run with `cargo run -p strata-examples --features sql --example sql`; it keeps its database in `sql-db/`
//! under the current directory.

use strata::TreeBuilder;
use strata_adapters::gluesql::StrataStorage;
use strata_adapters::gluesql::gluesql_core::prelude::{Glue, Payload, Value};

/// Runs `sql` and returns the rows of its last statement (empty if it was not a SELECT).
fn query(
    glue: &mut Glue<StrataStorage>,
    sql: &str,
) -> Result<Vec<Vec<Value>>, Box<dyn std::error::Error>> {
    let payloads = glue.execute(sql)?;
    Ok(match payloads.into_iter().last() {
        Some(Payload::Select { rows, .. }) => rows,
        _ => Vec::new(),
    })
}

fn show(title: &str, rows: &[Vec<Value>]) {
    println!("{title}");
    for row in rows {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
        println!("  {}", cells.join(" | "));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::path::PathBuf::from("sql-db");
    let _ = std::fs::remove_dir_all(&path);

    let totals_sql = "SELECT c.name, COUNT(*) AS orders, SUM(o.amount) AS total
                      FROM customer c JOIN orders o ON o.customer_id = c.id
                      GROUP BY c.name ORDER BY c.name";
    let big_orders_sql = "SELECT id, amount FROM orders WHERE amount >= 100 ORDER BY amount";

    {
        let tree = TreeBuilder::new().with_path(path.clone()).build()?;
        let mut glue = Glue::new(StrataStorage::new(tree.clone()));
        glue.execute(
            "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount INTEGER);
             CREATE INDEX orders_amount ON orders (amount);
             INSERT INTO customer VALUES (1, 'Ada'), (2, 'Brian'), (3, 'Chen');
             INSERT INTO orders VALUES (10, 1, 120), (11, 1, 35), (12, 2, 300), (13, 3, 80);",
        )?;

        let totals = query(&mut glue, totals_sql)?;
        show("order totals per customer:", &totals);
        assert_eq!(totals.len(), 3);

        // Move an order from Ada to Chen and raise it, atomically.
        glue.execute(
            "BEGIN;
             UPDATE orders SET customer_id = 3, amount = 150 WHERE id = 11;
             DELETE FROM orders WHERE id = 13;
             COMMIT;",
        )?;

        let big = query(&mut glue, big_orders_sql)?;
        show("orders of 100 or more (an index range scan):", &big);
        assert_eq!(
            big,
            vec![
                vec![Value::I64(10), Value::I64(120)],
                vec![Value::I64(11), Value::I64(150)],
                vec![Value::I64(12), Value::I64(300)],
            ]
        );
        tree.close()?;
    }

    // Reopen: the tables, rows and index are all there.
    let tree = TreeBuilder::new().with_path(path.clone()).build()?;
    let mut glue = Glue::new(StrataStorage::new(tree.clone()));
    let totals = query(&mut glue, totals_sql)?;
    show("after reopening, order totals per customer:", &totals);
    assert_eq!(
        totals,
        vec![
            vec![Value::Str("Ada".into()), Value::I64(1), Value::I64(120)],
            vec![Value::Str("Brian".into()), Value::I64(1), Value::I64(300)],
            vec![Value::Str("Chen".into()), Value::I64(1), Value::I64(150)],
        ]
    );
    assert_eq!(query(&mut glue, big_orders_sql)?.len(), 3);
    tree.close()?;
    std::fs::remove_dir_all(&path)?;
    println!("sql example: ok");
    Ok(())
}

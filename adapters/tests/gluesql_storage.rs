//! What GlueSQL's own suite never checks, on [`StrataStorage`]: the documented key layout,
//! data and indexes across a reopen, two sessions racing on one row, a power cut in the
//! middle of a multi-statement transaction, the time-travel view, nested `BEGIN`, two
//! storages sharing a tree, and damaged stored bytes.

#![cfg(feature = "gluesql")]
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Barrier};

use gluesql_core::prelude::{Glue, Payload, Value};
use gluesql_core::store::Transaction as _;
use strata::{Durability, Mode, Tree, TreeBuilder};
use strata_adapters::gluesql::{StrataStorage, is_conflict, strata_error_kind};
use strata_core::ManualClock;
use strata_vfs::{CrashPolicy, MemFs};

fn glue(tree: &Tree) -> Glue<StrataStorage> {
    Glue::new(StrataStorage::new(tree.clone()))
}

fn run(glue: &mut Glue<StrataStorage>, sql: &str) {
    glue.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The rows of the last statement in `sql`, which must be a SELECT.
fn select(glue: &mut Glue<StrataStorage>, sql: &str) -> Vec<Vec<Value>> {
    let payloads = glue.execute(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    match payloads.into_iter().last() {
        Some(Payload::Select { rows, .. }) => rows,
        other => panic!("{sql}: not a select: {other:?}"),
    }
}

fn int(v: i64) -> Value {
    Value::I64(v)
}

fn text(v: &str) -> Value {
    Value::Str(v.to_owned())
}

fn all_keys(tree: &Tree) -> Vec<Vec<u8>> {
    let txn = tree.begin_with_mode(Mode::ReadOnly).unwrap();
    txn.keys(b"", &[0xFF; 16], None).unwrap().map(|k| k.unwrap().to_vec()).collect()
}

/// The worked example of `docs/format/gluesql.md`, byte for byte.
#[test]
fn worked_example_key_layout() {
    let tree = TreeBuilder::new().with_vfs(MemFs::new()).build().unwrap();
    let mut g = glue(&tree);
    run(&mut g, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");
    run(&mut g, "CREATE INDEX users_name ON users (name)");
    run(&mut g, "INSERT INTO users VALUES (7, 'ann')");

    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
    let keys: Vec<String> = all_keys(&tree).iter().map(|k| hex(k)).collect();
    let prefix = "67 6c 75 65 73 71 6c 00"; // "gluesql\0"
    let users = "75 73 65 72 73 00 01"; // "users", terminator
    let seven = "05 80 00 00 00 00 00 00 07"; // I64 tag, 7 with the sign bit flipped
    assert_eq!(
        keys,
        vec![
            // index entry: 'i', table, index name, Str tag + "ann" + terminator, primary key
            format!(
                "{prefix} 69 {users} 75 73 65 72 73 5f 6e 61 6d 65 00 01 0f 61 6e 6e 00 01 {seven}"
            ),
            format!("{prefix} 6d {users}"), // 'm': table metadata
            format!("{prefix} 72 {users} {seven}"), // 'r': the row
            format!("{prefix} 73 {users}"), // 's': the schema
        ]
    );
    // Primary-key order is key order: -1 sorts before 7 although its two's complement
    // bytes are larger.
    run(&mut g, "INSERT INTO users VALUES (-1, 'zed')");
    assert_eq!(select(&mut g, "SELECT id FROM users"), vec![vec![int(-1)], vec![int(7)]]);
    assert_eq!(select(&mut g, "SELECT id FROM users WHERE name > 'b'"), vec![vec![int(-1)]]);
}

fn build_on(path: &std::path::Path) -> Tree {
    TreeBuilder::new().with_path(path.to_path_buf()).build().unwrap()
}

#[test]
fn data_indexes_and_functions_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let tree = build_on(dir.path());
        let mut g = glue(&tree);
        run(&mut g, "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT, price INTEGER)");
        run(&mut g, "CREATE INDEX item_price ON item (price)");
        run(&mut g, "CREATE TABLE log (msg TEXT)");
        run(&mut g, "INSERT INTO item VALUES (1, 'pen', 3), (2, 'book', 12), (3, 'lamp', 30)");
        run(&mut g, "INSERT INTO log VALUES ('a'), ('b')");
        run(&mut g, "CREATE FUNCTION double_it(n INT) RETURN n * 2");
        run(&mut g, "BEGIN; UPDATE item SET price = 5 WHERE id = 1; COMMIT;");
        tree.close().unwrap();
    }
    let tree = build_on(dir.path());
    let mut g = glue(&tree);
    assert!(g.storage.indexes_match_rows("item").unwrap());
    assert_eq!(
        select(&mut g, "SELECT id, price FROM item WHERE price >= 5 ORDER BY price DESC"),
        vec![vec![int(3), int(30)], vec![int(2), int(12)], vec![int(1), int(5)]]
    );
    assert_eq!(
        select(&mut g, "SELECT DOUBLE_IT(price) FROM item WHERE id = 2"),
        vec![vec![int(24)]]
    );
    // The generated-key counter survived too: new rows go after the old ones.
    run(&mut g, "INSERT INTO log VALUES ('c')");
    assert_eq!(
        select(&mut g, "SELECT msg FROM log"),
        vec![vec![text("a")], vec![text("b")], vec![text("c")]]
    );
}

/// Two sessions on clones of one tree update the same row in explicit transactions that
/// overlap; exactly one commit wins, the other fails with Strata's conflict kind and none of
/// its writes (including an insert) is visible.
#[test]
fn two_sessions_conflicting_update_have_exactly_one_winner() {
    let tree = TreeBuilder::new().with_vfs(MemFs::new()).build().unwrap();
    let mut setup = glue(&tree);
    run(&mut setup, "CREATE TABLE account (id INTEGER PRIMARY KEY, balance INTEGER)");
    run(&mut setup, "CREATE INDEX account_balance ON account (balance)");
    run(&mut setup, "CREATE TABLE audit (id INTEGER PRIMARY KEY, who TEXT)");
    run(&mut setup, "INSERT INTO account VALUES (1, 100)");

    let both_updated = Arc::new(Barrier::new(2));
    let sessions: Vec<_> = [(10, 150), (20, 50)]
        .into_iter()
        .map(|(who, balance)| {
            let tree = tree.clone();
            let barrier = Arc::clone(&both_updated);
            std::thread::spawn(move || {
                let mut g = glue(&tree);
                run(&mut g, "BEGIN");
                run(&mut g, &format!("UPDATE account SET balance = {balance} WHERE id = 1"));
                run(&mut g, &format!("INSERT INTO audit VALUES ({who}, 'session {who}')"));
                barrier.wait();
                let outcome = g.execute("COMMIT").map(|_| ());
                assert!(!g.storage.in_transaction());
                (who, balance, outcome)
            })
        })
        .collect();
    let outcomes: Vec<_> = sessions.into_iter().map(|s| s.join().unwrap()).collect();

    let winners: Vec<_> = outcomes.iter().filter(|(_, _, r)| r.is_ok()).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let (winner, balance, _) = winners[0];
    for (_, _, outcome) in &outcomes {
        if let Err(error) = outcome {
            assert!(is_conflict(error), "{error}");
            assert_eq!(strata_error_kind(error), Some("TransactionConflict"));
        }
    }
    let mut g = glue(&tree);
    assert_eq!(
        select(&mut g, "SELECT balance FROM account WHERE id = 1"),
        vec![vec![int(*balance)]]
    );
    assert_eq!(select(&mut g, "SELECT id FROM audit"), vec![vec![int(*winner)]]);
    assert_eq!(
        select(&mut g, &format!("SELECT id FROM account WHERE balance = {balance}")),
        vec![vec![int(1)]]
    );
    assert!(g.storage.indexes_match_rows("account").unwrap());
}

const CRASH_SETUP: &str = "
    CREATE TABLE stock (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);
    CREATE INDEX stock_qty ON stock (qty);
    CREATE INDEX stock_name ON stock (name);
    INSERT INTO stock VALUES (1, 'bolt', 10), (2, 'nut', 20), (3, 'gear', 30);
";

/// The multi-statement transaction the power cut interrupts: an insert, an update of an
/// indexed column, a delete and a new index entry in each index.
const CRASH_TRANSACTION: [&str; 4] = [
    "INSERT INTO stock VALUES (4, 'cog', 40)",
    "UPDATE stock SET qty = 11, name = 'bolt2' WHERE id = 1",
    "DELETE FROM stock WHERE id = 2",
    "INSERT INTO stock VALUES (5, 'pin', 5)",
];

fn stock_rows(g: &mut Glue<StrataStorage>) -> Vec<Vec<Value>> {
    select(g, "SELECT id, name, qty FROM stock")
}

fn rows(spec: &[(i64, &str, i64)]) -> Vec<Vec<Value>> {
    spec.iter().map(|&(id, name, qty)| vec![int(id), text(name), int(qty)]).collect()
}

/// Which of the two allowed states a recovered database is in, after checking that its
/// indexes agree with its rows and that index scans return what table scans do.
fn recovered_state(image: MemFs, ctx: &str) -> &'static str {
    let before = rows(&[(1, "bolt", 10), (2, "nut", 20), (3, "gear", 30)]);
    let after = rows(&[(1, "bolt2", 11), (3, "gear", 30), (4, "cog", 40), (5, "pin", 5)]);
    let tree = TreeBuilder::new().with_vfs(image).build().unwrap();
    let mut g = glue(&tree);
    assert!(g.storage.indexes_match_rows("stock").unwrap(), "{ctx}: index out of step");
    let found = stock_rows(&mut g);
    let by_qty = select(&mut g, "SELECT id, name, qty FROM stock WHERE qty >= 0 ORDER BY qty");
    let mut expected_by_qty = found.clone();
    expected_by_qty.sort_by_key(|row| match row[2] {
        Value::I64(q) => q,
        _ => unreachable!(),
    });
    assert_eq!(by_qty, expected_by_qty, "{ctx}: index scan disagrees with table scan");
    if found == before {
        "before"
    } else if found == after {
        "after"
    } else {
        panic!("{ctx}: partial transaction after recovery: {found:?}")
    }
}

/// A power cut at every durability call of a durable multi-statement transaction's commit,
/// under every crash policy, and an image taken between its statements: the recovered
/// database holds all of the transaction or none of it, indexes included.
#[test]
fn power_cut_mid_transaction_is_all_or_nothing() {
    let policies = [
        CrashPolicy::DropUnsynced,
        CrashPolicy::KeepUnsynced,
        CrashPolicy::TornTail,
        CrashPolicy::GarbageTail,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for policy in policies {
        for crash_at in 1..=4_u64 {
            let ctx = format!("{policy:?}, sync call {crash_at} of the commit");
            let mem = MemFs::new();
            let tree = TreeBuilder::new().with_vfs(mem.clone()).build().unwrap();
            let mut g =
                Glue::new(StrataStorage::new(tree.clone()).with_durability(Durability::Immediate));
            run(&mut g, CRASH_SETUP);

            run(&mut g, "BEGIN");
            for (i, sql) in CRASH_TRANSACTION.iter().enumerate() {
                run(&mut g, sql);
                if i == 1 {
                    // A power cut between statements: nothing of the transaction exists yet.
                    let image = mem.crash(policy, crash_at);
                    assert_eq!(recovered_state(image, &format!("{ctx}, mid-way")), "before");
                }
            }
            mem.arm_crash(mem.sync_count() + crash_at, policy, crash_at);
            let committed = g.execute("COMMIT").is_ok();
            let image = mem.take_crash_image().unwrap_or_else(|| mem.crash(policy, crash_at));
            drop(g);
            drop(tree);
            let state = recovered_state(image, &ctx);
            if committed {
                assert_eq!(state, "after", "{ctx}: acknowledged durable commit lost");
            }
            seen.insert(state);
        }
    }
    // The crash points cover both outcomes, so the check above tested something.
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec!["after", "before"]);
}

#[test]
fn time_travel_view_reads_the_past_and_refuses_writes() {
    let clock = ManualClock::at(1_000_000);
    let tree = TreeBuilder::new()
        .with_vfs(MemFs::new())
        .with_versioning(true, 0)
        .with_clock(clock.clone())
        .build()
        .unwrap();
    let mut g = glue(&tree);
    run(&mut g, "CREATE TABLE city (id INTEGER PRIMARY KEY, name TEXT, pop INTEGER)");
    run(&mut g, "CREATE INDEX city_pop ON city (pop)");
    run(&mut g, "INSERT INTO city VALUES (1, 'Oslo', 700), (2, 'Rome', 2800)");
    run(&mut g, "CREATE FUNCTION half(n INT) RETURN n / 2");
    clock.set(2_000_000);
    run(&mut g, "UPDATE city SET pop = 900 WHERE id = 1");
    run(&mut g, "DELETE FROM city WHERE id = 2");
    run(&mut g, "INSERT INTO city VALUES (3, 'Lima', 10000)");
    run(&mut g, "DROP FUNCTION half");

    let mut past = Glue::new(g.storage.at_version(1_500_000));
    assert_eq!(
        select(&mut past, "SELECT id, pop FROM city"),
        vec![vec![int(1), int(700)], vec![int(2), int(2800)]]
    );
    // An index range scan at the past timestamp.
    assert_eq!(select(&mut past, "SELECT id FROM city WHERE pop > 1000"), vec![vec![int(2)]]);
    assert_eq!(select(&mut past, "SELECT HALF(pop) FROM city WHERE id = 1"), vec![vec![int(350)]]);

    for write in [
        "INSERT INTO city VALUES (9, 'Nowhere', 0)",
        "UPDATE city SET pop = 0",
        "CREATE TABLE other (id INTEGER)",
        "BEGIN",
    ] {
        let error = past.execute(write).unwrap_err().to_string();
        assert!(error.contains("read-only") && error.contains("1500000"), "{write}: {error}");
    }
    // The present is untouched by the view.
    assert_eq!(
        select(&mut g, "SELECT id, pop FROM city"),
        vec![vec![int(1), int(900)], vec![int(3), int(10000)]]
    );
}

#[test]
fn nested_begin_is_an_error_and_keeps_the_transaction() {
    let tree = TreeBuilder::new().with_vfs(MemFs::new()).build().unwrap();
    let mut g = glue(&tree);
    run(&mut g, "CREATE TABLE t (id INTEGER PRIMARY KEY)");
    // COMMIT and ROLLBACK with nothing open do nothing.
    run(&mut g, "COMMIT");
    run(&mut g, "ROLLBACK");
    run(&mut g, "BEGIN");
    run(&mut g, "INSERT INTO t VALUES (1)");
    let error = g.execute("BEGIN").unwrap_err().to_string();
    assert!(error.contains("nested transaction"), "{error}");
    assert!(g.storage.in_transaction());
    run(&mut g, "INSERT INTO t VALUES (2)");
    // Another session does not see the open transaction's rows.
    assert_eq!(select(&mut glue(&tree), "SELECT id FROM t"), Vec::<Vec<Value>>::new());
    run(&mut g, "COMMIT");
    assert_eq!(select(&mut glue(&tree), "SELECT id FROM t"), vec![vec![int(1)], vec![int(2)]]);
    // Rollback really discards.
    run(&mut g, "BEGIN; DELETE FROM t; ROLLBACK;");
    assert_eq!(select(&mut g, "SELECT COUNT(*) FROM t"), vec![vec![int(2)]]);
    // Trait-level: begin(false) twice.
    g.storage.begin(false).unwrap();
    assert!(g.storage.begin(false).is_err());
    g.storage.rollback().unwrap();
}

#[test]
fn storages_with_their_own_prefixes_share_a_tree() {
    let tree = TreeBuilder::new().with_vfs(MemFs::new()).build().unwrap();
    let mut other = tree.begin().unwrap();
    other.set(b"app/config", b"x").unwrap();
    other.commit_blocking().unwrap();

    let mut a = Glue::new(StrataStorage::with_prefix(tree.clone(), b"sql-a/"));
    let mut b = Glue::new(StrataStorage::with_prefix(tree.clone(), b"sql-b/"));
    run(&mut a, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('from a')");
    run(&mut b, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('from b')");
    run(&mut b, "DROP TABLE t");
    assert_eq!(select(&mut a, "SELECT v FROM t"), vec![vec![text("from a")]]);
    assert!(b.execute("SELECT v FROM t").is_err());
    let keys = all_keys(&tree);
    assert!(keys.contains(&b"app/config".to_vec()));
    assert!(keys.iter().all(|k| k.starts_with(b"sql-a/") || k == b"app/config"), "{keys:?}");
}

/// Damaged stored bytes give a clear error, never a panic or a wrong answer.
#[test]
fn damaged_rows_and_keys_give_clear_errors() {
    let tree = TreeBuilder::new().with_vfs(MemFs::new()).build().unwrap();
    let mut g = glue(&tree);
    run(&mut g, "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)");
    run(&mut g, "INSERT INTO t VALUES (1, 'a')");
    let row_key = all_keys(&tree).into_iter().find(|k| k[8] == b'r').unwrap();

    let mut raw = tree.begin().unwrap();
    raw.set(&row_key, &[0xFF, 0xFF, 0xFF]).unwrap();
    raw.commit_blocking().unwrap();
    let error = g.execute("SELECT * FROM t").unwrap_err().to_string();
    assert!(error.contains("damaged stored data"), "{error}");

    let mut truncated = row_key.clone();
    truncated.truncate(row_key.len() - 3);
    let mut raw = tree.begin().unwrap();
    raw.delete(&row_key).unwrap();
    raw.set(&truncated, &[]).unwrap();
    raw.commit_blocking().unwrap();
    let error = g.execute("SELECT * FROM t").unwrap_err().to_string();
    assert!(error.contains("damaged stored data"), "{error}");
}

//! A tour of Strata doing real work: load, concurrent transfers with retries, durable commits,
//! snapshot reads while writers run, range scans both ways, close and reopen.
//!
//! Run it with `cargo run --release -p strata-examples --example demo [DIR]` (default
//! `./demo-db`, wiped first).

use std::path::PathBuf;
use std::time::Instant;

use strata::{Durability, Error, TreeBuilder};

const ACCOUNTS: u64 = 10_000;
const START_BALANCE: u64 = 1_000;
const TRANSFERS_PER_TASK: u64 = 2_000;
const TASKS: u64 = 8;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn balance(v: &[u8]) -> Result<u64, BoxError> {
    Ok(u64::from_le_bytes(v.try_into()?))
}

fn account_key(i: u64) -> Vec<u8> {
    format!("acct:{i:06}").into_bytes()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "demo-db".into()));
    let _ = std::fs::remove_dir_all(&dir);
    let tree = TreeBuilder::new().with_path(dir.clone()).build()?;

    // 1. Load: accounts in 1,000-key transactions.
    let t = Instant::now();
    for chunk in 0..ACCOUNTS / 1_000 {
        let mut txn = tree.begin()?;
        for i in chunk * 1_000..(chunk + 1) * 1_000 {
            txn.set(&account_key(i), &START_BALANCE.to_le_bytes())?;
        }
        txn.commit().await?;
    }
    println!("loaded {ACCOUNTS} accounts in {:.1} ms", t.elapsed().as_secs_f64() * 1e3);

    // 2. Concurrent transfers. Snapshot isolation makes a transfer that raced another on the
    //    same account fail with TransactionConflict; it is simply retried. Every other
    //    transfer is made durable before its commit returns.
    let t = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let tree = tree.clone();
        tasks.push(tokio::spawn(async move {
            let mut x = (task + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let (mut done, mut retries) = (0u64, 0u64);
            while done < TRANSFERS_PER_TASK {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (from, to) = (x % ACCOUNTS, (x >> 24) % ACCOUNTS);
                if from == to {
                    continue;
                }
                let mut txn = tree.begin()?;
                if done % 2 == 0 {
                    txn.set_durability(Durability::Immediate);
                }
                let a = balance(&txn.get(&account_key(from))?.ok_or("missing account")?)?;
                let b = balance(&txn.get(&account_key(to))?.ok_or("missing account")?)?;
                let amount = (x >> 48) % 50;
                if a < amount {
                    continue;
                }
                txn.set(&account_key(from), &(a - amount).to_le_bytes())?;
                txn.set(&account_key(to), &(b + amount).to_le_bytes())?;
                match txn.commit().await {
                    Ok(()) => done += 1,
                    Err(Error::TransactionConflict) => retries += 1,
                    Err(e) => return Err(Box::new(e) as BoxError),
                }
            }
            Ok::<_, BoxError>(retries)
        }));
    }

    // 3. Meanwhile, audits read consistent snapshots without blocking the writers.
    let mut audits = 0;
    while tasks.iter().any(|t| !t.is_finished()) {
        let snapshot = tree.begin()?;
        let mut total = 0;
        for item in snapshot.range(b"acct:", b"acct;", None)? {
            total += balance(&item?.1)?;
        }
        assert_eq!(total, ACCOUNTS * START_BALANCE, "a snapshot saw half a transfer");
        audits += 1;
        tokio::task::yield_now().await;
    }
    let mut retries = 0;
    for t in tasks {
        retries += t.await??;
    }
    let secs = t.elapsed().as_secs_f64();
    let transfers = TASKS * TRANSFERS_PER_TASK;
    println!(
        "{transfers} transfers by {TASKS} tasks in {secs:.2} s ({:.0}/s), {retries} conflict retries, \
         {audits} consistent audits of all {ACCOUNTS} accounts meanwhile",
        transfers as f64 / secs
    );
    let stats = tree.stats();
    println!(
        "group commit: {} commits in {} WAL writes with {} fsyncs",
        stats.commits, stats.commit_groups, stats.wal_syncs
    );

    // 4. Range scans in both directions.
    let txn = tree.begin()?;
    let richest_first: Vec<_> =
        txn.range(b"acct:", b"acct;", Some(3))?.rev().collect::<Result<_, _>>()?;
    println!(
        "last three accounts by key: {:?}",
        richest_first.iter().map(|(k, _)| String::from_utf8_lossy(k)).collect::<Vec<_>>()
    );
    drop(txn);

    // 5. Close, reopen, and check that every committed transfer survived.
    tree.close()?;
    drop(tree);
    let t = Instant::now();
    let tree = TreeBuilder::new().with_path(dir.clone()).build()?;
    let reopen_ms = t.elapsed().as_secs_f64() * 1e3;
    let txn = tree.begin()?;
    let mut total = 0;
    let mut count = 0;
    for item in txn.keys(b"acct:", b"acct;", None)? {
        let key = item?;
        total += balance(&txn.get(&key)?.ok_or("missing account")?)?;
        count += 1;
    }
    assert_eq!((count, total), (ACCOUNTS, ACCOUNTS * START_BALANCE));
    println!("reopened in {reopen_ms:.1} ms: {count} accounts, total balance {total} (unchanged)");
    Ok(())
}

//! kill -9 on the real filesystem: a child process commits in a loop and reports every
//! acknowledged commit on stdout; the parent kills it at a random moment, reopens the
//! directory and checks that every acknowledged commit survived (a process crash keeps the
//! OS's buffers, so even Eventual commits must) and that the survivors are a prefix of the
//! commit order.
//!
//! The child is this same test binary, run with `--ignored --exact kill9_child` and the
//! directory in `STRATA_KILL9_DIR`. With `STRATA_KILL9_VLOG=1` it runs with the value log on
//! (1 MiB files, so they rotate) and each transaction's companion value is 2 KiB, in the log:
//! the parent then also checks every surviving large value byte for byte.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strata::{Durability, TreeBuilder};

const CHILD_DIR_VAR: &str = "STRATA_KILL9_DIR";
const CHILD_VLOG_VAR: &str = "STRATA_KILL9_VLOG";

fn builder(dir: std::path::PathBuf, vlog: bool) -> TreeBuilder {
    TreeBuilder::new()
        .with_path(dir)
        .with_enable_vlog(vlog)
        .with_vlog_value_threshold(1024)
        .with_vlog_max_file_size(1024 * 1024)
}

/// The companion value of transaction `i`: 2 KiB (in the value log) with the log on, else 1
/// byte.
fn pair_value(i: u64, vlog: bool) -> Vec<u8> {
    if vlog { strata_tests::tagged_value(i, 2048) } else { b"x".to_vec() }
}

fn key(i: u64) -> Vec<u8> {
    format!("k{i:08}").into_bytes()
}

/// The child: commits transaction i = next, next+1, ... forever, each writing key i and a
/// companion key (so atomicity is checked too), alternating durability, printing "ack i".
#[test]
#[ignore = "run by kill9_loses_no_acknowledged_commit as a child process"]
fn kill9_child() {
    let dir = std::env::var(CHILD_DIR_VAR).expect("the parent sets the directory");
    let vlog = std::env::var(CHILD_VLOG_VAR).is_ok_and(|v| v == "1");
    let tree = builder(dir.into(), vlog).build().expect("child opens");
    let mut next = {
        let txn = tree.begin().expect("begin");
        txn.keys(b"k", b"l", None).expect("keys").count() as u64
    };
    loop {
        let mut txn = tree.begin().expect("begin");
        if next % 2 == 0 {
            txn.set_durability(Durability::Immediate);
        }
        txn.set(&key(next), &next.to_le_bytes()).expect("set");
        txn.set(format!("pair{next:08}").as_bytes(), &pair_value(next, vlog)).expect("set");
        txn.commit_blocking().expect("commit");
        println!("ack {next}");
        next += 1;
    }
}

#[test]
fn kill9_loses_no_acknowledged_commit() {
    kill9_loop("kill9_loses_no_acknowledged_commit", false);
}

#[test]
fn kill9_with_the_value_log_loses_no_acknowledged_commit_nor_value() {
    kill9_loop("kill9_with_the_value_log_loses_no_acknowledged_commit_nor_value", true);
}

fn kill9_loop(test: &str, vlog: bool) {
    let rounds = strata_tests::scaled(6);
    let seed = strata_tests::test_seed(test);
    let mut rng = strata_tests::Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let mut acked_total = 0u64;
    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "kill9_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_VAR, dir.path())
            .env(CHILD_VLOG_VAR, if vlog { "1" } else { "0" })
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = line.strip_prefix("ack ").and_then(|n| n.parse::<u64>().ok()) {
                    let _ = tx.send(n);
                }
            }
        });
        // Let it commit for a while (wait for the first ack so every round does some work).
        let first = rx.recv_timeout(Duration::from_secs(60)).expect("child commits");
        let mut last = Some(first);
        let deadline = Instant::now() + Duration::from_millis(20 + rng.below(200));
        while Instant::now() < deadline {
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(5)) {
                last = Some(n);
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader");
        while let Ok(n) = rx.try_recv() {
            last = Some(n);
        }
        let acked = last.expect("at least one ack");

        let tree = builder(dir.path().into(), vlog).build().expect("reopens after kill -9");
        let txn = tree.begin().expect("begin");
        let present: Vec<u64> = txn
            .range(b"k", b"l", None)
            .expect("range")
            .map(|r| u64::from_le_bytes(r.expect("read").1.as_ref().try_into().expect("8 bytes")))
            .collect();
        let survivors = present.len() as u64;
        assert!(
            survivors > acked,
            "round {round}: acknowledged commit {acked} lost ({survivors} survived)"
        );
        assert!(
            present.iter().enumerate().all(|(i, &v)| v == i as u64),
            "round {round}: survivors are not a prefix of the commit order"
        );
        for i in 0..survivors {
            assert_eq!(
                txn.get(format!("pair{i:08}").as_bytes()).expect("read").as_deref(),
                Some(&pair_value(i, vlog)[..]),
                "round {round}: transaction {i} only half present, or its value is wrong"
            );
        }
        acked_total = survivors;
        drop(txn);
        tree.close().expect("close");
    }
    eprintln!(
        "kill -9 loop (vlog {vlog}): {rounds} kills, {acked_total} commits survived in total"
    );
}

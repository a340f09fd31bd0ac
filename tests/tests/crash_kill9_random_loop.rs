//! The random crash loop on the real filesystem, with kill -9 for the crash: a child process
//! runs a random versioned workload (both durability levels, both isolation levels, reads,
//! overwrites, deletes, explicit-timestamp writes, values up to a few KiB so the large ones
//! go through the value log, flushes, compactions and value log GC, with the background
//! threads on) and prints every acknowledged commit; the parent SIGKILLs it at a random
//! moment, reopens the directory, and checks every version of every key against the
//! expected-state oracle (`strata_tests::oracle`): the history must be exactly a prefix of the
//! commit order holding every acknowledged commit (a process crash keeps the operating
//! system's buffers, so Eventual commits must survive too) and at most the one in flight, and
//! latest and time-travel reads must answer as the model says. Then the next child continues
//! the workload where the recovered state ends.
//!
//! Transaction `n` of a run is determined by the run's seed and `n` alone ([`plan`]), so the
//! parent knows every write the child made without being told more than the acknowledged
//! numbers; its commit timestamp is fixed too (the child runs on a manual clock). Every so
//! many kills the loop starts a fresh directory. CI: 100 kills; `STRATA_SOAK=<n>` runs n times
//! as many (`STRATA_SOAK=100`: 10,000). `STRATA_SEED` replays the plans (the kill moments
//! depend on timing).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use strata::{Durability, Isolation, Mode, Tree, TreeBuilder};
use strata_core::ManualClock;
use strata_tests::oracle::{
    Event, Oracle, OracleWrite, Versions, Written, check_point, decode, decode_pairs, describe,
    min_value_len, read_versions, value_at, view,
};
use strata_tests::{Rng, scaled, show, test_seed};

const CHILD_DIR_VAR: &str = "STRATA_KILL_LOOP_DIR";
const CHILD_SEED_VAR: &str = "STRATA_KILL_LOOP_SEED";
/// Kills in the CI tier.
const CI_KILLS: u64 = 100;
/// Kills on one directory before the loop starts a fresh one (bounds the history).
const KILLS_PER_DIRECTORY: u64 = 25;
const KEYS: u64 = 40;
/// Commit timestamps are multiples of this; explicit-timestamp writes fall between them.
const TS_STEP: u64 = 1_000_000;
/// The key holding the number of the last committed transaction.
const MARKER: &[u8] = b"~marker";

fn key(i: u64) -> Vec<u8> {
    format!("key{i:03}").into_bytes()
}

/// The commit timestamp of transaction `n`.
fn commit_ts(n: u64) -> u64 {
    TS_STEP * (n + 1)
}

/// What the child does around transaction `n` and what the transaction writes.
#[derive(Debug, Clone)]
struct Plan {
    writes: Vec<OracleWrite>,
    immediate: bool,
    serializable: bool,
    reads: Vec<Vec<u8>>,
    /// After the commit: 1 flush, 2 a maintenance step, 3 value log GC, else nothing.
    after: u64,
}

/// Transaction `n` of the run with `seed`.
fn plan(seed: u64, n: u64) -> Plan {
    let mut rng = Rng::new(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut writes = Vec::new();
    for _ in 0..rng.range(1, 4) {
        let k = key(rng.below(KEYS));
        let len = if rng.percent(35) {
            rng.range(600, 4000) as usize
        } else {
            rng.range(min_value_len(&k) as u64, 200) as usize
        };
        let w = Written { writer: n, len: describe(&k, n, len).len() as u32 };
        match rng.below(100) {
            0..=14 => writes.push(OracleWrite::Delete(k)),
            // Between two earlier commits, unique to this transaction.
            15..=24 if n > 0 => {
                writes.push(OracleWrite::SetAt(k, w, commit_ts(rng.below(n)) + 1 + n))
            }
            _ => writes.push(OracleWrite::Set(k, w)),
        }
    }
    let marker = Written { writer: n, len: min_value_len(MARKER) as u32 };
    writes.push(OracleWrite::Set(MARKER.to_vec(), marker));
    let reads = (0..rng.below(3)).map(|_| key(rng.below(KEYS))).collect();
    Plan {
        writes,
        immediate: rng.percent(35),
        serializable: rng.percent(50),
        reads,
        after: match rng.below(40) {
            0 => 1,
            1 | 2 => 2,
            3 => 3,
            _ => 0,
        },
    }
}

fn builder(dir: &Path, clock: Arc<ManualClock>) -> TreeBuilder {
    TreeBuilder::new()
        .with_path(dir.to_path_buf())
        .with_clock(clock)
        .with_versioning(true, 0)
        .with_max_memtable_size(64 * 1024)
        .with_vlog_value_threshold(512)
        .with_vlog_max_file_size(1024 * 1024)
}

/// The number of the transaction after the last one `tree` holds.
fn next_txn(tree: &Tree) -> u64 {
    let txn = tree.begin_with_mode(Mode::ReadOnly).expect("begin");
    match txn.get(MARKER).expect("read the marker") {
        None => 0,
        Some(v) => decode(MARKER, &v).expect("the marker describes itself").writer + 1,
    }
}

/// The child: runs the plans from where the directory's state ends, printing "ack n" after
/// each acknowledged commit, until it is killed.
#[test]
#[ignore = "run by kill9_random_loop as a child process"]
fn kill9_random_loop_child() {
    let dir = std::env::var(CHILD_DIR_VAR).expect("the parent sets the directory");
    let seed: u64 = std::env::var(CHILD_SEED_VAR).expect("seed").parse().expect("seed");
    let clock = Arc::new(ManualClock::default());
    let tree = builder(Path::new(&dir), clock.clone()).build().expect("child opens");
    let mut n = next_txn(&tree);
    loop {
        let plan = plan(seed, n);
        let mut txn = tree.begin().expect("begin");
        if plan.serializable {
            txn.set_isolation(Isolation::Serializable).expect("isolation");
        }
        for k in &plan.reads {
            if let Some(v) = txn.get(k).expect("read") {
                decode(k, &v).unwrap_or_else(|e| panic!("child read {}: {e}", show(k)));
            }
        }
        txn.set_durability(if plan.immediate {
            Durability::Immediate
        } else {
            Durability::Eventual
        });
        for w in &plan.writes {
            match w {
                OracleWrite::Set(k, v) => txn.set(k, &v.bytes(k)).expect("set"),
                OracleWrite::Delete(k) => txn.delete(k).expect("delete"),
                OracleWrite::SetAt(k, v, ts) => {
                    txn.set_at_version(k, &v.bytes(k), *ts).expect("set")
                }
            }
        }
        clock.set(commit_ts(n));
        txn.commit_blocking().expect("commit");
        println!("ack {n}");
        match plan.after {
            1 => tree.flush().expect("flush"),
            2 => {
                tree.maintenance_step(4).expect("maintenance");
            }
            3 => {
                tree.run_vlog_gc().expect("gc");
            }
            _ => {}
        }
        n += 1;
    }
}

/// Runs one child on `dir` until it has acknowledged something and a random while longer,
/// kills it, and returns the last acknowledged transaction number.
fn run_and_kill(exe: &Path, dir: &Path, seed: u64, rng: &mut Rng, ctx: &str) -> Option<u64> {
    let mut child = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "kill9_random_loop_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR_VAR, dir)
        .env(CHILD_SEED_VAR, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("ack ").and_then(|n| n.parse::<u64>().ok()) {
                let _ = tx.send(n);
            }
        }
    });
    let mut last = rx.recv_timeout(Duration::from_secs(60)).ok();
    let deadline = Instant::now() + Duration::from_millis(rng.range(5, 150));
    while Instant::now() < deadline {
        if let Ok(n) = rx.recv_timeout(Duration::from_millis(2)) {
            last = Some(n);
        }
    }
    let early_exit = child.try_wait().expect("poll child");
    let _ = child.kill();
    child.wait().expect("reap");
    reader.join().expect("reader");
    let stderr = err_reader.join().expect("stderr reader");
    while let Ok(n) = rx.try_recv() {
        last = Some(n);
    }
    assert!(early_exit.is_none(), "{ctx}: the child exited by itself ({early_exit:?}): {stderr}");
    assert!(last.is_some(), "{ctx}: the child acknowledged nothing: {stderr}");
    last
}

/// Latest and time-travel reads of `tree` against `state`.
fn check_reads(tree: &Tree, state: &Versions, newest_ts: u64, rng: &mut Rng) -> Result<(), String> {
    let txn = tree.begin_with_mode(Mode::ReadOnly).map_err(|e| format!("begin: {e:?}"))?;
    let got = decode_pairs(txn.range(b"key", b"kez", None).map_err(|e| format!("{e:?}"))?)?;
    if got != view(state, None, b"key", b"kez") {
        return Err("a scan of the latest state differs from the model".into());
    }
    for _ in 0..20 {
        let k = key(rng.below(KEYS));
        let ts = rng.range(0, newest_ts);
        check_point(&k, txn.get_at_version(&k, ts), value_at(state, &k, Some(ts)), "get_at")?;
        check_point(&k, txn.get(&k), value_at(state, &k, None), "get")?;
    }
    let ts = rng.range(0, newest_ts);
    let got = decode_pairs(
        txn.range_at_version(b"key", b"kez", ts, None).map_err(|e| format!("{e:?}"))?,
    )?;
    if got != view(state, Some(ts), b"key", b"kez") {
        return Err(format!("a scan at timestamp {ts} differs from the model"));
    }
    Ok(())
}

#[test]
fn kill9_random_loop() {
    let seed = test_seed("kill9_random_loop");
    let kills = scaled(CI_KILLS);
    let mut rng = Rng::new(seed);
    let exe = std::env::current_exe().expect("test binary");
    let started = Instant::now();
    let (mut commits, mut in_flight_kept, mut versions) = (0u64, 0u64, 0u64);
    let mut dir = tempfile::tempdir().expect("tempdir");
    let mut oracle = Oracle::new();
    let mut next = 0u64;
    for kill in 0..kills {
        if kill % KILLS_PER_DIRECTORY == 0 {
            dir = tempfile::tempdir().expect("tempdir");
            oracle = Oracle::new();
            next = 0;
        }
        // One run seed per directory, so the plans continue across its kills.
        let run_seed = seed ^ (kill / KILLS_PER_DIRECTORY);
        let ctx = format!("seed {seed}, kill {kill}");
        let acked = run_and_kill(&exe, dir.path(), run_seed, &mut rng, &ctx)
            .expect("checked by run_and_kill");
        assert!(acked >= next, "{ctx}: the child acknowledged {acked}, before {next}");
        // Every acknowledged transaction, and the one after it (it may have committed without
        // being acknowledged).
        for n in next..=acked + 1 {
            let writes = plan(run_seed, n).writes;
            oracle.begin(Event::Commit { txn: n, ts: commit_ts(n), writes });
            if n <= acked {
                oracle.acked(true);
            }
        }
        let tree = builder(dir.path(), Arc::new(ManualClock::default()))
            .build()
            .unwrap_or_else(|e| panic!("{ctx}: reopening after kill -9 fails: {e:?}"));
        let got = read_versions(&tree).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let k = oracle.find_prefix(&got, true).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        oracle.confirm(k);
        in_flight_kept += u64::from(next + k as u64 > acked + 1);
        commits += k as u64;
        next += k as u64;
        assert_eq!(next_txn(&tree), next, "{ctx}: the marker names the last commit");
        versions += got.len() as u64;
        check_reads(&tree, oracle.live(), commit_ts(next), &mut rng)
            .unwrap_or_else(|e| panic!("{ctx}: {e}"));
        tree.close().expect("close");
    }
    eprintln!(
        "kill -9 random loop, seed {seed}: {kills} kills in {:.1?}, {commits} commits \
         survived (every acknowledged one), {in_flight_kept} unacknowledged in-flight commits \
         kept, {versions} recovered versions checked",
        started.elapsed()
    );
    assert!(commits > kills, "the children committed");
}

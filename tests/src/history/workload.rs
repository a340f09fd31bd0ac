//! Concurrent workloads that record a [`History`] for the checker.
//!
//! A run is a series of rounds. In each round `clients` threads run transactions at once over
//! a small key space of their own (keys are prefixed with the round, so rounds never touch
//! each other's keys and each round's history is checked on its own, which keeps the checker
//! fast however long the run). A transaction that fails to commit with
//! [`Error::TransactionConflict`] is recorded as aborted; any other error fails the run.

use std::collections::BTreeMap;

use strata::{Error, Tree};

use super::{History, Op, Report, Txn, check};
use crate::Rng;

/// A long run reports its progress on stderr every this many committed transactions.
const PROGRESS_EVERY: usize = 500_000;

/// Which data model the transactions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Lists: append unique elements, read whole lists.
    ListAppend,
    /// Registers: read, read-then-write, and range reads over the key space.
    Register,
}

/// Shape of a run.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// The data model.
    pub model: Model,
    /// Concurrent clients (threads).
    pub clients: usize,
    /// Keys per round.
    pub keys: u64,
    /// Transactions each client runs per round.
    pub txns_per_round: usize,
    /// Most operations per transaction.
    pub max_ops: usize,
    /// Run rounds until at least this many transactions committed.
    pub min_committed: usize,
    /// Seed of every client's choices.
    pub seed: u64,
}

/// What a whole run found.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Rounds run.
    pub rounds: usize,
    /// Transactions checked.
    pub txns: usize,
    /// Of which committed.
    pub committed: usize,
    /// Dependency edges checked.
    pub edges: usize,
    /// Anomaly counts by name.
    pub counts: BTreeMap<String, usize>,
    /// The first anomalies found, described with their transactions.
    pub examples: Vec<String>,
}

impl Summary {
    /// How many anomalies called `name` were found.
    pub fn count(&self, name: &str) -> usize {
        self.counts.get(name).copied().unwrap_or(0)
    }

    /// Anomalies that snapshot isolation rules out (everything but G2).
    pub fn snapshot_violations(&self) -> usize {
        self.counts.iter().filter(|(n, _)| n.as_str() != "G2").map(|(_, c)| c).sum()
    }

    /// All anomalies.
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    fn add(&mut self, history: &History, report: &Report) {
        self.rounds += 1;
        self.txns += report.txns;
        self.committed += report.committed;
        self.edges += report.edges;
        for a in &report.anomalies {
            *self.counts.entry(a.name()).or_insert(0) += 1;
        }
        if self.examples.len() < 5 && !report.anomalies.is_empty() {
            self.examples.push(format!("round {}:\n{}", self.rounds - 1, report.describe(history)));
        }
    }
}

/// Runs `workload` on `tree` round after round and checks each round's history.
pub fn run(tree: &Tree, workload: &Workload) -> Summary {
    let mut summary = Summary::default();
    let mut round = 0u64;
    let started = std::time::Instant::now();
    let mut next_progress = PROGRESS_EVERY;
    while summary.committed < workload.min_committed {
        let history = run_round(tree, workload, round);
        let report = check(&history);
        summary.add(&history, &report);
        round += 1;
        if summary.committed >= next_progress {
            next_progress += PROGRESS_EVERY;
            eprintln!(
                "  {:?}: {} committed of {} checked, anomalies {:?}, {:.0?}",
                workload.model,
                summary.committed,
                summary.txns,
                summary.counts,
                started.elapsed()
            );
        }
    }
    summary
}

fn run_round(tree: &Tree, w: &Workload, round: u64) -> History {
    let per_client: Vec<Vec<Txn>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..w.clients)
            .map(|client| {
                let tree = tree.clone();
                let seed = w.seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ client as u64;
                s.spawn(move || {
                    Client { tree, w: *w, round, client, rng: Rng::new(seed), next: 0 }.run()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("client thread")).collect()
    });
    History { txns: per_client.into_iter().flatten().collect() }
}

struct Client {
    tree: Tree,
    w: Workload,
    round: u64,
    client: usize,
    rng: Rng,
    /// Counter that makes every element / value this client writes unique.
    next: u64,
}

impl Client {
    fn run(mut self) -> Vec<Txn> {
        (0..self.w.txns_per_round).map(|_| self.one_txn()).collect()
    }

    fn key(&self, k: u64) -> Vec<u8> {
        format!("h{:08}/{k:04}", self.round).into_bytes()
    }

    fn unique(&mut self) -> u64 {
        self.next += 1;
        ((self.client as u64 + 1) << 40) | self.next
    }

    fn one_txn(&mut self) -> Txn {
        let mut txn = self.tree.begin().expect("begin");
        let n = 1 + self.rng.index(self.w.max_ops);
        let mut ops = Vec::with_capacity(n + 2);
        for _ in 0..n {
            // Give the other clients a chance to run in between, so transactions overlap even
            // on a machine with few cores.
            std::thread::yield_now();
            let key = self.rng.below(self.w.keys);
            let dice = self.rng.below(100);
            match self.w.model {
                Model::ListAppend => {
                    let current = decode(txn.get(&self.key(key)).expect("get"));
                    if dice < 50 {
                        let elem = self.unique();
                        let mut list = current;
                        list.push(elem);
                        txn.set(&self.key(key), &encode(&list)).expect("set");
                        ops.push(Op::Append { key, elem });
                    } else {
                        ops.push(Op::ReadList { key, list: current });
                    }
                }
                Model::Register => {
                    if dice < 25 {
                        let a = self.rng.below(self.w.keys);
                        let b = self.rng.below(self.w.keys);
                        let (lo, hi) = (a.min(b), a.max(b) + 1);
                        let iter = txn.range(&self.key(lo), &self.key(hi), None).expect("range");
                        let found = iter
                            .map(|r| {
                                let (k, v) = r.expect("range item");
                                (self.key_id(&k), decode_value(&v))
                            })
                            .collect();
                        ops.push(Op::RangeRead { lo, hi, found });
                    } else {
                        let value = txn.get(&self.key(key)).expect("get").map(|v| decode_value(&v));
                        ops.push(Op::Read { key, value });
                        if dice >= 60 {
                            let value = self.unique();
                            txn.set(&self.key(key), &value.to_le_bytes()).expect("set");
                            ops.push(Op::Write { key, value });
                        }
                    }
                }
            }
        }
        let committed = match txn.commit_blocking() {
            Ok(()) => true,
            Err(Error::TransactionConflict) => false,
            Err(e) => panic!("commit failed with {e}"),
        };
        Txn { client: self.client, ops, committed }
    }

    fn key_id(&self, key: &[u8]) -> u64 {
        let text = std::str::from_utf8(key).expect("utf-8 key");
        text.rsplit('/').next().and_then(|k| k.parse().ok()).expect("key id")
    }
}

fn encode(list: &[u64]) -> Vec<u8> {
    list.iter().flat_map(|e| e.to_le_bytes()).collect()
}

fn decode(value: Option<strata::Bytes>) -> Vec<u64> {
    let Some(v) = value else { return Vec::new() };
    v.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect()
}

fn decode_value(v: &[u8]) -> u64 {
    u64::from_le_bytes(v.try_into().expect("8-byte register value"))
}

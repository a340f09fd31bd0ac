//! An isolation history checker in the style of Elle (Kingsbury and Alvaro, VLDB 2020).
//!
//! ```text
//! workload clients ──> History (each transaction: its ops, the values it read, committed?)
//!                         │
//!             infer (per key: version order; ww, wr, rw edges)   + non-cycle anomalies
//!                         │                                        (G1a, G1b, internal,
//!                     Graph ── SCCs ── cycles: G0, G1c, G-single, G2   incompatible order)
//! ```
//!
//! Two data models make the version order recoverable from what clients observed, without
//! trusting the database:
//!
//! - **List append**: every key holds a list; transactions append unique elements and read
//!   whole lists. Every read of a key must be a prefix of the longest one, which is then the
//!   key's version order.
//! - **Read-write register with range reads**: every key holds a register (absent at first);
//!   every write stores a value unique to its key and follows a read of that key in the same
//!   transaction, so "read `a`, then wrote `b`" places `b` right after `a`. A range read
//!   reads every key of the key space inside its bounds, absent ones included, which is how
//!   predicate anomalies (phantoms) show up as `rw` edges.
//!
//! [`check`] returns every anomaly found; each cycle prints as its chain of edges.

pub mod graph;
mod infer;
pub mod workload;

use std::fmt;

pub use graph::{Cycle, CycleKind, Edge, EdgeKind, Graph, TxnId};

/// One operation of a transaction, with what it observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// List append: `elem` (unique in the history) appended to `key`'s list.
    Append {
        /// The key.
        key: u64,
        /// The element.
        elem: u64,
    },
    /// List read: `key`'s whole list.
    ReadList {
        /// The key.
        key: u64,
        /// What it held.
        list: Vec<u64>,
    },
    /// Register write: `value` (unique for `key`, never 0) stored under `key`.
    Write {
        /// The key.
        key: u64,
        /// The value.
        value: u64,
    },
    /// Register read: `key`'s value, `None` if absent.
    Read {
        /// The key.
        key: u64,
        /// What it held.
        value: Option<u64>,
    },
    /// Register range read over the key space's keys in `lo..hi`: the present ones with their
    /// values, ascending; every key of `lo..hi` not listed was read as absent.
    RangeRead {
        /// First key.
        lo: u64,
        /// One past the last key.
        hi: u64,
        /// Present keys and their values.
        found: Vec<(u64, u64)>,
    },
}

/// One transaction of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// The client (thread) that ran it.
    pub client: usize,
    /// Its operations, in order.
    pub ops: Vec<Op>,
    /// `true` if its commit succeeded; `false` if it aborted (nothing it wrote may be seen).
    pub committed: bool,
}

/// Everything a workload did.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The transactions; their index is their [`TxnId`].
    pub txns: Vec<Txn>,
}

impl History {
    /// Committed transactions.
    pub fn committed(&self) -> usize {
        self.txns.iter().filter(|t| t.committed).count()
    }
}

/// Something the checker found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anomaly {
    /// A dependency cycle.
    Cycle(Cycle),
    /// G1a: a committed transaction read a version written by an aborted one.
    AbortedRead {
        /// The reader.
        reader: TxnId,
        /// The aborted writer.
        writer: TxnId,
        /// The key.
        key: u64,
    },
    /// G1b: a committed transaction read a version its writer later overwrote itself.
    IntermediateRead {
        /// The reader.
        reader: TxnId,
        /// The writer.
        writer: TxnId,
        /// The key.
        key: u64,
    },
    /// Reads of one key that no single version order explains (two lists neither of which
    /// is a prefix of the other; a register version with two successors; a value nobody
    /// wrote).
    IncompatibleOrder {
        /// The key.
        key: u64,
        /// What was seen.
        detail: String,
    },
    /// A transaction did not see its own earlier write.
    Internal {
        /// The transaction.
        txn: TxnId,
        /// The key.
        key: u64,
    },
}

impl Anomaly {
    /// Short name, as Elle and Adya spell them.
    pub fn name(&self) -> String {
        match self {
            Anomaly::Cycle(c) => c.kind.to_string(),
            Anomaly::AbortedRead { .. } => "G1a".into(),
            Anomaly::IntermediateRead { .. } => "G1b".into(),
            Anomaly::IncompatibleOrder { .. } => "incompatible-order".into(),
            Anomaly::Internal { .. } => "internal".into(),
        }
    }

    /// `true` for anomalies snapshot isolation also rules out (everything but G2).
    pub fn violates_snapshot_isolation(&self) -> bool {
        !matches!(self, Anomaly::Cycle(Cycle { kind: CycleKind::G2, .. }))
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::Cycle(c) => write!(f, "{c}"),
            Anomaly::AbortedRead { reader, writer, key } => {
                write!(f, "G1a: T{reader} read k{key} written by aborted T{writer}")
            }
            Anomaly::IntermediateRead { reader, writer, key } => {
                write!(f, "G1b: T{reader} read an intermediate version of k{key} from T{writer}")
            }
            Anomaly::IncompatibleOrder { key, detail } => {
                write!(f, "incompatible-order on k{key}: {detail}")
            }
            Anomaly::Internal { txn, key } => {
                write!(f, "internal: T{txn} did not read its own write of k{key}")
            }
        }
    }
}

/// What [`check`] found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Transactions checked (committed and aborted).
    pub txns: usize,
    /// Committed ones (the graph's nodes).
    pub committed: usize,
    /// Dependency edges.
    pub edges: usize,
    /// Every anomaly.
    pub anomalies: Vec<Anomaly>,
}

impl Report {
    /// Anomalies called `name` (see [`Anomaly::name`]).
    pub fn named(&self, name: &str) -> Vec<&Anomaly> {
        self.anomalies.iter().filter(|a| a.name() == name).collect()
    }

    /// Every anomaly on its own line, with the transactions of each cycle spelled out.
    pub fn describe(&self, history: &History) -> String {
        let mut s = String::new();
        for a in &self.anomalies {
            s.push_str(&a.to_string());
            s.push('\n');
            if let Anomaly::Cycle(c) = a {
                for e in &c.edges {
                    if let Some(t) = history.txns.get(e.from) {
                        s.push_str(&format!(
                            "    T{} (client {}): {:?}\n",
                            e.from, t.client, t.ops
                        ));
                    }
                }
            }
        }
        s
    }
}

/// Checks a history: builds its dependency graph and reports every anomaly.
pub fn check(history: &History) -> Report {
    let (graph, mut anomalies) = infer::dependencies(history);
    anomalies.extend(graph.cycles().into_iter().map(Anomaly::Cycle));
    Report {
        txns: history.txns.len(),
        committed: history.committed(),
        edges: graph.edge_count(),
        anomalies,
    }
}

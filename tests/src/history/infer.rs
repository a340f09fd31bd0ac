//! From observations to dependencies: recover each key's version order from what was read,
//! then derive the ww, wr and rw edges (and the anomalies that need no cycle).

use std::collections::HashMap;

use super::graph::{EdgeKind, Graph, TxnId};
use super::{Anomaly, History, Op};

/// Who wrote a version, and whether it was that transaction's last write of the key.
#[derive(Debug, Clone, Copy)]
struct Writer {
    txn: TxnId,
    committed: bool,
    final_write: bool,
}

/// Builds the dependency graph of `history` and the anomalies found on the way.
pub(super) fn dependencies(history: &History) -> (Graph, Vec<Anomaly>) {
    let mut graph = Graph::new(history.txns.len());
    let mut anomalies = Vec::new();
    lists(history, &mut graph, &mut anomalies);
    registers(history, &mut graph, &mut anomalies);
    (graph, anomalies)
}

/// Every appended element's writer, keyed by (key, element).
fn list_writers(history: &History) -> HashMap<(u64, u64), Writer> {
    let mut writers = HashMap::new();
    for (id, t) in history.txns.iter().enumerate() {
        let mut last_append: HashMap<u64, u64> = HashMap::new();
        for op in &t.ops {
            if let Op::Append { key, elem } = op {
                last_append.insert(*key, *elem);
            }
        }
        for op in &t.ops {
            if let Op::Append { key, elem } = op {
                let final_write = last_append.get(key) == Some(elem);
                writers
                    .insert((*key, *elem), Writer { txn: id, committed: t.committed, final_write });
            }
        }
    }
    writers
}

fn lists(history: &History, graph: &mut Graph, anomalies: &mut Vec<Anomaly>) {
    let writers = list_writers(history);
    // Committed external reads per key: (reader, list).
    let mut reads: HashMap<u64, Vec<(TxnId, &Vec<u64>)>> = HashMap::new();
    for (id, t) in history.txns.iter().enumerate().filter(|(_, t)| t.committed) {
        let mut own: HashMap<u64, Vec<u64>> = HashMap::new();
        for op in &t.ops {
            match op {
                Op::Append { key, elem } => own.entry(*key).or_default().push(*elem),
                Op::ReadList { key, list } => {
                    if let Some(mine) = own.get(key)
                        && !list.ends_with(mine)
                    {
                        anomalies.push(Anomaly::Internal { txn: id, key: *key });
                    }
                    reads.entry(*key).or_default().push((id, list));
                }
                _ => {}
            }
        }
    }
    for (key, key_reads) in reads {
        let Some(longest) = key_reads.iter().map(|(_, l)| *l).max_by_key(|l| l.len()) else {
            continue;
        };
        if let Some((_, bad)) = key_reads.iter().find(|(_, l)| !longest.starts_with(l)) {
            anomalies.push(Anomaly::IncompatibleOrder {
                key,
                detail: format!("read {bad:?} is not a prefix of {longest:?}"),
            });
            continue;
        }
        let writer_at = |i: usize| longest.get(i).and_then(|e| writers.get(&(key, *e)));
        for (i, elem) in longest.iter().enumerate() {
            match writers.get(&(key, *elem)) {
                None => anomalies.push(Anomaly::IncompatibleOrder {
                    key,
                    detail: format!("element {elem} was never appended"),
                }),
                Some(w) => {
                    if let Some(next) = writer_at(i + 1)
                        && w.committed
                        && next.committed
                    {
                        graph.add(w.txn, next.txn, EdgeKind::Ww, key);
                    }
                }
            }
        }
        for (reader, list) in &key_reads {
            if let Some(last) = list.len().checked_sub(1).and_then(writer_at) {
                observe(*reader, *last, key, graph, anomalies);
            }
            if let Some(next) = writer_at(list.len()).filter(|w| w.committed) {
                graph.add(*reader, next.txn, EdgeKind::Rw, key);
            }
        }
    }
}

/// A committed `reader` observed a version `w` wrote: a wr edge, or G1a / G1b.
fn observe(reader: TxnId, w: Writer, key: u64, graph: &mut Graph, anomalies: &mut Vec<Anomaly>) {
    if w.txn == reader {
        return;
    }
    if !w.committed {
        anomalies.push(Anomaly::AbortedRead { reader, writer: w.txn, key });
    } else if !w.final_write {
        anomalies.push(Anomaly::IntermediateRead { reader, writer: w.txn, key });
    } else {
        graph.add(w.txn, reader, EdgeKind::Wr, key);
    }
}

/// A register version: `None` is the initial absent state.
type Version = Option<u64>;

fn registers(history: &History, graph: &mut Graph, anomalies: &mut Vec<Anomaly>) {
    let mut writers: HashMap<(u64, u64), Writer> = HashMap::new();
    for (id, t) in history.txns.iter().enumerate() {
        let mut last: HashMap<u64, u64> = HashMap::new();
        for op in &t.ops {
            if let Op::Write { key, value } = op {
                last.insert(*key, *value);
            }
        }
        for op in &t.ops {
            if let Op::Write { key, value } = op {
                let final_write = last.get(key) == Some(value);
                writers.insert(
                    (*key, *value),
                    Writer { txn: id, committed: t.committed, final_write },
                );
            }
        }
    }
    // Version order: a committed transaction that read `a` and then wrote `b` puts `b` right
    // after `a`. External reads: (reader, key, version).
    let mut successors: HashMap<(u64, Version), Vec<u64>> = HashMap::new();
    let mut external: Vec<(TxnId, u64, Version)> = Vec::new();
    for (id, t) in history.txns.iter().enumerate().filter(|(_, t)| t.committed) {
        let mut reads = ExternalReads { txn: id, own: HashMap::new(), seen: HashMap::new() };
        for op in &t.ops {
            match op {
                Op::Read { key, value } => reads.read(*key, *value, &mut external, anomalies),
                Op::RangeRead { lo, hi, found } => {
                    let found: HashMap<u64, u64> = found.iter().copied().collect();
                    for key in *lo..*hi {
                        reads.read(key, found.get(&key).copied(), &mut external, anomalies);
                    }
                }
                Op::Write { key, value } => {
                    if !reads.own.contains_key(key)
                        && let Some(before) = reads.seen.get(key)
                    {
                        successors.entry((*key, *before)).or_default().push(*value);
                    }
                    reads.own.insert(*key, *value);
                }
                _ => {}
            }
        }
    }
    for ((key, before), after) in &successors {
        if after.len() > 1 {
            anomalies.push(Anomaly::IncompatibleOrder {
                key: *key,
                detail: format!(
                    "version {before:?} was overwritten by each of {after:?} (lost update)"
                ),
            });
        }
        for b in after {
            let (Some(prev), Some(next)) =
                (before.and_then(|a| writers.get(&(*key, a))), writers.get(&(*key, *b)))
            else {
                continue;
            };
            if prev.committed && next.committed {
                graph.add(prev.txn, next.txn, EdgeKind::Ww, *key);
            }
        }
    }
    for (reader, key, version) in external {
        if let Some(v) = version {
            match writers.get(&(key, v)) {
                Some(w) => observe(reader, *w, key, graph, anomalies),
                None => anomalies.push(Anomaly::IncompatibleOrder {
                    key,
                    detail: format!("value {v} was never written"),
                }),
            }
        }
        for b in successors.get(&(key, version)).into_iter().flatten() {
            if let Some(w) = writers.get(&(key, *b)).filter(|w| w.committed) {
                graph.add(reader, w.txn, EdgeKind::Rw, key);
            }
        }
    }
}

/// One transaction's register reads, split into reads of its own writes (checked, no edges)
/// and external reads (edges).
struct ExternalReads {
    txn: TxnId,
    /// Its own writes so far.
    own: HashMap<u64, u64>,
    /// The last external version it read of each key.
    seen: HashMap<u64, Version>,
}

impl ExternalReads {
    fn read(
        &mut self,
        key: u64,
        value: Version,
        external: &mut Vec<(TxnId, u64, Version)>,
        anomalies: &mut Vec<Anomaly>,
    ) {
        match self.own.get(&key) {
            Some(mine) if value != Some(*mine) => {
                anomalies.push(Anomaly::Internal { txn: self.txn, key });
            }
            Some(_) => {}
            None => {
                self.seen.insert(key, value);
                external.push((self.txn, key, value));
            }
        }
    }
}

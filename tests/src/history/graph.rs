//! The dependency graph of a history and the search for its cycles.
//!
//! Nodes are committed transactions; an edge `a -> b` says `a` must precede `b` in any serial
//! order: `ww` (b overwrote a's version), `wr` (b read a's version), `rw` (a read a version
//! that b overwrote: an anti-dependency). A cycle is an anomaly, named by its edges as Adya
//! does: only `ww` is G0, `ww`/`wr` with a `wr` is G1c, exactly one `rw` is G-single, two or
//! more `rw` is G2.
//!
//! Search: strongly connected components first (Tarjan, iterative), so acyclic histories cost
//! one linear pass; inside a component, one breadth-first search per candidate edge, stopping
//! at the first cycle of each kind.

use std::collections::VecDeque;
use std::fmt;

/// Index of a transaction in its history.
pub type TxnId = usize;

/// Why one transaction must precede another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EdgeKind {
    /// Write-write: the later transaction overwrote the earlier one's version.
    Ww,
    /// Write-read: the later transaction read the earlier one's version.
    Wr,
    /// Read-write anti-dependency: the earlier transaction read a version the later one
    /// replaced.
    Rw,
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EdgeKind::Ww => "ww",
            EdgeKind::Wr => "wr",
            EdgeKind::Rw => "rw",
        })
    }
}

/// One edge, with the key that caused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Source transaction.
    pub from: TxnId,
    /// Target transaction.
    pub to: TxnId,
    /// Dependency kind.
    pub kind: EdgeKind,
    /// The key it is about.
    pub key: u64,
}

/// The kinds of cycle, weakest isolation violated first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CycleKind {
    /// Write cycle (dirty write).
    G0,
    /// Cycle of writes and reads (circular information flow).
    G1c,
    /// Exactly one anti-dependency (read skew, lost update).
    GSingle,
    /// Two or more anti-dependencies (write skew, phantoms).
    G2,
}

impl fmt::Display for CycleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CycleKind::G0 => "G0",
            CycleKind::G1c => "G1c",
            CycleKind::GSingle => "G-single",
            CycleKind::G2 => "G2",
        })
    }
}

/// A cycle found in the graph: its edges in order, the last one returning to the first's
/// source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// What kind of cycle it is.
    pub kind: CycleKind,
    /// Its edges.
    pub edges: Vec<Edge>,
}

impl fmt::Display for Cycle {
    /// `G-single: T3 -rw(k1)-> T7 -wr(k2)-> T3`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.kind)?;
        if let Some(first) = self.edges.first() {
            write!(f, " T{}", first.from)?;
        }
        for e in &self.edges {
            write!(f, " -{}(k{})-> T{}", e.kind, e.key, e.to)?;
        }
        Ok(())
    }
}

/// A dependency graph over `n` transactions.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    out: Vec<Vec<Edge>>,
}

impl Graph {
    /// A graph of `n` transactions and no edges.
    pub fn new(n: usize) -> Self {
        Graph { out: vec![Vec::new(); n] }
    }

    /// Adds an edge (self-loops are dropped: a transaction may depend on itself).
    pub fn add(&mut self, from: TxnId, to: TxnId, kind: EdgeKind, key: u64) {
        if from != to
            && let Some(list) = self.out.get_mut(from)
        {
            list.push(Edge { from, to, kind, key });
        }
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.out.iter().map(Vec::len).sum()
    }

    /// Every strongly connected component with more than one transaction.
    pub fn cyclic_components(&self) -> Vec<Vec<TxnId>> {
        tarjan(&self.out).into_iter().filter(|c| c.len() > 1).collect()
    }

    /// At most one cycle of each kind per cyclic component.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut found = Vec::new();
        let mut component_of = vec![usize::MAX; self.out.len()];
        for (ci, comp) in self.cyclic_components().into_iter().enumerate() {
            for &t in &comp {
                component_of[t] = ci;
            }
            let inside = |e: &Edge| component_of[e.to] == ci && component_of[e.from] == ci;
            let edges: Vec<Edge> =
                comp.iter().flat_map(|&t| self.out[t].iter().copied()).filter(inside).collect();
            let only = |kinds: &'static [EdgeKind]| move |e: &Edge| kinds.contains(&e.kind);
            let searches: [(CycleKind, EdgeKind, &[EdgeKind], usize); 4] = [
                (CycleKind::G0, EdgeKind::Ww, &[EdgeKind::Ww], 0),
                (CycleKind::G1c, EdgeKind::Wr, &[EdgeKind::Ww, EdgeKind::Wr], 0),
                (CycleKind::GSingle, EdgeKind::Rw, &[EdgeKind::Ww, EdgeKind::Wr], 0),
                (CycleKind::G2, EdgeKind::Rw, &[EdgeKind::Ww, EdgeKind::Wr, EdgeKind::Rw], 1),
            ];
            for (kind, first_kind, path_kinds, min_rw_on_path) in searches {
                let allowed = only(path_kinds);
                let cycle = edges.iter().filter(|e| e.kind == first_kind).find_map(|first| {
                    self.path(first.to, first.from, &|e| inside(e) && allowed(e), min_rw_on_path)
                        .map(|mut path| {
                            path.insert(0, *first);
                            path
                        })
                });
                if let Some(edges) = cycle {
                    found.push(Cycle { kind, edges });
                }
            }
        }
        found
    }

    /// A shortest path `from -> to` over edges `allowed` admits, with at least `min_rw` rw
    /// edges on it (0 or 1), or `None`. The path passes through neither end in between, so
    /// the cycle it closes never walks its first edge twice.
    fn path(
        &self,
        from: TxnId,
        to: TxnId,
        allowed: &dyn Fn(&Edge) -> bool,
        min_rw: usize,
    ) -> Option<Vec<Edge>> {
        // State: (transaction, rw edges seen so far capped at min_rw).
        let states = self.out.len() * (min_rw + 1);
        let index = |t: TxnId, rw: usize| t * (min_rw + 1) + rw;
        let mut came_from: Vec<Option<(usize, Edge)>> = vec![None; states];
        let mut seen = vec![false; states];
        let start = index(from, 0);
        seen[start] = true;
        let mut queue = VecDeque::from([(from, 0usize)]);
        while let Some((t, rw)) = queue.pop_front() {
            if t == to && rw >= min_rw {
                let mut path = Vec::new();
                let mut s = index(t, rw);
                while let Some((prev, edge)) = came_from[s] {
                    path.push(edge);
                    s = prev;
                }
                path.reverse();
                return Some(path);
            }
            if t == to {
                // Reached too early (no rw edge yet): do not walk on through the end.
                continue;
            }
            for e in self.out[t].iter().filter(|e| allowed(e) && e.to != from) {
                let next_rw = (rw + usize::from(e.kind == EdgeKind::Rw)).min(min_rw);
                let s = index(e.to, next_rw);
                if !seen[s] {
                    seen[s] = true;
                    came_from[s] = Some((index(t, rw), *e));
                    queue.push_back((e.to, next_rw));
                }
            }
        }
        None
    }
}

/// Tarjan's strongly connected components, iterative (histories are long; no recursion).
fn tarjan(out: &[Vec<Edge>]) -> Vec<Vec<TxnId>> {
    let n = out.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next = 0usize;
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        // (node, position in its edge list)
        let mut work = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut pos)) = work.last_mut() {
            if let Some(e) = out[v].get(*pos) {
                *pos += 1;
                let w = e.to;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut comp = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    comp.push(w);
                    if w == v {
                        break;
                    }
                }
                components.push(comp);
            }
        }
    }
    components
}

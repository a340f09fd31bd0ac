//! Building blocks for crash-point enumeration through [`MemFs`]: run a workload until an armed
//! power cut stops it, turn the dead filesystem into one image per [`CrashPolicy`], and check
//! that a recovered tree holds a prefix of the commit order within the bounds the
//! acknowledgements set, reading every value back.
//!
//! Once an armed crash has fired, every operation on the `MemFs` fails, so its state is frozen
//! at the cut: [`MemFs::crash`] on it gives the image any policy would have captured there. One
//! run of the workload per crash point thus serves every policy.

use strata::{Durability, Error, Mode, Result, Tree};
use strata_vfs::{CrashPolicy, MemFs};

use crate::{MARKER_KEY, Model, Rng, TxnSpec, diff, which_prefix};

/// What one run of a workload got acknowledged before it stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Acked {
    /// Commits acknowledged (a prefix of the workload: the run stops at the first error).
    pub acked: usize,
    /// Commits attempted, including one that failed (it may still have reached the log).
    pub attempted: usize,
    /// Length of the shortest prefix holding every acknowledged Immediate commit.
    pub durable: usize,
}

impl Acked {
    /// The prefixes a recovery after a power cut under `policy` may give: at least every
    /// durable commit (every acknowledged one if unsynced data survived), at most every
    /// attempted one.
    pub fn bounds(&self, policy: CrashPolicy) -> (usize, usize) {
        let lo = if policy == CrashPolicy::KeepUnsynced { self.acked } else { self.durable };
        (lo, self.attempted.max(self.acked))
    }
}

/// Runs `txns` on `tree` in order until the first error, calling `between(tree, i)` after
/// commit `i` (maintenance, garbage collection). Every error must come from the power cut
/// armed on `mem`, and nothing may be acknowledged after it fired. Does not close the tree.
pub fn run_until_power_cut(
    mem: &MemFs,
    tree: &Tree,
    txns: &[TxnSpec],
    mut between: impl FnMut(&Tree, usize) -> Result<()>,
    ctx: &str,
) -> Acked {
    let mut out = Acked::default();
    for (i, t) in txns.iter().enumerate() {
        match t.run(tree) {
            Ok(()) => {
                assert!(!mem.is_crashed(), "{ctx}: commit {i} acknowledged after the power cut");
                out.acked = i + 1;
                out.attempted = i + 1;
                if t.durability == Durability::Immediate {
                    out.durable = i + 1;
                }
            }
            Err(e) => {
                assert!(mem.is_crashed(), "{ctx}: commit {i} failed without a power cut: {e:?}");
                assert!(!matches!(e, Error::TransactionConflict), "{ctx}: commit {i}: {e:?}");
                out.attempted = i + 1;
                return out;
            }
        }
        if let Err(e) = between(tree, i) {
            assert!(mem.is_crashed(), "{ctx}: work after commit {i} failed without a cut: {e:?}");
            return out;
        }
    }
    out
}

/// The images a power cut at this moment of `mem` can leave: one per deterministic policy and
/// `random_seeds` per random one (seeds drawn from `rng`). Works on a live `MemFs` and on one
/// an armed crash killed.
pub fn power_cut_images(
    mem: &MemFs,
    random_seeds: u64,
    rng: &mut Rng,
) -> Vec<(CrashPolicy, u64, MemFs)> {
    let mut out = Vec::new();
    for policy in CrashPolicy::ALL {
        let seeds = match policy {
            CrashPolicy::DropUnsynced | CrashPolicy::KeepUnsynced => 1,
            CrashPolicy::TornTail | CrashPolicy::GarbageTail => random_seeds,
        };
        for _ in 0..seeds {
            let seed = rng.next_u64();
            out.push((policy, seed, mem.crash(policy, seed)));
        }
    }
    out
}

/// Reads the whole tree twice, by a forward scan and by a point read of every key, and checks
/// both agree byte for byte. Returns the content. Any read error fails the test.
pub fn read_back(tree: &Tree, ctx: &str) -> Model {
    let got = crate::dump(tree).unwrap_or_else(|e| panic!("{ctx}: scanning the tree fails: {e:?}"));
    let txn = tree.begin_with_mode(Mode::ReadOnly).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
    for (k, v) in &got {
        let point =
            txn.get(k).unwrap_or_else(|e| panic!("{ctx}: get {} fails: {e:?}", crate::show(k)));
        assert!(
            point.as_deref() == Some(&v[..]),
            "{ctx}: get {} disagrees with the scan",
            crate::show(k)
        );
    }
    got
}

/// Reads `tree` back ([`read_back`]) and checks it holds the state after a prefix `p` of the
/// workload whose prefix states are `states`, with `lo <= p <= hi`. Returns `p`.
pub fn recovered_prefix(tree: &Tree, states: &[Model], lo: usize, hi: usize, ctx: &str) -> usize {
    check_prefix(&read_back(tree, ctx), states, lo, hi, ctx)
}

/// Checks that `got` is the state after a prefix `p` of the workload whose prefix states are
/// `states`, with `lo <= p <= hi`. Returns `p`.
pub fn check_prefix(got: &Model, states: &[Model], lo: usize, hi: usize, ctx: &str) -> usize {
    let Some(p) = which_prefix(states, got) else {
        let claimed = got.get(MARKER_KEY).map(|v| String::from_utf8_lossy(v).to_string());
        let near = claimed
            .as_deref()
            .and_then(|s| s.parse::<usize>().ok())
            .map_or(0, |m| (m + 1).min(states.len() - 1));
        panic!(
            "{ctx}: the recovered state is not a prefix of the commit order (marker {claimed:?}); \
             against prefix {near}: {}",
            diff(&states[near], got)
        );
    };
    assert!(
        (lo..=hi).contains(&p),
        "{ctx}: recovered prefix {p}, but it must lie in {lo}..={hi} \
         (acknowledged durable commits lost, or unattempted ones present)"
    );
    p
}

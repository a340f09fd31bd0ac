//! Building blocks for crash-point enumeration through [`MemFs`]: run a workload until an armed
//! power cut stops it, turn the dead filesystem into one image per [`CrashPolicy`], and check
//! that a recovered tree holds a prefix of the commit order within the bounds the
//! acknowledgements set, reading every value back.
//!
//! Once an armed crash has fired, every operation on the `MemFs` fails, so its state is frozen
//! at the cut: [`MemFs::crash`] on it gives the image any policy would have captured there. One
//! run of the workload per crash point thus serves every policy.

use std::collections::BTreeSet;

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
/// armed on `mem`, and no commit begun after it fired may be acknowledged (one in progress
/// when a background thread hit the cut may: its WAL write came first). Does not close the
/// tree.
pub fn run_until_power_cut(
    mem: &MemFs,
    tree: &Tree,
    txns: &[TxnSpec],
    between: impl FnMut(&Tree, usize) -> Result<()>,
    ctx: &str,
) -> Acked {
    run_commits_until_power_cut(
        mem,
        tree,
        txns.iter().map(|t| t.durability),
        |tree, i| txns[i].run(tree),
        between,
        ctx,
    )
}

/// [`run_until_power_cut`] for a workload of another shape: commit `i` is `commit(tree, i)`,
/// at the `i`-th of `durabilities` (one per commit, in order).
pub fn run_commits_until_power_cut(
    mem: &MemFs,
    tree: &Tree,
    durabilities: impl IntoIterator<Item = Durability>,
    mut commit: impl FnMut(&Tree, usize) -> Result<()>,
    mut between: impl FnMut(&Tree, usize) -> Result<()>,
    ctx: &str,
) -> Acked {
    let mut out = Acked::default();
    for (i, durability) in durabilities.into_iter().enumerate() {
        // A commit may be acknowledged while the power goes during it (a background flush or
        // compaction thread ran into the cut after the commit's WAL write): every call after
        // the cut fails, so that write happened before it and the ack is sound. A commit begun
        // on a dead filesystem, though, cannot have reached the log.
        let dead_before = mem.is_crashed();
        match commit(tree, i) {
            Ok(()) => {
                assert!(!dead_before, "{ctx}: commit {i} acknowledged after the power cut");
                out.acked = i + 1;
                out.attempted = i + 1;
                if durability == Durability::Immediate {
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
    check_bounds(p, lo, hi, ctx);
    p
}

/// Checks that the recovered prefix `p` lies in `lo..=hi` (the [`Acked::bounds`] of a run).
pub fn check_bounds(p: usize, lo: usize, hi: usize, ctx: &str) {
    assert!(
        (lo..=hi).contains(&p),
        "{ctx}: recovered prefix {p}, but it must lie in {lo}..={hi} \
         (acknowledged durable commits lost, or unattempted ones present)"
    );
}

/// One image of [`for_each_armed_power_cut`]: what an armed power cut left.
#[derive(Debug)]
pub struct ArmedCut {
    /// Its place in the enumeration, from 0.
    pub index: u64,
    /// The crash policy the image was taken under.
    pub policy: CrashPolicy,
    /// What the run got acknowledged before the cut.
    pub acked: Acked,
    /// The filesystem the cut left.
    pub image: MemFs,
}

impl ArmedCut {
    /// The prefixes a recovery of the image may give ([`Acked::bounds`]).
    pub fn bounds(&self) -> (usize, usize) {
        self.acked.bounds(self.policy)
    }
}

/// What [`for_each_armed_power_cut`] checked.
#[derive(Debug, Default)]
pub struct CutTotals {
    /// Images checked.
    pub images: u64,
    /// The distinct prefixes they recovered.
    pub prefixes: BTreeSet<usize>,
}

impl CutTotals {
    /// Prints a summary line headed `what` and checks that the cuts recovered more than 10
    /// distinct prefixes (crash points spread over the workload).
    pub fn check_spread(&self, what: &str, total_syncs: u64) {
        eprintln!(
            "{what}: {total_syncs} durability calls, {} crash images, {} distinct prefixes",
            self.images,
            self.prefixes.len()
        );
        assert!(self.prefixes.len() > 10, "crash points spread over the workload");
    }
}

/// Enumerates power cuts armed before every durability call `n` of a workload whose clean run
/// made `total_syncs` of them (and at `n = total_syncs + 1`, where no cut fires during the
/// run), under every policy (the random ones `seeds_per_policy` times), each with a crash seed
/// drawn from `rng`.
/// For each: runs `run` on a fresh `MemFs` with the cut armed, takes the image the cut left
/// (or, if it did not fire, the one a cut at the end of the run leaves), and hands it to
/// `check`, which returns the prefix it recovered. Both get the context
/// `"{label}, crash before durability call {n} of {total_syncs}, {policy:?} {crash_seed}"`.
pub fn for_each_armed_power_cut(
    label: &str,
    total_syncs: u64,
    seeds_per_policy: usize,
    rng: &mut Rng,
    mut run: impl FnMut(&MemFs, &str) -> Acked,
    mut check: impl FnMut(&mut Rng, ArmedCut, &str) -> usize,
) -> CutTotals {
    let mut totals = CutTotals::default();
    for n in 1..=total_syncs + 1 {
        // The deterministic policies leave one image per point whatever the seed.
        let repeats = |p: CrashPolicy| match p {
            CrashPolicy::DropUnsynced | CrashPolicy::KeepUnsynced => 1,
            CrashPolicy::TornTail | CrashPolicy::GarbageTail => seeds_per_policy,
        };
        for policy in
            CrashPolicy::ALL.iter().copied().flat_map(|p| std::iter::repeat_n(p, repeats(p)))
        {
            let crash_seed = rng.next_u64();
            let ctx = format!(
                "{label}, crash before durability call {n} of {total_syncs}, {policy:?} {crash_seed}"
            );
            let mem = MemFs::new();
            mem.arm_crash(n, policy, crash_seed);
            let acked = run(&mem, &ctx);
            let image = mem.take_crash_image().unwrap_or_else(|| mem.crash(policy, crash_seed));
            let cut = ArmedCut { index: totals.images, policy, acked, image };
            let p = check(rng, cut, &ctx);
            totals.images += 1;
            totals.prefixes.insert(p);
        }
    }
    totals
}

/// Prints the line every crash-enumerating test reports its size with:
/// `crash states: N (what)`. A crash state is one crash image a test recovered and checked:
/// an image a power cut left under one crash policy (and, for the random policies, one crash
/// seed), or the image a further power cut left during the recovery of such an image. A run's
/// total is `grep -o 'crash states: [0-9]*' | awk '{s += $3} END {print s}'`.
pub fn report_crash_states(what: &str, states: u64) {
    eprintln!("crash states: {states} ({what})");
}

/// Which durability calls of a recovery [`power_cut_during_recovery`] cuts before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryCuts {
    /// Every one.
    Every,
    /// One, chosen at random.
    One,
}

/// Power cuts during the recovery of `image` (left untouched): the recovery of a copy counts
/// its durability calls, then, on a fresh copy for each, a power cut is armed before each of
/// them (or one, see [`RecoveryCuts`]) under a random policy and crash seed. The interrupted
/// open must fail, and `check` gets the image the cut left with the context
/// `"{ctx}; power cut before call {m} of {calls} of its recovery, {policy:?} {seed}"`; it must
/// recover and verify it. Returns the number of cuts (crash states checked).
pub fn power_cut_during_recovery<T>(
    image: &MemFs,
    open: impl Fn(&MemFs) -> Result<T>,
    cuts: RecoveryCuts,
    rng: &mut Rng,
    ctx: &str,
    mut check: impl FnMut(&MemFs, &str),
) -> u64 {
    let probe = crate::copy_fs(image);
    let opened =
        open(&probe).unwrap_or_else(|e| panic!("{ctx}: the database does not open: {e:?}"));
    let calls = probe.sync_count();
    drop(opened);
    if calls == 0 {
        return 0;
    }
    let points: Vec<u64> = match cuts {
        RecoveryCuts::Every => (1..=calls).collect(),
        RecoveryCuts::One => vec![rng.range(1, calls)],
    };
    for &m in &points {
        let policy = *rng.pick(&CrashPolicy::ALL);
        let seed = rng.next_u64();
        let ctx = format!(
            "{ctx}; power cut before call {m} of {calls} of its recovery, {policy:?} {seed}"
        );
        let img = crate::copy_fs(image);
        img.arm_crash(m, policy, seed);
        assert!(open(&img).is_err(), "{ctx}: recovery succeeded through a power cut");
        let cut = img.take_crash_image().unwrap_or_else(|| panic!("{ctx}: no crash image"));
        check(&cut, &ctx);
    }
    points.len() as u64
}

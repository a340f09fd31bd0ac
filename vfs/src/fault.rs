//! [`FaultFs`]: error injection around any [`Vfs`].
//!
//! Rules say which calls fail (by operation, by file-name substring, by index, with a seeded
//! probability, once or from then on) and how (an [`ErrorKind`], or a flipped bit in the
//! buffer a read returns). A space limit turns appends into `NoSpace`. Every decision is
//! deterministic: the same rules and the same sequence of calls inject the same faults.
//!
//! A failed call is never delegated, so it has no effect on the inner filesystem (an injected
//! append error appends nothing, an injected read error leaves the buffer untouched). Crash
//! behaviour is the inner filesystem's.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::mem::rng::SplitMix64;
use crate::sync::Mutex;
use crate::{AppendWrite, Caps, Error, ErrorKind, FileKind, RandomRead, Result, SyncMode, Vfs};

/// An operation [`FaultFs`] counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultOp {
    /// [`Vfs::create`].
    Create,
    /// [`Vfs::open`].
    Open,
    /// [`RandomRead::read_exact_at`].
    Read,
    /// [`AppendWrite::append`].
    Append,
    /// [`AppendWrite::flush`].
    Flush,
    /// [`AppendWrite::sync`].
    Sync,
    /// [`Vfs::sync_dir`].
    SyncDir,
    /// [`Vfs::remove`].
    Remove,
    /// [`Vfs::rename`] (a name filter matches either name).
    Rename,
    /// [`Vfs::list`].
    List,
    /// [`Vfs::size`] (and so [`Vfs::exists`]) and [`RandomRead::len`].
    Size,
    /// [`Vfs::lock`].
    Lock,
    /// [`Vfs::link`] (a name filter matches either name).
    Link,
}

impl FaultOp {
    /// Every operation.
    pub const ALL: [FaultOp; 13] = [
        FaultOp::Create,
        FaultOp::Open,
        FaultOp::Read,
        FaultOp::Append,
        FaultOp::Flush,
        FaultOp::Sync,
        FaultOp::SyncDir,
        FaultOp::Remove,
        FaultOp::Rename,
        FaultOp::List,
        FaultOp::Size,
        FaultOp::Lock,
        FaultOp::Link,
    ];

    const fn index(self) -> usize {
        self as usize
    }
}

/// Which of the matching calls a rule hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Always,
    Nth(u64),
    Probability { ppm: u32 },
}

/// What a hit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Fail(ErrorKind),
    FlipBit,
}

/// One fault-injection rule, built with [`FaultRule::fail`] or [`FaultRule::flip_bit_on_read`]
/// and refined with the builder methods.
///
/// A rule *matches* a call of its operation whose file name contains the rule's name filter
/// (calls without a name, `list` and `sync_dir`, never match a rule that has a filter). Each
/// rule counts its own matching calls from 0. Of the matching calls, it *hits*:
/// - every one, by default;
/// - only the `n`-th, with [`nth`](Self::nth);
/// - each with a probability, with [`probability_ppm`](Self::probability_ppm).
///
/// With [`persistent`](Self::persistent), every matching call after the first hit is hit too
/// (a device that died). With [`once`](Self::once), the rule hits at most once.
///
/// When several rules hit the same call they all count the hit; an error wins over a bit flip
/// and the earliest added rule wins among equals.
#[derive(Debug, Clone)]
pub struct FaultRule {
    op: FaultOp,
    name: Option<String>,
    trigger: Trigger,
    persistent: bool,
    max_hits: Option<u64>,
    action: Action,
    seed: u64,
}

impl FaultRule {
    /// Fail every call of `op` with [`ErrorKind::Other`].
    pub fn fail(op: FaultOp) -> Self {
        FaultRule {
            op,
            name: None,
            trigger: Trigger::Always,
            persistent: false,
            max_hits: None,
            action: Action::Fail(ErrorKind::Other),
            seed: 0x5EED_F00D,
        }
    }

    /// Flip one (seeded-random) bit of the buffer returned by every read of a file whose name
    /// contains `name_substr`, instead of failing. The read itself succeeds. An empty read
    /// has no bit to flip and is left alone.
    pub fn flip_bit_on_read(name_substr: &str) -> Self {
        let mut rule = FaultRule::fail(FaultOp::Read).on_name(name_substr);
        rule.action = Action::FlipBit;
        rule
    }

    /// Only calls on a file whose name contains `substr`.
    pub fn on_name(mut self, substr: &str) -> Self {
        self.name = Some(substr.into());
        self
    }

    /// Only the `n`-th matching call (0-based); with [`persistent`](Self::persistent), that call
    /// and every later one.
    pub fn nth(mut self, n: u64) -> Self {
        self.trigger = Trigger::Nth(n);
        self
    }

    /// Each matching call with probability `ppm` per million (clamped to 1,000,000), drawn from
    /// a PRNG seeded with `seed`.
    pub fn probability_ppm(mut self, ppm: u32, seed: u64) -> Self {
        self.trigger = Trigger::Probability { ppm: ppm.min(1_000_000) };
        self.seed = seed;
        self
    }

    /// After the first hit, every matching call is hit.
    pub fn persistent(mut self) -> Self {
        self.persistent = true;
        self
    }

    /// At most one hit, ever.
    pub fn once(mut self) -> Self {
        self.max_hits = Some(1);
        self
    }

    /// Fail with `kind` (the default is [`ErrorKind::Other`]). Turns a bit-flip rule into a
    /// failing one.
    pub fn kind(mut self, kind: ErrorKind) -> Self {
        self.action = Action::Fail(kind);
        self
    }

    /// Seeds the PRNG that picks which bit a bit-flip rule flips (and draws probabilities).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn matches(&self, op: FaultOp, names: &[&str]) -> bool {
        op == self.op
            && match &self.name {
                None => true,
                Some(filter) => names.iter().any(|n| n.contains(filter.as_str())),
            }
    }
}

/// A rule and its progress.
#[derive(Debug)]
struct ActiveRule {
    rule: FaultRule,
    matched: u64,
    hits: u64,
    rng: SplitMix64,
}

impl ActiveRule {
    /// Records a matching call; `true` if the rule hits it.
    fn on_match(&mut self) -> bool {
        let index = self.matched;
        self.matched += 1;
        if self.rule.max_hits.is_some_and(|max| self.hits >= max) {
            return false;
        }
        let hit = (self.rule.persistent && self.hits > 0)
            || match self.rule.trigger {
                Trigger::Always => true,
                Trigger::Nth(n) => index == n,
                Trigger::Probability { ppm } => self.rng.below(1_000_000) < u64::from(ppm),
            };
        if hit {
            self.hits += 1;
        }
        hit
    }
}

/// What the rules decided for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail(ErrorKind),
    /// Flip a bit; the value picks which.
    Flip(u64),
}

/// State shared by a FaultFs, its clones and its handles.
#[derive(Debug)]
struct Shared {
    rules: Vec<ActiveRule>,
    counts: [u64; FaultOp::ALL.len()],
    injected: u64,
    space_left: Option<u64>,
}

impl Shared {
    /// Counts a call of `op` on `names` and runs the rules over it.
    fn judge(&mut self, op: FaultOp, names: &[&str]) -> Verdict {
        self.counts[op.index()] += 1;
        let mut verdict = Verdict::Pass;
        for active in &mut self.rules {
            if !active.rule.matches(op, names) || !active.on_match() {
                continue;
            }
            verdict = match (verdict, active.rule.action) {
                (Verdict::Fail(_), _) => verdict,
                (_, Action::Fail(kind)) => Verdict::Fail(kind),
                (Verdict::Pass, Action::FlipBit) => Verdict::Flip(active.rng.next_u64()),
                (Verdict::Flip(_), Action::FlipBit) => verdict,
            };
        }
        if let Verdict::Fail(_) = verdict {
            self.injected += 1;
        }
        verdict
    }
}

fn injected_error(kind: ErrorKind) -> Error {
    Error::new(kind, "faultfs: injected fault")
}

type SharedRef = Arc<Mutex<Shared>>;

/// Counts `op` and fails it if a rule says so; bit flips are the caller's business.
fn gate(shared: &SharedRef, op: FaultOp, names: &[&str]) -> Result<Verdict> {
    match shared.lock().judge(op, names) {
        Verdict::Fail(kind) => Err(injected_error(kind)),
        verdict => Ok(verdict),
    }
}

/// A [`Vfs`] that injects faults into the calls it passes to `V`.
///
/// Clones share the rules, counters and space limit (and clone `V`). Handles it returns are
/// wrapped too, so reads, appends, flushes and syncs are counted and faulted per file.
pub struct FaultFs<V> {
    inner: V,
    shared: SharedRef,
}

impl<V: Vfs> FaultFs<V> {
    /// Wraps `inner` with no rules and no space limit.
    pub fn new(inner: V) -> Self {
        let shared = Shared {
            rules: Vec::new(),
            counts: [0; FaultOp::ALL.len()],
            injected: 0,
            space_left: None,
        };
        FaultFs { inner, shared: Arc::new(Mutex::new(shared)) }
    }

    /// The wrapped filesystem (calls made on it directly are neither counted nor faulted).
    pub fn inner(&self) -> &V {
        &self.inner
    }

    /// The wrapped filesystem.
    pub fn into_inner(self) -> V {
        self.inner
    }

    /// Adds a rule (after the existing ones). Its counters start at 0.
    pub fn add_rule(&self, rule: FaultRule) {
        let rng = SplitMix64::new(rule.seed);
        self.shared.lock().rules.push(ActiveRule { rule, matched: 0, hits: 0, rng });
    }

    /// Removes every rule (operation counts and the space limit are kept).
    pub fn clear_rules(&self) {
        self.shared.lock().rules.clear();
    }

    /// From now on, appends may add at most `bytes` more bytes in total; an append that would
    /// go past the limit fails with `NoSpace` and appends nothing. `None` removes the limit.
    pub fn set_space_limit(&self, bytes: Option<u64>) {
        self.shared.lock().space_left = bytes;
    }

    /// Calls of `op` so far (failed ones included).
    pub fn op_count(&self, op: FaultOp) -> u64 {
        self.shared.lock().counts[op.index()]
    }

    /// Faults injected so far (errors, `NoSpace` from the space limit, and bit flips).
    pub fn injected(&self) -> u64 {
        self.shared.lock().injected
    }
}

impl<V: Clone> Clone for FaultFs<V> {
    fn clone(&self) -> Self {
        FaultFs { inner: self.inner.clone(), shared: self.shared.clone() }
    }
}

impl<V: fmt::Debug> fmt::Debug for FaultFs<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("FaultFs");
        d.field("inner", &self.inner);
        if let Some(shared) = self.shared.try_lock() {
            d.field("rules", &shared.rules.len()).field("injected", &shared.injected);
        }
        d.finish()
    }
}

impl<V: Vfs> Vfs for FaultFs<V> {
    type Read = FaultRead<V::Read>;
    type Write = FaultWrite<V::Write>;
    type Lock = V::Lock;

    fn caps(&self) -> Caps {
        self.inner.caps()
    }

    fn create(&self, name: &str, kind: FileKind) -> Result<Self::Write> {
        gate(&self.shared, FaultOp::Create, &[name])?;
        let inner = self.inner.create(name, kind)?;
        Ok(FaultWrite { inner, name: name.into(), shared: self.shared.clone() })
    }

    fn open(&self, name: &str, kind: FileKind) -> Result<Self::Read> {
        gate(&self.shared, FaultOp::Open, &[name])?;
        let inner = self.inner.open(name, kind)?;
        Ok(FaultRead { inner, name: name.into(), shared: self.shared.clone() })
    }

    fn remove(&self, name: &str) -> Result<()> {
        gate(&self.shared, FaultOp::Remove, &[name])?;
        self.inner.remove(name)
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        gate(&self.shared, FaultOp::Rename, &[from, to])?;
        self.inner.rename(from, to)
    }

    fn sync_dir(&self) -> Result<()> {
        gate(&self.shared, FaultOp::SyncDir, &[])?;
        self.inner.sync_dir()
    }

    fn list(&self) -> Result<Vec<String>> {
        gate(&self.shared, FaultOp::List, &[])?;
        self.inner.list()
    }

    fn size(&self, name: &str) -> Result<u64> {
        gate(&self.shared, FaultOp::Size, &[name])?;
        self.inner.size(name)
    }

    fn lock(&self, name: &str) -> Result<Self::Lock> {
        gate(&self.shared, FaultOp::Lock, &[name])?;
        self.inner.lock(name)
    }

    fn link(&self, existing: &str, new: &str) -> Result<()> {
        gate(&self.shared, FaultOp::Link, &[existing, new])?;
        self.inner.link(existing, new)
    }
}

/// A read handle of [`FaultFs`]: the inner handle plus the shared rules.
pub struct FaultRead<R> {
    inner: R,
    name: String,
    shared: SharedRef,
}

impl<R: RandomRead> RandomRead for FaultRead<R> {
    /// An injected error returns before the buffer is touched; a bit flip happens after a
    /// successful inner read.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let verdict = gate(&self.shared, FaultOp::Read, &[&self.name])?;
        self.inner.read_exact_at(offset, buf)?;
        if let Verdict::Flip(pick) = verdict
            && !buf.is_empty()
        {
            let bit = pick % (buf.len() as u64 * 8);
            let byte = (bit / 8) as usize;
            if let Some(b) = buf.get_mut(byte) {
                *b ^= 1 << (bit % 8);
                self.shared.lock().injected += 1;
            }
        }
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        gate(&self.shared, FaultOp::Size, &[&self.name])?;
        self.inner.len()
    }
}

impl<R: fmt::Debug> fmt::Debug for FaultRead<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultRead").field("name", &self.name).field("inner", &self.inner).finish()
    }
}

/// A write handle of [`FaultFs`]: the inner handle plus the shared rules.
pub struct FaultWrite<W> {
    inner: W,
    name: String,
    shared: SharedRef,
}

impl<W: AppendWrite> AppendWrite for FaultWrite<W> {
    /// Injected errors (rules first, then the space limit) return before anything is
    /// appended.
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let len = data.len() as u64;
        {
            let mut shared = self.shared.lock();
            if let Verdict::Fail(kind) = shared.judge(FaultOp::Append, &[&self.name]) {
                return Err(injected_error(kind));
            }
            if let Some(left) = shared.space_left {
                if len > left {
                    shared.injected += 1;
                    return Err(Error::new(ErrorKind::NoSpace, "faultfs: space limit reached"));
                }
                shared.space_left = Some(left - len);
            }
        }
        let result = self.inner.append(data);
        if result.is_err() {
            // Give the reservation back: the inner failure is not the space limit's doing.
            let mut shared = self.shared.lock();
            if let Some(left) = shared.space_left {
                shared.space_left = Some(left.saturating_add(len));
            }
        }
        result
    }

    fn flush(&mut self) -> Result<()> {
        gate(&self.shared, FaultOp::Flush, &[&self.name])?;
        self.inner.flush()
    }

    fn sync(&mut self, mode: SyncMode) -> Result<()> {
        gate(&self.shared, FaultOp::Sync, &[&self.name])?;
        self.inner.sync(mode)
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }

    /// Forwarded unchanged: a reservation is not an append (no bytes, no space charged).
    fn reserve(&mut self, upto: u64) -> Result<()> {
        self.inner.reserve(upto)
    }
}

impl<W: fmt::Debug> fmt::Debug for FaultWrite<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultWrite").field("name", &self.name).field("inner", &self.inner).finish()
    }
}

//! The read path's iterator stack.
//!
//! ```text
//! Cursor (one sorted source, one direction)  ─┐
//! Cursor ...                                  ├─ MergeCursor (k-way, internal-key order)
//!                                             ┘        │
//!                               VisibleIter (snapshot + time visibility, bounds, tombstones)
//!                                                      │
//!                         OverlayIter (a transaction's own writes on top)
//!                                                      │
//!                  RangeIter (double-ended: one OverlayIter per end, stop where they meet)
//! ```
//!
//! Every stage moves in one direction only. A double-ended range keeps one stack per end, so
//! switching direction never repositions anything, and every skip (invisible versions,
//! tombstones, shadowed keys) is a loop, never recursion.
//!
//! The stages' per-entry methods (here, in the table cursor and in the block iterator) are
//! `#[inline]`: a scan is called from the user's crate, and without LTO a non-generic function
//! of `strata-core` is never inlined into another crate, so each stage cost a call per entry
//! (10-14% of a scan's instructions; `docs/performance.md`, ninth pass).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::Bytes;
use core::cmp::Ordering;
use core::ops::Bound;

use crate::Result;
use crate::key::{InternalKey, SeqNo, Timestamp, ValueKind, key_word, user_keys_equal};

/// One version as a source holds it, borrowed: reading it costs no copy and no reference
/// count; [`Cursor::take`] hands it out owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The key as the user wrote it.
    pub user_key: &'a [u8],
    /// The version's timestamp.
    pub ts: Timestamp,
    /// The committing transaction's sequence number.
    pub seq: SeqNo,
    /// Set, delete or value-log pointer.
    pub kind: ValueKind,
    /// The stored value (for a pointer, the encoded pointer).
    pub value: &'a [u8],
}

impl<'a> EntryRef<'a> {
    /// The view of an owned entry.
    pub fn of(key: &'a InternalKey, value: &'a [u8]) -> Self {
        EntryRef { user_key: &key.user_key, ts: key.ts, seq: key.seq, kind: key.kind, value }
    }

    /// The borrowed form of [`InternalKey::seek_at_time`] (no copy of `user_key`): sorts at or
    /// before every version of `user_key` whose timestamp is at most `ts`.
    pub fn seek_at_time(user_key: &'a [u8], ts: Timestamp) -> Self {
        EntryRef { user_key, ts, seq: crate::key::MAX_SEQ, kind: ValueKind::FIRST, value: &[] }
    }

    /// [`InternalKey`]'s order (user key ascending, then timestamp, sequence number and kind
    /// descending) between this entry's key and `other`'s.
    #[inline]
    pub fn cmp_entry(&self, other: &EntryRef<'_>) -> Ordering {
        self.cmp_parts(other.user_key, other.ts, other.seq, other.kind)
    }

    /// The same order between this entry's key and `key`.
    #[inline]
    pub fn cmp_key(&self, key: &InternalKey) -> Ordering {
        self.cmp_parts(&key.user_key, key.ts, key.seq, key.kind)
    }

    #[inline]
    fn cmp_parts(&self, user_key: &[u8], ts: Timestamp, seq: SeqNo, kind: ValueKind) -> Ordering {
        crate::key::user_keys_cmp(self.user_key, user_key)
            .then_with(|| ts.cmp(&self.ts))
            .then_with(|| seq.cmp(&self.seq))
            .then_with(|| (kind as u8).cmp(&(self.kind as u8)))
    }
}

/// One sorted source of versions, walked in one direction.
pub trait Cursor: Send {
    /// The current entry, borrowed; `None` when exhausted.
    fn head(&self) -> Option<EntryRef<'_>>;
    /// `true` once the cursor has no entry left: `head()` is `None`. Sources override it when
    /// they can tell without building the entry's view.
    fn exhausted(&self) -> bool {
        self.head().is_none()
    }
    /// Moves to the next entry in this cursor's direction.
    fn advance(&mut self) -> Result<()>;

    /// The current entry, owned, and a step past it: what [`head`](Self::head) then
    /// [`advance`](Self::advance) give. Sources build the owned key and value only here, so
    /// entries that are skipped, or read by reference, never cost a reference count.
    fn take(&mut self) -> Result<Option<(InternalKey, Bytes)>>;

    /// Forward cursors only: moves to the first entry `>= target`, never backwards. The
    /// default steps; sources override it with a real seek.
    fn seek(&mut self, target: &InternalKey) -> Result<()> {
        while self.head().is_some_and(|e| e.cmp_key(target) == Ordering::Less) {
            self.advance()?;
        }
        Ok(())
    }
}

impl<M> Cursor for crate::memtable::MemCursor<M>
where
    M: core::ops::Deref<Target = crate::memtable::Memtable> + Send,
{
    fn head(&self) -> Option<EntryRef<'_>> {
        self.peek().map(|(k, v)| EntryRef::of(k, v))
    }
    fn advance(&mut self) -> Result<()> {
        crate::memtable::MemCursor::advance(self);
        Ok(())
    }
    fn take(&mut self) -> Result<Option<(InternalKey, Bytes)>> {
        Ok(crate::memtable::MemCursor::take(self))
    }
    fn seek(&mut self, target: &InternalKey) -> Result<()> {
        crate::memtable::MemCursor::seek_forward(self, target);
        Ok(())
    }
}

/// K-way merge of cursors of one direction. Sources are few (memtables plus tables per
/// level), so the current head is found by a linear scan rather than a heap.
pub struct MergeCursor {
    sources: Vec<Box<dyn Cursor>>,
    forward: bool,
    current: Option<usize>,
}

impl core::fmt::Debug for MergeCursor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MergeCursor")
            .field("sources", &self.sources.len())
            .field("forward", &self.forward)
            .finish()
    }
}

impl MergeCursor {
    /// Merges `sources`, all walking in direction `forward`.
    pub fn new(sources: Vec<Box<dyn Cursor>>, forward: bool) -> Self {
        let mut m = MergeCursor { sources, forward, current: None };
        m.pick();
        m
    }

    #[inline]
    fn pick(&mut self) {
        if self.sources.len() == 1 {
            // The common case of a read over one table or level: nothing to compare, and its
            // head, `None` at its end, is the merge's.
            self.current = Some(0);
            return;
        }
        self.pick_among();
    }

    /// [`pick`](Self::pick) among several sources: out of line, so that the one-source step
    /// stays small enough to inline.
    #[inline(never)]
    fn pick_among(&mut self) {
        let mut best: Option<(usize, EntryRef<'_>)> = None;
        let mut exhausted = false;
        for (i, s) in self.sources.iter().enumerate() {
            let Some(e) = s.head() else {
                exhausted = true;
                continue;
            };
            let better = match &best {
                None => true,
                Some((_, b)) => {
                    let order = e.cmp_entry(b);
                    if self.forward { order.is_lt() } else { order.is_gt() }
                }
            };
            if better {
                best = Some((i, e));
            }
        }
        self.current = best.map(|(i, _)| i);
        if exhausted {
            // A source at its end stays there (cursors walk one way, and a seek only moves
            // sources still before the target): drop it, so later steps stop asking it.
            self.sources.retain(|s| !s.exhausted());
            self.pick();
        }
    }

    /// The current entry.
    #[inline]
    pub fn head(&self) -> Option<EntryRef<'_>> {
        self.sources.get(self.current?)?.head()
    }

    /// Forward merges: moves every source to its first entry `>= target`.
    pub fn seek(&mut self, target: &InternalKey) -> Result<()> {
        for s in &mut self.sources {
            if s.head().is_some_and(|e| e.cmp_key(target).is_lt()) {
                s.seek(target)?;
            }
        }
        self.pick();
        Ok(())
    }

    /// The current entry, owned, and a step past it (see [`Cursor::take`]).
    pub fn take(&mut self) -> Result<Option<(InternalKey, Bytes)>> {
        let Some(source) = self.current.and_then(|i| self.sources.get_mut(i)) else {
            return Ok(None);
        };
        let entry = source.take()?;
        self.pick();
        Ok(entry)
    }

    /// Moves past the current entry.
    #[inline]
    pub fn advance(&mut self) -> Result<()> {
        if let Some(i) = self.current
            && let Some(s) = self.sources.get_mut(i)
        {
            s.advance()?;
        }
        self.pick();
        Ok(())
    }
}

/// Forward reads walk this many versions of one key before seeking past the rest: seeking
/// costs a search per source, walking costs a step per version.
const SEEK_AFTER_SKIPS: usize = 8;

/// User-key bounds of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// Lower bound.
    pub lower: Bound<Bytes>,
    /// Upper bound.
    pub upper: Bound<Bytes>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        KeyRange { lower: Bound::Unbounded, upper: Bound::Unbounded }
    }

    /// `true` if `key` is inside the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.above_lower(key) && self.below_upper(key)
    }

    #[inline]
    fn above_lower(&self, key: &[u8]) -> bool {
        match &self.lower {
            Bound::Included(l) => key >= l.as_ref(),
            Bound::Excluded(l) => key > l.as_ref(),
            Bound::Unbounded => true,
        }
    }

    #[inline]
    fn below_upper(&self, key: &[u8]) -> bool {
        match &self.upper {
            Bound::Included(u) => key <= u.as_ref(),
            Bound::Excluded(u) => key < u.as_ref(),
            Bound::Unbounded => true,
        }
    }

    /// `true` if no key can be inside (for example start not before an exclusive end).
    pub fn is_empty(&self) -> bool {
        match (&self.lower, &self.upper) {
            (Bound::Included(l), Bound::Included(u)) => l > u,
            (Bound::Included(l), Bound::Excluded(u))
            | (Bound::Excluded(l), Bound::Included(u))
            | (Bound::Excluded(l), Bound::Excluded(u)) => l >= u,
            _ => false,
        }
    }

    /// Where a cursor of the given direction should start: the smallest internal key of the
    /// lower bound going forward, the largest of the upper bound going backward.
    pub fn cursor_start(&self, forward: bool) -> Option<InternalKey> {
        if forward {
            match &self.lower {
                Bound::Included(l) => Some(InternalKey::seek_first(l.clone())),
                Bound::Excluded(l) => Some(InternalKey::seek_last(l.clone())),
                Bound::Unbounded => None,
            }
        } else {
            match &self.upper {
                Bound::Included(u) => Some(InternalKey::seek_last(u.clone())),
                Bound::Excluded(u) => Some(InternalKey::seek_first(u.clone())),
                Bound::Unbounded => None,
            }
        }
    }

    /// `true` once a key in the walking direction has passed the far bound.
    #[inline]
    pub(crate) fn past_end(&self, key: &[u8], forward: bool) -> bool {
        if forward { !self.below_upper(key) } else { !self.above_lower(key) }
    }
}

/// What a read sees: versions committed at or before `snapshot`, and with `at_ts`, versions
/// with timestamps at or before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visibility {
    /// Snapshot sequence number.
    pub snapshot: SeqNo,
    /// Time-travel bound, if any.
    pub at_ts: Option<Timestamp>,
}

impl Visibility {
    /// `true` if the version is visible.
    pub fn sees(&self, key: &InternalKey) -> bool {
        self.sees_parts(key.seq, key.ts)
    }

    /// `true` if the version committed at `seq` with timestamp `ts` is visible.
    pub fn sees_parts(&self, seq: SeqNo, ts: Timestamp) -> bool {
        seq <= self.snapshot && self.at_ts.is_none_or(|t| ts <= t)
    }
}

/// Turns a value pointer (an entry of kind [`ValueKind::Pointer`]) into the value it names.
pub trait ValueResolver: Send + Sync {
    /// The value `pointer` names, which must be a record of `key`.
    fn resolve(&self, key: &[u8], pointer: &[u8]) -> Result<Bytes>;
}

/// What a [`VisibleIter`] does with values kept in the value log.
#[derive(Clone, Default)]
pub enum ValueFetch {
    /// Read them through the resolver.
    Resolve(alloc::sync::Arc<dyn ValueResolver>),
    /// Keys-only reads: never touch the value log; such values come back empty.
    KeysOnly,
    /// There is no value log: a pointer is corruption.
    #[default]
    NoLog,
}

impl core::fmt::Debug for ValueFetch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ValueFetch::Resolve(_) => "Resolve",
            ValueFetch::KeysOnly => "KeysOnly",
            ValueFetch::NoLog => "NoLog",
        })
    }
}

impl ValueFetch {
    /// The value of an entry of `kind` holding `stored`: `None` for a tombstone.
    pub fn value(&self, key: &[u8], kind: ValueKind, stored: &Bytes) -> Result<Option<Bytes>> {
        match kind {
            ValueKind::Set => Ok(Some(stored.clone())),
            kind => self.fetched(key, kind, stored),
        }
    }

    /// Like [`value`](Self::value) for the kinds whose value is not `stored` itself: `None`
    /// for a tombstone, the named value for a pointer (a set gives a copy of `stored`).
    pub fn fetched(&self, key: &[u8], kind: ValueKind, stored: &[u8]) -> Result<Option<Bytes>> {
        match kind {
            ValueKind::Delete => Ok(None),
            ValueKind::Set => Ok(Some(Bytes::copy_from_slice(stored))),
            ValueKind::Pointer => match self {
                ValueFetch::Resolve(r) => r.resolve(key, stored).map(Some),
                ValueFetch::KeysOnly => Ok(Some(Bytes::new())),
                ValueFetch::NoLog => Err(crate::Error::corruption(
                    "value pointer",
                    0,
                    crate::CorruptionKind::BadPointer,
                )),
            },
        }
    }
}

/// A reused copy of one user key. Keys of 8 to 16 bytes (the common size) are copied as two
/// overlapping 8-byte words into an inline array, without a call into `memcpy`; others go to
/// a buffer. A forward read copies each key it decides.
#[derive(Debug, Default)]
struct KeyCopy {
    short: [u8; 16],
    /// Length of the key in `short`; `None` when the key is in `long` (or there is none).
    short_len: Option<usize>,
    long: Vec<u8>,
    set: bool,
}

impl KeyCopy {
    #[inline]
    fn set(&mut self, key: &[u8]) {
        self.set = true;
        let n = key.len();
        if let (true, Some(head), Some(tail)) =
            ((8..=16).contains(&n), key_word(key, 0), key_word(key, n.wrapping_sub(8)))
        {
            if let Some(d) = self.short.get_mut(..8) {
                d.copy_from_slice(&head);
            }
            if let Some(d) = self.short.get_mut(n - 8..n) {
                d.copy_from_slice(&tail);
            }
            self.short_len = Some(n);
            return;
        }
        self.short_len = None;
        self.long.clear();
        self.long.extend_from_slice(key);
    }

    #[inline]
    fn get(&self) -> Option<&[u8]> {
        if !self.set {
            return None;
        }
        match self.short_len {
            Some(n) => self.short.get(..n),
            None => Some(&self.long),
        }
    }
}

/// Live user keys with their newest visible value, in one direction.
///
/// Forward, the versions of a key arrive newest first, so the first visible one decides the
/// key. Backward they arrive oldest first, so the last visible one decides it, and the key is
/// emitted when the next key begins.
///
/// Entries come out owned ([`next_entry`](Self::next_entry)) or by reference
/// ([`advance_ref`](Self::advance_ref) then [`current_ref`](Self::current_ref)); going
/// forward by reference, the entry stays in its source and nothing is copied or counted.
#[derive(Debug)]
pub struct VisibleIter {
    merged: MergeCursor,
    forward: bool,
    vis: Visibility,
    range: KeyRange,
    /// Backward: the key whose versions are being collected.
    current: Option<Bytes>,
    /// Forward: the key already decided (its older versions are skipped), if any; a copy
    /// kept in a reused buffer, so deciding a key costs no reference count.
    decided: KeyCopy,
    /// Backward: the newest visible version of `current` so far.
    candidate: Option<(ValueKind, Bytes)>,
    /// Forward: a key above the range's lower bound has been seen (the upper bound is checked
    /// as the walk's end).
    above_lower: bool,
    /// The entry [`advance_ref`](Self::advance_ref) stopped at, until the next step.
    held: Held,
    fetch: ValueFetch,
    done: bool,
}

/// Where the entry handed out by reference lives.
#[derive(Debug, Default)]
enum Held {
    #[default]
    Nothing,
    /// It is the merge cursor's head; a value fetched from the value log is kept here.
    Head(Option<Bytes>),
    /// It was produced owned (going backward).
    Owned(Bytes, Bytes),
}

impl VisibleIter {
    /// Wraps a merge cursor positioned at `range.cursor_start(forward)`.
    pub fn new(merged: MergeCursor, forward: bool, vis: Visibility, range: KeyRange) -> Self {
        VisibleIter {
            merged,
            forward,
            vis,
            range,
            current: None,
            decided: KeyCopy::default(),
            candidate: None,
            above_lower: false,
            held: Held::Nothing,
            fetch: ValueFetch::NoLog,
            done: false,
        }
    }

    /// Sets how values kept in the value log are read.
    pub fn with_fetch(mut self, fetch: ValueFetch) -> Self {
        self.fetch = fetch;
        self
    }

    /// The next live `(key, value)` in this iterator's direction.
    pub fn next_entry(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        if self.done {
            return None;
        }
        let r = self
            .release_held()
            .and_then(|()| if self.forward { self.step_forward() } else { self.step_backward() });
        self.settle(r)
    }

    /// Moves to the next live entry and keeps it for [`current_ref`](Self::current_ref) (the
    /// next step of either kind moves past it); `false` at the end.
    #[inline]
    pub fn advance_ref(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        let r = self.release_held().and_then(|()| {
            if self.forward {
                self.step_forward_ref()
            } else {
                Ok(self.step_backward()?.map(|(k, v)| self.held = Held::Owned(k, v)).is_some())
            }
        });
        match self.settle(r.map(|found| found.then_some(()))) {
            Some(Ok(())) => Ok(true),
            Some(Err(e)) => Err(e),
            None => Ok(false),
        }
    }

    /// The entry the last [`advance_ref`](Self::advance_ref) stopped at, if it is still
    /// held.
    #[inline]
    pub fn current_ref(&self) -> Option<(&[u8], &[u8])> {
        match &self.held {
            Held::Nothing => None,
            Held::Head(fetched) => {
                let e = self.merged.head()?;
                Some((e.user_key, fetched.as_deref().unwrap_or(e.value)))
            }
            Held::Owned(k, v) => Some((k, v)),
        }
    }

    /// The held entry, owned; afterwards nothing is held.
    pub fn take_held(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        match core::mem::take(&mut self.held) {
            Held::Nothing => Ok(None),
            Held::Head(fetched) => {
                let r = self
                    .merged
                    .take()
                    .map(|e| e.map(|(key, stored)| (key.user_key, fetched.unwrap_or(stored))));
                if r.is_err() {
                    self.done = true;
                }
                r
            }
            Held::Owned(k, v) => Ok(Some((k, v))),
        }
    }

    /// Ends the iterator on its end or an error.
    fn settle<T>(&mut self, r: Result<Option<T>>) -> Option<Result<T>> {
        match r {
            Ok(Some(x)) => Some(Ok(x)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// Steps past the entry handed out by reference, if any.
    #[inline]
    fn release_held(&mut self) -> Result<()> {
        if let Held::Head(_) = core::mem::take(&mut self.held) {
            self.merged.advance()?;
        }
        Ok(())
    }

    /// Forward: moves the merge cursor to the next entry that decides its key (the newest
    /// visible version of a key in range not yet decided) and records the key as decided;
    /// `false` at the end of the range.
    #[inline]
    fn next_decider(&mut self) -> Result<Option<ValueKind>> {
        // Versions of one key skipped one by one so far; past a few, seek instead.
        let mut run = 0usize;
        let mut run_key: Vec<u8> = Vec::new();
        loop {
            let Some(e) = self.merged.head() else { return Ok(None) };
            if self.range.past_end(e.user_key, true) {
                return Ok(None);
            }
            let decided = self.decided.get().is_some_and(|d| user_keys_equal(d, e.user_key));
            // Keys only grow going forward: once one is above the lower bound, all are.
            self.above_lower = self.above_lower || self.range.above_lower(e.user_key);
            let skip = !self.above_lower || decided || !self.vis.sees_parts(e.seq, e.ts);
            if !skip {
                self.decided.set(e.user_key);
                return Ok(Some(e.kind));
            }
            if run > 0 && run_key == e.user_key {
                run += 1;
            } else {
                run_key.clear();
                run_key.extend_from_slice(e.user_key);
                run = 1;
            }
            if run > SEEK_AFTER_SKIPS {
                // Long history: jump instead of walking it. Past a decided key, to its end;
                // before the time bound, to the bound.
                let target = if decided {
                    Some(InternalKey::seek_last(Bytes::copy_from_slice(e.user_key)))
                } else {
                    self.vis
                        .at_ts
                        .filter(|&t| e.ts > t)
                        .map(|t| InternalKey::seek_at_time(Bytes::copy_from_slice(e.user_key), t))
                };
                if let Some(target) = target {
                    run = 0;
                    self.merged.advance()?;
                    self.merged.seek(&target)?;
                    continue;
                }
            }
            self.merged.advance()?;
        }
    }

    fn step_forward(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        loop {
            if self.next_decider()?.is_none() {
                return Ok(None);
            }
            // The entry decides its key: take it from the cursor rather than clone it.
            let Some((key, stored)) = self.merged.take()? else { return Ok(None) };
            let value = match key.kind {
                ValueKind::Set => Some(stored),
                kind => self.fetch.value(&key.user_key, kind, &stored)?,
            };
            if let Some(v) = value {
                return Ok(Some((key.user_key, v)));
            }
        }
    }

    /// Forward by reference: stops at the next live entry, leaving it in the merge cursor.
    #[inline]
    fn step_forward_ref(&mut self) -> Result<bool> {
        loop {
            let kind = match self.next_decider()? {
                None => return Ok(false),
                Some(ValueKind::Set) => {
                    // The value is the stored one, read where it lies.
                    self.held = Held::Head(None);
                    return Ok(true);
                }
                Some(kind) => kind,
            };
            let Some(e) = self.merged.head() else { return Ok(false) };
            let fetched = match kind {
                ValueKind::Set => None,
                kind => match self.fetch.fetched(e.user_key, kind, e.value)? {
                    Some(v) => Some(v),
                    None => {
                        // A tombstone decides its key as absent.
                        self.merged.advance()?;
                        continue;
                    }
                },
            };
            self.held = Held::Head(fetched);
            return Ok(true);
        }
    }

    fn step_backward(&mut self) -> Result<Option<(Bytes, Bytes)>> {
        loop {
            // The head's relation to the key being collected: another version of it or the
            // first of the next key, and whether it is visible.
            let head = match self.merged.head() {
                Some(e) if !self.range.past_end(e.user_key, false) => Some((
                    self.current.as_deref() == Some(e.user_key),
                    self.range.contains(e.user_key) && self.vis.sees_parts(e.seq, e.ts),
                )),
                _ => None,
            };
            let (next_key, next_candidate) = match head {
                Some((true, false)) => {
                    self.merged.advance()?;
                    continue;
                }
                Some((same, visible)) => {
                    let Some((key, stored)) = self.merged.take()? else { continue };
                    let candidate = visible.then_some((key.kind, stored));
                    if same {
                        // A newer visible version of the key being collected.
                        self.candidate = candidate;
                        continue;
                    }
                    (Some(key.user_key), candidate)
                }
                None => (None, None),
            };
            // The head started a new key, or the range is over: the current key is complete,
            // and its newest visible version decides whether it is emitted.
            let decided = core::mem::replace(&mut self.current, next_key);
            let candidate = core::mem::replace(&mut self.candidate, next_candidate);
            if let (Some(k), Some((kind, stored))) = (decided, candidate)
                && let Some(v) = self.fetch.value(&k, kind, &stored)?
            {
                return Ok(Some((k, v)));
            }
            if self.current.is_none() {
                return Ok(None);
            }
        }
    }
}

/// A transaction's pending write of one key, as seen by its own reads.
pub type OverlayEntry = (Bytes, Option<Bytes>);

/// A [`VisibleIter`] with a transaction's pending writes laid over it: a pending set replaces
/// or adds the key, a pending delete hides it.
#[derive(Debug)]
pub struct OverlayIter {
    base: VisibleIter,
    /// A base entry taken owned and not yet handed out.
    base_head: Option<(Bytes, Bytes)>,
    /// The base holds an entry found by reference and not yet handed out.
    base_ready: bool,
    /// Pending writes inside the range, in this iterator's direction.
    overlay: VecDeque<OverlayEntry>,
    forward: bool,
    /// What the last [`next_ref`](Self::next_ref) handed out; consumed by the next step.
    emitted: Emitted,
}

/// Where the entry [`OverlayIter::next_ref`] handed out lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emitted {
    Nothing,
    /// The front pending write.
    Overlay,
    /// `base_head`.
    BaseHead,
    /// The base's entry held by reference.
    Base,
}

impl OverlayIter {
    /// `overlay` must be sorted in the direction of `base`.
    pub fn new(base: VisibleIter, overlay: VecDeque<OverlayEntry>) -> Self {
        let forward = base.forward;
        OverlayIter {
            base,
            base_head: None,
            base_ready: false,
            overlay,
            forward,
            emitted: Emitted::Nothing,
        }
    }

    /// The key of the entry the last [`next_ref`](Self::next_ref) handed out, while it is
    /// still held (until the next step).
    fn lent_key(&self) -> Option<&[u8]> {
        match self.emitted {
            Emitted::Overlay => self.overlay.front().map(|(k, _)| k.as_ref()),
            Emitted::BaseHead => self.base_head.as_ref().map(|(k, _)| k.as_ref()),
            Emitted::Base => self.base.current_ref().map(|(k, _)| k),
            Emitted::Nothing => None,
        }
    }

    /// Drops what the last [`next_ref`](Self::next_ref) handed out.
    #[inline]
    fn release(&mut self) {
        match core::mem::replace(&mut self.emitted, Emitted::Nothing) {
            Emitted::Overlay => {
                self.overlay.pop_front();
            }
            Emitted::BaseHead => self.base_head = None,
            Emitted::Base => self.base_ready = false,
            Emitted::Nothing => {}
        }
    }

    fn fill_base(&mut self) -> Result<()> {
        if self.base_head.is_none()
            && let Some(r) = self.base.next_entry()
        {
            self.base_head = Some(r?);
        }
        Ok(())
    }

    /// The next live `(key, value)`.
    pub fn next_entry(&mut self) -> Option<Result<(Bytes, Bytes)>> {
        self.release();
        if self.base_ready {
            // Found by reference but not handed out yet: keep it, owned.
            self.base_ready = false;
            match self.base.take_held() {
                Ok(entry) => self.base_head = entry,
                Err(e) => return Some(Err(e)),
            }
        }
        if self.overlay.is_empty() && self.base_head.is_none() {
            // No pending write left to merge (always, for a read-only transaction): pass the
            // base's entries straight through instead of parking each in `base_head`.
            return self.base.next_entry();
        }
        loop {
            if let Err(e) = self.fill_base() {
                return Some(Err(e));
            }
            let take_overlay = match (&self.base_head, self.overlay.front()) {
                (None, None) => return None,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (Some((bk, _)), Some((ok, _))) => {
                    if ok == bk {
                        // The pending write shadows the committed value.
                        self.base_head = None;
                        true
                    } else if self.forward {
                        ok < bk
                    } else {
                        ok > bk
                    }
                }
            };
            if take_overlay {
                if let Some((k, v)) = self.overlay.pop_front()
                    && let Some(v) = v
                {
                    return Some(Ok((k, v)));
                }
                continue;
            }
            return self.base_head.take().map(Ok);
        }
    }

    /// The next live `(key, value)` by reference, valid until the next step: committed entries
    /// stay where the sources hold them.
    #[inline]
    pub fn next_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        self.release();
        if self.overlay.is_empty() && self.base_head.is_none() && !self.base_ready {
            // No pending write left to merge (always, for a read-only transaction): hand out
            // the base's entries straight through.
            return match self.base.advance_ref() {
                Ok(true) => {
                    self.base_ready = true;
                    self.emitted = Emitted::Base;
                    self.base.current_ref().map(Ok)
                }
                Ok(false) => None,
                Err(e) => Some(Err(e)),
            };
        }
        loop {
            if self.base_head.is_none() && !self.base_ready {
                match self.base.advance_ref() {
                    Ok(found) => self.base_ready = found,
                    Err(e) => return Some(Err(e)),
                }
            }
            let base_key = match &self.base_head {
                Some((k, _)) => Some(k.as_ref()),
                None if self.base_ready => self.base.current_ref().map(|(k, _)| k),
                None => None,
            };
            let (take_overlay, shadows) = match (base_key, self.overlay.front()) {
                (None, None) => return None,
                (None, Some(_)) => (true, false),
                (Some(_), None) => (false, false),
                (Some(bk), Some((ok, _))) if ok.as_ref() == bk => (true, true),
                (Some(bk), Some((ok, _))) => (self.forward == (ok.as_ref() < bk), false),
            };
            if shadows {
                // The pending write shadows the committed value.
                if self.base_head.take().is_none() {
                    self.base_ready = false;
                }
            }
            if !take_overlay {
                self.emitted =
                    if self.base_head.is_some() { Emitted::BaseHead } else { Emitted::Base };
                break;
            }
            if self.overlay.front().is_some_and(|(_, v)| v.is_some()) {
                self.emitted = Emitted::Overlay;
                break;
            }
            // A pending delete: it hides the key and hands nothing out.
            self.overlay.pop_front();
        }
        let entry = match self.emitted {
            Emitted::Overlay => {
                self.overlay.front().and_then(|(k, v)| Some((k.as_ref(), v.as_deref()?)))
            }
            Emitted::BaseHead => self.base_head.as_ref().map(|(k, v)| (k.as_ref(), v.as_ref())),
            Emitted::Base => self.base.current_ref(),
            Emitted::Nothing => None,
        };
        entry.map(Ok)
    }
}

/// Builds the per-direction stacks of a range lazily.
pub trait RangeSource: Send {
    /// A visible iterator over `range` in the given direction.
    fn open(&self, forward: bool) -> Result<VisibleIter>;
}

/// A double-ended range over live keys: a forward stack for `next`, a backward one for
/// `next_back`, each built on first use; iteration ends where they meet, and `limit` caps the
/// total number of entries from both ends.
pub struct RangeIter {
    source: Box<dyn RangeSource>,
    overlay: Vec<OverlayEntry>,
    front: Option<OverlayIter>,
    back: Option<OverlayIter>,
    /// Where the two ends stand. A field of its own so that an entry lent by one end (a
    /// borrow of `front` or `back`) can be accounted for while it is still borrowed.
    progress: Progress,
    /// Keeps the snapshot the range reads at registered while the iterator lives, so nothing
    /// it can still reach (versions, value log files) is removed under it.
    _pin: Option<crate::mvcc::Snapshot>,
}

/// The state of a [`RangeIter`]'s two ends together.
struct Progress {
    /// The last key each end returned, if any: copies in reused buffers, so remembering a
    /// key costs no reference count (measured: a sixth of a 100-key scan's reference counting).
    /// While an end's key is `lent` (the other end has not begun) it is not in the buffer but
    /// still held by that end's iterator.
    front_last: LastKey,
    back_last: LastKey,
    remaining: Option<usize>,
    done: bool,
    /// A serializable transaction's record of this scan, narrowed when the limit stops it.
    tracker: Option<crate::serializable::ScanTracker>,
}

impl Progress {
    /// Takes what one end produced next: the end of the range on `None`, an error, or an
    /// entry at or past the other end's last key (the ends have met); otherwise the entry,
    /// remembered as this end's last key and counted against the limit.
    ///
    /// An entry lent by reference (`lent`) while the other end has not begun is not copied:
    /// only that end could need it, to stop where this one stands, and the iterator still
    /// holds the entry when that end begins ([`record_lent`](Self::record_lent)). A scan in one
    /// direction then copies no key (a tenth of a 100-key scan's instructions went to these
    /// copies).
    #[inline]
    fn accept<K: AsRef<[u8]>, V>(
        &mut self,
        forward: bool,
        lent: bool,
        other_begun: bool,
        item: Option<Result<(K, V)>>,
    ) -> Option<Result<(K, V)>> {
        let (k, v) = match item {
            None => {
                self.done = true;
                return None;
            }
            Some(Err(e)) => {
                self.done = true;
                return Some(Err(e));
            }
            Some(Ok(kv)) => kv,
        };
        let key = k.as_ref();
        let crossed = if forward {
            self.back_last.get().is_some_and(|b| key >= b)
        } else {
            self.front_last.get().is_some_and(|f| key <= f)
        };
        if crossed {
            self.done = true;
            return None;
        }
        let last = if forward { &mut self.front_last } else { &mut self.back_last };
        if lent && !other_begun {
            last.lent = true;
        } else {
            last.set(key);
        }
        if let Some(n) = self.remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                self.done = true;
                if let Some(t) = &self.tracker {
                    if last.lent {
                        last.set(key);
                    }
                    t.stopped_by_limit(self.front_last.get(), self.back_last.get());
                }
            }
        }
        Some(Ok((k, v)))
    }

    /// Called as the end opposite `forward` begins: copies the key `forward`'s end lent last,
    /// if [`accept`](Self::accept) left it unrecorded. `lent_key` is that entry's key, still
    /// held by the end's iterator.
    fn record_lent(&mut self, forward: bool, lent_key: Option<&[u8]>) {
        let last = if forward { &mut self.front_last } else { &mut self.back_last };
        if last.lent {
            // An end lets go of its last entry only when it finishes or fails, and either
            // ends the range before the other end can begin.
            debug_assert!(lent_key.is_some(), "a lent key is no longer held");
            match lent_key {
                Some(key) => last.set(key),
                // Were it lost, the other end could not know where to stop: ending the range
                // is better than returning keys twice.
                None => self.done = true,
            }
        }
    }
}

impl core::fmt::Debug for RangeIter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RangeIter").field("remaining", &self.progress.remaining).finish()
    }
}

impl RangeIter {
    /// A range over `source` with the transaction's pending writes in `overlay` (sorted
    /// ascending, inside the range), yielding at most `limit` entries.
    pub fn new(
        source: Box<dyn RangeSource>,
        overlay: Vec<OverlayEntry>,
        limit: Option<usize>,
    ) -> Self {
        RangeIter {
            source,
            overlay,
            front: None,
            back: None,
            progress: Progress {
                front_last: LastKey::default(),
                back_last: LastKey::default(),
                remaining: limit,
                done: limit == Some(0),
                tracker: None,
            },
            _pin: None,
        }
    }

    /// Keeps `snapshot` registered for as long as the iterator lives.
    pub fn pinning(mut self, snapshot: crate::mvcc::Snapshot) -> Self {
        self._pin = Some(snapshot);
        self
    }

    /// Reports to `tracker` where the limit stopped the scan, so a serializable transaction
    /// counts only what it was given as read.
    pub fn tracking(mut self, tracker: crate::serializable::ScanTracker) -> Self {
        self.progress.tracker = Some(tracker);
        self
    }

    #[inline]
    fn side(&mut self, forward: bool) -> Result<&mut OverlayIter> {
        let begins = if forward { self.front.is_none() } else { self.back.is_none() };
        if begins {
            // This end begins: the other end's last key, if it only lent it, counts from now.
            let other = if forward { self.back.as_ref() } else { self.front.as_ref() };
            self.progress.record_lent(!forward, other.and_then(OverlayIter::lent_key));
        }
        let slot = if forward { &mut self.front } else { &mut self.back };
        if let Some(side) = slot {
            return Ok(side);
        }
        let base = self.source.open(forward)?;
        let overlay: VecDeque<OverlayEntry> = if forward {
            self.overlay.iter().cloned().collect()
        } else {
            self.overlay.iter().rev().cloned().collect()
        };
        Ok(slot.insert(OverlayIter::new(base, overlay)))
    }

    fn step(&mut self, forward: bool) -> Option<Result<(Bytes, Bytes)>> {
        if self.progress.done {
            return None;
        }
        let item = match self.side(forward).map(|_| ()) {
            Err(e) => Some(Err(e)),
            // `side` ended the range: the other end's lent key was lost (`record_lent`).
            Ok(()) if self.progress.done => None,
            Ok(()) => {
                let side = if forward { self.front.as_mut() } else { self.back.as_mut() };
                side?.next_entry()
            }
        };
        let other_begun = if forward { self.back.is_some() } else { self.front.is_some() };
        self.progress.accept(forward, false, other_begun, item)
    }
}

impl RangeIter {
    /// The next `(key, value)` from the front, by reference: valid until the next call on
    /// this iterator. The same entries as [`next`](Iterator::next), in the same order (calls
    /// of both kinds may be mixed), without making owned copies: committed keys and values
    /// are read where the table block or memtable holds them, so a scan costs no allocation
    /// or reference count per entry. When a read fails, `next` reports the error as it steps
    /// past the entry before it, which it then does not return; `next_ref` returns that entry
    /// and reports the error at the following call.
    #[inline]
    pub fn next_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        self.step_ref(true)
    }

    /// Like [`next_ref`](Self::next_ref) from the back end (the back end produces its entries
    /// owned and lends them).
    pub fn next_back_ref(&mut self) -> Option<Result<(&[u8], &[u8])>> {
        self.step_ref(false)
    }

    #[inline]
    fn step_ref(&mut self, forward: bool) -> Option<Result<(&[u8], &[u8])>> {
        if self.progress.done {
            return None;
        }
        if let Err(e) = self.side(forward) {
            self.progress.done = true;
            return Some(Err(e));
        }
        if self.progress.done {
            return None;
        }
        let other_begun = if forward { self.back.is_some() } else { self.front.is_some() };
        let side = if forward { self.front.as_mut() } else { self.back.as_mut() }?;
        self.progress.accept(forward, true, other_begun, side.next_ref())
    }
}

/// A remembered key, `None` until the first [`set`](Self::set).
#[derive(Debug, Default)]
struct LastKey {
    buf: Vec<u8>,
    set: bool,
    /// The end's last key is not in `buf` but still lent out by its iterator (see
    /// [`Progress::accept`]).
    lent: bool,
}

impl LastKey {
    fn set(&mut self, key: &[u8]) {
        self.buf.clear();
        self.buf.extend_from_slice(key);
        self.set = true;
        self.lent = false;
    }

    fn get(&self) -> Option<&[u8]> {
        self.set.then_some(self.buf.as_slice())
    }
}

impl Iterator for RangeIter {
    type Item = Result<(Bytes, Bytes)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.step(true)
    }
}

impl DoubleEndedIterator for RangeIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.step(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memtable::{MemCursor, Memtable};
    use alloc::sync::Arc;

    /// A key copy holds exactly the last key set, at every length, including when it moves
    /// between its two forms (words in the inline array, or the buffer).
    #[test]
    fn a_key_copy_holds_the_last_key_at_every_length() {
        let keys: Vec<Vec<u8>> =
            (0..=40usize).map(|n| (0..n).map(|i| (i * 7 + n) as u8).collect()).collect();
        let mut copy = KeyCopy::default();
        assert_eq!(copy.get(), None);
        for a in keys.iter().chain(keys.iter().rev()) {
            copy.set(a);
            assert_eq!(copy.get(), Some(a.as_slice()), "length {}", a.len());
        }
    }

    struct MemSource {
        mem: Arc<Memtable>,
        vis: Visibility,
        range: KeyRange,
    }

    impl RangeSource for MemSource {
        fn open(&self, forward: bool) -> Result<VisibleIter> {
            let cursor =
                MemCursor::new(self.mem.clone(), forward, self.range.cursor_start(forward));
            let merged =
                MergeCursor::new(alloc::vec![Box::new(cursor) as Box<dyn Cursor>], forward);
            Ok(VisibleIter::new(merged, forward, self.vis, self.range.clone()))
        }
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn mem() -> Arc<Memtable> {
        let m = Memtable::new(1);
        let ins = |k: &str, seq: u64, v: Option<&str>| {
            let kind = if v.is_some() { ValueKind::Set } else { ValueKind::Delete };
            m.insert(InternalKey::new(b(k), seq, seq, kind), v.map(b).unwrap_or_default());
        };
        ins("a", 1, Some("a1"));
        ins("b", 2, Some("b2"));
        ins("b", 3, None);
        ins("c", 4, Some("c4"));
        ins("c", 5, Some("c5"));
        ins("d", 6, Some("d6"));
        Arc::new(m)
    }

    fn collect(it: &mut RangeIter, forward: bool) -> Vec<(Bytes, Bytes)> {
        let mut out = Vec::new();
        loop {
            let x = if forward { it.next() } else { it.next_back() };
            match x {
                Some(r) => out.push(r.expect("no io errors here")),
                None => return out,
            }
        }
    }

    fn range(snapshot: u64, overlay: Vec<OverlayEntry>, limit: Option<usize>) -> RangeIter {
        let src = MemSource {
            mem: mem(),
            vis: Visibility { snapshot, at_ts: None },
            range: KeyRange::all(),
        };
        RangeIter::new(Box::new(src), overlay, limit)
    }

    #[test]
    fn both_directions_agree_at_every_snapshot() {
        for snap in 0..=6 {
            let fwd = collect(&mut range(snap, Vec::new(), None), true);
            let mut bwd = collect(&mut range(snap, Vec::new(), None), false);
            bwd.reverse();
            assert_eq!(fwd, bwd, "snapshot {snap}");
        }
        let at6 = collect(&mut range(6, Vec::new(), None), true);
        assert_eq!(at6, [(b("a"), b("a1")), (b("c"), b("c5")), (b("d"), b("d6"))]);
        let at2 = collect(&mut range(2, Vec::new(), None), true);
        assert_eq!(at2, [(b("a"), b("a1")), (b("b"), b("b2"))]);
    }

    #[test]
    fn ends_meet_without_repeats_and_limit_counts_both_ends() {
        let mut it = range(6, Vec::new(), None);
        assert_eq!(it.next().map(|r| r.expect("ok").0), Some(b("a")));
        assert_eq!(it.next_back().map(|r| r.expect("ok").0), Some(b("d")));
        assert_eq!(it.next_back().map(|r| r.expect("ok").0), Some(b("c")));
        assert!(it.next().is_none());
        assert!(it.next_back().is_none());
        let mut it = range(6, Vec::new(), Some(2));
        assert!(it.next().is_some());
        assert!(it.next_back().is_some());
        assert!(it.next().is_none());
    }

    #[test]
    fn overlay_shadows_adds_and_hides() {
        let overlay =
            alloc::vec![(b("a"), None), (b("b"), Some(b("mine"))), (b("e"), Some(b("e!"))),];
        let fwd = collect(&mut range(6, overlay.clone(), None), true);
        let want = [(b("b"), b("mine")), (b("c"), b("c5")), (b("d"), b("d6")), (b("e"), b("e!"))];
        assert_eq!(fwd, want);
        let mut bwd = collect(&mut range(6, overlay, None), false);
        bwd.reverse();
        assert_eq!(bwd, want);
    }

    #[test]
    fn bounds_and_long_tombstone_runs() {
        let m = Memtable::new(1);
        for i in 0..10_000u32 {
            let k = Bytes::copy_from_slice(&i.to_be_bytes());
            m.insert(InternalKey::new(k, 1, 1, ValueKind::Delete), Bytes::new());
        }
        m.insert(InternalKey::new(b("zz"), 2, 2, ValueKind::Set), b("live"));
        let src = MemSource {
            mem: Arc::new(m),
            vis: Visibility { snapshot: 9, at_ts: None },
            range: KeyRange { lower: Bound::Unbounded, upper: Bound::Excluded(b("zzz")) },
        };
        let mut it = RangeIter::new(Box::new(src), Vec::new(), None);
        assert_eq!(it.next().map(|r| r.expect("ok").0), Some(b("zz")));
        assert!(it.next_back().is_none());
        assert!(
            KeyRange { lower: Bound::Included(b("b")), upper: Bound::Excluded(b("b")) }.is_empty()
        );
        assert!(
            KeyRange { lower: Bound::Included(b("c")), upper: Bound::Excluded(b("b")) }.is_empty()
        );
    }
}

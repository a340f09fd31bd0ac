//! The expected-state oracle of the random crash loops: per key, every committed version in
//! commit order (with its timestamp, so time-travel reads can be answered), plus the events
//! since the last verified recovery, which a crash may or may not have kept.
//!
//! ## Self-describing values
//!
//! Every value the loops write is made by [`describe`]: it carries the key it belongs to, the
//! id of the transaction that wrote it, its own length and a checksum of all of it, padded
//! with filler derived from those so any length can be chosen (large ones go through the value
//! log). [`decode`] checks a value read back against the key it was read under, so a torn
//! value, a value served for the wrong key, or one whose bytes were mixed with another's is
//! caught by the read itself; comparing the writer id with the oracle's then catches a stale
//! or resurrected value.
//!
//! ## Pending events
//!
//! The workload records each event (a commit, a restore from a checkpoint) before it runs it.
//! Until a crash is verified, the events are pending: a recovery must hold the committed state
//! followed by some prefix of them ([`Oracle::find_prefix`]), at least as long as the last
//! event made durable (an acknowledged `Immediate` commit, a completed flush, close or
//! restore), and it may include the event in flight when the power went. That one prefix
//! holding the recovered state exactly is all-or-nothing (no half transaction) and commit
//! order (no later commit without an earlier one) at once. [`Oracle::confirm`] then makes it
//! the committed state.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Magic bytes opening every described value.
const MAGIC: [u8; 2] = *b"SV";
/// Magic, length (u32), writer id (u64), key length (u16), then the key.
const HEADER_LEN: usize = 2 + 4 + 8 + 2;
/// The checksum closing the value.
const CHECKSUM_LEN: usize = 8;

/// The smallest described value for `key`: header, key and checksum.
pub fn min_value_len(key: &[u8]) -> usize {
    HEADER_LEN + key.len() + CHECKSUM_LEN
}

/// FNV-1a over `bytes`, then mixed: a checksum without dependencies.
fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The value transaction `writer` writes under `key`: `len` bytes (at least
/// [`min_value_len`]), fully determined by the three.
pub fn describe(key: &[u8], writer: u64, len: usize) -> Vec<u8> {
    let len = len.max(min_value_len(key));
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&MAGIC);
    v.extend_from_slice(&(len as u32).to_le_bytes());
    v.extend_from_slice(&writer.to_le_bytes());
    v.extend_from_slice(&(key.len() as u16).to_le_bytes());
    v.extend_from_slice(key);
    let mut filler = crate::Rng::new(checksum(&v));
    while v.len() < len - CHECKSUM_LEN {
        let word = filler.next_u64().to_le_bytes();
        let n = word.len().min(len - CHECKSUM_LEN - v.len());
        v.extend_from_slice(&word[..n]);
    }
    let sum = checksum(&v);
    v.extend_from_slice(&sum.to_le_bytes());
    v
}

/// What a described value says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Written {
    /// The transaction that wrote it.
    pub writer: u64,
    /// Its length in bytes.
    pub len: u32,
}

impl Written {
    /// The value's bytes, for `key`.
    pub fn bytes(&self, key: &[u8]) -> Vec<u8> {
        describe(key, self.writer, self.len as usize)
    }
}

/// Checks that `value`, read under `key`, is a whole described value of that key, and says
/// who wrote it. The error names what is wrong (torn, misplaced, damaged).
pub fn decode(key: &[u8], value: &[u8]) -> Result<Written, String> {
    let short = || format!("{} bytes, shorter than a described value", value.len());
    if value.len() < HEADER_LEN + CHECKSUM_LEN {
        return Err(short());
    }
    if value[..2] != MAGIC {
        return Err(format!("no magic: starts {}", crate::show(&value[..8])));
    }
    let field = |at: usize, n: usize| &value[at..at + n];
    let len = u32::from_le_bytes(field(2, 4).try_into().unwrap_or_default()) as usize;
    if len != value.len() {
        return Err(format!("torn: says {len} bytes, has {}", value.len()));
    }
    let writer = u64::from_le_bytes(field(6, 8).try_into().unwrap_or_default());
    let key_len = u16::from_le_bytes(field(14, 2).try_into().unwrap_or_default()) as usize;
    if HEADER_LEN + key_len + CHECKSUM_LEN > value.len() {
        return Err(short());
    }
    let own_key = &value[HEADER_LEN..HEADER_LEN + key_len];
    if own_key != key {
        return Err(format!(
            "misplaced: the value of {} (writer {writer}) read under {}",
            crate::show(own_key),
            crate::show(key)
        ));
    }
    let (body, sum) = value.split_at(value.len() - CHECKSUM_LEN);
    if checksum(body).to_le_bytes() != sum {
        return Err(format!("damaged: checksum mismatch (writer {writer}, {len} bytes)"));
    }
    let written = Written { writer, len: len as u32 };
    if written.bytes(key) != value {
        return Err(format!("damaged filler (writer {writer}, {len} bytes)"));
    }
    Ok(written)
}

/// Every version of every key: (key, timestamp) -> the value written there, `None` for a
/// tombstone. The loops never write twice at one (key, timestamp), so one entry each.
pub type Versions = BTreeMap<(Vec<u8>, u64), Option<Written>>;

/// One write of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OracleWrite {
    /// `set` at the commit timestamp.
    Set(Vec<u8>, Written),
    /// `delete` at the commit timestamp.
    Delete(Vec<u8>),
    /// `set_at_version` at an explicit (older) timestamp.
    SetAt(Vec<u8>, Written, u64),
}

/// An event whose effect a crash may or may not have kept.
#[derive(Debug, Clone)]
pub enum Event {
    /// A commit of `writes` at timestamp `ts`, by transaction `txn`.
    Commit { txn: u64, ts: u64, writes: Vec<OracleWrite> },
    /// A restore from a checkpoint holding `state`.
    Restore { state: Versions },
}

/// Applies one transaction's writes at `ts` to `state`: the last plain write of each key at
/// the commit timestamp, explicit-timestamp writes at theirs.
pub fn apply_writes(state: &mut Versions, writes: &[OracleWrite], ts: u64) {
    for w in writes {
        match w {
            OracleWrite::Set(k, v) => {
                state.insert((k.clone(), ts), Some(*v));
            }
            OracleWrite::Delete(k) => {
                state.insert((k.clone(), ts), None);
            }
            OracleWrite::SetAt(k, v, at) => {
                state.insert((k.clone(), *at), Some(*v));
            }
        }
    }
}

/// The value of `key` a reader at `ts` sees (`None` for the newest): the newest version at or
/// before it, if it is not a tombstone.
pub fn value_at(state: &Versions, key: &[u8], ts: Option<u64>) -> Option<Written> {
    let hi = ts.unwrap_or(u64::MAX);
    let lo = (key.to_vec(), 0);
    state.range(lo..=(key.to_vec(), hi)).next_back().and_then(|(_, v)| *v)
}

/// Live keys with `lo <= key < hi` as a reader at `ts` (or now) sees them.
pub fn view(state: &Versions, ts: Option<u64>, lo: &[u8], hi: &[u8]) -> Vec<(Vec<u8>, Written)> {
    let mut out = Vec::new();
    let mut last: Option<&[u8]> = None;
    for ((k, _), _) in state.range((lo.to_vec(), 0)..) {
        if k.as_slice() >= hi {
            break;
        }
        if last == Some(k.as_slice()) {
            continue;
        }
        last = Some(k.as_slice());
        if let Some(v) = value_at(state, k, ts) {
            out.push((k.clone(), v));
        }
    }
    out
}

/// A short description of how `got` differs from `want`.
pub fn diff(want: &Versions, got: &Versions) -> String {
    let mut out = Vec::new();
    for (kt, v) in want {
        match got.get(kt) {
            None => out.push(format!("missing ({}, {})", crate::show(&kt.0), kt.1)),
            Some(g) if g != v => {
                out.push(format!("({}, {}): want {v:?} got {g:?}", crate::show(&kt.0), kt.1))
            }
            Some(_) => {}
        }
    }
    for kt in got.keys().filter(|kt| !want.contains_key(*kt)) {
        out.push(format!("unexpected ({}, {}) = {:?}", crate::show(&kt.0), kt.1, got[kt]));
    }
    let n = out.len();
    out.truncate(10);
    let mut s = out.join("; ");
    if n > 10 {
        let _ = write!(s, "; ... {} more", n - 10);
    }
    s
}

/// What a crash's recovery must show, and what it showed.
#[derive(Debug, Clone, Default)]
pub struct Oracle {
    /// The state every recovery must start from: verified, or made durable since.
    committed: Versions,
    /// Events since the last confirmation, oldest first.
    pending: Vec<Event>,
    /// How many of `pending` were acknowledged (completed without error).
    acked: usize,
    /// How many of `pending` must survive any crash (made durable).
    durable: usize,
    /// The state after every pending event: what the live process sees.
    live: Versions,
}

impl Oracle {
    /// An empty database.
    pub fn new() -> Self {
        Oracle::default()
    }

    /// What a reader of the live database sees now (every event so far applied).
    pub fn live(&self) -> &Versions {
        &self.live
    }

    /// Records an event about to run; it is in flight until [`acked`](Self::acked).
    pub fn begin(&mut self, event: Event) {
        match &event {
            Event::Commit { ts, writes, .. } => apply_writes(&mut self.live, writes, *ts),
            Event::Restore { state } => self.live = state.clone(),
        }
        self.pending.push(event);
    }

    /// The event in flight did not happen and never can (a transaction conflict, a refused
    /// restore): forgets it.
    pub fn abandon(&mut self) {
        assert!(self.pending.len() > self.acked, "no event in flight");
        self.pending.pop();
        self.live = self.state_after(self.pending.len());
    }

    /// The event in flight completed; with `durable`, it and everything before it survive
    /// any crash from now on.
    pub fn acked(&mut self, durable: bool) {
        self.acked = self.pending.len();
        if durable {
            self.durable = self.pending.len();
        }
    }

    /// Everything so far survives any crash (a completed flush or close).
    pub fn all_durable(&mut self) {
        self.durable = self.acked;
    }

    /// Pending events, acknowledged ones and durable ones.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.pending.len(), self.acked, self.durable)
    }

    /// The state after the committed state and the first `k` pending events.
    pub fn state_after(&self, k: usize) -> Versions {
        let mut state = self.committed.clone();
        for event in &self.pending[..k] {
            match event {
                Event::Commit { ts, writes, .. } => apply_writes(&mut state, writes, *ts),
                Event::Restore { state: s } => state = s.clone(),
            }
        }
        state
    }

    /// The prefix of pending events that `got` holds exactly, with at least every durable
    /// event (every acknowledged one when `keep_unsynced`, a crash that lost nothing written).
    /// The longest one if several states are equal. The error describes the closest.
    pub fn find_prefix(&self, got: &Versions, keep_unsynced: bool) -> Result<usize, String> {
        let lo = if keep_unsynced { self.acked } else { self.durable };
        let mut state = self.committed.clone();
        let mut matches = Vec::new();
        let mut states = Vec::with_capacity(self.pending.len() + 1);
        for k in 0..=self.pending.len() {
            if k > 0 {
                match &self.pending[k - 1] {
                    Event::Commit { ts, writes, .. } => apply_writes(&mut state, writes, *ts),
                    Event::Restore { state: s } => state = s.clone(),
                }
            }
            if state == *got {
                matches.push(k);
            }
            states.push(state.clone());
        }
        if let Some(&k) = matches.iter().rev().find(|&&k| k >= lo) {
            return Ok(k);
        }
        if let Some(&k) = matches.last() {
            return Err(format!(
                "the recovered state is the state after {k} of {} pending events, but at least \
                 {lo} must have survived ({} acknowledged, {} durable): {}",
                self.pending.len(),
                self.acked,
                self.durable,
                self.describe_events(k, lo)
            ));
        }
        let (k, d) = states
            .iter()
            .enumerate()
            .map(|(k, s)| (k, diff(s, got)))
            .min_by_key(|(_, d)| d.matches(';').count())
            .unwrap_or((0, String::new()));
        Err(format!(
            "the recovered state is no prefix of the {} pending events ({} acknowledged, {} \
             durable); against the closest, after {k}: {d}",
            self.pending.len(),
            self.acked,
            self.durable
        ))
    }

    fn describe_events(&self, from: usize, to: usize) -> String {
        let mut s = String::new();
        for event in self.pending.iter().take(to).skip(from) {
            match event {
                Event::Commit { txn, ts, writes } => {
                    let _ = write!(s, "[lost commit {txn} at {ts}: {} writes] ", writes.len());
                }
                Event::Restore { .. } => s.push_str("[lost restore] "),
            }
        }
        s
    }

    /// The first `k` pending events survived and the rest are gone: the state after them is
    /// now committed.
    pub fn confirm(&mut self, k: usize) {
        self.committed = self.state_after(k);
        self.live = self.committed.clone();
        self.pending.clear();
        self.acked = 0;
        self.durable = 0;
    }
}

/// Reads every version of every key of `tree` (`scan_all_versions`), checking each value
/// describes itself as a value of its key. A read error or a bad value is an `Err`.
pub fn read_versions(tree: &strata::Tree) -> Result<Versions, String> {
    let txn = tree.begin_with_mode(strata::Mode::ReadOnly).map_err(|e| format!("begin: {e:?}"))?;
    let all = txn.scan_all_versions(b"", b"\xff", None).map_err(|e| format!("scan: {e:?}"))?;
    let mut out = Versions::new();
    for (key, value, ts, tombstone) in all {
        let entry = if tombstone {
            None
        } else {
            let w = decode(&key, &value)
                .map_err(|e| format!("version ({}, {ts}): {e}", crate::show(&key)))?;
            Some(w)
        };
        if out.insert((key.to_vec(), ts), entry).is_some() {
            return Err(format!("two versions listed at ({}, {ts})", crate::show(&key)));
        }
    }
    Ok(out)
}

/// Decodes a range read's pairs (each value checked against its key).
pub fn decode_pairs(
    pairs: impl Iterator<Item = strata::Result<(strata::Key, strata::Value)>>,
) -> Result<Vec<(Vec<u8>, Written)>, String> {
    pairs
        .map(|r| {
            let (k, v) = r.map_err(|e| format!("range read: {e:?}"))?;
            let w = decode(&k, &v).map_err(|e| format!("{}: {e}", crate::show(&k)))?;
            Ok((k.to_vec(), w))
        })
        .collect()
}

/// Checks a point read's answer against the oracle's `want`.
pub fn check_point(
    key: &[u8],
    got: strata::Result<Option<strata::Value>>,
    want: Option<Written>,
    what: &str,
) -> Result<(), String> {
    let got = got.map_err(|e| format!("{what} {}: {e:?}", crate::show(key)))?;
    let got = match got {
        None => None,
        Some(v) => Some(decode(key, &v).map_err(|e| format!("{what} {}: {e}", crate::show(key)))?),
    };
    if got == want {
        Ok(())
    } else {
        Err(format!("{what} {}: got {got:?}, the model says {want:?}", crate::show(key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn described_values_round_trip_and_catch_damage() {
        let key = b"key017";
        for len in [0, 10, 40, 41, 300, 5000] {
            let v = describe(key, 77, len);
            assert_eq!(v.len(), len.max(min_value_len(key)));
            assert_eq!(decode(key, &v), Ok(Written { writer: 77, len: v.len() as u32 }));
            // Under another key: misplaced.
            assert!(decode(b"key018", &v).unwrap_err().starts_with("misplaced"));
            // Cut short: torn.
            assert!(decode(key, &v[..v.len() - 1]).is_err());
            // Any flipped byte.
            for at in 0..v.len() {
                let mut bad = v.clone();
                bad[at] ^= 0x10;
                assert!(decode(key, &bad).is_err(), "flip at {at} of {len}");
            }
        }
        assert_ne!(describe(key, 1, 100), describe(key, 2, 100), "the writer shows");
    }

    #[test]
    fn prefixes_bounds_and_restores() {
        let w = |writer| Written { writer, len: 30 };
        let k = |s: &str| s.as_bytes().to_vec();
        let mut o = Oracle::new();
        o.begin(Event::Commit { txn: 1, ts: 10, writes: vec![OracleWrite::Set(k("a"), w(1))] });
        o.acked(true);
        let checkpoint = o.live().clone();
        o.begin(Event::Commit {
            txn: 2,
            ts: 20,
            writes: vec![OracleWrite::Set(k("b"), w(2)), OracleWrite::Delete(k("a"))],
        });
        o.acked(false);
        o.begin(Event::Restore { state: checkpoint.clone() });
        o.begin(Event::Commit { txn: 3, ts: 30, writes: vec![OracleWrite::Set(k("c"), w(3))] });
        // The restore and commit 3 are in flight / unacknowledged.
        assert_eq!(o.counts(), (4, 2, 1));
        assert_eq!(o.find_prefix(&o.state_after(2), true), Ok(2));
        assert_eq!(o.find_prefix(&o.state_after(4), true), Ok(4), "the one in flight may stay");
        assert!(o.find_prefix(&Versions::new(), false).is_err(), "lost a durable commit");
        // After the restore the state equals the checkpoint's (= after 1): the longest wins.
        assert_eq!(o.find_prefix(&checkpoint, false), Ok(3));
        // An acknowledged Eventual commit may be lost to a power cut, not to a process crash.
        let mut eventual = Oracle::new();
        eventual.begin(Event::Commit { txn: 9, ts: 90, writes: vec![OracleWrite::Delete(k("z"))] });
        eventual.acked(false);
        assert_eq!(eventual.find_prefix(&Versions::new(), false), Ok(0));
        assert!(eventual.find_prefix(&Versions::new(), true).unwrap_err().contains("at least 1"));
        let mut half = o.state_after(1);
        half.insert((k("b"), 20), Some(w(2)));
        assert!(o.find_prefix(&half, false).unwrap_err().contains("no prefix"));
        assert_eq!(value_at(&o.state_after(2), b"a", Some(15)), Some(w(1)));
        assert_eq!(value_at(&o.state_after(2), b"a", None), None);
        assert_eq!(view(&o.state_after(2), Some(25), b"", b"z"), vec![(k("b"), w(2))]);
        o.confirm(4);
        assert_eq!(o.counts(), (0, 0, 0));
        assert_eq!(view(o.live(), None, b"", b"z").len(), 2);
    }
}

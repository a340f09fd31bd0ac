//! Shared helpers for the integration tests: a seeded PRNG, seed and soak-size handling, a
//! `BTreeMap` model of the database, and small conveniences for opening trees on a `MemFs`.
//!
//! ## Environment variables
//!
//! - `STRATA_SEED=<u64>` (decimal or `0x` hex): the seed every randomized test uses instead of
//!   a fresh one. Every randomized test prints the seed it used (`cargo test -- --nocapture`
//!   shows it; a failing test's output always does).
//! - `STRATA_SOAK=1` multiplies iteration counts by [`DEFAULT_SOAK_FACTOR`];
//!   `STRATA_SOAK=<n>` (n >= 2) multiplies them by `n`. Unset or `0`: the CI size.

#![allow(clippy::unwrap_used)]

pub mod crash;
pub mod history;
pub mod oracle;
pub mod versioned;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use strata::{Durability, Error, Mode, ReadOptions, Result, Tree, TreeBuilder};
use strata_vfs::{CrashPolicy, EncryptedFs, MemFs, StaticKey, Vfs};

/// Multiplier `STRATA_SOAK=1` applies to iteration counts.
pub const DEFAULT_SOAK_FACTOR: u64 = 20;

/// The model of the database: every live key and its value.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// SplitMix64: tiny, no bad seeds, identical output on every platform.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator whose whole output is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A `usize` in `0..n`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo { lo } else { lo + self.below(hi - lo + 1) }
    }

    /// `true` with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A uniformly chosen element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        for chunk in out.chunks_mut(8) {
            let b = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        out
    }

    /// A non-zero byte (for XOR corruption).
    pub fn nonzero_byte(&mut self) -> u8 {
        (self.below(255) + 1) as u8
    }
}

/// The soak multiplier: 1 normally, see the module docs.
pub fn soak_factor() -> u64 {
    match std::env::var("STRATA_SOAK") {
        Err(_) => 1,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(0) => 1,
            Ok(1) => DEFAULT_SOAK_FACTOR,
            Ok(n) => n,
            Err(_) if v.trim().is_empty() => 1,
            Err(_) => DEFAULT_SOAK_FACTOR,
        },
    }
}

/// `true` when `STRATA_SOAK` asks for a bigger run.
pub fn is_soak() -> bool {
    soak_factor() > 1
}

/// `n` scaled by the soak multiplier.
pub fn scaled(n: u64) -> u64 {
    n.saturating_mul(soak_factor())
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// The seed `STRATA_SEED` pins, if any.
pub fn pinned_seed() -> Option<u64> {
    std::env::var("STRATA_SEED").ok().and_then(|s| parse_u64(&s))
}

/// A seed for the randomized test `test`: `STRATA_SEED` if set, else a fresh one. Prints it.
pub fn test_seed(test: &str) -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = pinned_seed().unwrap_or_else(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mut r = Rng::new(nanos ^ COUNTER.fetch_add(1, Ordering::Relaxed).rotate_left(32));
        r.next_u64()
    });
    eprintln!("{test}: seed {seed} (replay with STRATA_SEED={seed})");
    seed
}

/// Seeds for a test that runs several independent cases: the pinned seed alone, or `count`
/// fresh ones (printed).
pub fn test_seeds(test: &str, count: u64) -> Vec<u64> {
    if pinned_seed().is_some() {
        return vec![test_seed(test)];
    }
    (0..count.max(1)).map(|_| test_seed(test)).collect()
}

/// The filesystem stack a suite runs on, over the `MemFs` (or `FaultFs<MemFs>`) the test
/// crashes or faults: the engine straight on it, or through encryption at rest
/// (`EncryptedFs` over it, with [`TEST_KEY`], as [`TreeBuilder::with_encryption_key`] stacks
/// it). Power cuts and injected faults happen underneath the encryption layer, where a real
/// disk would fail; the suites' checks are the same on both stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// The engine on the filesystem directly.
    Plain,
    /// The engine on `EncryptedFs` over the filesystem.
    Encrypted,
}

/// The fixed key of [`Stack::Encrypted`].
pub const TEST_KEY: [u8; 32] = *b"strata test suites' fixed key..!";

impl Stack {
    /// Both stacks.
    pub const ALL: [Stack; 2] = [Stack::Plain, Stack::Encrypted];

    /// `"plain"` or `"encrypted"`, for test names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Stack::Plain => "plain",
            Stack::Encrypted => "encrypted",
        }
    }

    /// `builder` as this stack runs it: unchanged, or encrypting with [`TEST_KEY`].
    pub fn apply(self, builder: TreeBuilder) -> TreeBuilder {
        match self {
            Stack::Plain => builder,
            Stack::Encrypted => builder.with_encryption_key(TEST_KEY),
        }
    }

    /// [`builder_on`] on this stack.
    pub fn builder_on<V>(self, fs: V) -> TreeBuilder
    where
        V: Vfs + Send + Sync + 'static,
        V::Read: Send + Sync + 'static,
        V::Write: Send + 'static,
        V::Lock: Send + 'static,
    {
        self.apply(builder_on(fs))
    }

    /// [`open_mem`] on this stack.
    pub fn open_mem(self, mem: &MemFs) -> Result<Tree> {
        self.builder_on(mem.clone()).build()
    }

    /// The files of `fs` as the engine sees them (decrypted on the encrypted stack), for tests
    /// that read or measure files directly.
    pub fn view<V>(self, fs: V) -> strata::DynFs
    where
        V: Vfs + Send + Sync + 'static,
        V::Read: Send + Sync + 'static,
        V::Write: Send + 'static,
        V::Lock: Send + 'static,
    {
        match self {
            Stack::Plain => strata::DynFs::new(fs),
            Stack::Encrypted => strata::DynFs::new(
                EncryptedFs::open(fs, &StaticKey::new(TEST_KEY), strata::OsRandom)
                    .expect("open the encrypted view"),
            ),
        }
    }

    /// Bytes the stack stores in front of each file's data on the medium: a byte at data
    /// offset `o` sits at file offset `o + prefix_len()`.
    pub fn prefix_len(self) -> u64 {
        match self {
            Stack::Plain => 0,
            Stack::Encrypted => strata_vfs::encrypted::PREFIX_LEN as u64,
        }
    }
}

/// A builder on `fs` with a 64 KiB WAL segment (so rotations happen in small tests).
pub fn builder_on<V>(fs: V) -> TreeBuilder
where
    V: Vfs + Send + Sync + 'static,
    V::Read: Send + Sync + 'static,
    V::Write: Send + 'static,
    V::Lock: Send + 'static,
{
    TreeBuilder::new().with_vfs(fs).with_wal_segment_size(64 * 1024)
}

/// Opens a tree on `mem` with a 64 KiB WAL segment.
pub fn open_mem(mem: &MemFs) -> Result<Tree> {
    builder_on(mem.clone()).build()
}

/// Every live key and value, read by a fresh read-only transaction, forward.
pub fn dump(tree: &Tree) -> Result<Model> {
    let txn = tree.begin_with_mode(Mode::ReadOnly)?;
    let mut out = Model::new();
    for kv in txn.range_with_options(&ReadOptions::new())? {
        let (k, v) = kv?;
        out.insert(k.to_vec(), v.to_vec());
    }
    Ok(out)
}

/// An independent copy of a MemFs's current contents (all of it, synced or not).
pub fn copy_fs(mem: &MemFs) -> MemFs {
    mem.crash(CrashPolicy::KeepUnsynced, 0)
}

/// WAL segment file names, ascending.
pub fn wal_segments<V: Vfs>(fs: &V) -> Vec<String> {
    let mut names: Vec<String> =
        fs.list().unwrap().into_iter().filter(|n| n.ends_with(".wal")).collect();
    names.sort();
    names
}

/// The newest WAL segment's name.
pub fn newest_wal<V: Vfs>(fs: &V) -> Option<String> {
    wal_segments(fs).pop()
}

/// Sizes of the files in a real directory (on the host filesystem), by name. A file that
/// vanishes between the listing and its stat (background GC or compaction deleting it) is left
/// out rather than failing the caller: it no longer takes space.
pub fn file_sizes(dir: &std::path::Path) -> BTreeMap<String, u64> {
    let mut sizes = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("list") {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("list {}: {e}", dir.display()),
        };
        let name = entry.file_name().into_string().expect("utf8 file name");
        match entry.metadata() {
            Ok(meta) => {
                sizes.insert(name, meta.len());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("stat {name}: {e}"),
        }
    }
    sizes
}

/// One write of a transaction: `None` deletes.
pub type Write = (Vec<u8>, Option<Vec<u8>>);

/// A transaction of a fixed workload.
#[derive(Debug, Clone)]
pub struct TxnSpec {
    /// Its writes, in order.
    pub writes: Vec<Write>,
    /// Its durability.
    pub durability: Durability,
}

impl TxnSpec {
    /// Applies the writes to `model`.
    pub fn apply(&self, model: &mut Model) {
        for (k, v) in &self.writes {
            match v {
                Some(v) => {
                    model.insert(k.clone(), v.clone());
                }
                None => {
                    model.remove(k);
                }
            }
        }
    }

    /// Runs the transaction on `tree` and commits it, blocking.
    pub fn run(&self, tree: &Tree) -> Result<()> {
        let mut txn = tree.begin()?;
        txn.set_durability(self.durability);
        for (k, v) in &self.writes {
            match v {
                Some(v) => txn.set(k, v)?,
                None => txn.delete(k)?,
            }
        }
        txn.commit_blocking()
    }
}

/// The key every workload transaction sets to its own index, so that the model states after
/// different prefixes of a workload all differ.
pub const MARKER_KEY: &[u8] = b"~marker";

/// Model states after each prefix of `txns`: `states[p]` is the state after the first `p`.
pub fn prefix_states(txns: &[TxnSpec]) -> Vec<Model> {
    let mut states = Vec::with_capacity(txns.len() + 1);
    let mut m = Model::new();
    states.push(m.clone());
    for t in txns {
        t.apply(&mut m);
        states.push(m.clone());
    }
    states
}

/// Which prefix a recovered state is, using the marker key, if it matches one exactly.
pub fn which_prefix(states: &[Model], got: &Model) -> Option<usize> {
    let p = marker_prefix(got.get(MARKER_KEY).map(Vec::as_slice))?;
    (states.get(p)? == got).then_some(p)
}

/// The prefix length a value of [`MARKER_KEY`] names: 0 when the key is absent, else one past
/// the index it holds (`None` if that is not a number).
pub fn marker_prefix(marker: Option<&[u8]>) -> Option<usize> {
    match marker {
        None => Some(0),
        Some(v) => std::str::from_utf8(v).ok()?.parse::<usize>().ok().map(|i| i + 1),
    }
}

/// A short description of how `got` differs from `want`, for failure messages.
pub fn diff(want: &Model, got: &Model) -> String {
    let mut out = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => out.push(format!("missing {}", show(k))),
            Some(g) if g != v => out.push(format!(
                "{}: want {} bytes {}, got {} bytes {}",
                show(k),
                v.len(),
                show(&v[..v.len().min(16)]),
                g.len(),
                show(&g[..g.len().min(16)])
            )),
            Some(_) => {}
        }
    }
    for k in got.keys() {
        if !want.contains_key(k) {
            out.push(format!("unexpected {}", show(k)));
        }
    }
    if out.len() > 12 {
        let n = out.len();
        out.truncate(12);
        out.push(format!("... {} more", n - 12));
    }
    out.join("; ")
}

/// Bytes as an escaped string.
pub fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// A value of `len` bytes that encodes `tag`, so a value from the wrong transaction or a
/// damaged one never compares equal to the right one.
pub fn tagged_value(tag: u64, len: usize) -> Vec<u8> {
    let mut r = Rng::new(tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ len as u64);
    let mut v = r.bytes(len);
    let t = tag.to_le_bytes();
    let n = v.len().min(8);
    v[..n].copy_from_slice(&t[..n]);
    v
}

/// `true` for the errors a failed filesystem call may surface as.
pub fn is_io_error(e: &Error) -> bool {
    matches!(e, Error::Io { .. } | Error::NoSpace { .. })
}

//! A commit whose future is dropped must still be checked against every write committed after
//! its snapshot (issue 10, item 2).
//!
//! The commit thread is held inside a WAL sync by a gated filesystem, so the victim's request
//! is queued while another group is in flight. The victim's future and transaction are dropped
//! while it waits; the group in flight writes enough keys to make the conflict oracle prune.
//! If the dropped transaction released its snapshot, the oracle forgets an earlier write the
//! victim must conflict with, and the victim overwrites it: a lost update.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

use strata::{Durability, TreeBuilder};
use strata_vfs::{AppendWrite, Caps, FileKind, MemFs, MemWriter, Result, SyncMode, Vfs};

/// Blocks the first WAL sync after [`Gate::arm`] until [`Gate::release`].
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    armed: bool,
    entered: bool,
    released: bool,
}

impl Gate {
    fn arm(&self) {
        self.state.lock().unwrap().armed = true;
    }

    /// Called by a WAL sync: blocks while armed, once.
    fn pass(&self) {
        let mut st = self.state.lock().unwrap();
        if !st.armed {
            return;
        }
        st.armed = false;
        st.entered = true;
        self.changed.notify_all();
        while !st.released {
            st = self.changed.wait(st).unwrap();
        }
    }

    fn wait_entered(&self) {
        let mut st = self.state.lock().unwrap();
        while !st.entered {
            st = self.changed.wait(st).unwrap();
        }
    }

    fn release(&self) {
        self.state.lock().unwrap().released = true;
        self.changed.notify_all();
    }
}

#[derive(Clone)]
struct GateFs {
    inner: MemFs,
    gate: Arc<Gate>,
}

struct GateWriter {
    inner: MemWriter,
    wal: bool,
    gate: Arc<Gate>,
}

impl AppendWrite for GateWriter {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        self.inner.append(data)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn sync(&mut self, mode: SyncMode) -> Result<()> {
        if self.wal {
            self.gate.pass();
        }
        self.inner.sync(mode)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl Vfs for GateFs {
    type Read = <MemFs as Vfs>::Read;
    type Write = GateWriter;
    type Lock = <MemFs as Vfs>::Lock;

    fn caps(&self) -> Caps {
        self.inner.caps()
    }
    fn create(&self, name: &str, kind: FileKind) -> Result<GateWriter> {
        let inner = self.inner.create(name, kind)?;
        Ok(GateWriter { inner, wal: kind == FileKind::Wal, gate: Arc::clone(&self.gate) })
    }
    fn open(&self, name: &str, kind: FileKind) -> Result<Self::Read> {
        self.inner.open(name, kind)
    }
    fn remove(&self, name: &str) -> Result<()> {
        self.inner.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn sync_dir(&self) -> Result<()> {
        self.inner.sync_dir()
    }
    fn list(&self) -> Result<Vec<String>> {
        self.inner.list()
    }
    fn size(&self, name: &str) -> Result<u64> {
        self.inner.size(name)
    }
    fn lock(&self, name: &str) -> Result<Self::Lock> {
        self.inner.lock(name)
    }
}

/// Polls `fut` once (enough to queue a commit) and drops it.
fn poll_once_and_drop<F: Future>(fut: F) -> bool {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(fut.as_mut().poll(&mut cx), Poll::Pending)
}

#[test]
fn dropped_commit_future_still_conflicts_after_the_oracle_prunes() {
    let gate = Arc::new(Gate::default());
    let fs = GateFs { inner: MemFs::new(), gate: Arc::clone(&gate) };
    let tree = TreeBuilder::new().with_vfs(fs).with_background_threads(false).build().unwrap();

    let mut seed = tree.begin().unwrap();
    seed.set(b"k", b"0").unwrap();
    seed.commit_blocking().unwrap();
    drop(seed);

    // The victim reads k and writes it back; its snapshot is older than U's write.
    let mut victim = tree.begin().unwrap();
    assert_eq!(victim.get(b"k").unwrap().unwrap().as_ref(), b"0");
    victim.set(b"k", b"victim").unwrap();

    // U writes k after the victim's snapshot and commits.
    let mut u = tree.begin().unwrap();
    u.set(b"k", b"u").unwrap();
    u.commit_blocking().unwrap();
    drop(u);

    // H begins after U and writes enough keys that the oracle prunes after H's group: with the
    // victim gone, H's snapshot is the oldest, so U's write looks forgettable.
    let mut h = tree.begin().unwrap();
    for i in 0..2048u32 {
        h.set(format!("filler{i:05}").as_bytes(), b"x").unwrap();
    }
    h.set_durability(Durability::Immediate);

    // Hold the commit thread inside H's WAL sync.
    gate.arm();
    let committer = std::thread::spawn(move || h.commit_blocking());
    gate.wait_entered();

    // The victim queues its commit (the commit lock is busy, so not inline), then gives up
    // waiting and drops its transaction.
    assert!(poll_once_and_drop(victim.commit()), "the commit must be queued, not done");
    drop(victim);

    gate.release();
    committer.join().unwrap().unwrap();

    // An Immediate commit queued after the victim's: when it returns, the victim's request
    // has been decided.
    let mut barrier = tree.begin().unwrap();
    barrier.set(b"barrier", b"1").unwrap();
    barrier.set_durability(Durability::Immediate);
    barrier.commit_blocking().unwrap();

    let check = tree.begin().unwrap();
    let k = check.get(b"k").unwrap().unwrap();
    assert_eq!(
        k.as_ref(),
        b"u",
        "the dropped commit read k before U wrote it, so it must conflict (lost update)"
    );
    assert_eq!(tree.stats().conflicts, 1);
}

#[test]
fn dropped_commit_future_may_still_take_effect_whole() {
    let gate = Arc::new(Gate::default());
    let fs = GateFs { inner: MemFs::new(), gate: Arc::clone(&gate) };
    let tree = TreeBuilder::new().with_vfs(fs).with_background_threads(false).build().unwrap();

    let mut holder = tree.begin().unwrap();
    holder.set(b"h", b"1").unwrap();
    holder.set_durability(Durability::Immediate);
    gate.arm();
    let committer = std::thread::spawn(move || holder.commit_blocking());
    gate.wait_entered();

    let mut txn = tree.begin().unwrap();
    txn.set(b"a", b"1").unwrap();
    txn.set(b"b", b"2").unwrap();
    assert!(poll_once_and_drop(txn.commit()));
    drop(txn);
    gate.release();
    committer.join().unwrap().unwrap();

    let mut barrier = tree.begin().unwrap();
    barrier.set(b"barrier", b"1").unwrap();
    barrier.set_durability(Durability::Immediate);
    barrier.commit_blocking().unwrap();

    // Nothing conflicted, so the abandoned commit took effect, all of it.
    let check = tree.begin().unwrap();
    assert_eq!(check.get(b"a").unwrap().unwrap().as_ref(), b"1");
    assert_eq!(check.get(b"b").unwrap().unwrap().as_ref(), b"2");
}

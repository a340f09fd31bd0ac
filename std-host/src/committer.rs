//! The commit thread: group commit.
//!
//! Transactions hand their batch to this thread and wait on a oneshot channel, which works
//! under any executor (or none). The thread takes everything queued, commits it as one group
//! (one WAL write; one WAL fsync if a member is Immediate, preceded by a sync of the value log
//! head when the group wrote large values; rotations add their own) and answers each caller.
//! While it syncs, new commits queue up and form the next group, so many concurrent Immediate
//! committers share fsyncs. A commit that would wait for nobody skips this thread and commits
//! on its caller's (`TreeInner::try_commit_inline` says when); `pending` counts what is queued
//! here, so that a synced commit never bypasses a forming group.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use strata_core::{CommitRequest, Engine, Error, Result, SeqNo};
use strata_vfs::sync::Mutex;
use tokio::sync::oneshot;

use crate::background::Background;
use crate::dyn_fs::DynFs;

/// Upper bounds on one group, so a flood of commits still gets answered in slices.
const MAX_GROUP_COMMITS: usize = 1024;
const MAX_GROUP_BYTES: usize = 8 * 1024 * 1024;

struct Job {
    request: CommitRequest,
    reply: oneshot::Sender<Result<SeqNo>>,
}

/// Handle to the commit thread.
pub(crate) struct Committer {
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    /// Commits queued or being committed by the thread.
    pending: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    /// Starts the thread.
    pub(crate) fn start(engine: Arc<Engine<DynFs>>, background: Arc<Background>) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pending);
        let thread = std::thread::Builder::new()
            .name("strata-commit".into())
            .spawn(move || run(&engine, &background, &rx, &counter))
            .map_err(|_| Error::invalid("commit thread", "the OS refused to start a thread"))?;
        Ok(Committer { queue: Mutex::new(Some(tx)), pending, thread: Mutex::new(Some(thread)) })
    }

    /// Whether no commit is queued or being committed by the thread: a commit made on the
    /// caller's thread now takes no place in a forming group.
    pub(crate) fn idle(&self) -> bool {
        self.pending.load(Ordering::Acquire) == 0
    }

    /// Queues a commit; the receiver yields its result.
    pub(crate) fn submit(
        &self,
        request: CommitRequest,
    ) -> Result<oneshot::Receiver<Result<SeqNo>>> {
        let (reply, rx) = oneshot::channel();
        let queue = self.queue.lock();
        let sender = queue.as_ref().ok_or(Error::Closed)?;
        self.pending.fetch_add(1, Ordering::AcqRel);
        if sender.send(Job { request, reply }).is_err() {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Closed);
        }
        Ok(rx)
    }

    /// Stops accepting commits, lets the thread finish what is queued, and joins it.
    pub(crate) fn shutdown(&self) {
        drop(self.queue.lock().take());
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn run(
    engine: &Engine<DynFs>,
    background: &Background,
    rx: &mpsc::Receiver<Job>,
    pending: &AtomicUsize,
) {
    let mut requests = Vec::new();
    let mut replies = Vec::new();
    // `recv` fails once every sender is gone and the queue is drained: a clean shutdown.
    while let Ok(first) = rx.recv() {
        let mut bytes = first.request.batch.encoded_len();
        requests.push(first.request);
        replies.push(first.reply);
        while requests.len() < MAX_GROUP_COMMITS && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(job) => {
                    bytes += job.request.batch.encoded_len();
                    requests.push(job.request);
                    replies.push(job.reply);
                }
                Err(_) => break,
            }
        }
        // Back-pressure: wait (never fail) while flushes and compactions catch up.
        background.wait_for_room();
        let results = engine.commit_group(&mut requests);
        if engine.immutable_memtables() > 0 {
            background.nudge();
        }
        // Release the requests (each holds its transaction's snapshot) before answering: a
        // caller that goes on to collect value log garbage must not find its own committed
        // transaction still pinning old files (measured: under load, 1 run in 6 deferred a
        // deletion that way, so the same workload made a different number of syncs).
        requests.clear();
        pending.fetch_sub(replies.len(), Ordering::AcqRel);
        for (reply, result) in replies.drain(..).zip(results) {
            // A caller that stopped waiting (its future was dropped) is not an error.
            let _ = reply.send(result);
        }
    }
}

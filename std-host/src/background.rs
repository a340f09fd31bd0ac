//! Background threads: one flush worker and N compaction workers, parked on a condition
//! variable until the committer or another worker says there may be work. Writers that would
//! outrun them (too many immutable memtables, too many level-0 files) wait here, and are woken
//! as soon as a job finishes.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use strata_core::{Engine, Error, Result};

use crate::dyn_fs::DynFs;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Job {
    Flush,
    Compact,
}

struct Shared {
    engine: Arc<Engine<DynFs>>,
    stop: Mutex<bool>,
    /// Signalled when there may be work (a memtable filled up, a job finished).
    work: Condvar,
    /// Signalled when a job finished (stalled writers re-check).
    progress: Condvar,
}

/// The background workers of one tree.
pub(crate) struct Background {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// No threads: the committer runs jobs itself when writers would otherwise wait.
    inline: bool,
}

impl Background {
    /// No threads: jobs run on the committer only when writers would otherwise wait, or when
    /// the user calls `Tree::maintenance_step`. Deterministic, and what single-core devices use.
    pub(crate) fn inline(engine: Arc<Engine<DynFs>>) -> Self {
        let shared = Arc::new(Shared {
            engine,
            stop: Mutex::new(false),
            work: Condvar::new(),
            progress: Condvar::new(),
        });
        Background { shared, threads: Mutex::new(Vec::new()), inline: true }
    }

    /// Starts one flush worker and `compaction_threads` compaction workers.
    pub(crate) fn start(engine: Arc<Engine<DynFs>>, compaction_threads: usize) -> Result<Self> {
        let shared = Arc::new(Shared {
            engine,
            stop: Mutex::new(false),
            work: Condvar::new(),
            progress: Condvar::new(),
        });
        let bg = Background { shared, threads: Mutex::new(Vec::new()), inline: false };
        let jobs = std::iter::once(Job::Flush)
            .chain(std::iter::repeat_n(Job::Compact, compaction_threads));
        for (i, job) in jobs.enumerate() {
            let shared = Arc::clone(&bg.shared);
            let name = match job {
                Job::Flush => "strata-flush".to_string(),
                Job::Compact => format!("strata-compact-{i}"),
            };
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || worker(&shared, job))
                .map_err(|_| {
                    Error::invalid("background threads", "the OS refused to start a thread")
                })?;
            bg.threads.lock().unwrap_or_else(PoisonError::into_inner).push(handle);
        }
        Ok(bg)
    }

    /// `true` without worker threads: committers run the pending jobs themselves (in
    /// [`wait_for_room`](Self::wait_for_room), on the commit thread).
    pub(crate) fn runs_inline(&self) -> bool {
        self.inline
    }

    /// Tells the workers there may be work.
    pub(crate) fn nudge(&self) {
        self.shared.work.notify_all();
    }

    /// Blocks while the engine asks writers to wait, and records the time spent. Inline, runs
    /// every pending job once a memtable has filled up.
    pub(crate) fn wait_for_room(&self) {
        let engine = &self.shared.engine;
        if self.inline {
            if engine.immutable_memtables() > 0 {
                let started = Instant::now();
                // Errors poison the engine; the commit that follows reports it.
                let _ = engine.maintenance_step(usize::MAX);
                let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
                engine.stats().stall_ns.fetch_add(waited, Ordering::Relaxed);
            }
            return;
        }
        if !engine.should_stall() {
            return;
        }
        let started = Instant::now();
        let mut stop = self.shared.stop.lock().unwrap_or_else(PoisonError::into_inner);
        while !*stop && !engine.is_poisoned() && engine.should_stall() {
            self.shared.work.notify_all();
            stop = self
                .shared
                .progress
                .wait_timeout(stop, Duration::from_millis(10))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        engine.stats().stall_ns.fetch_add(waited, Ordering::Relaxed);
    }

    /// Stops and joins the workers. A job in progress finishes first.
    pub(crate) fn shutdown(&self) {
        *self.shared.stop.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.work.notify_all();
        self.shared.progress.notify_all();
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for t in threads {
            let _ = t.join();
        }
    }
}

fn worker(shared: &Shared, job: Job) {
    loop {
        if *shared.stop.lock().unwrap_or_else(PoisonError::into_inner) {
            return;
        }
        let did = match job {
            Job::Flush => shared.engine.flush_one(),
            Job::Compact => shared.engine.compact_one(),
        };
        match did {
            Ok(true) => {
                // A flush may enable a compaction and a compaction may unblock writers.
                shared.work.notify_all();
                shared.progress.notify_all();
                continue;
            }
            // Nothing to do: delete files that finished readers no longer hold; a compaction
            // worker then collects value log garbage if a file is known dead enough, or else
            // samples a file against the tree (one bounded step; back to back only while the
            // tree is idle). Then park.
            Ok(false) => {
                shared.engine.delete_obsolete_files();
                if job == Job::Compact {
                    if matches!(shared.engine.gc_step(), Ok(true)) {
                        shared.progress.notify_all();
                        continue;
                    }
                    if matches!(shared.engine.gc_sample_step(), Ok(true)) {
                        continue;
                    }
                }
            }
            // Poisoned or closed: writes fail until reopen; park.
            Err(_) => {}
        }
        let stop = shared.stop.lock().unwrap_or_else(PoisonError::into_inner);
        if *stop {
            return;
        }
        drop(shared.work.wait_timeout(stop, Duration::from_millis(200)));
    }
}

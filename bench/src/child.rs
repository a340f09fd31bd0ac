//! What one child process runs: a single step of a workload on one engine, timed, with the
//! process's peak RSS read from `/proc/self/status` at the end. The parent starts a fresh
//! process for every step, so peak RSS belongs to that step alone and no engine's caches or
//! threads outlive it.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Barrier;
use std::time::Instant;

use crate::data::{self, Rng};
use crate::engine::{self, Engine, OpenSpec, Profile, Result};

/// Key order of a fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Order {
    Sequential,
    Random,
}

/// One step, as the parent sends it (JSON on the command line).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Step {
    /// Writes keys `0..num` in `order`, `batch` keys per commit, with `version` in the values.
    /// `hold`: after reporting, wait to be killed instead of closing (the crash workload).
    Fill { order: Order, seed: u64, batch: usize, version: u32, hold: bool },
    /// `ops` one-key commits, each synced, from `threads` committers.
    FillSync { threads: usize, ops: u64 },
    /// Times the open; `count` then counts the keys with a full scan (untimed).
    Open { count: bool },
    /// `ops` point reads of random existing keys from `threads` readers.
    ReadRandom { threads: usize, ops: u64, version: u32 },
    /// Every reader scans the whole database.
    ReadSeq { threads: usize },
    /// `ops` scans of `length` keys from random start keys.
    Scan { ops: u64, length: usize },
    /// `versions` rounds writing every key, round `r` at timestamp `(r + 1) * TS_STEP`.
    TimeTravelFill { versions: u32, batch: usize },
    /// `ops` reads of random keys as of the timestamp of round `version`.
    TimeTravelRead { ops: u64, version: u32 },
}

/// Timestamps of time-travel rounds are multiples of this.
pub const TS_STEP: u64 = 1_000_000;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Task {
    pub engine: String,
    pub dir: PathBuf,
    pub profile: Profile,
    pub large_values: bool,
    pub versioned: bool,
    pub num: u64,
    pub value_size: usize,
    pub step: Step,
}

/// What a step reports: operations done, the seconds they took, extra figures, peak RSS.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub ops: u64,
    pub secs: f64,
    pub extra: BTreeMap<String, f64>,
    pub peak_rss_kib: u64,
}

/// The line prefix the parent looks for on the child's stdout.
pub const RESULT_PREFIX: &str = "BENCH-RESULT ";

pub fn main(task_json: &str) -> Result<()> {
    let task: Task = serde_json::from_str(task_json)?;
    let mut out = Outcome::default();
    let hold = matches!(task.step, Step::Fill { hold: true, .. });
    run(&task, &mut out)?;
    out.peak_rss_kib = peak_rss_kib()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{RESULT_PREFIX}{}", serde_json::to_string(&out)?)?;
    stdout.flush()?;
    drop(stdout);
    if hold {
        // The parent kills this process now (SIGKILL) with the database open and unclosed:
        // a real crash. Waiting on stdin keeps the engine's threads running meanwhile.
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Err("the parent did not kill the crash workload".into());
    }
    Ok(())
}

fn spec(task: &Task) -> OpenSpec {
    OpenSpec { profile: task.profile, large_values: task.large_values, versioned: task.versioned }
}

fn run(task: &Task, out: &mut Outcome) -> Result<()> {
    let started = Instant::now();
    let db = engine::open(&task.engine, &task.dir, spec(task))?;
    let open_secs = started.elapsed().as_secs_f64();
    out.extra.insert("open_secs".into(), open_secs);
    match task.step.clone() {
        Step::Fill { order, seed, batch, version, hold } => {
            fill(&*db, task, order, seed, batch, version, out)?;
            if hold {
                // Leak the engine: the process is about to be killed with it open.
                std::mem::forget(db);
                return Ok(());
            }
        }
        Step::FillSync { threads, ops } => fill_sync(&*db, task, threads, ops, out)?,
        Step::Open { count } => {
            out.ops = 1;
            out.secs = open_secs;
            if count {
                let mut reader = db.reader()?;
                let n = reader.scan(None, None, &mut |_, _| {})?;
                out.extra.insert("keys_found".into(), n as f64);
            }
        }
        Step::ReadRandom { threads, ops, version } => {
            read_random(&*db, task, threads, ops, version, out)?
        }
        Step::ReadSeq { threads } => read_seq(&*db, task, threads, out)?,
        Step::Scan { ops, length } => scan(&*db, task, ops, length, out)?,
        Step::TimeTravelFill { versions, batch } => tt_fill(&*db, task, versions, batch, out)?,
        Step::TimeTravelRead { ops, version } => tt_read(&*db, task, ops, version, out)?,
    }
    let closing = Instant::now();
    db.close()?;
    out.extra.insert("close_secs".into(), closing.elapsed().as_secs_f64());
    Ok(())
}

fn fill(
    db: &dyn Engine,
    task: &Task,
    order: Order,
    seed: u64,
    batch: usize,
    version: u32,
    out: &mut Outcome,
) -> Result<()> {
    // A random order is materialised up front (8 bytes a key, the same for every engine);
    // keys and values are built per commit into reused buffers, outside any engine.
    let random = match order {
        Order::Sequential => None,
        Order::Random => Some(data::permutation(task.num, seed)),
    };
    let index = |n: u64| random.as_ref().map_or(n, |p| p[n as usize]);
    let mut keys: Vec<[u8; data::KEY_LEN]> = vec![[0; data::KEY_LEN]; batch];
    let mut values: Vec<Vec<u8>> = vec![Vec::new(); batch];
    let started = Instant::now();
    let mut next = 0u64;
    while next < task.num {
        let len = (task.num - next).min(batch as u64) as usize;
        for j in 0..len {
            let i = index(next + j as u64);
            keys[j] = data::key(i);
            data::value(i, version, task.value_size, &mut values[j]);
        }
        let pairs: Vec<(&[u8], &[u8])> =
            (0..len).map(|j| (&keys[j][..], values[j].as_slice())).collect();
        db.write(&pairs, false)?;
        next += len as u64;
    }
    out.secs = started.elapsed().as_secs_f64();
    out.ops = task.num;
    Ok(())
}

fn fill_sync(
    db: &dyn Engine,
    task: &Task,
    threads: usize,
    ops: u64,
    out: &mut Outcome,
) -> Result<()> {
    let per_thread = ops / threads as u64;
    let value_size = task.value_size;
    let (secs, done) = parallel(threads, |t| {
        let t = t as u64;
        let mut v = Vec::new();
        for j in 0..per_thread {
            let i = t + j * threads as u64;
            data::value(i, 0, value_size, &mut v);
            db.write(&[(&data::key(i), &v)], true)?;
        }
        Ok(per_thread)
    })?;
    out.secs = secs;
    out.ops = done;
    Ok(())
}

/// Runs `work(thread_index)` on `threads` threads released together; returns the seconds
/// from the first thread's start to the last thread's end (each thread reads the clock
/// itself, so a descheduled parent cannot shorten the measurement) and the sum of what the
/// threads returned.
fn parallel<F>(threads: usize, work: F) -> Result<(f64, u64)>
where
    F: Fn(usize) -> Result<u64> + Sync,
{
    let barrier = Barrier::new(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, work) = (&barrier, &work);
                s.spawn(move || -> Result<(Instant, Instant, u64)> {
                    barrier.wait();
                    let start = Instant::now();
                    let n = work(t)?;
                    Ok((start, Instant::now(), n))
                })
            })
            .collect();
        let mut first: Option<Instant> = None;
        let mut last: Option<Instant> = None;
        let mut total = 0;
        for h in handles {
            let (start, end, n) = h.join().map_err(|_| "a worker thread panicked")??;
            first = Some(first.map_or(start, |f| f.min(start)));
            last = Some(last.map_or(end, |l| l.max(end)));
            total += n;
        }
        let secs = match (first, last) {
            (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
            _ => 0.0,
        };
        Ok((secs, total))
    })
}

fn read_random(
    db: &dyn Engine,
    task: &Task,
    threads: usize,
    ops: u64,
    version: u32,
    out: &mut Outcome,
) -> Result<()> {
    let per_thread = ops / threads as u64;
    let (secs, found) = parallel(threads, |t| {
        let mut reader = db.reader()?;
        let mut rng = Rng::new(1000 + t as u64);
        let mut found = 0;
        for _ in 0..per_thread {
            let i = rng.below(task.num);
            let mut ok = false;
            let hit = reader.get(&data::key(i), &mut |v| {
                ok = data::value_matches(v, i, version, task.value_size)
            })?;
            if !hit || !ok {
                return Err(format!("key {i}: found {hit}, value as written {ok}").into());
            }
            found += 1;
        }
        Ok(found)
    })?;
    out.secs = secs;
    out.ops = found;
    Ok(())
}

fn read_seq(db: &dyn Engine, task: &Task, threads: usize, out: &mut Outcome) -> Result<()> {
    let (secs, total) = parallel(threads, |_| {
        let mut reader = db.reader()?;
        let mut expected = 0u64;
        let mut bad = None;
        let n = reader.scan(None, None, &mut |k, v| {
            if bad.is_none() && (data::key_index(k) != Some(expected) || v.len() != task.value_size)
            {
                bad = Some(expected);
            }
            expected += 1;
        })?;
        if let Some(at) = bad {
            return Err(format!("full scan: unexpected pair at position {at}").into());
        }
        if n as u64 != task.num {
            return Err(format!("full scan saw {n} keys, expected {}", task.num).into());
        }
        Ok(n as u64)
    })?;
    out.secs = secs;
    out.ops = total;
    Ok(())
}

fn scan(db: &dyn Engine, task: &Task, ops: u64, length: usize, out: &mut Outcome) -> Result<()> {
    let last_start = task.num.saturating_sub(length as u64).max(1);
    let (secs, visited) = parallel(1, |_| {
        let mut reader = db.reader()?;
        let mut rng = Rng::new(77);
        let mut visited = 0u64;
        for _ in 0..ops {
            let start = rng.below(last_start);
            let mut expected = start;
            let mut in_order = true;
            let n = reader.scan(Some(&data::key(start)), Some(length), &mut |k, _| {
                in_order &= data::key_index(k) == Some(expected);
                expected += 1;
            })?;
            if n != length.min(task.num as usize) || !in_order {
                return Err(format!("scan from {start}: {n} keys, in order {in_order}").into());
            }
            visited += n as u64;
        }
        Ok(visited)
    })?;
    out.secs = secs;
    out.ops = ops;
    out.extra.insert("keys_visited".into(), visited as f64);
    Ok(())
}

fn tt_fill(
    db: &dyn Engine,
    task: &Task,
    versions: u32,
    batch: usize,
    out: &mut Outcome,
) -> Result<()> {
    let mut keys: Vec<[u8; data::KEY_LEN]> = vec![[0; data::KEY_LEN]; batch];
    let mut values: Vec<Vec<u8>> = vec![Vec::new(); batch];
    let started = Instant::now();
    for version in 0..versions {
        let ts = (version as u64 + 1) * TS_STEP;
        let mut next = 0u64;
        while next < task.num {
            let len = (task.num - next).min(batch as u64) as usize;
            for j in 0..len {
                let i = next + j as u64;
                keys[j] = data::key(i);
                data::value(i, version, task.value_size, &mut values[j]);
            }
            let pairs: Vec<(&[u8], &[u8])> =
                (0..len).map(|j| (&keys[j][..], values[j].as_slice())).collect();
            db.write_at(&pairs, ts)?;
            next += len as u64;
        }
    }
    out.secs = started.elapsed().as_secs_f64();
    out.ops = task.num * versions as u64;
    Ok(())
}

fn tt_read(db: &dyn Engine, task: &Task, ops: u64, version: u32, out: &mut Outcome) -> Result<()> {
    let ts = (version as u64 + 1) * TS_STEP;
    let (secs, found) = parallel(1, |_| {
        let mut reader = db.reader()?;
        let mut rng = Rng::new(4242);
        for _ in 0..ops {
            let i = rng.below(task.num);
            let mut ok = false;
            let hit = reader.get_at(&data::key(i), ts, &mut |v| {
                ok = data::value_matches(v, i, version, task.value_size)
            })?;
            if !hit || !ok {
                return Err(format!("key {i} at ts {ts}: found {hit}, right version {ok}").into());
            }
        }
        Ok(ops)
    })?;
    out.secs = secs;
    out.ops = found;
    Ok(())
}

/// The process's peak resident set size (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .ok_or("no VmHWM line in /proc/self/status")?;
    let kib = line.split_whitespace().nth(1).ok_or("malformed VmHWM line")?.parse()?;
    Ok(kib)
}

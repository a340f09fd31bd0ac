//! The parent: which steps run, in which order, each in its own child process; the samples
//! they produce; and the machine's state while they ran.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::Args;
use crate::child::{Order, Outcome, RESULT_PREFIX, Step, Task};
use crate::engine::{self, Profile, Result};

/// Workload groups, in the order each repetition runs them. A group's steps share one fresh
/// directory and run back to back for one engine before the next engine's turn.
pub const GROUPS: &[&str] = &["fillseq", "crash", "random", "sync", "8k", "64k", "timetravel"];

/// Commit size of the 100-byte fills (db_bench's fillbatch uses 1000 too).
const BATCH: usize = 1000;
/// Commit sizes of the large-value fills: about 800 KiB and 640 KiB per commit.
const BATCH_8K: usize = 100;
const BATCH_64K: usize = 10;
const VALUE: usize = 100;
const TT_VERSIONS: u32 = 4;

/// One measured figure.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub rep: usize,
    pub profile: String,
    pub workload: String,
    pub engine: String,
    /// The figure compared: operations per second, seconds or bytes (see `unit`).
    pub value: f64,
    pub unit: String,
    pub higher_is_better: bool,
    pub ops: u64,
    pub secs: f64,
    pub peak_rss_kib: u64,
    /// 1-minute load average when the step started.
    pub load1: f64,
    pub extra: std::collections::BTreeMap<String, f64>,
    pub error: Option<String>,
}

/// The machine, recorded with the results.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub mem_gib: f64,
    pub kernel: String,
    pub strata_commit: String,
    pub started_utc: String,
    pub finished_utc: String,
    pub wall_secs: f64,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Results {
    pub command: String,
    pub machine: Machine,
    pub sizes: serde_json::Value,
    pub samples: Vec<Sample>,
}

/// What a step's figure is.
#[derive(Clone, Copy)]
enum Figure {
    /// `ops / secs`, with this unit.
    Rate(&'static str),
    /// The step's seconds (lower is better).
    Seconds,
}

struct Runner<'a> {
    args: &'a Args,
    exe: PathBuf,
    samples: Vec<Sample>,
    results_path: PathBuf,
    command: String,
    machine: Machine,
    started: Instant,
}

pub fn run(args: &Args) -> Result<()> {
    std::fs::create_dir_all(&args.out)?;
    std::fs::create_dir_all(&args.scratch)?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut runner = Runner {
        args,
        exe: std::env::current_exe()?,
        samples: Vec::new(),
        results_path: args.out.join("results.json"),
        command,
        machine: machine()?,
        started: Instant::now(),
    };
    eprintln!(
        "strata-bench: engines {:?}, {} repetitions, groups {:?}, profiles {:?}, num {}",
        args.engines,
        args.reps,
        args.groups,
        args.profiles.iter().map(|p| p.name()).collect::<Vec<_>>(),
        args.num
    );
    for rep in 0..args.reps {
        for (g, group) in GROUPS.iter().enumerate() {
            if !args.groups.iter().any(|x| x == group) {
                continue;
            }
            for &profile in &args.profiles {
                // The equal-cache profile reruns the group where a cache matters: the random
                // fill, its reads and its overwrite.
                if profile == Profile::EqualCache && *group != "random" {
                    continue;
                }
                // Interleave: rotate the engine order by repetition and group.
                let n = args.engines.len();
                for k in 0..n {
                    let engine = &args.engines[(k + rep + g) % n];
                    if *group == "timetravel" && !engine::has_time_travel(engine) {
                        continue;
                    }
                    runner.group(rep, group, profile, engine)?;
                }
                runner.save()?;
            }
        }
    }
    runner.save()?;
    let results = runner.results();
    crate::report::write(args, &results)?;
    if let Some(dir) = &args.charts {
        crate::charts::write(dir, &results)?;
    }
    let failures = results.samples.iter().filter(|s| s.error.is_some()).count();
    eprintln!(
        "strata-bench: done in {:.0} s, {} samples, {failures} failed; results in {}",
        runner.started.elapsed().as_secs_f64(),
        results.samples.len(),
        args.out.display()
    );
    if failures > 0 {
        // The results are written; the exit status tells a script (the CI smoke run) that a
        // step failed or read something other than what was written.
        return Err(format!("{failures} steps failed (listed in summary.md)").into());
    }
    Ok(())
}

impl Runner<'_> {
    fn results(&self) -> Results {
        let a = self.args;
        let mut machine = self.machine.clone();
        machine.finished_utc = utc_now();
        machine.wall_secs = self.started.elapsed().as_secs_f64();
        Results {
            command: self.command.clone(),
            machine,
            sizes: serde_json::json!({
                "num": a.num, "reads": a.reads, "scans": a.scans, "sync_ops": a.sync_ops,
                "num_8k": a.num_8k, "num_64k": a.num_64k, "tt_num": a.tt_num,
                "tt_reads": a.tt_reads, "tt_versions": TT_VERSIONS, "reps": a.reps,
                "batch": BATCH, "batch_8k": BATCH_8K, "batch_64k": BATCH_64K,
                "key_bytes": crate::data::KEY_LEN, "value_bytes": VALUE,
            }),
            samples: self.samples.clone(),
        }
    }

    /// Writes what has been measured so far, so an interrupted run keeps its samples.
    fn save(&self) -> Result<()> {
        let json = serde_json::to_string_pretty(&self.results())?;
        std::fs::write(&self.results_path, json)?;
        Ok(())
    }

    /// Runs one group for one engine in a fresh directory, then deletes it.
    fn group(&mut self, rep: usize, group: &str, profile: Profile, engine: &str) -> Result<()> {
        let a = self.args;
        let dir = a.scratch.join(format!("{engine}-{group}-{}-{rep}", profile.name()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let base = Task {
            engine: engine.to_string(),
            dir: dir.clone(),
            profile,
            large_values: false,
            versioned: false,
            num: a.num,
            value_size: VALUE,
            step: Step::Open { count: false },
        };
        let fill =
            |order, seed, batch, version, hold| Step::Fill { order, seed, batch, version, hold };
        let rate = Figure::Rate("ops/s");
        let mut steps: Vec<(String, Task, Figure)> = Vec::new();
        let mut with =
            |workload: &str, task: Task, figure| steps.push((workload.to_string(), task, figure));
        match group {
            "fillseq" => with(
                "fillseq",
                Task { step: fill(Order::Sequential, 0, 1, 0, false), ..base },
                rate,
            ),
            "crash" => {
                with(
                    "fillbatch",
                    Task { step: fill(Order::Sequential, 0, BATCH, 0, true), ..base.clone() },
                    rate,
                );
                with(
                    "open_after_crash",
                    Task { step: Step::Open { count: true }, ..base },
                    Figure::Seconds,
                );
            }
            "random" => {
                with(
                    "fillrandom",
                    Task { step: fill(Order::Random, 1, BATCH, 0, false), ..base.clone() },
                    rate,
                );
                with(
                    "open_after_close",
                    Task { step: Step::Open { count: false }, ..base.clone() },
                    Figure::Seconds,
                );
                let read = |threads| Step::ReadRandom { threads, ops: a.reads, version: 0 };
                with("readrandom", Task { step: read(1), ..base.clone() }, rate);
                with("readrandom_4t", Task { step: read(4), ..base.clone() }, rate);
                with(
                    "readseq",
                    Task { step: Step::ReadSeq { threads: 1 }, ..base.clone() },
                    Figure::Rate("keys/s"),
                );
                with(
                    "readseq_4t",
                    Task { step: Step::ReadSeq { threads: 4 }, ..base.clone() },
                    Figure::Rate("keys/s"),
                );
                with(
                    "scan100",
                    Task { step: Step::Scan { ops: a.scans, length: 100 }, ..base.clone() },
                    Figure::Rate("scans/s"),
                );
                with(
                    "overwrite",
                    Task { step: fill(Order::Random, 2, BATCH, 1, false), ..base },
                    rate,
                );
            }
            "sync" => {
                // Two fresh directories: each fillsync starts from an empty database.
                let ops = a.sync_ops;
                let mut one = base.clone();
                one.dir = dir.join("one");
                with(
                    "fillsync_1",
                    Task { step: Step::FillSync { threads: 1, ops }, ..one },
                    Figure::Rate("commits/s"),
                );
                let mut many = base;
                many.dir = dir.join("many");
                with(
                    "fillsync_64",
                    Task { step: Step::FillSync { threads: 64, ops }, ..many },
                    Figure::Rate("commits/s"),
                );
            }
            "8k" | "64k" => {
                let (num, value_size, batch) = if group == "8k" {
                    (a.num_8k, 8 << 10, BATCH_8K)
                } else {
                    (a.num_64k, 64 << 10, BATCH_64K)
                };
                let large = Task { num, value_size, large_values: true, ..base };
                let name = |w: &str| format!("{w}_{group}");
                with(
                    &name("fillrandom"),
                    Task { step: fill(Order::Random, 1, batch, 0, false), ..large.clone() },
                    rate,
                );
                let reads = (a.reads * num / a.num).max(100);
                with(
                    &name("readrandom"),
                    Task {
                        step: Step::ReadRandom { threads: 1, ops: reads, version: 0 },
                        ..large.clone()
                    },
                    rate,
                );
                with(
                    &name("overwrite"),
                    Task { step: fill(Order::Random, 2, batch, 1, false), ..large },
                    rate,
                );
            }
            "timetravel" => {
                let tt = Task { num: a.tt_num, versioned: true, ..base };
                with(
                    "tt_fill",
                    Task {
                        step: Step::TimeTravelFill { versions: TT_VERSIONS, batch: BATCH },
                        ..tt.clone()
                    },
                    Figure::Rate("versions/s"),
                );
                with(
                    "tt_read",
                    Task { step: Step::TimeTravelRead { ops: a.tt_reads, version: 1 }, ..tt },
                    rate,
                );
            }
            other => return Err(format!("unknown group {other}").into()),
        }
        for (workload, task, figure) in steps {
            let hold = matches!(task.step, Step::Fill { hold: true, .. });
            let load1 = load_average();
            let outcome = self.child(&task, hold);
            let mut sample = Sample {
                rep,
                profile: profile.name().into(),
                workload: workload.clone(),
                engine: engine.into(),
                value: f64::NAN,
                unit: String::new(),
                higher_is_better: true,
                ops: 0,
                secs: 0.0,
                peak_rss_kib: 0,
                load1,
                extra: Default::default(),
                error: None,
            };
            let failed = match outcome {
                Ok(o) => {
                    let (value, unit, higher) = match figure {
                        Figure::Rate(u) => (o.ops as f64 / o.secs.max(1e-9), u, true),
                        Figure::Seconds => (o.secs, "s", false),
                    };
                    sample.value = value;
                    sample.unit = unit.into();
                    sample.higher_is_better = higher;
                    sample.ops = o.ops;
                    sample.secs = o.secs;
                    sample.peak_rss_kib = o.peak_rss_kib;
                    sample.extra = o.extra;
                    false
                }
                Err(e) => {
                    sample.error = Some(e.to_string());
                    true
                }
            };
            eprintln!(
                "  rep {rep} {:8} {:10} {:20} {}",
                profile.name(),
                engine,
                workload,
                match &sample.error {
                    None => format!(
                        "{:>14} {:<10} rss {:>5} MiB  load {:.2}",
                        human(sample.value),
                        sample.unit,
                        sample.peak_rss_kib / 1024,
                        load1
                    ),
                    Some(e) => format!("FAILED: {e}"),
                }
            );
            self.samples.push(sample);
            if failed {
                // Later steps need this one's database.
                break;
            }
            if workload == "overwrite" {
                // The disk footprint after a random fill and a full overwrite, closed.
                let bytes = dir_bytes(&dir)?;
                self.samples.push(Sample {
                    workload: "disk_after_overwrite".into(),
                    value: bytes as f64,
                    unit: "bytes".into(),
                    higher_is_better: false,
                    ops: 0,
                    secs: 0.0,
                    peak_rss_kib: 0,
                    extra: Default::default(),
                    ..self.samples.last().cloned().ok_or("no sample")?
                });
            }
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }

    /// Runs one step in a child process and returns what it reported. With `hold`, the child
    /// is killed with SIGKILL as soon as it has reported (a crash with the database open).
    fn child(&self, task: &Task, hold: bool) -> Result<Outcome> {
        let mut child = Command::new(&self.exe)
            .arg("child")
            .arg(serde_json::to_string(task)?)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if let Some(json) = line.strip_prefix(RESULT_PREFIX) {
                    let _ = tx.send(json.to_string());
                }
            }
        });
        let timeout = Duration::from_secs(self.args.timeout_secs);
        let reported = rx.recv_timeout(timeout);
        if hold || reported.is_err() {
            // SAFETY: `kill` has no memory effects; the pid is our child's, not yet reaped
            // (`wait` below reaps it), so it cannot name another process.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        }
        let status = child.wait()?;
        let json = match reported {
            Ok(json) => json,
            Err(_) if status.success() => return Err("the child reported nothing".into()),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(format!("killed after {} s", timeout.as_secs()).into());
            }
            Err(_) => return Err(format!("the child failed: {status}").into()),
        };
        if !hold && !status.success() {
            return Err(format!("the child reported, then failed: {status}").into());
        }
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.flush();
        }
        Ok(serde_json::from_str(&json)?)
    }
}

/// Bytes the directory's files occupy on disk (allocated blocks, as `du` counts).
pub fn dir_bytes(dir: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += dir_bytes(&entry.path())?;
        } else {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn machine() -> Result<Machine> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: f64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|x| x.parse().ok())
        .unwrap_or(0.0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let strata_commit = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "log", "-1", "--format=%h %s"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    Ok(Machine {
        nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        cpu,
        mem_gib: mem_kib / (1024.0 * 1024.0),
        kernel,
        strata_commit,
        started_utc: utc_now(),
        finished_utc: String::new(),
        wall_secs: 0.0,
    })
}

/// The time now, UTC, as `YYYY-MM-DD HH:MM:SS`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A figure with a k/M/G suffix.
pub fn human(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
    }
}

//! `strata-bench`: Strata side by side with the embedded engines users would pick instead.
//!
//! The parent process plans the runs and starts one child process (this binary with
//! `child <task>`) per step of a workload, so each step starts cold, has its own peak RSS,
//! and cannot leave threads or caches behind for the next engine. Engines are interleaved:
//! within every repetition, each workload runs once per engine, in an order that rotates
//! between repetitions. See `bench/README.md` and `docs/performance.md`.

mod charts;
mod child;
mod data;
mod engine;
mod engines;
mod plan;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use engine::{Profile, Result};

/// Everything the command line sets; sizes left unset derive from `--num`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Args {
    pub engines: Vec<String>,
    pub num: u64,
    pub reads: u64,
    pub scans: u64,
    pub sync_ops: u64,
    pub num_8k: u64,
    pub num_64k: u64,
    pub tt_num: u64,
    pub tt_reads: u64,
    pub reps: usize,
    pub profiles: Vec<Profile>,
    pub groups: Vec<String>,
    pub out: PathBuf,
    pub charts: Option<PathBuf>,
    pub scratch: PathBuf,
    pub timeout_secs: u64,
}

const USAGE: &str = "\
strata-bench [options]
  --engines a,b,..     engines to run (default: every engine compiled in)
  --num N              keys of the 100-byte workloads (default 1000000)
  --reads N            point reads per readrandom run (default: --num)
  --scans N            100-key range scans per run (default: --num / 10)
  --sync-ops N         synced one-key commits per fillsync run (default: --num / 500,
                       between 64 and 2048, a multiple of 64)
  --num-8k N           keys of the 8 KiB-value workloads (default: --num / 40)
  --num-64k N          keys of the 64 KiB-value workloads (default: --num / 320)
  --tt-num N           keys of the time-travel workload, 4 versions each (default: --num / 10)
  --tt-reads N         time-travel reads (default: --tt-num)
  --reps N             repetitions; medians are reported (default 3)
  --profiles a,b       default and/or cache64 (default: both)
  --groups a,b,..      workload groups: fillseq,crash,random,sync,8k,64k,timetravel (default: all)
  --out DIR            results: results.json, results.csv, summary.md (default: bench/results)
  --charts DIR         write SVG charts there (default: none)
  --scratch DIR        where databases are created and deleted (default: $TMPDIR/strata-bench)
  --timeout SECS       a step running longer is killed and reported as failed (default 900)

strata-bench --report DIR [--charts DIR]
  rewrites DIR/summary.md and DIR/results.csv (and the charts) from DIR/results.json,
  without running anything
";

fn parse_args() -> Result<Args> {
    let mut raw: Vec<String> = std::env::args().skip(1).collect();
    let mut take = |name: &str| -> Result<Option<String>> {
        match raw.iter().position(|a| a == name) {
            None => Ok(None),
            Some(i) if i + 1 < raw.len() => {
                let v = raw.remove(i + 1);
                raw.remove(i);
                Ok(Some(v))
            }
            Some(_) => Err(format!("{name} needs a value").into()),
        }
    };
    fn num(v: Option<String>, name: &str) -> Result<Option<u64>> {
        v.map(|s| s.replace('_', "").parse::<u64>().map_err(|e| format!("{name}: {e}").into()))
            .transpose()
    }
    let list = |v: Option<String>| -> Option<Vec<String>> {
        v.map(|s| s.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect())
    };
    let compiled = engine::compiled_engines();
    let engines = list(take("--engines")?)
        .unwrap_or_else(|| compiled.iter().map(|s| s.to_string()).collect());
    for e in &engines {
        if !compiled.contains(&e.as_str()) {
            return Err(format!("engine {e:?} is not compiled in (have {compiled:?})").into());
        }
    }
    let n = num(take("--num")?, "--num")?.unwrap_or(1_000_000).max(200);
    let reads = num(take("--reads")?, "--reads")?.unwrap_or(n);
    let scans = num(take("--scans")?, "--scans")?.unwrap_or((n / 10).max(10));
    let sync_ops = num(take("--sync-ops")?, "--sync-ops")?.unwrap_or((n / 500).clamp(64, 2048));
    let sync_ops = (sync_ops / 64).max(1) * 64;
    let num_8k = num(take("--num-8k")?, "--num-8k")?.unwrap_or((n / 40).max(100));
    let num_64k = num(take("--num-64k")?, "--num-64k")?.unwrap_or((n / 320).max(20));
    let tt_num = num(take("--tt-num")?, "--tt-num")?.unwrap_or((n / 10).max(100));
    let tt_reads = num(take("--tt-reads")?, "--tt-reads")?.unwrap_or(tt_num);
    let reps = num(take("--reps")?, "--reps")?.unwrap_or(3).max(1) as usize;
    let profiles = match list(take("--profiles")?) {
        None => vec![Profile::Default, Profile::EqualCache],
        Some(v) => v
            .iter()
            .map(|p| Profile::parse(p).ok_or_else(|| format!("unknown profile {p:?}")))
            .collect::<std::result::Result<_, _>>()?,
    };
    let groups = list(take("--groups")?)
        .unwrap_or_else(|| plan::GROUPS.iter().map(|s| s.to_string()).collect());
    for g in &groups {
        if !plan::GROUPS.contains(&g.as_str()) {
            return Err(format!("unknown group {g:?} (have {:?})", plan::GROUPS).into());
        }
    }
    let out = take("--out")?
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"));
    let charts = take("--charts")?.map(PathBuf::from);
    let scratch = take("--scratch")?
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("strata-bench"));
    let timeout_secs = num(take("--timeout")?, "--timeout")?.unwrap_or(900);
    if let Some(extra) = raw.first() {
        return Err(format!("unknown argument {extra:?}\n\n{USAGE}").into());
    }
    Ok(Args {
        engines,
        num: n,
        reads,
        scans,
        sync_ops,
        num_8k,
        num_64k,
        tt_num,
        tt_reads,
        reps,
        profiles,
        groups,
        out,
        charts,
        scratch,
        timeout_secs,
    })
}

/// `--report DIR [--charts DIR]`: the arguments after the program name, in any order.
fn report_only(argv: &[String]) -> Result<()> {
    let (mut dir, mut charts) = (None, None);
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        let slot = match a.as_str() {
            "--report" => &mut dir,
            "--charts" => &mut charts,
            other => return Err(format!("--report takes only --charts, not {other:?}").into()),
        };
        let value = args.next().filter(|v| !v.starts_with("--"));
        let value = value.ok_or_else(|| format!("{a} needs a directory"))?;
        if slot.replace(PathBuf::from(value)).is_some() {
            return Err(format!("{a} given twice").into());
        }
    }
    let dir = dir.ok_or("--report needs a directory")?;
    report::rewrite(&dir, charts.as_deref())
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = if argv.get(1).map(String::as_str) == Some("child") {
        match argv.get(2) {
            Some(task) => child::main(task),
            None => Err("child needs a task".into()),
        }
    } else if argv.iter().any(|a| a == "--report") {
        report_only(&argv)
    } else if argv.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        Ok(())
    } else {
        parse_args().and_then(|args| plan::run(&args))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strata-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

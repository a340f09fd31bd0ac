//! Medians, the Strata / best-peer ratios, and the files a run leaves: `results.json` (every
//! sample, written by the runner), `results.csv` and `summary.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::Args;
use crate::engine::Result;
use crate::plan::{Results, Sample, human};

/// Workloads in the order tables and charts list them.
pub const ORDER: &[&str] = &[
    "fillseq",
    "fillbatch",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readrandom_4t",
    "readseq",
    "readseq_4t",
    "scan100",
    "fillsync_1",
    "fillsync_64",
    "fillrandom_8k",
    "readrandom_8k",
    "overwrite_8k",
    "fillrandom_64k",
    "readrandom_64k",
    "overwrite_64k",
    "tt_fill",
    "tt_read",
    "open_after_close",
    "open_after_crash",
    "disk_after_overwrite",
];

/// The medians of one workload in one profile.
#[derive(Debug, Clone)]
pub struct Row {
    pub profile: String,
    pub workload: String,
    pub unit: String,
    pub higher_is_better: bool,
    /// Engine -> (median, number of samples).
    pub medians: BTreeMap<String, (f64, usize)>,
}

impl Row {
    /// The best engine other than Strata, and its median.
    pub fn best_peer(&self) -> Option<(&str, f64)> {
        self.medians
            .iter()
            .filter(|(e, _)| e.as_str() != "strata")
            .map(|(e, (v, _))| (e.as_str(), *v))
            .reduce(|a, b| if self.better(b.1, a.1) { b } else { a })
    }

    fn better(&self, a: f64, b: f64) -> bool {
        if self.higher_is_better { a > b } else { a < b }
    }

    /// Strata against the best peer, oriented so that above 1 means Strata is ahead:
    /// Strata / peer for rates, peer / Strata for seconds and bytes.
    pub fn ratio(&self) -> Option<f64> {
        let (strata, _) = *self.medians.get("strata")?;
        let (_, peer) = self.best_peer()?;
        Some(if self.higher_is_better { strata / peer } else { peer / strata })
    }

    /// `engine`'s median relative to the best engine's (1 for the best, smaller for others,
    /// whichever direction is better).
    pub fn relative(&self, engine: &str) -> Option<f64> {
        let (v, _) = *self.medians.get(engine)?;
        let best = self
            .medians
            .values()
            .map(|(x, _)| *x)
            .reduce(|a, b| if self.better(b, a) { b } else { a })?;
        Some(if self.higher_is_better { v / best } else { best / v })
    }
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn order_of(workload: &str) -> usize {
    ORDER.iter().position(|w| *w == workload).unwrap_or(ORDER.len())
}

/// Medians of every (profile, workload), in table order; `figure` picks what is compared.
pub fn rows(samples: &[Sample], figure: impl Fn(&Sample) -> Option<f64>) -> Vec<Row> {
    /// (profile, position in `ORDER`, workload) -> the row and each engine's samples.
    type Groups = BTreeMap<(String, usize, String), (Row, BTreeMap<String, Vec<f64>>)>;
    let mut groups: Groups = BTreeMap::new();
    for s in samples.iter().filter(|s| s.error.is_none()) {
        let Some(v) = figure(s) else { continue };
        let key = (s.profile.clone(), order_of(&s.workload), s.workload.clone());
        let entry = groups.entry(key).or_insert_with(|| {
            (
                Row {
                    profile: s.profile.clone(),
                    workload: s.workload.clone(),
                    unit: s.unit.clone(),
                    higher_is_better: s.higher_is_better,
                    medians: BTreeMap::new(),
                },
                BTreeMap::new(),
            )
        });
        entry.1.entry(s.engine.clone()).or_default().push(v);
    }
    groups
        .into_values()
        .map(|(mut row, values)| {
            for (engine, mut v) in values {
                let n = v.len();
                row.medians.insert(engine, (median(&mut v), n));
            }
            row
        })
        .collect()
}

/// The name of the row [`kept_every_key`] adds.
pub const CRASH_KEPT: &str = "open_after_crash, engines that kept every key";

/// `open_after_crash` again, with only the engines that found every key written before the
/// kill (`written`) in each of the run's `reps` repetitions. An engine that kept its commits
/// in process memory (redb's `Durability::None`, sled before a flush) finds none after the
/// kill: its open has nothing to recover, so its time is not the same work as a recovery, and
/// it cannot be the best peer of one. A repetition whose open failed, or that has no open at
/// all (its crash fill failed), counts as keys lost. The plain `open_after_crash` row still
/// lists every engine.
pub fn kept_every_key(samples: &[Sample], written: u64, reps: usize) -> Vec<Row> {
    let crash: Vec<&Sample> = samples.iter().filter(|s| s.workload == "open_after_crash").collect();
    // Per (profile, engine): the repetitions that kept every key, or `None` once one did not.
    let mut whole: BTreeMap<(&str, &str), Option<usize>> = BTreeMap::new();
    for s in &crash {
        let kept_all =
            s.error.is_none() && s.extra.get("keys_found").is_some_and(|&n| n >= written as f64);
        let count = whole.entry((s.profile.as_str(), s.engine.as_str())).or_insert(Some(0));
        *count = count.filter(|_| kept_all).map(|n| n + 1);
    }
    let kept: Vec<Sample> = crash
        .into_iter()
        .filter(|s| whole.get(&(s.profile.as_str(), s.engine.as_str())) == Some(&Some(reps)))
        .cloned()
        .collect();
    let mut rows = rows(&kept, |s| Some(s.value));
    for r in &mut rows {
        r.workload = CRASH_KEPT.into();
    }
    rows
}

/// Peak RSS rows: the same samples, comparing MiB (lower is better).
pub fn rss_rows(samples: &[Sample]) -> Vec<Row> {
    let mut rows = rows(samples, |s| (s.peak_rss_kib > 0).then(|| s.peak_rss_kib as f64 / 1024.0));
    for r in &mut rows {
        r.unit = "MiB".into();
        r.higher_is_better = false;
    }
    rows
}

fn cell(unit: &str, v: f64) -> String {
    match unit {
        "s" if v < 1.0 => format!("{:.1} ms", v * 1e3),
        "s" => format!("{v:.2} s"),
        "bytes" => format!("{:.1} MB", v / 1e6),
        "MiB" => format!("{v:.0}"),
        _ => human(v),
    }
}

/// A markdown table: one row per workload, one column per engine, then the best peer and
/// the ratio.
pub fn table(rows: &[Row], engines: &[String]) -> String {
    let mut t = String::new();
    let _ = write!(t, "| workload | unit |");
    for e in engines {
        let _ = write!(t, " {e} |");
    }
    let _ = writeln!(t, " best peer | Strata vs best peer |");
    let _ = write!(t, "|---|---|");
    for _ in engines {
        let _ = write!(t, "---:|");
    }
    let _ = writeln!(t, "---|---:|");
    for r in rows {
        let unit = match r.unit.as_str() {
            "s" => "time (lower is better)".to_string(),
            "bytes" => "disk (lower is better)".to_string(),
            "MiB" => "peak RSS MiB (lower is better)".to_string(),
            u => u.to_string(),
        };
        let _ = write!(t, "| {} | {unit} |", r.workload);
        for e in engines {
            match r.medians.get(e) {
                Some((v, _)) => {
                    let _ = write!(t, " {} |", cell(&r.unit, *v));
                }
                None => {
                    let _ = write!(t, " - |");
                }
            }
        }
        let best = r.best_peer().map_or("-".to_string(), |(e, _)| e.to_string());
        let ratio = r.ratio().map_or("-".to_string(), |x| {
            if x >= 1.0 { format!("**{x:.2}**") } else { format!("{x:.2}") }
        });
        let _ = writeln!(t, " {best} | {ratio} |");
    }
    t
}

fn csv(results: &Results) -> String {
    let mut c = String::from(
        "rep,profile,workload,engine,value,unit,higher_is_better,ops,secs,peak_rss_kib,load1,error\n",
    );
    for s in &results.samples {
        let _ = writeln!(
            c,
            "{},{},{},{},{},{},{},{},{},{},{},{}",
            s.rep,
            s.profile,
            s.workload,
            s.engine,
            s.value,
            s.unit,
            s.higher_is_better,
            s.ops,
            s.secs,
            s.peak_rss_kib,
            s.load1,
            s.error.as_deref().unwrap_or("").replace([',', '\n'], ";")
        );
    }
    c
}

/// The load during the run: min, median and max of the 1-minute load average sampled at the
/// start of every step.
pub fn load_summary(samples: &[Sample]) -> (f64, f64, f64) {
    let mut loads: Vec<f64> = samples.iter().map(|s| s.load1).filter(|x| x.is_finite()).collect();
    if loads.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let m = median(&mut loads);
    (loads[0], m, loads[loads.len() - 1])
}

/// The summary of `results` for the columns `engines`, `written` keys per 100-byte workload.
pub fn summary(engines: &[String], written: u64, results: &Results) -> String {
    let m = &results.machine;
    let (lmin, lmed, lmax) = load_summary(&results.samples);
    let mut s = String::new();
    let _ = writeln!(s, "# strata-bench summary\n");
    let _ = writeln!(s, "- command: `{}`", results.command);
    let _ = writeln!(s, "- Strata at: {}", m.strata_commit);
    let _ = writeln!(
        s,
        "- machine: {} cores ({}), {:.1} GiB RAM, Linux {}",
        m.nproc, m.cpu, m.mem_gib, m.kernel
    );
    let _ = writeln!(
        s,
        "- run: {} to {} UTC ({:.0} s wall); 1-minute load average at step starts: min {lmin:.2}, median {lmed:.2}, max {lmax:.2}",
        m.started_utc, m.finished_utc, m.wall_secs
    );
    let _ = writeln!(s, "- sizes: {}", results.sizes);
    let _ = writeln!(
        s,
        "\nRatios: above 1 means Strata is ahead of the best peer (Strata / peer for rates, peer / Strata for times, bytes and RSS).\n"
    );
    let all = rows(&results.samples, |s| Some(s.value));
    let reps = results.sizes.get("reps").and_then(serde_json::Value::as_u64).unwrap_or(1);
    let kept = kept_every_key(&results.samples, written, reps as usize);
    for profile in ["default", "cache64"] {
        let mut sel: Vec<Row> = Vec::new();
        for r in all.iter().filter(|r| r.profile == profile) {
            sel.push(r.clone());
            if r.workload == "open_after_crash" {
                sel.extend(kept.iter().filter(|k| k.profile == profile).cloned());
            }
        }
        if sel.is_empty() {
            continue;
        }
        let _ = writeln!(s, "## Medians, profile `{profile}`\n");
        let _ = writeln!(s, "{}", table(&sel, engines));
    }
    let rss: Vec<Row> = rss_rows(&results.samples);
    if !rss.is_empty() {
        let _ = writeln!(s, "## Peak RSS (MiB, median of the step's process VmHWM)\n");
        let mut labelled = rss.clone();
        for r in &mut labelled {
            r.workload = format!("{} ({})", r.workload, r.profile);
        }
        let _ = writeln!(s, "{}", table(&labelled, engines));
    }
    let crash: Vec<&Sample> =
        results.samples.iter().filter(|x| x.workload == "open_after_crash").collect();
    if !crash.is_empty() {
        let _ = writeln!(s, "## Keys found after the crash (of {written} written)\n");
        for x in crash {
            let found = x.extra.get("keys_found").copied().unwrap_or(f64::NAN);
            let _ = writeln!(s, "- rep {} {}: {found}", x.rep, x.engine);
        }
        let _ = writeln!(s);
    }
    let failed: Vec<&Sample> = results.samples.iter().filter(|x| x.error.is_some()).collect();
    if !failed.is_empty() {
        let _ = writeln!(s, "## Failed steps\n");
        for x in failed {
            let _ = writeln!(
                s,
                "- rep {} {} {} {}: {}",
                x.rep,
                x.profile,
                x.engine,
                x.workload,
                x.error.as_deref().unwrap_or("")
            );
        }
    }
    s
}

pub fn write(args: &Args, results: &Results) -> Result<()> {
    write_to(&args.out, &args.engines, args.num, results)
}

fn write_to(out: &Path, engines: &[String], written: u64, results: &Results) -> Result<()> {
    std::fs::write(out.join("results.csv"), csv(results))?;
    let text = summary(engines, written, results);
    std::fs::write(out.join("summary.md"), &text)?;
    println!("{text}");
    Ok(())
}

/// `--report DIR`: rewrites `DIR/results.csv` and `DIR/summary.md` (and the charts, with
/// `charts`) from the samples a run left in `DIR/results.json`, so that a change to the
/// report applies to runs already made without running them again.
pub fn rewrite(dir: &Path, charts: Option<&Path>) -> Result<()> {
    let path = dir.join("results.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let results: Results =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    // Known engines in their usual column order, then any other engine the samples name.
    let mut engines: Vec<String> = crate::engine::ALL_ENGINES
        .iter()
        .filter(|e| results.samples.iter().any(|s| s.engine == **e))
        .map(|e| e.to_string())
        .collect();
    for s in &results.samples {
        if !engines.contains(&s.engine) {
            engines.push(s.engine.clone());
        }
    }
    let written = results
        .sizes
        .get("num")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| format!("{}: no sizes.num", path.display()))?;
    write_to(dir, &engines, written, &results)?;
    if let Some(c) = charts {
        crate::charts::write(c, &results)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(higher: bool, medians: &[(&str, f64)]) -> Row {
        Row {
            profile: "default".into(),
            workload: "w".into(),
            unit: if higher { "ops/s".into() } else { "s".into() },
            higher_is_better: higher,
            medians: medians.iter().map(|(e, v)| (e.to_string(), (*v, 3))).collect(),
        }
    }

    fn crash_sample(engine: &str, secs: f64, found: Option<f64>) -> Sample {
        Sample {
            rep: 0,
            profile: "default".into(),
            workload: "open_after_crash".into(),
            engine: engine.into(),
            value: secs,
            unit: "s".into(),
            higher_is_better: false,
            ops: 1,
            secs,
            peak_rss_kib: 0,
            load1: 0.0,
            extra: found.map(|n| ("keys_found".to_string(), n)).into_iter().collect(),
            error: None,
        }
    }

    #[test]
    fn a_crash_peer_that_lost_keys_is_left_out_of_the_kept_every_key_row() {
        let rep1 = |s: Sample| Sample { rep: 1, ..s };
        let samples = [
            crash_sample("strata", 0.030, Some(1000.0)),
            rep1(crash_sample("strata", 0.032, Some(1000.0))),
            crash_sample("fjall", 0.060, Some(1000.0)),
            rep1(crash_sample("fjall", 0.060, Some(1000.0))),
            crash_sample("redb", 0.001, Some(0.0)),
            rep1(crash_sample("redb", 0.001, Some(0.0))),
            // One repetition short is enough to leave an engine out: a key lost, ...
            crash_sample("rocksdb", 0.100, Some(1000.0)),
            rep1(crash_sample("rocksdb", 0.100, Some(999.0))),
            // ... an open that failed, ...
            crash_sample("surrealkv", 0.050, Some(1000.0)),
            Sample {
                error: Some("corrupt".into()),
                ..rep1(crash_sample("surrealkv", 0.050, Some(1000.0)))
            },
            // ... or a repetition with no open at all (its crash fill failed).
            crash_sample("sled", 0.002, Some(1000.0)),
        ];
        let all = rows(&samples, |s| Some(s.value));
        assert_eq!(all[0].best_peer(), Some(("redb", 0.001)));
        let kept = kept_every_key(&samples, 1000, 2);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].workload, CRASH_KEPT);
        let engines: Vec<&str> = kept[0].medians.keys().map(String::as_str).collect();
        assert_eq!(engines, ["fjall", "strata"]);
        assert_eq!(kept[0].best_peer(), Some(("fjall", 0.060)));
        assert!((kept[0].ratio().unwrap() - 0.060 / 0.031).abs() < 1e-9);
    }

    #[test]
    fn compiled_engines_keep_the_order_of_all_engines() {
        let compiled = crate::engine::compiled_engines();
        let in_order: Vec<&str> =
            crate::engine::ALL_ENGINES.iter().copied().filter(|e| compiled.contains(e)).collect();
        assert_eq!(compiled, in_order);
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn ratio_is_above_one_when_strata_leads_in_either_direction() {
        let rate = row(true, &[("strata", 200.0), ("rocksdb", 100.0), ("sled", 150.0)]);
        assert_eq!(rate.best_peer(), Some(("sled", 150.0)));
        assert!((rate.ratio().unwrap() - 200.0 / 150.0).abs() < 1e-12);
        let time = row(false, &[("strata", 2.0), ("rocksdb", 1.0), ("sled", 4.0)]);
        assert_eq!(time.best_peer(), Some(("rocksdb", 1.0)));
        assert!((time.ratio().unwrap() - 0.5).abs() < 1e-12);
        assert_eq!(time.relative("rocksdb"), Some(1.0));
        assert_eq!(time.relative("sled"), Some(0.25));
    }
}

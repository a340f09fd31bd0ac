//! `verify`: every checksum of every file the database depends on ([`strata::verify_dir`]),
//! with a progress bar over the bytes to read. Each problem is printed with its file and
//! offset; any problem makes the exit code [`exit::DAMAGED`]. An encrypted database is
//! walked the same way through its decrypted view ([`Db::files`]), under the same shared
//! lock [`strata::verify_dir`] takes.

use serde_json::json;
use strata::Error;
use strata::fs::StdFs;
use strata_core::{IoOp, filenames};

use crate::db::Db;
use crate::error::{CliError, CliResult, exit};
use crate::output::Out;
use crate::progress;

pub fn verify(out: &mut Out, db: Db<'_>) -> CliResult {
    let dir = db.dir;
    if !dir.is_dir() {
        return Err(CliError::failed(format_args!(
            "no database at '{}': the directory does not exist",
            dir.display()
        )));
    }
    let files = db.files()?;
    let bar = progress::bytes(0, "verifying");
    let mut progress = |p: strata::VerifyProgress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    };
    let verified = match db.key() {
        None => strata::verify_dir(dir, &mut progress),
        // What verify_dir does, on the decrypted view: a shared lock keeps writers out
        // while the walk runs.
        Some(_) => StdFs::open_existing_dir(dir)
            .and_then(|disk| disk.lock_shared(filenames::LOCK))
            .map_err(|e| Error::io(IoOp::Lock, &dir.display().to_string(), e))
            .and_then(|_lock| strata_core::verify::verify(&files, &mut progress)),
    };
    let report = match verified {
        Ok(report) => report,
        // No CURRENT and no manifest: there is no database here to verify.
        Err(Error::Corruption { file, kind: strata::CorruptionKind::MissingFile, .. })
            if file == strata_core::filenames::CURRENT =>
        {
            return Err(CliError::failed(format_args!(
                "no database at '{}' (no CURRENT file, no manifest)",
                dir.display()
            )));
        }
        Err(e) => return Err(e.into()),
    };
    bar.finish_and_clear();

    let mut damage = Vec::new();
    for e in &report.damage {
        let (file, offset) = match e {
            Error::Corruption { file, offset, .. } => (file.clone(), Some(*offset)),
            Error::Io { file, .. } => (file.clone(), None),
            _ => (String::new(), None),
        };
        match offset {
            Some(o) => out.line(format_args!("DAMAGED {file} at offset {o}: {e}"))?,
            None => out.line(format_args!("DAMAGED {file}: {e}"))?,
        }
        damage.push(json!({ "file": file, "offset": offset, "error": e.to_string() }));
    }
    for t in &report.torn_tails {
        out.line(format_args!(
            "torn tail (left by a crash, dropped at open): {} at offset {}, {} bytes",
            t.file, t.offset, t.bytes
        ))?;
    }
    let files = report.files.len();
    let units: u64 = report.files.iter().map(|f| f.units).sum();
    let verdict = if report.is_clean() { "OK" } else { "DAMAGED" };
    out.line(format_args!(
        "{verdict}: {files} files, {} bytes, {units} blocks and records checked, {} problems",
        report.bytes(),
        report.damage.len()
    ))?;
    let checked: Vec<_> = report
        .files
        .iter()
        .map(|f| json!({ "file": f.name, "kind": format!("{:?}", f.kind), "bytes": f.bytes, "units": f.units }))
        .collect();
    let torn: Vec<_> = report
        .torn_tails
        .iter()
        .map(|t| json!({ "file": t.file, "offset": t.offset, "bytes": t.bytes }))
        .collect();
    out.doc(&json!({
        "clean": report.is_clean(),
        "files": checked,
        "damage": damage,
        "torn_tails": torn,
    }))?;
    Ok(if report.is_clean() { exit::OK } else { exit::DAMAGED })
}

//! `stats`, `compact`, `vlog-gc`, `checkpoint`, `restore`: the engine's own maintenance
//! calls, with a progress display while they run.

use std::path::Path;

use serde_json::{Value, json};
use strata::Stats;
use strata::fs::StdFs;

use crate::db::{self, Db};
use crate::error::{CliError, CliResult, exit};
use crate::output::Out;
use crate::progress;

/// The shape of the tree and the value log, and the session's write counters.
fn stats_json(s: &Stats) -> Value {
    let levels: Vec<Value> = s
        .levels
        .iter()
        .enumerate()
        .map(|(i, l)| json!({ "level": i, "files": l.files, "bytes": l.bytes }))
        .collect();
    json!({
        "levels": levels,
        "table_files": s.levels.iter().map(|l| l.files).sum::<usize>(),
        "table_bytes": s.levels.iter().map(|l| l.bytes).sum::<u64>(),
        "vlog": {
            "files": s.vlog_files,
            "bytes": s.vlog_disk_bytes,
            "garbage_bytes": s.vlog_dead_bytes,
        },
        "session": {
            "user_bytes": s.user_bytes,
            "wal_bytes": s.wal_bytes,
            "flush_bytes": s.flush_bytes,
            "compaction_read_bytes": s.compaction_read_bytes,
            "compaction_write_bytes": s.compaction_write_bytes,
            "vlog_bytes": s.vlog_bytes,
            "write_amplification": s.write_amplification(),
        },
    })
}

fn print_stats(out: &mut Out, s: &Stats) -> CliResult<()> {
    out.line("level  files  bytes")?;
    for (i, l) in s.levels.iter().enumerate() {
        out.line(format_args!("L{i:<5} {:<6} {}", l.files, l.bytes))?;
    }
    let files: usize = s.levels.iter().map(|l| l.files).sum();
    let bytes: u64 = s.levels.iter().map(|l| l.bytes).sum();
    out.line(format_args!("tables: {files} files, {bytes} bytes"))?;
    out.line(format_args!(
        "value log: {} files, {} bytes, {} bytes garbage",
        s.vlog_files, s.vlog_disk_bytes, s.vlog_dead_bytes
    ))?;
    if s.user_bytes == 0 {
        out.line("write amplification: n/a (nothing written since open; the database does not record it across opens)")?;
    } else {
        out.line(format_args!(
            "write amplification: {:.2} ({} user bytes; wal {}, value log {}, flush {}, compaction {})",
            s.write_amplification(),
            s.user_bytes,
            s.wal_bytes,
            s.vlog_bytes,
            s.flush_bytes,
            s.compaction_write_bytes
        ))?;
    }
    Ok(())
}

pub fn stats(out: &mut Out, db: Db<'_>) -> CliResult {
    let tree = db.open_read_only()?;
    let s = tree.stats();
    print_stats(out, &s)?;
    out.doc(&stats_json(&s))?;
    Ok(exit::OK)
}

pub fn compact(out: &mut Out, db: Db<'_>) -> CliResult {
    let tree = db.open_writable(None)?;
    let bar = progress::spinner("compacting");
    tree.flush()?;
    let mut jobs = 0usize;
    loop {
        let ran = tree.maintenance_step(1)?;
        if ran == 0 {
            break;
        }
        jobs += ran;
        bar.set_message(format!("compacting: {jobs} jobs"));
    }
    bar.finish_and_clear();
    let s = tree.stats();
    tree.close()?;
    out.line(format_args!(
        "ran {jobs} jobs ({} flushes, {} compactions)",
        s.flushes, s.compactions
    ))?;
    print_stats(out, &s)?;
    out.doc(&json!({ "jobs": jobs, "flushes": s.flushes, "compactions": s.compactions, "stats": stats_json(&s) }))?;
    Ok(exit::OK)
}

pub fn vlog_gc(out: &mut Out, db: Db<'_>) -> CliResult {
    let tree = db.open_writable(None)?;
    let bar = progress::spinner("collecting value log garbage");
    let r = tree.run_vlog_gc()?;
    bar.finish_and_clear();
    tree.close()?;
    out.line(format_args!(
        "examined {} files, collected {}, deleted {}; relocated {} bytes, reclaimed {} bytes",
        r.files_examined, r.files_collected, r.files_deleted, r.bytes_relocated, r.bytes_reclaimed
    ))?;
    out.doc(&json!({
        "files_examined": r.files_examined,
        "files_collected": r.files_collected,
        "files_deleted": r.files_deleted,
        "bytes_relocated": r.bytes_relocated,
        "bytes_reclaimed": r.bytes_reclaimed,
    }))?;
    Ok(exit::OK)
}

pub fn checkpoint(out: &mut Out, db: Db<'_>, dest: &Path) -> CliResult {
    // Read-only: the memtable flushed into the checkpoint is flushed in memory, so the
    // database itself does not change.
    let tree = db.open_read_only()?;
    let bar = progress::spinner("writing checkpoint");
    let meta = tree.create_checkpoint(dest)?;
    bar.finish_and_clear();
    out.line(format_args!(
        "checkpoint at sequence {}: {} tables, {} bytes, in {}",
        meta.sequence_number,
        meta.sstable_count,
        meta.total_size,
        dest.display()
    ))?;
    out.doc(&json!({
        "dir": dest.display().to_string(),
        "timestamp": meta.timestamp,
        "sequence_number": meta.sequence_number,
        "sstable_count": meta.sstable_count,
        "total_size": meta.total_size,
    }))?;
    Ok(exit::OK)
}

pub fn restore(out: &mut Out, db: Db<'_>, src: &Path) -> CliResult {
    // Validate the checkpoint before opening the database: opening for writing runs
    // recovery, which writes, and a bad checkpoint must leave the database as it was.
    let shape = db.shape()?;
    let checkpoint = StdFs::open_existing_dir(src).map_err(|e| {
        CliError::failed(format_args!(
            "checkpoint directory '{}' does not exist: {e}",
            src.display()
        ))
    })?;
    // The library restores with the database's key, so the checkpoint must be encrypted
    // under the same key (or, for an unencrypted database, not at all).
    let what = format!("the checkpoint at '{}'", src.display());
    let checkpoint = db::encrypted_view(checkpoint, src, &what, db.key())?;
    strata_core::checkpoint::validate(&checkpoint, shape.level_count)?;
    let tree = db.open_writable(None)?;
    let bar = progress::spinner("restoring checkpoint");
    tree.restore_from_checkpoint(src)?;
    bar.finish_and_clear();
    tree.close()?;
    out.line(format_args!("restored {} from {}", db.dir.display(), src.display()))?;
    out.doc(&json!({ "ok": true }))?;
    Ok(exit::OK)
}

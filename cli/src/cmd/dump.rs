//! `dump-wal`, `dump-sst`, `dump-manifest`, `dump-vlog`: each file format decoded for a
//! person debugging a damaged database, with the core's own decoders (so the dump shows what
//! the engine sees). Files are read in place, never opened as a database and never locked.
//!
//! Everything that decodes is printed; damage is printed where it is found (with its offset)
//! and makes the exit code [`exit::DAMAGED`]. A file of an encrypted database is decrypted
//! with the `--key-file` key (checked against its directory's marker first); without a key
//! the dump refuses it with a one-line error instead of decoding ciphertext. In JSON mode the output is one array of objects,
//! each with a `"type"`: `header`, `record`, `block`, `entry`, `edit`, `damage`, ...

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use strata::DynFs;
use strata::fs::StdFs;
use strata::vfs::encrypted::{MAGIC, MARKER_NAME};
use strata_core::batch::{BatchOp, BatchView};
use strata_core::filenames::{self, FileName};
use strata_core::inspect;
use strata_core::key::InternalKey;
use strata_core::manifest::{self, VersionEdit, VlogEdit};
use strata_core::sstable::{BlockIter, BlockRole, FOOTER_LEN, Footer, Table, decode_key};
use strata_core::vlog::ValuePointer;
use strata_core::{Error, IoOp, key::ValueKind};
use strata_vfs::{FileKind, RandomRead, Vfs};

use crate::bytes::show;
use crate::db::{self, Db};
use crate::error::{CliError, CliResult, exit};
use crate::key::Key;
use crate::output::Out;

/// The directory holding `path` (as the engine sees it: decrypted with `key` when the file
/// is encrypted) and the file's name in it; an error unless it is a file.
fn locate(path: &Path, key: Option<&Key>) -> CliResult<(DynFs, String)> {
    if !path.is_file() {
        return Err(CliError::failed(format_args!("no such file: '{}'", path.display())));
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::failed(format_args!("not a file name: '{}'", path.display())))?
        .to_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fs = StdFs::open_existing_dir(&parent)
        .map_err(|e| CliError::failed(format_args!("cannot open '{}': {e}", path.display())))?;
    let what = format!("'{}'", path.display());
    if !is_encrypted(path)? {
        // Plaintext reads the same with or without a key (a key in STRATA_KEY_FILE is no
        // reason to refuse a plain file).
        return Ok((DynFs::new(fs), name));
    }
    if key.is_none() {
        return Err(db::key_needed(what));
    }
    if !parent.join(MARKER_NAME).is_file() {
        return Err(CliError::failed(format_args!(
            "{what} is encrypted, but its directory has no {MARKER_NAME} file to check the key \
             against: dump it in its database directory"
        )));
    }
    Ok((db::encrypted_view(fs, &parent, &what, key)?, name))
}

/// `true` when the file starts with the encrypted-file magic.
fn is_encrypted(path: &Path) -> CliResult<bool> {
    let mut head = Vec::with_capacity(MAGIC.len());
    std::fs::File::open(path)
        .and_then(|f| f.take(MAGIC.len() as u64).read_to_end(&mut head))
        .map_err(|e| CliError::failed(format_args!("cannot read '{}': {e}", path.display())))?;
    Ok(head == MAGIC)
}

/// Prints damage found while decoding; the command then exits with [`exit::DAMAGED`].
fn damage(out: &mut Out, e: &Error) -> CliResult<u8> {
    out.line(format_args!("DAMAGED: {e}"))?;
    out.element(&json!({ "type": "damage", "error": e.to_string() }))?;
    Ok(exit::DAMAGED)
}

// ---- WAL ----

fn op_json(op: &BatchOp<'_>) -> (String, Value) {
    match *op {
        BatchOp::Set { key, value, ts } => (
            format!("set {}{} = {}", show(key), at(ts), show(value)),
            json!({ "op": "set", "key": show(key), "ts": ts, "value": show(value) }),
        ),
        BatchOp::Delete { key, ts } => (
            format!("delete {}{}", show(key), at(ts)),
            json!({ "op": "delete", "key": show(key), "ts": ts }),
        ),
        BatchOp::SetPointer { key, pointer, ts } => {
            let (text, ptr) = pointer_text(pointer);
            (
                format!("set {}{} -> {text}", show(key), at(ts)),
                json!({ "op": "set_pointer", "key": show(key), "ts": ts, "pointer": ptr }),
            )
        }
    }
}

fn at(ts: Option<u64>) -> String {
    ts.map(|t| format!(" @{t}")).unwrap_or_default()
}

fn pointer_text(bytes: &[u8]) -> (String, Value) {
    match ValuePointer::decode(bytes) {
        Ok(p) => (
            format!("value log file {} offset {} length {}", p.file, p.offset, p.len),
            json!({ "file": p.file, "offset": p.offset, "len": p.len }),
        ),
        Err(kind) => (format!("undecodable pointer ({kind:?})"), Value::Null),
    }
}

/// Decodes one WAL record (a batch) into text lines and a JSON object.
fn batch(payload: &[u8], name: &str, offset: u64) -> Result<(Vec<String>, Value), Error> {
    let bad = |_| Error::corruption(name, offset, strata_core::CorruptionKind::BadBatch);
    let view = BatchView::parse(payload).map_err(bad)?;
    let mut lines = vec![format!(
        "record at {offset}: seq {}, commit_ts {}, {} ops",
        view.seq, view.commit_ts, view.count
    )];
    let mut ops = Vec::new();
    for op in view.ops() {
        let (text, value) = op_json(&op.map_err(bad)?);
        lines.push(format!("  {text}"));
        ops.push(value);
    }
    let value = json!({
        "type": "record", "offset": offset, "seq": view.seq, "commit_ts": view.commit_ts, "ops": ops,
    });
    Ok((lines, value))
}

pub fn wal(out: &mut Out, path: &Path, key: Option<&Key>) -> CliResult {
    let (fs, name) = locate(path, key)?;
    out.begin_array()?;
    let header = match inspect::read_log_header(&fs, &name) {
        Ok(h) => h,
        Err(e) => {
            let code = damage(out, &e);
            return finish(out, code);
        }
    };
    out.line(format_args!(
        "WAL segment {} (follows segment {}, whose first {} bytes are valid)",
        header.segment, header.prev_segment, header.prev_valid_len
    ))?;
    out.element(&json!({
        "type": "header", "segment": header.segment,
        "prev_segment": header.prev_segment, "prev_valid_len": header.prev_valid_len,
    }))?;
    let mut write_error = None;
    let mut bad = Vec::new();
    let replay = inspect::replay_log_file(&fs, &name, |payload, pos| {
        let printed = match batch(payload, &name, pos.offset) {
            Ok((lines, value)) => {
                lines.iter().try_for_each(|l| out.line(l)).and_then(|()| out.element(&value))
            }
            Err(e) => {
                bad.push(e);
                Ok(())
            }
        };
        printed.map_err(|e| {
            write_error = Some(e);
            Error::Closed
        })
    });
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let mut code = exit::OK;
    for e in &bad {
        code = damage(out, e)?;
    }
    match replay {
        Ok(r) => {
            out.line(format_args!(
                "{} records; {} bytes after the last good record (a torn tail is normal after a crash)",
                r.records, r.ignored_tail_bytes
            ))?;
            out.element(&json!({ "type": "summary", "records": r.records, "ignored_tail_bytes": r.ignored_tail_bytes }))?;
        }
        Err(e) => code = damage(out, &e)?,
    }
    finish(out, Ok(code))
}

/// Closes the JSON array whatever happened.
fn finish(out: &mut Out, code: CliResult) -> CliResult {
    out.end_array()?;
    code
}

// ---- tables ----

fn key_text(k: &InternalKey) -> String {
    format!("{} @{} seq {} {:?}", show(&k.user_key), k.ts, k.seq, k.kind)
}

fn entry(key: &[u8], value: &[u8]) -> (String, Value) {
    match decode_key(key) {
        Ok(k) => {
            let (shown, v) = match k.kind {
                ValueKind::Delete => (String::new(), Value::Null),
                ValueKind::Pointer => {
                    let (text, ptr) = pointer_text(value);
                    (format!(" -> {text}"), ptr)
                }
                _ => (format!(" = {}", show(value)), Value::String(show(value))),
            };
            let value = json!({
                "type": "entry", "key": show(&k.user_key), "ts": k.ts, "seq": k.seq,
                "kind": format!("{:?}", k.kind), "value": v,
            });
            (format!("    {}{shown}", key_text(&k)), value)
        }
        Err(kind) => (
            format!("    undecodable key ({kind:?})"),
            json!({ "type": "entry", "error": format!("{kind:?}") }),
        ),
    }
}

pub fn sst(out: &mut Out, path: &Path, key: Option<&Key>, blocks_only: bool) -> CliResult {
    let (fs, name) = locate(path, key)?;
    let file_no = match filenames::parse(&name) {
        Some(FileName::Table(n)) => n,
        _ => 0,
    };
    let file = fs.open(&name, FileKind::Table).map_err(|e| Error::io(IoOp::Open, &name, e))?;
    let size = file.len().map_err(|e| Error::io(IoOp::Size, &name, e))?;
    out.begin_array()?;
    let mut footer_bytes = [0u8; FOOTER_LEN];
    let footer = match size.checked_sub(FOOTER_LEN as u64) {
        Some(at) => file
            .read_exact_at(at, &mut footer_bytes)
            .map_err(|e| Error::io(IoOp::Read, &name, e))
            .and_then(|()| {
                Footer::decode(&footer_bytes).map_err(|k| Error::corruption(&name, at, k))
            }),
        None => Err(Error::corruption(&name, 0, strata_core::CorruptionKind::Truncated)),
    };
    match footer {
        Ok(f) => {
            out.line(format_args!(
                "table {name}: {size} bytes; index at {} ({} bytes, {:?}), filter at {} ({} bytes), properties at {} ({} bytes)",
                f.index.offset, f.index.size, f.index_kind, f.filter.offset, f.filter.size, f.props.offset, f.props.size
            ))?;
            out.element(&json!({
                "type": "footer", "size": size,
                "index": { "offset": f.index.offset, "size": f.index.size, "kind": format!("{:?}", f.index_kind) },
                "filter": { "offset": f.filter.offset, "size": f.filter.size },
                "props": { "offset": f.props.offset, "size": f.props.size },
            }))?;
        }
        Err(e) => {
            let code = damage(out, &e);
            return finish(out, code);
        }
    }
    let table = match Table::open(file, name.clone(), file_no, None) {
        Ok(t) => t,
        Err(e) => {
            let code = damage(out, &e);
            return finish(out, code);
        }
    };
    let p = table.props();
    out.line(format_args!(
        "{} entries ({} deletions) in {} data blocks; keys {} .. {}; seq {}..{}; ts {}..{}; compression {}",
        p.entries, p.deletions, p.data_blocks, key_text(&p.smallest), key_text(&p.largest),
        p.min_seq, p.max_seq, p.min_ts, p.max_ts, p.compression
    ))?;
    out.element(&json!({
        "type": "properties", "entries": p.entries, "deletions": p.deletions,
        "data_blocks": p.data_blocks, "smallest": key_text(&p.smallest), "largest": key_text(&p.largest),
        "min_seq": p.min_seq, "max_seq": p.max_seq, "min_ts": p.min_ts, "max_ts": p.max_ts,
        "raw_key_bytes": p.raw_key_bytes, "raw_value_bytes": p.raw_value_bytes,
        "index_partitions": p.index_partitions, "compression": p.compression,
        "format_version": p.format_version,
    }))?;
    let mut code = exit::OK;
    let mut write_error = None;
    table.walk_blocks(|visit| {
        let role = match visit.role {
            BlockRole::Data => "data block",
            BlockRole::IndexPartition => "index partition",
        };
        let h = visit.handle;
        let printed = match &visit.block {
            Ok(block) => out
                .line(format_args!("  {role} at {} ({} bytes): {} entries", h.offset, h.size, visit.entries))
                .and_then(|()| out.element(&json!({
                    "type": "block", "role": role, "offset": h.offset, "size": h.size, "entries": visit.entries,
                })))
                .and_then(|()| {
                    if blocks_only || visit.role != BlockRole::Data {
                        return Ok(());
                    }
                    let mut it = BlockIter::new(std::sync::Arc::clone(block));
                    // The walk decoded every entry already.
                    while it.advance().unwrap_or(false) {
                        let (text, value) = entry(it.key(), it.value_slice());
                        out.line(text)?;
                        out.element(&value)?;
                    }
                    Ok(())
                }),
            Err(e) => {
                code = exit::DAMAGED;
                out.line(format_args!("  DAMAGED {role} at {} ({} bytes): {e}", h.offset, h.size))
                    .and_then(|()| out.element(&json!({
                        "type": "damage", "role": role, "offset": h.offset, "error": e.to_string(),
                    })))
            }
        };
        printed.map_err(|e| {
            write_error = Some(e);
            Error::Closed
        })
    })
    .or_else(|e| if write_error.is_some() { Ok(()) } else { Err(e) })?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    finish(out, Ok(code))
}

// ---- manifest ----

fn edit_lines(e: &VersionEdit) -> Vec<String> {
    let mut lines = Vec::new();
    let scalars = [
        ("log_number", e.log_number),
        ("next_file_number", e.next_file_number),
        ("last_seq", e.last_seq),
        ("last_ts", e.last_ts),
        ("level_count", e.level_count.map(u64::from)),
    ];
    for (what, v) in scalars {
        if let Some(v) = v {
            lines.push(format!("  {what} {v}"));
        }
    }
    if let Some(v) = e.versioning {
        lines.push(format!("  versioning {v}"));
    }
    if let Some((seg, len)) = e.wal_closed {
        lines.push(format!("  closed cleanly: WAL segment {seg} synced at {len} bytes"));
    }
    for (level, key) in &e.compaction_pointers {
        lines.push(format!("  compaction pointer L{level}: {}", key_text(key)));
    }
    for (level, file) in &e.deleted {
        lines.push(format!("  delete L{level} table {file}"));
    }
    for (level, f) in &e.added {
        lines.push(format!(
            "  add L{level} table {} ({} bytes, {} entries, seq {}..{}, ts {}..{}): {} .. {}",
            f.file_no,
            f.size,
            f.entries,
            f.min_seq,
            f.max_seq,
            f.min_ts,
            f.max_ts,
            key_text(&f.smallest),
            key_text(&f.largest)
        ));
    }
    for v in &e.vlog {
        lines.push(match *v {
            VlogEdit::Add { id, file_no } => format!("  value log add {id} as file {file_no}"),
            VlogEdit::Seal { id, len } => format!("  value log seal {id} at {len} bytes"),
            VlogEdit::Discard { id, bytes } => format!("  value log {id}: {bytes} more bytes dead"),
            VlogEdit::Delete { id } => format!("  value log delete {id}"),
        });
    }
    lines
}

pub fn manifest(
    out: &mut Out,
    db: Option<&PathBuf>,
    key: Option<&Key>,
    file: Option<&Path>,
) -> CliResult {
    let (fs, name) = match file {
        Some(path) => locate(path, key)?,
        None => {
            let db = Db::new(db, key)?;
            let dir = db.dir;
            let fs = db.files()?;
            match manifest::read_current(&fs)? {
                Some(Ok(n)) => (fs, filenames::manifest(n)),
                None => {
                    return Err(CliError::failed(format_args!(
                        "no database at '{}' (no CURRENT file)",
                        dir.display()
                    )));
                }
                Some(Err(kind)) => {
                    out.begin_array()?;
                    let e = Error::corruption(filenames::CURRENT, 0, kind);
                    {
                        let code = damage(out, &e);
                        return finish(out, code);
                    }
                }
            }
        }
    };
    out.begin_array()?;
    out.line(format_args!("manifest {name}"))?;
    let mut write_error = None;
    let mut bad = Vec::new();
    let replay = inspect::replay_log_file(&fs, &name, |payload, pos| {
        let printed = match VersionEdit::decode(payload) {
            Ok(edit) => {
                let kind = if edit.is_snapshot() { "snapshot" } else { "edit" };
                out.line(format_args!("{kind} at {}:", pos.offset)).and_then(|()| {
                    let lines = edit_lines(&edit);
                    lines.iter().try_for_each(|l| out.line(l))?;
                    let lines: Vec<String> = lines.iter().map(|l| l.trim().to_owned()).collect();
                    out.element(&json!({ "type": kind, "offset": pos.offset, "changes": lines }))
                })
            }
            Err(kind) => {
                bad.push(Error::corruption(&name, pos.offset, kind));
                Ok(())
            }
        };
        printed.map_err(|e| {
            write_error = Some(e);
            Error::Closed
        })
    });
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let mut code = exit::OK;
    for e in &bad {
        code = damage(out, e)?;
    }
    match replay {
        Ok(r) => out.line(format_args!("{} records", r.records))?,
        Err(e) => code = damage(out, &e)?,
    }
    finish(out, Ok(code))
}

// ---- value log ----

pub fn vlog(out: &mut Out, path: &Path, key: Option<&Key>) -> CliResult {
    let (fs, name) = locate(path, key)?;
    let file = fs.open(&name, FileKind::ValueLog).map_err(|e| Error::io(IoOp::Open, &name, e))?;
    let size = file.len().map_err(|e| Error::io(IoOp::Size, &name, e))?;
    out.begin_array()?;
    out.line(format_args!("value log {name}: {size} bytes"))?;
    let mut write_error = None;
    let scanned = strata_core::vlog::scan_file(&file, &name, size, |offset, len, record| {
        let value = match record.value() {
            Ok(v) => show(&v),
            Err(kind) => format!("(undecodable value: {kind:?})"),
        };
        let key = show(record.key);
        let printed = out
            .line(format_args!("record at {offset} ({len} bytes): {key} = {value}"))
            .and_then(|()| {
                out.element(&json!({
                    "type": "record", "offset": offset, "len": len, "key": key,
                    "value": value, "compressed": record.compressed,
                }))
            });
        printed.map_err(|e| {
            write_error = Some(e);
            Error::Closed
        })
    });
    if let Some(e) = write_error {
        return Err(e.into());
    }
    let code = match scanned {
        Ok(end) => match end.damage {
            None => exit::OK,
            Some(kind) => {
                let e = Error::corruption(&name, end.valid_end, kind);
                damage(out, &e)?
            }
        },
        Err(e) => damage(out, &e)?,
    };
    finish(out, Ok(code))
}

//! `get`, `put`, `delete`, `scan`, `history`: the data, as transactions see it.
//!
//! Inputs are decoded before the database is opened, so a malformed key never opens (let
//! alone changes) anything. Reads run in one read-only transaction of a read-only open;
//! writes commit with `Durability::Immediate` and close the database before returning, so a
//! zero exit code means the write is on disk.

use serde_json::json;
use strata::{Durability, Mode, ReadOptions, Tree};

use crate::args::{CreateArgs, ScanArgs};
use crate::bytes::{parse, show};
use crate::db::Db;
use crate::error::{CliError, CliResult, exit};
use crate::output::Out;

pub fn get(out: &mut Out, db: Db<'_>, key: &str, at: Option<u64>) -> CliResult {
    let key = parse(key, "key")?;
    let tree = db.open_read_only()?;
    let txn = tree.begin_with_mode(Mode::ReadOnly)?;
    let value = match at {
        Some(ts) => txn.get_at_version(&key, ts)?,
        None => txn.get(&key)?,
    };
    match value {
        Some(v) => {
            out.line(show(&v))?;
            out.doc(&json!({ "key": show(&key), "value": show(&v) }))?;
            Ok(exit::OK)
        }
        None => {
            out.doc(&json!({ "key": show(&key), "value": null }))?;
            Err(CliError {
                message: format!("key '{}' has no value", show(&key)),
                code: exit::NOT_FOUND,
            })
        }
    }
}

pub fn put(
    out: &mut Out,
    db: Db<'_>,
    key: &str,
    value: &str,
    at: Option<u64>,
    create: &CreateArgs,
) -> CliResult {
    let key = parse(key, "key")?;
    let value = parse(value, "value")?;
    check_sizes(&key, Some(&value))?;
    if at.is_some() && !create.versioning && db.shape().is_ok_and(|s| !s.versioning) {
        // Refused before opening: an open for writing runs recovery, which writes files.
        return Err(strata::Error::VersioningDisabled.into());
    }
    let tree = db.open_writable(Some(create))?;
    write(&tree, |txn| match at {
        Some(ts) => txn.set_at_version(&key, &value, ts),
        None => txn.set(&key, &value),
    })?;
    out.doc(&json!({ "ok": true }))?;
    Ok(exit::OK)
}

pub fn delete(out: &mut Out, db: Db<'_>, key: &str) -> CliResult {
    let key = parse(key, "key")?;
    check_sizes(&key, None)?;
    let tree = db.open_writable(None)?;
    write(&tree, |txn| txn.delete(&key))?;
    out.doc(&json!({ "ok": true }))?;
    Ok(exit::OK)
}

/// Refuses a key or value the engine would refuse, before anything is opened.
fn check_sizes(key: &[u8], value: Option<&[u8]>) -> CliResult<()> {
    if key.len() > strata::MAX_KEY_SIZE {
        let e = strata::Error::KeyTooLarge { len: key.len(), max: strata::MAX_KEY_SIZE };
        return Err(e.into());
    }
    match value {
        Some(v) if v.len() > strata::MAX_VALUE_SIZE => {
            Err(strata::Error::ValueTooLarge { len: v.len(), max: strata::MAX_VALUE_SIZE }.into())
        }
        _ => Ok(()),
    }
}

/// Runs `op` in a transaction, commits it durably and closes the database.
fn write(
    tree: &Tree,
    op: impl FnOnce(&mut strata::Transaction) -> strata::Result<()>,
) -> CliResult<()> {
    let mut txn = tree.begin()?;
    op(&mut txn)?;
    txn.set_durability(Durability::Immediate);
    txn.commit_blocking()?;
    tree.close()?;
    Ok(())
}

pub fn scan(out: &mut Out, db: Db<'_>, args: &ScanArgs) -> CliResult {
    let from = args.from.as_deref().map(|k| parse(k, "--from key")).transpose()?;
    let to = args.to.as_deref().map(|k| parse(k, "--to key")).transpose()?;
    let tree = db.open_read_only()?;
    let txn = tree.begin_with_mode(Mode::ReadOnly)?;
    let opts = ReadOptions::new()
        .with_iterate_lower_bound(from)
        .with_iterate_upper_bound(to)
        .with_limit(args.limit)
        .with_timestamp(args.at);
    out.begin_array()?;
    if args.keys_only {
        let keys = txn.keys_with_options(&opts.with_keys_only(true))?;
        let keys: Box<dyn Iterator<Item = strata::Result<strata::Key>>> =
            if args.reverse { Box::new(keys.rev()) } else { Box::new(keys) };
        for key in keys {
            let key = show(&key?);
            out.line(&key)?;
            out.element(&json!({ "key": key }))?;
        }
    } else {
        let pairs = txn.range_with_options(&opts)?;
        let pairs: Box<dyn Iterator<Item = _>> =
            if args.reverse { Box::new(pairs.rev()) } else { Box::new(pairs) };
        for pair in pairs {
            let (key, value) = pair?;
            let (key, value) = (show(&key), show(&value));
            out.line(format_args!("{key}\t{value}"))?;
            out.element(&json!({ "key": key, "value": value }))?;
        }
    }
    out.end_array()?;
    Ok(exit::OK)
}

pub fn history(out: &mut Out, db: Db<'_>, key: &str, limit: Option<usize>) -> CliResult {
    let key = parse(key, "key")?;
    let tree = db.open_read_only()?;
    let txn = tree.begin_with_mode(Mode::ReadOnly)?;
    // The smallest key after `key`: the range holds `key` alone.
    let mut end = key.clone();
    end.push(0);
    let versions = txn.scan_all_versions(&key, &end, limit)?;
    out.begin_array()?;
    for (_, value, ts, deleted) in versions {
        if deleted {
            out.line(format_args!("{ts}\tdelete"))?;
            out.element(&json!({ "ts": ts, "deleted": true, "value": null }))?;
        } else {
            let value = show(&value);
            out.line(format_args!("{ts}\tset\t{value}"))?;
            out.element(&json!({ "ts": ts, "deleted": false, "value": value }))?;
        }
    }
    out.end_array()?;
    Ok(exit::OK)
}

//! The commands, one file per kind: reading and writing data ([`data`]), running the engine's
//! maintenance ([`admin`]), checking files ([`verify`]) and decoding them ([`dump`]).

mod admin;
mod data;
mod dump;
mod verify;

use crate::args::{Cli, Command};
use crate::db::Db;
use crate::error::CliResult;
use crate::key::Key;
use crate::output::Out;

/// Runs the parsed command line; returns the exit code.
pub fn run(cli: &Cli) -> CliResult<u8> {
    let mut out = Out::new(cli.json);
    // A key file is read (and checked) before anything else is opened.
    let key = cli.key_file.as_deref().map(Key::from_file).transpose()?;
    let key = key.as_ref();
    let db = || Db::new(cli.db.as_ref(), key);
    let code = match &cli.command {
        Command::Get { key, at } => data::get(&mut out, db()?, key, *at),
        Command::Put { key, value, at, create } => {
            data::put(&mut out, db()?, key, value, *at, create)
        }
        Command::Delete { key } => data::delete(&mut out, db()?, key),
        Command::Scan(args) => data::scan(&mut out, db()?, args),
        Command::History { key, limit } => data::history(&mut out, db()?, key, *limit),
        Command::Stats => admin::stats(&mut out, db()?),
        Command::Verify => verify::verify(&mut out, db()?),
        Command::Compact => admin::compact(&mut out, db()?),
        Command::VlogGc => admin::vlog_gc(&mut out, db()?),
        Command::Checkpoint { dir } => admin::checkpoint(&mut out, db()?, dir),
        Command::Restore { dir } => admin::restore(&mut out, db()?, dir),
        Command::DumpWal { file } => dump::wal(&mut out, file, key),
        Command::DumpSst { file, blocks_only } => dump::sst(&mut out, file, key, *blocks_only),
        Command::DumpManifest { file } => {
            dump::manifest(&mut out, cli.db.as_ref(), key, file.as_deref())
        }
        Command::DumpVlog { file } => dump::vlog(&mut out, file, key),
    };
    // Whatever was printed before a failure is still delivered.
    let flushed = out.flush();
    let code = code?;
    flushed?;
    Ok(code)
}

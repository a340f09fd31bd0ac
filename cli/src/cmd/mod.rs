//! The commands, one file per kind: reading and writing data ([`data`]), running the engine's
//! maintenance ([`admin`]), checking files ([`verify`]) and decoding them ([`dump`]).

mod admin;
mod data;
mod dump;
mod verify;

use crate::args::{Cli, Command};
use crate::db;
use crate::error::CliResult;
use crate::output::Out;

/// Runs the parsed command line; returns the exit code.
pub fn run(cli: &Cli) -> CliResult<u8> {
    let mut out = Out::new(cli.json);
    let db = cli.db.as_ref();
    let code = match &cli.command {
        Command::Get { key, at } => data::get(&mut out, db::dir(db)?, key, *at),
        Command::Put { key, value, at, create } => {
            data::put(&mut out, db::dir(db)?, key, value, *at, create)
        }
        Command::Delete { key } => data::delete(&mut out, db::dir(db)?, key),
        Command::Scan(args) => data::scan(&mut out, db::dir(db)?, args),
        Command::History { key, limit } => data::history(&mut out, db::dir(db)?, key, *limit),
        Command::Stats => admin::stats(&mut out, db::dir(db)?),
        Command::Verify => verify::verify(&mut out, db::dir(db)?),
        Command::Compact => admin::compact(&mut out, db::dir(db)?),
        Command::VlogGc => admin::vlog_gc(&mut out, db::dir(db)?),
        Command::Checkpoint { dir } => admin::checkpoint(&mut out, db::dir(db)?, dir),
        Command::Restore { dir } => admin::restore(&mut out, db::dir(db)?, dir),
        Command::DumpWal { file } => dump::wal(&mut out, file),
        Command::DumpSst { file, blocks_only } => dump::sst(&mut out, file, *blocks_only),
        Command::DumpManifest { file } => dump::manifest(&mut out, db, file.as_deref()),
        Command::DumpVlog { file } => dump::vlog(&mut out, file),
    };
    // Whatever was printed before a failure is still delivered.
    let flushed = out.flush();
    let code = code?;
    flushed?;
    Ok(code)
}

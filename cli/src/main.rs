//! `strata`: the command-line tool for Strata databases.
//!
//! A command's path: the arguments are parsed ([`args`]; a mistake is one line on stderr and
//! exit code 2), keys and values given as text or `hex:` are decoded ([`bytes`]), the database
//! is opened ([`db`]: read-only for commands that only read, never created unless asked; an
//! encrypted one with the key of `--key-file`, read and checked by [`key`]), the
//! command runs ([`cmd`]) and prints as text or, with `--json`, one JSON document
//! ([`output`]). Long operations draw a progress bar on stderr when it is a terminal
//! ([`progress`]). Every failure ends as one line on stderr and a non-zero exit code
//! ([`error`]); nothing panics on bad input.

mod args;
mod bytes;
mod cmd;
mod db;
mod error;
mod key;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::error::{CliError, exit};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match cmd::run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => report(&e),
    }
}

/// `--help` and `--version` print as clap renders them; any other parse error is one line.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            }
        }
        _ => {
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("strata: {first} (see 'strata --help')");
            ExitCode::from(exit::USAGE)
        }
    }
}

fn report(e: &CliError) -> ExitCode {
    if !e.message.is_empty() {
        eprintln!("strata: {}", e.message);
    }
    ExitCode::from(e.code)
}

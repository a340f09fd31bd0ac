//! The tool's one error shape: a one-line message and the exit code it ends with.

use std::fmt::Display;

/// Exit codes (documented in `docs/cli.md`).
pub mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// The command failed: the database is missing, locked or damaged, or an input is bad.
    pub const FAILED: u8 = 1;
    /// The command line is wrong (unknown command or option, missing argument).
    pub const USAGE: u8 = 2;
    /// `verify` found damage.
    pub const DAMAGED: u8 = 3;
    /// `get` found no value for the key.
    pub const NOT_FOUND: u8 = 4;
}

/// A failure, reported as `strata: <message>` and exit code `code`.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    /// A failure with exit code [`exit::FAILED`].
    pub fn failed(message: impl Display) -> CliError {
        CliError { message: one_line(&message.to_string()), code: exit::FAILED }
    }
}

impl From<strata::Error> for CliError {
    fn from(e: strata::Error) -> CliError {
        CliError::failed(e)
    }
}

impl From<std::io::Error> for CliError {
    /// A reader that went away (`strata scan | head`) ends the command quietly, as it
    /// would a C tool killed by SIGPIPE; any other write failure is reported.
    fn from(e: std::io::Error) -> CliError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return CliError { message: String::new(), code: exit::OK };
        }
        CliError::failed(format_args!("output failed: {e}"))
    }
}

/// Joins the lines of a message, so every failure is one line.
fn one_line(s: &str) -> String {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// Result of a command: the exit code on success.
pub type CliResult<T = u8> = Result<T, CliError>;

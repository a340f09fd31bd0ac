//! The command line, as clap parses it. Every subcommand has `--help`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Read, write, inspect and verify Strata databases.
///
/// Keys and values are taken as UTF-8 text, or as hex after a `hex:` prefix
/// (`hex:00ff`); they are printed the same way: as text when printable, as `hex:...`
/// otherwise. Commands that only read open the database read-only and never create it.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about, propagate_version = true)]
pub struct Cli {
    /// The database directory.
    #[arg(short = 'd', long = "db", global = true, value_name = "DIR")]
    pub db: Option<PathBuf>,

    /// The key of an encrypted database: a file holding exactly 32 raw bytes, or 64 hex
    /// digits and an optional newline. Needed by every command that reads an encrypted
    /// database or its files; with `put --create`, the new database is encrypted with it.
    #[arg(long = "key-file", global = true, value_name = "PATH", env = "STRATA_KEY_FILE")]
    pub key_file: Option<PathBuf>,

    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the value of a key (exit code 4 if it has none).
    Get {
        /// The key (text, or hex:...).
        key: String,
        /// Read the value as it was at this timestamp (nanoseconds; needs versioning).
        #[arg(long, value_name = "TIMESTAMP")]
        at: Option<u64>,
    },
    /// Write a value under a key (durably: returns once it is synced).
    Put {
        /// The key (text, or hex:...).
        key: String,
        /// The value (text, or hex:...).
        value: String,
        /// Write it as the version at this timestamp (nanoseconds; needs versioning).
        #[arg(long, value_name = "TIMESTAMP")]
        at: Option<u64>,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Delete a key (durably).
    Delete {
        /// The key (text, or hex:...).
        key: String,
    },
    /// Print key-value pairs in key order.
    Scan(ScanArgs),
    /// Print every retained version of a key, newest first (needs versioning).
    History {
        /// The key (text, or hex:...).
        key: String,
        /// At most this many versions.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Print the shape of the tree: levels, files, bytes, write amplification, value log
    /// garbage.
    Stats,
    /// Read every block and value log record and check every checksum, without opening the
    /// database. Lists each damaged file and offset; exit code 3 if there is any.
    Verify,
    /// Flush the memtable and run compactions until the tree needs none.
    Compact,
    /// Run value log garbage collection now.
    VlogGc,
    /// Write a consistent checkpoint of the database into DIR (created; must be empty).
    Checkpoint {
        /// Where to write the checkpoint.
        dir: PathBuf,
    },
    /// Replace the database's contents with the checkpoint in DIR.
    Restore {
        /// The checkpoint directory.
        dir: PathBuf,
    },
    /// Decode a WAL segment record by record.
    DumpWal {
        /// The segment file (NNNNNN.wal).
        file: PathBuf,
    },
    /// Decode a table: footer, properties, blocks and entries.
    DumpSst {
        /// The table file (NNNNNN.sst).
        file: PathBuf,
        /// List blocks only, not entries.
        #[arg(long)]
        blocks_only: bool,
    },
    /// Decode a manifest edit by edit: the live one of --db, or FILE.
    DumpManifest {
        /// A manifest file (MANIFEST-NNNNNN); default: the one CURRENT names in --db.
        file: Option<PathBuf>,
    },
    /// Decode a value log file record by record.
    DumpVlog {
        /// The value log file (NNNNNN.vlog).
        file: PathBuf,
    },
}

/// Options of `scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Start at this key (inclusive).
    #[arg(long, value_name = "KEY")]
    pub from: Option<String>,
    /// Stop before this key (exclusive).
    #[arg(long, value_name = "KEY")]
    pub to: Option<String>,
    /// At most this many pairs.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Walk from the last key down.
    #[arg(long)]
    pub reverse: bool,
    /// Print keys only (values are not read).
    #[arg(long)]
    pub keys_only: bool,
    /// Read the data as it was at this timestamp (nanoseconds; needs versioning).
    #[arg(long, value_name = "TIMESTAMP")]
    pub at: Option<u64>,
}

/// Creating a database on first write.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Create the database if the directory holds none.
    #[arg(long)]
    pub create: bool,
    /// With --create: the new database keeps version history.
    #[arg(long, requires = "create")]
    pub versioning: bool,
}

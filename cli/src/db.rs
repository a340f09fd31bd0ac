//! Opening the database a command names.
//!
//! A database fixes its level count and whether it keeps history when it is created; the
//! tool reads both from the live manifest ([`strata_core::inspect::database_shape`]) and opens
//! with them, so any database opens without options. Commands that only read open it with
//! [`TreeBuilder::build_read_only`]: nothing on disk changes, a missing database is an error,
//! and a writer holding the database is reported as locked. Commands that write open it
//! normally, and create it only when asked (`--create`).

use std::path::{Path, PathBuf};

use strata::fs::StdFs;
use strata::{Tree, TreeBuilder};
use strata_core::inspect::{DatabaseShape, database_shape};

use crate::args::CreateArgs;
use crate::error::{CliError, CliResult};

/// The `--db` directory, or an error saying it is needed.
pub fn dir(db: Option<&PathBuf>) -> CliResult<&Path> {
    db.map(PathBuf::as_path)
        .ok_or_else(|| CliError::failed("this command needs the database directory: --db DIR"))
}

/// The shape of the database in `dir`; an error if there is none.
pub fn shape(dir: &Path) -> CliResult<DatabaseShape> {
    let fs = StdFs::open_existing_dir(dir)
        .map_err(|e| CliError::failed(format_args!("no database at '{}': {e}", dir.display())))?;
    match database_shape(&fs)? {
        Some(shape) => Ok(shape),
        None => Err(CliError::failed(format_args!(
            "no database at '{}' (no CURRENT file)",
            dir.display()
        ))),
    }
}

fn builder(dir: &Path, shape: &DatabaseShape) -> CliResult<TreeBuilder> {
    let levels = u8::try_from(shape.level_count)
        .map_err(|_| CliError::failed("the database has more levels than this build supports"))?;
    // Retention 0 keeps every version: the tool never thins history the owner chose to keep.
    Ok(TreeBuilder::new()
        .with_path(dir.to_path_buf())
        .with_level_count(levels)
        .with_versioning(shape.versioning, 0))
}

/// Opens the existing database in `dir` read-only.
pub fn open_read_only(dir: &Path) -> CliResult<Tree> {
    let shape = shape(dir)?;
    Ok(builder(dir, &shape)?.build_read_only()?)
}

/// Opens the existing database in `dir` for writing (creating it if `create` says so).
pub fn open_writable(dir: &Path, create: Option<&CreateArgs>) -> CliResult<Tree> {
    let builder = match (shape(dir), create) {
        (Ok(shape), _) => builder(dir, &shape)?,
        (Err(_), Some(c)) if c.create && !dir.join(strata_core::filenames::CURRENT).exists() => {
            TreeBuilder::new().with_path(dir.to_path_buf()).with_versioning(c.versioning, 0)
        }
        (Err(e), _) => return Err(e),
    };
    // The command does its own maintenance (compact, vlog-gc) on this thread, and a
    // single write needs none.
    Ok(builder.with_background_threads(false).build()?)
}

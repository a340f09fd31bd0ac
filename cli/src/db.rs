//! Opening the database a command names.
//!
//! A database fixes its level count and whether it keeps history when it is created; the
//! tool reads both from the live manifest ([`strata_core::inspect::database_shape`]) and opens
//! with them, so any database opens without options. Commands that only read open it with
//! [`TreeBuilder::build_read_only`]: nothing on disk changes, a missing database is an error,
//! and a writer holding the database is reported as locked. Commands that write open it
//! normally, and create it only when asked (`--create`).
//!
//! An encrypted database (one whose directory holds the `ENCRYPTION` marker) is opened with
//! the key of `--key-file`. Whether a key is needed is decided from the marker before
//! anything is opened ([`encrypted_view`]): an encrypted database without a key, or a key for
//! an unencrypted one, is refused with a one-line error and the directory untouched; a wrong
//! key is refused by the key check against the marker, which only reads.

use std::path::{Path, PathBuf};

use strata::fs::StdFs;
use strata::vfs::encrypted::MARKER_NAME;
use strata::vfs::{EncryptedFs, ErrorKind, StaticKey};
use strata::{DynFs, OsRandom, Tree, TreeBuilder};
use strata_core::filenames::CURRENT;
use strata_core::inspect::{DatabaseShape, database_shape};

use crate::args::CreateArgs;
use crate::error::{CliError, CliResult};
use crate::key::Key;

/// The `--db` directory, or an error saying it is needed.
pub fn dir(db: Option<&PathBuf>) -> CliResult<&Path> {
    db.map(PathBuf::as_path)
        .ok_or_else(|| CliError::failed("this command needs the database directory: --db DIR"))
}

/// The error for encrypted data read without a key; `what` names it.
pub fn key_needed(what: impl std::fmt::Display) -> CliError {
    CliError::failed(format_args!(
        "{what} is encrypted: pass its key with --key-file PATH (or set STRATA_KEY_FILE)"
    ))
}

/// The error for a key that does not match the one `what` was encrypted with.
pub fn wrong_key(what: impl std::fmt::Display) -> CliError {
    CliError::failed(format_args!(
        "wrong encryption key for {what}: the key file does not hold the key it was created with"
    ))
}

/// `true` when an I/O failure (at any depth of the error) is a key check that failed.
pub fn is_wrong_key(e: &strata::Error) -> bool {
    matches!(e, strata::Error::Io { source, .. } if source.kind() == ErrorKind::WrongKey)
}

/// The files of the directory `fs` (`what` names it in errors) as the engine sees them:
/// decrypted with `key` when the directory is encrypted. Refuses an encrypted directory
/// without a key, a key for a directory that holds unencrypted data (a `CURRENT` file but no
/// marker), and a wrong key; never writes (a key for a directory without a marker or a
/// `CURRENT` file reads it plain: there is nothing encrypted to read).
pub fn encrypted_view(fs: StdFs, dir: &Path, what: &str, key: Option<&Key>) -> CliResult<DynFs> {
    let encrypted = dir.join(MARKER_NAME).is_file();
    match (encrypted, key) {
        (false, None) => Ok(DynFs::new(fs)),
        (true, None) => Err(key_needed(what)),
        (false, Some(_)) if dir.join(CURRENT).exists() => Err(CliError::failed(format_args!(
            "{what} is not encrypted (it has no {MARKER_NAME} file), but a key was given \
             (--key-file or STRATA_KEY_FILE)"
        ))),
        (false, Some(_)) => Ok(DynFs::new(fs)),
        (true, Some(key)) => {
            // The marker exists, so this open checks the key against it and writes nothing.
            match EncryptedFs::open(fs, &StaticKey::new(key.bytes()), OsRandom) {
                Ok(fs) => Ok(DynFs::new(fs)),
                Err(e) if e.kind() == ErrorKind::WrongKey => Err(wrong_key(what)),
                Err(e) => Err(CliError::failed(format_args!("cannot open {what}: {e}"))),
            }
        }
    }
}

/// The database a command names: its directory and the key given for it.
#[derive(Debug, Clone, Copy)]
pub struct Db<'a> {
    /// The database directory.
    pub dir: &'a Path,
    key: Option<&'a Key>,
}

impl<'a> Db<'a> {
    /// The database in `--db`, with the key of `--key-file` if one was given.
    pub fn new(db: Option<&'a PathBuf>, key: Option<&'a Key>) -> CliResult<Db<'a>> {
        Ok(Db { dir: dir(db)?, key })
    }

    /// The key given for it, if any.
    pub fn key(&self) -> Option<&'a Key> {
        self.key
    }

    /// How errors name the database.
    fn what(&self) -> String {
        format!("the database at '{}'", self.dir.display())
    }

    /// The database's files as the engine sees them ([`encrypted_view`]); an error if the
    /// directory does not exist.
    pub fn files(&self) -> CliResult<DynFs> {
        let fs = StdFs::open_existing_dir(self.dir).map_err(|e| {
            CliError::failed(format_args!("no database at '{}': {e}", self.dir.display()))
        })?;
        encrypted_view(fs, self.dir, &self.what(), self.key)
    }

    /// The shape of the database; an error if there is none.
    pub fn shape(&self) -> CliResult<DatabaseShape> {
        match database_shape(&self.files()?).map_err(|e| self.open_error(e))? {
            Some(shape) => Ok(shape),
            None => Err(CliError::failed(format_args!(
                "no database at '{}' (no CURRENT file)",
                self.dir.display()
            ))),
        }
    }

    /// A library error met while opening, with a wrong key said plainly.
    fn open_error(&self, e: strata::Error) -> CliError {
        if is_wrong_key(&e) { wrong_key(self.what()) } else { e.into() }
    }

    /// A builder for the database's directory, with its key if it has one.
    fn base_builder(&self) -> TreeBuilder {
        let b = TreeBuilder::new().with_path(self.dir.to_path_buf());
        match self.key {
            Some(key) => b.with_encryption_key(key.bytes()),
            None => b,
        }
    }

    fn builder(&self, shape: &DatabaseShape) -> CliResult<TreeBuilder> {
        let levels = u8::try_from(shape.level_count).map_err(|_| {
            CliError::failed("the database has more levels than this build supports")
        })?;
        // Retention 0 keeps every version: the tool never thins history the owner chose to
        // keep.
        Ok(self.base_builder().with_level_count(levels).with_versioning(shape.versioning, 0))
    }

    /// Opens the existing database read-only.
    pub fn open_read_only(&self) -> CliResult<Tree> {
        let shape = self.shape()?;
        self.builder(&shape)?.build_read_only().map_err(|e| self.open_error(e))
    }

    /// Opens the existing database for writing (creating it if `create` says so; with a
    /// key, encrypted).
    pub fn open_writable(&self, create: Option<&CreateArgs>) -> CliResult<Tree> {
        let builder = match (self.shape(), create) {
            (Ok(shape), _) => self.builder(&shape)?,
            (Err(_), Some(c)) if c.create && !self.dir.join(CURRENT).exists() => {
                // A directory left with a marker but no database (a creation cut short)
                // is created again only under its key.
                if self.dir.join(MARKER_NAME).is_file() && self.key.is_none() {
                    return Err(key_needed(self.what()));
                }
                self.base_builder().with_versioning(c.versioning, 0)
            }
            (Err(e), _) => return Err(e),
        };
        // The command does its own maintenance (compact, vlog-gc) on this thread, and a
        // single write needs none.
        builder.with_background_threads(false).build().map_err(|e| self.open_error(e))
    }
}

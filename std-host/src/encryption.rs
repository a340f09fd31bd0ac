//! Encryption at rest for a [`Tree`](crate::Tree): the builder option, the operating-system
//! nonce source, and the one place the database's filesystem (and a checkpoint directory's)
//! is wrapped in [`EncryptedFs`].
//!
//! Data path: [`TreeBuilder::with_encryption_key`] stores a key provider in the options;
//! opening the tree (and creating or restoring a checkpoint directory) passes the filesystem
//! through [`wrap`], which opens an [`EncryptedFs`] over it: the key is checked against the
//! directory's `ENCRYPTION` marker (a wrong key fails the open) and every file is encrypted
//! with XChaCha20 under a random per-file nonce. The format and the threat model are in
//! `docs/format/encryption.md`.

use std::fmt;
use std::sync::Arc;

use strata_core::{Error, IoOp, Result};
use strata_vfs::{EncryptedFs, KeyProvider, RandomSource, StaticKey};

use crate::dyn_fs::DynFs;
use crate::options::{Options, TreeBuilder};

/// Random nonces from the operating system's RNG (`getrandom`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> strata_vfs::Result<()> {
        getrandom::fill(buf).map_err(|e| {
            strata_vfs::Error::with_source(strata_vfs::ErrorKind::Other, "getrandom", e)
        })
    }
}

/// The encryption setting of [`Options`]: where the key comes from.
#[derive(Clone)]
pub(crate) struct Encryption {
    keys: Arc<dyn KeyProvider + Send + Sync>,
}

impl fmt::Debug for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Encryption(<key redacted>)")
    }
}

impl Options {
    /// Encrypts every database file at rest with this 256-bit key (XChaCha20, a random nonce
    /// per file; see `docs/format/encryption.md` for what is and is not protected). A new
    /// database is created encrypted; an existing one must have been created with the same
    /// key, or opening fails with an error whose source has kind
    /// [`ErrorKind::WrongKey`](strata_vfs::ErrorKind::WrongKey). An unencrypted database is
    /// refused rather than read as ciphertext. Applies to the path and to a custom VFS alike,
    /// and to [`Tree::create_checkpoint`](crate::Tree::create_checkpoint) and
    /// [`Tree::restore_from_checkpoint`](crate::Tree::restore_from_checkpoint) directories.
    pub fn with_encryption_key(self, key: [u8; 32]) -> Self {
        self.with_key_provider(Arc::new(StaticKey::new(key)))
    }

    /// Like [`with_encryption_key`](Options::with_encryption_key), with the key fetched from
    /// `keys` each time the database (or a checkpoint directory) is opened.
    pub fn with_key_provider(mut self, keys: Arc<dyn KeyProvider + Send + Sync>) -> Self {
        self.encryption = Some(Encryption { keys });
        self
    }
}

impl TreeBuilder {
    /// See [`Options::with_encryption_key`].
    pub fn with_encryption_key(mut self, key: [u8; 32]) -> Self {
        self.opts = self.opts.with_encryption_key(key);
        self
    }

    /// See [`Options::with_key_provider`].
    pub fn with_key_provider(mut self, keys: Arc<dyn KeyProvider + Send + Sync>) -> Self {
        self.opts = self.opts.with_key_provider(keys);
        self
    }
}

/// `fs` as the tree sees it: encrypted when the options ask for it, unchanged otherwise.
pub(crate) fn wrap(fs: DynFs, opts: &Options) -> Result<DynFs> {
    let Some(enc) = &opts.encryption else {
        return Ok(fs);
    };
    let encrypted = EncryptedFs::open(fs, enc.keys.as_ref(), OsRandom)
        .map_err(|e| Error::io(IoOp::Open, strata_vfs::encrypted::MARKER_NAME, e))?;
    Ok(DynFs::new(encrypted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_random_gives_distinct_nonces() {
        let (mut a, mut b) = ([0u8; 24], [0u8; 24]);
        OsRandom.fill(&mut a).expect("a");
        OsRandom.fill(&mut b).expect("b");
        assert_ne!(a, b);
    }

    #[test]
    fn debug_output_hides_the_key() {
        let opts = Options::new().with_encryption_key([0xAB; 32]);
        let shown = format!("{opts:?}");
        assert!(shown.contains("encryption: true"), "{shown}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "), "{shown}");
    }
}

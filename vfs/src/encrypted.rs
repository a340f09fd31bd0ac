//! [`EncryptedFs`]: encryption at rest around any [`Vfs`].
//!
//! Data path: [`EncryptedFs::create`] draws a random 24-byte nonce from the host's
//! [`RandomSource`], writes a 48-byte prefix (magic, version, cipher id, the nonce and a key
//! check value) and syncs it, then hands out a writer that XORs every appended byte with the
//! XChaCha20 keystream of (key, nonce) at that byte's offset. [`EncryptedFs::open`] reads the
//! prefix, refuses a file whose key check value does not match the key
//! ([`ErrorKind::WrongKey`]), and hands out a reader that decrypts exactly the requested
//! range. Lengths and sizes are of the plaintext (the file's length minus the prefix).
//!
//! A marker file, `ENCRYPTION`, holds just a prefix: opening the filesystem checks the key
//! against it, so a wrong key is refused before any database file is read, and an unencrypted
//! database is refused instead of being read as ciphertext. The marker is hidden from
//! [`Vfs::list`] and its name is reserved.
//!
//! What this protects, and what it does not (sizes, names, access patterns, integrity), is in
//! `docs/format/encryption.md`. In short: a stream cipher without a MAC. Flipped ciphertext
//! bits flip the same plaintext bits, which the engine's block checksums then catch; they
//! detect damage, not forgery.
//!
//! Renames and hard links keep working: a file's nonce travels in its prefix, so a linked or
//! renamed file stays readable under the same key. Lock files pass through unencrypted (they
//! hold no data).

mod handles;
mod keys;
mod prefix;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroizing;

pub use handles::{EncryptedRead, EncryptedWrite};
pub use keys::{KEY_LEN, KeyProvider, RandomSource, StaticKey};
pub use prefix::{DATA_KEYSTREAM_OFFSET, MAGIC, PREFIX_LEN};

use prefix::{FileCipher, FileState, NONCE_LEN, Prefix, read_prefix};

use crate::{AppendWrite, Caps, Error, ErrorKind, FileKind, Result, SyncMode, Vfs};

/// Name of the marker file that holds the database's key check value.
pub const MARKER_NAME: &str = "ENCRYPTION";
/// Scratch name the marker is written under before it is renamed into place.
const MARKER_TMP: &str = "ENCRYPTION.tmp";

fn is_reserved(name: &str) -> bool {
    name == MARKER_NAME || name == MARKER_TMP
}

fn reserved() -> Error {
    Error::new(ErrorKind::Unsupported, "encrypted fs: ENCRYPTION names are reserved")
}

/// What every handle of one [`EncryptedFs`] shares.
struct Shared {
    key: Zeroizing<[u8; KEY_LEN]>,
    random: Box<dyn RandomSource + Send + Sync>,
}

/// A [`Vfs`] that encrypts every file of `V` (see the [module docs](self)).
pub struct EncryptedFs<V> {
    inner: V,
    shared: Arc<Shared>,
}

impl<V: Clone> Clone for EncryptedFs<V> {
    fn clone(&self) -> Self {
        EncryptedFs { inner: self.inner.clone(), shared: Arc::clone(&self.shared) }
    }
}

impl<V: fmt::Debug> fmt::Debug for EncryptedFs<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedFs").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl<V: Vfs> EncryptedFs<V> {
    /// Opens the encrypted filesystem over `inner` with the key from `keys`, taking nonces
    /// from `random`.
    ///
    /// If `inner` holds the `ENCRYPTION` marker, the key is checked against it:
    /// [`ErrorKind::WrongKey`] if it does not match. If not, `inner` must hold no file with
    /// data (an unencrypted database is refused with [`ErrorKind::Other`]); the marker is then
    /// written and made durable.
    ///
    /// Do not create the same new encrypted directory from two processes at once with
    /// different keys: the last marker written wins.
    pub fn open(
        inner: V,
        keys: &dyn KeyProvider,
        random: impl RandomSource + Send + Sync + 'static,
    ) -> Result<Self> {
        let key = Zeroizing::new(keys.key()?);
        let fs = EncryptedFs { inner, shared: Arc::new(Shared { key, random: Box::new(random) }) };
        match fs.inner.open(MARKER_NAME, FileKind::Marker) {
            Ok(marker) => {
                match read_prefix(&marker, &fs.shared.key)? {
                    FileState::Encrypted(_) => Ok(fs),
                    // A marker is renamed into place only after its prefix is synced, so
                    // anything else is damage.
                    FileState::Empty | FileState::Unreadable => Err(Error::new(
                        ErrorKind::Other,
                        "encrypted fs: ENCRYPTION marker is damaged",
                    )),
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                fs.refuse_unencrypted_data()?;
                fs.write_marker()?;
                Ok(fs)
            }
            Err(e) => Err(e),
        }
    }

    /// The wrapped filesystem (whose files hold ciphertext).
    pub fn inner(&self) -> &V {
        &self.inner
    }

    /// Errors if the directory holds a file with data: without a marker it is not ours.
    fn refuse_unencrypted_data(&self) -> Result<()> {
        for name in self.inner.list()? {
            if is_reserved(&name) {
                continue;
            }
            if self.inner.size(&name)? > 0 {
                return Err(Error::new(
                    ErrorKind::Other,
                    "encrypted fs: directory holds files but no ENCRYPTION marker (an unencrypted database)",
                ));
            }
        }
        Ok(())
    }

    /// Writes the marker under a scratch name, syncs it, renames it into place, syncs the
    /// directory: a crash leaves either no marker or a whole one.
    fn write_marker(&self) -> Result<()> {
        match self.inner.remove(MARKER_TMP) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let (w, _) = self.create_with_prefix(MARKER_TMP, FileKind::Marker)?;
        drop(w);
        self.inner.rename(MARKER_TMP, MARKER_NAME)?;
        self.inner.sync_dir()
    }

    /// Creates `name` in the inner filesystem and writes and syncs a fresh prefix.
    fn create_with_prefix(&self, name: &str, kind: FileKind) -> Result<(V::Write, FileCipher)> {
        let mut nonce = [0u8; NONCE_LEN];
        self.shared.random.fill(&mut nonce)?;
        let cipher = FileCipher::new(&self.shared.key, &nonce);
        let prefix = Prefix { nonce, check: cipher.check_value()? };
        let mut w = self.inner.create(name, kind)?;
        w.append(&prefix.encode())?;
        // The prefix is durable before the file's name can be (a later sync_dir), so a crash
        // never leaves a named file with a torn prefix in front of data.
        w.sync(SyncMode::Data)?;
        Ok((w, cipher))
    }
}

impl<V: Vfs> Vfs for EncryptedFs<V> {
    type Read = EncryptedRead<V::Read>;
    type Write = EncryptedWrite<V::Write>;
    type Lock = V::Lock;

    fn caps(&self) -> Caps {
        self.inner.caps()
    }

    fn create(&self, name: &str, kind: FileKind) -> Result<Self::Write> {
        if is_reserved(name) {
            return Err(reserved());
        }
        let (w, cipher) = self.create_with_prefix(name, kind)?;
        Ok(EncryptedWrite::new(w, cipher))
    }

    fn open(&self, name: &str, kind: FileKind) -> Result<Self::Read> {
        if is_reserved(name) {
            return Err(Error::new(ErrorKind::NotFound, "encrypted fs: reserved name"));
        }
        let r = self.inner.open(name, kind)?;
        let cipher = read_prefix(&r, &self.shared.key)?;
        Ok(EncryptedRead::new(r, cipher))
    }

    fn remove(&self, name: &str) -> Result<()> {
        if is_reserved(name) {
            return Err(reserved());
        }
        self.inner.remove(name)
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        if is_reserved(from) || is_reserved(to) {
            return Err(reserved());
        }
        self.inner.rename(from, to)
    }

    fn sync_dir(&self) -> Result<()> {
        self.inner.sync_dir()
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names = self.inner.list()?;
        names.retain(|n| !is_reserved(n));
        Ok(names)
    }

    fn size(&self, name: &str) -> Result<u64> {
        if is_reserved(name) {
            return Err(Error::new(ErrorKind::NotFound, "encrypted fs: reserved name"));
        }
        Ok(self.inner.size(name)?.saturating_sub(PREFIX_LEN as u64))
    }

    fn lock(&self, name: &str) -> Result<Self::Lock> {
        if is_reserved(name) {
            return Err(reserved());
        }
        self.inner.lock(name)
    }

    fn link(&self, existing: &str, new: &str) -> Result<()> {
        if is_reserved(existing) || is_reserved(new) {
            return Err(reserved());
        }
        self.inner.link(existing, new)
    }
}

//! Where keys and nonces come from: [`KeyProvider`] (the 256-bit key) and [`RandomSource`]
//! (per-file nonces). A no_std target has no operating-system RNG, so the host supplies one.

use core::fmt;

use zeroize::Zeroize;

use crate::Result;

/// Length of an encryption key in bytes (XChaCha20 takes a 256-bit key).
pub const KEY_LEN: usize = 32;

/// Supplies the key an [`EncryptedFs`](super::EncryptedFs) encrypts with. Called once, when
/// the filesystem is opened; the key is then held in memory (and wiped when the filesystem is
/// dropped).
///
/// A provider may fetch the key from anywhere (a key-management service, a secure element, a
/// passphrase through a key-derivation function). Keys are never rotated in place: to move a
/// database to a new key, checkpoint it into a directory opened with the new key and open (or
/// restore from) that copy; see `docs/format/encryption.md`.
pub trait KeyProvider {
    /// The 256-bit key. An error here fails the open.
    fn key(&self) -> Result<[u8; KEY_LEN]>;
}

/// Random bytes for per-file nonces. Must be unpredictable and never repeat its output:
/// a repeated nonce under the same key exposes the XOR of two files' contents. On std hosts,
/// the operating system's RNG (`getrandom`); on a device, its hardware RNG or a seeded CSPRNG.
pub trait RandomSource {
    /// Fills `buf` with random bytes. An error fails the file creation that asked.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
}

/// A [`KeyProvider`] holding one fixed key in memory. Its `Debug` output hides the key, and
/// the key is wiped when the provider is dropped.
#[derive(Clone)]
pub struct StaticKey {
    key: [u8; KEY_LEN],
}

impl StaticKey {
    /// A provider that always returns `key`.
    pub const fn new(key: [u8; KEY_LEN]) -> Self {
        StaticKey { key }
    }
}

impl KeyProvider for StaticKey {
    fn key(&self) -> Result<[u8; KEY_LEN]> {
        Ok(self.key)
    }
}

impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticKey(<redacted>)")
    }
}

impl Drop for StaticKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

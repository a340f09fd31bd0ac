//! The file handles of [`EncryptedFs`](super::EncryptedFs): a reader that decrypts exactly the
//! requested range, and a writer that encrypts each append at its keystream offset.

use alloc::vec::Vec;

use super::prefix::{FileCipher, FileState, PREFIX_LEN};
use crate::{AppendWrite, Error, ErrorKind, RandomRead, Result, SyncMode};

/// Bytes encrypted per inner append: bounds the scratch buffer whatever the append size.
const CHUNK: usize = 32 * 1024;

const PREFIX: u64 = PREFIX_LEN as u64;

/// A file of an [`EncryptedFs`](super::EncryptedFs) opened for positional reads.
#[derive(Debug)]
pub struct EncryptedRead<R> {
    inner: R,
    /// What the prefix said: decrypt, read as empty, or pass unreadable bytes through.
    state: FileState,
}

impl<R: RandomRead> EncryptedRead<R> {
    pub(super) fn new(inner: R, state: FileState) -> Self {
        EncryptedRead { inner, state }
    }
}

impl<R: RandomRead> RandomRead for EncryptedRead<R> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if let FileState::Empty = self.state {
            return if buf.is_empty() && offset == 0 {
                Ok(())
            } else {
                Err(Error::new(ErrorKind::UnexpectedEof, "encrypted fs: read past end"))
            };
        }
        let at = offset
            .checked_add(PREFIX)
            .ok_or(Error::new(ErrorKind::UnexpectedEof, "encrypted fs: read past end"))?;
        self.inner.read_exact_at(at, buf)?;
        match &self.state {
            FileState::Encrypted(cipher) => cipher.apply(offset, buf),
            FileState::Empty | FileState::Unreadable => Ok(()),
        }
    }

    fn len(&self) -> Result<u64> {
        match self.state {
            FileState::Empty => Ok(0),
            FileState::Encrypted(_) | FileState::Unreadable => {
                Ok(self.inner.len()?.saturating_sub(PREFIX))
            }
        }
    }
}

/// A file of an [`EncryptedFs`](super::EncryptedFs) being appended to. Its prefix is already
/// written (and synced) when it is handed out.
#[derive(Debug)]
pub struct EncryptedWrite<W> {
    inner: W,
    cipher: FileCipher,
    /// Reused buffer for the ciphertext of one chunk.
    scratch: Vec<u8>,
}

impl<W: AppendWrite> EncryptedWrite<W> {
    pub(super) fn new(inner: W, cipher: FileCipher) -> Self {
        EncryptedWrite { inner, cipher, scratch: Vec::new() }
    }
}

impl<W: AppendWrite> AppendWrite for EncryptedWrite<W> {
    fn append(&mut self, data: &[u8]) -> Result<()> {
        for chunk in data.chunks(CHUNK) {
            // The data offset comes from the inner length each time, so the keystream offset
            // is right even if an earlier append failed half-way.
            let offset = self.len();
            self.scratch.clear();
            self.scratch.extend_from_slice(chunk);
            self.cipher.apply(offset, &mut self.scratch)?;
            self.inner.append(&self.scratch)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    fn sync(&mut self, mode: SyncMode) -> Result<()> {
        self.inner.sync(mode)
    }

    fn len(&self) -> u64 {
        self.inner.len().saturating_sub(PREFIX)
    }
}

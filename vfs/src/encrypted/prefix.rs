//! The prefix every encrypted file starts with, and the per-file cipher it selects.
//!
//! Layout (48 bytes, see `docs/format/encryption.md`):
//!
//! | offset | size | field                                                        |
//! |--------|------|--------------------------------------------------------------|
//! | 0      | 8    | magic `STRATAEC`                                             |
//! | 8      | 1    | format version, 1                                            |
//! | 9      | 1    | cipher, 1 = XChaCha20                                        |
//! | 10     | 6    | reserved, zero                                               |
//! | 16     | 24   | nonce, random per file                                       |
//! | 40     | 8    | key check value: keystream bytes 0..8 of (key, nonce)        |
//!
//! Plaintext byte `i` of the file is XORed with keystream byte `64 + i`: keystream block 0
//! only ever produces the key check value, so publishing it reveals no keystream that
//! encrypts data.

use zeroize::Zeroizing;

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::{ChaCha20, R20, hchacha};

use super::keys::KEY_LEN;
use crate::{Error, ErrorKind, Result};

/// Bytes of the prefix in front of every encrypted file's data.
pub const PREFIX_LEN: usize = 48;
/// The first eight bytes of every encrypted file.
pub const MAGIC: [u8; 8] = *b"STRATAEC";
/// The prefix layout version this code writes and reads.
pub const VERSION: u8 = 1;
/// Cipher id of XChaCha20 (the only one so far).
pub const CIPHER_XCHACHA20: u8 = 1;
/// Nonce length of XChaCha20.
pub const NONCE_LEN: usize = 24;
/// Length of the key check value.
pub const CHECK_LEN: usize = 8;
/// Keystream offset of the first data byte (block 0 is reserved for the key check value).
pub const DATA_KEYSTREAM_OFFSET: u64 = 64;

const NONCE_AT: usize = 16;
const CHECK_AT: usize = NONCE_AT + NONCE_LEN;

/// What a valid prefix holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The file's nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The key check value stored with it.
    pub check: [u8; CHECK_LEN],
}

impl Prefix {
    /// The 48 bytes written at the start of a file.
    pub fn encode(&self) -> [u8; PREFIX_LEN] {
        let mut out = [0u8; PREFIX_LEN];
        out[..8].copy_from_slice(&MAGIC);
        out[8] = VERSION;
        out[9] = CIPHER_XCHACHA20;
        out[NONCE_AT..CHECK_AT].copy_from_slice(&self.nonce);
        out[CHECK_AT..].copy_from_slice(&self.check);
        out
    }

    /// Parses a prefix; a wrong magic, version, cipher or reserved byte is an error naming it.
    pub fn decode(bytes: &[u8; PREFIX_LEN]) -> Result<Prefix> {
        if bytes[..8] != MAGIC {
            return Err(Error::new(
                ErrorKind::Other,
                "encrypted fs: file does not start with the STRATAEC prefix (not encrypted, or damaged)",
            ));
        }
        if bytes[8] != VERSION {
            return Err(Error::new(ErrorKind::Unsupported, "encrypted fs: unknown prefix version"));
        }
        if bytes[9] != CIPHER_XCHACHA20 {
            return Err(Error::new(ErrorKind::Unsupported, "encrypted fs: unknown cipher id"));
        }
        if bytes[10..NONCE_AT].iter().any(|&b| b != 0) {
            return Err(Error::new(
                ErrorKind::Other,
                "encrypted fs: damaged prefix (reserved bytes)",
            ));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[NONCE_AT..CHECK_AT]);
        let mut check = [0u8; CHECK_LEN];
        check.copy_from_slice(&bytes[CHECK_AT..]);
        Ok(Prefix { nonce, check })
    }
}

/// The keystream of one file: XChaCha20 under the database key and the file's nonce, unrolled
/// once into its ChaCha20 subkey (HChaCha20 of the key and the nonce's first 16 bytes) and
/// 12-byte nonce (four zero bytes, then the nonce's last 8), so each read only sets up a
/// ChaCha20 state at the right block instead of re-deriving the subkey.
pub struct FileCipher {
    subkey: Zeroizing<[u8; KEY_LEN]>,
    nonce: [u8; 12],
}

impl core::fmt::Debug for FileCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FileCipher(<redacted>)")
    }
}

impl FileCipher {
    /// The cipher of the file with `nonce` under `key`.
    pub fn new(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN]) -> Self {
        let mut head = [0u8; 16];
        head.copy_from_slice(&nonce[..16]);
        let derived = hchacha::<R20>(&(*key).into(), &head.into());
        let mut subkey = Zeroizing::new([0u8; KEY_LEN]);
        subkey.copy_from_slice(&derived);
        let mut ietf_nonce = [0u8; 12];
        ietf_nonce[4..].copy_from_slice(&nonce[16..]);
        FileCipher { subkey, nonce: ietf_nonce }
    }

    /// XORs `buf` with the keystream from byte `keystream_offset`.
    fn apply_at(&self, keystream_offset: u64, buf: &mut [u8]) -> Result<()> {
        let mut c = ChaCha20::new(&(*self.subkey).into(), &self.nonce.into());
        c.try_seek(keystream_offset).map_err(|_| too_long())?;
        c.try_apply_keystream(buf).map_err(|_| too_long())
    }

    /// Encrypts or decrypts (the same XOR) `buf`, which sits at data offset `offset`.
    pub fn apply(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let at = offset.checked_add(DATA_KEYSTREAM_OFFSET).ok_or_else(too_long)?;
        self.apply_at(at, buf)
    }

    /// The key check value: keystream bytes 0..8.
    pub fn check_value(&self) -> Result<[u8; CHECK_LEN]> {
        let mut check = [0u8; CHECK_LEN];
        self.apply_at(0, &mut check)?;
        Ok(check)
    }
}

/// A file offset past what one nonce's keystream covers (256 GiB).
fn too_long() -> Error {
    Error::new(ErrorKind::NoSpace, "encrypted fs: file longer than the cipher's 256 GiB keystream")
}

/// What a file's first bytes say about its contents.
#[derive(Debug)]
pub enum FileState {
    /// Shorter than a prefix: created, but its prefix never reached the medium (a power cut
    /// in `create`). It holds no data.
    Empty,
    /// A valid prefix whose key check value matches: the file decrypts with this cipher.
    Encrypted(FileCipher),
    /// No `STRATAEC` magic: the prefix is garbage (a power cut between a create that reached
    /// the directory and the prefix's sync). The bytes after it are unreadable and are passed
    /// through as they are, so the engine's checksums reject them exactly as they reject a
    /// garbage tail of an unencrypted file. A magic a few bits away from `STRATAEC` is not
    /// this case but a damaged prefix ([`MAGIC_DAMAGE_BITS`]).
    Unreadable,
}

/// A first eight bytes that differ from [`MAGIC`] in at most this many bits are a damaged
/// magic (a bad sector, a bit flipped on the way from the disk), refused as a damaged
/// prefix, not garbage to pass through. Passing it through would hand the engine the whole
/// file as ciphertext, which it takes for a torn tail: a synced WAL segment would be dropped
/// with the acknowledged commits in it (`bit_flip_on_read_during_recovery_encrypted`
/// test found this). Garbage left by a power cut lands this close to the magic with
/// probability below 2^-44.
pub const MAGIC_DAMAGE_BITS: u32 = 4;

/// Reads, parses and checks the prefix of a file against `key`. A prefix with the magic but an
/// unknown version or cipher is an error, and so is a magic with a few bits flipped; one whose key check value does not match is
/// [`ErrorKind::WrongKey`].
pub fn read_prefix<R: crate::RandomRead>(r: &R, key: &[u8; KEY_LEN]) -> Result<FileState> {
    if r.len()? < PREFIX_LEN as u64 {
        return Ok(FileState::Empty);
    }
    let mut raw = [0u8; PREFIX_LEN];
    r.read_exact_at(0, &mut raw)?;
    if raw[..8] != MAGIC {
        let distance: u32 = raw[..8].iter().zip(MAGIC).map(|(a, b)| (a ^ b).count_ones()).sum();
        if distance <= MAGIC_DAMAGE_BITS {
            return Err(Error::new(ErrorKind::Other, "encrypted fs: damaged prefix (magic)"));
        }
        return Ok(FileState::Unreadable);
    }
    let prefix = Prefix::decode(&raw)?;
    let cipher = FileCipher::new(key, &prefix.nonce);
    if cipher.check_value()? != prefix.check {
        return Err(Error::new(
            ErrorKind::WrongKey,
            "encrypted fs: key check value does not match (written with another key, or a damaged prefix)",
        ));
    }
    Ok(FileState::Encrypted(cipher))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20::XChaCha20;

    /// The unrolled per-file cipher is exactly XChaCha20 (as in libsodium), shifted by one
    /// block.
    #[test]
    fn file_cipher_is_xchacha20_from_block_one() {
        let key = [7u8; KEY_LEN];
        let nonce: [u8; NONCE_LEN] = core::array::from_fn(|i| i as u8);
        let mut reference = [0u8; 300];
        let mut x = XChaCha20::new(&key.into(), &nonce.into());
        x.apply_keystream(&mut reference);
        let fc = FileCipher::new(&key, &nonce);
        assert_eq!(fc.check_value().expect("check"), reference[..8]);
        for (start, len) in [(0usize, 236usize), (1, 5), (63, 2), (100, 136)] {
            let mut buf = [0u8; 236];
            fc.apply(start as u64, &mut buf[..len]).expect("apply");
            assert_eq!(buf[..len], reference[64 + start..64 + start + len], "at {start}");
        }
    }

    #[test]
    fn prefix_round_trips_and_rejects_damage() {
        let p = Prefix { nonce: [9; NONCE_LEN], check: [3; CHECK_LEN] };
        let raw = p.encode();
        assert_eq!(Prefix::decode(&raw).expect("decode"), p);
        for (at, kind) in [
            (0, ErrorKind::Other),
            (8, ErrorKind::Unsupported),
            (9, ErrorKind::Unsupported),
            (12, ErrorKind::Other),
        ] {
            let mut bad = raw;
            bad[at] ^= 0x40;
            assert_eq!(Prefix::decode(&bad).expect_err("damaged").kind(), kind, "byte {at}");
        }
    }

    #[test]
    fn offsets_past_the_keystream_are_errors_not_panics() {
        let fc = FileCipher::new(&[1; KEY_LEN], &[2; NONCE_LEN]);
        let mut buf = [0u8; 16];
        assert!(fc.apply(u64::MAX - 4, &mut buf).is_err());
        assert!(fc.apply(1 << 40, &mut buf).is_err());
    }
}

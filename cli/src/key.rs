//! The encryption key of `--key-file` (or `STRATA_KEY_FILE`).
//!
//! Format (also in `docs/cli.md`): the file holds either exactly 32 raw bytes, or exactly 64
//! hexadecimal digits (either case) optionally followed by one line ending (`\n` or `\r\n`).
//! The two are told apart by length alone, so no file is read two ways. Anything else is
//! refused with an error that gives the file's length but never its contents, and no message
//! of the tool ever shows the key. The bytes read are wiped when the key is dropped.

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::bytes::hex_digit;
use crate::error::{CliError, CliResult};

/// Length of a key in bytes (XChaCha20 takes a 256-bit key).
pub const KEY_LEN: usize = strata::vfs::encrypted::KEY_LEN;

/// The longest file accepted: 64 hex digits and `\r\n`. Reading stops one byte after it,
/// so a large file named by mistake is not read whole.
const MAX_FILE_LEN: usize = 2 * KEY_LEN + 2;

/// The accepted format, as error messages state it.
const FORMAT: &str =
    "a key file holds exactly 32 raw bytes or 64 hex digits (and an optional newline)";

/// A 256-bit key, wiped from memory when dropped; its `Debug` output hides it.
pub struct Key(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Key {
    /// The key bytes, for the library's `with_encryption_key` and `StaticKey`.
    pub fn bytes(&self) -> [u8; KEY_LEN] {
        *self.0
    }

    /// Reads and checks the key file at `path`.
    pub fn from_file(path: &Path) -> CliResult<Key> {
        let shown = path.display();
        let file = std::fs::File::open(path)
            .map_err(|e| CliError::failed(format_args!("cannot read key file '{shown}': {e}")))?;
        let mut contents = Zeroizing::new(Vec::with_capacity(MAX_FILE_LEN + 1));
        file.take(MAX_FILE_LEN as u64 + 1)
            .read_to_end(&mut contents)
            .map_err(|e| CliError::failed(format_args!("cannot read key file '{shown}': {e}")))?;
        Key::parse(&contents)
            .map_err(|why| CliError::failed(format_args!("bad key file '{shown}': {why}")))
    }

    /// Decodes a key file's contents; the error says what is wrong without quoting them.
    fn parse(contents: &[u8]) -> Result<Key, String> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if contents.len() == KEY_LEN {
            key.copy_from_slice(contents);
            return Ok(Key(key));
        }
        let digits = contents
            .strip_suffix(b"\r\n")
            .or_else(|| contents.strip_suffix(b"\n"))
            .unwrap_or(contents);
        if digits.len() != 2 * KEY_LEN {
            let len = if contents.len() > MAX_FILE_LEN {
                format!("more than {MAX_FILE_LEN}")
            } else {
                contents.len().to_string()
            };
            return Err(format!("it holds {len} bytes; {FORMAT}"));
        }
        for (byte, pair) in key.iter_mut().zip(digits.chunks_exact(2)) {
            match (hex_digit(pair[0]), hex_digit(pair[1])) {
                (Some(hi), Some(lo)) => *byte = hi << 4 | lo,
                _ => {
                    return Err(format!(
                        "its {} characters are not all hex digits; {FORMAT}",
                        2 * KEY_LEN
                    ));
                }
            }
        }
        Ok(Key(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";

    fn expected() -> [u8; KEY_LEN] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn raw_and_hex_forms_decode_to_the_same_key() {
        let raw = expected();
        assert_eq!(Key::parse(&raw).map(|k| k.bytes()), Ok(expected()));
        for ending in ["", "\n", "\r\n"] {
            let text = format!("{HEX}{ending}");
            assert_eq!(
                Key::parse(text.as_bytes()).map(|k| k.bytes()),
                Ok(expected()),
                "{ending:?}"
            );
        }
    }

    #[test]
    fn anything_else_is_refused_without_quoting_it() {
        let secret_ish = "zz".repeat(KEY_LEN);
        let cases: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![7; KEY_LEN - 1],
            vec![7; KEY_LEN + 1],
            HEX.as_bytes()[..62].to_vec(),
            format!("{HEX}\n\n").into_bytes(),
            format!(" {HEX}").into_bytes(),
            format!("{HEX}00").into_bytes(),
            secret_ish.clone().into_bytes(),
            vec![b'a'; 4096],
        ];
        for case in cases {
            let err = Key::parse(&case).map(|k| k.bytes()).expect_err("refused");
            assert!(!err.contains("zz") && !err.contains("0a0b"), "{err}");
        }
    }

    #[test]
    fn debug_hides_the_key() {
        let key = Key::parse(&[0xAB; KEY_LEN]).expect("key");
        let shown = format!("{key:?}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab"), "{shown}");
    }
}

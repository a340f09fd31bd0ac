//! The `CURRENT` file: which manifest is live.
//!
//! Layout (25 bytes for a six-digit number): the manifest's file name and a newline, then the
//! masked CRC-32C of those bytes as eight lowercase hex digits and a newline:
//!
//! ```text
//! MANIFEST-000007\n
//! 76e85d4d\n
//! ```
//!
//! It is replaced atomically ([`set_current`]): written to `CURRENT.tmp`, synced, renamed over
//! `CURRENT`, directory synced. So a crash leaves the old or the new content, never a mix; the
//! checksum is there to catch media damage and foreign writers, not torn writes.

#![deny(clippy::indexing_slicing)]

use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use strata_vfs::{AppendWrite, ErrorKind, FileKind, RandomRead, SyncMode, Vfs};

use crate::checksum;
use crate::error::{CorruptionKind, Error, IoOp, Result};
use crate::filenames::{self, CURRENT, CURRENT_TMP, FileName};

/// No valid `CURRENT` is longer than this (a 20-digit number gives 39 bytes); a longer file is
/// rejected before it is read.
const MAX_LEN: u64 = 64;

/// Width of the checksum line without its newline.
const CRC_HEX_LEN: usize = 8;

/// The bytes of a `CURRENT` naming manifest `file_no`.
pub fn encode_current(file_no: u64) -> Vec<u8> {
    let line = format!("{}\n", filenames::manifest(file_no));
    let crc = checksum::mask(checksum::crc32c(line.as_bytes()));
    format!("{line}{crc:08x}\n").into_bytes()
}

/// The manifest number a `CURRENT` names.
///
/// Errors: `Truncated` if the bytes do not have the two-line shape (a torn or foreign file),
/// `Checksum` if the checksum line does not match the name line, `BadMagic` if a checksummed
/// name line is not a manifest name.
pub fn decode_current(b: &[u8]) -> Result<u64, CorruptionKind> {
    let body = b.strip_suffix(b"\n").ok_or(CorruptionKind::Truncated)?;
    let split = body.len().checked_sub(CRC_HEX_LEN).ok_or(CorruptionKind::Truncated)?;
    let (line, hex) = body.split_at(split);
    if line.last() != Some(&b'\n') || !hex.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(CorruptionKind::Truncated);
    }
    let hex = core::str::from_utf8(hex).map_err(|_| CorruptionKind::Truncated)?;
    let stored = u32::from_str_radix(hex, 16).map_err(|_| CorruptionKind::Truncated)?;
    if stored != checksum::mask(checksum::crc32c(line)) {
        return Err(CorruptionKind::Checksum);
    }
    let name = line.strip_suffix(b"\n").and_then(|n| core::str::from_utf8(n).ok());
    match name.and_then(filenames::parse) {
        Some(FileName::Manifest(n)) => Ok(n),
        _ => Err(CorruptionKind::BadMagic),
    }
}

/// Reads `CURRENT`: `None` if it does not exist, else the manifest it names or why it does not
/// decode (see [`decode_current`]; an oversized file is `BadMagic`).
pub fn read_current<V: Vfs>(vfs: &V) -> Result<Option<Result<u64, CorruptionKind>>> {
    let file = match vfs.open(CURRENT, FileKind::Marker) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(IoOp::Open, CURRENT, e)),
    };
    let len = file.len().map_err(|e| Error::io(IoOp::Size, CURRENT, e))?;
    if len > MAX_LEN {
        return Ok(Some(Err(CorruptionKind::BadMagic)));
    }
    // At most MAX_LEN bytes, so the cast is lossless.
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(0, &mut buf).map_err(|e| Error::io(IoOp::Read, CURRENT, e))?;
    Ok(Some(decode_current(&buf)))
}

/// Makes `CURRENT` name manifest `file_no`, durably: a stale `CURRENT.tmp` is removed, the new
/// content written to `CURRENT.tmp` and synced, the directory synced (so the manifest's own
/// directory entry is durable before anything names it), `CURRENT.tmp` renamed over
/// `CURRENT`, and the directory synced again. When this returns `Ok` the switch survives a
/// crash; on error, `CURRENT` names either manifest.
pub fn set_current<V: Vfs>(vfs: &V, file_no: u64) -> Result<()> {
    let exists = vfs.exists(CURRENT_TMP).map_err(|e| Error::io(IoOp::Size, CURRENT_TMP, e))?;
    if exists {
        vfs.remove(CURRENT_TMP).map_err(|e| Error::io(IoOp::Remove, CURRENT_TMP, e))?;
    }
    // FileKind::Marker, not Temp: the file becomes CURRENT by rename, and a wrapper that treats
    // kinds differently (encryption) must read it back the way it was written.
    let mut tmp = vfs
        .create(CURRENT_TMP, FileKind::Marker)
        .map_err(|e| Error::io(IoOp::Create, CURRENT_TMP, e))?;
    tmp.append(&encode_current(file_no)).map_err(|e| Error::io(IoOp::Append, CURRENT_TMP, e))?;
    tmp.sync(SyncMode::Data).map_err(|e| Error::io(IoOp::Sync, CURRENT_TMP, e))?;
    drop(tmp);
    sync_dir(vfs)?;
    vfs.rename(CURRENT_TMP, CURRENT).map_err(|e| Error::io(IoOp::Rename, CURRENT, e))?;
    sync_dir(vfs)
}

fn sync_dir<V: Vfs>(vfs: &V) -> Result<()> {
    vfs.sync_dir().map_err(|e| Error::io(IoOp::SyncDir, "", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of docs/format/manifest.md.
    #[test]
    fn worked_example_bytes() {
        let b = encode_current(7);
        assert_eq!(b, b"MANIFEST-000007\n76e85d4d\n");
        assert_eq!(decode_current(&b), Ok(7));
    }

    #[test]
    fn round_trips_wide_numbers() {
        for n in [1, 999_999, 1_000_000, u64::MAX] {
            let b = encode_current(n);
            assert!(b.len() as u64 <= MAX_LEN);
            assert_eq!(decode_current(&b), Ok(n));
        }
    }

    #[test]
    fn every_prefix_is_torn_and_every_flip_is_caught() {
        let b = encode_current(42);
        for cut in 0..b.len() {
            assert_eq!(
                decode_current(b.get(..cut).unwrap_or_default()),
                Err(CorruptionKind::Truncated)
            );
        }
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut bad = b.clone();
                if let Some(x) = bad.get_mut(i) {
                    *x ^= 1 << bit;
                }
                assert!(decode_current(&bad).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn a_checksummed_foreign_name_is_bad_magic() {
        let line = b"000007.wal\n";
        let crc = checksum::mask(checksum::crc32c(line));
        let mut b = line.to_vec();
        b.extend_from_slice(format!("{crc:08x}\n").as_bytes());
        assert_eq!(decode_current(&b), Err(CorruptionKind::BadMagic));
    }
}

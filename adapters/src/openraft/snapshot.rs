//! Snapshots: the bytes of a state machine at one applied log id (docs/format/openraft.md),
//! and [`SnapshotBuilder`], which makes them from one consistent Strata read.
//!
//! ```text
//! magic    8 bytes  "STRSNAP\0"
//! version  u32 LE   1
//! count    u64 LE   number of records
//! record   count times: key_len u32 LE, key, value_len u32 LE, value   (user keys, ascending)
//! crc      u32 LE   CRC-32C (Castagnoli) of every byte before it
//! ```
//!
//! Keys are user keys, without the layout's prefix, so a snapshot installs under any prefix.
//! The applied log id and membership travel beside the bytes in openraft's `SnapshotMeta`.
//! The decoder checks the checksum first and every length against the bytes left before
//! using it, so bad bytes give an error and never a panic or a large allocation.

use std::io::Cursor;
use std::marker::PhantomData;

use crc::{CRC_32_ISCSI, Crc};
use openraft::{
    Entry, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, RaftTypeConfig, Snapshot, SnapshotMeta,
    StorageError,
};
use strata::{Durability, Mode, Tree};

use super::codec::{decode, encode};
use super::errors::{Error, Result};
use super::keys::KeyLayout;
use super::state_machine::{AppliedState, applied_state_in};

/// The first eight bytes of every snapshot.
pub const SNAPSHOT_MAGIC: &[u8; 8] = b"STRSNAP\0";
/// The snapshot format version this build writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 8;
const CRC_LEN: usize = 4;

static CRC32C: Crc<u32> = Crc::<u32>::new(&CRC_32_ISCSI);

/// Encodes `records` (user key, value; ascending keys) as snapshot bytes.
pub fn encode_snapshot<'a>(records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + CRC_LEN);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut count = 0u64;
    for (key, value) in records {
        for part in [key, value] {
            // Strata bounds keys to 64 KiB and values to 256 MiB, well inside a u32.
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(part);
        }
        count += 1;
    }
    out[12..HEADER_LEN].copy_from_slice(&count.to_le_bytes());
    let crc = CRC32C.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks `bytes` as a snapshot and returns its records in order.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Vec<(&[u8], &[u8])>> {
    let bad = |offset: usize, reason| Error::Snapshot { offset: offset as u64, reason };
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(bad(0, "shorter than a header and a checksum"));
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    if body.get(..8) != Some(SNAPSHOT_MAGIC.as_slice()) {
        return Err(bad(0, "bad magic"));
    }
    if u32_at(body, 8) != Some(SNAPSHOT_VERSION) {
        return Err(bad(8, "unsupported version"));
    }
    if Some(CRC32C.checksum(body)) != u32_at(crc, 0) {
        return Err(bad(body.len(), "checksum mismatch"));
    }
    let count = u64_at(body, 12).ok_or(bad(12, "truncated header"))?;
    let mut records = Vec::new();
    let mut pos = HEADER_LEN;
    for _ in 0..count {
        let mut parts = [&[][..]; 2];
        for part in &mut parts {
            let len = u32_at(body, pos).ok_or(bad(pos, "truncated length"))? as usize;
            let start = pos + 4;
            *part = body
                .get(start..start.saturating_add(len))
                .ok_or(bad(pos, "length runs past the end"))?;
            pos = start + len;
        }
        records.push((parts[0], parts[1]));
    }
    if pos != body.len() {
        return Err(bad(pos, "bytes after the last record"));
    }
    Ok(records)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

type NodeIdOf<C> = <C as RaftTypeConfig>::NodeId;
type MetaOf<C> = SnapshotMeta<<C as RaftTypeConfig>::NodeId, <C as RaftTypeConfig>::Node>;

/// Reads the state machine at one Strata snapshot: its applied log id and membership, and
/// its data encoded as snapshot bytes.
fn read_state<C: RaftTypeConfig>(
    tree: &Tree,
    layout: &KeyLayout,
) -> Result<(AppliedState<C>, Vec<u8>)> {
    let txn = tree.begin_with_mode(Mode::ReadOnly)?;
    let applied = applied_state_in::<C>(&txn, layout)?;
    let (start, end) = layout.data_range();
    let pairs: Vec<_> = txn.range(&start, &end, None)?.collect::<strata::Result<_>>()?;
    let records = pairs.iter().filter_map(|(k, v)| Some((layout.user_key(k)?, v.as_ref())));
    Ok((applied, encode_snapshot(records)))
}

/// Builds snapshots of a [`StateMachine`](super::StateMachine)'s tree.
pub struct SnapshotBuilder<C> {
    pub(crate) tree: Tree,
    pub(crate) layout: KeyLayout,
    pub(crate) _config: PhantomData<fn() -> C>,
}

impl<C> std::fmt::Debug for SnapshotBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotBuilder").field("layout", &self.layout).finish()
    }
}

impl<C> SnapshotBuilder<C>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
{
    async fn build(&self) -> Result<Snapshot<C>> {
        let ((last_log_id, last_membership), data) = read_state::<C>(&self.tree, &self.layout)?;
        let snapshot_id = match &last_log_id {
            Some(id) => format!("{}-{}-{}", id.leader_id, id.index, unique_suffix()),
            None => format!("none-{}", unique_suffix()),
        };
        let meta = SnapshotMeta { last_log_id, last_membership, snapshot_id };
        self.keep_unless_older(&meta, &data).await?;
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }

    /// Stores `meta` and `data` as the current snapshot, unless a snapshot of a later log id
    /// was stored meanwhile (an install that raced this build): then that one stays current.
    async fn keep_unless_older(&self, meta: &MetaOf<C>, data: &[u8]) -> Result<()> {
        let mut txn = self.tree.begin()?;
        let meta_key = self.layout.snapshot_meta();
        if let Some(stored) = txn.get(&meta_key)? {
            let stored: MetaOf<C> = decode(&meta_key, &stored)?;
            if stored.last_log_id > meta.last_log_id {
                return Ok(());
            }
        }
        txn.set(&meta_key, &encode(meta)?)?;
        txn.set(&self.layout.snapshot_data(), data)?;
        txn.set_durability(Durability::Immediate);
        match txn.commit().await {
            // A concurrent install wrote the snapshot keys first: it is newer, keep it.
            Err(e) if e.is_conflict() => Ok(()),
            other => Ok(other?),
        }
    }
}

/// A suffix that makes snapshot ids unique within this process and across restarts.
fn unique_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl<C> RaftSnapshotBuilder<C> for SnapshotBuilder<C>
where
    C: RaftTypeConfig<Entry = Entry<C>, SnapshotData = Cursor<Vec<u8>>>,
{
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<NodeIdOf<C>>> {
        self.build()
            .await
            .map_err(|e| e.into_storage(ErrorSubject::Snapshot(None), ErrorVerb::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_truncation_is_an_error() {
        let records: Vec<(&[u8], &[u8])> = vec![(b"a", b"1"), (b"bb", b""), (b"c", b"333")];
        let bytes = encode_snapshot(records.iter().copied());
        assert_eq!(decode_snapshot(&bytes).expect("decode"), records);
        for len in 0..bytes.len() {
            assert!(decode_snapshot(&bytes[..len]).is_err(), "truncated to {len} decoded");
        }
        for i in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[i] ^= 0x40;
            assert!(decode_snapshot(&flipped).is_err(), "flip at {i} decoded");
        }
    }

    #[test]
    fn a_huge_count_or_length_allocates_nothing() {
        let mut bytes = encode_snapshot([]);
        bytes.truncate(bytes.len() - CRC_LEN);
        bytes[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        let crc = CRC32C.checksum(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let err = decode_snapshot(&bytes).expect_err("decoded");
        assert!(matches!(err, Error::Snapshot { offset: 20, .. }), "{err}");
    }
}

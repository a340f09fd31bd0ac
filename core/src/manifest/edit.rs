//! The bytes of a manifest record: the encoding of a [`VersionEdit`] (the type itself lives in
//! the version layer, `crate::version::edit`).
//!
//! An edit is a sequence of tagged fields; `docs/format/manifest.md` is the normative
//! description (and its worked example is asserted by a test below). Decoding never panics,
//! never allocates beyond what the input's bytes pay for, and rejects unknown tags.

#![deny(clippy::indexing_slicing)]

use alloc::vec::Vec;
use bytes::Bytes;

use crate::codec::{self, DecodeError, Decoder};
use crate::error::CorruptionKind;
use crate::key::{InternalKey, MAX_SEQ, ValueKind};
use crate::version::{FileMeta, MAX_LEVELS, VersionEdit, VlogEdit};

/// Field tags. Values are frozen: they appear in files. 0 is reserved so a zeroed region never
/// decodes as a field.
mod tag {
    pub const LOG_NUMBER: u8 = 1;
    pub const NEXT_FILE_NUMBER: u8 = 2;
    pub const LAST_SEQ: u8 = 3;
    pub const LAST_TS: u8 = 4;
    pub const LEVEL_COUNT: u8 = 5;
    pub const COMPACTION_POINTER: u8 = 6;
    pub const DELETED_FILE: u8 = 7;
    pub const ADDED_FILE: u8 = 8;
    /// The WAL segment a clean close synced last, and its synced length.
    pub const WAL_CLOSED: u8 = 9;
    /// Whether the database keeps every version (versioning): 0 or 1.
    pub const VERSIONING: u8 = 10;
    /// A value log file was created: id, file number.
    pub const VLOG_ADD: u8 = 11;
    /// A value log file was sealed: id, length of its valid records.
    pub const VLOG_SEAL: u8 = 12;
    /// Bytes of a value log file found dead: id, bytes (added to its count).
    pub const VLOG_DISCARD: u8 = 13;
    /// A value log file was deleted: id.
    pub const VLOG_DELETE: u8 = 14;
}

/// Bytes of an encoded internal key after the user key: timestamp and trailer.
const KEY_SUFFIX_LEN: usize = 16;

impl VersionEdit {
    /// Appends the encoded edit to `out`: the scalars present in tag order, then the
    /// compaction pointers, the deleted files, `VERSIONING`, `WAL_CLOSED`, the value log edits
    /// and the added files, each list in vector order (`docs/format/manifest.md`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let scalars = [
            (tag::LOG_NUMBER, self.log_number),
            (tag::NEXT_FILE_NUMBER, self.next_file_number),
            (tag::LAST_SEQ, self.last_seq),
            (tag::LAST_TS, self.last_ts),
            (tag::LEVEL_COUNT, self.level_count.map(u64::from)),
        ];
        for (t, v) in scalars {
            if let Some(v) = v {
                out.push(t);
                codec::put_varint(out, v);
            }
        }
        for (level, key) in &self.compaction_pointers {
            out.push(tag::COMPACTION_POINTER);
            out.push(*level);
            put_key(out, key);
        }
        for &(level, file_no) in &self.deleted {
            out.push(tag::DELETED_FILE);
            out.push(level);
            codec::put_varint(out, file_no);
        }
        if let Some(v) = self.versioning {
            out.push(tag::VERSIONING);
            out.push(u8::from(v));
        }
        if let Some((segment, len)) = self.wal_closed {
            out.push(tag::WAL_CLOSED);
            codec::put_varint(out, segment);
            codec::put_varint(out, len);
        }
        for e in &self.vlog {
            match *e {
                VlogEdit::Add { id, file_no } => {
                    out.push(tag::VLOG_ADD);
                    codec::put_varint(out, id);
                    codec::put_varint(out, file_no);
                }
                VlogEdit::Seal { id, len } => {
                    out.push(tag::VLOG_SEAL);
                    codec::put_varint(out, id);
                    codec::put_varint(out, len);
                }
                VlogEdit::Discard { id, bytes } => {
                    out.push(tag::VLOG_DISCARD);
                    codec::put_varint(out, id);
                    codec::put_varint(out, bytes);
                }
                VlogEdit::Delete { id } => {
                    out.push(tag::VLOG_DELETE);
                    codec::put_varint(out, id);
                }
            }
        }
        for (level, meta) in &self.added {
            out.push(tag::ADDED_FILE);
            out.push(*level);
            codec::put_varint(out, meta.file_no);
            codec::put_varint(out, meta.size);
            put_key(out, &meta.smallest);
            put_key(out, &meta.largest);
            for v in [meta.min_seq, meta.max_seq, meta.min_ts, meta.max_ts, meta.entries] {
                codec::put_varint(out, v);
            }
        }
    }

    /// The encoded edit as a new vector.
    pub fn encode_to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes one edit; every byte of `b` must belong to it.
    ///
    /// Errors: `UnknownTag(t)` for a tag (or a key's value kind) this build does not know,
    /// `Truncated` for a field cut short or a malformed varint, `BadChain` for a scalar field
    /// given twice, a level count of 0 or above [`MAX_LEVELS`], or a file whose keys, sequence
    /// numbers or timestamps are out of order.
    pub fn decode(b: &[u8]) -> Result<Self, CorruptionKind> {
        let mut d = Decoder::new(b);
        let mut e = VersionEdit::default();
        // Every iteration consumes at least the tag byte, so this ends.
        while !d.is_empty() {
            let t = d.u8().map_err(kind)?;
            match t {
                tag::LOG_NUMBER => set_once(&mut e.log_number, d.varint().map_err(kind)?)?,
                tag::NEXT_FILE_NUMBER => {
                    set_once(&mut e.next_file_number, d.varint().map_err(kind)?)?;
                }
                tag::LAST_SEQ => set_once(&mut e.last_seq, d.varint().map_err(kind)?)?,
                tag::LAST_TS => set_once(&mut e.last_ts, d.varint().map_err(kind)?)?,
                tag::LEVEL_COUNT => {
                    let n = d.varint().map_err(kind)?;
                    if n == 0 || n > MAX_LEVELS as u64 || e.level_count.is_some() {
                        return Err(CorruptionKind::BadChain);
                    }
                    // At most MAX_LEVELS, so the cast is lossless.
                    e.level_count = Some(n as u32);
                }
                tag::COMPACTION_POINTER => {
                    let level = d.u8().map_err(kind)?;
                    e.compaction_pointers.push((level, get_key(&mut d)?));
                }
                tag::DELETED_FILE => {
                    let level = d.u8().map_err(kind)?;
                    e.deleted.push((level, d.varint().map_err(kind)?));
                }
                tag::ADDED_FILE => {
                    let level = d.u8().map_err(kind)?;
                    e.added.push((level, get_meta(&mut d)?));
                }
                tag::VERSIONING => {
                    let v = match d.u8().map_err(kind)? {
                        0 => false,
                        1 => true,
                        _ => return Err(CorruptionKind::BadChain),
                    };
                    if e.versioning.replace(v).is_some() {
                        return Err(CorruptionKind::BadChain);
                    }
                }
                tag::WAL_CLOSED => {
                    let segment = d.varint().map_err(kind)?;
                    let len = d.varint().map_err(kind)?;
                    if e.wal_closed.replace((segment, len)).is_some() {
                        return Err(CorruptionKind::BadChain);
                    }
                }
                tag::VLOG_ADD => {
                    let id = d.varint().map_err(kind)?;
                    e.vlog.push(VlogEdit::Add { id, file_no: d.varint().map_err(kind)? });
                }
                tag::VLOG_SEAL => {
                    let id = d.varint().map_err(kind)?;
                    e.vlog.push(VlogEdit::Seal { id, len: d.varint().map_err(kind)? });
                }
                tag::VLOG_DISCARD => {
                    let id = d.varint().map_err(kind)?;
                    e.vlog.push(VlogEdit::Discard { id, bytes: d.varint().map_err(kind)? });
                }
                tag::VLOG_DELETE => e.vlog.push(VlogEdit::Delete { id: d.varint().map_err(kind)? }),
                other => return Err(CorruptionKind::UnknownTag(other)),
            }
        }
        Ok(e)
    }
}

fn kind(e: DecodeError) -> CorruptionKind {
    match e {
        DecodeError::Truncated | DecodeError::VarintOverflow => CorruptionKind::Truncated,
    }
}

fn set_once(slot: &mut Option<u64>, v: u64) -> Result<(), CorruptionKind> {
    if slot.replace(v).is_some() { Err(CorruptionKind::BadChain) } else { Ok(()) }
}

/// Appends an internal key: varint length, user key, timestamp (u64 LE), then
/// `seq << 8 | kind` (u64 LE).
pub(crate) fn put_key(out: &mut Vec<u8>, key: &InternalKey) {
    debug_assert!(key.seq <= MAX_SEQ, "sequence number {} exceeds 56 bits", key.seq);
    codec::put_varint(out, (key.user_key.len() + KEY_SUFFIX_LEN) as u64);
    out.extend_from_slice(&key.user_key);
    codec::put_u64(out, key.ts);
    codec::put_u64(out, (key.seq << 8) | u64::from(key.kind as u8));
}

/// Reads a key written by [`put_key`].
pub(crate) fn get_key(d: &mut Decoder<'_>) -> Result<InternalKey, CorruptionKind> {
    let body = d.length_prefixed().map_err(kind)?;
    let split = body.len().checked_sub(KEY_SUFFIX_LEN).ok_or(CorruptionKind::Truncated)?;
    let (user_key, suffix) = body.split_at(split);
    let mut s = Decoder::new(suffix);
    let ts = s.u64().map_err(kind)?;
    let trailer = s.u64().map_err(kind)?;
    // The low byte is the kind; truncation to it is the point.
    let kind_byte = trailer as u8;
    let value_kind = ValueKind::from_u8(kind_byte).ok_or(CorruptionKind::UnknownTag(kind_byte))?;
    Ok(InternalKey::new(Bytes::copy_from_slice(user_key), ts, trailer >> 8, value_kind))
}

fn get_meta(d: &mut Decoder<'_>) -> Result<FileMeta, CorruptionKind> {
    let file_no = d.varint().map_err(kind)?;
    let size = d.varint().map_err(kind)?;
    let smallest = get_key(d)?;
    let largest = get_key(d)?;
    let mut v = [0u64; 5];
    for slot in &mut v {
        *slot = d.varint().map_err(kind)?;
    }
    let [min_seq, max_seq, min_ts, max_ts, entries] = v;
    let meta =
        FileMeta { file_no, size, smallest, largest, min_seq, max_seq, min_ts, max_ts, entries };
    meta.check()?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use alloc::vec;
    use std::println;

    use super::*;
    use crate::version::testkit::{Rng, key, meta};

    /// The worked example of docs/format/manifest.md.
    pub(crate) fn example_edit() -> VersionEdit {
        VersionEdit {
            log_number: Some(5),
            next_file_number: Some(9),
            last_seq: Some(300),
            last_ts: Some(1000),
            wal_closed: None,
            versioning: None,
            vlog: Vec::new(),
            level_count: Some(7),
            compaction_pointers: vec![(1, key(b"m", 40, 3, ValueKind::Set))],
            deleted: vec![(0, 4)],
            added: vec![(
                1,
                FileMeta {
                    file_no: 8,
                    size: 2048,
                    smallest: key(b"a", 20, 2, ValueKind::Set),
                    largest: key(b"c", 10, 1, ValueKind::Delete),
                    min_seq: 1,
                    max_seq: 2,
                    min_ts: 10,
                    max_ts: 20,
                    entries: 2,
                },
            )],
        }
    }

    #[test]
    fn worked_example_bytes() {
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x01, 0x05,                                     // log_number 5
            0x02, 0x09,                                     // next_file_number 9
            0x03, 0xac, 0x02,                               // last_seq 300
            0x04, 0xe8, 0x07,                               // last_ts 1000
            0x05, 0x07,                                     // level_count 7
            0x06, 0x01,                                     // compaction pointer, level 1
            0x11, 0x6d,                                     //   key length 17, "m"
            0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   ts 40
            0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //   seq 3 << 8 | SET
            0x07, 0x00, 0x04,                               // deleted: level 0, file 4
            0x08, 0x01,                                     // added, level 1
            0x08, 0x80, 0x10,                               //   file 8, size 2048
            0x11, 0x61,                                     //   smallest: length 17, "a"
            0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //     ts 20
            0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //     seq 2, SET
            0x11, 0x63,                                     //   largest: length 17, "c"
            0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //     ts 10
            0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //     seq 1, DELETE
            0x01, 0x02, 0x0a, 0x14, 0x02,                   //   seqs 1..2, ts 10..20, 2 entries
        ];
        let e = example_edit();
        assert_eq!(e.encode_to_vec(), expected);
        assert_eq!(VersionEdit::decode(expected), Ok(e));
        assert_eq!(expected.len(), 81);
    }

    /// The value log example of docs/format/manifest.md.
    #[test]
    fn vlog_edit_bytes() {
        let e = VersionEdit {
            vlog: vec![
                VlogEdit::Seal { id: 7, len: 300 },
                VlogEdit::Add { id: 12, file_no: 12 },
                VlogEdit::Discard { id: 7, bytes: 130 },
                VlogEdit::Delete { id: 3 },
            ],
            ..VersionEdit::default()
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x0c, 0x07, 0xac, 0x02, // seal file 7 at 300 bytes
            0x0b, 0x0c, 0x0c,       // add file 12, stored as number 12
            0x0d, 0x07, 0x82, 0x01, // 130 more dead bytes in file 7
            0x0e, 0x03,             // file 3 deleted
        ];
        assert_eq!(e.encode_to_vec(), expected);
        assert_eq!(VersionEdit::decode(expected), Ok(e));
    }

    #[test]
    fn empty_edit_is_empty_bytes() {
        assert!(VersionEdit::default().encode_to_vec().is_empty());
        assert_eq!(VersionEdit::decode(&[]), Ok(VersionEdit::default()));
    }

    fn random_edit(rng: &mut Rng) -> VersionEdit {
        let opt = |rng: &mut Rng| rng.chance(2).then(|| rng.wide());
        let mut e = VersionEdit {
            log_number: opt(rng),
            next_file_number: opt(rng),
            last_seq: rng.chance(2).then(|| rng.below(MAX_SEQ + 1)),
            last_ts: opt(rng),
            level_count: rng.chance(2).then(|| rng.below(MAX_LEVELS as u64) as u32 + 1),
            wal_closed: rng.chance(2).then(|| (rng.wide(), rng.wide())),
            versioning: rng.chance(2).then(|| rng.chance(2)),
            ..VersionEdit::default()
        };
        for _ in 0..rng.below(3) {
            let k = rng.ikey();
            e.compaction_pointers.push((rng.below(8) as u8, k));
        }
        for _ in 0..rng.below(4) {
            e.deleted.push((rng.below(256) as u8, rng.wide()));
        }
        for _ in 0..rng.below(4) {
            let m = rng.meta();
            e.added.push((rng.below(8) as u8, m));
        }
        for _ in 0..rng.below(4) {
            let id = rng.wide();
            e.vlog.push(match rng.below(4) {
                0 => VlogEdit::Add { id, file_no: rng.wide() },
                1 => VlogEdit::Seal { id, len: rng.wide() },
                2 => VlogEdit::Discard { id, bytes: rng.wide() },
                _ => VlogEdit::Delete { id },
            });
        }
        e
    }

    #[test]
    fn random_edits_round_trip() {
        let seed = Rng::seed_from_env();
        println!("seed {seed}");
        let mut rng = Rng::new(seed);
        for _ in 0..2000 {
            let e = random_edit(&mut rng);
            let bytes = e.encode_to_vec();
            assert_eq!(VersionEdit::decode(&bytes), Ok(e));
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = example_edit().encode_to_vec();
        // Cuts at a field boundary decode to a shorter edit; every other cut must fail. None
        // may panic, and none may decode to the full edit.
        let boundaries = [0, 2, 4, 7, 10, 12, 32, 35];
        for cut in 0..bytes.len() {
            let r = VersionEdit::decode(bytes.get(..cut).unwrap_or_default());
            if boundaries.contains(&cut) {
                assert!(r.is_ok(), "cut {cut}");
            } else {
                assert_eq!(r, Err(CorruptionKind::Truncated), "cut {cut}");
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let seed = Rng::seed_from_env();
        println!("seed {seed}");
        let mut rng = Rng::new(seed);
        let valid = example_edit().encode_to_vec();
        for i in 0..20_000 {
            let mut b: Vec<u8> = if i % 2 == 0 {
                (0..rng.below(64)).map(|_| rng.below(256) as u8).collect()
            } else {
                valid.clone()
            };
            // Mutate a few bytes of the valid edit (or the random one).
            for _ in 0..rng.below(4) + 1 {
                if let Some(len) = core::num::NonZeroUsize::new(b.len()) {
                    let at = rng.below(len.get() as u64) as usize;
                    if let Some(x) = b.get_mut(at) {
                        *x = rng.below(256) as u8;
                    }
                }
            }
            if let Ok(e) = VersionEdit::decode(&b) {
                // Whatever decodes re-encodes to something that decodes the same.
                assert_eq!(VersionEdit::decode(&e.encode_to_vec()), Ok(e));
            }
        }
    }

    #[test]
    fn rejects_unknown_tags_bad_kinds_duplicates_and_inverted_files() {
        assert_eq!(VersionEdit::decode(&[0]), Err(CorruptionKind::UnknownTag(0)));
        assert_eq!(VersionEdit::decode(&[15, 1]), Err(CorruptionKind::UnknownTag(15)));
        assert_eq!(
            VersionEdit::decode(&[10, 2]),
            Err(CorruptionKind::BadChain),
            "a flag is 0 or 1"
        );
        assert_eq!(VersionEdit::decode(&[10, 1]).map(|e| e.versioning), Ok(Some(true)));
        assert_eq!(
            VersionEdit::decode(&[9, 1]),
            Err(CorruptionKind::Truncated),
            "WAL_CLOSED needs two varints"
        );
        assert_eq!(
            VersionEdit::decode(&[9, 1, 2, 9, 1, 2]),
            Err(CorruptionKind::BadChain),
            "given twice"
        );
        assert_eq!(VersionEdit::decode(&[9, 7, 40]).map(|e| e.wal_closed), Ok(Some((7, 40))));
        assert_eq!(VersionEdit::decode(&[1, 1, 1, 2]), Err(CorruptionKind::BadChain));
        assert_eq!(VersionEdit::decode(&[5, 0]), Err(CorruptionKind::BadChain));
        assert_eq!(VersionEdit::decode(&[5, 0x81, 0x02]), Err(CorruptionKind::BadChain));
        assert_eq!(VersionEdit::decode(&[5, 0x80, 0x02]).map(|e| e.level_count), Ok(Some(256)));
        assert_eq!(VersionEdit::decode(&[5, 1, 5, 1]), Err(CorruptionKind::BadChain));
        // A pointer whose key carries value kind 7.
        let mut b = vec![6, 0, 16];
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&[7, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(VersionEdit::decode(&b), Err(CorruptionKind::UnknownTag(7)));
        // A key length below the 16-byte suffix.
        assert_eq!(VersionEdit::decode(&[6, 0, 3, 1, 2, 3]), Err(CorruptionKind::Truncated));
        // Varint overflow.
        let mut b = vec![1];
        b.extend_from_slice(&[0xff; 11]);
        assert_eq!(VersionEdit::decode(&b), Err(CorruptionKind::Truncated));
        // Files with inverted ranges.
        let good = meta(3, b"a", b"b", 10);
        let mut bad = [good.clone(), good.clone(), good.clone()];
        bad[0].smallest = good.largest.clone();
        bad[0].largest = good.smallest.clone();
        bad[1].min_seq = good.max_seq + 1;
        bad[2].min_ts = good.max_ts + 1;
        for m in bad {
            let e = VersionEdit { added: vec![(0, m)], ..VersionEdit::default() };
            assert_eq!(VersionEdit::decode(&e.encode_to_vec()), Err(CorruptionKind::BadChain));
        }
    }

    #[test]
    fn snapshot_detection() {
        let mut e = example_edit();
        assert!(!e.is_snapshot(), "has a deletion");
        e.deleted.clear();
        assert!(e.is_snapshot());
        e.last_ts = None;
        assert!(!e.is_snapshot());
    }
}

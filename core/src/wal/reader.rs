//! Recovery: replaying a chain of log segments.
//!
//! Segments are read block by block with positional reads, so memory stays at one block plus
//! the record being assembled, and that record never grows beyond bytes actually read and
//! checksummed. Every segment but the last is read exactly up to the bound its successor's
//! header gives; the last is read to the end of the file, and only there may a torn tail be
//! forgiven. `docs/format/wal.md` explains why.

#![deny(clippy::indexing_slicing)]

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use strata_vfs::{FileKind, RandomRead, Vfs};

use super::format::{
    BLOCK_SIZE, FRAGMENT_HEADER_LEN, FragmentType, SEGMENT_HEADER_LEN, SegmentHeader,
    fragment_checksum,
};
use crate::codec::Decoder;
use crate::error::{CorruptionKind, Error, IoOp, Result};

/// How recovery treats a damaged log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Forgive a torn tail of the last segment: bad or incomplete bytes after its last good
    /// record, provided no block boundary after them holds a valid fragment (which would mean
    /// damage in the middle of the log, not a write cut short). Everything else is corruption.
    #[default]
    TolerateTornTail,
    /// Forgive nothing: the last segment must end with a complete record (or a record followed
    /// by zero padding to a block end). For logs known to have been closed cleanly.
    AbsoluteConsistency,
    /// Stop at the first bad fragment anywhere, without error, and recover the prefix before
    /// it; later segments are reported for removal. Loses acknowledged writes after the damage
    /// but never breaks order. Header and chain errors still fail (see [`replay`]).
    PointInTime,
}

/// Where a record starts in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordPos {
    /// The segment's number.
    pub segment: u64,
    /// Absolute file offset of the record's first fragment.
    pub offset: u64,
}

/// What [`replay`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalReplay {
    /// Records delivered to the callback.
    pub records: u64,
    /// The last segment whose records were used and the end offset of its last good record
    /// (the header length if it had none): the `prev_segment` and `prev_valid_len` of the next
    /// segment's header. `None` when no segment had a usable header.
    pub last: Option<(u64, u64)>,
    /// Segments after `last` that recovery did not use and that must be removed (durably:
    /// remove, then `sync_dir`) *before* the next segment is created, or the next recovery
    /// would find them in the chain: the segments after a [`RecoveryMode::PointInTime`] stop,
    /// and a last segment ignored because its header was torn.
    pub discarded_segments: Vec<u64>,
    /// For logging: bytes dropped after the last good record of the `last` segment (up to its
    /// bound or end of file), plus the full length of every discarded segment.
    pub ignored_tail_bytes: u64,
}

/// Replays `segments` (strictly ascending numbers; `name_of(n)` names segment `n`'s file),
/// calling `on_record(payload, pos)` for each complete record, in log order. An error from the
/// callback aborts the replay and is returned unchanged.
///
/// Every header must decode (`BadMagic`, `UnsupportedVersion`, `Checksum`, or `Truncated` for
/// a file shorter than a header), carry its file's number, and link to its predecessor:
/// `prev_segment` equal to the previous number in `segments`, `prev_valid_len` between the
/// header length and that file's size (`BadChain` otherwise). These fail in every mode, with
/// one exception: in [`TolerateTornTail`](RecoveryMode::TolerateTornTail) and
/// [`PointInTime`](RecoveryMode::PointInTime) the last segment's header may be torn (short,
/// bad magic, bad checksum or version 0) if the segment holds no valid fragment at offset 40
/// or at a block boundary (`PointInTime` does not look); it is then ignored and listed in
/// `discarded_segments`, and the segment before it is read to its end as the last one. A
/// segment may end in a zero tail (`docs/format/wal.md`), which is not damage in any mode.
///
/// Record damage is reported as [`Error::Corruption`] with the offset of the first bad
/// fragment (or of an incomplete record's first fragment), following [`RecoveryMode`].
pub fn replay<V: Vfs>(
    vfs: &V,
    segments: &[u64],
    name_of: impl Fn(u64) -> String,
    mode: RecoveryMode,
    on_record: impl FnMut(&[u8], RecordPos) -> Result<()>,
) -> Result<WalReplay> {
    replay_bounded(vfs, segments, name_of, mode, None, on_record)
}

/// Checks a clean close's record of the last segment, `len`, against the segment itself.
///
/// A clean close syncs the segment and records its length, and nothing is ever appended to a
/// segment after that (the next open starts a new one). So the file holds exactly `len` bytes,
/// followed by nothing but the writer's reserved space (`zero_tail`: every byte after `len`
/// is zero): a length inside the segment header would underflow the replay, a shorter one
/// would silently drop the records after it, and a longer one names bytes that are not there.
/// Each is `Corruption` naming the segment. (That `len` falls on a record boundary is checked
/// by the replay itself, which reads the segment to exactly `len`.)
fn check_clean_close(seg: &Checked, len: u64, zero_tail: bool) -> Result<()> {
    if len < SEGMENT_HEADER_LEN as u64 {
        return Err(Error::corruption(&seg.name, 0, CorruptionKind::BadChain));
    }
    if len > seg.len {
        // The file is shorter than what a clean close synced.
        return Err(Error::corruption(&seg.name, seg.len, CorruptionKind::Truncated));
    }
    if len < seg.len && !zero_tail {
        // Bytes after the synced end: the record understates the segment.
        return Err(Error::corruption(&seg.name, len, CorruptionKind::BadChain));
    }
    Ok(())
}

/// [`replay`], where `closed = Some((segment, len))` says a clean close synced the last
/// segment at exactly `len` bytes: if that segment is the last one, it is read to exactly that
/// bound like every earlier segment, so damage inside it is corruption, never a torn tail.
pub fn replay_bounded<V: Vfs>(
    vfs: &V,
    segments: &[u64],
    name_of: impl Fn(u64) -> String,
    mode: RecoveryMode,
    closed: Option<(u64, u64)>,
    mut on_record: impl FnMut(&[u8], RecordPos) -> Result<()>,
) -> Result<WalReplay> {
    if segments.iter().zip(segments.iter().skip(1)).any(|(a, b)| a >= b) {
        return Err(Error::invalid("wal segments", "must be strictly ascending"));
    }
    let mut scan = Scan { buf: vec![0; BLOCK_SIZE], asm: Assembly::default() };
    let Headers { chain, torn } = check_headers(vfs, segments, &name_of, mode, &mut scan.buf)?;
    let mut out =
        WalReplay { records: 0, last: None, discarded_segments: Vec::new(), ignored_tail_bytes: 0 };
    for (i, seg) in chain.iter().enumerate() {
        let next = chain.get(i + 1);
        let closed_len =
            closed.filter(|&(n, _)| next.is_none() && n == seg.number).map(|(_, len)| len);
        let file = open(vfs, &seg.name)?;
        if let Some(len) = closed_len {
            // Bytes after the synced end are allowed only as a zero tail (reserved space).
            let zero_tail = len < seg.len
                && len >= SEGMENT_HEADER_LEN as u64
                && all_zeros(&file, &seg.name, len, seg.len, &mut scan.buf)?;
            check_clean_close(seg, len, zero_tail)?;
        }
        let limit = next.map_or(closed_len.unwrap_or(seg.len), |n| n.header.prev_valid_len);
        // A bound (the next header's, or a clean close's) says records were synced up to it:
        // zeros before it are lost records, not reserved space. Only an unbounded last
        // segment may end in a zero tail.
        let bounded = next.is_some() || closed_len.is_some();
        let stop = scan.segment(&file, seg, limit, bounded, &mut on_record)?;
        let stopped = stop.is_some();
        if let Some(stop) = stop {
            let fatal = match mode {
                RecoveryMode::PointInTime => false,
                RecoveryMode::AbsoluteConsistency => true,
                RecoveryMode::TolerateTornTail => {
                    next.is_some()
                        || closed_len.is_some()
                        || scan.valid_fragment_after(&file, seg, stop.resume)?
                }
            };
            if fatal {
                return Err(Error::corruption(&seg.name, stop.at, stop.kind));
            }
        }
        let good_end = scan.asm.good_end;
        out.last = Some((seg.number, good_end));
        if stopped || next.is_none() {
            out.ignored_tail_bytes += limit - good_end - scan.asm.zero_tail;
            for later in chain.iter().skip(i + 1) {
                out.discarded_segments.push(later.number);
                out.ignored_tail_bytes += later.len;
            }
            break;
        }
    }
    if let Some((number, len)) = torn {
        out.discarded_segments.push(number);
        out.ignored_tail_bytes += len;
    }
    out.records = scan.asm.records;
    Ok(out)
}

/// A segment whose header checked out.
#[derive(Debug)]
struct Checked {
    number: u64,
    name: String,
    len: u64,
    header: SegmentHeader,
}

/// The segments whose headers checked out, in order.
#[derive(Debug)]
struct Headers {
    chain: Vec<Checked>,
    /// The last segment's number and length, if its header was torn and forgiven.
    torn: Option<(u64, u64)>,
}

/// Checks every header and chain link before any record is replayed (a segment's bound is in
/// its successor's header).
fn check_headers<V: Vfs>(
    vfs: &V,
    segments: &[u64],
    name_of: &impl Fn(u64) -> String,
    mode: RecoveryMode,
    buf: &mut [u8],
) -> Result<Headers> {
    let mut chain: Vec<Checked> = Vec::with_capacity(segments.len());
    for (i, &number) in segments.iter().enumerate() {
        let name = name_of(number);
        let file = open(vfs, &name)?;
        let len = file.len().map_err(|e| Error::io(IoOp::Size, &name, e))?;
        let header = match read_header(&file, &name, len)? {
            Ok(header) => header,
            Err(kind) => {
                let is_last = i + 1 == segments.len();
                // Version 0 is never written: it is a header torn after its magic in a file
                // whose reserved space (zeros) made it long enough to read (a zero tail).
                let tearable = matches!(
                    kind,
                    CorruptionKind::Truncated
                        | CorruptionKind::BadMagic
                        | CorruptionKind::Checksum
                        | CorruptionKind::UnsupportedVersion(0)
                );
                let forgiven = is_last
                    && tearable
                    && match mode {
                        RecoveryMode::AbsoluteConsistency => false,
                        RecoveryMode::PointInTime => true,
                        RecoveryMode::TolerateTornTail => {
                            let first = SEGMENT_HEADER_LEN as u64;
                            !valid_fragment_at(&file, &name, first, len, buf)?
                                && !any_valid_block_start(&file, &name, first, len, buf)?
                        }
                    };
                if forgiven {
                    return Ok(Headers { chain, torn: Some((number, len)) });
                }
                return Err(Error::corruption(&name, 0, kind));
            }
        };
        let linked = match chain.last() {
            None => true,
            Some(prev) => {
                header.prev_segment == prev.number
                    && header.prev_valid_len >= SEGMENT_HEADER_LEN as u64
                    && header.prev_valid_len <= prev.len
            }
        };
        if header.segment != number || !linked {
            return Err(Error::corruption(&name, 0, CorruptionKind::BadChain));
        }
        chain.push(Checked { number, name, len, header });
    }
    Ok(Headers { chain, torn: None })
}

fn open<V: Vfs>(vfs: &V, name: &str) -> Result<V::Read> {
    vfs.open(name, FileKind::Wal).map_err(|e| Error::io(IoOp::Open, name, e))
}

fn read_at<R: RandomRead>(file: &R, name: &str, offset: u64, buf: &mut [u8]) -> Result<()> {
    file.read_exact_at(offset, buf).map_err(|e| Error::io(IoOp::Read, name, e))
}

/// The header, or why it does not decode (`Truncated` for a file shorter than a header).
fn read_header<R: RandomRead>(
    file: &R,
    name: &str,
    len: u64,
) -> Result<Result<SegmentHeader, CorruptionKind>> {
    if len < SEGMENT_HEADER_LEN as u64 {
        return Ok(Err(CorruptionKind::Truncated));
    }
    let mut bytes = [0u8; SEGMENT_HEADER_LEN];
    read_at(file, name, 0, &mut bytes)?;
    Ok(SegmentHeader::decode(&bytes))
}

/// `true` if a complete fragment with a known type and a matching checksum starts at `at`.
fn valid_fragment_at<R: RandomRead>(
    file: &R,
    name: &str,
    at: u64,
    file_len: u64,
    buf: &mut [u8],
) -> Result<bool> {
    let block = BLOCK_SIZE as u64;
    let avail = (block - at % block).min(file_len.saturating_sub(at));
    // At most one block, so the cast is lossless.
    let Some(bytes) = buf.get_mut(..avail as usize) else {
        return Ok(false);
    };
    if bytes.len() < FRAGMENT_HEADER_LEN {
        return Ok(false);
    }
    read_at(file, name, at, bytes)?;
    Ok(fragment_is_valid(bytes))
}

/// `true` if `bytes` start with a complete fragment of a known type whose checksum matches.
fn fragment_is_valid(bytes: &[u8]) -> bool {
    let mut d = Decoder::new(bytes);
    let (Ok(stored), Ok(len), Ok(ty)) = (d.u32(), d.u16(), d.u8()) else {
        return false;
    };
    let Ok(payload) = d.bytes(usize::from(len)) else {
        return false;
    };
    FragmentType::from_u8(ty).is_some() && fragment_checksum(ty, payload) == stored
}

/// `true` if a valid fragment starts anywhere in the rest of the block holding `after` (any
/// offset in `(after, block end)`: fragments start at arbitrary offsets inside a block).
/// Reads that rest once (at most one block) and checks every offset in memory.
fn any_valid_fragment_in_rest_of_block<R: RandomRead>(
    file: &R,
    name: &str,
    after: u64,
    file_len: u64,
    buf: &mut [u8],
) -> Result<bool> {
    let block = BLOCK_SIZE as u64;
    let start = after.saturating_add(1);
    let end = (after / block).saturating_add(1).saturating_mul(block).min(file_len);
    if start >= end {
        return Ok(false);
    }
    // Less than one block, so the cast is lossless.
    let Some(bytes) = buf.get_mut(..(end - start) as usize) else {
        return Ok(false);
    };
    read_at(file, name, start, bytes)?;
    let last_start = bytes.len().saturating_sub(FRAGMENT_HEADER_LEN);
    Ok((0..=last_start).any(|i| bytes.get(i..).is_some_and(fragment_is_valid)))
}

/// `true` if every byte of `[from, to)` is zero: a segment's zero tail (space the writer
/// reserved, `docs/format/wal.md`, "Zero tail"). Reads at most a block at a time.
pub(crate) fn all_zeros<R: RandomRead>(
    file: &R,
    name: &str,
    from: u64,
    to: u64,
    buf: &mut [u8],
) -> Result<bool> {
    let mut at = from;
    while at < to {
        // At most one block, so the cast is lossless.
        let n = (to - at).min(BLOCK_SIZE as u64) as usize;
        let Some(chunk) = buf.get_mut(..n) else { return Ok(false) };
        read_at(file, name, at, chunk)?;
        if chunk.iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// `true` if any block boundary after `after` (and before `file_len`) starts a valid fragment.
fn any_valid_block_start<R: RandomRead>(
    file: &R,
    name: &str,
    after: u64,
    file_len: u64,
    buf: &mut [u8],
) -> Result<bool> {
    let block = BLOCK_SIZE as u64;
    let mut at = (after / block).saturating_add(1).saturating_mul(block);
    while at < file_len {
        if valid_fragment_at(file, name, at, file_len, buf)? {
            return Ok(true);
        }
        at = at.saturating_add(block);
    }
    Ok(false)
}

/// Where and why a segment's records stopped before its limit.
#[derive(Debug, Clone, Copy)]
struct Stop {
    /// Offset to report: the bad fragment, or the first fragment of an incomplete record.
    at: u64,
    kind: CorruptionKind,
    /// Where parsing actually failed: block boundaries after it decide torn versus damaged.
    resume: u64,
}

fn stop(at: u64, kind: CorruptionKind) -> Result<Option<Stop>> {
    Ok(Some(Stop { at, kind, resume: at }))
}

/// Reassembly state for one segment.
#[derive(Debug, Default)]
struct Assembly {
    /// Payload of the record being assembled (FIRST, MIDDLE...).
    record: Vec<u8>,
    /// Offset of that record's FIRST fragment, while one is open.
    start: Option<u64>,
    /// End of the last complete record.
    good_end: u64,
    /// Bytes of zero tail after `good_end` in the segment just read (not damage, not counted
    /// as ignored).
    zero_tail: u64,
    /// Records delivered, over all segments.
    records: u64,
}

#[derive(Debug)]
struct Scan {
    /// One block.
    buf: Vec<u8>,
    asm: Assembly,
}

impl Scan {
    /// Delivers the records of `seg` up to `limit`. `Ok(None)` if every byte up to `limit` is
    /// complete records and block padding; `Ok(Some(stop))` at the first bad or incomplete one.
    fn segment<R: RandomRead>(
        &mut self,
        file: &R,
        seg: &Checked,
        limit: u64,
        bounded: bool,
        on_record: &mut impl FnMut(&[u8], RecordPos) -> Result<()>,
    ) -> Result<Option<Stop>> {
        let asm = &mut self.asm;
        asm.record.clear();
        asm.start = None;
        asm.good_end = SEGMENT_HEADER_LEN as u64;
        asm.zero_tail = 0;
        let block = BLOCK_SIZE as u64;
        let mut block_start = 0;
        while block_start < limit {
            // At most one block, so the cast is lossless.
            let chunk_len = (limit - block_start).min(block) as usize;
            let Some(chunk) = self.buf.get_mut(..chunk_len) else {
                break;
            };
            read_at(file, &seg.name, block_start, chunk)?;
            let first = if block_start == 0 { SEGMENT_HEADER_LEN } else { 0 };
            let full = chunk_len == BLOCK_SIZE;
            let ctx = BlockCtx { segment: seg.number, block_start, full };
            if let Some(stop) = asm.parse_block(chunk, first, ctx, on_record)? {
                // Zeros from the last record to the end of an unbounded segment are the
                // writer's reserved space, not a torn or damaged record (between the last
                // record and the stop there can only be block padding).
                if !bounded
                    && asm.start.is_none()
                    && all_zeros(file, &seg.name, asm.good_end, limit, &mut self.buf)?
                {
                    asm.zero_tail = limit - asm.good_end;
                    return Ok(None);
                }
                return Ok(Some(stop));
            }
            block_start += block;
        }
        match asm.start {
            Some(at) => Ok(Some(Stop { at, kind: CorruptionKind::Truncated, resume: limit })),
            None => {
                // Whatever followed the last record up to the limit was block padding: zeros.
                asm.zero_tail = limit - asm.good_end;
                Ok(None)
            }
        }
    }

    fn valid_fragment_after<R: RandomRead>(
        &mut self,
        file: &R,
        seg: &Checked,
        after: u64,
    ) -> Result<bool> {
        // Damage followed by any intact fragment, in the same block or a later one, is not a
        // torn tail: intact records after it were written (and may have been acknowledged).
        Ok(any_valid_fragment_in_rest_of_block(file, &seg.name, after, seg.len, &mut self.buf)?
            || any_valid_block_start(file, &seg.name, after, seg.len, &mut self.buf)?)
    }
}

#[derive(Debug, Clone, Copy)]
struct BlockCtx {
    segment: u64,
    block_start: u64,
    /// The chunk is a whole block (its tail may be padding), not one cut by the limit.
    full: bool,
}

impl Assembly {
    /// Parses the fragments of one block (or of the part of it before the limit), starting at
    /// `p` within it.
    fn parse_block(
        &mut self,
        chunk: &[u8],
        mut p: usize,
        ctx: BlockCtx,
        on_record: &mut impl FnMut(&[u8], RecordPos) -> Result<()>,
    ) -> Result<Option<Stop>> {
        use CorruptionKind::{BadFragment, Checksum, Truncated, UnknownTag};
        loop {
            let rest = chunk.get(p..).unwrap_or_default();
            if rest.is_empty() {
                return Ok(None);
            }
            let at = ctx.block_start + p as u64;
            if rest.len() < FRAGMENT_HEADER_LEN {
                // A whole block's short tail is padding and must be zeros; a short tail cut by
                // the limit is the start of a fragment that did not make it.
                if ctx.full && rest.iter().all(|&b| b == 0) {
                    return Ok(None);
                }
                return stop(at, if ctx.full { BadFragment } else { Truncated });
            }
            let mut d = Decoder::new(rest);
            let (Ok(stored), Ok(len), Ok(ty)) = (d.u32(), d.u16(), d.u8()) else {
                return stop(at, Truncated);
            };
            let len = usize::from(len);
            let Ok(payload) = d.bytes(len) else {
                let fits_block = p + FRAGMENT_HEADER_LEN + len <= BLOCK_SIZE;
                return stop(at, if fits_block && !ctx.full { Truncated } else { BadFragment });
            };
            if fragment_checksum(ty, payload) != stored {
                return stop(at, Checksum);
            }
            let Some(ty) = FragmentType::from_u8(ty) else {
                return stop(at, UnknownTag(ty));
            };
            let end = at + (FRAGMENT_HEADER_LEN + len) as u64;
            match (ty, self.start) {
                (FragmentType::Full, None) => {
                    on_record(payload, RecordPos { segment: ctx.segment, offset: at })?;
                    self.records += 1;
                    self.good_end = end;
                }
                (FragmentType::First, None) => {
                    self.record.clear();
                    self.record.extend_from_slice(payload);
                    self.start = Some(at);
                }
                (FragmentType::Middle, Some(_)) => self.record.extend_from_slice(payload),
                (FragmentType::Last, Some(start)) => {
                    self.record.extend_from_slice(payload);
                    on_record(&self.record, RecordPos { segment: ctx.segment, offset: start })?;
                    self.records += 1;
                    self.good_end = end;
                    self.start = None;
                }
                // FULL or FIRST inside an open record, MIDDLE or LAST outside one.
                _ => return stop(at, BadFragment),
            }
            p += FRAGMENT_HEADER_LEN + len;
        }
    }
}

#[cfg(test)]
mod tests;

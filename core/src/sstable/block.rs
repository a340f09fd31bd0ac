//! Blocks: sorted key/value entries with prefix-compressed keys and restart points.
//!
//! ```text
//! entry*  restart[0] .. restart[n-1] (u32 LE each)  n (u32 LE)
//! entry = shared (varint) | unshared (varint) | value_len (varint) | key suffix | value
//! ```
//!
//! `docs/format/block.md` is the byte-level description. The block layer treats keys as opaque
//! byte strings; only [`BlockIter::seek`] interprets them (as encoded internal keys).

#![deny(clippy::indexing_slicing)]

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::ops::Range;

use bytes::Bytes;

use super::format::{KeyRef, decode_err};
use crate::codec::{self, Decoder};
use crate::error::CorruptionKind;

/// Bytes of bookkeeping charged to the block cache per block, beyond its contents.
const BLOCK_OVERHEAD: usize = 96;

/// Blocks with at most this many restart points have them all loaded before a seek (see
/// [`Block::touch_restarts`]): a 4 KiB block of small entries has about ten.
const TOUCH_RESTARTS_MAX: usize = 32;

/// The CPU cache line size assumed by [`Block::touch_run`] (64 bytes on x86-64 and most ARM
/// cores; a wrong guess only makes the loads less useful).
const CACHE_LINE: usize = 64;

/// Accumulates entries into one encoded block.
#[derive(Debug)]
pub struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    entries: usize,
}

impl BlockBuilder {
    /// An empty builder placing a restart point every `interval` entries (at least 1).
    pub fn new(interval: usize) -> Self {
        BlockBuilder {
            buf: Vec::new(),
            restarts: alloc::vec![0],
            interval: interval.max(1),
            since_restart: 0,
            last_key: Vec::new(),
            entries: 0,
        }
    }

    /// Appends an entry. Keys must arrive in the order the block will be searched in; the
    /// caller checks that. The block's entry area must stay below 4 GiB (the caller bounds key
    /// and value sizes and cuts blocks long before that).
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let shared = if self.since_restart < self.interval {
            self.last_key.iter().zip(key).take_while(|(a, b)| a == b).count()
        } else {
            self.restarts.push(self.buf.len() as u32);
            self.since_restart = 0;
            0
        };
        let suffix = key.get(shared..).unwrap_or_default();
        codec::put_varint(&mut self.buf, shared as u64);
        codec::put_varint(&mut self.buf, suffix.len() as u64);
        codec::put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(suffix);
        self.buf.extend_from_slice(value);
        self.last_key.truncate(shared);
        self.last_key.extend_from_slice(suffix);
        self.since_restart += 1;
        self.entries += 1;
    }

    /// Size of the block if it were finished now.
    pub fn estimated_size(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// Entries added since the last [`finish`](Self::finish).
    pub fn entries(&self) -> usize {
        self.entries
    }

    /// `true` when no entry was added since the last [`finish`](Self::finish).
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The last key added.
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// Returns the encoded block and resets the builder for the next one.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = core::mem::take(&mut self.buf);
        for r in &self.restarts {
            codec::put_u32(&mut out, *r);
        }
        codec::put_u32(&mut out, self.restarts.len() as u32);
        self.restarts.clear();
        self.restarts.push(0);
        self.since_restart = 0;
        self.last_key.clear();
        self.entries = 0;
        out
    }
}

/// A decoded (checked and decompressed) block, shared by readers and the block cache.
#[derive(Debug)]
pub struct Block {
    data: Bytes,
    /// Offset of the restart array; entries occupy `[0, entries_end)`.
    entries_end: usize,
    restarts: usize,
}

impl Block {
    /// Validates the restart array of a block's contents. Entries are checked as they are
    /// read.
    pub fn new(data: Bytes) -> Result<Block, CorruptionKind> {
        let count_at = data.len().checked_sub(4).ok_or(CorruptionKind::Truncated)?;
        let count = codec::get_u32(data.get(count_at..).unwrap_or_default())
            .ok_or(CorruptionKind::Truncated)?;
        let restarts = usize::try_from(count).map_err(|_| CorruptionKind::Truncated)?;
        let array = restarts.checked_mul(4).ok_or(CorruptionKind::Truncated)?;
        let entries_end = count_at.checked_sub(array).ok_or(CorruptionKind::Truncated)?;
        if restarts == 0 {
            return Err(CorruptionKind::Truncated);
        }
        Ok(Block { data, entries_end, restarts })
    }

    /// Bytes to charge the block cache for this block.
    pub fn charge(&self) -> usize {
        self.data.len() + BLOCK_OVERHEAD
    }

    /// The address of the block's restart array, for a prefetch hint.
    pub(crate) fn restarts_addr(&self) -> usize {
        self.data.as_ptr().wrapping_add(self.entries_end) as usize
    }

    /// The block's contents.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Offset of entry run `i` (a restart point).
    fn restart(&self, i: usize) -> Result<usize, CorruptionKind> {
        let at = self.entries_end.checked_add(i.checked_mul(4).ok_or(CorruptionKind::Truncated)?);
        let word = at.and_then(|at| codec::get_u32(self.data.get(at..)?));
        let off = word.ok_or(CorruptionKind::Truncated)? as usize;
        if off > self.entries_end {
            return Err(CorruptionKind::Truncated);
        }
        Ok(off)
    }

    /// Loads the first byte of every restart entry of a block with few of them, so that the
    /// binary search of [`BlockIter::seek`] finds its probes cached. A point read is bound by
    /// memory latency, not instructions (a block in the cache is usually not in the CPU's
    /// caches): the search's probes depend on each other and miss one after another, whereas
    /// these loads are independent and the CPU overlaps them.
    fn touch_restarts(&self) {
        if self.restarts > TOUCH_RESTARTS_MAX {
            return;
        }
        let entries = self.entries();
        let mut sum = 0u8;
        for i in 0..self.restarts {
            let at = self.restart(i).unwrap_or(0);
            sum ^= entries.get(at).copied().unwrap_or(0);
        }
        core::hint::black_box(sum);
    }

    /// Loads every cache line of entry run `i` (restart point `i` up to the next), which a
    /// seek then walks: each entry's position depends on the one before, so walking it cold
    /// would miss the cache once per line in turn.
    fn touch_run(&self, i: usize) {
        let Ok(start) = self.restart(i) else { return };
        // The last run ends where the entries do (there is no restart point after it).
        let end = if i + 1 < self.restarts {
            self.restart(i + 1).unwrap_or(start)
        } else {
            self.entries_end
        };
        let entries = self.entries();
        let mut sum = 0u8;
        for at in (start..end).step_by(CACHE_LINE) {
            sum ^= entries.get(at).copied().unwrap_or(0);
        }
        sum ^= entries.get(end.saturating_sub(1)).copied().unwrap_or(0);
        core::hint::black_box(sum);
    }

    /// The entries area.
    fn entries(&self) -> &[u8] {
        self.data.get(..self.entries_end).unwrap_or_default()
    }
}

/// Decodes the entry at `pos` of `entries` given the previous key's length. Returns
/// `(shared, suffix range, value range, end)`. Inlined: a seek calls it for every probe and
/// step, and as a call its four-part result went through memory (a sixth of a cached point
/// read's block-search instructions).
#[inline(always)]
fn decode_entry(
    entries: &[u8],
    pos: usize,
    prev_len: usize,
) -> Result<(usize, Range<usize>, Range<usize>, usize), CorruptionKind> {
    // Almost every entry's three lengths are below 128, one byte each: read them without the
    // general varint loop (a tenth of a 100-key range scan's time went to that loop).
    let (shared, unshared, vlen, key_at) = match entries.get(pos..pos.saturating_add(3)) {
        Some(&[s, u, v]) if (s | u | v) < 0x80 => {
            (usize::from(s), usize::from(u), usize::from(v), pos + 3)
        }
        _ => {
            let mut d = Decoder::new(entries.get(pos..).ok_or(CorruptionKind::Truncated)?);
            let mut len = || -> Result<usize, CorruptionKind> {
                let v = d.varint().map_err(decode_err)?;
                usize::try_from(v).map_err(|_| CorruptionKind::Truncated)
            };
            let (s, u, v) = (len()?, len()?, len()?);
            (s, u, v, pos + d.position())
        }
    };
    if shared > prev_len {
        return Err(CorruptionKind::Truncated);
    }
    let val_at = key_at.checked_add(unshared).ok_or(CorruptionKind::Truncated)?;
    let end = val_at.checked_add(vlen).ok_or(CorruptionKind::Truncated)?;
    if end > entries.len() {
        return Err(CorruptionKind::Truncated);
    }
    Ok((shared, key_at..val_at, val_at..end, end))
}

/// Bytes of key a [`BlockIter`] holds inline before it moves its key to the heap. A user key
/// of up to 32 bytes plus the 16-byte trailer fits, so the fresh iterators of a point read
/// (its index partition's and its data block's) allocate nothing for keys: that allocation and
/// its free were an eighth of a cached point read's instructions.
const KEY_INLINE: usize = 48;

/// The current key of a [`BlockIter`], rebuilt from the previous key's shared prefix and the
/// entry's suffix: inline while it fits in [`KEY_INLINE`] bytes; once a longer key comes, on
/// the heap for the rest of the walk (one allocation, reused).
#[derive(Debug)]
struct KeyBuf {
    inline: [u8; KEY_INLINE],
    /// Length of the inline key (unused once `heap` is set).
    len: usize,
    heap: Option<Vec<u8>>,
}

impl KeyBuf {
    const fn new() -> Self {
        KeyBuf { inline: [0; KEY_INLINE], len: 0, heap: None }
    }

    fn as_slice(&self) -> &[u8] {
        match &self.heap {
            Some(v) => v,
            None => self.inline.get(..self.len).unwrap_or_default(),
        }
    }

    fn len(&self) -> usize {
        self.heap.as_ref().map_or(self.len, Vec::len)
    }

    fn clear(&mut self) {
        self.len = 0;
        if let Some(v) = &mut self.heap {
            v.clear();
        }
    }

    /// Keeps the first `shared` bytes (at most [`len`](Self::len): `decode_entry` checks) and
    /// appends `suffix`.
    fn splice(&mut self, shared: usize, suffix: &[u8]) {
        if let Some(v) = &mut self.heap {
            v.truncate(shared);
            v.extend_from_slice(suffix);
            return;
        }
        let end = shared.saturating_add(suffix.len());
        if let Some(room) = self.inline.get_mut(shared..end) {
            room.copy_from_slice(suffix);
            self.len = end;
            return;
        }
        let mut v = Vec::with_capacity(end.max(2 * KEY_INLINE));
        v.extend_from_slice(self.inline.get(..shared).unwrap_or_default());
        v.extend_from_slice(suffix);
        self.heap = Some(v);
    }
}

/// A forward iterator over one block. It owns a reference to the block, so it can outlive the
/// call that loaded it.
#[derive(Debug)]
pub struct BlockIter {
    block: Arc<Block>,
    /// Where the next entry starts.
    next: usize,
    key: KeyBuf,
    value: Range<usize>,
    valid: bool,
}

impl BlockIter {
    /// An iterator before the first entry of `block`.
    pub fn new(block: Arc<Block>) -> Self {
        BlockIter { block, next: 0, key: KeyBuf::new(), value: 0..0, valid: false }
    }

    /// Positions before the entry at restart point `i`.
    fn seek_to_restart(&mut self, i: usize) -> Result<(), CorruptionKind> {
        self.next = self.block.restart(i)?;
        self.key.clear();
        self.valid = false;
        Ok(())
    }

    /// Moves to the next entry; `false` (and invalid) at the end of the block.
    pub fn advance(&mut self) -> Result<bool, CorruptionKind> {
        let entries = self.block.entries();
        if self.next >= entries.len() {
            self.valid = false;
            return Ok(false);
        }
        let (shared, suffix, value, end) = decode_entry(entries, self.next, self.key.len())?;
        self.key.splice(shared, entries.get(suffix).unwrap_or_default());
        self.value = value;
        self.next = end;
        self.valid = true;
        Ok(true)
    }

    /// The block walked.
    pub fn block(&self) -> &Arc<Block> {
        &self.block
    }

    /// `true` when positioned at an entry.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The current key (meaningful only when [`valid`](Self::valid)).
    #[inline]
    pub fn key(&self) -> &[u8] {
        self.key.as_slice()
    }

    /// The current value, sharing the block's memory.
    pub fn value(&self) -> Bytes {
        self.block.data.slice(self.value.clone())
    }

    /// Where the current value lies in the block's [`data`](Block::data).
    #[inline]
    pub fn value_range(&self) -> Range<usize> {
        self.value.clone()
    }

    /// The current value as a slice.
    #[inline]
    pub fn value_slice(&self) -> &[u8] {
        self.block.data.get(self.value.clone()).unwrap_or_default()
    }

    /// Full key stored at restart point `i` (restart entries share nothing).
    fn restart_key(&self, i: usize) -> Result<&[u8], CorruptionKind> {
        let entries = self.block.entries();
        let (shared, suffix, _, _) = decode_entry(entries, self.block.restart(i)?, 0)?;
        debug_assert_eq!(shared, 0);
        entries.get(suffix).ok_or(CorruptionKind::Truncated)
    }

    /// Positions at the first entry whose encoded internal key is `>= target`; `false` if
    /// every entry is smaller. Binary search over restart points, then a scan of one run.
    pub fn seek(&mut self, target: &KeyRef<'_>) -> Result<bool, CorruptionKind> {
        self.block.touch_restarts();
        let (mut lo, mut hi) = (0, self.block.restarts - 1);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if KeyRef::parse(self.restart_key(mid)?)?.cmp_key(target) == Ordering::Less {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        self.seek_to_restart(lo)?;
        self.block.touch_run(lo);
        while self.advance()? {
            if KeyRef::parse(self.key.as_slice())?.cmp_key(target) != Ordering::Less {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

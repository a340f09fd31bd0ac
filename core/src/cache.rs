//! The block cache: decoded table blocks, and values read from the value log, shared by every
//! reader, evicted least recently used first, bounded by bytes.
//!
//! Keys are `(file_no, offset)`: a table's block offset or a value log record's offset. Tables
//! and value log files draw their numbers from one counter and numbers are never reused, so a
//! key names one block or one value forever. The cache is split into shards, each an LRU list behind its own lock, so
//! concurrent readers of different blocks rarely contend. Each shard is a hash map from key to
//! the cached block or value and its slot in a `Vec`, and the slots form an intrusive doubly
//! linked list by index (most recent at the head), so nothing but the map and the slot vector
//! is ever allocated (and a value's small record). A hit finds the block's handle in the map's
//! bucket itself: with the handle in the slot instead, every hit waited on one more load from
//! memory (`docs/performance.md`, "Block cache: the handle in the map's bucket"). The bucket
//! also holds the address of the block's restart array, which a hit asks the CPU to load
//! straight away, alongside the block's header rather than after it (`docs/performance.md`,
//! "Point reads: the restart array on its way with the block's header").

use alloc::sync::Arc;
use alloc::vec::Vec;
use bytes::Bytes;
use core::sync::atomic::Ordering;

use hashbrown::HashMap;
use strata_vfs::sync::{AtomicU64, Mutex};

use crate::sstable::Block;

/// Marks the end of a list.
const NIL: u32 = u32::MAX;

/// Most shards a cache uses.
const MAX_SHARDS: usize = 16;

/// A cache gets one more shard (up to [`MAX_SHARDS`]) per this many bytes of capacity, so a
/// small cache is not cut into shards too small to hold a block.
const BYTES_PER_SHARD: usize = 256 * 1024;

type Key = (u64, u64);

/// What the cache holds under a key. Two words, so a map bucket stays small.
#[derive(Debug)]
enum Cached {
    Block(Arc<Block>),
    Value(alloc::boxed::Box<CachedValue>),
}

/// A value from the value log, with the user key and record length it was read for: a lookup
/// must name both, as a read checks the record's key, so a damaged pointer is refused whether
/// or not the value is cached.
#[derive(Debug)]
struct CachedValue {
    key: Bytes,
    record_len: u32,
    value: Bytes,
}

/// A map entry: what is cached and where its slot is.
#[derive(Debug)]
struct Entry {
    slot: u32,
    cached: Cached,
    /// Address of a cached block's restart array (0 for a value): a hit asks the CPU to load
    /// it at once, while the block's reference count (another line, in the block's header)
    /// is still on its way, instead of after it, as the block seek that follows would.
    restarts_at: usize,
}

/// Bytes charged for a cached value beyond its key and value: the slot, the map entry and the
/// shared buffers' headers, roughly.
const VALUE_OVERHEAD: usize = 96;

#[derive(Debug)]
struct Slot {
    key: Key,
    charge: usize,
    prev: u32,
    next: u32,
}

/// One shard: a map and an LRU list over slots.
///
/// A hit moves its entry to the head only while the shard is more than half full. Relinking
/// writes three other slots (its neighbours and the old head), cache misses that a point read
/// served from a roomy cache paid for nothing, since nothing is evicted there. An entry hit
/// only while the shard was at most half full keeps its place and is moved at its first hit
/// after that, so when the shard fills and evicts, the order reflects every hit since it
/// passed half: least recently used first, as far as the last half-capacity of inserts can
/// tell.
#[derive(Debug)]
struct Lru {
    map: HashMap<Key, Entry>,
    list: List,
    usage: usize,
    capacity: usize,
}

/// The recency order: slots linked by index, most recent at the head, and the free slots.
/// Apart from the map, so that a hit can relink its slot while it holds its map entry.
#[derive(Debug)]
struct List {
    slots: Vec<Slot>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
}

impl List {
    fn slot(&mut self, i: u32) -> Option<&mut Slot> {
        self.slots.get_mut(i as usize)
    }

    fn unlink(&mut self, i: u32) {
        let Some(s) = self.slot(i) else { return };
        let (prev, next) = (s.prev, s.next);
        match self.slot(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.slot(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        if let Some(s) = self.slot(i) {
            s.prev = NIL;
            s.next = old;
        }
        match self.slot(old) {
            Some(o) => o.prev = i,
            None => self.tail = i,
        }
        self.head = i;
    }

    /// Takes a slot for `slot`, reusing a free one, and puts it at the head.
    fn add_front(&mut self, slot: Slot) -> u32 {
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = self.slot(i) {
                    *s = slot;
                }
                i
            }
            None => {
                // A shard never holds 4 billion blocks: each costs at least its overhead.
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.push_front(i);
        i
    }
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Lru {
            map: HashMap::new(),
            list: List { slots: Vec::new(), free: Vec::new(), head: NIL, tail: NIL },
            usage: 0,
            capacity,
        }
    }

    /// The entry at `key`, marked most recently used.
    fn get(&mut self, key: Key) -> Option<&Cached> {
        let e = self.map.get(&key)?;
        prefetch(e.restarts_at);
        if self.usage > self.capacity / 2 {
            self.list.unlink(e.slot);
            self.list.push_front(e.slot);
        }
        Some(&e.cached)
    }

    fn remove_slot(&mut self, i: u32) {
        self.list.unlink(i);
        let Some(s) = self.list.slot(i) else { return };
        let (key, charge) = (s.key, s.charge);
        self.map.remove(&key);
        self.usage -= charge;
        self.list.free.push(i);
    }

    fn insert(&mut self, key: Key, value: Cached, charge: usize) {
        if let Some(i) = self.map.get(&key).map(|e| e.slot) {
            self.remove_slot(i);
        }
        if charge > self.capacity {
            return;
        }
        while self.usage + charge > self.capacity && self.list.tail != NIL {
            self.remove_slot(self.list.tail);
        }
        let i = self.list.add_front(Slot { key, charge, prev: NIL, next: NIL });
        let restarts_at = match &value {
            Cached::Block(b) => b.restarts_addr(),
            Cached::Value(_) => 0,
        };
        self.map.insert(key, Entry { slot: i, cached: value, restarts_at });
        self.usage += charge;
    }

    fn erase_file(&mut self, file_no: u64) {
        let victims: Vec<u32> =
            self.map.iter().filter(|((f, _), _)| *f == file_no).map(|(_, e)| e.slot).collect();
        for i in victims {
            self.remove_slot(i);
        }
    }
}

/// A sharded, byte-bounded LRU cache of decoded blocks and value log values. `Send + Sync`;
/// every method takes `&self`.
#[derive(Debug)]
pub struct BlockCache {
    shards: Vec<Mutex<Lru>>,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Which blocks sequential walks have read ahead before (see
    /// [`admit_read_ahead`](Self::admit_read_ahead)).
    read_ahead_seen: SeenBefore,
}

/// A well-mixed hash of a cache key `(file_no, offset)`: picks the shard, and the admission
/// filters ([`SeenBefore`]) use it for their bitmaps.
pub(crate) fn position_hash(file_no: u64, offset: u64) -> u64 {
    let mut h = file_no.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ offset;
    h = (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 29)
}

/// Bits in each of [`SeenBefore`]'s two maps (8 KiB of memory each).
const SEEN_BITS: usize = 1 << 16;
/// [`SeenBefore`] clears its maps after this many first reads, so old reads fade and the maps
/// stay sparse (at most a quarter of their bits set).
const SEEN_RESET: u64 = (SEEN_BITS / 4) as u64;

/// An admission filter: remembers, approximately, which keys `(file_no, offset)` were read once
/// and which twice, so that something read only once or twice need not be cached. Caching
/// costs fresh memory (page faults, and on this project's machines about 3 us a page), which
/// measured as much as reading the thing again: a one-pass read is cheaper left uncached. The
/// value cache admits a value on its third read; a sequential walk's read-ahead blocks enter
/// the block cache on their second read (see `sstable::cursor`). A false "seen" only caches
/// early, a reset only delays, so the maps need no lock.
pub(crate) struct SeenBefore {
    once: alloc::boxed::Box<[AtomicU64]>,
    twice: alloc::boxed::Box<[AtomicU64]>,
    set_since_reset: AtomicU64,
}

impl SeenBefore {
    pub(crate) fn new() -> Self {
        let map = || (0..SEEN_BITS / 64).map(|_| AtomicU64::new(0)).collect();
        SeenBefore { once: map(), twice: map(), set_since_reset: AtomicU64::new(0) }
    }

    /// Notes a read of `(file_no, offset)`; `true` if it was (probably) read at least `times`
    /// times before (1 or 2) since the last reset.
    pub(crate) fn note_read(&self, file_no: u64, offset: u64, times: u8) -> bool {
        let bit = position_hash(file_no, offset) as usize % SEEN_BITS;
        let mask = 1u64 << (bit % 64);
        let (Some(once), Some(twice)) = (self.once.get(bit / 64), self.twice.get(bit / 64)) else {
            return false;
        };
        if twice.load(Ordering::Relaxed) & mask != 0 {
            return true;
        }
        if once.fetch_or(mask, Ordering::Relaxed) & mask != 0 {
            twice.fetch_or(mask, Ordering::Relaxed);
            return times <= 1;
        }
        if self.set_since_reset.fetch_add(1, Ordering::Relaxed) + 1 >= SEEN_RESET {
            self.set_since_reset.store(0, Ordering::Relaxed);
            for w in self.once.iter().chain(self.twice.iter()) {
                w.store(0, Ordering::Relaxed);
            }
        }
        false
    }
}

impl core::fmt::Debug for SeenBefore {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SeenBefore").finish_non_exhaustive()
    }
}

/// Asks the CPU to bring the cache line at `addr` into its caches, if `addr` is not 0. A hint
/// only: it never faults and changes no result.
#[inline(always)]
#[allow(unsafe_code)]
fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    if addr != 0 {
        // SAFETY: a prefetch reads nothing the program sees and never faults, whatever the
        // address; SSE, which provides it, is part of every x86-64 CPU.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                addr as *const i8,
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// The block in a cache entry, if it is one.
fn block_of(entry: Option<&Cached>) -> Option<Arc<Block>> {
    match entry? {
        Cached::Block(b) => Some(Arc::clone(b)),
        Cached::Value(_) => None,
    }
}

impl BlockCache {
    /// A cache holding up to `capacity_bytes` of blocks (by their charge). 0 disables caching:
    /// nothing is kept and every lookup misses.
    pub fn new(capacity_bytes: usize) -> Self {
        let shards = (capacity_bytes / BYTES_PER_SHARD).clamp(1, MAX_SHARDS);
        // A power of two, so a shard is picked with a mask.
        let shards = if shards.is_power_of_two() { shards } else { shards.next_power_of_two() / 2 };
        Self::with_shards(capacity_bytes, shards)
    }

    /// A cache with an explicit shard count (rounded up to a power of two, at least 1). Each
    /// shard holds `capacity_bytes / shards` (rounded down), so eviction order is exact LRU only
    /// with one shard.
    pub fn with_shards(capacity_bytes: usize, shards: usize) -> Self {
        let n = shards.clamp(1, 1 << 16).next_power_of_two();
        let per = capacity_bytes / n;
        BlockCache {
            shards: (0..n).map(|_| Mutex::new(Lru::new(per))).collect(),
            capacity: capacity_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            read_ahead_seen: SeenBefore::new(),
        }
    }

    fn shard(&self, file_no: u64, offset: u64) -> Option<&Mutex<Lru>> {
        self.shards.get(position_hash(file_no, offset) as usize & (self.shards.len() - 1))
    }

    /// The block at `(file_no, offset)`, marking it most recently used.
    pub fn get(&self, file_no: u64, offset: u64) -> Option<Arc<Block>> {
        let found = if self.capacity == 0 {
            None
        } else {
            self.shard(file_no, offset).and_then(|s| block_of(s.lock().get((file_no, offset))))
        };
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Like [`get`](Self::get) but not counted as a hit or miss: for background scans, which
    /// should neither fill the cache nor distort what its counters say about reads.
    pub fn peek(&self, file_no: u64, offset: u64) -> Option<Arc<Block>> {
        if self.capacity == 0 {
            return None;
        }
        self.shard(file_no, offset).and_then(|s| block_of(s.lock().get((file_no, offset))))
    }

    /// Notes that a sequential walk read the block at `(file_no, offset)` ahead, from the
    /// file, and uses it now; `true` if it should be cached, because walks read it ahead
    /// before: a second pass over the same data, or a concurrent walk a little behind. A
    /// one-pass scan then leaves the cache as it found it (what it would cache is rarely read
    /// again, and pushes out what readers do use), and runs faster for it: caching every block
    /// of a cold full scan of 100,000 keys made it 1.7x slower, most of it fresh memory for the
    /// cached copies (`docs/performance.md`, tenth pass).
    pub fn admit_read_ahead(&self, file_no: u64, offset: u64) -> bool {
        self.capacity != 0 && self.read_ahead_seen.note_read(file_no, offset, 1)
    }

    /// Caches `block` at `(file_no, offset)` with a cost of `charge` bytes, evicting the least
    /// recently used blocks of its shard as needed; replaces an existing entry. A block larger
    /// than a shard is not kept.
    pub fn insert(&self, file_no: u64, offset: u64, block: Arc<Block>, charge: usize) {
        if self.capacity == 0 {
            return;
        }
        if let Some(s) = self.shard(file_no, offset) {
            s.lock().insert((file_no, offset), Cached::Block(block), charge);
        }
    }

    /// The value log value of the record at `(file_no, offset)`, if it is cached for user key
    /// `key` and a record of `record_len` bytes. Not counted in [`hits`](Self::hits) or
    /// [`misses`](Self::misses), which describe blocks.
    pub fn get_value(
        &self,
        file_no: u64,
        offset: u64,
        key: &[u8],
        record_len: u32,
    ) -> Option<Bytes> {
        if self.capacity == 0 {
            return None;
        }
        let mut shard = self.shard(file_no, offset)?.lock();
        match shard.get((file_no, offset))? {
            Cached::Value(v) if v.key == key && v.record_len == record_len => Some(v.value.clone()),
            _ => None,
        }
    }

    /// Caches `value`, read from the value log record at `(file_no, offset)` of `record_len`
    /// bytes holding user key `key`, charged its key and value bytes and
    /// [`VALUE_OVERHEAD`]; like [`insert`](Self::insert) otherwise.
    pub fn insert_value(
        &self,
        file_no: u64,
        offset: u64,
        key: &[u8],
        record_len: u32,
        value: Bytes,
    ) {
        if self.capacity == 0 {
            return;
        }
        let charge = key.len() + value.len() + VALUE_OVERHEAD;
        let entry = Cached::Value(alloc::boxed::Box::new(CachedValue {
            key: Bytes::copy_from_slice(key),
            record_len,
            value,
        }));
        if let Some(s) = self.shard(file_no, offset) {
            s.lock().insert((file_no, offset), entry, charge);
        }
    }

    /// Drops every block or value of `file_no` (a table or value log file being deleted).
    pub fn erase_file(&self, file_no: u64) {
        for s in &self.shards {
            s.lock().erase_file(file_no);
        }
    }

    /// Counts a miss that no lookup counted (a block read ahead of its use).
    pub fn count_miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Lookups that found their block.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that did not.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }

    /// Bytes currently charged.
    pub fn usage(&self) -> usize {
        self.shards.iter().map(|s| s.lock().usage).sum()
    }

    /// The capacity given at construction.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use bytes::Bytes;

    /// Admission after one earlier read (read-ahead blocks) and after two (values); distinct
    /// keys are remembered apart.
    #[test]
    fn seen_before_admits_after_the_given_number_of_earlier_reads() {
        let seen = SeenBefore::new();
        assert!(!seen.note_read(7, 0, 1), "first read");
        assert!(seen.note_read(7, 0, 1), "second read");
        assert!(seen.note_read(7, 0, 1), "and after");
        assert!(!seen.note_read(7, 4096, 2), "first read");
        assert!(!seen.note_read(7, 4096, 2), "second read");
        assert!(seen.note_read(7, 4096, 2), "third read");
        assert!(!seen.note_read(8, 8192, 1), "another key: a first read");
        let off = BlockCache::new(0);
        assert!(
            !off.admit_read_ahead(7, 0) && !off.admit_read_ahead(7, 0),
            "no cache, no admission"
        );
    }

    fn block(tag: u8) -> Arc<Block> {
        Arc::new(Block::new(Bytes::from(alloc::vec![tag, 0, 0, 0, 0, 1, 0, 0, 0])).expect("block"))
    }

    fn tag(b: &Arc<Block>) -> u8 {
        b.data().first().copied().unwrap_or(0xff)
    }

    #[test]
    fn a_map_bucket_stays_small() {
        // A hit loads its bucket from memory: keep the handle and the restart array's address
        // within the same 48 bytes.
        assert!(core::mem::size_of::<(Key, Entry)>() <= 48);
    }

    #[test]
    fn cache_evicts_least_recently_used_first() {
        let c = BlockCache::with_shards(300, 1);
        c.insert(1, 0, block(0), 100);
        c.insert(1, 10, block(1), 100);
        c.insert(1, 20, block(2), 100);
        assert_eq!(c.usage(), 300);
        // Touch 0, so 1 is now the least recently used.
        assert_eq!(c.get(1, 0).as_ref().map(tag), Some(0));
        c.insert(2, 0, block(3), 100);
        assert!(c.get(1, 10).is_none(), "1 was evicted");
        assert!(c.get(1, 0).is_some() && c.get(1, 20).is_some() && c.get(2, 0).is_some());
        // Order now (most recent first): (2,0) (1,20) (1,0). A 200-byte block evicts two.
        c.insert(3, 0, block(4), 200);
        assert!(c.get(1, 0).is_none() && c.get(1, 20).is_none());
        assert!(c.get(2, 0).is_some() && c.get(3, 0).is_some());
        assert_eq!(c.usage(), 300);
    }

    #[test]
    fn cache_reorders_hits_only_past_half_full() {
        let c = BlockCache::with_shards(400, 1);
        c.insert(1, 0, block(0), 100);
        c.insert(1, 10, block(1), 100);
        // Half full: a hit leaves the entry where it is, the oldest.
        assert!(c.get(1, 0).is_some());
        c.insert(1, 20, block(2), 100);
        c.insert(1, 30, block(3), 100);
        c.insert(1, 40, block(4), 100);
        assert!(c.get(1, 0).is_none(), "hit at half full, still evicted first");
        // Full: a hit makes (1, 10), the oldest, the most recent; (1, 20) goes next.
        assert!(c.get(1, 10).is_some());
        c.insert(1, 50, block(5), 100);
        assert!(c.get(1, 20).is_none(), "the least recently used is evicted");
        assert!(c.get(1, 10).is_some() && c.get(1, 30).is_some() && c.get(1, 50).is_some());
    }

    #[test]
    fn cache_respects_capacity_and_counts() {
        let c = BlockCache::with_shards(1000, 1);
        for i in 0..100u64 {
            c.insert(7, i, block(i as u8), 64);
            assert!(c.usage() <= 1000);
        }
        assert_eq!(c.usage(), 15 * 64);
        let (h0, m0) = (c.hits(), c.misses());
        assert!(c.get(7, 99).is_some());
        assert!(c.get(7, 0).is_none());
        assert_eq!((c.hits() - h0, c.misses() - m0), (1, 1));
        // Too big for the cache: not kept, nothing evicted.
        c.insert(8, 0, block(0), 2000);
        assert!(c.get(8, 0).is_none());
        assert_eq!(c.usage(), 15 * 64);
        // Replacing an entry re-charges it.
        c.insert(7, 99, block(9), 10);
        assert_eq!(c.usage(), 14 * 64 + 10);
        assert_eq!(c.get(7, 99).as_ref().map(tag), Some(9));
        c.erase_file(7);
        assert_eq!(c.usage(), 0);
        assert!(c.get(7, 99).is_none());
    }

    #[test]
    fn cache_of_zero_capacity_keeps_nothing() {
        let c = BlockCache::new(0);
        c.insert(1, 0, block(0), 1);
        assert!(c.get(1, 0).is_none());
        assert_eq!((c.usage(), c.capacity(), c.hits(), c.misses()), (0, 0, 0, 1));
    }

    #[test]
    fn cache_shards_split_capacity() {
        let c = BlockCache::new(64 << 20);
        assert_eq!(c.shards.len(), MAX_SHARDS);
        assert_eq!(BlockCache::new(600 * 1024).shards.len(), 2);
        assert_eq!(BlockCache::new(100).shards.len(), 1);
        for i in 0..10_000u64 {
            c.insert(i % 7, i, block(0), 10_000);
        }
        assert!(c.usage() <= c.capacity());
        assert!(c.usage() > c.capacity() / 2);
    }

    #[test]
    fn cache_concurrent_access() {
        let c = Arc::new(BlockCache::new(1 << 20));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    let mut found = 0u64;
                    for i in 0..20_000u64 {
                        let off = (i * 7 + t) % 500;
                        match c.get(1, off) {
                            Some(b) => {
                                assert_eq!(tag(&b), off as u8, "wrong block for {off}");
                                found += 1;
                            }
                            None => c.insert(1, off, block(off as u8), 4096),
                        }
                        if i % 5000 == 0 {
                            c.erase_file(2);
                        }
                    }
                    found
                })
            })
            .collect();
        let found: u64 = threads.into_iter().map(|t| t.join().expect("no panic")).sum();
        assert_eq!(c.hits(), found);
        assert_eq!(c.hits() + c.misses(), 8 * 20_000);
        assert!(c.usage() <= c.capacity());
        assert!(c.hits() > 0);
    }
}

//! Tables end to end: worked examples, a model round trip, damage at every byte.

#![expect(clippy::indexing_slicing, reason = "tests build and damage files at chosen offsets")]

extern crate std;

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use std::println;

use bytes::Bytes;
use strata_vfs::{FileKind, MemFs, RandomRead, Vfs};

use super::cursor::READAHEAD_START;
use super::format::{self, FOOTER_LEN, block_checksum};
use super::*;
use crate::cache::BlockCache;
use crate::error::CorruptionKind;
use crate::key::{MAX_SEQ, ValueKind};
use crate::memtable::{Lookup, Memtable};

// ---- helpers ----

type Entry = (InternalKey, Bytes);

/// A read-only file over shared bytes.
#[derive(Debug, Clone)]
struct VecFile(Arc<Vec<u8>>);

impl RandomRead for VecFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> strata_vfs::Result<()> {
        let start = usize::try_from(offset).map_err(|_| strata_vfs::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or(strata_vfs::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> strata_vfs::Result<u64> {
        Ok(self.0.len() as u64)
    }
}

fn ik(user: &[u8], ts: u64, seq: u64, kind: ValueKind) -> InternalKey {
    InternalKey::new(Bytes::copy_from_slice(user), ts, seq, kind)
}

fn opts(block_size: usize, compression: bool) -> TableOptions {
    TableOptions { block_size, compression, ..TableOptions::default() }
}

/// Builds a table from sorted entries in a fresh MemFs; returns its bytes and properties.
fn build(entries: &[Entry], o: TableOptions) -> (Vec<u8>, TableProps) {
    let fs = MemFs::new();
    let w = fs.create("000001.sst", FileKind::Table).expect("create");
    let mut b = TableBuilder::new(w, "000001.sst".to_string(), o);
    for (k, v) in entries {
        b.add(k, v).expect("add");
    }
    assert_eq!(b.entries(), entries.len() as u64);
    let props = b.finish().expect("finish");
    let bytes = fs.read_all("000001.sst").expect("read");
    assert_eq!(props.file_size, bytes.len() as u64);
    (bytes, props)
}

fn open(bytes: Vec<u8>, cache: Option<Arc<BlockCache>>) -> Result<Arc<Table<VecFile>>> {
    Ok(Arc::new(Table::open(VecFile(Arc::new(bytes)), "t.sst".to_string(), 1, cache)?))
}

/// Every entry of a cursor until it ends or fails.
fn scan(
    table: &Arc<Table<VecFile>>,
    forward: bool,
    start: Option<&InternalKey>,
) -> Result<Vec<Entry>> {
    let mut c = TableCursor::new(Arc::clone(table), forward, start)?;
    let mut out = Vec::new();
    // Every entry is read both ways: borrowed by `head`, then owned by `take`.
    while let Some(view) =
        c.head().map(|e| (e.user_key.to_vec(), e.ts, e.seq, e.kind, e.value.to_vec()))
    {
        let (k, v) = c.take()?.expect("a cursor with a head takes an entry");
        assert_eq!(view, (k.user_key.to_vec(), k.ts, k.seq, k.kind, v.to_vec()));
        out.push((k, v));
    }
    Ok(out)
}

fn memtable_of(entries: &[Entry]) -> Memtable {
    let m = Memtable::new(1);
    for (k, v) in entries {
        m.insert(k.clone(), v.clone());
    }
    m
}

// Randomness: the shared SplitMix64 (`crate::testutil`), seeds printed and overridable with
// STRATA_SEED.
use crate::testutil::{Rng, seeded};

/// A mostly compressible value of `len` bytes.
fn value(rng: &mut Rng, len: usize) -> Bytes {
    let base = rng.below(26) as u8;
    (0..len)
        .map(
            |j| if rng.below(8) == 0 { rng.next() as u8 } else { b'a' + (base + j as u8 % 7) % 26 },
        )
        .collect::<Vec<u8>>()
        .into()
}

/// `n` entries over a pool of user keys sharing prefixes, several versions each, tombstones,
/// unique sequence numbers; sorted.
fn random_entries(
    rng: &mut Rng,
    n: usize,
    distinct: usize,
    max_value: usize,
) -> (Vec<Entry>, Vec<Bytes>) {
    let mut pool = BTreeSet::new();
    pool.insert(Bytes::new());
    while pool.len() < distinct {
        let len = 1 + rng.below(20) as usize;
        let k: Vec<u8> = (0..len).map(|_| b"abcd"[rng.below(4) as usize]).collect();
        pool.insert(Bytes::from(k));
    }
    let pool: Vec<Bytes> = pool.into_iter().collect();
    let mut entries: Vec<Entry> = (0..n)
        .map(|i| {
            let user = rng.pick(&pool).clone();
            let ts = if rng.below(50) == 0 { u64::MAX - rng.below(3) } else { rng.below(200) };
            let seq = i as u64 + 1;
            if rng.below(5) == 0 {
                (InternalKey::new(user, ts, seq, ValueKind::Delete), Bytes::new())
            } else {
                let len = rng.below(max_value as u64 + 1) as usize;
                (InternalKey::new(user, ts, seq, ValueKind::Set), value(rng, len))
            }
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    (entries, pool)
}

/// A key to start a cursor from: an existing one, or one between existing ones.
fn random_start(rng: &mut Rng, entries: &[Entry], pool: &[Bytes]) -> InternalKey {
    match rng.below(3) {
        0 => rng.pick(entries).0.clone(),
        1 => {
            let mut u = rng.pick(pool).to_vec();
            if rng.below(2) == 0 {
                u.push(b'b');
            }
            ik(&u, rng.below(220), rng.below(60_000), ValueKind::Set)
        }
        _ => InternalKey::seek_first(rng.pick(pool).clone()),
    }
}

// ---- worked examples (docs/format/block.md, docs/format/sstable.md) ----

#[test]
fn sstable_block_worked_example_bytes() {
    let mut b = BlockBuilder::new(16);
    b.add(b"abc", b"1");
    b.add(b"abd", b"22");
    b.add(b"b", b"");
    let block = b.finish();
    #[rustfmt::skip]
    let want: &[u8] = &[
        0x00, 0x03, 0x01, b'a', b'b', b'c', b'1',   // entry 0 at offset 0 (restart)
        0x02, 0x01, 0x02, b'd', b'2', b'2',          // entry 1 at offset 7
        0x00, 0x01, 0x00, b'b',                      // entry 2 at offset 13
        0x00, 0x00, 0x00, 0x00,                      // restart[0] = 0
        0x01, 0x00, 0x00, 0x00,                      // 1 restart point
    ];
    assert_eq!(block, want);
    assert_eq!(block_checksum(&block, 0).to_le_bytes(), [0x41, 0x23, 0x55, 0x17]);
    let decoded = Arc::new(Block::new(Bytes::from(block)).expect("valid"));
    let mut it = BlockIter::new(decoded);
    let mut seen = Vec::new();
    while it.advance().expect("valid") {
        seen.push((it.key().to_vec(), it.value_slice().to_vec()));
    }
    assert_eq!(
        seen,
        [
            (b"abc".to_vec(), b"1".to_vec()),
            (b"abd".to_vec(), b"22".to_vec()),
            (b"b".to_vec(), vec![])
        ]
    );
}

/// Entries whose lengths need multi-byte varints (the entry decoder's slow path) mixed with
/// one-byte ones (its fast path), short and long keys sharing long prefixes (crossing the
/// iterator's inline key buffer both ways): every entry reads back and every key is found by
/// `seek`, as sorted `Vec`s say.
#[test]
fn sstable_block_entries_with_short_and_long_lengths_decode() {
    let mut rng = crate::testutil::Rng::new(7);
    let mut users = BTreeSet::new();
    while users.len() < 300 {
        // User keys of 0 to 199 bytes (16 to 215 encoded) sharing long prefixes.
        let len = match rng.below(3) {
            0 => rng.below(24),
            1 => 24 + rng.below(16),
            _ => 40 + rng.below(160),
        } as usize;
        users.insert((0..len).map(|_| b"ab"[rng.below(2) as usize]).collect::<Vec<u8>>());
    }
    let entries: Vec<(Vec<u8>, Vec<u8>)> = users
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let mut enc = Vec::new();
            format::encode_key(&ik(&u, 9, i as u64 + 1, ValueKind::Set), &mut enc);
            let value = vec![b'v'; rng.below(300) as usize];
            (enc, value)
        })
        .collect();
    for interval in [1, 3, 16] {
        let mut b = BlockBuilder::new(interval);
        for (k, v) in &entries {
            b.add(k, v);
        }
        let block = Arc::new(Block::new(Bytes::from(b.finish())).expect("valid"));
        let mut it = BlockIter::new(Arc::clone(&block));
        let mut seen = Vec::new();
        while it.advance().expect("valid") {
            seen.push((it.key().to_vec(), it.value_slice().to_vec()));
        }
        assert_eq!(seen, entries, "restart interval {interval}");
        for (k, v) in &entries {
            let mut it = BlockIter::new(Arc::clone(&block));
            let target = format::KeyRef::parse(k).expect("encoded key");
            assert!(it.seek(&target).expect("valid"), "restart interval {interval}");
            assert_eq!((it.key(), it.value_slice()), (&k[..], &v[..]));
        }
    }
}

/// The two-entry table of `docs/format/sstable.md`.
fn example_table() -> (Vec<u8>, TableProps) {
    let entries = [
        (ik(b"a", 5, 1, ValueKind::Set), Bytes::from_static(b"x")),
        (ik(b"b", 5, 2, ValueKind::Delete), Bytes::new()),
    ];
    build(&entries, opts(4096, false))
}

#[test]
fn sstable_table_worked_example_bytes() {
    let (bytes, props) = example_table();
    let z7 = [0u8; 7];
    let mut want: Vec<u8> = Vec::new();
    let mut put = |parts: &[&[u8]]| parts.iter().for_each(|p| want.extend_from_slice(p));
    // Data block at 0, payload 49 bytes.
    put(&[&[0x00, 0x11, 0x01], b"a", &[5], &z7, &[0x01, 0x01], &z7[..6], b"x"]);
    put(&[&[0x00, 0x11, 0x00], b"b", &[5], &z7, &[0x00, 0x02], &z7[..6]]);
    put(&[&[0, 0, 0, 0], &[1, 0, 0, 0], &[0x00, 0xdc, 0xf6, 0x29, 0x00]]);
    // Filter block at 54, payload 9 bytes.
    put(&[
        &[0x11, 0x20, 0xc4, 0x80, 0x10, 0x43, 0x04, 0x08, 0x07],
        &[0x00, 0x2f, 0x51, 0xeb, 0xb1],
    ]);
    // Properties block at 68, payload 50 bytes.
    put(&[&[0x01, 0x02, 0x01, 0x01, 0x00, 0x23, 0x0e, 0x22, 0x01, 0x01, 0x02, 0x05, 0x05, 0x00]]);
    put(&[&[0x11], b"a", &[5], &z7, &[0x01, 0x01], &z7[..6]]);
    put(&[&[0x11], b"b", &[5], &z7, &[0x00, 0x02], &z7[..6]]);
    put(&[&[0x00, 0xca, 0xfc, 0x08, 0xf8]]);
    // Index block at 123, payload 30 bytes: last key of block 0 -> (offset 0, size 49).
    put(&[&[0x00, 0x11, 0x02], b"b", &[5], &z7, &[0x00, 0x02], &z7[..6], &[0x00, 0x31]]);
    put(&[&[0, 0, 0, 0], &[1, 0, 0, 0], &[0x00, 0xae, 0x69, 0xd0, 0xe1]]);
    // Footer at 158.
    #[rustfmt::skip]
    put(&[
        &[0x7b, 0, 0, 0, 0, 0, 0, 0], &[0x1e, 0, 0, 0, 0, 0, 0, 0],   // index: 123, 30
        &[0x36, 0, 0, 0, 0, 0, 0, 0], &[0x09, 0, 0, 0, 0, 0, 0, 0],   // filter: 54, 9
        &[0x44, 0, 0, 0, 0, 0, 0, 0], &[0x32, 0, 0, 0, 0, 0, 0, 0],   // props: 68, 50
        &[0x01, 0, 0, 0],                                             // single index, reserved
        &[0x01, 0, 0, 0],                                             // format version 1
        &[0x0f, 0xa4, 0x7c, 0xe0],                                    // masked CRC-32C of 0..56
        b"STRATSST",
    ]);
    assert_eq!(bytes.len(), 226);
    assert_eq!(hex(&bytes), hex(&want));
    let footer = Footer::decode(&bytes[158..]).expect("footer");
    assert_eq!(footer.index, BlockHandle { offset: 123, size: 30 });
    assert_eq!((props.data_blocks, props.index_size, props.filter_size), (1, 35, 14));
    assert_eq!((props.raw_key_bytes, props.raw_value_bytes, props.deletions), (34, 1, 1));
    let t = open(bytes, None).expect("opens");
    assert_eq!(t.props(), &props);
    assert!(t.may_contain(b"a") && t.may_contain(b"b"));
    assert_eq!(
        t.get(b"a", 9, None).expect("get"),
        Lookup::Value { ts: 5, seq: 1, value: Bytes::from_static(b"x") }
    );
    assert_eq!(t.get(b"b", 9, None).expect("get"), Lookup::Deleted { ts: 5, seq: 2 });
}

fn hex(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, x) in b.iter().enumerate() {
        if i % 16 == 0 {
            s.push_str(&alloc::format!("\n{i:4}:"));
        }
        s.push_str(&alloc::format!(" {x:02x}"));
    }
    s
}

// ---- the model round trip ----

/// The model's answer for a cursor from `start`: the index of the first entry `>= start`
/// (forward) or one past the last entry `<= start` (backward).
fn model_from(entries: &[Entry], forward: bool, start: Option<&InternalKey>) -> Vec<Entry> {
    match (start, forward) {
        (None, true) => entries.to_vec(),
        (None, false) => entries.iter().rev().cloned().collect(),
        (Some(s), true) => entries[entries.partition_point(|e| e.0 < *s)..].to_vec(),
        (Some(s), false) => {
            entries[..entries.partition_point(|e| e.0 <= *s)].iter().rev().cloned().collect()
        }
    }
}

/// Walks at most `limit` entries of a cursor.
fn walk(
    table: &Arc<Table<VecFile>>,
    forward: bool,
    start: Option<&InternalKey>,
    limit: usize,
) -> Vec<Entry> {
    let mut c = TableCursor::new(Arc::clone(table), forward, start).expect("cursor");
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(e) = c.take().expect("take") else { break };
        out.push(e);
    }
    out
}

/// Walks a forward cursor from a random start with a random mix of steps: by reference
/// (`head` and `advance`, read in place), owned (`take`, which decodes the rest of its block)
/// and `seek_forward` to a key near or far; every head must be the model's entry.
fn walk_mixed(rng: &mut Rng, table: &Arc<Table<VecFile>>, entries: &[Entry], pool: &[Bytes]) {
    let start = random_start(rng, entries, pool);
    let mut c = TableCursor::new(Arc::clone(table), true, Some(&start)).expect("cursor");
    let mut at = entries.partition_point(|e| e.0 < start);
    let view = |k: &InternalKey, v: &[u8]| (k.user_key.to_vec(), k.ts, k.seq, k.kind, v.to_vec());
    for step in 0..400 {
        let head = c.head().map(|e| (e.user_key.to_vec(), e.ts, e.seq, e.kind, e.value.to_vec()));
        assert_eq!(head, entries.get(at).map(|(k, v)| view(k, v)), "head at step {step}");
        if at == entries.len() {
            break;
        }
        match rng.below(8) {
            0..=3 => {
                c.advance().expect("advance");
                at += 1;
            }
            4..=6 => {
                let taken = c.take().expect("take").expect("a head takes an entry");
                assert_eq!(&taken, &entries[at], "take at step {step}");
                at += 1;
            }
            _ => {
                let target = if rng.below(2) == 0 {
                    let near = (at + rng.below(80) as usize).min(entries.len() - 1);
                    entries[near].0.clone()
                } else {
                    random_start(rng, entries, pool)
                };
                c.seek_forward(&target).expect("seek");
                // Never backwards: a target before the head leaves the cursor where it is.
                at = at.max(entries.partition_point(|e| e.0 < target));
            }
        }
    }
}

fn round_trip(rng: &mut Rng, compression: bool, cache: Option<Arc<BlockCache>>) {
    let (entries, pool) = random_entries(rng, 50_000, 12_000, 2000);
    let (bytes, props) = build(&entries, opts(512, compression));
    println!(
        "compression {compression}: {} entries, {} bytes (raw {} + {}), {} data blocks, {} index partitions",
        props.entries,
        props.file_size,
        props.raw_key_bytes,
        props.raw_value_bytes,
        props.data_blocks,
        props.index_partitions
    );
    assert!(props.index_partitions > 1, "the index must be partitioned");
    assert_eq!(props.entries, entries.len() as u64);
    assert_eq!(
        props.deletions,
        entries.iter().filter(|e| e.0.kind == ValueKind::Delete).count() as u64
    );
    assert_eq!(props.smallest, entries[0].0);
    assert_eq!(props.largest, entries[entries.len() - 1].0);
    assert_eq!(props.max_seq, entries.len() as u64);
    if compression {
        assert!(props.file_size < props.raw_value_bytes * 3 / 4, "compression saves space");
    } else {
        assert!(props.file_size > props.raw_value_bytes);
    }
    let table = open(bytes, cache).expect("open");
    assert_eq!(table.props(), &props);

    assert_eq!(walk(&table, true, None, usize::MAX), entries, "full forward scan");
    assert_eq!(
        walk(&table, false, None, usize::MAX),
        model_from(&entries, false, None),
        "full backward scan"
    );
    for _ in 0..300 {
        let start = random_start(rng, &entries, &pool);
        let forward = rng.below(2) == 0;
        let limit = 1 + rng.below(400) as usize;
        let mut want = model_from(&entries, forward, Some(&start));
        want.truncate(limit);
        assert_eq!(
            walk(&table, forward, Some(&start), limit),
            want,
            "from {start:?} forward {forward}"
        );
    }

    for _ in 0..200 {
        walk_mixed(rng, &table, &entries, &pool);
    }

    let mem = memtable_of(&entries);
    for i in 0..20_000 {
        let user = if i % 4 == 0 {
            let mut u = rng.pick(&pool).to_vec();
            u.push(b'e');
            Bytes::from(u)
        } else {
            rng.pick(&pool).clone()
        };
        let snapshot = rng.below(entries.len() as u64 + 2);
        let at_ts = match rng.below(3) {
            0 => None,
            1 => Some(rng.below(220)),
            _ => Some(u64::MAX - rng.below(4)),
        };
        assert_eq!(
            table.get(&user, snapshot, at_ts).expect("get"),
            mem.get(&user, snapshot, at_ts),
            "get {user:?} at {snapshot} {at_ts:?}"
        );
    }

    for (k, _) in &entries {
        assert!(table.may_contain(&k.user_key), "no false negatives");
    }
    // Distinct absent keys: pool keys hold no 'e'.
    let probes = 20_000;
    let positives = (0..probes)
        .filter(|i| {
            let mut k = rng.pick(&pool).to_vec();
            k.extend_from_slice(alloc::format!("e{i}").as_bytes());
            table.may_contain(&k)
        })
        .count();
    println!("bloom: {positives} false positives in {probes} absent keys");
    assert!(positives * 50 <= probes, "false positive rate above 2%: {positives}/{probes}");
}

#[test]
fn sstable_round_trip_matches_model_uncompressed() {
    round_trip(&mut seeded("round_trip_uncompressed"), false, None);
}

#[test]
fn sstable_round_trip_matches_model_compressed_cached() {
    let cache = Arc::new(BlockCache::new(512 * 1024));
    round_trip(&mut seeded("round_trip_compressed"), true, Some(Arc::clone(&cache)));
    assert!(cache.hits() > 0 && cache.misses() > 0);
    assert!(cache.usage() <= cache.capacity());
}

#[test]
fn sstable_single_level_index_and_tiny_tables() {
    let mut rng = seeded("single_level");
    for n in [1usize, 2, 3, 17, 200] {
        let (entries, pool) = random_entries(&mut rng, n, 1 + n / 2, 100);
        for o in [
            opts(4096, true),
            opts(64, false),
            TableOptions { restart_interval: 1, ..opts(128, true) },
        ] {
            let (bytes, props) = build(&entries, o.clone());
            let table = open(bytes, None).expect("open");
            assert_eq!(table.props(), &props);
            assert_eq!(walk(&table, true, None, usize::MAX), entries);
            assert_eq!(walk(&table, false, None, usize::MAX), model_from(&entries, false, None));
            for _ in 0..50 {
                let start = random_start(&mut rng, &entries, &pool);
                for forward in [true, false] {
                    assert_eq!(
                        walk(&table, forward, Some(&start), usize::MAX),
                        model_from(&entries, forward, Some(&start))
                    );
                }
            }
            let mem = memtable_of(&entries);
            for u in &pool {
                for snap in [0, n as u64 / 2, u64::MAX] {
                    assert_eq!(table.get(u, snap, None).expect("get"), mem.get(u, snap, None));
                }
            }
        }
    }
}

// ---- damage ----

/// `keys` user keys with 1-3 versions each, some tombstones.
fn small_entries(keys: u64) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut seq = 0;
    for i in 0..keys {
        for v in 0..(1 + i % 3) {
            seq += 1;
            let key = alloc::format!("key{i:03}");
            let kind = if (i + v) % 5 == 4 { ValueKind::Delete } else { ValueKind::Set };
            let val = if kind == ValueKind::Set {
                Bytes::from(
                    alloc::format!("value {i} {v} ").repeat(1 + (i as usize * 7 + v as usize) % 6),
                )
            } else {
                Bytes::new()
            };
            out.push((ik(key.as_bytes(), 100 - v, seq, kind), val));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Reads everything a damaged table offers; every read must be correct or a corruption error.
/// Returns how many reads failed.
fn check_damaged(bytes: Vec<u8>, entries: &[Entry], mem: &Memtable, what: &str) -> usize {
    let table = match open(bytes, Some(Arc::new(BlockCache::new(1 << 20)))) {
        Ok(t) => t,
        Err(e) => {
            assert!(e.is_corruption(), "{what}: open failed with {e:?}");
            return 1;
        }
    };
    let mut failures = 0;
    for forward in [true, false] {
        let want = model_from(entries, forward, None);
        let mut got = Vec::new();
        let r = TableCursor::new(Arc::clone(&table), forward, None).and_then(|mut c| {
            while let Some(e) = c.take()? {
                got.push(e);
            }
            Ok(())
        });
        match r {
            Ok(()) => assert_eq!(got, want, "{what}: a damaged table returned wrong data"),
            Err(e) => {
                assert!(e.is_corruption(), "{what}: scan failed with {e:?}");
                assert_eq!(got[..], want[..got.len()], "{what}: wrong data before the error");
                failures += 1;
            }
        }
    }
    let mut users: Vec<&Bytes> = entries.iter().map(|e| &e.0.user_key).collect();
    users.dedup();
    for u in users {
        for snap in [1, 20, u64::MAX] {
            match table.get(u, snap, None) {
                Ok(l) => {
                    assert_eq!(l, mem.get(u, snap, None), "{what}: get {u:?} returned wrong data")
                }
                Err(e) => {
                    assert!(e.is_corruption(), "{what}: get failed with {e:?}");
                    failures += 1;
                }
            }
        }
    }
    failures
}

fn damage_every_byte(keys: u64, o: TableOptions, partitioned: bool) {
    let entries = small_entries(keys);
    let mem = memtable_of(&entries);
    let (bytes, props) = build(&entries, o);
    println!(
        "damage table: {} bytes, {} blocks, {} partitions",
        bytes.len(),
        props.data_blocks,
        props.index_partitions
    );
    assert!((2048..=4096).contains(&bytes.len()), "table of {} bytes", bytes.len());
    assert_eq!(props.index_partitions > 0, partitioned);
    assert_eq!(check_damaged(bytes.clone(), &entries, &mem, "intact"), 0);
    let mut detected = 0;
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 1 << (at % 8);
        detected +=
            usize::from(check_damaged(bad, &entries, &mem, &alloc::format!("flip at {at}")) > 0);
    }
    // Every byte is covered by a checksum and read by a full scan (or at open).
    assert_eq!(detected, bytes.len(), "every flip is detected");
    for len in 0..bytes.len() {
        let cut = bytes[..len].to_vec();
        assert!(check_damaged(cut, &entries, &mem, &alloc::format!("cut at {len}")) > 0);
    }
}

#[test]
fn sstable_bit_flip_and_truncation_single_index() {
    damage_every_byte(50, opts(256, true), false);
}

#[test]
fn sstable_bit_flip_and_truncation_partitioned_index() {
    damage_every_byte(20, TableOptions { restart_interval: 2, ..opts(64, false) }, true);
}

/// Rewrites the footer with `f` and a fresh checksum.
fn with_footer(bytes: &[u8], f: impl FnOnce(&mut Footer)) -> Vec<u8> {
    let at = bytes.len() - FOOTER_LEN;
    let mut footer = Footer::decode(&bytes[at..]).expect("footer");
    f(&mut footer);
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(&footer.encode());
    out
}

fn corruption_kind(r: Result<Arc<Table<VecFile>>>) -> (u64, CorruptionKind) {
    match r {
        Err(Error::Corruption { offset, kind, .. }) => (offset, kind),
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn sstable_footer_and_block_errors_name_the_right_kind() {
    let (bytes, _) = example_table();
    let end = bytes.len() as u64 - FOOTER_LEN as u64;
    // Handles past the block area.
    let b = with_footer(&bytes, |f| f.props.offset = end);
    assert_eq!(corruption_kind(open(b, None)), (end, CorruptionKind::Truncated));
    let b = with_footer(&bytes, |f| f.filter.size = u64::MAX);
    assert_eq!(corruption_kind(open(b, None)), (54, CorruptionKind::Truncated));
    let b = with_footer(&bytes, |f| f.index.size = 31);
    assert_eq!(corruption_kind(open(b, None)), (123, CorruptionKind::Truncated));
    // A handle to the wrong place: checksum mismatch.
    let b = with_footer(&bytes, |f| f.index.offset = 0);
    assert_eq!(corruption_kind(open(b, None)), (0, CorruptionKind::Checksum));
    // Magic, version, checksum, tags.
    let mut b = bytes.clone();
    *b.last_mut().expect("byte") ^= 1;
    assert_eq!(corruption_kind(open(b, None)), (end, CorruptionKind::BadMagic));
    let mut b = bytes.clone();
    b[end as usize + 52] = 2;
    assert_eq!(corruption_kind(open(b, None)), (end, CorruptionKind::UnsupportedVersion(2)));
    let mut b = bytes.clone();
    b[end as usize + 3] ^= 0x40;
    assert_eq!(corruption_kind(open(b, None)), (end, CorruptionKind::Checksum));
    let b = with_footer(&bytes, |f| f.index_kind = IndexKind::Partitioned);
    let t = open(b, None).expect("the top level decodes either way");
    assert!(
        t.get(b"a", 9, None).is_err_and(|e| e.is_corruption()),
        "data read as an index partition"
    );
    assert_eq!(corruption_kind(open(bytes[..10].to_vec(), None)), (0, CorruptionKind::Truncated));

    // A block with a valid checksum but an unknown compression type.
    let mut b = bytes.clone();
    b[49] = 7;
    let crc = block_checksum(&b[..49], 7).to_le_bytes();
    b[50..54].copy_from_slice(&crc);
    let t = open(b, None).expect("data blocks are read lazily");
    match t.get(b"a", 9, None) {
        Err(Error::Corruption { offset: 0, kind: CorruptionKind::UnknownTag(7), .. }) => {}
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn sstable_lz4_declared_length_is_bounded() {
    // A compressed payload that claims 1 GiB, or more than lz4 can expand to, is refused
    // without allocating it.
    for declared in [1u64 << 30, 10_000, 3] {
        let mut payload = Vec::new();
        crate::codec::put_varint(&mut payload, declared);
        payload.extend_from_slice(&[0x10, b'a']); // one literal "a"
        let mut stored = payload.clone();
        stored.push(1);
        stored.extend_from_slice(&block_checksum(&payload, 1).to_le_bytes());
        assert_eq!(format::unwrap_block(stored), Err(CorruptionKind::Truncated), "{declared}");
    }
    let mut payload = Vec::new();
    crate::codec::put_varint(&mut payload, 1);
    payload.extend_from_slice(&[0x10, b'a']);
    let mut stored = payload.clone();
    stored.push(1);
    stored.extend_from_slice(&block_checksum(&payload, 1).to_le_bytes());
    assert_eq!(format::unwrap_block(stored).as_deref(), Ok(&b"a"[..]));
}

#[test]
fn sstable_random_bytes_never_panic() {
    let mut rng = seeded("random_bytes");
    for _ in 0..2000 {
        let len = rng.below(300) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if let Some(b) = Block::new(Bytes::from(data.clone())).ok().map(Arc::new) {
            let mut it = BlockIter::new(Arc::clone(&b));
            let mut n = 0;
            while let Ok(true) = it.advance() {
                n += 1;
                assert!(n <= len);
            }
            let target = ik(b"abc", 5, 5, ValueKind::Set);
            let _ = BlockIter::new(b).seek(&format::KeyRef::of(&target));
        }
        let _ = Filter::new(Bytes::from(data.clone())).map(|f| f.may_contain(b"x"));
        let _ = format::decode_props(&data, 0);
        let _ = Footer::decode(&data);
        data.push(rng.below(3) as u8);
        let crc = block_checksum(&data[..data.len() - 1], data[data.len() - 1]).to_le_bytes();
        data.extend_from_slice(&crc);
        let _ = format::unwrap_block(data);
    }
}

// ---- the builder's contract ----

#[test]
fn sstable_builder_rejects_bad_input() {
    let fs = MemFs::new();
    let new = |name: &str, o: TableOptions| {
        TableBuilder::new(fs.create(name, FileKind::Table).expect("create"), name.to_string(), o)
    };
    let mut b = new("1.sst", TableOptions::default());
    b.add(&ik(b"b", 5, 5, ValueKind::Set), b"v").expect("first");
    for k in [
        ik(b"b", 5, 5, ValueKind::Set),
        ik(b"a", 9, 9, ValueKind::Set),
        ik(b"b", 6, 1, ValueKind::Set),
    ] {
        assert!(matches!(b.add(&k, b"v"), Err(Error::InvalidArgument { .. })), "{k:?}");
    }
    assert!(matches!(
        b.add(&ik(b"b", 5, 1 << 56, ValueKind::Set), b""),
        Err(Error::InvalidArgument { .. })
    ));
    b.add(&ik(b"b", 5, 4, ValueKind::Set), b"older").expect("an older version");
    assert_eq!(b.entries(), 2);
    assert!(b.estimated_size() > 0);
    b.finish().expect("finish");

    let b = new("2.sst", TableOptions::default());
    assert!(matches!(b.finish(), Err(Error::InvalidArgument { .. })), "empty table");
    let mut b = new("3.sst", TableOptions { block_size: 10, ..TableOptions::default() });
    assert!(matches!(
        b.add(&ik(b"a", 1, 1, ValueKind::Set), b""),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(TableOptions { restart_interval: 0, ..TableOptions::default() }.validate().is_err());
    assert!(TableOptions { bloom_bits_per_key: 65, ..TableOptions::default() }.validate().is_err());
    assert!(TableOptions::default().validate().is_ok());
}

#[test]
fn sstable_without_filter_and_with_large_values() {
    let entries = vec![
        (ik(b"big", 1, 1, ValueKind::Set), Bytes::from(vec![7u8; 100_000])),
        (ik(b"big2", 1, 2, ValueKind::Set), Bytes::from(vec![9u8; 70_000])),
        (ik(b"small", 1, 3, ValueKind::Set), Bytes::from_static(b"s")),
    ];
    for compression in [false, true] {
        let o = TableOptions { bloom_bits_per_key: 0, ..opts(4096, compression) };
        let (bytes, props) = build(&entries, o);
        assert_eq!(props.data_blocks, 3);
        assert_eq!(compression, props.file_size < 10_000, "{}", props.file_size);
        let t = open(bytes, None).expect("open");
        assert!(t.may_contain(b"anything"), "no filter matches everything");
        assert_eq!(scan(&t, true, None).expect("scan"), entries);
        assert_eq!(
            t.get(b"big2", 9, None).expect("get"),
            Lookup::Value { ts: 1, seq: 2, value: entries[1].1.clone() }
        );
        assert_eq!(t.get(b"bi", 9, None).expect("get"), Lookup::Absent);
        assert_eq!(t.get(b"zzz", 9, None).expect("get"), Lookup::Absent);
    }
}

#[test]
fn sstable_shared_table_concurrent_reads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Table<strata_vfs::MemFile>>();
    assert_send_sync::<TableCursor<strata_vfs::MemFile>>();
    let mut rng = seeded("concurrent_reads");
    let (entries, pool) = random_entries(&mut rng, 5000, 1000, 300);
    let (bytes, _) = build(&entries, opts(512, true));
    let cache = Arc::new(BlockCache::with_shards(64 * 1024, 4));
    let table = open(bytes, Some(Arc::clone(&cache))).expect("open");
    let mem = Arc::new(memtable_of(&entries));
    let entries = Arc::new(entries);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (table, mem, pool, entries) =
                (Arc::clone(&table), Arc::clone(&mem), pool.clone(), Arc::clone(&entries));
            std::thread::spawn(move || {
                let mut rng = Rng(t);
                for _ in 0..2000 {
                    let u = rng.pick(&pool);
                    let snap = rng.below(6000);
                    assert_eq!(table.get(u, snap, None).expect("get"), mem.get(u, snap, None));
                }
                let forward = t % 2 == 0;
                assert_eq!(
                    scan(&table, forward, None).expect("scan"),
                    model_from(&entries, forward, None)
                );
            })
        })
        .collect();
    for t in threads {
        t.join().expect("reader thread");
    }
    assert!(cache.hits() > 0);
}

#[test]
fn sstable_crafted_empty_partitioned_index_reads_as_empty() {
    // A well-formed file (every checksum valid) whose top-level index has no partitions.
    let (bytes, _) = example_table();
    let mut b = bytes[..158].to_vec();
    let empty = BlockBuilder::new(1).finish();
    b.extend_from_slice(&empty);
    b.push(0);
    b.extend_from_slice(&block_checksum(&empty, 0).to_le_bytes());
    let mut footer = Footer::decode(&bytes[158..]).expect("footer");
    footer.index = BlockHandle { offset: 158, size: empty.len() as u64 };
    footer.index_kind = IndexKind::Partitioned;
    b.extend_from_slice(&footer.encode());
    let t = open(b, None).expect("opens");
    assert_eq!(t.get(b"a", 9, None).expect("get"), Lookup::Absent);
    for forward in [true, false] {
        assert!(scan(&t, forward, None).expect("scan").is_empty());
        let start = ik(b"a", 1, 1, ValueKind::Set);
        assert!(scan(&t, forward, Some(&start)).expect("scan").is_empty());
    }
}

// ---- walking every block (verify, dump-sst) ----

/// `(role, offset, ok, entries)` of every visit.
fn visits(bytes: Vec<u8>) -> Vec<(BlockRole, u64, bool, u64)> {
    let table = open(bytes, None).expect("footer and index intact");
    let mut out = Vec::new();
    table
        .walk_blocks(|v| {
            out.push((v.role, v.handle.offset, v.block.is_ok(), v.entries));
            Ok(())
        })
        .expect("walk");
    out
}

#[test]
fn sstable_walk_visits_every_block_and_reports_each_damaged_one() {
    let entries = small_entries(50);
    let partitioning = TableOptions { restart_interval: 2, ..opts(64, false) };
    for (o, partitioned) in [(opts(256, true), false), (partitioning, true)] {
        let (bytes, props) = build(&entries, o);
        let intact = visits(bytes.clone());
        let data: Vec<_> = intact.iter().filter(|v| v.0 == BlockRole::Data).collect();
        let parts: Vec<_> = intact.iter().filter(|v| v.0 == BlockRole::IndexPartition).collect();
        assert_eq!(data.len() as u64, props.data_blocks);
        assert_eq!(parts.len() as u64, props.index_partitions);
        assert_eq!(partitioned, !parts.is_empty());
        assert!(intact.iter().all(|v| v.2), "an intact table has no damaged block");
        assert_eq!(data.iter().map(|v| v.3).sum::<u64>(), props.entries);

        // One flipped byte in each data block in turn: that block alone is damaged, and every
        // other block is still visited.
        for d in &data {
            let mut bad = bytes.clone();
            bad[d.1 as usize + 2] ^= 0x10;
            let got = visits(bad);
            assert_eq!(got.len(), intact.len(), "the walk goes on past the damage");
            let damaged: Vec<u64> = got.iter().filter(|v| !v.2).map(|v| v.1).collect();
            assert_eq!(damaged, [d.1]);
        }
        // A flipped index partition hides its own data blocks, not the others'.
        if let Some(p) = parts.get(1) {
            let mut bad = bytes.clone();
            bad[p.1 as usize + 1] ^= 0x10;
            let got = visits(bad);
            let damaged: Vec<_> = got.iter().filter(|v| !v.2).collect();
            assert_eq!(damaged.len(), 1);
            assert_eq!((damaged[0].0, damaged[0].1), (BlockRole::IndexPartition, p.1));
            assert_eq!(
                got.len() as u64,
                intact.len() as u64 - p.3,
                "its {} blocks are hidden",
                p.3
            );
        }
    }
}

/// A forward scan reads blocks ahead of where it is, which it may never need: a damaged block
/// among them fails the scan only when the scan reaches it, with every entry before it read
/// correctly, with and without a cache and compression.
#[test]
fn sstable_readahead_reports_damage_only_where_the_scan_reaches_it() {
    let entries = small_entries(200);
    let want = model_from(&entries, true, None);
    for compression in [false, true] {
        let (bytes, _) = build(&entries, opts(128, compression));
        let data: Vec<_> =
            visits(bytes.clone()).into_iter().filter(|v| v.0 == BlockRole::Data).collect();
        assert!(data.len() >= 40, "enough blocks for several readahead runs: {}", data.len());
        for d in [2, 3, 5, data.len() / 2, data.len() - 1] {
            let before = data[..d].iter().map(|v| v.3).sum::<u64>() as usize;
            let mut bad = bytes.clone();
            bad[data[d].1 as usize + 2] ^= 0x10;
            for cache in [None, Some(Arc::new(BlockCache::new(1 << 20)))] {
                let table = open(bad.clone(), cache).expect("footer and index intact");
                let mut c = TableCursor::new(table, true, None).expect("first block intact");
                let mut got = Vec::new();
                let err = loop {
                    match c.take() {
                        Ok(Some(e)) => got.push(e),
                        Ok(None) => panic!("damage in data block {d} was not reported"),
                        Err(e) => break e,
                    }
                };
                assert!(err.is_corruption(), "block {d}: {err:?}");
                // The step past the last entry before the damage is the one that loads the
                // damaged block, and it fails.
                assert_eq!(got.len(), before - 1, "block {d}: entries read before the error");
                assert_eq!(got[..], want[..got.len()], "block {d}: wrong data before the error");
            }
        }
        // Intact, the same scans read everything, through several readahead runs.
        for cache in [None, Some(Arc::new(BlockCache::new(1 << 20)))] {
            let table = open(bytes.clone(), cache).expect("intact");
            assert_eq!(scan(&table, true, None).expect("scan"), want);
        }
    }
}

/// Blocks read ahead enter the cache, and count as misses, only when the scan uses them: a
/// scan that stops early leaves no unused block behind, a full scan counts each data block
/// once as a miss, and a second full scan finds every one.
#[test]
fn sstable_readahead_caches_and_counts_only_the_blocks_a_scan_uses() {
    let entries = small_entries(200);
    let (bytes, props) = build(&entries, opts(512, true));
    assert_eq!(props.index_partitions, 0, "a single-level index keeps the counts to data blocks");
    let data: Vec<_> =
        visits(bytes.clone()).into_iter().filter(|v| v.0 == BlockRole::Data).collect();
    assert!(data.len() >= 12, "blocks: {}", data.len());
    let cache = Arc::new(BlockCache::new(4 << 20));
    let table = open(bytes, Some(Arc::clone(&cache))).expect("intact");

    // Through the first 6 blocks (readahead starts at the second miss and reads far past).
    let used = data[..6].iter().map(|v| v.3).sum::<u64>() as usize;
    let mut c = TableCursor::new(Arc::clone(&table), true, None).expect("cursor");
    for _ in 0..used - 1 {
        c.take().expect("take").expect("an entry");
    }
    drop(c);
    assert_eq!((cache.hits(), cache.misses()), (0, 6), "only the blocks used were counted");
    let cached = cache.usage();

    // A full scan: the 6 blocks are hits, every other block one miss.
    let want = model_from(&entries, true, None);
    assert_eq!(scan(&table, true, None).expect("scan"), want);
    assert_eq!((cache.hits(), cache.misses()), (6, data.len() as u64));
    assert!(cache.usage() > cached);
    let full = cache.usage();

    // Again: all hits, nothing read.
    assert_eq!(scan(&table, true, None).expect("scan"), want);
    assert_eq!((cache.hits(), cache.misses()), (6 + data.len() as u64, data.len() as u64));
    assert_eq!(cache.usage(), full);
}

/// A long walk (once its readahead has grown to the largest) caches only the blocks walks read
/// ahead before: one full scan of a table leaves most of it out of the cache, a second caches
/// the rest, a third finds every block. Short walks and the start of long ones cache as before.
#[test]
fn sstable_long_scan_caches_read_ahead_blocks_on_their_second_read() {
    let entries: Vec<Entry> = (0..4_000u32)
        .map(|i| {
            let value: Vec<u8> =
                (0..100u32).map(|j| (i.wrapping_mul(31) ^ j.wrapping_mul(7)) as u8).collect();
            (
                ik(alloc::format!("key{i:06}").as_bytes(), 5, u64::from(i) + 1, ValueKind::Set),
                Bytes::from(value),
            )
        })
        .collect();
    let (bytes, _) = build(&entries, opts(1024, false));
    let blocks = visits(bytes.clone());
    let count = |role| blocks.iter().filter(|v| v.0 == role).count() as u64;
    // Index partitions go through the cache too: each is one miss of the first pass, and the
    // cursor finds them without counting after that.
    let (data, parts) = (count(BlockRole::Data), count(BlockRole::IndexPartition));
    // At most this many blocks are read before the readahead reaches its largest size
    // (fewer: a run also ends at its index partition's last block).
    let short = ((READAHEAD_START + 2 * READAHEAD_START + 4 * READAHEAD_START) / 1024) as u64;
    assert!(data > 3 * short, "the walk outgrows the short phase: {data} blocks");
    let cache = Arc::new(BlockCache::new(16 << 20));
    let table = open(bytes, Some(Arc::clone(&cache))).expect("intact");
    let want = model_from(&entries, true, None);

    assert_eq!(scan(&table, true, None).expect("scan"), want);
    assert_eq!((cache.hits(), cache.misses()), (0, data + parts));
    let first = cache.usage();

    // The second pass finds the blocks of the first one's short phase and caches the rest.
    assert_eq!(scan(&table, true, None).expect("scan"), want);
    let kept = cache.hits();
    assert!(kept >= 8 && kept <= short, "{kept} of {data} blocks cached by one pass");
    assert_eq!(cache.misses(), data + parts + (data - kept));
    assert!(cache.usage() > 2 * first);

    // The third finds every block.
    let (hits, misses) = (cache.hits(), cache.misses());
    assert_eq!(scan(&table, true, None).expect("scan"), want);
    assert_eq!((cache.hits() - hits, cache.misses() - misses), (data, 0));
}

/// The partitioned-index table of `docs/format/sstable.md`: five entries, one per 64-byte
/// data block, whose index outgrows 4 × 64 bytes at the fifth block.
fn partitioned_example_table() -> (Vec<u8>, TableProps) {
    let entries: Vec<Entry> = (0..6u8)
        .map(|i| {
            (ik(&[b'a' + i; 34], 5, u64::from(i) + 1, ValueKind::Set), Bytes::from_static(b"val"))
        })
        .collect();
    build(&entries, opts(64, false))
}

/// Every byte of the partitioned-index worked example in `docs/format/sstable.md`: five index
/// partitions, all before the filter (the last one is written by `finish`, after the last data
/// block).
#[test]
fn sstable_partitioned_index_worked_example_bytes() {
    let (bytes, props) = partitioned_example_table();
    // K(c, seq): 34 bytes of `c`, ts 5, `seq << 8 | set`: 50 bytes.
    let key = |c: u8, seq: u8| {
        let mut k = vec![c; 34];
        k.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0, 0x01, seq, 0, 0, 0, 0, 0, 0]);
        k
    };
    let one_restart: &[u8] = &[0, 0, 0, 0, 1, 0, 0, 0];
    let entry: &[u8] = &[0x00, 0x32, 0x03]; // shared 0, unshared 50, value 3
    let mut want: Vec<u8> = Vec::new();
    let mut put = |parts: &[&[u8]]| parts.iter().for_each(|p| want.extend_from_slice(p));
    // Data blocks 0..=4 at 69 * i: one entry each, payload 64.
    let data_crc: [[u8; 4]; 5] = [
        [0xbc, 0x2d, 0x37, 0x66],
        [0x62, 0x8a, 0x91, 0x98],
        [0xbf, 0x18, 0x4a, 0xe4],
        [0x2e, 0x10, 0xfe, 0x3f],
        [0x13, 0x82, 0x35, 0xcd],
    ];
    for (i, crc) in (0u8..).zip(&data_crc) {
        put(&[entry, &key(b'a' + i, i + 1), b"val", one_restart, &[0x00], crc]);
    }
    // Index partition 0 at 345, payload 122: blocks 0 and 1 (handles 0/64 and 69/64).
    put(&[&[0x00, 0x32, 0x02], &key(b'a', 1), &[0x00, 0x40]]);
    put(&[&[0x00, 0x32, 0x02], &key(b'b', 2), &[0x45, 0x40]]);
    put(&[&[0, 0, 0, 0, 0x37, 0, 0, 0, 2, 0, 0, 0], &[0x00, 0x31, 0x2f, 0x0e, 0xcc]]);
    // Index partitions 1..=3 at 472, 541, 610, payload 64: blocks 2, 3, 4 (138, 207, 276).
    put(&[entry, &key(b'c', 3), &[0x8a, 0x01, 0x40], one_restart, &[0x00, 0xcc, 0xbb, 0x6c, 0x47]]);
    put(&[entry, &key(b'd', 4), &[0xcf, 0x01, 0x40], one_restart, &[0x00, 0x3e, 0xe3, 0xaf, 0x53]]);
    put(&[entry, &key(b'e', 5), &[0x94, 0x02, 0x40], one_restart, &[0x00, 0xe3, 0x5c, 0x00, 0xa0]]);
    // Data block 5 at 679.
    put(&[entry, &key(b'f', 6), b"val", one_restart, &[0x00, 0x2d, 0x35, 0x8b, 0xc1]]);
    // Index partition 4 at 748 (written by finish): block 5 (679/64).
    put(&[entry, &key(b'f', 6), &[0xa7, 0x05, 0x40], one_restart, &[0x00, 0x4f, 0x75, 0x27, 0xfb]]);
    // Filter block at 817, payload 9.
    put(&[
        &[0x1a, 0x84, 0x4b, 0x38, 0x4c, 0xdf, 0xd7, 0x73, 0x07],
        &[0x00, 0xfc, 0xf9, 0x76, 0x94],
    ]);
    // Properties block at 831, payload 118.
    put(&[&[0x01, 0x06, 0x00, 0x06, 0x05, 0xc8, 0x05, 0x0e, 0xac, 0x02, 0x12]]);
    put(&[&[0x01, 0x06, 0x05, 0x05, 0x00], &[0x32], &key(b'a', 1), &[0x32], &key(b'f', 6)]);
    put(&[&[0x00, 0x7a, 0x3a, 0xbd, 0x9c]]);
    // Top-level index block at 954, payload 304: one entry per partition.
    let top: [(u8, [u8; 3]); 5] = [
        (b'b', [0xd9, 0x02, 0x7a]),
        (b'c', [0xd8, 0x03, 0x40]),
        (b'd', [0x9d, 0x04, 0x40]),
        (b'e', [0xe2, 0x04, 0x40]),
        (b'f', [0xec, 0x05, 0x40]),
    ];
    for (c, handle) in &top {
        put(&[entry, &key(*c, *c - b'a' + 1), handle]);
    }
    #[rustfmt::skip]
    put(&[
        &[0, 0, 0, 0, 0x38, 0, 0, 0, 0x70, 0, 0, 0, 0xa8, 0, 0, 0, 0xe0, 0, 0, 0, 5, 0, 0, 0],
        &[0x00, 0x30, 0xef, 0x3f, 0x00],
    ]);
    // Footer at 1263.
    #[rustfmt::skip]
    put(&[
        &[0xba, 0x03, 0, 0, 0, 0, 0, 0], &[0x30, 0x01, 0, 0, 0, 0, 0, 0], // index: 954, 304
        &[0x31, 0x03, 0, 0, 0, 0, 0, 0], &[0x09, 0, 0, 0, 0, 0, 0, 0],    // filter: 817, 9
        &[0x3f, 0x03, 0, 0, 0, 0, 0, 0], &[0x76, 0, 0, 0, 0, 0, 0, 0],    // props: 831, 118
        &[0x02, 0, 0, 0],                                                 // partitioned
        &[0x01, 0, 0, 0],                                                 // format version 1
        &[0xda, 0x30, 0xdb, 0xd3],                                        // masked CRC-32C
        b"STRATSST",
    ]);
    assert_eq!(bytes.len(), 1331);
    assert_eq!(hex(&bytes), hex(&want));
    let footer = Footer::decode(&bytes[1263..]).expect("footer");
    assert_eq!(footer.index_kind, IndexKind::Partitioned);
    assert_eq!(footer.filter, BlockHandle { offset: 817, size: 9 });
    assert_eq!((props.data_blocks, props.index_partitions, props.index_size), (6, 5, 712));
    let t = open(bytes, None).expect("opens");
    assert_eq!(t.props(), &props);
    for i in 0..6u8 {
        assert_eq!(
            t.get(&[b'a' + i; 34], 9, None).expect("get"),
            Lookup::Value { ts: 5, seq: u64::from(i) + 1, value: Bytes::from_static(b"val") }
        );
    }
    assert_eq!(t.get(&[b'g'; 34], 9, None).expect("get"), Lookup::Absent);
}

/// Found by the `roundtrip_sstable` fuzz target: the seek keys ("the first version of a key",
/// "the first version at or before a time") used kind `Set`, but at the maximum timestamp and
/// sequence number a `Pointer` version sorts before `Set` (kinds sort descending). A seek, a
/// table point read and a memtable point read then skipped such a version and answered with an
/// older one. Recovery accepts `MAX_SEQ`, so a log that reached it could hold one.
#[test]
fn seek_and_get_find_a_pointer_at_the_maximum_timestamp_and_sequence() {
    let entries: Vec<Entry> = vec![
        (ik(b"k", u64::MAX, MAX_SEQ, ValueKind::Pointer), Bytes::from_static(b"pointer")),
        (ik(b"k", 5, 1, ValueKind::Set), Bytes::from_static(b"old")),
    ];
    let (bytes, _) = build(&entries, opts(4096, false));
    let table = open(bytes, None).expect("open");
    let first = InternalKey::seek_first(Bytes::from_static(b"k"));
    assert_eq!(scan(&table, true, Some(&first)).expect("scan"), entries, "a seek to the key");
    let at_max = InternalKey::seek_at_time(Bytes::from_static(b"k"), u64::MAX);
    assert_eq!(scan(&table, true, Some(&at_max)).expect("scan"), entries, "a seek at the time");
    let want =
        Lookup::Pointer { ts: u64::MAX, seq: MAX_SEQ, pointer: Bytes::from_static(b"pointer") };
    assert_eq!(table.get(b"k", MAX_SEQ, None).expect("get"), want, "a table point read");
    assert_eq!(table.get(b"k", MAX_SEQ, Some(u64::MAX)).expect("get"), want, "at a time");
    let m = memtable_of(&entries);
    assert_eq!(m.get(b"k", MAX_SEQ, None), want, "a memtable point read");
}

/// Point reads copy values of up to `COPY_VALUE_MAX` bytes out of their block and share longer
/// ones with it: both give the stored bytes, at every length either side of the limit, from a
/// cached block and from an uncached one.
#[test]
fn point_reads_return_values_either_side_of_the_copy_limit() {
    let limit = super::reader::COPY_VALUE_MAX;
    let lens = [0, 1, limit - 1, limit, limit + 1, 3 * limit];
    let entries: Vec<Entry> = lens
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let value: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
            let key = [b"key".as_slice(), &[b'0' + i as u8]].concat();
            (ik(&key, 1, i as u64 + 1, ValueKind::Set), Bytes::from(value))
        })
        .collect();
    let (bytes, _) = build(&entries, opts(4096, true));
    for cache in [None, Some(Arc::new(BlockCache::new(1 << 20)))] {
        let table = open(bytes.clone(), cache).expect("open");
        for _ in 0..2 {
            for (i, (k, v)) in entries.iter().enumerate() {
                let found = table.get(&k.user_key, 9, None).expect("get");
                let want = Lookup::Value { ts: 1, seq: i as u64 + 1, value: v.clone() };
                assert_eq!(found, want, "value of {} bytes", v.len());
            }
        }
    }
}

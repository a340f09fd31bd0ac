//! Table (and block, filter, index, properties) encoder round trip: arbitrary entries, sorted
//! into internal-key order, written by `TableBuilder` under arbitrary options (block size down
//! to the 64-byte minimum, so many blocks and partitioned indexes occur; compression; bloom
//! bits; restart interval), must read back exactly: the same entries walking forward and
//! backward, the recorded properties, a seek to each user key landing on its newest version,
//! and a point read of each user key answering with that version (so the bloom filter has no
//! false negative).
#![no_main]

use std::sync::Arc;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata_core::Bytes;
use strata_core::key::{InternalKey, MAX_SEQ, ValueKind};
use strata_core::memtable::Lookup;
use strata_core::sstable::{Table, TableBuilder, TableCursor, TableOptions};
use strata_vfs::{FileKind, MemFs, Vfs};

#[derive(Debug, Arbitrary)]
struct Entry {
    key: Vec<u8>,
    ts: u64,
    seq: u64,
    kind: u8,
    value: Vec<u8>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    block_size: u16,
    compression: bool,
    bloom_bits_per_key: u8,
    restart_interval: u16,
    entries: Vec<Entry>,
}

fuzz_target!(|input: Input| {
    let opts = TableOptions {
        block_size: 64 + usize::from(input.block_size % 4096),
        compression: input.compression,
        bloom_bits_per_key: u32::from(input.bloom_bits_per_key % 65),
        restart_interval: 1 + usize::from(input.restart_interval % 64),
    };
    let mut entries: Vec<(InternalKey, Bytes)> = input
        .entries
        .iter()
        .map(|e| {
            let kind = match e.kind % 3 {
                0 => ValueKind::Delete,
                1 => ValueKind::Set,
                _ => ValueKind::Pointer,
            };
            let value = if kind == ValueKind::Delete {
                Bytes::new()
            } else {
                Bytes::copy_from_slice(&e.value)
            };
            (InternalKey::new(Bytes::copy_from_slice(&e.key), e.ts, e.seq & MAX_SEQ, kind), value)
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    // The builder wants strictly increasing keys; two entries differing only in kind are
    // distinct internal keys, but keep one version per (key, ts, seq) like the engine writes.
    entries.dedup_by(|b, a| a.0.user_key == b.0.user_key && a.0.ts == b.0.ts && a.0.seq == b.0.seq);
    if entries.is_empty() {
        return;
    }

    let fs = MemFs::new();
    let file = fs.create("000001.sst", FileKind::Table).expect("create");
    let mut builder = TableBuilder::new(file, "000001.sst".into(), opts);
    for (key, value) in &entries {
        builder.add(key, value).expect("sorted entries are accepted");
    }
    let props = builder.finish().expect("finish");
    assert_eq!(props.entries as usize, entries.len());
    assert_eq!(props.smallest, entries[0].0);
    assert_eq!(props.largest, entries[entries.len() - 1].0);

    let file = fs.open("000001.sst", FileKind::Table).expect("open");
    let table =
        Arc::new(Table::open(file, "000001.sst".into(), 1, None).expect("a written table opens"));
    assert_eq!(table.props().entries, props.entries);

    for forward in [true, false] {
        let mut cursor = TableCursor::new(Arc::clone(&table), forward, None).expect("cursor");
        let mut got = Vec::new();
        while let Some(entry) = cursor.take().expect("take") {
            got.push(entry);
        }
        if !forward {
            got.reverse();
        }
        assert_eq!(
            got,
            entries,
            "walking {} gives the entries back",
            if forward { "forward" } else { "backward" }
        );
    }

    let mut checked = 0;
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 && entries[i - 1].0.user_key == key.user_key {
            continue; // not the newest version of its user key
        }
        checked += 1;
        if checked > 64 {
            break;
        }
        let seek = InternalKey::seek_first(key.user_key.clone());
        let cursor = TableCursor::new(Arc::clone(&table), true, Some(&seek)).expect("seek");
        let head = cursor.head().map(|e| (e.user_key, e.ts, e.seq, e.kind, e.value));
        let want = (&key.user_key[..], key.ts, key.seq, key.kind, &value[..]);
        assert_eq!(head, Some(want), "a seek lands on the newest version");
        assert!(table.may_contain(&key.user_key), "no bloom false negative");
        let (ts, seq) = (key.ts, key.seq);
        let want = match key.kind {
            ValueKind::Set => Lookup::Value { ts, seq, value: value.clone() },
            ValueKind::Pointer => Lookup::Pointer { ts, seq, pointer: value.clone() },
            ValueKind::Delete => Lookup::Deleted { ts, seq },
        };
        assert_eq!(table.get(&key.user_key, u64::MAX, None).expect("get"), want, "a point read");
    }
});

//! A table file of arbitrary bytes: opening it, scanning it both ways and point reads give
//! data or an error, never a panic or a runaway allocation.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use strata_core::Bytes;
use strata_core::key::InternalKey;
use strata_core::sstable::{Table, TableCursor};
use strata_vfs::{FileKind, MemFs, Vfs};

fuzz_target!(|data: &[u8]| {
    let fs = MemFs::new();
    fs.write_whole("000001.sst", data).expect("memfs write");
    let file = fs.open("000001.sst", FileKind::Table).expect("open");
    let Ok(table) = Table::open(file, "000001.sst".into(), 1, None) else { return };
    let table = Arc::new(table);
    for forward in [true, false] {
        if let Ok(mut c) = TableCursor::new(Arc::clone(&table), forward, None) {
            let mut steps = 0usize;
            // Each entry read borrowed, then taken owned (what scans and compactions do).
            while c.head().is_some() && matches!(c.take(), Ok(Some(_))) {
                steps += 1;
                assert!(steps <= data.len(), "a cursor cannot yield more entries than bytes");
            }
        }
    }
    let probe = InternalKey::seek_first(Bytes::from_static(b"k"));
    let _ = TableCursor::new(Arc::clone(&table), true, Some(&probe));
    let _ = table.get(b"k", u64::MAX, None);
    let _ = table.may_contain(b"k");
});

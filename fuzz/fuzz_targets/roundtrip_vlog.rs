//! Value log encoder round trip: arbitrary (key, value) records appended by `VlogWriter` (with
//! and without compression; values may repeat a pattern to become long and compressible) must
//! come back from `scan_file` in order, at the offsets and lengths the writer's pointers gave,
//! with the same keys and values; each pointer encodes and decodes to itself and its bytes
//! decode (checksum verified) to its record.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use strata_core::filenames;
use strata_core::vlog::format::{ValuePointer, decode_record};
use strata_core::vlog::{VlogWriter, scan_file};
use strata_vfs::{FileKind, MemFs, RandomRead, Vfs};

#[derive(Debug, Arbitrary)]
struct Record {
    key: Vec<u8>,
    value: Vec<u8>,
    /// The value is repeated this many times (at most 255), for long compressible values.
    repeat: u8,
}

#[derive(Debug, Arbitrary)]
struct Input {
    id: u64,
    compress: bool,
    records: Vec<Record>,
}

fuzz_target!(|input: Input| {
    let fs = MemFs::new();
    let id = input.id % 1_000_000;
    let mut writer = VlogWriter::create(&fs, id, input.compress).expect("create");
    let mut want = Vec::new();
    for r in &input.records {
        let value = r.value.repeat(usize::from(r.repeat).max(1));
        let ptr = writer.append(&r.key, &value).expect("append");
        assert_eq!(ptr.file, id);
        assert_eq!(ValuePointer::decode(&ptr.encode()), Ok(ptr), "pointer encode, decode");
        want.push((ptr, r.key.clone(), value));
    }
    writer.flush().expect("flush");
    let len = writer.len();
    drop(writer);

    let name = filenames::vlog(id);
    let file = fs.open(&name, FileKind::ValueLog).expect("open");
    assert_eq!(file.len().expect("len"), len);
    let mut got = Vec::new();
    let end = scan_file(&file, &name, len, |offset, record_len, view| {
        let value = view.value().expect("a written value decodes").into_owned();
        got.push((offset, record_len, view.key.to_vec(), value));
        Ok(())
    })
    .expect("scan");
    assert_eq!((end.valid_end, end.damage), (len, None), "the whole file is good records");
    assert_eq!(got.len(), want.len());
    for ((offset, record_len, key, value), (ptr, want_key, want_value)) in got.iter().zip(&want) {
        assert_eq!((*offset, *record_len), (ptr.offset, ptr.len), "scan and pointer agree");
        assert_eq!((key, value), (want_key, want_value), "the record reads back");
        let mut bytes = vec![0u8; ptr.len as usize];
        file.read_exact_at(ptr.offset, &mut bytes).expect("read");
        let view = decode_record(&bytes, true).expect("a pointed-at record decodes");
        assert_eq!((view.key, &*view.value().expect("value")), (&want_key[..], &want_value[..]));
    }
});

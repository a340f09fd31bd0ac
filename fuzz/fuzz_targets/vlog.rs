//! Value log bytes (`docs/format/vlog.md`): the file header check, the record prefix and
//! record decoders, and the pointer decoder accept or reject any bytes without panicking, and
//! whatever they accept round-trips:
//!
//! - a decoded pointer re-encodes to bytes that decode to the same pointer (not necessarily
//!   the same bytes: the decoder accepts varints with redundant continuation bytes, which the
//!   encoder never writes; the canonical bytes are never longer);
//! - a decoded record's key and value (decompressed when stored compressed; a value that does
//!   not decompress is an error, never a panic), re-encoded with `encode_record` with and
//!   without compression, decode (checksum verified) to the same key and value; a
//!   checksum-verified raw record of canonical length re-encodes to exactly its own bytes;
//! - `parse_prefix` and `decode_record` agree on framing, and `check_file_header` accepts
//!   exactly the bytes that start with the 16-byte header.
//!
//! Random bytes almost never carry a matching checksum, so every input is also decoded a
//! second time with its first four bytes replaced by the masked CRC-32C of the rest.
//!
//! The input is also split into a key and a value (first two bytes: key length), encoded as a
//! record, and decoded back, so the encoder is exercised with arbitrary contents too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_core::checksum::{crc32c, mask};
use strata_core::options::{MAX_KEY_SIZE, MAX_VALUE_SIZE};
use strata_core::vlog::format::{
    FILE_HEADER_LEN, MAX_PREFIX_LEN, MAX_RECORD_LEN, ValuePointer, check_file_header,
    decode_record, encode_record, file_header, parse_prefix,
};

fuzz_target!(|data: &[u8]| {
    // File header: accepted exactly when the first 16 bytes are the header.
    let header_ok = check_file_header(data).is_ok();
    assert_eq!(
        header_ok,
        data.get(..FILE_HEADER_LEN as usize) == Some(&file_header()[..]),
        "check_file_header accepts exactly the header"
    );

    // Pointer.
    if let Ok(ptr) = ValuePointer::decode(data) {
        assert!(ptr.offset >= FILE_HEADER_LEN, "a pointer never points into the header");
        assert!(ptr.len <= MAX_RECORD_LEN, "a pointer never claims more than a record can be");
        let bytes = ptr.encode();
        assert!(bytes.len() <= data.len(), "canonical bytes are never longer");
        assert_eq!(ValuePointer::decode(&bytes), Ok(ptr), "decode, encode, decode");
        if bytes.len() == data.len() {
            assert_eq!(bytes, data, "a canonical pointer re-encodes to its own bytes");
        }
    }

    // Records: the input as it is, and the input with its first four bytes replaced by the
    // right checksum, so that verified decoding is reached too.
    check_record(data);
    if let Some(body) = data.get(4..) {
        let mut fixed = mask(crc32c(body)).to_le_bytes().to_vec();
        fixed.extend_from_slice(body);
        check_record(&fixed);
        assert_eq!(
            decode_record(&fixed, true).is_ok(),
            decode_record(&fixed, false).is_ok(),
            "with the right checksum, verification changes nothing"
        );
    }

    // Arbitrary contents through the encoder.
    if let [a, b, rest @ ..] = data {
        let key_len = usize::from(u16::from_le_bytes([*a, *b])).min(rest.len());
        let (key, value) = rest.split_at(key_len);
        for compress in [false, true] {
            let mut out = Vec::new();
            let n = encode_record(&mut out, key, value, compress);
            let view = decode_record(&out, true).expect("an encoded record decodes");
            let got = view.value().expect("an encoded value decodes");
            assert_eq!((view.key, &*got), (key, value));
            let p = parse_prefix(&out).expect("an encoded record's prefix parses");
            assert_eq!(p.record_len(), n);
        }
        let mut out = Vec::new();
        let n = encode_record(&mut out, key, value, false);
        let ptr = ValuePointer {
            file: u64::from(*a),
            offset: FILE_HEADER_LEN + u64::from(*b),
            len: n as u32,
        };
        assert_eq!(ValuePointer::decode(&ptr.encode()), Ok(ptr));
    }
});

/// Record prefix and whole-record checks for one input.
fn check_record(data: &[u8]) {
    let prefix = parse_prefix(data);
    if let Ok(p) = prefix {
        assert!(p.header_len <= data.len() && p.header_len <= MAX_PREFIX_LEN);
        assert!(p.key_len <= MAX_KEY_SIZE && p.value_len <= MAX_VALUE_SIZE);
    }
    // Framing only, then checksum verified.
    for verify in [false, true] {
        let Ok(view) = decode_record(data, verify) else { continue };
        let p = prefix.expect("a record that decodes has a prefix that parses");
        assert_eq!(p.record_len(), data.len());
        assert_eq!((view.key.len(), view.stored.len()), (p.key_len, p.value_len));
        let Ok(value) = view.value() else { continue };
        for compress in [false, true] {
            let mut out = Vec::new();
            let n = encode_record(&mut out, view.key, &value, compress);
            assert_eq!(n, out.len());
            let again = decode_record(&out, true).expect("a re-encoded record decodes");
            let again_value = again.value().expect("a re-encoded value decodes");
            assert_eq!((again.key, &*again_value), (view.key, &*value), "decode, encode, decode");
            if verify && !compress && !view.compressed {
                assert!(n <= data.len(), "canonical bytes are never longer");
                if n == data.len() {
                    assert_eq!(
                        out, data,
                        "a verified canonical record re-encodes to its own bytes"
                    );
                }
            }
        }
    }
    if let Ok(p) = prefix
        && p.record_len() == data.len()
    {
        assert!(decode_record(data, false).is_ok(), "framing agrees with parse_prefix");
    }
}

//! How the adapter encodes the values it stores: one format-version byte (`1`), then the
//! value's serde JSON encoding. openraft's own types (entries, votes, memberships, log ids)
//! derive serde and nothing else, so JSON is their one encoding that needs no code of ours per
//! type; the version byte leaves room for a binary encoding later. User data under `data/` is
//! stored raw, without this envelope.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::errors::{Error, Result};

/// The format version byte that starts every encoded value.
pub const VALUE_FORMAT_VERSION: u8 = 1;

/// Encodes `value` for storage under a key of the adapter's layout.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = vec![VALUE_FORMAT_VERSION];
    serde_json::to_writer(&mut out, value)
        .map_err(|e| Error::Decode { key: Vec::new(), reason: format!("encode: {e}") })?;
    Ok(out)
}

/// Decodes the value stored under `key`; a wrong version byte or bad JSON is an error naming
/// the key.
pub fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T> {
    let bad = |reason: String| Error::Decode { key: key.to_vec(), reason };
    match bytes.split_first() {
        None => Err(bad("empty value".into())),
        Some((&VALUE_FORMAT_VERSION, body)) => {
            serde_json::from_slice(body).map_err(|e| bad(e.to_string()))
        }
        Some((&v, _)) => Err(bad(format!("unknown value format version {v}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_input() {
        let bytes = encode(&(7u64, "x")).expect("encode");
        assert_eq!(bytes, b"\x01[7,\"x\"]");
        assert_eq!(decode::<(u64, String)>(b"k", &bytes).expect("decode"), (7, "x".into()));
        for bad in [&b""[..], b"\x02[7,\"x\"]", b"\x01[7,", b"\x01\xff"] {
            let err = decode::<(u64, String)>(b"k", bad).expect_err("bad input decoded");
            assert!(matches!(err, Error::Decode { ref key, .. } if key == b"k"), "{err}");
        }
    }
}

//! Keys and values on the command line: printable UTF-8 as itself, anything else as
//! `hex:` followed by lowercase hex digits. Input takes the same two forms, so whatever the
//! tool prints can be passed back to it.

use crate::error::{CliError, CliResult};

/// The prefix that marks hex input and output.
pub const HEX_PREFIX: &str = "hex:";

/// Decodes a key or value given on the command line; `what` names it in errors.
pub fn parse(arg: &str, what: &str) -> CliResult<Vec<u8>> {
    let Some(digits) = arg.strip_prefix(HEX_PREFIX) else {
        return Ok(arg.as_bytes().to_vec());
    };
    if digits.len() % 2 != 0 {
        return Err(CliError::failed(format_args!(
            "malformed hex in {what} '{arg}': odd number of digits"
        )));
    }
    digits
        .as_bytes()
        .chunks_exact(2)
        .map(|pair| match (hex_digit(pair[0]), hex_digit(pair[1])) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(CliError::failed(format_args!(
                "malformed hex in {what} '{arg}': not a hex digit"
            ))),
        })
        .collect()
}

/// The value of one hex digit, either case.
pub fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Shows bytes as text when they are printable UTF-8 that cannot be mistaken for hex input,
/// else as `hex:...`.
pub fn show(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if printable(s) => s.to_owned(),
        _ => hex(bytes),
    }
}

/// `true` if `s` prints as itself on one line and reads back as itself.
fn printable(s: &str) -> bool {
    !s.starts_with(HEX_PREFIX) && !s.chars().any(|c| c.is_control())
}

/// `hex:` and the lowercase hex digits of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(HEX_PREFIX.len() + 2 * bytes.len());
    out.push_str(HEX_PREFIX);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_text_and_binary() {
        for bytes in [&b"hello"[..], b"", b"\x00\xff", b"tab\there", b"hex:41", "héllo".as_bytes()]
        {
            let shown = show(bytes);
            assert_eq!(parse(&shown, "key").expect("parse"), bytes, "{shown}");
        }
        assert_eq!(show(b"hello"), "hello");
        assert_eq!(show(b"\x00\xff"), "hex:00ff");
        assert_eq!(show(b"hex:41"), "hex:6865783a3431");
    }

    #[test]
    fn malformed_hex_is_an_error() {
        for bad in ["hex:abc", "hex:zz", "hex:0g"] {
            let e = parse(bad, "key").expect_err(bad);
            assert!(e.message.starts_with("malformed hex in key"), "{}", e.message);
        }
        assert_eq!(parse("hex:", "key").expect("empty"), b"");
        assert_eq!(parse("hex:4A6b", "key").expect("mixed case"), b"Jk");
    }
}

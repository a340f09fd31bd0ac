//! The order-preserving, self-delimiting byte encoding of GlueSQL keys, and the layout of the
//! adapter's Strata keys built from it. `docs/format/gluesql.md` describes both with a worked
//! example that `tests::worked_example` asserts.
//!
//! Two properties make SQL order into Strata range order:
//! - order: for two keys of the same type, `encode(a) < encode(b)` (bytewise) exactly when
//!   `a < b` in GlueSQL's `Key` order; keys of different types order by their type tag, and
//!   NULL sorts after everything (as GlueSQL orders NULL last);
//! - self-delimiting: no encoding is a prefix of another, so a key can be followed by more
//!   encoded parts (an index entry is `value ++ primary key`) without disturbing the order, and
//!   all entries for one value share a prefix that a range scan can cover.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use gluesql_core::chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use gluesql_core::data::{Interval, Key};
use gluesql_core::error::Result;
use ordered_float::OrderedFloat;
use rust_decimal::Decimal;

use super::errors::corrupt;

/// Type tags: the first byte of every encoded key. Their order is the order between keys of
/// different types; NULL is last.
mod tag {
    pub const BOOL: u8 = 0x01;
    pub const I8: u8 = 0x02;
    pub const I16: u8 = 0x03;
    pub const I32: u8 = 0x04;
    pub const I64: u8 = 0x05;
    pub const I128: u8 = 0x06;
    pub const U8: u8 = 0x07;
    pub const U16: u8 = 0x08;
    pub const U32: u8 = 0x09;
    pub const U64: u8 = 0x0A;
    pub const U128: u8 = 0x0B;
    pub const F32: u8 = 0x0C;
    pub const F64: u8 = 0x0D;
    pub const DECIMAL: u8 = 0x0E;
    pub const STR: u8 = 0x0F;
    pub const BYTEA: u8 = 0x10;
    pub const INET: u8 = 0x11;
    pub const DATE: u8 = 0x12;
    pub const TIMESTAMP: u8 = 0x13;
    pub const TIME: u8 = 0x14;
    pub const INTERVAL: u8 = 0x15;
    pub const UUID: u8 = 0x16;
    pub const NULL: u8 = 0xFF;
}

/// Escaped byte strings end with `00 01`; a zero byte inside is written `00 FF`. Both keep
/// bytewise order and make the string self-delimiting.
const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

/// `10^28`: the fraction of a decimal is stored as an integer count of `10^-28` units, the
/// finest scale `rust_decimal` has.
const FRACTION_UNITS: u128 = 10_u128.pow(28);
/// Bytes of the integer part and of the fraction of an encoded decimal (both below `2^96`).
const DECIMAL_PART_LEN: usize = 12;

/// Appends `bytes` escaped and terminated.
pub fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        if b == ESCAPE {
            out.extend_from_slice(&[ESCAPE, ESCAPED_ZERO]);
        } else {
            out.push(b);
        }
    }
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// Appends the encoding of `key`.
pub fn push_key(out: &mut Vec<u8>, key: &Key) {
    match key {
        Key::Bool(v) => out.extend_from_slice(&[tag::BOOL, u8::from(*v)]),
        Key::I8(v) => push_tagged(out, tag::I8, &(v.cast_unsigned() ^ 0x80).to_be_bytes()),
        Key::I16(v) => push_tagged(out, tag::I16, &(v.cast_unsigned() ^ (1 << 15)).to_be_bytes()),
        Key::I32(v) => push_tagged(out, tag::I32, &(v.cast_unsigned() ^ (1 << 31)).to_be_bytes()),
        Key::I64(v) => push_tagged(out, tag::I64, &(v.cast_unsigned() ^ (1 << 63)).to_be_bytes()),
        Key::I128(v) => {
            push_tagged(out, tag::I128, &(v.cast_unsigned() ^ (1 << 127)).to_be_bytes());
        }
        Key::U8(v) => push_tagged(out, tag::U8, &v.to_be_bytes()),
        Key::U16(v) => push_tagged(out, tag::U16, &v.to_be_bytes()),
        Key::U32(v) => push_tagged(out, tag::U32, &v.to_be_bytes()),
        Key::U64(v) => push_tagged(out, tag::U64, &v.to_be_bytes()),
        Key::U128(v) => push_tagged(out, tag::U128, &v.to_be_bytes()),
        Key::F32(v) => push_tagged(out, tag::F32, &float32_order_bits(v.0).to_be_bytes()),
        Key::F64(v) => push_tagged(out, tag::F64, &float64_order_bits(v.0).to_be_bytes()),
        Key::Decimal(v) => push_decimal(out, *v),
        Key::Str(v) => {
            out.push(tag::STR);
            push_escaped(out, v.as_bytes());
        }
        Key::Bytea(v) => {
            out.push(tag::BYTEA);
            push_escaped(out, v);
        }
        Key::Inet(IpAddr::V4(v)) => {
            out.extend_from_slice(&[tag::INET, 4]);
            out.extend_from_slice(&v.octets());
        }
        Key::Inet(IpAddr::V6(v)) => {
            out.extend_from_slice(&[tag::INET, 6]);
            out.extend_from_slice(&v.octets());
        }
        Key::Date(v) => push_tagged(out, tag::DATE, &date_bytes(v)),
        Key::Timestamp(v) => {
            out.push(tag::TIMESTAMP);
            out.extend_from_slice(&date_bytes(&v.date()));
            out.extend_from_slice(&time_bytes(&v.time()));
        }
        Key::Time(v) => push_tagged(out, tag::TIME, &time_bytes(v)),
        // GlueSQL orders every microsecond interval before every month interval.
        Key::Interval(Interval::Microsecond(v)) => {
            out.extend_from_slice(&[tag::INTERVAL, 0]);
            out.extend_from_slice(&(v.cast_unsigned() ^ (1 << 63)).to_be_bytes());
        }
        Key::Interval(Interval::Month(v)) => {
            out.extend_from_slice(&[tag::INTERVAL, 1]);
            out.extend_from_slice(&(v.cast_unsigned() ^ (1 << 31)).to_be_bytes());
        }
        Key::Uuid(v) => push_tagged(out, tag::UUID, &v.to_be_bytes()),
        Key::None => out.push(tag::NULL),
    }
}

/// The encoding of `key` on its own.
pub fn encode_key(key: &Key) -> Vec<u8> {
    let mut out = Vec::with_capacity(18);
    push_key(&mut out, key);
    out
}

fn push_tagged(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    out.extend_from_slice(body);
}

/// Bits of a float whose unsigned order is `total_cmp` order: negative numbers have every bit
/// flipped, the others only the sign bit.
fn float64_order_bits(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 { !bits } else { bits ^ (1 << 63) }
}

fn float64_from_order_bits(bits: u64) -> f64 {
    f64::from_bits(if bits >> 63 == 1 { bits ^ (1 << 63) } else { !bits })
}

fn float32_order_bits(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits >> 31 == 1 { !bits } else { bits ^ (1 << 31) }
}

fn float32_from_order_bits(bits: u32) -> f32 {
    f32::from_bits(if bits >> 31 == 1 { bits ^ (1 << 31) } else { !bits })
}

/// Days since 1 January of year 1, sign bit flipped.
fn date_bytes(date: &NaiveDate) -> [u8; 4] {
    (date.num_days_from_ce().cast_unsigned() ^ (1 << 31)).to_be_bytes()
}

/// Seconds since midnight, then nanoseconds (above 10^9 during a leap second).
fn time_bytes(time: &NaiveTime) -> [u8; 8] {
    let mut out = [0; 8];
    out[..4].copy_from_slice(&time.num_seconds_from_midnight().to_be_bytes());
    out[4..].copy_from_slice(&time.nanosecond().to_be_bytes());
    out
}

/// A decimal as sign (0 negative, 1 zero or positive), then its magnitude's integer part and
/// its fraction in units of `10^-28`, 12 bytes each, all magnitude bytes flipped for negative
/// numbers. Equal numbers with different scales (1.5, 1.50) encode the same, as GlueSQL
/// compares them equal; the decoded value is normalized.
fn push_decimal(out: &mut Vec<u8>, v: Decimal) {
    let negative = v.is_sign_negative() && !v.is_zero();
    let magnitude = v.mantissa().unsigned_abs();
    let divisor = 10_u128.pow(v.scale());
    let integer = magnitude / divisor;
    // scale <= 28, so the fraction times 10^(28 - scale) stays below 10^28.
    let fraction = (magnitude % divisor) * 10_u128.pow(28 - v.scale());
    out.extend_from_slice(&[tag::DECIMAL, u8::from(!negative)]);
    for part in [integer, fraction] {
        let bytes = part.to_be_bytes();
        for &b in &bytes[16 - DECIMAL_PART_LEN..] {
            out.push(if negative { !b } else { b });
        }
    }
}

/// A cursor over encoded bytes; every read checks the length first.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(corrupt("key ends early"));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// Reads an escaped, terminated byte string.
    pub fn escaped(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            match self.byte()? {
                ESCAPE => match self.byte()? {
                    TERMINATOR => return Ok(out),
                    ESCAPED_ZERO => out.push(0),
                    _ => return Err(corrupt("bad escape in string")),
                },
                b => out.push(b),
            }
        }
    }

    /// Reads an escaped, terminated UTF-8 string.
    pub fn escaped_str(&mut self) -> Result<String> {
        String::from_utf8(self.escaped()?).map_err(|_| corrupt("string is not UTF-8"))
    }

    /// Reads one encoded key.
    pub fn key(&mut self) -> Result<Key> {
        let key = match self.byte()? {
            tag::BOOL => match self.byte()? {
                0 => Key::Bool(false),
                1 => Key::Bool(true),
                _ => return Err(corrupt("bad boolean")),
            },
            tag::I8 => Key::I8((u8::from_be_bytes(self.array()?) ^ 0x80).cast_signed()),
            tag::I16 => Key::I16((u16::from_be_bytes(self.array()?) ^ (1 << 15)).cast_signed()),
            tag::I32 => Key::I32((u32::from_be_bytes(self.array()?) ^ (1 << 31)).cast_signed()),
            tag::I64 => Key::I64((u64::from_be_bytes(self.array()?) ^ (1 << 63)).cast_signed()),
            tag::I128 => Key::I128((u128::from_be_bytes(self.array()?) ^ (1 << 127)).cast_signed()),
            tag::U8 => Key::U8(u8::from_be_bytes(self.array()?)),
            tag::U16 => Key::U16(u16::from_be_bytes(self.array()?)),
            tag::U32 => Key::U32(u32::from_be_bytes(self.array()?)),
            tag::U64 => Key::U64(u64::from_be_bytes(self.array()?)),
            tag::U128 => Key::U128(u128::from_be_bytes(self.array()?)),
            tag::F32 => {
                Key::F32(OrderedFloat(float32_from_order_bits(u32::from_be_bytes(self.array()?))))
            }
            tag::F64 => {
                Key::F64(OrderedFloat(float64_from_order_bits(u64::from_be_bytes(self.array()?))))
            }
            tag::DECIMAL => Key::Decimal(self.decimal()?),
            tag::STR => Key::Str(self.escaped_str()?),
            tag::BYTEA => Key::Bytea(self.escaped()?),
            tag::INET => match self.byte()? {
                4 => Key::Inet(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?))),
                6 => Key::Inet(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))),
                _ => return Err(corrupt("bad address family")),
            },
            tag::DATE => Key::Date(self.date()?),
            tag::TIMESTAMP => {
                let date = self.date()?;
                Key::Timestamp(NaiveDateTime::new(date, self.time()?))
            }
            tag::TIME => Key::Time(self.time()?),
            tag::INTERVAL => match self.byte()? {
                0 => Key::Interval(Interval::Microsecond(
                    (u64::from_be_bytes(self.array()?) ^ (1 << 63)).cast_signed(),
                )),
                1 => Key::Interval(Interval::Month(
                    (u32::from_be_bytes(self.array()?) ^ (1 << 31)).cast_signed(),
                )),
                _ => return Err(corrupt("bad interval unit")),
            },
            tag::UUID => Key::Uuid(u128::from_be_bytes(self.array()?)),
            tag::NULL => Key::None,
            _ => return Err(corrupt("unknown key type tag")),
        };
        Ok(key)
    }

    fn date(&mut self) -> Result<NaiveDate> {
        let days = (u32::from_be_bytes(self.array()?) ^ (1 << 31)).cast_signed();
        NaiveDate::from_num_days_from_ce_opt(days).ok_or_else(|| corrupt("date out of range"))
    }

    fn time(&mut self) -> Result<NaiveTime> {
        let secs = u32::from_be_bytes(self.array()?);
        let nanos = u32::from_be_bytes(self.array()?);
        NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos)
            .ok_or_else(|| corrupt("time out of range"))
    }

    fn decimal(&mut self) -> Result<Decimal> {
        let negative = match self.byte()? {
            0 => true,
            1 => false,
            _ => return Err(corrupt("bad decimal sign")),
        };
        let mut parts = [0_u128; 2];
        for part in &mut parts {
            let mut bytes = [0_u8; 16];
            for (dst, &src) in
                bytes[16 - DECIMAL_PART_LEN..].iter_mut().zip(self.take(DECIMAL_PART_LEN)?)
            {
                *dst = if negative { !src } else { src };
            }
            *part = u128::from_be_bytes(bytes);
        }
        let [integer, mut fraction] = parts;
        if fraction >= FRACTION_UNITS {
            return Err(corrupt("decimal fraction out of range"));
        }
        // The smallest scale that holds the fraction exactly.
        let mut scale = 28_u32;
        while scale > 0 && fraction % 10 == 0 {
            fraction /= 10;
            scale -= 1;
        }
        let mantissa = integer
            .checked_mul(10_u128.pow(scale))
            .and_then(|m| m.checked_add(fraction))
            .and_then(|m| i128::try_from(m).ok())
            .ok_or_else(|| corrupt("decimal out of range"))?;
        let value =
            Decimal::try_from_i128_with_scale(if negative { -mantissa } else { mantissa }, scale)
                .map_err(|_| corrupt("decimal out of range"))?;
        Ok(value)
    }
}

/// The smallest byte string greater than every string that starts with `prefix`, or `None`
/// when there is none (the prefix is all `FF`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Kinds of records, the byte after the storage prefix.
mod kind {
    pub const SCHEMA: u8 = b's';
    pub const META: u8 = b'm';
    pub const NEXT_ROW_ID: u8 = b'n';
    pub const ROW: u8 = b'r';
    pub const INDEX: u8 = b'i';
    pub const FUNCTION: u8 = b'f';
}

/// The storage's keys: its prefix, a kind byte, then escaped names and encoded keys.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: Vec<u8>,
}

impl Layout {
    pub fn new(prefix: &[u8]) -> Self {
        Layout { prefix: prefix.to_vec() }
    }

    fn start(&self, kind: u8) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + 32);
        out.extend_from_slice(&self.prefix);
        out.push(kind);
        out
    }

    fn named(&self, kind: u8, name: &str) -> Vec<u8> {
        let mut out = self.start(kind);
        push_escaped(&mut out, name.as_bytes());
        out
    }

    /// `[start, end)` of every key of one kind, e.g. all schemas.
    fn kind_range(&self, kind: u8) -> (Vec<u8>, Vec<u8>) {
        let start = self.start(kind);
        let end = self.start(kind + 1);
        (start, end)
    }

    pub fn schema(&self, table: &str) -> Vec<u8> {
        self.named(kind::SCHEMA, table)
    }

    pub fn all_schemas(&self) -> (Vec<u8>, Vec<u8>) {
        self.kind_range(kind::SCHEMA)
    }

    pub fn meta(&self, table: &str) -> Vec<u8> {
        self.named(kind::META, table)
    }

    pub fn all_meta(&self) -> (Vec<u8>, Vec<u8>) {
        self.kind_range(kind::META)
    }

    /// The object name in a key from [`all_meta`](Self::all_meta).
    pub fn meta_name(&self, key: &[u8]) -> Result<String> {
        let rest = key.get(self.prefix.len() + 1..).ok_or_else(|| corrupt("short meta key"))?;
        Reader::new(rest).escaped_str()
    }

    pub fn next_row_id(&self, table: &str) -> Vec<u8> {
        self.named(kind::NEXT_ROW_ID, table)
    }

    /// Where the rows of `table` start; a row key is this plus the encoded primary key.
    pub fn row_prefix(&self, table: &str) -> Vec<u8> {
        self.named(kind::ROW, table)
    }

    pub fn row(&self, table: &str, key: &Key) -> Vec<u8> {
        let mut out = self.row_prefix(table);
        push_key(&mut out, key);
        out
    }

    /// The primary key in a row key that starts with `row_prefix`.
    pub fn row_key_of(row_prefix: &[u8], row_key: &[u8]) -> Result<Key> {
        let rest = row_key.get(row_prefix.len()..).ok_or_else(|| corrupt("short row key"))?;
        let mut reader = Reader::new(rest);
        let key = reader.key()?;
        if !reader.rest().is_empty() {
            return Err(corrupt("bytes after the primary key"));
        }
        Ok(key)
    }

    /// Where the entries of every index of `table` start.
    pub fn table_indexes_prefix(&self, table: &str) -> Vec<u8> {
        self.named(kind::INDEX, table)
    }

    /// Where the entries of one index start; an entry key is this plus the encoded index
    /// value plus the encoded primary key.
    pub fn index_prefix(&self, table: &str, index: &str) -> Vec<u8> {
        let mut out = self.table_indexes_prefix(table);
        push_escaped(&mut out, index.as_bytes());
        out
    }

    pub fn index_entry(&self, index_prefix: &[u8], value: &Key, key: &Key) -> Vec<u8> {
        let mut out = index_prefix.to_vec();
        push_key(&mut out, value);
        push_key(&mut out, key);
        out
    }

    /// The primary key in an index entry key that starts with `index_prefix`.
    pub fn index_entry_key(index_prefix: &[u8], entry: &[u8]) -> Result<Key> {
        let rest = entry.get(index_prefix.len()..).ok_or_else(|| corrupt("short index key"))?;
        let mut reader = Reader::new(rest);
        reader.key()?;
        let key = reader.key()?;
        if !reader.rest().is_empty() {
            return Err(corrupt("bytes after the primary key in an index entry"));
        }
        Ok(key)
    }

    pub fn function(&self, name: &str) -> Vec<u8> {
        self.named(kind::FUNCTION, name)
    }

    pub fn all_functions(&self) -> (Vec<u8>, Vec<u8>) {
        self.kind_range(kind::FUNCTION)
    }
}

/// `[start, end)` of the keys that start with `prefix`. Prefixes built by [`Layout`] end in an
/// escaped-string terminator or an encoded key, never in `FF` only, so the end always exists;
/// the fallback covers every key after `prefix`.
pub fn prefix_range(prefix: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let end = prefix_end(&prefix).unwrap_or_else(|| vec![u8::MAX; prefix.len() + 1]);
    (prefix, end)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::str::FromStr;

    fn roundtrip(key: &Key) -> Key {
        let bytes = encode_key(key);
        let mut reader = Reader::new(&bytes);
        let back = reader.key().unwrap();
        assert!(reader.rest().is_empty(), "{key:?} left bytes");
        back
    }

    fn sample_keys() -> Vec<Vec<Key>> {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let date = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        let time = |h, m, s, n| NaiveTime::from_hms_nano_opt(h, m, s, n).unwrap();
        vec![
            vec![Key::Bool(false), Key::Bool(true)],
            vec![Key::I8(i8::MIN), Key::I8(-1), Key::I8(0), Key::I8(1), Key::I8(i8::MAX)],
            vec![Key::I16(i16::MIN), Key::I16(-300), Key::I16(0), Key::I16(i16::MAX)],
            vec![Key::I32(i32::MIN), Key::I32(-2), Key::I32(7), Key::I32(i32::MAX)],
            vec![Key::I64(i64::MIN), Key::I64(-256), Key::I64(-1), Key::I64(0), Key::I64(255)],
            vec![Key::I128(i128::MIN), Key::I128(-1), Key::I128(1 << 100)],
            vec![Key::U8(0), Key::U8(200)],
            vec![Key::U16(1), Key::U16(65535)],
            vec![Key::U32(3), Key::U32(1 << 31)],
            vec![Key::U64(0), Key::U64(u64::MAX)],
            vec![Key::U128(5), Key::U128(u128::MAX)],
            [f32::NEG_INFINITY, -2.5, -0.0, 0.0, 1e-30, 3.5, f32::INFINITY]
                .into_iter()
                .map(|f| Key::F32(OrderedFloat(f)))
                .collect(),
            [f64::NEG_INFINITY, -1e300, -0.5, -0.0, 0.0, 0.25, 1e300, f64::INFINITY]
                .into_iter()
                .map(|f| Key::F64(OrderedFloat(f)))
                .collect(),
            [
                "-79228162514264337593543950335",
                "-12.5",
                "-12.25",
                "-1",
                "-0.0000000000000000000000000001",
                "0",
                "0.0000000000000000000000000001",
                "0.5",
                "1",
                "1.25",
                "12.5",
                "79228162514264337593543950335",
            ]
            .into_iter()
            .map(|s| Key::Decimal(d(s)))
            .collect(),
            ["", "\0", "\0\0", "\0a", "a", "a\0", "ab", "b", "é"]
                .into_iter()
                .map(|s| Key::Str(s.to_owned()))
                .collect(),
            vec![
                Key::Bytea(vec![]),
                Key::Bytea(vec![0]),
                Key::Bytea(vec![0, 0xFF]),
                Key::Bytea(vec![1]),
                Key::Bytea(vec![0xFF, 0xFF]),
            ],
            vec![
                Key::Inet(IpAddr::from_str("0.0.0.0").unwrap()),
                Key::Inet(IpAddr::from_str("10.1.2.3").unwrap()),
                Key::Inet(IpAddr::from_str("255.255.255.255").unwrap()),
                Key::Inet(IpAddr::from_str("::1").unwrap()),
                Key::Inet(IpAddr::from_str("ff02::1").unwrap()),
            ],
            vec![
                Key::Date(date(-300, 1, 1)),
                Key::Date(date(1, 1, 1)),
                Key::Date(date(1989, 2, 1)),
                Key::Date(date(2020, 3, 20)),
            ],
            vec![
                Key::Timestamp(NaiveDateTime::new(
                    date(1969, 12, 31),
                    time(23, 59, 59, 999_999_999),
                )),
                Key::Timestamp(NaiveDateTime::new(date(1970, 1, 1), time(0, 0, 0, 0))),
                Key::Timestamp(NaiveDateTime::new(date(1970, 1, 1), time(0, 0, 0, 1))),
            ],
            vec![
                Key::Time(time(0, 0, 0, 0)),
                Key::Time(time(12, 30, 0, 5)),
                Key::Time(time(23, 59, 59, 1_500_000_000)),
            ],
            vec![
                Key::Interval(Interval::Microsecond(i64::MIN)),
                Key::Interval(Interval::Microsecond(-5)),
                Key::Interval(Interval::Microsecond(7)),
                Key::Interval(Interval::Month(-3)),
                Key::Interval(Interval::Month(14)),
            ],
            vec![Key::Uuid(0), Key::Uuid(u128::MAX)],
            vec![Key::None],
        ]
    }

    /// Within each type, byte order of the encodings is GlueSQL's key order, and every key
    /// decodes back to an equal key.
    #[test]
    fn encoding_preserves_order_and_roundtrips() {
        for group in sample_keys() {
            for pair in group.windows(2) {
                assert!(pair[0] <= pair[1], "samples out of order: {pair:?}");
                let (a, b) = (encode_key(&pair[0]), encode_key(&pair[1]));
                assert_eq!(a.cmp(&b), pair[0].cmp(&pair[1]), "{pair:?}");
            }
            for key in &group {
                assert_eq!(&roundtrip(key), key);
            }
        }
    }

    /// Types order by tag, NULL last, and no encoding is a prefix of another, so a key
    /// followed by more bytes still sorts by the key first.
    #[test]
    fn encodings_are_self_delimiting_and_null_is_last() {
        let all: Vec<Key> = sample_keys().into_iter().flatten().collect();
        let null = encode_key(&Key::None);
        for a in &all {
            let ea = encode_key(a);
            if *a != Key::None {
                assert!(ea < null, "{a:?} not before NULL");
            }
            for b in &all {
                let eb = encode_key(b);
                if ea != eb {
                    assert!(!eb.starts_with(&ea), "{a:?} is a prefix of {b:?}");
                }
            }
        }
    }

    #[test]
    fn decimal_scale_does_not_change_the_key() {
        let a = encode_key(&Key::Decimal(Decimal::from_str("1.5").unwrap()));
        let b = encode_key(&Key::Decimal(Decimal::from_str("1.500").unwrap()));
        assert_eq!(a, b);
    }

    /// Every truncation and every single-byte change of a valid encoding either decodes or
    /// fails with an error; nothing panics.
    #[test]
    fn damaged_keys_give_errors_not_panics() {
        for key in sample_keys().into_iter().flatten() {
            let bytes = encode_key(&key);
            for len in 0..bytes.len() {
                assert!(Reader::new(&bytes[..len]).key().is_err(), "{key:?} cut at {len}");
            }
            for i in 0..bytes.len() {
                for x in [0x01_u8, 0x80, 0xFF] {
                    let mut bad = bytes.clone();
                    bad[i] ^= x;
                    let _ = Reader::new(&bad).key();
                }
            }
        }
    }

    #[test]
    fn prefix_end_skips_trailing_ff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }
}
